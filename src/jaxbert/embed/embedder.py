"""`Embedder`: contextual vectors of word instances and sentences from one checkpoint.

A word's vector pools its sub-tokens (`first` piece, or their `mean`); a sentence's vector
is the mean over its words' sub-tokens (`mean`: [CLS]/[SEP] excluded), over every real
token (`mean_all`: [CLS]/[SEP] included, sentence-transformers' mean pooling) or the
[CLS] state (`cls`). A raw text is split into words by the model's own tokenizer. The
layers are the BERT paper's feature choices (`states.parse_layer`), selected on device so
only [B, S, D] comes back per batch. Batches are length-bucketed (`encoding`), and a
vector does not depend on the other texts of its batch (padding is masked; tested).
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import numpy as np

from jaxbert.embed.encoding import (
    Rows,
    encode_texts,
    encode_words,
    length_batches,
    pad_rows,
    rows_of_pieces,
)
from jaxbert.embed.states import hidden_states, parse_layer, select_layers
from jaxbert.errors import UserError

WORD_POOLS = ("first", "mean")
SENTENCE_POOLS = ("mean", "mean_all", "cls")


class Embedder:
    def __init__(self, model_cfg, bert_params, tokenizer, layer="last4", combine="sum",
                 pool="mean", batch_size=64, max_seq_length=0, sentence_pool="mean",
                 normalize=False):  # fmt: skip
        if pool not in WORD_POOLS:
            raise UserError(f"--pool must be one of {WORD_POOLS}, got {pool!r}")
        if sentence_pool not in SENTENCE_POOLS:
            raise UserError(
                f"--sentence-pool must be one of {SENTENCE_POOLS}, got {sentence_pool!r}"
            )
        self.sentence_pool, self.normalize, self.layer = sentence_pool, normalize, layer
        if batch_size < 1:
            raise UserError(f"--batch-size must be ≥ 1, got {batch_size}")
        self.model_cfg, self.tokenizer, self.params = model_cfg, tokenizer, bert_params
        self.layers, self.combine, self.pool = (
            parse_layer(layer, model_cfg.num_layers),
            combine,
            pool,
        )
        self.batch_size = batch_size
        limit = model_cfg.max_position_embeddings
        self.max_len = min(max_seq_length or limit, limit)
        layers = tuple(self.layers)
        select_layers(np.zeros((model_cfg.num_layers + 1, 1, 1, 1)), layers, combine)  # checks

        def states(p, ids, mask):
            h = hidden_states(model_cfg, p, ids, mask, jax.numpy.zeros_like(ids))
            return select_layers(h, layers, combine)

        self._states = jax.jit(states)

    def _batches(self, rows: Rows):
        """(row indices, [b, S, …] vectors) per length-bucketed batch."""
        filler = [self.tokenizer.cls_id, self.tokenizer.sep_id]
        for idx, length in length_batches(rows.lengths(), self.batch_size, self.max_len):
            ids, mask = pad_rows([rows.ids[i] for i in idx], self.batch_size, length,
                                 self.tokenizer.pad_id, filler)  # fmt: skip
            yield idx, np.asarray(self._states(self.params, ids, mask))[: len(idx)]

    def word_vectors(self, sentences: Sequence[Sequence[str]],
                     targets: Sequence[Sequence[int]]) -> np.ndarray:  # fmt: skip
        """One vector per target, in order: `targets[i]` are word indices into
        `sentences[i]` (a list of words)."""
        rows = encode_words(self.tokenizer, sentences, self.max_len)
        return self._word_vectors(rows, sentences, targets)

    def _word_vectors(self, rows: Rows, sentences, targets) -> np.ndarray:
        wanted: dict[int, list[tuple[int, int, int]]] = {}
        n = 0
        for s, words in enumerate(targets):
            for w in words:
                if not 0 <= w < len(sentences[s]):
                    raise UserError(f"sentence {s + 1} has {len(sentences[s])} words, no word {w}")
                start, end = rows.word_span[s][w]
                wanted.setdefault(int(rows.word_row[s][w]), []).append((n, start, end))
                n += 1
        out = None
        for idx, vecs in self._batches(rows):
            for b, r in enumerate(idx):
                for k, start, end in wanted.get(int(r), ()):
                    v = vecs[b, start] if self.pool == "first" else vecs[b, start:end].mean(0)
                    if out is None:
                        out = np.zeros((n, *v.shape), np.float32)
                    out[k] = v
        return out if out is not None else np.zeros((0, self.dim), np.float32)

    def sentence_vectors(self, sentences: Sequence[str | Sequence[str]],
                         pool: str | None = None) -> np.ndarray:  # fmt: skip
        """One vector per sentence (a text, or a list of words), pooled by `pool` (default:
        the embedder's `sentence_pool`); a sentence cut into several rows pools all its
        rows' tokens, its [CLS] is its first row's. L2-normalised when `normalize`."""
        pool = pool or self.sentence_pool
        if pool not in SENTENCE_POOLS:
            raise UserError(f"--sentence-pool must be one of {SENTENCE_POOLS}, got {pool!r}")
        if all(isinstance(s, str) for s in sentences):
            rows = encode_texts(self.tokenizer, list(sentences), self.max_len)
        else:
            pieces = [self._pieces(s) for s in sentences]
            rows = rows_of_pieces(self.tokenizer, pieces, self.max_len)
        sums = counts = None
        for idx, vecs in self._batches(rows):
            if sums is None:
                sums = np.zeros((len(sentences), *vecs.shape[2:]), np.float64)
                counts = np.zeros(len(sentences))
            for b, r in enumerate(idx):
                _pool_row(pool, vecs[b], len(rows.ids[r]), sums, counts, rows.sentence[r])
        if sums is None:
            return np.zeros((0, self.dim), np.float32)
        counts = np.maximum(counts, 1).reshape(-1, *[1] * (sums.ndim - 1))
        out = (sums / counts).astype(np.float32)
        if self.normalize:
            out /= np.maximum(np.linalg.norm(out, axis=-1, keepdims=True), 1e-12)
        return out

    def _pieces(self, sentence: str | Sequence[str]) -> list[list[int]]:
        if isinstance(sentence, str):
            return self.tokenizer.word_pieces(sentence)[0]
        return [list(p) for p in self.tokenizer.encode_batch(list(sentence))] if sentence else []

    def find_word(self, texts: Sequence[str], word: str) -> tuple[np.ndarray, np.ndarray]:
        """[len(texts), D]: the first occurrence of `word` (case-insensitive) in each text,
        split into words by the tokenizer, and its [len(texts), 2] character span."""
        if not texts:
            raise UserError("no text to embed: give --text, --file or --demo")
        sentences, targets, spans = [], [], []
        for i, text in enumerate(texts):
            pieces, chars = self.tokenizer.word_pieces(text)
            hits = [k for k, (a, b) in enumerate(chars) if text[a:b].lower() == word.lower()]
            if not hits:
                raise UserError(f"the word {word!r} does not occur in text {i + 1}: {text!r}")
            sentences.append(pieces)
            targets.append([hits[0]])
            spans.append(chars[hits[0]])
        rows = rows_of_pieces(self.tokenizer, sentences, self.max_len)
        return self._word_vectors(rows, sentences, targets), np.asarray(spans, np.int64)

    @property
    def dim(self) -> int:
        h, k = self.model_cfg.hidden_size, len(self.layers)
        return h * k if self.combine == "concat" else h


def _pool_row(pool: str, vecs: np.ndarray, length: int, sums, counts, s: int) -> None:
    """Adds one row's tokens to sentence `s`'s running sum (mean pools) or sets its [CLS]."""
    if pool == "cls":
        if counts[s] == 0:
            sums[s], counts[s] = vecs[0], 1
    elif pool == "mean_all":
        sums[s] += vecs[:length].sum(0)
        counts[s] += length
    elif length > 2:
        sums[s] += vecs[1 : length - 1].sum(0)
        counts[s] += length - 2
    elif counts[s] == 0:  # a sentence without words is one [CLS] [SEP] row: its [CLS]
        sums[s], counts[s] = vecs[0], 1
