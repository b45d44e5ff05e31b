"""Tests for jaxbert.data.masking: MLM selection rates, 80/10/10, replacement, modes."""

from __future__ import annotations

import numpy as np
import pytest

from jaxbert.data import masking, rng
from jaxbert.data.pipeline import derived_max_predictions

VOCAB, SEQ, ROWS, MAX_PRED = 1000, 128, 2048, 20
PAD, UNK, CLS, SEP, MASK = 0, 1, 2, 3, 4


def _tables():
    special = np.zeros(VOCAB, dtype=bool)
    special[[PAD, CLS, SEP, MASK]] = True
    word_start = np.random.default_rng(1).random(VOCAB) < 0.6
    word_start[special] = True
    unigram = (1.0 / np.arange(1, VOCAB + 1) * 1e6).astype(np.int64)  # Zipf
    unigram[[PAD, CLS, SEP, MASK]] = 10**9  # huge special counts must still never be drawn
    return special, word_start, unigram


def _batch(rows=ROWS, seed=0):
    """[CLS] A [SEP] B [SEP] with random real lengths 12..128, ids 1..999 (incl. [UNK])."""
    r = np.random.default_rng(seed)
    n = r.integers(12, SEQ + 1, rows)
    ids = r.integers(5, VOCAB, (rows, SEQ)).astype(np.int32)
    ids[r.random((rows, SEQ)) < 0.01] = UNK
    pos = np.arange(SEQ)[None, :]
    mask = (pos < n[:, None]).astype(np.int32)
    ids[:, 0] = CLS
    ids[np.arange(rows), n // 2] = SEP
    ids[np.arange(rows), n - 1] = SEP
    ids[mask == 0] = PAD
    return ids, mask


def _mask(ids, input_mask, mode="token", random_token="unigram", keys=None, **kwargs):
    special, word_start, unigram = _tables()
    sampler = masking.ReplacementSampler.create(random_token, unigram, special)
    keys = np.arange(len(ids), dtype=np.uint64) if keys is None else keys
    kwargs.setdefault("max_predictions", MAX_PRED)
    return masking.mask_tokens(
        ids, input_mask, keys, special_table=special, word_start_table=word_start,
        sampler=sampler, mask_id=MASK, mode=mode, **kwargs,
    )  # fmt: skip


def _selected(out, ids):
    sel = np.zeros(ids.shape, dtype=bool)
    n_pred = out["masked_positions"].shape[1]
    rows = np.repeat(np.arange(len(ids)), n_pred).reshape(-1, n_pred)
    w = out["masked_weights"] > 0
    sel[rows[w], out["masked_positions"][w]] = True
    return sel


@pytest.mark.parametrize("mode", masking.MASKING_MODES)
def test_outputs_have_fixed_shapes_and_dtypes(mode):
    """input_ids [B,S] int32; masked_positions/ids [B,P] int32; masked_weights [B,P] float32."""
    ids, input_mask = _batch(rows=64)
    out = _mask(ids, input_mask, mode=mode)
    assert out["input_ids"].shape == (64, SEQ) and out["input_ids"].dtype == np.int32
    for key in ("masked_positions", "masked_ids"):
        assert out[key].shape == (64, MAX_PRED) and out[key].dtype == np.int32
    assert out["masked_weights"].shape == (64, MAX_PRED)
    assert out["masked_weights"].dtype == np.float32


def test_token_masking_selects_15_percent_of_non_special_tokens():
    """Token masking selects 15% ± 1% of non-special tokens, never more than max_predictions."""
    ids, input_mask = _batch()
    out = _mask(ids, input_mask)
    candidates = (input_mask > 0) & ~_tables()[0][ids]
    rate = out["masked_weights"].sum() / candidates.sum()
    assert abs(rate - 0.15) < 0.01
    per_row = out["masked_weights"].sum(axis=1)
    budget = np.minimum(MAX_PRED, np.maximum(1, np.rint(candidates.sum(axis=1) * 0.15)))
    assert np.array_equal(per_row, budget)


@pytest.mark.parametrize("mask_prob", [0.15, 0.3, 0.4])
def test_selection_rate_holds_at_high_masking_rates(mask_prob):
    """With max_predictions derived from mask_prob (config value 0), token masking selects
    mask_prob ± 1% of non-special tokens at 15%, 30% and 40%: the cap never bites."""
    ids, input_mask = _batch()
    max_pred = derived_max_predictions(mask_prob, SEQ)
    out = _mask(ids, input_mask, mask_prob=mask_prob, max_predictions=max_pred)
    candidates = (input_mask > 0) & ~_tables()[0][ids]
    assert abs(out["masked_weights"].sum() / candidates.sum() - mask_prob) < 0.01
    budget = np.maximum(1, np.rint(candidates.sum(axis=1) * mask_prob))
    assert np.array_equal(out["masked_weights"].sum(axis=1), budget)


@pytest.mark.parametrize("mask_prob", [0.15, 0.3, 0.4])
def test_80_10_10_split_of_selected_tokens(mask_prob):
    """Of the selected tokens, 80% ± 2% become [MASK], 10% ± 2% random, 10% ± 2% unchanged,
    at every masking rate."""
    ids, input_mask = _batch()
    max_pred = derived_max_predictions(mask_prob, SEQ)
    out = _mask(ids, input_mask, mask_prob=mask_prob, max_predictions=max_pred)
    w = out["masked_weights"] > 0
    now = np.take_along_axis(out["input_ids"], out["masked_positions"], axis=1)[w]
    was = out["masked_ids"][w]
    assert np.array_equal(was, np.take_along_axis(ids, out["masked_positions"], axis=1)[w])
    is_mask, same = now == MASK, now == was
    assert abs(is_mask.mean() - 0.8) < 0.02
    assert abs(same.mean() - 0.1) < 0.02
    assert abs((~is_mask & ~same).mean() - 0.1) < 0.02
    unselected = ~_selected(out, ids)
    assert np.array_equal(out["input_ids"][unselected], ids[unselected])


@pytest.mark.parametrize("mode", masking.MASKING_MODES)
def test_no_special_token_is_ever_masked_or_substituted(mode):
    """[CLS]/[SEP]/[PAD] are never selected, and random replacements are never special."""
    ids, input_mask = _batch()
    out = _mask(ids, input_mask, mode=mode)
    special = _tables()[0]
    w = out["masked_weights"] > 0
    assert not special[out["masked_ids"][w]].any()
    changed = out["input_ids"] != ids
    assert np.all(out["input_ids"][changed & special[out["input_ids"]]] == MASK)
    assert np.array_equal(out["input_ids"][special[ids]], ids[special[ids]])


def test_unigram_replacement_follows_corpus_frequencies():
    """Random replacements are drawn by unigram frequency: the empirical share of each of
    the 5 most frequent non-special tokens is within 15% (relative) of its probability."""
    special, _, unigram = _tables()
    sampler = masking.ReplacementSampler.create("unigram", unigram, special)
    draws = sampler(rng.uniform(np.arange(100, dtype=np.uint64), 7, 1000).ravel())
    assert not special[draws].any()
    p = np.where(special, 0, unigram) / np.where(special, 0, unigram).sum()
    for token in np.argsort(-p)[:5]:
        assert abs((draws == token).mean() / p[token] - 1) < 0.15


def test_uniform_replacement_is_flat_over_non_special_tokens():
    """Uniform mode gives every non-special token the same probability (chi-square-ish)."""
    special, _, unigram = _tables()
    sampler = masking.ReplacementSampler.create("uniform", unigram, special)
    draws = sampler(rng.uniform(np.arange(200, dtype=np.uint64), 7, 1000).ravel())
    counts = np.bincount(draws, minlength=VOCAB)
    assert counts[special].sum() == 0
    expected = len(draws) / (~special).sum()
    assert abs(counts[~special].mean() - expected) < 1e-9
    assert counts[~special].std() < 2 * np.sqrt(expected)


def test_whole_word_masking_selects_complete_words():
    """Whole-word mode: every selected word is selected in all its pieces; rate 13-15%."""
    ids, input_mask = _batch()
    out = _mask(ids, input_mask, mode="whole_word")
    special, word_start, _ = _tables()
    sel = _selected(out, ids)
    candidates = (input_mask > 0) & ~special[ids]
    starts = candidates & (word_start[ids] | ~np.pad(candidates[:, :-1], ((0, 0), (1, 0))))
    word = np.cumsum(starts, axis=1)
    for r in range(200):
        for w in np.unique(word[r][sel[r]]):
            pieces = candidates[r] & (word[r] == w)
            assert sel[r][pieces].all()
    rate = sel.sum() / candidates.sum()
    assert 0.13 < rate <= 0.15 + 0.01


def test_span_masking_selects_whole_word_spans_within_budget():
    """Span mode: selections are unions of whole words, within the budget, rate 11-15%,
    with multi-word contiguous runs present (mean run length > 1.5 words)."""
    ids, input_mask = _batch()
    out = _mask(ids, input_mask, mode="span")
    special, word_start, _ = _tables()
    sel = _selected(out, ids)
    candidates = (input_mask > 0) & ~special[ids]
    budget = np.minimum(MAX_PRED, np.maximum(1, np.rint(candidates.sum(axis=1) * 0.15)))
    assert np.all(sel.sum(axis=1) <= budget)
    rate = sel.sum() / candidates.sum()
    assert 0.11 < rate <= 0.15 + 0.01
    starts = candidates & (word_start[ids] | ~np.pad(candidates[:, :-1], ((0, 0), (1, 0))))
    run_starts = sel & ~np.pad(sel[:, :-1], ((0, 0), (1, 0)))
    assert (sel & starts).sum() / run_starts.sum() > 1.5


def test_masking_is_deterministic_per_key_and_differs_across_keys():
    """Same keys → identical output (whatever the batch composition); other keys → different."""
    ids, input_mask = _batch(rows=256)
    keys = rng.derive(0, 0, 5, np.arange(256))
    a = _mask(ids, input_mask, keys=keys)
    b = _mask(ids[100:], input_mask[100:], keys=keys[100:])
    for k in a:
        assert np.array_equal(a[k][100:], b[k])
    c = _mask(ids, input_mask, keys=rng.derive(0, 0, 6, np.arange(256)))
    assert not np.array_equal(a["masked_positions"], c["masked_positions"])


def test_masked_positions_are_sorted_and_padding_has_zero_weight():
    """Real predictions come first in increasing position order; padding slots are 0/0/0."""
    ids, input_mask = _batch(rows=256)
    out = _mask(ids, input_mask)
    w = out["masked_weights"]
    assert np.all(np.diff(w, axis=1) <= 0)  # ones, then zeros
    pos = np.where(w > 0, out["masked_positions"], SEQ)
    assert np.all(np.diff(pos, axis=1) >= 0)
    assert np.all(out["masked_positions"][w == 0] == 0) and np.all(out["masked_ids"][w == 0] == 0)


def test_short_sequences_and_max_predictions_above_length():
    """A row with one real token still gets 1 prediction; P > S pads with weight 0."""
    ids = np.array([[CLS, 7, SEP, SEP, PAD, PAD]], dtype=np.int32)
    input_mask = np.array([[1, 1, 1, 1, 0, 0]], dtype=np.int32)
    special, word_start, unigram = _tables()
    out = masking.mask_tokens(
        ids, input_mask, np.array([1], dtype=np.uint64), special_table=special,
        word_start_table=word_start, sampler=masking.ReplacementSampler(unigram, special),
        mask_id=MASK, max_predictions=8,
    )  # fmt: skip
    assert out["masked_weights"].tolist() == [[1, 0, 0, 0, 0, 0, 0, 0]]
    assert out["masked_positions"][0, 0] == 1 and out["masked_ids"][0, 0] == 7
