"""Sentence-pair instances with next-sentence labels, following google-bert's
`create_pretraining_data.py` (create_instances_from_document, truncate_seq_pair).

An instance is a row of `INSTANCE_FIELDS`: segment A = global sentences [a_start, a_end) of
document a_doc, segment B likewise, and the NSP label (0 = IsNext, 1 = random next). Rows
hold indices, not tokens, so an epoch's pairing is small; tokens are gathered per batch by
`assemble_pairs`.

Two deliberate differences from google-bert: the shortened target length is drawn per
instance (google draws it once per document, so 10% of *documents* rather than of
instances become short), and re-masking/re-pairing each epoch replaces `dupe_factor`.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

import numpy as np

from jaxbert.data import rng as rng_lib
from jaxbert.data.store import PreparedCorpus

INSTANCE_FIELDS = ("a_doc", "a_start", "a_end", "b_doc", "b_start", "b_end", "label")
IS_NEXT, RANDOM_NEXT = 0, 1
_STREAM_FRONT_A, _STREAM_FRONT_B = 101, 102


def create_instances(
    doc_sentence_start: np.ndarray,
    sentence_lengths: np.ndarray,
    doc_ids: Sequence[int],
    random_docs: np.ndarray,
    *,
    max_seq_length: int,
    short_seq_prob: float,
    seed: int,
    epoch: int,
) -> np.ndarray:
    """All instances of `doc_ids` for one epoch, as an int64 [N, 7] array in document order.

    Random-next segments are drawn from `random_docs`. Each document's instances depend only
    on (seed, epoch, document id), not on which other documents are processed.
    """
    starts = doc_sentence_start.tolist()
    lengths = sentence_lengths.tolist()
    pool = np.asarray(random_docs).tolist()
    rows: list[tuple[int, ...]] = []
    for doc in doc_ids:
        rng = random.Random(rng_lib.derive_int(seed, epoch, doc))
        _document_instances(rows, doc, starts, lengths, pool, rng, max_seq_length, short_seq_prob)
    return np.asarray(rows, dtype=np.int64).reshape(-1, len(INSTANCE_FIELDS))


def _document_instances(rows, doc, starts, lengths, pool, rng, max_seq_length, short_seq_prob):
    """google-bert's create_instances_from_document on sentence lengths (appends to rows)."""
    max_num_tokens = max_seq_length - 3
    first, end = starts[doc], starts[doc + 1]
    target = _target_length(rng, max_num_tokens, short_seq_prob)
    chunk_start, chunk_len = first, 0
    i = first
    while i < end:
        chunk_len += lengths[i]
        if i == end - 1 or chunk_len >= target:
            n_chunk = i + 1 - chunk_start
            a_end = chunk_start + (rng.randint(1, n_chunk - 1) if n_chunk >= 2 else 1)
            a_len = sum(lengths[chunk_start:a_end])
            if n_chunk == 1 or rng.random() < 0.5:
                b_doc, b_start, b_end = _random_segment(
                    rng, doc, starts, lengths, pool, target - a_len
                )
                rows.append((doc, chunk_start, a_end, b_doc, b_start, b_end, RANDOM_NEXT))
                i = a_end - 1  # put the unused sentences back
            else:
                rows.append((doc, chunk_start, a_end, doc, a_end, i + 1, IS_NEXT))
            chunk_start, chunk_len = i + 1, 0
            target = _target_length(rng, max_num_tokens, short_seq_prob)
        i += 1


def _target_length(rng: random.Random, max_num_tokens: int, short_seq_prob: float) -> int:
    if rng.random() < short_seq_prob:
        return rng.randint(2, max_num_tokens)
    return max_num_tokens


def _random_segment(rng, doc, starts, lengths, pool, target_b_length):
    """A run of sentences from a random other document, at least target_b_length tokens."""
    other = doc
    for _ in range(10):
        other = pool[rng.randrange(len(pool))]
        if other != doc:
            break
    first, end = starts[other], starts[other + 1]
    j = rng.randrange(first, end)
    b_len = 0
    b_start = j
    while j < end:
        b_len += lengths[j]
        j += 1
        if b_len >= target_b_length:
            break
    return other, b_start, j


def truncated_lengths(la: np.ndarray, lb: np.ndarray, max_num_tokens: int):
    """Final (len A, len B) after google-bert's truncate_seq_pair, in closed form.

    That loop removes one token at a time from the longer segment (from B on ties) until
    the pair fits: first the difference is removed from the longer, then both alternately.
    """
    la, lb = np.asarray(la, np.int64), np.asarray(lb, np.int64)
    excess = np.maximum(la + lb - max_num_tokens, 0)
    from_longer = np.minimum(excess, np.abs(la - lb))
    rest = excess - from_longer  # > 0 only once both have the same length
    ka = np.where(la > lb, la - from_longer, la) - rest // 2
    kb = np.where(la > lb, lb, lb - from_longer) - (rest - rest // 2)
    return ka, kb


def assemble_pairs(
    corpus: PreparedCorpus,
    rows: np.ndarray,
    keys: np.ndarray,
    *,
    max_seq_length: int,
    cls_id: int,
    sep_id: int,
) -> dict[str, np.ndarray]:
    """``[CLS] A [SEP] B [SEP]`` + padding for a batch of instance rows (vectorised).

    Each removed token comes from the front or the back with probability 1/2 (google-bert),
    so the number cut from the front is Binomial(removed, 1/2), drawn from `keys`.
    """
    a_doc, a_s, a_e, b_doc, b_s, b_e, label = rows.T
    tok_start = corpus.sentence_token_start
    la, lb = tok_start[a_e] - tok_start[a_s], tok_start[b_e] - tok_start[b_s]
    ka, kb = truncated_lengths(la, lb, max_seq_length - 3)
    a0 = tok_start[a_s] + rng_lib.binomial_half(keys, _STREAM_FRONT_A, la - ka)
    b0 = tok_start[b_s] + rng_lib.binomial_half(keys, _STREAM_FRONT_B, lb - kb)
    pos = np.arange(max_seq_length)[None, :]
    ka_, kb_ = ka[:, None], kb[:, None]
    in_a = (pos >= 1) & (pos < 1 + ka_)
    in_b = (pos >= 2 + ka_) & (pos < 2 + ka_ + kb_)
    src = np.where(in_a, a0[:, None] + pos - 1, b0[:, None] + pos - 2 - ka_)
    docs = np.where(in_a, a_doc[:, None], np.where(in_b, b_doc[:, None], -1))
    input_ids = corpus.gather(np.where(docs >= 0, src, 0), docs)
    input_ids[:, 0] = cls_id
    batch = np.arange(len(rows))
    input_ids[batch, 1 + ka] = sep_id
    input_ids[batch, 2 + ka + kb] = sep_id
    input_mask = pos < 3 + ka_ + kb_
    segment_ids = (pos >= 2 + ka_) & input_mask
    return {
        "input_ids": input_ids,
        "input_mask": input_mask.astype(np.int32),
        "segment_ids": segment_ids.astype(np.int32),
        "next_sentence_label": label.astype(np.int32),
    }
