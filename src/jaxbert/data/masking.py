"""Masked-LM targets (BERT §3.1, google-bert create_masked_lm_predictions), vectorised.

Per example, `budget = min(max_predictions, max(1, round(mask_prob * n)))` of its `n`
non-special tokens are chosen; each chosen token becomes [MASK] (80%), a random token
(10%) or stays (10%). Random tokens are drawn by the corpus' unigram frequencies (default)
or uniformly; specials have zero weight in both. Modes:

- ``token``: tokens chosen independently (a random ranking, the first `budget` taken);
- ``whole_word``: words ranked at random and taken while the running token count fits the
  budget, so every piece of a chosen word is masked (a word that would overflow ends the
  selection, a slight undershoot for long words);
- ``span``: SpanBERT-style spans of whole words, length ~ Geometric(0.2) clipped to 10
  words, at random start words, added while they fit the budget (up to `max_predictions`
  attempts, so it may end a little under budget).

All randomness comes from `rng.uniform(keys, …)`, where `keys` identifies
(seed, epoch, example index): masking is dynamic across epochs and reproducible.
"""

from __future__ import annotations

import numpy as np

from jaxbert.data import rng as rng_lib

MASKING_MODES = ("token", "whole_word", "span")
RANDOM_TOKEN_MODES = ("unigram", "uniform")
SPAN_P, SPAN_MAX_WORDS = 0.2, 10
_STREAM_SELECT, _STREAM_ACTION, _STREAM_REPLACE, _STREAM_SPAN = 201, 202, 203, 204


class ReplacementSampler:
    """Draws random replacement tokens from a distribution with zero weight on specials."""

    def __init__(self, weights: np.ndarray, special_table: np.ndarray):
        weights = np.where(special_table, 0.0, np.asarray(weights, dtype=np.float64))
        if weights.sum() <= 0:
            raise ValueError("replacement distribution has no non-special token")
        self.cdf = np.cumsum(weights) / weights.sum()

    @classmethod
    def create(cls, mode: str, unigram_counts: np.ndarray, special_table: np.ndarray):
        if mode == "uniform":
            return cls(np.ones(len(special_table)), special_table)
        return cls(unigram_counts, special_table)

    def __call__(self, u: np.ndarray) -> np.ndarray:
        """Maps uniforms in [0, 1) to token ids (inverse CDF; zero-weight ids never hit)."""
        ids = np.searchsorted(self.cdf, u, side="right")
        return np.minimum(ids, len(self.cdf) - 1).astype(np.int32)


def mask_tokens(
    input_ids: np.ndarray,
    input_mask: np.ndarray,
    keys: np.ndarray,
    *,
    special_table: np.ndarray,
    word_start_table: np.ndarray,
    sampler: ReplacementSampler,
    mask_id: int,
    mode: str = "token",
    mask_prob: float = 0.15,
    max_predictions: int = 20,
) -> dict[str, np.ndarray]:
    """Returns input_ids (masked), masked_positions, masked_ids, masked_weights for a batch."""
    ids = np.asarray(input_ids)
    n_rows, seq_len = ids.shape
    candidates = input_mask.astype(bool) & ~special_table[ids]
    n_cand = candidates.sum(axis=1)
    budget = np.minimum(max_predictions, np.maximum(1, np.rint(n_cand * mask_prob)))
    budget = np.where(n_cand > 0, budget, 0).astype(np.int64)
    starts = _word_starts(ids, candidates, word_start_table, mode)
    if mode == "span":
        selected = _select_spans(candidates, starts, budget, keys, max_predictions)
    else:
        selected = _select_words(candidates, starts, budget, keys)
    action = rng_lib.uniform(keys, _STREAM_ACTION, seq_len)
    replacement = sampler(rng_lib.uniform(keys, _STREAM_REPLACE, seq_len))
    masked = np.where(selected & (action < 0.8), mask_id, ids)
    masked = np.where(selected & (action >= 0.8) & (action < 0.9), replacement, masked)
    order = np.argsort(~selected, axis=1, kind="stable")[:, :max_predictions]
    valid = np.take_along_axis(selected, order, axis=1)
    if order.shape[1] < max_predictions:  # sequences shorter than max_predictions
        pad = max_predictions - order.shape[1]
        order = np.pad(order, ((0, 0), (0, pad)))
        valid = np.pad(valid, ((0, 0), (0, pad)))
    return {
        "input_ids": masked.astype(np.int32),
        "masked_positions": np.where(valid, order, 0).astype(np.int32),
        "masked_ids": np.where(valid, np.take_along_axis(ids, order, axis=1), 0).astype(np.int32),
        "masked_weights": valid.astype(np.float32),
    }


def _word_starts(ids, candidates, word_start_table, mode) -> np.ndarray:
    """Word-start flags among candidates; a candidate after a non-candidate starts a word."""
    if mode == "token":
        return candidates
    prev_cand = np.pad(candidates[:, :-1], ((0, 0), (1, 0)))
    return candidates & (word_start_table[ids] | ~prev_cand)


def _select_words(candidates, starts, budget, keys) -> np.ndarray:
    """Ranks words by a random key; takes them while the cumulative token count <= budget."""
    n_rows, seq_len = candidates.shape
    u = rng_lib.uniform(keys, _STREAM_SELECT, seq_len)
    start_pos = np.maximum.accumulate(np.where(starts, np.arange(seq_len), 0), axis=1)
    key = np.where(candidates, np.take_along_axis(u, start_pos, axis=1), 2.0)
    # Per-row "how many tokens have a key <= mine" via one flat searchsorted: rows are
    # offset by 4 so they never interleave (keys lie in [0, 2]).
    offset = 4.0 * np.arange(n_rows)[:, None]
    flat = np.sort(key + offset, axis=1).ravel()
    rank = np.searchsorted(flat, (key + offset).ravel(), side="right").reshape(key.shape)
    count_le = rank - seq_len * np.arange(n_rows)[:, None]
    return candidates & (count_le <= budget[:, None])


def _select_spans(candidates, starts, budget, keys, attempts) -> np.ndarray:
    """SpanBERT span masking over whole words, vectorised across the batch."""
    word_index = np.cumsum(starts, axis=1) - 1
    n_words = starts.sum(axis=1)
    u = rng_lib.uniform(keys, _STREAM_SPAN, 2 * attempts)
    span_words = np.minimum(
        SPAN_MAX_WORDS, 1 + np.floor(np.log1p(-u[:, attempts:]) / np.log1p(-SPAN_P))
    )
    first_word = np.floor(u[:, :attempts] * n_words[:, None])
    selected = np.zeros_like(candidates)
    for k in range(attempts):
        lo, hi = first_word[:, k : k + 1], first_word[:, k : k + 1] + span_words[:, k : k + 1]
        span = candidates & (word_index >= lo) & (word_index < hi)
        grown = selected | span
        fits = grown.sum(axis=1) <= budget
        selected = np.where(fits[:, None], grown, selected)
    return selected
