"""`Embedder`: sub-word pooling, layer selection, batching and long sentences."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from jaxbert import embed
from jaxbert.embed.encoding import encode_words, length_batches
from jaxbert.errors import UserError
from tests.helpers import micro_embedder


def direct_states(embedder, words):
    """All layers of one sentence computed without the embedder's batching."""
    rows = encode_words(embedder.tokenizer, [words], embedder.max_len)
    ids = np.asarray(rows.ids[:1], np.int32)
    states = embed.hidden_states(embedder.model_cfg, embedder.params, ids, np.ones_like(ids),
                                 np.zeros_like(ids))  # fmt: skip
    return np.asarray(states)[:, 0], rows.word_span[0]


def test_first_and_mean_pooling_pick_the_word_pieces():
    """A word of several pieces: `first` is its first piece's state, `mean` the mean over
    its pieces, at the chosen layer (2 of 4 here)."""
    words = ["the", "banks", "sat", "zoe"]  # "banks" = bank ##s
    states, spans = direct_states(micro_embedder(), words)
    start, end = spans[1]
    assert end - start == 2
    for pool, want in (("first", states[2, start]), ("mean", states[2, start:end].mean(0))):
        got = micro_embedder(layer="2", pool=pool).word_vectors([words], [[1]])
        np.testing.assert_allclose(got[0], want, atol=1e-5)


def test_layer_choices_sum_and_concat_the_last_four():
    """last4 + sum is the sum of layers 1..4 of the word's state, concat their concatenation."""
    words = ["he", "sat", "on", "the", "bank"]
    states, spans = direct_states(micro_embedder(), words)
    s, e = spans[4]
    want = states[1:5, s:e].mean(1)  # [4, H]: each layer's mean over pieces
    got_sum = micro_embedder(layer="last4", combine="sum").word_vectors([words], [[4]])[0]
    got_cat = micro_embedder(layer="last4", combine="concat").word_vectors([words], [[4]])[0]
    np.testing.assert_allclose(got_sum, want.sum(0), atol=1e-4)
    np.testing.assert_allclose(got_cat, want.reshape(-1), atol=1e-5)
    stacked = micro_embedder(layer="all", combine="stack").word_vectors([words], [[4]])
    assert stacked.shape == (1, 5, 32)


def test_vector_does_not_depend_on_its_batch():
    """A word's vector alone equals its vector among longer texts in other buckets and in a
    short last batch (padding and filler rows are masked); 'bank' differs by context."""
    embedder = micro_embedder(batch_size=2)
    alone, spans = embedder.find_word([embed.DEMO_SENTENCES[0]], "bank")
    texts = [*embed.DEMO_SENTENCES, "the bank " + "the " * 30]
    batch, spans5 = embedder.find_word(texts, "bank")
    assert alone.shape == (1, 32) and batch.shape == (5, 32)
    np.testing.assert_allclose(alone[0], batch[0], atol=1e-5)
    assert not np.allclose(batch[0], batch[1])
    assert texts[1][slice(*spans5[1])] == "bank"
    with pytest.raises(UserError, match="does not occur"):
        embedder.find_word(["no such word here"], "bank")


def test_long_sentences_are_cut_at_word_boundaries():
    """A sentence longer than the model becomes several rows, each ≤ max_len; every word
    keeps a span inside its row, and its vector equals the vector of its row alone."""
    embedder = micro_embedder(max_seq_length=16)
    words = ["the", "cat", "sat", "on", "the", "river", "bank"] * 4
    rows = encode_words(embedder.tokenizer, [words], 16)
    assert len(rows.ids) > 1 and max(len(r) for r in rows.ids) <= 16
    for r, (s, e) in zip(rows.word_row[0], rows.word_span[0]):
        assert 1 <= s < e <= len(rows.ids[r]) - 1
    last = len(words) - 1
    first_of_row = int(np.flatnonzero(rows.word_row[0] == rows.word_row[0][last])[0])
    alone = embedder.word_vectors([words[first_of_row:]], [[last - first_of_row]])
    np.testing.assert_allclose(embedder.word_vectors([words], [[last]]), alone, atol=1e-5)
    assert embedder.sentence_vectors([words]).shape == (1, 32)


def test_batches_are_bucketed_by_length():
    """Rows sorted by length, each batch padded to the smallest bucket ≥ its longest row."""
    lengths = np.array([5, 40, 6, 17, 3, 60])
    batches = list(length_batches(lengths, 2, 64))
    assert [list(i) for i, _ in batches] == [[4, 0], [2, 3], [1, 5]]
    assert [n for _, n in batches] == [16, 32, 64]


def test_sentence_pools_and_bad_targets():
    """mean excludes [CLS]/[SEP], cls is the first state; a target past the words is named."""
    embedder = micro_embedder(layer="last")
    words = ["the", "cat", "sat"]
    states, _ = direct_states(embedder, words)
    n = len(encode_words(embedder.tokenizer, [words], 64).ids[0])
    np.testing.assert_allclose(embedder.sentence_vectors([words])[0], states[-1, 1 : n - 1].mean(0),
                               atol=1e-5)  # fmt: skip
    np.testing.assert_allclose(embedder.sentence_vectors(["the cat sat"], "cls")[0], states[-1, 0],
                               atol=1e-5)  # fmt: skip
    with pytest.raises(UserError, match="sentence 1 has 3 words"):
        embedder.word_vectors([words], [[3]])
    with pytest.raises(UserError, match="--pool"):
        micro_embedder(pool="max")
    assert jax.tree.leaves(embedder.params)  # the micro encoder has weights
