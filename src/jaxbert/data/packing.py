"""Packed instances: RoBERTa's FULL-SENTENCES and DOC-SENTENCES, at a fixed sequence length.

Pairs (google-bert) leave padding — 10% of instances are deliberately short and the rest
stop at a sentence boundary — and spend a segment on NSP. Packing instead cuts one
contiguous token stream into windows of ``max_seq_length - 2`` tokens, each sent as
``[CLS] window [SEP]`` with segment 0:

- ``full_sentences``: this process's documents in a per-epoch random order, each followed
  by a ``[SEP]``, so windows cross document boundaries (only the epoch's last window pads);
- ``doc_sentences``: windows never cross a document; each document's last window pads.

Windows are cut at token, not sentence, boundaries: at sequence length 128 a sentence is a
fifth of a window, and ending windows at sentence ends would pad ~10% of every batch.
(RoBERTa packs whole sentences at 512, where that loss is small.)

An epoch is described by index arrays only (`PackedEpoch`); tokens are gathered per batch
by `assemble_packed`, vectorised, so batch g stays a pure function of (seed, epoch, g).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from jaxbert.data import rng as rng_lib
from jaxbert.data.store import PreparedCorpus

PACKING_MODES = ("pairs", "full_sentences", "doc_sentences")
_STREAM_DOC_ORDER = 11


@dataclasses.dataclass(frozen=True)
class PackedEpoch:
    """One epoch's token stream: documents `docs` in order, document i occupying stream
    positions [stream_start[i], stream_start[i + 1]); its first `doc_len[i]` positions are
    its tokens, then a separator (cross-document mode) or padding up to a window edge."""

    docs: np.ndarray
    doc_len: np.ndarray
    first_token: np.ndarray  # global token index of each document's first token
    stream_start: np.ndarray
    window: int
    separators: bool

    @property
    def num_windows(self) -> int:
        return int(-(-int(self.stream_start[-1]) // self.window))


def pack_epoch(
    corpus: PreparedCorpus, docs: np.ndarray, *, mode: str, window: int, seed: int, epoch: int,
    process_index: int,
) -> PackedEpoch:  # fmt: skip
    """The stream of `docs` for one epoch (shuffled per epoch in full_sentences mode)."""
    docs = np.asarray(docs, dtype=np.int64)
    if mode == "full_sentences":
        key = rng_lib.derive_int(seed, epoch, process_index, _STREAM_DOC_ORDER)
        docs = docs[np.random.default_rng(key).permutation(len(docs))]
    first_token, doc_len = corpus.doc_token_spans(docs)  # opens only these docs' shards
    # full_sentences: the document, then [SEP]; doc_sentences: padded to whole windows.
    span = doc_len + 1 if mode == "full_sentences" else -(-doc_len // window) * window
    stream_start = np.concatenate([[0], np.cumsum(span)]).astype(np.int64)
    return PackedEpoch(docs, doc_len, first_token, stream_start, window, mode == "full_sentences")


def assemble_packed(
    corpus: PreparedCorpus, epoch: PackedEpoch, windows: np.ndarray, *, max_seq_length: int,
    cls_id: int, sep_id: int,
) -> dict[str, np.ndarray]:  # fmt: skip
    """``[CLS] window [SEP]`` + padding for a batch of window indices.

    Real tokens always form a prefix of the window (only a stream's or document's last
    window is short), so the closing [SEP] goes right after them.
    """
    w = epoch.window
    pos = np.asarray(windows, np.int64)[:, None] * w + np.arange(w)[None, :]
    j = np.searchsorted(epoch.stream_start, pos, side="right") - 1
    j = np.minimum(j, len(epoch.docs) - 1)
    offset = pos - epoch.stream_start[j]
    in_stream = pos < epoch.stream_start[-1]
    is_token = in_stream & (offset < epoch.doc_len[j])
    is_sep = in_stream & epoch.separators & (offset == epoch.doc_len[j])
    docs = np.where(is_token, epoch.docs[j], -1)
    ids = corpus.gather(np.where(is_token, epoch.first_token[j] + offset, 0), docs)
    ids = np.where(is_sep, sep_id, ids)
    n_real = (is_token | is_sep).sum(axis=1)
    rows = np.arange(len(pos))
    input_ids = np.zeros((len(pos), max_seq_length), np.int32)
    input_ids[:, 0] = cls_id
    input_ids[:, 1 : 1 + w] = np.where(is_token | is_sep, ids, 0)
    input_ids[rows, 1 + n_real] = sep_id
    input_mask = np.arange(max_seq_length)[None, :] < (2 + n_real)[:, None]
    return {
        "input_ids": input_ids,
        "input_mask": input_mask.astype(np.int32),
        "segment_ids": np.zeros((len(pos), max_seq_length), np.int32),
        "next_sentence_label": np.zeros(len(pos), np.int32),
        "first_doc": epoch.docs[j[:, 0]],
    }
