"""Zero-shot evaluation in other languages: squad.eval_files adds scored test splits
(.json.gz read too), squad.exclude_paragraphs_from keeps those paragraphs out of training."""

from __future__ import annotations

import gzip
import json

import pytest

from jaxbert.config import load_config
from jaxbert.data.tokenizer import load_tokenizer
from jaxbert.errors import UserError
from jaxbert.finetune import run
from jaxbert.finetune.data import load_task_data
from jaxbert.finetune.tasks import squad
from tests.finetune.test_run import CONFIGS, FIXTURES, VOCAB, overrides


def _squad_cfg(tmp_path, **extra):
    return load_config(str(CONFIGS / "squad.py"), overrides(tmp_path, max_seq_length=64, **{
        "squad.file": "sample-v1.1.json", "squad.doc_stride": 32, "squad.eval_fraction": 0.5,
        **extra}))  # fmt: skip


def test_eval_files_become_scored_splits_and_excluded_articles_never_train(tmp_path):
    sample = json.loads((FIXTURES / "squad" / "sample-v1.1.json").read_text())
    xq = tmp_path / "xquad.xx.json.gz"  # one article, as XQuAD ships (gzipped)
    xq.write_bytes(
        gzip.compress(json.dumps({"version": "1.1", "data": sample["data"][:1]}).encode())
    )
    tok = load_tokenizer(VOCAB)
    plain = load_task_data(_squad_cfg(tmp_path), tok)
    data = load_task_data(_squad_cfg(tmp_path, **{"squad.eval_files": str(xq),
                                                  "squad.exclude_paragraphs_from": str(xq)}), tok)  # fmt: skip
    assert [s.name for s in data.test] == ["xquad.xx"]
    split = data.test[0]
    n, s = split.features["input_ids"].shape
    import numpy as np

    onehot = lambda p: np.where(np.arange(s)[None] == p[:, None], 10.0, 0.0)  # noqa: E731
    preds = {"start_logits": onehot(split.features["start_positions"]),
             "end_logits": onehot(split.features["end_positions"])}  # fmt: skip
    assert split.score(split.decode(preds))["exact_match"] >= 90.0
    (path,) = split.write(split.decode(preds), tmp_path / "pred")
    assert path.name == "xquad.xx_predictions.json"
    assert len(data.train["input_ids"]) <= len(plain.train["input_ids"])
    every = tmp_path / "all.json"  # excluding every paragraph leaves nothing to train on
    every.write_text(json.dumps(sample))
    with pytest.raises(UserError, match="holds every training paragraph"):
        load_task_data(_squad_cfg(tmp_path, **{"squad.exclude_paragraphs_from": str(every)}), tok)


def test_excluded_paragraphs_are_dropped_one_by_one_and_empty_articles_with_them():
    """Only paragraphs whose context is in the excluded file go (an article keeps the
    rest): XQuAD uses some paragraphs of every SQuAD dev article."""
    para = lambda c: {"context": c, "qas": []}  # noqa: E731
    articles = [{"title": "A", "paragraphs": [para("a1"), para("a2")]},
                {"title": "B", "paragraphs": [para("b1")]}]  # fmt: skip
    excluded = [{"title": "other", "paragraphs": [para("a2 "), para("b1")]}]
    kept = squad.drop_paragraphs(articles, excluded)
    assert [(a["title"], [p["context"] for p in a["paragraphs"]]) for a in kept] == [("A", ["a1"])]


def test_configs_saved_before_new_keys_still_resume(tmp_path):
    """A checkpoint config without keys added later (features.*, squad.eval_files) differs
    only where the new config sets a non-default value."""
    cfg = _squad_cfg(tmp_path).to_dict()
    old = json.loads(json.dumps(cfg))
    del old["features"], old["squad"]["eval_files"]
    assert run.config_differences(old, cfg) == []
    cfg["squad"]["eval_files"] = "x.json"
    assert run.config_differences(old, cfg) == ["config.squad.eval_files: '' → 'x.json'"]
