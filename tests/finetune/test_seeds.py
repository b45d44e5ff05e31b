"""Multi-seed fine-tuning: `config.seeds` runs each seed as its own run and metrics.json
holds their mean ± std; bad seed values are one error naming the key."""

from __future__ import annotations

import json
import statistics

import pytest

from jaxbert import cli
from jaxbert.errors import UserError
from jaxbert.finetune.seeds import aggregate, parse_seeds
from tests.finetune.test_run import CONFIGS, overrides


@pytest.mark.parametrize(
    ("value", "base", "expected"),
    [("1", 0, [0]), ("3", 5, [5, 6, 7]), (3, 0, [0, 1, 2]), ("0,4,9", 2, [0, 4, 9]),
     ("[1, 2]", 0, [1, 2]), ([3, 1], 0, [3, 1])],
)  # fmt: skip
def test_seeds_are_a_count_from_seed_or_an_explicit_list(value, base, expected):
    """A count N gives seed..seed+N-1; a comma list (or a list value) is taken as is."""
    assert parse_seeds(value, base) == expected


@pytest.mark.parametrize("value", ["0", "-2", "abc", "1,1", "1,-3", ""])
def test_bad_seeds_name_the_key(value):
    """seeds < 1, non-integers, repeated or negative seeds: a UserError naming config.seeds."""
    with pytest.raises(UserError, match=r"config\.seeds="):
        parse_seeds(value, 0)


def test_aggregate_is_the_mean_and_sample_std_of_each_metric():
    """dev and every test split: mean and n−1 std over seeds, hand-checked; per-seed kept."""
    runs = [
        {"task": "sst2", "metric": "accuracy", "dev": {"accuracy": a}, "test": {"t": {"x": x}},
         "best_epoch": 1, "train_time_s": 2.0}
        for a, x in ((0.5, 1.0), (0.7, 2.0), (0.9, 6.0))
    ]  # fmt: skip
    out = aggregate(runs, [0, 1, 2])
    assert out["dev"]["accuracy"] == pytest.approx(0.7)
    assert out["dev_std"]["accuracy"] == pytest.approx(0.2)
    assert out["test"]["t"]["x"] == pytest.approx(3.0)
    assert out["test_std"]["t"]["x"] == pytest.approx(statistics.stdev([1.0, 2.0, 6.0]))
    assert [p["seed"] for p in out["per_seed"]] == [0, 1, 2]
    assert out["train_time_s"] == pytest.approx(6.0)


@pytest.mark.slow  # four fine-tuning runs; the aggregation itself is tested above
def test_cli_seeds_writes_each_seed_and_their_mean(tmp_path, capsys):
    """`finetune --config.seeds=2` on the SST-2 fixture: seed-0/ and seed-1/ each hold a
    complete run; the top metrics.json's dev mean is the mean of theirs; a rerun after
    deleting only the top summary reuses both seeds (no retraining) and rewrites it."""
    argv = ["finetune", "--config", f"{CONFIGS / 'glue.py'}:sst2",
            *overrides(tmp_path, seeds="2")]  # fmt: skip
    assert cli.main(argv) == 0
    out = tmp_path / "run"
    per = [json.loads((out / f"seed-{s}" / "metrics.json").read_text()) for s in (0, 1)]
    top = json.loads((out / "metrics.json").read_text())
    assert top["seeds"] == [0, 1]
    mean = statistics.fmean(p["dev"]["accuracy"] for p in per)
    assert top["dev"]["accuracy"] == pytest.approx(mean)
    assert "2 seeds [0, 1] (mean ± std)" in capsys.readouterr().out
    (out / "metrics.json").unlink()
    assert cli.main(argv) == 0
    assert "reusing its metrics.json" in capsys.readouterr().out
    assert json.loads((out / "metrics.json").read_text())["dev"] == top["dev"]
    assert cli.main(argv) == 2  # a finished multi-seed run is refused without overwrite
