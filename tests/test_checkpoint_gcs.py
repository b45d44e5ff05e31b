"""checkpoint.py on gs:// (a local GCS server): the saved config reads back (it used to go
through pathlib, gs://b → gs:/b, and silently read nothing), params dirs round-trip."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from jaxbert import checkpoint, fs
from jaxbert.errors import UserError


def test_newest_config_and_params_on_gcs(gcs_bucket):
    """Checkpointer on gs://: steps commit, `newest_config` returns the newest step's saved
    config, `restore_latest` and `load_params` read the state back; a `save_params` dir is
    written with its marker (model_config.json) and loads, and is not overwritten."""
    cfg = ml_collections.ConfigDict({"keep": 2, "keep_best": False, "async_save": False})
    ckpt = checkpoint.Checkpointer(f"{gcs_bucket}/run/checkpoints", cfg)
    state = {"params": {"w": jnp.arange(6.0).reshape(2, 3)}}
    run_cfg = ml_collections.ConfigDict({"model": {"hidden_size": 8}, "seed": 1})
    for step in (1, 2):
        ckpt.save(step, state, {"next_batch": step}, jax.random.key(0), run_cfg, force=True)
    ckpt.wait()
    assert ckpt.steps() == [1, 2]
    assert ckpt.newest_config() == (2, run_cfg.to_dict())
    abstract = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), state)
    step, restored, data, _ = ckpt.restore_latest(abstract)
    assert step == 2 and data == {"next_batch": 2}
    np.testing.assert_array_equal(restored["params"]["w"], state["params"]["w"])
    ckpt.close()
    model_cfg, params = checkpoint.load_params(f"{gcs_bucket}/run")
    assert model_cfg.hidden_size == 8 and np.array_equal(params["w"], state["params"]["w"])

    target = f"{gcs_bucket}/params"
    checkpoint.save_params(target, state["params"], ml_collections.ConfigDict({"x": 1}))
    assert "model_config.json" in fs.relative_files(target)
    assert not fs.as_path(f"{target}.tmp-partial").exists()
    cfg2, params2 = checkpoint.load_params(target)
    assert cfg2.x == 1 and np.array_equal(params2["w"], state["params"]["w"])
    with pytest.raises(UserError, match="already exists"):
        checkpoint.save_params(target, state["params"], ml_collections.ConfigDict({"x": 2}))
