"""Tests for jaxbert.data.instances: google-bert sentence-pair and NSP rules."""

from __future__ import annotations

import random

import numpy as np
import pytest

from jaxbert.data import instances
from jaxbert.data.store import PreparedCorpus
from jaxbert.data.tokenizer import load_tokenizer

MAX_SEQ = 128


def _synthetic(num_docs=200, seed=0):
    """Sentence lengths for `num_docs` documents of 1..30 sentences of 3..40 tokens."""
    rng = np.random.default_rng(seed)
    counts = rng.integers(1, 31, num_docs)
    starts = np.concatenate([[0], np.cumsum(counts)])
    lengths = rng.integers(3, 41, starts[-1])
    return starts, lengths


def _create(starts, lengths, seed=0, epoch=0, docs=None, short_seq_prob=0.1):
    docs = np.arange(len(starts) - 1) if docs is None else docs
    return instances.create_instances(
        starts, lengths, docs, np.arange(len(starts) - 1),
        max_seq_length=MAX_SEQ, short_seq_prob=short_seq_prob, seed=seed, epoch=epoch,
    )  # fmt: skip


def test_is_next_pairs_are_adjacent_and_random_pairs_cross_documents():
    """IsNext: B follows A directly in the same document; random next: another document."""
    starts, lengths = _synthetic()
    table = _create(starts, lengths)
    a_doc, a_s, a_e, b_doc, b_s, b_e, label = table.T
    nxt = label == instances.IS_NEXT
    assert np.all(b_doc[nxt] == a_doc[nxt]) and np.all(b_s[nxt] == a_e[nxt])
    assert np.all(b_doc[~nxt] != a_doc[~nxt])
    assert np.all((a_e > a_s) & (b_e > b_s))
    doc_of = np.searchsorted(starts, np.arange(starts[-1]), side="right") - 1
    assert np.all(doc_of[a_s] == a_doc) and np.all(doc_of[a_e - 1] == a_doc)
    assert np.all(doc_of[b_s] == b_doc) and np.all(doc_of[b_e - 1] == b_doc)


def test_next_sentence_labels_are_balanced():
    """About 50% of instances are random-next (±4%) when chunks have several sentences."""
    rng = np.random.default_rng(1)
    starts = np.concatenate([[0], np.cumsum(rng.integers(40, 80, 300))])
    lengths = rng.integers(3, 10, starts[-1])
    table = _create(starts, lengths)
    assert len(table) > 1000
    assert abs(table[:, 6].mean() - 0.5) < 0.04


def test_every_sentence_is_used_once_as_a_or_is_next_b():
    """Unused sentences are put back: A segments and IsNext B segments tile each document."""
    starts, lengths = _synthetic()
    table = _create(starts, lengths)
    used = np.zeros(starts[-1], dtype=int)
    for _, a_s, a_e, _, b_s, b_e, label in table:
        used[a_s:a_e] += 1
        if label == instances.IS_NEXT:
            used[b_s:b_e] += 1
    assert np.all(used == 1)


def test_segments_fill_the_target_length():
    """Without short sequences, a pair's tokens reach max_seq_length-3 unless a document ends."""
    starts, lengths = _synthetic()
    table = _create(starts, lengths, short_seq_prob=0.0)
    tok_start = np.concatenate([[0], np.cumsum(lengths)])
    a_len = tok_start[table[:, 2]] - tok_start[table[:, 1]]
    b_len = tok_start[table[:, 5]] - tok_start[table[:, 4]]
    doc_end = starts[table[:, 0] + 1]
    reaches = (a_len + b_len >= MAX_SEQ - 3) | (table[:, 5] == doc_end) | (table[:, 6] == 1)
    assert reaches.mean() > 0.95


def test_short_sequences_appear_at_short_seq_prob():
    """With short_seq_prob=0.5 many more pairs are short than with 0."""
    starts, lengths = _synthetic(num_docs=300)
    tok_start = np.concatenate([[0], np.cumsum(lengths)])

    def short_fraction(p):
        t = _create(starts, lengths, short_seq_prob=p)
        total = tok_start[t[:, 2]] - tok_start[t[:, 1]] + tok_start[t[:, 5]] - tok_start[t[:, 4]]
        return (total < 60).mean()

    assert short_fraction(0.5) > short_fraction(0.0) + 0.1


def test_pairing_is_deterministic_per_seed_and_epoch_and_document():
    """Same (seed, epoch) → same table; another epoch → another pairing; a document's
    instances do not depend on which other documents are processed."""
    starts, lengths = _synthetic()
    t0 = _create(starts, lengths, seed=3, epoch=0)
    assert np.array_equal(t0, _create(starts, lengths, seed=3, epoch=0))
    assert not np.array_equal(t0, _create(starts, lengths, seed=3, epoch=1))
    odd = _create(starts, lengths, seed=3, epoch=0, docs=np.arange(1, len(starts) - 1, 2))
    assert np.array_equal(odd, t0[t0[:, 0] % 2 == 1])


def _google_truncate(la, lb, max_num_tokens):
    """google-bert truncate_seq_pair, one token at a time (reference)."""
    while la + lb > max_num_tokens:
        if la > lb:
            la -= 1
        else:
            lb -= 1
    return la, lb


def test_truncated_lengths_match_google_loop():
    """The closed-form truncation equals google-bert's loop on many random pairs."""
    rng = random.Random(0)
    pairs = [(rng.randint(1, 300), rng.randint(1, 300)) for _ in range(2000)]
    la, lb = np.array(pairs).T
    ka, kb = instances.truncated_lengths(la, lb, 125)
    assert list(zip(ka.tolist(), kb.tolist())) == [_google_truncate(a, b, 125) for a, b in pairs]


@pytest.fixture(scope="module")
def store(prepared_dir):
    return PreparedCorpus(prepared_dir)


def test_assembled_pairs_have_bert_layout(store, sp_model):
    """[CLS] A [SEP] B [SEP] + padding; segment 0 up to the first [SEP], 1 for B; A and B are
    contiguous slices of their segments (truncation only cuts the ends)."""
    tok = load_tokenizer(sp_model)
    table = instances.create_instances(
        store.doc_sentence_start, store.sentence_lengths, np.arange(store.num_documents),
        np.arange(store.num_documents), max_seq_length=64, short_seq_prob=0.1, seed=0, epoch=0,
    )  # fmt: skip
    keys = np.arange(len(table), dtype=np.uint64)
    out = instances.assemble_pairs(
        store, table, keys, max_seq_length=64, cls_id=tok.cls_id, sep_id=tok.sep_id
    )
    for i, row in enumerate(table):
        n = out["input_mask"][i].sum()
        ids = out["input_ids"][i]
        assert ids[0] == tok.cls_id and ids[n - 1] == tok.sep_id and np.all(ids[n:] == 0)
        seps = np.flatnonzero(ids[:n] == tok.sep_id)
        assert len(seps) == 2
        assert out["segment_ids"][i].tolist() == [0] * (seps[0] + 1) + [1] * (n - seps[0] - 1) + [
            0
        ] * (64 - n)
        a_full = store.gather_range(row[0], row[1], row[2]).tolist()
        b_full = store.gather_range(row[3], row[4], row[5]).tolist()
        a, b = ids[1 : seps[0]].tolist(), ids[seps[0] + 1 : n - 1].tolist()
        assert _is_slice(a, a_full) and _is_slice(b, b_full) and len(a) and len(b)
    assert out["input_mask"].sum(axis=1).max() <= 64


def test_truncation_cuts_front_and_back_evenly(store):
    """Each removed token comes from the front with probability 1/2: the mean front cut is
    half of all tokens removed from A (±10%)."""
    d0, d1, d2 = store.doc_sentence_start[:3]
    rows = np.array([[0, d0, d1, 1, d1, d2, 1]] * 1000)
    out = instances.assemble_pairs(
        store, rows, np.arange(1000, dtype=np.uint64), max_seq_length=16, cls_id=2, sep_id=3
    )
    a_full = store.gather_range(0, d0, d1).tolist()
    seps = np.argmax(out["input_ids"] == 3, axis=1)
    fronts = []
    for ids, sep in zip(out["input_ids"], seps):
        a = ids[1:sep].tolist()
        fronts.append(next(i for i in range(len(a_full)) if a_full[i : i + len(a)] == a))
    removed = len(a_full) - (seps[0] - 1)
    assert abs(np.mean(fronts) - removed / 2) < 0.1 * removed / 2


def _is_slice(part, whole):
    n = len(part)
    return any(whole[i : i + n] == part for i in range(len(whole) - n + 1))
