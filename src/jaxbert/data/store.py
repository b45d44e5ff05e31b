"""Read side of the prepared format (see `prepare.py`): memory-mapped shards + indexes.

Sentences and tokens get *global* indices over the virtual concatenation of all shards;
documents never cross shards, so a segment (a run of sentences of one document) is one
contiguous slice of one shard's token file.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from jaxbert.data.prepare import FORMAT, MANIFEST_NAME
from jaxbert.errors import UserError


def read_manifest(prepared_dir: str | Path) -> dict:
    """The manifest of a complete prepared directory, or a UserError saying what to run."""
    path = Path(prepared_dir) / MANIFEST_NAME
    if not str(prepared_dir):
        raise UserError("data.prepared_dir is empty: run `jaxbert data prepare` and set it")
    if not path.is_file():
        raise UserError(
            f"{path} not found: {prepared_dir} is not a complete prepared corpus "
            "(run `jaxbert data prepare --corpus ... --tokenizer ... --out DIR`)"
        )
    try:
        manifest = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise UserError(f"{path}: not valid JSON ({e})") from e
    if manifest.get("format") != FORMAT or not manifest.get("complete"):
        raise UserError(f"{path}: format {manifest.get('format')!r}, expected {FORMAT!r}")
    return manifest


class PreparedCorpus:
    """Random access to tokenized documents; pickles as its path (workers re-open it)."""

    def __init__(self, directory: str | Path):
        self.directory = Path(directory)
        self.manifest = read_manifest(self.directory)
        self.vocab_size = int(self.manifest["tokenizer"]["vocab_size"])
        self.tokenizer_path = self.directory / self.manifest["tokenizer"]["file"]
        shards, sent_lens, doc_counts = [], [], []
        for shard in self.manifest["shards"]:
            base = self.directory / shard["name"]
            try:
                shards.append(np.load(f"{base}.tokens.npy", mmap_mode="r"))
                sent_lens.append(np.load(f"{base}.sentences.npy"))
                doc_counts.append(np.load(f"{base}.documents.npy"))
            except (OSError, ValueError) as e:
                raise UserError(f"prepared shard {base}.*.npy unreadable: {e}") from e
        self.shard_tokens = shards
        self.sentence_lengths = np.concatenate(sent_lens).astype(np.int64)
        doc_sentence_counts = np.concatenate(doc_counts).astype(np.int64)
        self.doc_sentence_start = np.concatenate([[0], np.cumsum(doc_sentence_counts)])
        self.sentence_token_start = np.concatenate([[0], np.cumsum(self.sentence_lengths)])
        shard_sizes = [len(s) for s in shards]
        self.shard_token_start = np.concatenate([[0], np.cumsum(shard_sizes)]).astype(np.int64)
        self.doc_shard = np.repeat(np.arange(len(shards)), [len(c) for c in doc_counts])
        if self.sentence_token_start[-1] != self.shard_token_start[-1]:
            raise UserError(f"{self.directory}: shard token counts disagree with sentence lengths")
        counts = np.load(self.directory / self.manifest["unigram_counts"])
        self.unigram_counts = np.asarray(counts, dtype=np.int64)

    def __getstate__(self) -> dict:
        return {"directory": str(self.directory)}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["directory"])

    @property
    def num_documents(self) -> int:
        return len(self.doc_sentence_start) - 1

    def document_sentences(self, doc: int) -> list[np.ndarray]:
        """The token arrays of one document's sentences (for tests and inspection)."""
        s0, s1 = self.doc_sentence_start[doc], self.doc_sentence_start[doc + 1]
        return [self.gather_range(doc, s, s + 1) for s in range(s0, s1)]

    def gather_range(self, doc: int, s0: int, s1: int) -> np.ndarray:
        """Tokens of global sentences [s0, s1) of document `doc`."""
        shard = self.doc_shard[doc]
        base = self.shard_token_start[shard]
        t0, t1 = self.sentence_token_start[s0] - base, self.sentence_token_start[s1] - base
        return np.asarray(self.shard_tokens[shard][t0:t1], dtype=np.int32)

    def gather(self, positions: np.ndarray, docs: np.ndarray) -> np.ndarray:
        """Tokens at global token `positions` of documents `docs` (same shapes; docs < 0 → 0)."""
        out = np.zeros(positions.shape, dtype=np.int32)
        valid = docs >= 0
        shards = np.where(valid, self.doc_shard[np.maximum(docs, 0)], -1)
        for k in np.unique(shards[valid]):
            sel = shards == k
            out[sel] = self.shard_tokens[k][positions[sel] - self.shard_token_start[k]]
        return out
