"""benchmarks/quality.py: the scratch arm is the pretrained run's architecture, changed
only where asked."""

from __future__ import annotations

import argparse
import importlib.util
import json

import pytest

from tests.conftest import REPO

_spec = importlib.util.spec_from_file_location("quality", REPO / "benchmarks" / "quality.py")
quality = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(quality)


def test_scratch_copies_the_run_model_and_applies_only_the_asked_changes(tmp_path):
    """Scratch gets every model key of the run and its tokenizer; --scratch-model changes
    the named keys of the scratch arm only; the pretrained arm is just the run."""
    model = {"hidden_size": 128, "attention_init": "local", "position_init": "sinusoidal_linear"}
    (tmp_path / "config.json").write_text(json.dumps({"model": model, "tokenizer": "/tok"}))
    plain = quality.init_overrides("scratch", tmp_path)
    assert "--config.model.attention_init=local" in plain
    assert "--config.tokenizer=/tok" in plain and "--config.init=scratch" in plain
    changed = quality.init_overrides("scratch", tmp_path, {"attention_init": "normal"})
    assert "--config.model.attention_init=normal" in changed
    assert "--config.model.attention_init=local" not in changed
    assert "--config.model.position_init=sinusoidal_linear" in changed
    assert quality.init_overrides("pretrained", tmp_path, {"attention_init": "normal"}) == [
        f"--config.init={tmp_path}"
    ]


def test_scratch_model_option_needs_key_equals_value():
    """A --scratch-model without '=' is refused by argparse, not passed on half-formed."""
    assert quality.key_value("attention_init=normal") == ("attention_init", "normal")
    with pytest.raises(argparse.ArgumentTypeError, match="expected KEY=VALUE"):
        quality.key_value("attention_init")


def _arm(mean: float) -> dict:
    return {"metric": "accuracy", "lr": 3e-4, "mean": mean, "std": 0.01}


def test_merge_joins_arms_run_as_separate_invocations(tmp_path):
    """Per-arm files merge arm by arm (a task's arms from two files end up side by side,
    later files win for the same arm), the run description stays the first file's, and
    the table then has that task's row."""
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(json.dumps({"pretrained": "run", "tasks": {"sst2": {"pretrained": _arm(0.8)}}}))
    b.write_text(
        json.dumps(
            {
                "pretrained": "other",
                "tasks": {"sst2": {"scratch": _arm(0.7), "pretrained": _arm(0.9)}},
            }
        )
    )
    merged = quality.merge([a, b])
    assert merged["pretrained"] == "run"
    assert merged["tasks"]["sst2"]["pretrained"]["mean"] == 0.9
    assert merged["tasks"]["sst2"]["scratch"]["mean"] == 0.7
    assert any(row.startswith("| sst2 (accuracy) | 90.0") for row in quality.summarise(merged))


def test_table_keeps_a_task_that_has_an_extra_arm():
    """A third arm (e.g. scratch at another init) does not drop the task from the table."""
    results = {"tasks": {"sst2": {"pretrained": _arm(0.8), "scratch": _arm(0.7),
                                  "scratch_normal_init": _arm(0.75)}}}  # fmt: skip
    rows = quality.summarise(results)
    assert any("sst2" in r and "+10.0" in r for r in rows)
    assert rows[-1].startswith("| **average** (1 tasks)")


def test_merge_refuses_a_file_without_a_tasks_table(tmp_path):
    """A wrong file is named, not merged into an empty table."""
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"seeds": 3}))
    with pytest.raises(SystemExit, match="bad.json: no 'tasks' table"):
        quality.merge([bad])


def _point(lr: float, mean: float, wall: float, grid: dict) -> dict:
    return {"metric": "f1", "lr": lr, "mean": mean, "std": 0.0, "per_seed": [mean],
            "wall_s_all_lrs": wall, "all_lrs": grid}  # fmt: skip


def test_merge_finishes_an_arms_lr_grid_from_another_invocation(tmp_path):
    """An arm measured at {3e-4, 1e-3} and later at 1e-4 merges into the three-point grid;
    its best point (and that point's seeds) is the best of all three, whichever file has
    it, and the wall times of disjoint grids add up."""
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    grid_a = {"0.0003": 0.75, "0.001": 0.80}
    a.write_text(json.dumps({"tasks": {"mrpc": {"scratch": _point(1e-3, 0.80, 60, grid_a)}}}))
    b.write_text(
        json.dumps({"tasks": {"mrpc": {"scratch": _point(1e-4, 0.70, 30, {"0.0001": 0.70})}}})
    )
    arm = quality.merge([a, b])["tasks"]["mrpc"]["scratch"]
    assert arm["lr"] == 1e-3 and arm["per_seed"] == [0.80]
    assert arm["all_lrs"] == {"0.0001": 0.70, "0.0003": 0.75, "0.001": 0.80}
    assert arm["wall_s_all_lrs"] == 90
    b.write_text(
        json.dumps({"tasks": {"mrpc": {"scratch": _point(1e-4, 0.85, 30, {"0.0001": 0.85})}}})
    )
    assert quality.merge([a, b])["tasks"]["mrpc"]["scratch"]["lr"] == 1e-4


def test_merge_takes_the_newer_value_of_a_point_both_files_measured(tmp_path):
    """A re-measured best point is superseded, not kept because it was higher."""
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(
        json.dumps({"tasks": {"rte": {"pretrained": _point(1e-3, 0.9, 60, {"0.001": 0.9})}}})
    )
    grid_b = {"0.001": 0.6, "0.0003": 0.5}
    b.write_text(json.dumps({"tasks": {"rte": {"pretrained": _point(1e-3, 0.6, 50, grid_b)}}}))
    arm = quality.merge([a, b])["tasks"]["rte"]["pretrained"]
    assert arm["mean"] == 0.6 and arm["all_lrs"]["0.001"] == 0.6 and arm["wall_s_all_lrs"] == 60


def test_table_reads_squad_as_percent_and_shows_extra_arms():
    """SQuAD's F1 is already ×100 (13.3, not 1330); an extra arm gets its own column, and
    its average only when it covers every averaged task."""
    results = {"tasks": {
        "squad": {"pretrained": _point(1e-3, 13.3, 1, {}), "scratch": _point(1e-3, 10.6, 1, {})},
        "sst2": {"pretrained": _arm(0.8), "scratch": _arm(0.7), "scratch_normal_init": _arm(0.75)},
    }}  # fmt: skip
    rows = quality.summarise(results)
    assert rows[0].endswith("| scratch_normal_init |")
    assert any(r.startswith("| squad (f1) | 13.3 ± 0.0 | 10.6 ± 0.0 | +2.7") for r in rows)
    assert any(r.startswith("| sst2") and r.endswith("| 75.0 ± 1.0 |") for r in rows)
    assert rows[-1] == "| **average** (2 tasks) | 46.6 | 40.3 | +6.4 | | – |"
