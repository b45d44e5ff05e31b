"""End-to-end tests of `jaxbert tokenizer train` and `jaxbert data prepare|inspect`."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from jaxbert.cli import data as commands
from jaxbert.data import prepare
from jaxbert.errors import UserError

REPO = Path(__file__).parents[2]
SHIPPED = REPO / "corpus" / "wiki_sample" / "wiki_02.gz"  # the smallest shipped file
INSPECT_KEYS = {
    "tokens", "input_ids", "original_ids", "segment_ids", "input_mask", "masked_positions",
    "masked_ids", "masked_weights", "next_sentence_label", "doc_a", "doc_b",
}  # fmt: skip


def _run(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="jaxbert")
    commands.add_parsers(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args([str(a) for a in argv])
    return args.func(args)


@pytest.fixture(scope="module")
def shipped_prepared(tmp_path_factory) -> Path:
    """Trains a 2,000-piece tokenizer on a shipped corpus file and prepares it via the CLI."""
    root = tmp_path_factory.mktemp("e2e")
    assert _run("tokenizer", "train", "--corpus", SHIPPED, "--out", root / "tok",
                "--vocab-size", "2000") == 0  # fmt: skip
    assert _run("data", "prepare", "--corpus", SHIPPED, "--tokenizer", root / "tok",
                "--out", root / "prep", "--workers", "2") == 0  # fmt: skip
    return root


def test_end_to_end_on_the_shipped_corpus(shipped_prepared, capsys):
    """tokenizer train → data prepare → data inspect on a shipped corpus: statistics hold
    (≈15% selected, 80/10/10, ≈50% NSP, IsNext adjacent, no specials touched)."""
    out = shipped_prepared / "inspect.jsonl"
    assert _run("data", "inspect", "--prepared", shipped_prepared / "prep", "--n", "600",
                "--out", out) == 0  # fmt: skip
    summary = json.loads(capsys.readouterr().out)
    lines = out.read_text().splitlines()
    assert len(lines) == 600
    record = json.loads(lines[0])
    assert set(record) >= INSPECT_KEYS
    assert len(record["tokens"]) == 128 and record["tokens"][0] == "[CLS]"
    assert abs(summary["selected_fraction_of_non_special"] - 0.15) < 0.01
    assert abs(summary["mask_fraction"] - 0.8) < 0.04
    assert abs(summary["random_fraction"] - 0.1) < 0.03
    assert abs(summary["random_next_fraction"] - 0.5) < 0.07
    assert summary["is_next_adjacent_fraction"] == 1.0
    assert summary["special_tokens_selected"] == summary["special_tokens_substituted"] == 0
    assert (
        summary["random_replacements_in_top100_tokens"]
        > 10 * summary["uniform_mass_of_top100_tokens"]
    )


def test_commands_are_idempotent(shipped_prepared, capsys):
    """Re-running train and prepare with the same inputs does nothing and says so."""
    manifest = shipped_prepared / "prep" / prepare.MANIFEST_NAME
    mtime = manifest.stat().st_mtime_ns
    assert _run("tokenizer", "train", "--corpus", SHIPPED, "--out", shipped_prepared / "tok",
                "--vocab-size", "2000") == 0  # fmt: skip
    assert _run("data", "prepare", "--corpus", SHIPPED, "--tokenizer", shipped_prepared / "tok",
                "--out", shipped_prepared / "prep") == 0  # fmt: skip
    assert manifest.stat().st_mtime_ns == mtime
    assert capsys.readouterr().err.count("up to date") == 2


def test_inspect_whole_word_on_eval_split(shipped_prepared, capsys):
    """inspect accepts pipeline options (whole-word masking, eval split)."""
    out = shipped_prepared / "ww.jsonl"
    assert _run("data", "inspect", "--prepared", shipped_prepared / "prep", "--n", "50",
                "--out", out, "--masking", "whole_word", "--split", "eval",
                "--eval-fraction", "0.1") == 0  # fmt: skip
    summary = json.loads(capsys.readouterr().out)
    assert 0.1 < summary["selected_fraction_of_non_special"] <= 0.16


def test_user_mistakes_raise_user_errors(tmp_path):
    """Missing corpus, missing tokenizer and a bad --n are UserErrors (printed by the CLI)."""
    with pytest.raises(UserError, match="does not exist"):
        _run("tokenizer", "train", "--corpus", tmp_path / "nope", "--out", tmp_path / "t")
    with pytest.raises(UserError, match="does not exist"):
        _run("data", "prepare", "--corpus", SHIPPED, "--tokenizer", tmp_path / "x.model",
             "--out", tmp_path / "p")  # fmt: skip
    with pytest.raises(UserError, match="--n must be"):
        _run("data", "inspect", "--prepared", tmp_path, "--n", "0", "--out", tmp_path / "o")
