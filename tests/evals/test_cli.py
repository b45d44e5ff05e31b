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
            "--output", str(out), "--answers", str(tmp_path / "answers")]  # fmt: skip
    assert cli.main(argv) == 0
    res = json.loads(out.read_text())
    _answers_rescore_to_the_reported_numbers(tmp_path / "answers", eval_data, res["tasks"])
    assert res["settings"]["layer"] == "last4" and set(res["tasks"]) == {"wic", "wsd", "wordsim"}
    assert set(res["tasks"]["wic"]["results"]) == {"none", "center", "abtt"}
    assert set(res["tasks"]["wsd"]["results"]) == {"mfs", "none", "center", "abtt"}
    assert set(res["tasks"]["wordsim"]["results"]["table"]) == {"none", "center", "abtt"}
    printed = capsys.readouterr().out
    assert "ALL F1" in printed and "dev" in printed and "mean ρ" in printed


def _answers_rescore_to_the_reported_numbers(answers, data, tasks):
    """--answers: WSD key files (`instance_id sense_key`) and WiC T/F lines that, scored
    against the gold files, give the numbers in the results JSON."""
    from jaxbert.evals import run, wsd

    gold = wsd.read_keys(data / wsd.FRAMEWORK / "ALL.gold.key.txt")
    for system, res in tasks["wsd"]["results"].items():
        keys = dict(
            line.split(" ")
            for line in (answers / "wsd" / f"{system}.key.txt").read_text().splitlines()
        )
        assert wsd.score(gold, keys)["F1"] == res["scores"]["ALL"]["F1"]
    for split in ("train", "dev"):
        labels = (data / run.WIC_DIR / split / f"{split}.gold.txt").read_text().split()
        pred = (answers / "wic" / "none" / f"{split}.txt").read_text().split()
        acc = sum(a == b for a, b in zip(pred, labels, strict=True)) / len(labels)
        assert acc == tasks["wic"]["results"]["none"][f"{split}_accuracy"]


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
