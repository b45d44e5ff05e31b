"""End-to-end tests of `jaxbert tokenizer train` and `jaxbert data prepare|inspect`."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from jaxbert import cli
from jaxbert.cli import data as commands
from jaxbert.data import prepare
from jaxbert.errors import UserError

REPO = Path(__file__).parents[2]
SHIPPED = REPO / "corpus" / "wiki_sample" / "wiki_02.gz"  # the smallest shipped file
WIKI_TINY = REPO / "tests" / "fixtures" / "data" / "wiki_tiny.txt"
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


def _main(capfd, *argv: str) -> tuple[int, list[str]]:
    """Runs the real `jaxbert` entry point; returns its exit code and stderr lines (fd 2,
    so sentencepiece's C++ output would show here too)."""
    code = cli.main([str(a) for a in argv])
    return code, capfd.readouterr().err.splitlines()


def test_empty_corpus_tokenizer_error_is_one_clear_line(tmp_path, capfd):
    """Training on a corpus of blank lines prints exactly one error line (no traceback, no
    sentencepiece INTERNAL check) and creates no output."""
    (tmp_path / "blank.txt").write_text("\n\n\n")
    code, err = _main(capfd, "tokenizer", "train", "--corpus", tmp_path / "blank.txt",
                      "--out", tmp_path / "tok")  # fmt: skip
    assert code == cli.EXIT_USER_ERROR
    assert len(err) == 1 and "error: the corpus has no sentences" in err[0], err
    assert "blank.txt" in err[0] and not (tmp_path / "tok").exists()


def test_tokenizer_log_goes_to_file_and_vocab_too_large_is_reported(tmp_path, capfd):
    """tokenizer train keeps sentencepiece's log out of the terminal (it is in
    OUT/sentencepiece.log); asking for more pieces than the corpus supports is one error
    line stating the maximum, and the trained tokenizer is left as it was."""
    out = tmp_path / "tok"
    code, err = _main(capfd, "tokenizer", "train", "--corpus", WIKI_TINY, "--out", out,
                      "--vocab-size", "400")  # fmt: skip
    assert code == 0 and all(line.startswith("tokenizer train: ") for line in err), err
    assert "Saving model" in (out / "sentencepiece.log").read_text()
    before = (out / "tokenizer.model").read_bytes()
    code, err = _main(capfd, "tokenizer", "train", "--corpus", WIKI_TINY, "--out", out,
                      "--vocab-size", "60000")  # fmt: skip
    assert code == cli.EXIT_USER_ERROR
    assert all(line.startswith(("tokenizer train: ", "jaxbert tokenizer: ")) for line in err)
    (error,) = [line for line in err if ": error: " in line]
    assert "--vocab-size 60000 is more than" in error and "use --vocab-size " in error
    assert (out / "tokenizer.model").read_bytes() == before


def test_undecodable_lines_warn_in_tokenizer_train_and_strict_refuses(tmp_path, capsys):
    """tokenizer train warns about lines that are not UTF-8 with the count and first
    file:line, like data prepare; --strict refuses them with a UserError naming file:line."""
    src = tmp_path / "latin1.txt"
    text = "".join(f"Sentence number {i} is plain.\nCafé number {i}.\n" for i in range(50))
    src.write_bytes(text.encode("latin-1"))
    assert _run("tokenizer", "train", "--corpus", src, "--out", tmp_path / "tok",
                "--vocab-size", "290") == 0  # fmt: skip
    err = capsys.readouterr().err
    assert (
        f"warning: skipped 50 line(s) that are not valid UTF-8 in 1 file(s), first at {src}:2"
        in err
    )
    with pytest.raises(UserError, match=f"{src}:2: not valid UTF-8"):
        _run("tokenizer", "train", "--corpus", src, "--out", tmp_path / "tok", "--strict",
             "--force")  # fmt: skip
    with pytest.raises(UserError, match=f"{src}:2: not valid UTF-8"):
        _run("data", "prepare", "--corpus", src, "--tokenizer", tmp_path / "tok",
             "--out", tmp_path / "prep", "--strict")  # fmt: skip


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("tokenizer", "train", "--vocab-size", "5"), "--vocab-size 5 is too small"),
        (("tokenizer", "train", "--max-sentences", "0"), "--max-sentences must be >= 1"),
        (("data", "prepare", "--shard-max-tokens", "0"), "--shard-max-tokens must be >= 1"),
        (("data", "prepare", "--workers", "-1"), "--workers must be >= 0"),
        (("data", "inspect", "--n", "0"), "--n must be >= 1"),
        (("data", "inspect", "--mask-prob", "0"), r"--mask-prob must be in \(0, 0.8\]"),
        (("data", "inspect", "--mask-prob", "0.9"), r"--mask-prob must be in \(0, 0.8\]"),
        (("data", "inspect", "--max-seq-length", "4"), "--max-seq-length must be >= 8"),
        (("data", "inspect", "--max-predictions-per-seq", "-1"), "--max-predictions-per-seq"),
        (("data", "inspect", "--eval-fraction", "1"), r"--eval-fraction must be in \[0, 1\)"),
        (("data", "inspect", "--eval-fraction", "-0.1"), r"--eval-fraction must be in"),
        (("data", "inspect", "--short-seq-prob", "2"), r"--short-seq-prob must be in"),
        (("data", "inspect", "--seed", "-1"), "--seed must be >= 0"),
    ],
)
def test_numeric_flags_are_checked(tmp_path, argv, message):
    """Each out-of-range numeric flag is a UserError naming the flag, before any work."""
    required = {
        "tokenizer": ["--corpus", WIKI_TINY, "--out", tmp_path / "t"],
        "data": {
            "prepare": ["--corpus", WIKI_TINY, "--tokenizer", tmp_path, "--out", tmp_path / "p"],
            "inspect": ["--prepared", tmp_path, "--out", tmp_path / "o.jsonl"],
        },
    }
    group, command, *flags = argv
    extra = required[group] if group == "tokenizer" else required[group][command]
    with pytest.raises(UserError, match=message):
        _run(group, command, *flags, *extra)
    assert sorted(p.name for p in tmp_path.iterdir()) == []
