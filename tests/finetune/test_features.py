"""mode=feature: frozen features computed once (and right), heads on them, their config."""

from __future__ import annotations

import json

import jax
import numpy as np
import pytest

from jaxbert import cli
from jaxbert.checkpoint import load_params
from jaxbert.config import load_config
from jaxbert.embed import hidden_states
from jaxbert.errors import UserError
from jaxbert.finetune import features, run
from tests.finetune.test_run import CONFIGS, overrides, save_micro_checkpoint

NER = {"ner.train_file": "eng.sample", "ner.dev_file": "eng.sample", "ner.test_file": "eng.sample"}


def _arrays(n=6, seq=32, seed=0):
    rng = np.random.default_rng(seed)
    lengths = rng.integers(3, seq + 1, n)
    mask = (np.arange(seq)[None] < lengths[:, None]).astype(np.int32)
    ids = (rng.integers(5, 472, (n, seq)) * mask).astype(np.int32)
    return {"input_ids": ids, "input_mask": mask, "segment_ids": np.zeros_like(ids)}


def test_features_equal_the_encoder_states_and_are_computed_once(tmp_path):
    """Length-bucketed batches give each row's own states (float16 for token tasks, the
    [CLS] row in float32 for sequence tasks); the same data and layers come from the
    cache (the same array), other layers do not."""
    params = save_micro_checkpoint(tmp_path / "ckpt")
    cfg = load_config(f"{CONFIGS / 'glue.py'}:sst2", overrides(tmp_path))
    model_cfg, _ = load_params(tmp_path / "ckpt")
    a = _arrays()
    tok = features.compute(cfg, model_cfg, params["bert"], a, "token", 4, "x")
    states = np.asarray(jax.jit(lambda *x: hidden_states(model_cfg, *x))(
        params["bert"], a["input_ids"], a["input_mask"], a["segment_ids"]))  # fmt: skip
    assert tok.shape == (6, 32, 32) and tok.dtype == np.float16
    for i in range(6):
        n = a["input_mask"][i].sum()
        np.testing.assert_allclose(tok[i, :n], states[-1, i, :n], atol=2e-2)
    assert features.compute(cfg, model_cfg, params["bert"], a, "token", 4, "x") is tok
    cls = features.compute(cfg, model_cfg, params["bert"], a, "classification", 4, "x")
    assert cls.shape == (6, 1, 32) and cls.dtype == np.float32
    np.testing.assert_allclose(cls[:, 0], states[-1, :, 0], atol=1e-5)
    cfg.features.layer, cfg.features.combine = "all", "concat"
    both = features.compute(cfg, model_cfg, params["bert"], a, "classification", 4, "x")
    assert both.shape == (6, 1, 64)  # embeddings + the one layer


def test_conll_bilstm_head_trains_on_cached_features(tmp_path, capsys):
    """CoNLL with the paper's feature-based NER recipe (concat of the last layers, a
    BiLSTM): the train state holds only the head (the step cannot rerun the encoder),
    the log says the features were encoded once, best_params carries the frozen encoder."""
    params = save_micro_checkpoint(tmp_path / "ckpt")
    extra = {**NER, "init": str(tmp_path / "ckpt"), "mode": "feature", "num_epochs": 2,
             "features.layer": "last4", "features.combine": "concat", "features.head": "bilstm",
             "features.lstm_size": 16, "features.lstm_layers": 1}  # fmt: skip
    assert (
        cli.main(["finetune", "--config", str(CONFIGS / "ner.py"), *overrides(tmp_path, **extra)])
        == 0
    )
    out = capsys.readouterr().out
    assert "encoded once" in out and "head bilstm" in out
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert "f1" in metrics["dev"] and len(metrics["history"]) == 2
    _, saved = load_params(tmp_path / "run" / "best_params")
    assert set(saved) == {"bert", "bilstm_0", "classifier"}
    assert all(jax.tree.leaves(jax.tree.map(np.array_equal, saved["bert"], params["bert"])))
    cfg = load_config(str(CONFIGS / "ner.py"), overrides(tmp_path, **extra))
    _, _, steps, state, _ = run.setup(cfg, log=lambda s: None)
    assert "bert" not in state.params


@pytest.mark.parametrize(
    "config, extra, error",
    [("glue.py:sst2", {"features.head": "bilstm"}, "config.features.head=bilstm is a token"),
     ("glue.py:sst2", {"features.combine": "max"}, "config.features.combine must be one of"),
     ("glue.py:sst2", {"features.layer": "7"}, "config.features.layer: 7 is out of range"),
     ("ner.py", {"features.lstm_layers": 0}, "config.features.lstm_layers must be an integer >= 1")],
)  # fmt: skip
def test_bad_feature_settings_name_the_key(tmp_path, config, extra, error):
    extra = (
        {**NER, "mode": "feature", **extra} if config == "ner.py" else {"mode": "feature", **extra}
    )
    cfg = load_config(str(CONFIGS / config), overrides(tmp_path, **extra))
    with pytest.raises(UserError, match=error):
        run.setup(cfg, log=lambda s: None)
