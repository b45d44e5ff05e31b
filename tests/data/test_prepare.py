"""Tests for jaxbert.data.prepare and jaxbert.data.store: shards, manifest, idempotence."""

from __future__ import annotations

import gzip
import json
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from jaxbert import fs
from jaxbert.data import corpus, prepare
from jaxbert.data.store import PreparedCorpus, read_manifest
from jaxbert.data.tokenizer import file_sha256, load_tokenizer
from jaxbert.errors import UserError

FIXTURES = Path(__file__).parents[1] / "fixtures" / "data"
WIKI_TINY = FIXTURES / "wiki_tiny.txt"


def test_shards_hold_exactly_the_tokenized_sentences(prepared_dir, sp_model):
    """Every document's sentences, split and encoded directly, equal what the shards hold."""
    tok = load_tokenizer(sp_model)
    store = PreparedCorpus(prepared_dir)
    docs = list(corpus.iter_corpus([WIKI_TINY]))
    assert store.num_documents == len(docs)
    for d, doc in enumerate(docs):
        expected = [tok.encode(s) for s in corpus.split_sentences(doc)]
        assert [s.tolist() for s in store.document_sentences(d)] == expected


def test_manifest_counts_and_unigram(prepared_dir, sp_model):
    """The manifest's counts match the shards; unigram counts sum to the token count."""
    m = read_manifest(prepared_dir)
    store = PreparedCorpus(prepared_dir)
    assert m["documents"] == store.num_documents
    assert m["sentences"] == len(store.sentence_lengths)
    assert m["tokens"] == int(store.sentence_lengths.sum()) == int(store.unigram_counts.sum())
    assert m["tokenizer"]["sha256"] == load_tokenizer(sp_model).fingerprint()
    assert m["token_dtype"] == "uint16"
    assert (prepared_dir / m["tokenizer"]["file"]).is_file()  # self-contained directory


def test_rerun_is_a_no_op_and_changed_inputs_rebuild(tmp_path, sp_model):
    """Same inputs: nothing rewritten. Changed corpus: rebuilt with the new counts."""
    src = tmp_path / "corpus.txt"
    src.write_text((FIXTURES / "plain.txt").read_text())
    out = tmp_path / "out"
    first = prepare.prepare([src], sp_model, out, workers=0, progress=False)
    mtime = (out / prepare.MANIFEST_NAME).stat().st_mtime_ns
    assert prepare.prepare([src], sp_model, out, workers=0, progress=False) == first
    assert (out / prepare.MANIFEST_NAME).stat().st_mtime_ns == mtime
    src.write_text(src.read_text() + "\nA fourth document here.\n")
    assert prepare.prepare([src], sp_model, out, workers=0, progress=False)["documents"] == 4


def _checksums(directory: Path) -> dict[str, str]:
    return {
        str(f.relative_to(directory)): file_sha256(f)
        for f in sorted(directory.rglob("*"))
        if f.is_file()
    }


def _siblings(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.parent.iterdir() if p.name != directory.name)


@pytest.fixture
def complete_output(tmp_path, sp_model) -> Path:
    """A complete prepared directory (several shards) beside nothing else in its parent."""
    out = tmp_path / "parent" / "out"
    prepare.prepare([WIKI_TINY], sp_model, out, workers=0, shard_max_tokens=500, progress=False)
    return out


def _truncated_gzip(tmp_path: Path) -> Path:
    path = tmp_path / "cut.gz"
    path.write_bytes(gzip.compress(WIKI_TINY.read_bytes())[:3000])
    return path


def _blank_lines(tmp_path: Path) -> Path:
    path = tmp_path / "blank.txt"
    path.write_text("\n\n   \n\n")
    return path


@pytest.mark.parametrize(
    ("make_corpus", "message"),
    [(_truncated_gzip, "cut.gz: not a valid gzip file"), (_blank_lines, "contains no text")],
)
@pytest.mark.parametrize("force", [True, False])
def test_failed_rebuild_keeps_the_previous_output(
    tmp_path, sp_model, complete_output, make_corpus, message, force
):
    """--force, or "inputs changed, rebuilding", over a complete directory with a corpus
    found bad mid-way leaves every old file byte-identical and no staging directory."""
    before = _checksums(complete_output)
    with pytest.raises(UserError, match=message):
        prepare.prepare(
            [make_corpus(tmp_path)], sp_model, complete_output, workers=0, force=force,
            progress=False,
        )  # fmt: skip
    assert _checksums(complete_output) == before
    assert _siblings(complete_output) == []
    assert (
        PreparedCorpus(complete_output).num_documents == read_manifest(complete_output)["documents"]
    )


def test_interrupt_after_shards_keeps_the_previous_output(sp_model, complete_output, monkeypatch):
    """A Ctrl-C after the new shards are written (before the manifest) leaves the old
    output complete and byte-identical, and removes the half-built staging directory."""
    before = _checksums(complete_output)

    def boom(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(prepare, "_finish", boom)
    with pytest.raises(KeyboardInterrupt):
        prepare.prepare(
            [FIXTURES / "plain.txt"], sp_model, complete_output, workers=0, progress=False
        )
    assert _checksums(complete_output) == before and _siblings(complete_output) == []


def test_sigkill_during_rebuild_keeps_the_previous_output(sp_model, complete_output):
    """A rebuild SIGKILLed after its first shard leaves the old output complete and
    unchanged; the next run removes the dead run's staging directory and rebuilds."""
    before = _checksums(complete_output)
    script = f"""
import os, signal
from jaxbert.data import prepare
flush = prepare._ShardWriter.flush
def flush_then_die(self):
    flush(self)
    if self.shards:
        os.kill(os.getpid(), signal.SIGKILL)
prepare._ShardWriter.flush = flush_then_die
prepare.prepare([{str(WIKI_TINY)!r}], {str(sp_model)!r}, {str(complete_output)!r},
                workers=0, force=True, shard_max_tokens=100, progress=False)
"""
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()
    assert _checksums(complete_output) == before
    (stale,) = _siblings(complete_output)
    assert stale.startswith(".out.tmp-") and any((complete_output.parent / stale).iterdir())
    manifest = prepare.prepare(
        [FIXTURES / "plain.txt"], sp_model, complete_output, workers=0, progress=False
    )
    assert manifest["documents"] == 3 and _siblings(complete_output) == []


def test_swap_without_rename_exchange_and_recovery(sp_model, complete_output, monkeypatch):
    """Where the system cannot exchange two names, two renames are used; an old output a
    killed run had moved aside (target missing) is put back by the next run."""
    monkeypatch.setattr(fs, "_exchange", lambda a, b: False)
    prepare.prepare([FIXTURES / "plain.txt"], sp_model, complete_output, progress=False)
    assert read_manifest(complete_output)["documents"] == 3
    assert _siblings(complete_output) == []
    before = _checksums(complete_output)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    aside = complete_output.parent / f".out.old-{int(dead.stdout)}"
    complete_output.rename(aside)  # as if killed between the two renames
    prepare.prepare([FIXTURES / "plain.txt"], sp_model, complete_output, progress=False)
    assert _checksums(complete_output) == before and _siblings(complete_output) == []


def test_foreign_files_in_the_output_are_refused(tmp_path, sp_model):
    """An --out directory holding files prepare did not write is refused up front (the
    swap would drop them), naming them; the files stay."""
    out = tmp_path / "out"
    out.mkdir()
    (out / "README.txt").write_text("mine")
    with pytest.raises(UserError, match=r"holds README.txt, which `jaxbert data prepare`"):
        prepare.prepare([WIKI_TINY], sp_model, out, workers=0, progress=False)
    assert [p.name for p in out.iterdir()] == ["README.txt"]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"shard_max_tokens": 0}, "--shard-max-tokens must be >= 1, got 0"),
        ({"workers": -1}, "--workers must be >= 0"),
        ({"chunk_docs": 0}, "chunk_docs must be >= 1"),
    ],
)
def test_numeric_arguments_are_checked(tmp_path, sp_model, options, message):
    """Out-of-range numbers are UserErrors naming the flag, raised before any work."""
    with pytest.raises(UserError, match=message):
        prepare.prepare([WIKI_TINY], sp_model, tmp_path / "o", progress=False, **options)
    assert not (tmp_path / "o").exists()


def test_undecodable_lines_warn_with_location_and_strict_refuses(tmp_path, sp_model, capsys):
    """Undecodable lines are skipped with a warning naming the count and first file:line
    (and recorded in the manifest); strict refuses them, even over an existing output."""
    src = tmp_path / "latin1.txt"
    src.write_bytes("Plain text line.\nCafé crème.\n".encode("latin-1"))
    out = tmp_path / "out"
    manifest = prepare.prepare([src], sp_model, out, workers=0, progress=False)
    assert f"skipped 1 line(s) that are not valid UTF-8 in 1 file(s), first at {src}:2" in (
        capsys.readouterr().err
    )
    assert manifest["skipped"]["undecodable_lines"] == 1
    before = _checksums(out)
    with pytest.raises(UserError, match=f"{src}:2: not valid UTF-8"):
        prepare.prepare([src], sp_model, out, workers=0, strict=True, progress=False)
    assert _checksums(out) == before


def test_unreadable_manifest_is_rebuilt(tmp_path, sp_model):
    """A manifest that is not JSON does not crash the up-to-date check: it is rebuilt."""
    out = tmp_path / "out"
    prepare.prepare([FIXTURES / "plain.txt"], sp_model, out, workers=0, progress=False)
    (out / prepare.MANIFEST_NAME).write_text("{")
    prepare.prepare([FIXTURES / "plain.txt"], sp_model, out, workers=0, progress=False)
    assert read_manifest(out)["documents"] == 3


def test_parallel_workers_give_identical_shards(tmp_path, sp_model, prepared_dir):
    """2 worker processes and small shards produce the same token stream as in-process."""
    out = tmp_path / "par"
    prepare.prepare(
        [WIKI_TINY], sp_model, out, workers=2, shard_max_tokens=1000, chunk_docs=3, progress=False
    )
    serial, parallel = PreparedCorpus(prepared_dir), PreparedCorpus(out)
    assert len(parallel.shard_names) > 1
    for d in range(serial.num_documents):
        a = [s.tolist() for s in serial.document_sentences(d)]
        assert a == [s.tolist() for s in parallel.document_sentences(d)]


def test_empty_corpus_is_a_user_error(tmp_path, sp_model):
    """A corpus with no text raises a UserError and writes no manifest."""
    (tmp_path / "empty.txt").write_text("\n")
    with pytest.raises(UserError, match="contains no text"):
        prepare.prepare(
            [tmp_path / "empty.txt"], sp_model, tmp_path / "o", workers=0, progress=False
        )
    assert not (tmp_path / "o" / prepare.MANIFEST_NAME).exists()


def test_corrupt_manifest_is_a_user_error(tmp_path):
    """A manifest that is not JSON, or of another format, is reported by file name."""
    (tmp_path / prepare.MANIFEST_NAME).write_text("{")
    with pytest.raises(UserError, match="manifest.json: not valid JSON"):
        read_manifest(tmp_path)
    (tmp_path / prepare.MANIFEST_NAME).write_text(json.dumps({"format": "other"}))
    with pytest.raises(UserError, match="expected 'jaxbert-prepared-v1'"):
        read_manifest(tmp_path)


def test_gather_reads_across_shards(tmp_path, sp_model):
    """`gather` returns the tokens at global positions whichever shard holds them."""
    out = tmp_path / "sharded"
    prepare.prepare([WIKI_TINY], sp_model, out, workers=0, shard_max_tokens=500, progress=False)
    store = PreparedCorpus(out)
    docs = np.arange(store.num_documents)
    first_sentence = store.doc_sentence_start[:-1]
    positions = store.sentence_token_start[first_sentence]
    expected = [store.document_sentences(d)[0][0] for d in docs]
    assert store.gather(positions, docs).tolist() == expected
    assert store.gather(positions, np.full_like(docs, -1)).tolist() == [0] * len(docs)
