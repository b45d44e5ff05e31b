"""Sharding: mesh resolution, and a sharded forward pass equal to one device."""

import flax.linen as nn
import jax
import numpy as np
import pytest

from jaxbert import sharding
from jaxbert.errors import UserError
from jaxbert.model.heads import BertForPreTraining
from tests.helpers import micro_model_config, random_batch

ARGS = ("input_ids", "input_mask", "segment_ids", "masked_positions")


def test_mesh_shape_fills_one_axis_and_rejects_impossible_meshes():
    """-1 fills the remaining devices; a mesh that does not fit names the problem."""
    assert sharding.mesh_shape({"data": -1, "fsdp": 2, "tensor": 1}, 8) == (4, 2, 1)
    assert sharding.mesh_shape({"data": 2, "fsdp": 2, "tensor": 2}, 8) == (2, 2, 2)
    with pytest.raises(UserError, match="needs 4 devices"):
        sharding.mesh_shape({"data": 2, "fsdp": 2, "tensor": 1}, 8)
    with pytest.raises(UserError, match="at most one"):
        sharding.mesh_shape({"data": -1, "fsdp": -1, "tensor": 1}, 8)
    with pytest.raises(UserError, match="not divisible"):
        sharding.mesh_shape({"data": -1, "fsdp": 3, "tensor": 1}, 8)


def test_sharded_forward_on_2x2x2_mesh_matches_one_device():
    """Params and batch sharded over (data=2, fsdp=2, tensor=2) give the same outputs (≤1e-5)."""
    assert jax.device_count() == 8
    batch = random_batch()
    model = BertForPreTraining(micro_model_config())

    def init():
        return model.init(jax.random.key(0), *(batch[k] for k in ARGS))

    reference = model.apply(nn.unbox(init()), *(batch[k] for k in ARGS))
    mesh = sharding.create_mesh({"data": 2, "fsdp": 2, "tensor": 2})
    variables, shardings = sharding.sharded_init(init, mesh)
    kernel = shardings["params"]["bert"]["encoder"]["layers"]["attention"]["query"]["kernel"]
    assert tuple(kernel.spec) == (None, "fsdp", "tensor", None)  # really sharded
    inputs = sharding.global_batch({k: batch[k] for k in ARGS}, mesh)
    with jax.set_mesh(mesh), nn.logical_axis_rules(sharding.LOGICAL_RULES):
        out = jax.jit(lambda v, b: model.apply(v, *(b[k] for k in ARGS)))(variables, inputs)
    for key in reference:
        np.testing.assert_allclose(out[key], reference[key], atol=1e-5)
