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
