"""Mesh construction, the one logical-axis → mesh-axis table, and host batch → global array.

The model names axes logically (`embed`, `heads`, `mlp`, `activation_batch`, …); this file
alone decides how those names land on the (data, fsdp, tensor) mesh, so changing the
parallelism is a config change.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import flax.linen as nn
import jax
import numpy as np
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec

from jaxbert.errors import UserError

MESH_AXES = ("data", "fsdp", "tensor")
BATCH_AXES = ("data", "fsdp")

# Weights: FSDP shards the embed dimension, tensor parallelism the heads / MLP / vocab
# dimension (Megatron-style). Activations: the batch is split over data and fsdp; the
# per-head and MLP activations follow their weights over tensor.
LOGICAL_RULES: tuple[tuple[str, Any], ...] = (
    ("activation_batch", BATCH_AXES),
    ("activation_length", None),
    ("activation_embed", None),
    ("activation_heads", "tensor"),
    ("activation_kv", None),
    ("activation_mlp", "tensor"),
    ("embed", "fsdp"),
    ("embed_gathered", None),
    ("vocab_gathered", None),
    ("embed_out", None),
    ("heads", "tensor"),
    ("kv", None),
    ("mlp", "tensor"),
    ("vocab", "tensor"),
    ("layers", None),
)


def mesh_shape(mesh_cfg: Mapping[str, int], num_devices: int) -> tuple[int, ...]:
    """Resolve the (data, fsdp, tensor) sizes; one axis may be -1 ("fill the rest")."""
    sizes = [int(mesh_cfg[axis]) for axis in MESH_AXES]
    fills = [i for i, s in enumerate(sizes) if s == -1]
    if len(fills) > 1:
        raise UserError("config mesh: at most one of data/fsdp/tensor may be -1")
    if any(s == 0 or s < -1 for s in sizes):
        raise UserError(
            f"config mesh: sizes must be positive or -1, got {dict(zip(MESH_AXES, sizes))}"
        )
    known = math.prod(s for s in sizes if s != -1)
    if fills:
        if num_devices % known:
            raise UserError(
                f"config mesh: {num_devices} devices are not divisible by the fixed axes ({known})"
            )
        sizes[fills[0]] = num_devices // known
    if math.prod(sizes) != num_devices:
        raise UserError(
            f"config mesh {dict(zip(MESH_AXES, sizes))} needs {math.prod(sizes)} devices, "
            f"but {num_devices} are available"
        )
    return tuple(sizes)


def create_mesh(mesh_cfg: Mapping[str, int], devices: Sequence[jax.Device] | None = None) -> Mesh:
    devices = list(devices if devices is not None else jax.devices())
    shape = mesh_shape(mesh_cfg, len(devices))
    # Auto axes: the compiler propagates shardings from the logical constraints, as in
    # the pjit model; explicit-sharding mode would demand out_sharding on every gather.
    axis_types = (AxisType.Auto,) * len(MESH_AXES)
    if len(devices) == len(jax.devices()):
        return jax.make_mesh(shape, MESH_AXES, axis_types=axis_types, devices=devices)
    return Mesh(np.asarray(devices).reshape(shape), MESH_AXES, axis_types=axis_types)


def logical_shardings(abstract_tree: Any, mesh: Mesh, rules=LOGICAL_RULES) -> Any:
    """NamedShardings for a tree of (boxed) abstract values, from their logical names."""
    specs = nn.get_partition_spec(abstract_tree)
    return nn.logical_to_mesh_sharding(specs, mesh, rules)


def sharded_init(init_fn: Callable[[], Any], mesh: Mesh, rules=LOGICAL_RULES) -> tuple[Any, Any]:
    """Initialise directly into shards: full parameters never sit on one device.

    Returns (unboxed values, their shardings).
    """
    abstract = jax.eval_shape(init_fn)
    shardings = logical_shardings(abstract, mesh, rules)
    with jax.set_mesh(mesh), nn.logical_axis_rules(rules):
        values = jax.jit(lambda: nn.unbox(init_fn()), out_shardings=shardings)()
    return values, shardings


def batch_sharding(mesh: Mesh) -> NamedSharding:
    """Leading (batch) axis split over data × fsdp, everything else replicated."""
    return NamedSharding(mesh, PartitionSpec(BATCH_AXES))


def replicated(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, PartitionSpec())


def global_batch(local_batch: Mapping[str, np.ndarray], mesh: Mesh) -> dict[str, jax.Array]:
    """This host's slice of the batch → one global jax.Array per key (multi-host safe)."""
    sharding = batch_sharding(mesh)
    return {
        k: jax.make_array_from_process_local_data(sharding, np.asarray(v))
        for k, v in local_batch.items()
    }


def batch_divisor(mesh: Mesh) -> int:
    """The global batch must be a multiple of this (the number of batch shards)."""
    return mesh.shape["data"] * mesh.shape["fsdp"]
