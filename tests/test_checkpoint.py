"""Checkpoints: round trip with data state and rng, restore onto a different mesh,
standalone params, and refusing to overwrite."""

import logging

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxbert import sharding
from jaxbert.checkpoint import Checkpointer, checkpoint_defaults, load_params, save_params
from jaxbert.errors import UserError
from jaxbert.model.heads import BertForPreTraining
from jaxbert.train import optim
from jaxbert.train.config import pretrain_defaults
from jaxbert.train.step import CompiledSteps
from tests.helpers import micro_model_config, random_batch


def compiled(mesh_shape):
    cfg = micro_model_config()
    opt = optim.optimizer_defaults()
    n = int(np.prod(mesh_shape))
    mesh = sharding.create_mesh(dict(zip(sharding.MESH_AXES, mesh_shape)), jax.devices()[:n])
    example = {k: jnp.asarray(v) for k, v in random_batch().items()}
    return cfg, CompiledSteps(
        BertForPreTraining(cfg),
        optim.make_optimizer(opt, 10),
        optim.learning_rate_schedule(opt, 10),
        mesh,
        example,
    )


def test_saved_on_one_device_restores_onto_a_2x2x2_mesh(tmp_path):
    """State, data position and rng survive a save on 1 device and a restore sharded over 8."""
    _, one = compiled((1, 1, 1))
    state = one.init_state(jax.random.key(3))
    ckpt = Checkpointer(tmp_path, checkpoint_defaults())
    run_cfg = pretrain_defaults()
    ckpt.save(5, state, {"next_batch": 17}, jax.random.key(9), run_cfg)
    ckpt.close()

    _, eight = compiled((2, 2, 2))
    step, restored, data_state, rng = Checkpointer(tmp_path, checkpoint_defaults()).restore_latest(
        eight.abstract_state()
    )
    assert step == 5 and data_state == {"next_batch": 17}
    assert jax.random.key_data(rng).tolist() == jax.random.key_data(jax.random.key(9)).tolist()
    kernel = restored.params["bert"]["encoder"]["layers"]["attention"]["query"]["kernel"]
    assert len(kernel.sharding.device_set) == 8
    for a, b in zip(jax.tree.leaves(state), jax.tree.leaves(restored)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_standalone_params_round_trip_and_never_overwrite(tmp_path):
    """save_params → load_params returns the same arrays and config; an existing path is refused."""
    cfg, steps = compiled((1, 1, 1))
    params = jax.device_get(steps.init_state(jax.random.key(0)).params)
    save_params(tmp_path / "p", params, cfg)
    cfg2, params2 = load_params(tmp_path / "p")
    assert cfg2.to_dict() == cfg.to_dict()
    for a, b in zip(jax.tree.leaves(params), jax.tree.leaves(params2)):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(UserError, match="refusing to overwrite"):
        save_params(tmp_path / "p", params, cfg)
    with pytest.raises(UserError, match="not a jaxbert checkpoint"):
        load_params(tmp_path)


def test_failed_save_params_leaves_nothing_at_the_path_and_is_retried_cleanly(
    tmp_path, monkeypatch
):
    """A save that fails midway leaves no directory at the target path (only its
    .tmp-partial); the next save clears that leftover and writes a complete checkpoint."""
    import orbax.checkpoint as ocp

    cfg = micro_model_config()
    params = {"w": np.arange(6, dtype=np.float32).reshape(2, 3)}

    def fail(self, *args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(ocp.StandardCheckpointer, "save", fail)
    with pytest.raises(OSError, match="disk full"):
        save_params(tmp_path / "p", params, cfg)
    assert not (tmp_path / "p").exists() and (tmp_path / "p.tmp-partial").is_dir()
    monkeypatch.undo()
    save_params(tmp_path / "p", params, cfg)
    _, loaded = load_params(tmp_path / "p")
    np.testing.assert_array_equal(loaded["w"], params["w"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p"]


def test_load_params_reads_the_asked_step_of_a_run(tmp_path):
    """load_params(run, step) returns that step's parameters, not the newest; a step the
    run does not have is refused, naming the steps it has."""
    cfg, steps = compiled((1, 1, 1))
    ckpt = Checkpointer(tmp_path, checkpoint_defaults())
    run_cfg = pretrain_defaults()
    run_cfg.model = cfg
    states = {s: steps.init_state(jax.random.key(s)) for s in (2, 4)}
    for s, state in states.items():
        ckpt.save(s, state, {"next_batch": s}, jax.random.key(0), run_cfg)
    ckpt.close()
    for s, state in states.items():
        _, params = load_params(tmp_path, step=s)
        for a, b in zip(jax.tree.leaves(state.params), jax.tree.leaves(params)):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    _, newest = load_params(tmp_path)
    np.testing.assert_array_equal(jax.tree.leaves(newest)[0], jax.tree.leaves(params)[0])
    with pytest.raises(UserError, match="no step 3 \\(steps: 2, 4\\)"):
        load_params(tmp_path, step=3)


async def async_deserialize():  # named as orbax's array read, whose repr the filter matches
    raise ValueError("OUT_OF_RANGE: truncated array")


async def other_task():
    raise ValueError("a real bug")


def test_orphaned_read_failures_of_a_failed_restore_are_not_logged(caplog):
    """After a failed restore, asyncio's "Task exception was never retrieved" tracebacks of
    orbax's sibling array reads (async_deserialize) never reach the user's output; any
    other task's lost exception is still logged."""
    import asyncio
    import gc

    import jaxbert.checkpoint  # noqa: F401 — installs the filter

    def orphan(coro) -> None:
        loop = asyncio.new_event_loop()
        task = loop.create_task(coro())
        loop.run_until_complete(asyncio.sleep(0))
        loop.close()
        del task
        gc.collect()

    with caplog.at_level(logging.ERROR, logger="asyncio"):
        orphan(async_deserialize)
        assert "never retrieved" not in caplog.text
        orphan(other_task)
        assert "never retrieved" in caplog.text and "other_task()" in caplog.text
