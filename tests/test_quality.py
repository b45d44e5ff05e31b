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
    later files win for the same arm), and the table then has that task's row."""
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(json.dumps({"pretrained": "run", "tasks": {"sst2": {"pretrained": _arm(0.8)}}}))
    b.write_text(json.dumps({"tasks": {"sst2": {"scratch": _arm(0.7), "pretrained": _arm(0.9)}}}))
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
