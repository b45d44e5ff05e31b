"""`jaxbert plan`: memory per device and step time for a config on a mesh, before renting it.

    jaxbert plan --config configs/pretrain/phase1_seq128.py:large,lamb --mesh=-1,1,1 \\
        --devices 64 --accelerator v5e

(`--mesh=-1,…` needs the `=`: argparse reads a bare `-1,1,1` as an option.)

State (exact): parameters and the optimizer state come from `jax.eval_shape` of the real
initialiser and optimizer, sharded by the real logical-axis rules (`sharding.LOGICAL_RULES`)
onto the mesh sizes, so they equal what `CompiledSteps` allocates (a dimension that does not
split evenly is an error, as it is for the sharded init). Gradients are fp32 with the parameters' sharding (twice that with
gradient accumulation: the running sum and the current micro-batch's).

Activations (an estimate): what the backward pass keeps alive per device, for a micro-batch
of b = batch / (data·fsdp) / grad_accum_steps sequences of length s, hidden h, heads a,
MLP width f, tensor-parallel degree t, compute dtype of d bytes; each dropout adds a 1-byte
mask. Per transformer layer (post-LN, attention dropout on: the explicit softmax path),
following Korthikanti et al. 2022 ("Reducing Activation Recomputation"):

    saved = b·s·h·(5d + 2)                layer input, LN inputs/outputs, residual masks
          + b·s·h·4d / t                  Q, K, V, attention output (per-head, split by t)
          + b·s·f·2d / t                  MLP input to and output of the GELU
          + b·a·s²·(4 + 1 + d) / t        fp32 softmax, its dropout mask, dropped probs

(34·s·b·h + 5·a·s²·b for bf16 with f = 4h and an fp16 softmax, as in that paper; the fp32
softmax here makes it 7·a·s²·b.) With remat the scan keeps, per layer, only what the policy
saves; the dot policies' terms were fitted to the TPU compiler's own peak
(`jaxbert plan --target`, benchmarks/tpu_plan.py, docs/tpu.md: 0.91–1.04× its peak on data,
fsdp and tensor meshes, base and large, seq 128 and 512, every shipped recipe):

    full:          b·s·h·d                                   (the layer input)
    dots_no_batch: b·s·h·2d + b·s·h·3d/t + b·s·f·d/t          (input, a residual branch; q k v; wi)
                   + 2·b·s·h + b·a·s²/t                       (+ hidden and attention keep-masks)
    dots:          dots_no_batch + b·s·h·d/t + b·a·s²·4/t     (+ attention matmuls)

    total = L · saved(policy) + embeddings + heads + gathered
    embeddings = b·s·h·(2d + 1);  heads = b·p·h·3d + b·p·V·4 / t   (p = max predictions)
    gathered (fsdp > 1) = one layer's weights in the compute dtype / t

The peak is the turn from forward to backward (every layer's saved values, the fp32 logits,
whose gradient overwrites them); with remat=full it is one whole layer recomputed in the backward
pass, max(heads, saved(none)). tests/test_tpu_compile.py keeps the estimate within 15% of
the TPU compiler's peak; tests/test_plan.py checks it on CPU within a factor of 2.

Time (an estimate, never a measurement): model FLOPs per step from `train.flops` (remat's
recomputation is not counted, as MFU convention has it) divided by
devices × peak FLOP/s × an assumed MFU.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from jaxbert.errors import UserError

GIB = 1024**3

# --accelerator: (flops.PEAK_FLOPS key, memory per device in GiB).
ACCELERATORS: dict[str, tuple[str, float]] = {
    "v4": ("TPU v4", 32),
    "v5e": ("TPU v5 lite", 16),
    "v5p": ("TPU v5p", 95),
    "v6e": ("TPU v6 lite", 32),
    "a100-40": ("NVIDIA A100-SXM4-40GB", 40),
    "a100-80": ("NVIDIA A100-SXM4-80GB", 80),
    "h100": ("NVIDIA H100 80GB HBM3", 80),
    "h200": ("NVIDIA H200", 141),
}
DEFAULT_MFU = 0.4
REMAT_POLICIES = ("none", "dots", "dots_no_batch", "full")


def parse_mesh(text: str) -> dict[str, int]:
    """'data,fsdp,tensor' (e.g. '-1,8,1') → {'data': -1, 'fsdp': 8, 'tensor': 1}.

    `fill` may stand for -1 (`--mesh fill,8,1` needs no `=`).
    """
    from jaxbert.sharding import MESH_AXES

    parts = text.split(",")
    try:
        sizes = [-1 if p.strip() == "fill" else int(p) for p in parts]
    except ValueError:
        sizes = []
    if len(sizes) != len(MESH_AXES):
        raise UserError(
            f"--mesh must be three integers data,fsdp,tensor (e.g. -1,1,1), got {text!r}"
        )
    return dict(zip(MESH_AXES, sizes))


def resolve_mesh(mesh: dict[str, int], devices: int | None) -> tuple[dict[str, int], int]:
    """Fill the -1 axis; without --devices the mesh must be fully specified."""
    from jaxbert.sharding import MESH_AXES, mesh_shape

    if devices is None:
        if any(v == -1 for v in mesh.values()):
            raise UserError("--mesh has a -1 (fill) axis: say how many devices with --devices N")
        devices = math.prod(mesh.values())
    return dict(zip(MESH_AXES, mesh_shape(mesh, devices))), devices


# ---------------------------------------------------------------- exact state bytes


def abstract_state(cfg: Any) -> Any:
    """The boxed (logically named) TrainState skeleton of the real init: no memory used."""
    import functools

    import jax
    import jax.numpy as jnp

    from jaxbert.train import optim
    from jaxbert.train.step import init_state, pretraining_model

    ids = jnp.zeros((1, 8), jnp.int32)
    example = {"input_ids": ids, "input_mask": ids, "segment_ids": ids}
    example["masked_positions"] = ids[:, :2]
    tx = optim.make_optimizer(cfg.optimizer, cfg.train.num_steps)
    if cfg.model.get("attention_impl") == "cudnn":  # same shapes; traceable without a GPU
        cfg = cfg.copy_and_resolve_references()
        cfg.model.attention_impl = "xla"
    init = functools.partial(
        init_state,
        pretraining_model(cfg),
        tx,
        example,
        jax.random.key(0),
    )
    return jax.eval_shape(init)


def shard_shape(shape: tuple[int, ...], spec: Any, mesh: dict[str, int]) -> tuple[int, ...]:
    """One device's block of an array with mesh PartitionSpec `spec`.

    jit's sharded init refuses uneven splits (IndivisibleError), so they are an error here.
    """
    out = []
    for i, dim in enumerate(shape):
        axes = spec[i] if spec is not None and i < len(spec) else None
        axes = () if axes is None else (axes,) if isinstance(axes, str) else tuple(axes)
        parts = math.prod(mesh[a] for a in axes)
        if dim % parts:
            raise ValueError(
                f"dimension {i} of size {dim} does not split over {'×'.join(axes)}={parts}"
            )
        out.append(dim // parts)
    return tuple(out)


def per_device_bytes(boxed_tree: Any, mesh: dict[str, int], rules=None) -> int:
    """Bytes one device holds of a boxed tree, sharded by the logical-axis rules."""
    import flax.linen as nn
    import jax
    import numpy as np
    from jax.sharding import PartitionSpec

    from jaxbert.sharding import LOGICAL_RULES

    rules = LOGICAL_RULES if rules is None else rules
    specs = nn.get_partition_spec(boxed_tree)
    values = nn.unbox(boxed_tree)
    total = 0
    for value, logical in zip(
        jax.tree.leaves(values),
        jax.tree.leaves(specs, is_leaf=lambda x: isinstance(x, PartitionSpec)),
    ):
        spec = nn.logical_to_mesh_axes(logical, rules) if len(logical) else None
        try:
            block = shard_shape(value.shape, spec, mesh)
        except ValueError as e:
            raise UserError(
                f"mesh {mesh}: a parameter of shape {value.shape} (logical axes {tuple(logical)}) "
                f"cannot be sharded: {e}. Change the mesh, or pad the dimension "
                f"(e.g. config.model.vocab_size to a multiple of the tensor axis)"
            ) from None
        total += math.prod(block) * np.dtype(value.dtype).itemsize
    return total


# ---------------------------------------------------------------- activation estimate


def layer_activation_bytes(m: Any, b: int, s: int, t: int, policy: str) -> float:
    """Bytes one transformer layer keeps for the backward pass (see the module docstring)."""
    import numpy as np

    h, f, a = m.hidden_size, m.intermediate_size, m.num_heads
    d = np.dtype(m.dtype).itemsize
    hid_mask = 1 if m.hidden_dropout > 0 else 0
    attn_mask = 1 if m.attention_dropout > 0 else 0
    bsh, bsf, att = b * s * h, b * s * f, b * a * s * s
    # Fitted to the TPU compiler (docs/tpu.md): the layer input and one residual branch's
    # output, q k v, wi's output, the hidden masks, and attention's 1-byte keep-mask (with
    # scanned layers XLA reuses the forward's random bits instead of regenerating them).
    weight_dots = bsh * 2 * d + bsh * 3 * d / t + bsf * d / t
    masks = bsh * 2 * hid_mask + att * attn_mask / t
    if policy == "full":
        return bsh * d
    if policy == "dots_no_batch":
        return weight_dots + masks
    if policy == "dots":
        return weight_dots + masks + bsh * d / t + att * 4 / t
    if policy != "none":
        raise UserError(f"unknown remat policy {policy!r}; choose from {REMAT_POLICIES}")
    softmax = att * (4 + attn_mask + d * attn_mask) / t  # fused path keeps only the softmax
    return bsh * (5 * d + 2 * hid_mask) + bsh * 4 * d / t + bsf * 2 * d / t + softmax


def activation_bytes(m: Any, b: int, s: int, p: int, t: int, policy: str) -> float:
    """All activations of one micro-batch of b sequences on one device, at the peak: the
    turn from forward to backward, where every layer's saved values and the head's fp32
    logits (their gradient overwrites them: losses.py's one-pass VJP) are live. Only remat=full's peak is later, in the backward
    pass, while one layer is recomputed whole."""
    import numpy as np

    d = np.dtype(m.dtype).itemsize
    h = m.hidden_size
    layers = m.num_layers * layer_activation_bytes(m, b, s, t, policy)
    embeddings = b * s * h * (2 * d + 1)
    heads = b * p * h * 3 * d + b * p * m.vocab_size * 4 / t  # fp32 logits; grad in place
    if policy == "full":
        heads = max(heads, layer_activation_bytes(m, b, s, t, "none"))
    return layers + embeddings + heads


def gathered_weight_bytes(m: Any, mesh: dict[str, int]) -> float:
    """FSDP gathers weights at use (model/encoder.py `gathered`): one layer's at a time, in
    the compute dtype, inside the scan."""
    import numpy as np

    if mesh["fsdp"] == 1:
        return 0.0
    d, h = np.dtype(m.dtype).itemsize, m.hidden_size
    return (4 * h * h + 2 * h * m.intermediate_size) * d / mesh["tensor"]


# ---------------------------------------------------------------- the plan


@dataclass
class Plan:
    mesh: dict[str, int]
    devices: int
    parameters: int
    global_batch: int
    micro_batch_per_device: int
    seq_len: int
    param_bytes: int  # per device, as are all *_bytes
    grad_bytes: int
    opt_bytes: int
    activation_bytes: dict[str, float] = field(default_factory=dict)  # per remat policy
    remat_policy: str = "none"
    flops_per_step: float = 0.0
    standard_flops_per_step: float = 0.0
    peak_flops: float = 0.0  # per device
    peak_source: str = ""
    mfu: float = DEFAULT_MFU
    device_memory_bytes: float | None = None

    @property
    def total_bytes(self) -> float:
        return (
            self.param_bytes
            + self.grad_bytes
            + self.opt_bytes
            + self.activation_bytes[self.remat_policy]
        )

    @property
    def step_time_s(self) -> float:
        return self.flops_per_step / (self.devices * self.peak_flops * self.mfu)


def make_plan(
    cfg: Any,
    mesh: dict[str, int],
    devices: int | None = None,
    *,
    accelerator: str | None = None,
    device_memory_gib: float | None = None,
    mfu: float = DEFAULT_MFU,
) -> Plan:
    from jaxbert.train import flops
    from jaxbert.train.checks import check_model_and_data

    mesh, devices = resolve_mesh(mesh, devices)
    t = cfg.train
    check_model_and_data(cfg, mesh)  # the same checks as `jaxbert pretrain`
    shards = mesh["data"] * mesh["fsdp"] * t.grad_accum_steps
    state = abstract_state(cfg)
    param_bytes = per_device_bytes(state.params, mesh)
    b, s, p = t.batch_size // shards, cfg.data.max_seq_length, cfg.data.max_predictions_per_seq
    gathered = gathered_weight_bytes(cfg.model, mesh)
    acts = {
        pol: activation_bytes(cfg.model, b, s, p, mesh["tensor"], pol) + gathered
        for pol in REMAT_POLICIES
    }
    peak, source = _peak(cfg, accelerator)
    memory = device_memory_gib if device_memory_gib else None
    if memory is None and accelerator:
        memory = ACCELERATORS[accelerator][1]
    return Plan(
        mesh=mesh,
        devices=devices,
        parameters=flops.parameter_count(cfg.model),
        global_batch=t.batch_size,
        micro_batch_per_device=b,
        seq_len=s,
        param_bytes=param_bytes,
        grad_bytes=param_bytes * (2 if t.grad_accum_steps > 1 else 1),
        opt_bytes=per_device_bytes(state.opt_state, mesh),
        activation_bytes=acts,
        remat_policy=cfg.model.remat_policy,
        flops_per_step=flops.computed_flops_per_step(cfg.model, t.batch_size, s, p),
        standard_flops_per_step=flops.standard_flops_per_step(cfg.model, t.batch_size, s),
        peak_flops=peak,
        peak_source=source,
        mfu=mfu,
        device_memory_bytes=memory * GIB if memory else None,
    )


def _peak(cfg: Any, accelerator: str | None) -> tuple[float, str]:
    from jaxbert.train import flops

    if accelerator:
        name = ACCELERATORS[accelerator][0]
        return flops.PEAK_FLOPS[name], f"{name} datasheet (bf16)"
    if cfg.train.peak_flops_per_device > 0:
        return cfg.train.peak_flops_per_device, "config.train.peak_flops_per_device"
    name = ACCELERATORS["v4"][0]
    return flops.PEAK_FLOPS[name], f"{name} datasheet (bf16; pass --accelerator)"


def _gib(n: float) -> str:
    return f"{n / GIB:8.3f} GiB"


def format_plan(plan: Plan, cfg: Any) -> str:
    m = cfg.model
    mesh = " × ".join(f"{k} {v}" for k, v in plan.mesh.items())
    row = lambda label, value: f"  {label:<34}{value}"  # noqa: E731
    rows = [
        f"model {m.size}: {plan.parameters / 1e6:.1f}M parameters, {m.num_layers} layers, "
        f"hidden {m.hidden_size}, compute {m.dtype}, remat {m.remat_policy}",
        f"mesh: {mesh} = {plan.devices} devices; optimizer {cfg.optimizer.name}",
        f"global batch {plan.global_batch} × seq {plan.seq_len} = "
        f"{plan.global_batch * plan.seq_len:,} tokens/step; micro-batch per device "
        f"{plan.micro_batch_per_device} (grad_accum_steps {cfg.train.grad_accum_steps})",
        "",
        "per device:",
        row("parameters (fp32)", _gib(plan.param_bytes)),
        row("gradients (fp32)", _gib(plan.grad_bytes)),
        row("optimizer state (2 moments)", _gib(plan.opt_bytes)),
    ]
    for pol in REMAT_POLICIES:
        mark = "  <- configured" if pol == plan.remat_policy else ""
        rows.append(row(f"activations, remat {pol}", _gib(plan.activation_bytes[pol]) + mark))
    rows.append(row("total (configured remat)", _gib(plan.total_bytes)))
    if plan.device_memory_bytes:
        used = plan.total_bytes / plan.device_memory_bytes
        verdict = "fits" if used <= 0.9 else "does NOT fit (keep under ~90%)"
        rows.append(
            row("device memory", f"{_gib(plan.device_memory_bytes)}  -> {used:.0%} used, {verdict}")
        )
    tokens = plan.global_batch * plan.seq_len
    rows += [
        "",
        "throughput (estimate, not a measurement):",
        row(
            "FLOPs per step",
            f"{plan.flops_per_step:.3e} (standard 6NT+12LHST: {plan.standard_flops_per_step:.3e})",
        ),
        row("peak per device", f"{plan.peak_flops / 1e12:.0f} TFLOP/s ({plan.peak_source})"),
        row("assumed MFU", f"{plan.mfu:.0%}"),
        row("step time", f"{plan.step_time_s:.3f} s ({tokens / plan.step_time_s:,.0f} tokens/s)"),
        row(
            f"{cfg.train.num_steps:,} steps",
            f"{plan.step_time_s * cfg.train.num_steps / 3600:.1f} h",
        ),
    ]
    return "\n".join(rows)
