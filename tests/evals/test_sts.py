"""STS-B zero-shot scoring: Spearman of pair cosines, corrections fitted on train only."""

from __future__ import annotations

import numpy as np
import pytest

from jaxbert.errors import UserError
from jaxbert.evals import run, sts

HEADER = "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\tscore\n"


def _write(root, name, pairs):
    d = root / sts.DIR
    d.mkdir(parents=True, exist_ok=True)
    rows = [f"{i}\tg\tf\ty\to\ts\ts\t{a}\t{b}\t{s}\n" for i, (a, b, s) in enumerate(pairs)]
    (d / name).write_text(HEADER + "".join(rows))


def test_spearman_of_cosines_against_scores(tmp_path):
    """Vectors whose pair cosines rise with the score give ρ = 1; the train split only
    feeds the corrections (its sentences are embedded, never scored)."""
    pairs = [(f"a{i}", f"b{i}", float(i)) for i in range(6)]
    _write(tmp_path, "dev.tsv", pairs)
    _write(tmp_path, "train.tsv", [("t1", "t2", 1.0), ("t3", "t4", 2.0)])
    angle = {f"a{i}": 0.0 for i in range(6)} | {f"b{i}": 1.5 - 0.25 * i for i in range(6)}
    seen = []

    def vectors(texts):
        seen.append(list(texts))
        return np.array([[np.cos(angle.get(t, 0.3)), np.sin(angle.get(t, 0.3))] for t in texts])

    res = sts.evaluate(vectors, tmp_path, run.fitter(["none", "center"]))
    assert res["pairs"] == 6 and res["results"]["none"]["spearman"] == pytest.approx(1.0)
    assert set(res["results"]) == {"none", "center"}
    assert seen[1] == ["t1", "t3", "t2", "t4"]


def test_a_malformed_row_names_file_and_line(tmp_path):
    _write(tmp_path, "dev.tsv", [("a", "b", 1.0)])
    path = tmp_path / sts.DIR / "dev.tsv"
    path.write_text(path.read_text() + "1\tg\tf\n")
    with pytest.raises(UserError, match=r"dev.tsv:3: expected 10 tab-separated fields"):
        sts.read_pairs(path)
