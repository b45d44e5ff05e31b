"""The pure train step: identical across meshes, exact gradient accumulation, masked loss."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxbert import sharding
from jaxbert.model.heads import BertForPreTraining
from jaxbert.train import optim
from jaxbert.train.losses import pretraining_sums
from jaxbert.train.step import CompiledSteps, forward
from tests.helpers import micro_model_config, random_batch


def run_steps(mesh_shape, batches, accum=1, model_cfg=None, devices=None):
    """Train len(batches) steps on the given mesh; return (losses, final params)."""
    model = BertForPreTraining(model_cfg or micro_model_config())
    opt = optim.optimizer_defaults()
    opt.warmup_steps = 1
    tx, schedule = optim.make_optimizer(opt, 10), optim.learning_rate_schedule(opt, 10)
    n = int(np.prod(mesh_shape))
    mesh = sharding.create_mesh(
        dict(zip(sharding.MESH_AXES, mesh_shape)), devices or jax.devices()[:n]
    )
    example = {k: jnp.asarray(v) for k, v in batches[0].items()}
    steps = CompiledSteps(model, tx, schedule, mesh, example, accum_steps=accum)
    state = steps.init_state(jax.random.key(0))
    losses = []
    for b in batches:
        state, metrics = steps.train(state, sharding.global_batch(b, mesh), jax.random.key(1))
        losses.append(float(metrics["loss"]))
    return np.array(losses), jax.device_get(state.params)


def assert_params_close(a, b, rtol):
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        np.testing.assert_allclose(x, y, rtol=rtol, atol=1e-6)


def test_three_steps_agree_across_meshes_and_one_device():
    """Loss and params after 3 steps match (≤1e-5 rel.) on 1 device, (8,1,1), (2,4,1), (2,2,2)."""
    batches = [random_batch(seed=i) for i in range(3)]
    ref_losses, ref_params = run_steps((1, 1, 1), batches)
    for shape in [(8, 1, 1), (2, 4, 1), (2, 2, 2)]:
        losses, params = run_steps(shape, batches)
        np.testing.assert_allclose(losses, ref_losses, rtol=1e-5)
        assert_params_close(params, ref_params, rtol=1e-5)
    assert ref_losses[0] > 0 and np.isfinite(ref_losses).all()


def test_gradient_accumulation_equals_one_large_batch():
    """k micro-batches give the same update as one k-times larger batch (dropout off)."""
    cfg = micro_model_config(hidden_dropout=0.0, attention_dropout=0.0)
    batches = [random_batch(batch=8, seed=i) for i in range(2)]
    # Unequal numbers of real prediction slots per row, so a naive mean of means would differ.
    for b in batches:
        b["masked_weights"][::3, 1:] = 0.0
    full_losses, full_params = run_steps((2, 1, 1), batches, accum=1, model_cfg=cfg)
    acc_losses, acc_params = run_steps((2, 1, 1), batches, accum=4, model_cfg=cfg)
    np.testing.assert_allclose(acc_losses, full_losses, rtol=1e-5)
    assert_params_close(acc_params, full_params, rtol=1e-4)


def test_mlm_loss_counts_only_weighted_prediction_slots():
    """Padding slots (weight 0) contribute nothing, whatever ids they hold."""
    batch = random_batch()
    model = BertForPreTraining(micro_model_config())
    params = jax.jit(model.init)(
        jax.random.key(0),
        *(batch[k] for k in ("input_ids", "input_mask", "segment_ids", "masked_positions")),
    )["params"]
    from flax.linen import unbox

    params = unbox(params)
    base = pretraining_sums(forward(model, params, batch), batch)
    changed = dict(batch)
    changed["masked_ids"] = np.where(batch["masked_weights"] > 0, batch["masked_ids"], 3).astype(
        np.int32
    )
    other = pretraining_sums(forward(model, params, changed), changed)
    np.testing.assert_allclose(base["mlm_loss"], other["mlm_loss"], rtol=1e-6)
    assert float(base["mlm_count"]) == batch["masked_weights"].sum()


@pytest.mark.parametrize("name", ["adamw", "lamb"])
def test_both_optimizers_reduce_the_loss_on_a_repeated_batch(name):
    """Overfitting one batch for a few steps lowers the loss (the update has the right sign)."""
    model = BertForPreTraining(micro_model_config(hidden_dropout=0.0, attention_dropout=0.0))
    opt = optim.optimizer_defaults()
    opt.name, opt.warmup_steps, opt.decay = name, 0, "constant"
    opt.learning_rate = 1e-2 if name == "adamw" else 5e-2  # LAMB steps are relative to ‖w‖
    tx = optim.make_optimizer(opt, 10)
    batch = random_batch()
    mesh = sharding.create_mesh({"data": 1, "fsdp": 1, "tensor": 1}, jax.devices()[:1])
    steps = CompiledSteps(
        model,
        tx,
        optim.learning_rate_schedule(opt, 10),
        mesh,
        {k: jnp.asarray(v) for k, v in batch.items()},
    )
    state = steps.init_state(jax.random.key(0))
    losses = []
    for _ in range(8):
        state, m = steps.train(state, sharding.global_batch(batch, mesh), jax.random.key(1))
        losses.append(float(m["loss"]))
    assert losses[-1] < losses[0] - 0.1, losses
