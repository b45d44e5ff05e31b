"""A shared vocabulary: smoothed per-corpus sentence sampling (mBERT's recipe) and the
fertility report of `tokenizer train --sampling-alpha`."""

from __future__ import annotations

import json

import numpy as np
import pytest

from jaxbert import cli
from jaxbert.data import vocab_sampling
from jaxbert.errors import UserError
from tests.conftest import WIKI_TINY


def test_shares_follow_smoothed_character_counts():
    """Corpora of 900 and 100 characters at α = 0.5: q ∝ (0.9^½, 0.1^½) = (0.75, 0.25); a
    budget of 40 sentences takes 30 and 10 — the small corpus (5 sentences) oversampled."""
    big = ["x" * 20] * 45  # 900 characters
    small = ["y" * 20] * 5  # 100 characters
    sample, q, taken = vocab_sampling.sample_sentences([big, small], 0.5, 40, seed=1)
    np.testing.assert_allclose(q, [0.75, 0.25])
    assert taken == [30, 10] and len(sample) == 40
    assert sample.count("y" * 20) == 10
    assert vocab_sampling.sample_sentences([big, small], 0.5, 40, seed=1)[0] == sample
    with pytest.raises(UserError, match="--sampling-alpha=0 must be > 0"):
        vocab_sampling.smoothed_shares([1, 2], 0)


def _hangul_corpus(path, n=300, seed=0):
    rng = np.random.default_rng(seed)
    syllables = [chr(0xAC00 + i) for i in rng.integers(0, 400, 60)]
    lines = [" ".join("".join(rng.choice(syllables, rng.integers(1, 4))) for _ in range(8)) + "."
             for _ in range(n)]  # fmt: skip
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_cli_trains_a_shared_vocabulary_and_reports_fertility(tmp_path, capsys):
    ko = _hangul_corpus(tmp_path / "ko.txt")
    out = tmp_path / "tok"
    argv = ["tokenizer", "train", "--corpus", str(WIKI_TINY), str(ko), "--out", str(out),
            "--vocab-size", "600", "--sampling-alpha", "0.7", "--max-sentences", "2000"]  # fmt: skip
    assert cli.main(argv) == 0
    err = capsys.readouterr().err
    assert "ko.txt: share" in err and "pieces/word" in err
    report = json.loads((out / "fertility.json").read_text())
    assert set(report) == {str(WIKI_TINY), str(ko)}
    for r in report.values():
        assert r["pieces_per_word"] >= 1 and 0 <= r["byte_fallback_rate"] < 0.5
    config = json.loads((out / "tokenizer_config.json").read_text())
    assert config["trained_with"]["sampling_alpha"] == 0.7
    assert cli.main(argv[:4] + ["--out", str(tmp_path / "t2"), "--sampling-alpha", "0.7"]) == 2
    assert "needs two or more --corpus" in capsys.readouterr().err
