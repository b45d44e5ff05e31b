"""Read side of the prepared format (see `prepare.py`): shards opened on demand, from a
local disk (memory-mapped) or a bucket (`gs://…`, read by byte ranges).

Sentences and tokens get *global* indices over the virtual concatenation of all shards;
documents never cross shards, so a segment (a run of sentences of one document) is one
contiguous slice of one shard's token file. Where each shard starts comes from the
manifest's per-shard counts, so nothing is opened up front: a shard's index and token
files are read the first time one of its documents is asked for. A host that reads a
contiguous block of documents (`data.host_documents=contiguous`) thus opens only the
shards that hold them, and on a bucket fetches only the token bytes of its windows.
Packed modes need only per-document spans (`doc_token_spans`); sentence pairs
(`data.packing=pairs`) pick random-next segments from any document, so they load every
shard's sentence index (`doc_sentence_start` and friends, built once on first use).
"""

from __future__ import annotations

import functools
import io
import json
import os
import tempfile
from typing import Any

import numpy as np

from jaxbert import fs
from jaxbert.data.prepare import FORMAT, MANIFEST_NAME
from jaxbert.errors import UserError

# Bytes and requests this process read from object storage, token files apart from the
# rest (manifest-listed indexes, .npy headers, unigram counts, the tokenizer copy): what
# benchmarks/object_storage.py reports per host (a counting wrapper, not a server log).
REMOTE_READS = {"token_bytes": 0, "other_bytes": 0, "requests": 0}

# Two needed token runs closer than this many bytes are fetched as one range: fewer
# requests for a few bytes read twice (about one 128-token window).
_MERGE_GAP_BYTES = 256


def read_manifest(prepared_dir: fs.PathLike) -> dict:
    """The manifest of a complete prepared directory, or a UserError saying what to run."""
    if not os.fspath(prepared_dir):
        raise UserError("data.prepared_dir is empty: run `jaxbert data prepare` and set it")
    path = fs.as_path(prepared_dir) / MANIFEST_NAME
    try:
        text = path.read_text() if path.is_file() else None
    except OSError as e:
        raise UserError(f"{path}: unreadable ({e})") from e
    if text is None:
        raise UserError(
            f"{path} not found: {prepared_dir} is not a complete prepared corpus "
            "(run `jaxbert data prepare --corpus ... --tokenizer ... --out DIR`)"
        )
    try:
        manifest = json.loads(text)
    except json.JSONDecodeError as e:
        raise UserError(f"{path}: not valid JSON ({e})") from e
    if manifest.get("format") != FORMAT or not manifest.get("complete"):
        raise UserError(f"{path}: format {manifest.get('format')!r}, expected {FORMAT!r}")
    return manifest


def _fetch(path, start: int | None = None, end: int | None = None, kind="other") -> bytes:
    """Bytes [start, end) of an object, counted in REMOTE_READS[f"{kind}_bytes"]."""
    data = fs.remote_fs(path).cat_file(os.fspath(path).split("://", 1)[1], start, end)
    REMOTE_READS[f"{kind}_bytes"] += len(data)
    REMOTE_READS["requests"] += 1
    return data


def load_npy(path) -> np.ndarray:
    """A whole (small) .npy from a disk or a bucket."""
    if fs.is_remote(path):
        return np.load(io.BytesIO(_fetch(path)))
    return np.load(os.fspath(path))


class RemoteNpy:
    """A 1-D .npy on object storage, read by byte ranges: a slice or a gather fetches only
    the bytes it needs (nearby runs merged into one request), never the whole file."""

    def __init__(self, path):
        self.path, self.key = path, os.fspath(path).split("://", 1)[1]
        head = _fetch(path, 0, 128)  # numpy pads a 1-D header to 128 bytes; else read more
        length = int.from_bytes(head[8:10] if head[6] == 1 else head[8:12], "little")
        end = length + (10 if head[6] == 1 else 12)
        head = io.BytesIO(head if end <= len(head) else _fetch(path, 0, end))
        version = np.lib.format.read_magic(head)
        read_header = {(1, 0): np.lib.format.read_array_header_1_0}
        shape, _, self.dtype = read_header.get(version, np.lib.format.read_array_header_2_0)(head)
        if len(shape) != 1:
            raise ValueError(f"expected a 1-D array, got shape {shape}")
        self.offset, self.size = head.tell(), int(shape[0])

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, key) -> np.ndarray:
        if isinstance(key, slice):
            start, stop, step = key.indices(self.size)
            if step != 1:
                raise IndexError("RemoteNpy slices take step 1")
            if stop <= start:
                return np.zeros(0, self.dtype)
            item = self.dtype.itemsize
            data = _fetch(self.path, self.offset + start * item, self.offset + stop * item, "token")
            return np.frombuffer(data, self.dtype)
        return self.take(np.asarray(key))

    def take(self, positions: np.ndarray) -> np.ndarray:
        """Values at integer `positions` (any shape) with one ranged read per run."""
        flat = positions.ravel().astype(np.int64)
        if flat.size == 0:
            return np.zeros(positions.shape, self.dtype)
        uniq = np.unique(flat)
        if uniq[0] < 0 or uniq[-1] >= self.size:
            raise IndexError(f"{self.path}: position out of range [0, {self.size})")
        gap = max(1, _MERGE_GAP_BYTES // self.dtype.itemsize)
        breaks = np.flatnonzero(np.diff(uniq) > gap) + 1
        starts = uniq[np.concatenate([[0], breaks])]
        ends = uniq[np.concatenate([breaks - 1, [len(uniq) - 1]])] + 1
        item, rfs = self.dtype.itemsize, fs.remote_fs(self.path)
        chunks = rfs.cat_ranges(
            [self.key] * len(starts),
            (self.offset + starts * item).tolist(),
            (self.offset + ends * item).tolist(),
        )
        REMOTE_READS["token_bytes"] += sum(len(c) for c in chunks)
        REMOTE_READS["requests"] += len(chunks)
        buffer = np.frombuffer(b"".join(chunks), self.dtype)
        base = np.concatenate([[0], np.cumsum(ends - starts)])
        run = np.searchsorted(starts, flat, side="right") - 1
        return buffer[base[run] + flat - starts[run]].reshape(positions.shape)


class PreparedCorpus:
    """Random access to tokenized documents; pickles as its path (workers re-open it)."""

    def __init__(self, directory: fs.PathLike):
        self.directory = fs.as_path(directory)
        self.manifest = read_manifest(self.directory)
        self.vocab_size = int(self.manifest["tokenizer"]["vocab_size"])
        shards = self.manifest["shards"]
        self.shard_names = [s["name"] for s in shards]

        def starts(key: str) -> np.ndarray:
            return np.concatenate([[0], np.cumsum([int(s[key]) for s in shards])]).astype(np.int64)

        self.shard_doc_start = starts("documents")
        self.shard_sentence_start = starts("sentences")
        self.shard_token_start = starts("tokens")
        self._index: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self._tokens: dict[int, Any] = {}
        path = self.directory / self.manifest["unigram_counts"]
        self.unigram_counts = np.asarray(self._read(path, load_npy), dtype=np.int64)

    def __getstate__(self) -> dict:
        return {"directory": os.fspath(self.directory)}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["directory"])

    @property
    def num_documents(self) -> int:
        return int(self.shard_doc_start[-1])

    @property
    def opened_shards(self) -> list[int]:
        """Shards whose index or token file this object has read (tests, benchmarks)."""
        return sorted(set(self._index) | set(self._tokens))

    @functools.cached_property
    def tokenizer_path(self) -> str:
        """The tokenizer copy as a local file (sentencepiece cannot read a bucket)."""
        tok = self.manifest["tokenizer"]
        path = self.directory / tok["file"]
        if not fs.is_remote(path):
            return os.fspath(path)
        return _local_copy(path, tok["sha256"])

    def _read(self, path, reader):
        try:
            return reader(path)
        except (OSError, ValueError) as e:
            raise UserError(f"prepared file {path} unreadable: {e}") from e

    def shard_of(self, docs) -> np.ndarray:
        """The shard holding each document (from the manifest's counts: nothing opened)."""
        return np.searchsorted(self.shard_doc_start, docs, side="right") - 1

    def _shard_index(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(sentence start of each document, token start of each sentence) within shard k,
        checked against the manifest."""
        if k not in self._index:
            base = self.directory / self.shard_names[k]
            sents = self._read(f"{base}.sentences.npy", load_npy).astype(np.int64)
            docs = self._read(f"{base}.documents.npy", load_npy).astype(np.int64)
            shard = self.manifest["shards"][k]
            got = (len(docs), len(sents), int(docs.sum()), int(sents.sum()))
            want = (shard["documents"], shard["sentences"], len(sents), shard["tokens"])
            if got != want:
                raise UserError(f"{base}.*.npy disagree with the manifest's counts {shard}")
            self._index[k] = (_starts(docs), _starts(sents))
        return self._index[k]

    def _shard_tokens(self, k: int):
        if k not in self._tokens:
            path = f"{self.directory / self.shard_names[k]}.tokens.npy"
            if fs.is_remote(path):
                tokens = self._read(path, RemoteNpy)
            else:
                tokens = self._read(path, lambda p: np.load(p, mmap_mode="r"))
            if len(tokens) != self.manifest["shards"][k]["tokens"]:
                raise UserError(f"{path}: {len(tokens)} tokens, the manifest says otherwise")
            self._tokens[k] = tokens
        return self._tokens[k]

    @property
    def total_tokens(self) -> int:
        return int(self.shard_token_start[-1])

    def token_boundary_doc(self, token: int) -> int:
        """The first document that starts at or after global token `token`: a block edge
        balanced by tokens. Opens only the index of the shard holding that token."""
        if token >= self.total_tokens:
            return self.num_documents
        k = int(np.searchsorted(self.shard_token_start, token, side="right") - 1)
        doc_sent, sent_tok = self._shard_index(k)
        local = token - self.shard_token_start[k]
        return int(self.shard_doc_start[k] + np.searchsorted(sent_tok[doc_sent], local))

    def open_documents(self, docs: np.ndarray) -> None:
        """Opens (and checks against the manifest) the shards holding `docs`, so that a
        damaged shard is reported when training starts, not at the batch that reaches it."""
        for k in np.unique(self.shard_of(np.asarray(docs, np.int64))):
            self._shard_index(int(k))
            self._shard_tokens(int(k))

    def doc_token_spans(self, docs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(global first token, token count) of each document; opens only their shards."""
        docs = np.asarray(docs, np.int64)
        first, length = np.zeros(len(docs), np.int64), np.zeros(len(docs), np.int64)
        shards = self.shard_of(docs)
        for k in np.unique(shards):
            sel = shards == k
            doc_sent, sent_tok = self._shard_index(int(k))
            local = docs[sel] - self.shard_doc_start[k]
            t0, t1 = sent_tok[doc_sent[local]], sent_tok[doc_sent[local + 1]]
            first[sel], length[sel] = self.shard_token_start[k] + t0, t1 - t0
        return first, length

    @functools.cached_property
    def _sentence_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """Global (doc → first sentence, sentence → first token) over every shard."""
        parts = [self._shard_index(k) for k in range(len(self.shard_names))]
        doc_sent = [p[0][:-1] + self.shard_sentence_start[k] for k, p in enumerate(parts)]
        sent_tok = [p[1][:-1] + self.shard_token_start[k] for k, p in enumerate(parts)]
        return (
            np.concatenate([*doc_sent, [self.shard_sentence_start[-1]]]),
            np.concatenate([*sent_tok, [self.shard_token_start[-1]]]),
        )

    @property
    def doc_sentence_start(self) -> np.ndarray:
        return self._sentence_arrays[0]

    @property
    def sentence_token_start(self) -> np.ndarray:
        return self._sentence_arrays[1]

    @property
    def sentence_lengths(self) -> np.ndarray:
        return np.diff(self.sentence_token_start)

    def document_sentences(self, doc: int) -> list[np.ndarray]:
        """The token arrays of one document's sentences (for tests and inspection)."""
        s0, s1 = self.doc_sentence_start[doc], self.doc_sentence_start[doc + 1]
        return [self.gather_range(doc, s, s + 1) for s in range(s0, s1)]

    def gather_range(self, doc: int, s0: int, s1: int) -> np.ndarray:
        """Tokens of global sentences [s0, s1) of document `doc`."""
        shard = int(self.shard_of(doc))
        base = self.shard_token_start[shard]
        t0, t1 = self.sentence_token_start[s0] - base, self.sentence_token_start[s1] - base
        return np.asarray(self._shard_tokens(shard)[t0:t1], dtype=np.int32)

    def gather(self, positions: np.ndarray, docs: np.ndarray) -> np.ndarray:
        """Tokens at global token `positions` of documents `docs` (same shapes; docs < 0 → 0)."""
        out = np.zeros(positions.shape, dtype=np.int32)
        valid = docs >= 0
        shards = np.where(valid, self.shard_of(np.maximum(docs, 0)), -1)
        for k in np.unique(shards[valid]):
            sel = shards == k
            local = positions[sel] - self.shard_token_start[k]
            out[sel] = self._shard_tokens(int(k))[local]
        return out


def _starts(counts: np.ndarray) -> np.ndarray:
    return np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)


def _local_copy(path, sha256: str) -> str:
    """A bucket file copied once per content hash into the temp dir; returns its path."""
    name = os.fspath(path).rstrip("/").rsplit("/", 1)[-1]
    folder = os.path.join(tempfile.gettempdir(), "jaxbert-prepared-files", sha256[:32])
    local = os.path.join(folder, name)
    if not os.path.isfile(local):
        os.makedirs(folder, exist_ok=True)
        fs.atomic_write_bytes(local, _fetch(path))
    return local
