"""Words → `[CLS] pieces [SEP]` rows that fit the model, with each word's token span.

Evaluation data comes split into words (WiC, the WSD framework, SemCor) and names its
targets by word index, so rows are built from words: each word is tokenized on its own and
we always know which sub-tokens are whose. Raw texts are split by the model's own
tokenizer (`Tokenizer.word_pieces`: a WordPiece model's normaliser and pre-tokenizer), so
a text's row holds exactly the ids the Hugging Face tokenizer gives it (`£3m` stays one
word, as the model saw it). A sentence longer than the model is cut at word
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

_WORD_RE = re.compile(r"\w+|[^\w\s]")
BUCKETS = (16, 32, 64, 128, 256, 384, 512)


def split_words(text: str, tokenizer=None) -> list[str]:
    """The units a raw text's vectors are reported for: the tokenizer's own words when
    given one, else words and punctuation marks."""
    return [text[a:b] for a, b in word_char_spans(text, tokenizer)]


def word_char_spans(text: str, tokenizer=None) -> list[tuple[int, int]]:
    """The [start, end) character span of each of `split_words(text, tokenizer)`."""
    if tokenizer is not None:
        return list(tokenizer.word_pieces(text)[1])
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
    """Every sentence (a list of words) as one row, or as several when its pieces exceed
    `max_len`; each word is tokenized on its own."""
    flat = [w for s in sentences for w in s]
    pieces = iter(tokenizer.encode_batch(flat) if flat else [])
    return rows_of_pieces(tokenizer, [[next(pieces) for _ in s] for s in sentences], max_len)


def encode_texts(tokenizer, texts: Sequence[str], max_len: int) -> Rows:
    """Every raw text split into words by the tokenizer itself (`word_pieces`), so the
    row's ids are the tokenizer's own encoding of the text."""
    return rows_of_pieces(tokenizer, [tokenizer.word_pieces(t)[0] for t in texts], max_len)


def rows_of_pieces(tokenizer, sentences: Sequence[Sequence[Sequence[int]]], max_len: int) -> Rows:
    """Rows from each sentence's per-word token ids, cut at word boundaries."""
    budget = max_len - 2
    ids, row_sentence, word_row, word_span = [], [], [], []
    for s, words in enumerate(sentences):
        rows_of = np.zeros(len(words), np.int64)
        spans = np.zeros((len(words), 2), np.int64)
        row = [tokenizer.cls_id]
        for w, word in enumerate(words):
            p = list(word[:budget]) or [tokenizer.unk_id]
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
    buckets = sorted({b for b in BUCKETS if b < max_len} | {max_len})
    order = np.argsort(lengths, kind="stable")
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        longest = int(lengths[idx].max(initial=1))
        yield idx, next((b for b in buckets if b >= longest), buckets[-1])


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
