"""Words → `[CLS] pieces [SEP]` rows that fit the model, with each word's token span.

Evaluation data comes split into words (WiC, the WSD framework, SemCor) and names its
targets by word index, so rows are built from words: each word is tokenized on its own and
we always know which sub-tokens are whose. A sentence longer than the model is cut at word
boundaries into several rows (each word keeps its own row's context) rather than
truncated, so every target gets a vector. Rows are batched by length into a few fixed
bucket lengths, so a corpus of short sentences computes little padding and compiles a few
programs. numpy only.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence

import numpy as np

from jaxbert.finetune.buckets import bucket_lengths, trim_length

_WORD_RE = re.compile(r"\w+|[^\w\s]")
BUCKETS = (16, 32, 64, 128, 256, 384, 512)


def split_words(text: str) -> list[str]:
    """Words and punctuation marks, the units a raw text's vectors are reported for."""
    return _WORD_RE.findall(text)


def word_char_spans(text: str) -> list[tuple[int, int]]:
    """The [start, end) character span of each of `split_words(text)`."""
    return [m.span() for m in _WORD_RE.finditer(text)]


@dataclasses.dataclass
class Rows:
    ids: list[list[int]]  # per row, [CLS] … [SEP]
    sentence: np.ndarray  # [rows]: the sentence each row belongs to
    word_row: list[np.ndarray]  # per sentence, per word: its row
    word_span: list[np.ndarray]  # per sentence: [words, 2] token [start, end) in that row

    def lengths(self) -> np.ndarray:
        return np.array([len(r) for r in self.ids], np.int64)


def encode_words(tokenizer, sentences: Sequence[Sequence[str]], max_len: int) -> Rows:
    """Every sentence as one row, or as several when its pieces exceed `max_len`."""
    flat = [w for s in sentences for w in s]
    pieces = tokenizer.encode_batch(flat) if flat else []
    budget = max_len - 2
    ids, row_sentence, word_row, word_span, k = [], [], [], [], 0
    for s, words in enumerate(sentences):
        rows_of = np.zeros(len(words), np.int64)
        spans = np.zeros((len(words), 2), np.int64)
        row = [tokenizer.cls_id]
        for w in range(len(words)):
            p = list(pieces[k][:budget]) or [tokenizer.unk_id]
            k += 1
            if len(row) - 1 + len(p) > budget:
                ids.append([*row, tokenizer.sep_id])
                row_sentence.append(s)
                row = [tokenizer.cls_id]
            rows_of[w], spans[w] = len(ids), (len(row), len(row) + len(p))
            row += p
        ids.append([*row, tokenizer.sep_id])
        row_sentence.append(s)
        word_row.append(rows_of)
        word_span.append(spans)
    return Rows(ids, np.asarray(row_sentence, np.int64), word_row, word_span)


def length_batches(lengths: np.ndarray, batch_size: int, max_len: int):
    """(row indices, padded length) per batch: rows sorted by length, each batch padded
    to the smallest bucket that holds its longest row."""
    buckets = bucket_lengths(max_len, BUCKETS)
    order = np.argsort(lengths, kind="stable")
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        yield idx, trim_length(lengths[idx], buckets)


def pad_rows(rows: Sequence[Sequence[int]], batch_size: int, length: int, pad_id: int,
             filler: Sequence[int]):  # fmt: skip
    """[batch_size, length] ids and mask; a short last batch is filled with `filler` rows
    (e.g. [CLS][SEP]) so every batch of a bucket has one shape and one compile."""
    input_ids = np.full((batch_size, length), pad_id, np.int32)
    input_mask = np.zeros((batch_size, length), np.int32)
    for i in range(batch_size):
        r = rows[i] if i < len(rows) else filler
        input_ids[i, : len(r)] = r
        input_mask[i, : len(r)] = 1
    return input_ids, input_mask
