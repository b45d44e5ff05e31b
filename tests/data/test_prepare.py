"""Tests for jaxbert.data.prepare and jaxbert.data.store: shards, manifest, idempotence."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from jaxbert.data import corpus, prepare
from jaxbert.data.store import PreparedCorpus, read_manifest
from jaxbert.data.tokenizer import load_tokenizer
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


def test_interrupted_prepare_leaves_no_manifest(tmp_path, sp_model, monkeypatch):
    """A failure after shards are written never leaves a manifest claiming completion."""
    out = tmp_path / "out"
    prepare.prepare([FIXTURES / "plain.txt"], sp_model, out, workers=0, progress=False)

    def boom(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(prepare, "_finish", boom)
    with pytest.raises(KeyboardInterrupt):
        prepare.prepare([WIKI_TINY], sp_model, out, workers=0, progress=False)
    assert not (out / prepare.MANIFEST_NAME).exists()
    with pytest.raises(UserError, match="manifest.json not found"):
        PreparedCorpus(out)


def test_parallel_workers_give_identical_shards(tmp_path, sp_model, prepared_dir):
    """2 worker processes and small shards produce the same token stream as in-process."""
    out = tmp_path / "par"
    prepare.prepare(
        [WIKI_TINY], sp_model, out, workers=2, shard_max_tokens=1000, chunk_docs=3, progress=False
    )
    serial, parallel = PreparedCorpus(prepared_dir), PreparedCorpus(out)
    assert len(parallel.shard_tokens) > 1
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
