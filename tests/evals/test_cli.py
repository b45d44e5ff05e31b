"""`jaxbert eval-embeddings`: every task on the synthetic data, one JSON with the
settings; missing data and bad settings are refused before any model is loaded."""

from __future__ import annotations

import json

import pytest

from jaxbert import cli
from tests.conftest import WIKI_TINY
from tests.helpers import micro_embedder


def test_all_tasks_write_one_json(eval_data, tmp_path, capsys):
    ckpt = micro_embedder(tmp_path)[1]
    out = tmp_path / "res.json"
    argv = ["eval-embeddings", "--init", str(ckpt), "--data", str(eval_data), "--corpus",
            str(WIKI_TINY), "--sentences", "50", "--corrections", "none,center,abtt",
            "--output", str(out)]  # fmt: skip
    assert cli.main(argv) == 0
    res = json.loads(out.read_text())
    assert res["settings"]["layer"] == "last4" and set(res["tasks"]) == {"wic", "wsd", "wordsim"}
    assert set(res["tasks"]["wic"]["results"]) == {"none", "center", "abtt"}
    assert set(res["tasks"]["wsd"]["results"]) == {"mfs", "none", "center", "abtt"}
    assert set(res["tasks"]["wordsim"]["results"]["table"]) == {"none", "center", "abtt"}
    printed = capsys.readouterr().out
    assert "ALL F1" in printed and "dev" in printed and "mean ρ" in printed


@pytest.mark.parametrize(
    "extra, error",
    [(["--data", "{tmp}/nowhere"], "--task wic: .*nowhere/wsd/WiC_dataset/train not found"),
     (["--corrections", "none,pca"], "--corrections: unknown \\['pca'\\]"),
     (["--output", "{tmp}/no/dir/r.json"], "--output .*r.json: .*does not exist")],
)  # fmt: skip
def test_bad_settings_are_refused(eval_data, tmp_path, capsys, extra, error):
    import re

    argv = ["eval-embeddings", "--init", str(tmp_path / "not-loaded"), "--data", str(eval_data),
            "--output", str(tmp_path / "r.json")]  # fmt: skip
    argv += [a.replace("{tmp}", str(tmp_path)) for a in extra]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert re.search(error, err) and "Traceback" not in err, err
    assert not (tmp_path / "r.json").exists()
