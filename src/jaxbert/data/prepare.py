"""`jaxbert data prepare`: tokenize a corpus once into numpy shards plus a manifest.

Output directory layout (format ``jaxbert-prepared-v1``)::

    shard-00000.tokens.npy      token ids of every sentence, concatenated (uint16 or int32)
    shard-00000.sentences.npy   int32 token count of each sentence
    shard-00000.documents.npy   int32 sentence count of each document (no document spans shards)
    unigram_counts.npy          int64 [vocab_size] token frequencies, for random replacement
    tokenizer/                  a copy of the tokenizer, so the directory is self-contained
    manifest.json               written last: its presence means "complete"

Plain ``.npy`` files are memory-mapped by the pipeline, so each process touches only the
pages of its own documents. Work is spread over processes (sentence splitting and
tokenization per chunk of documents) with a bounded queue, so memory stays flat.
Re-running with the same inputs is a no-op; with changed inputs (files, tokenizer,
language) or ``force`` the directory is rebuilt beside the old one (``.NAME.tmp-PID``),
checked, and swapped in by renaming (`replace_directory`): until the new output is
complete and valid the old one stays in place untouched, whatever goes wrong (a
truncated gzip, a corpus of blank lines, a SIGKILL).
"""

from __future__ import annotations

import collections
import dataclasses
import json
import multiprocessing
import os
import shutil
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from importlib import metadata
from pathlib import Path

import numpy as np

from jaxbert import fs
from jaxbert.data import corpus as corpus_lib
from jaxbert.data.tokenizer import (
    TRAIN_CONFIG_NAME,
    Tokenizer,
    file_sha256,
    load_tokenizer,
    replace_directory,
)
from jaxbert.errors import UserError

MANIFEST_NAME = "manifest.json"
FORMAT = "jaxbert-prepared-v1"
UNIGRAM_NAME = "unigram_counts.npy"
TOKENIZER_DIR = "tokenizer"

_worker: dict = {}  # per-process tokenizer and language, set by _init_worker


def _init_worker(tokenizer_path: str, language: str) -> None:
    _worker["tokenizer"] = load_tokenizer(tokenizer_path)
    _worker["language"] = language


def _tokenize_chunk(docs: list[list[str]]) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Sentence-splits and tokenizes documents.

    Returns (tokens, sentence lengths, per-document sentence counts, documents dropped
    because nothing tokenized). Empty sentences are dropped.
    """
    tok: Tokenizer = _worker["tokenizer"]
    tokens, sent_lens, doc_counts, dropped = [], [], [], 0
    for doc in docs:
        sentences = corpus_lib.split_sentences(doc, _worker["language"])
        encoded = [ids for ids in tok.encode_batch(sentences) if ids] if sentences else []
        if not encoded:
            dropped += 1
            continue
        tokens.extend(encoded)
        sent_lens.extend(len(ids) for ids in encoded)
        doc_counts.append(len(encoded))
    flat = np.fromiter((i for ids in tokens for i in ids), dtype=np.int32)
    return flat, np.asarray(sent_lens, np.int32), np.asarray(doc_counts, np.int32), dropped


def _chunks(docs: Iterable[list[str]], size: int) -> Iterator[list[list[str]]]:
    chunk: list[list[str]] = []
    for doc in docs:
        chunk.append(doc)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _map_bounded(chunks: Iterator, workers: int, tokenizer_path: str, language: str) -> Iterator:
    """Ordered parallel map with at most 2 * workers chunks in flight."""
    if workers <= 1:
        _init_worker(tokenizer_path, language)
        yield from map(_tokenize_chunk, chunks)
        return
    # spawn, not fork: the parent may have imported multithreaded libraries.
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(workers, initializer=_init_worker, initargs=(tokenizer_path, language)) as pool:
        pending: collections.deque = collections.deque()
        for chunk in chunks:
            pending.append(pool.apply_async(_tokenize_chunk, (chunk,)))
            if len(pending) >= 2 * workers:
                yield pending.popleft().get()
        while pending:
            yield pending.popleft().get()


class _ShardWriter:
    """Accumulates tokenized documents and writes them as numbered shards."""

    def __init__(self, out_dir: Path, dtype: np.dtype, max_tokens: int):
        self.out_dir, self.dtype, self.max_tokens = out_dir, dtype, max_tokens
        self.shards: list[dict] = []
        self._parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self._tokens = 0

    def add(self, tokens: np.ndarray, sent_lens: np.ndarray, doc_counts: np.ndarray) -> None:
        if len(doc_counts):
            self._parts.append((tokens, sent_lens, doc_counts))
            self._tokens += len(tokens)
        if self._tokens >= self.max_tokens:
            self.flush()

    def flush(self) -> None:
        if not self._parts:
            return
        tokens, sent_lens, doc_counts = (np.concatenate(x) for x in zip(*self._parts))
        name = f"shard-{len(self.shards):05d}"
        _save_npy(self.out_dir / f"{name}.tokens.npy", tokens.astype(self.dtype))
        _save_npy(self.out_dir / f"{name}.sentences.npy", sent_lens)
        _save_npy(self.out_dir / f"{name}.documents.npy", doc_counts)
        self.shards.append(
            {
                "name": name,
                "documents": int(len(doc_counts)),
                "sentences": int(len(sent_lens)),
                "tokens": int(len(tokens)),
            }
        )
        self._parts, self._tokens = [], 0


def _save_npy(path: Path, array: np.ndarray) -> None:
    tmp = path.with_name(path.name + ".tmp.npy")
    np.save(tmp, array)
    os.replace(tmp, path)


def _input_fingerprint(specs: Sequence[str], tok: Tokenizer, language: str) -> dict:
    local = [s for s in specs if not s.startswith(corpus_lib.TFDS_PREFIX)]
    files = corpus_lib.list_corpus_files(local) if local else []
    return {
        "format": FORMAT,
        "corpus": list(specs),
        "files": [
            {"path": str(f), "bytes": f.stat().st_size, "mtime_ns": f.stat().st_mtime_ns}
            for f in files
        ],
        "tokenizer_sha256": tok.fingerprint(),
        "language": language,
    }


@dataclasses.dataclass(frozen=True)
class _Options:
    workers: int
    language: str
    shard_max_tokens: int
    chunk_docs: int
    strict: bool
    tfds_data_dir: str | None
    tfds_feature: str
    progress: bool


def prepare(
    corpus: Sequence[str | Path],
    tokenizer_path: str | Path,
    out_dir: str | Path,
    *,
    workers: int | None = None,
    language: str = "en",
    force: bool = False,
    shard_max_tokens: int = 64_000_000,
    chunk_docs: int = 32,
    strict: bool = False,
    tfds_data_dir: str | None = None,
    tfds_feature: str = "text",
    progress: bool = True,
) -> dict:
    """Tokenizes `corpus` into `out_dir`; returns the manifest. Idempotent (see module doc).

    `strict` refuses a corpus line that is not UTF-8 instead of skipping it.
    """
    specs = [str(s) for s in corpus]
    _check_args(specs, workers, shard_max_tokens, chunk_docs)
    tok = load_tokenizer(tokenizer_path)
    out = fs.as_path(out_dir) if fs.is_remote(out_dir) else Path(out_dir)
    inputs = _input_fingerprint(specs, tok, language)
    current = None if force else _current_manifest(out, inputs, strict, progress)
    if current is not None:
        return current
    opts = _Options(
        workers=workers if workers is not None else (os.cpu_count() or 1),
        language=language, shard_max_tokens=shard_max_tokens, chunk_docs=chunk_docs,
        strict=strict, tfds_data_dir=tfds_data_dir, tfds_feature=tfds_feature,
        progress=progress,
    )  # fmt: skip
    start = time.time()
    build = lambda staged: _build(staged, specs, tok, inputs, opts)  # noqa: E731
    if fs.is_remote(out):
        manifest = _build_to_bucket(out, build)
    else:
        manifest = replace_directory(out, build, owned=_is_prepared_output, command="data prepare")
    _log(
        f"data prepare: {manifest['documents']:,} documents, {manifest['sentences']:,} sentences, "
        f"{manifest['tokens']:,} tokens in {len(manifest['shards'])} shard(s), "
        f"{time.time() - start:.1f}s → {out / MANIFEST_NAME}",
        progress,
    )
    return manifest


def _build_to_bucket(out, build) -> dict:
    """Builds and checks the output on a local disk, then uploads it under `out` with the
    manifest last (`fs.swap_in_dir`): a prefix without manifest.json reads as incomplete.
    Objects there that `data prepare` did not write are refused first, as on a disk."""
    import tempfile  # noqa: PLC0415

    top = {name.split("/", 1)[0] for name in fs.relative_files(out)} if out.exists() else set()
    foreign = sorted(name for name in top if not _is_prepared_output(name))
    if foreign:
        raise UserError(
            f"--out {out} holds {', '.join(foreign[:3])}, which `jaxbert data prepare` did "
            "not write; it replaces the prefix whole, so give an empty or new --out"
        )
    with tempfile.TemporaryDirectory(prefix="jaxbert-prepare-") as tmp:
        staged = Path(tmp) / "out"
        staged.mkdir()
        manifest = build(staged)
        fs.swap_in_dir(staged, out, marker=MANIFEST_NAME)
    return manifest


def _check_args(
    specs: list[str], workers: int | None, shard_max_tokens: int, chunk_docs: int
) -> None:
    if not specs:
        raise UserError("no corpus given (--corpus PATH ...)")
    if workers is not None and workers < 0:
        raise UserError(f"--workers must be >= 0 (0: no worker processes), got {workers}")
    if shard_max_tokens < 1:
        raise UserError(f"--shard-max-tokens must be >= 1, got {shard_max_tokens}")
    if chunk_docs < 1:
        raise UserError(f"chunk_docs must be >= 1, got {chunk_docs}")


def _current_manifest(out: Path, inputs: dict, strict: bool, progress: bool) -> dict | None:
    """The existing manifest when it was built from `inputs`, else None (rebuild).

    Under `strict`, an output that skipped undecodable lines is not current: the rebuild
    is what gets to refuse them.
    """
    path = out / MANIFEST_NAME
    if not path.is_file():
        return None
    try:
        old = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        old = None
    if not isinstance(old, dict):
        _log(f"data prepare: {path} is unreadable, rebuilding {out}", progress)
        return None
    skipped = old.get("skipped")
    skipped = skipped.get("undecodable_lines", 0) if isinstance(skipped, dict) else 0
    if old.get("inputs") == inputs and not (strict and skipped):
        _log(f"data prepare: {out} is up to date ({old.get('tokens', 0):,} tokens)", progress)
        return old
    _log(f"data prepare: inputs changed, rebuilding {out}", progress)
    return None


def _build(staged: Path, specs: list[str], tok: Tokenizer, inputs: dict, opts: _Options) -> dict:
    """Writes and checks a complete prepared directory in `staged`; returns its manifest."""
    dtype = np.dtype(np.uint16 if tok.vocab_size <= np.iinfo(np.uint16).max else np.int32)
    writer = _ShardWriter(staged, dtype, opts.shard_max_tokens)
    stats = corpus_lib.ReadStats()
    unigram = np.zeros(tok.vocab_size, dtype=np.int64)
    docs = corpus_lib.iter_corpus(
        specs, stats, strict=opts.strict,
        tfds_data_dir=opts.tfds_data_dir, tfds_feature=opts.tfds_feature,
    )  # fmt: skip
    dropped = 0
    bar = _progress_bar(opts.progress)
    try:
        for tokens, sent_lens, doc_counts, n_dropped in _map_bounded(
            _chunks(docs, opts.chunk_docs), opts.workers, str(tok.path), opts.language
        ):
            writer.add(tokens, sent_lens, doc_counts)
            unigram += np.bincount(tokens, minlength=tok.vocab_size)
            dropped += n_dropped
            bar.update(len(doc_counts) + n_dropped)
    finally:
        bar.close()
    writer.flush()
    manifest = _finish(staged, tok, writer, unigram, stats, dropped, inputs, opts.language, dtype)
    _validate(staged, manifest)
    return manifest


def _finish(out, tok, writer, unigram, stats, dropped, inputs, language, dtype) -> dict:
    if not writer.shards:
        raise UserError(f"corpus {inputs['corpus']} contains no text (0 documents after reading)")
    _save_npy(out / UNIGRAM_NAME, unigram)
    tok_dir = out / TOKENIZER_DIR
    tok_dir.mkdir(exist_ok=True)
    shutil.copy2(tok.path, tok_dir / tok.path.name)
    if (tok.path.parent / TRAIN_CONFIG_NAME).is_file():
        shutil.copy2(tok.path.parent / TRAIN_CONFIG_NAME, tok_dir / TRAIN_CONFIG_NAME)
    if stats.undecodable_warning():
        print(f"data prepare: {stats.undecodable_warning()}", file=sys.stderr)
    manifest = {
        "format": FORMAT,
        "complete": True,
        "documents": sum(s["documents"] for s in writer.shards),
        "sentences": sum(s["sentences"] for s in writer.shards),
        "tokens": sum(s["tokens"] for s in writer.shards),
        "token_dtype": dtype.name,
        "shards": writer.shards,
        "unigram_counts": UNIGRAM_NAME,
        "tokenizer": {
            "file": f"{TOKENIZER_DIR}/{tok.path.name}",
            "kind": tok.kind,
            "vocab_size": tok.vocab_size,
            "lowercase": tok.lowercase,
            "sha256": inputs["tokenizer_sha256"],
        },
        "sentence_splitter": f"sentencex=={_version('sentencex')} ({language})",
        "skipped": stats.as_dict() | {"documents_without_tokens": dropped},
        "inputs": inputs,
    }
    fs.atomic_write_text(out / MANIFEST_NAME, json.dumps(manifest, indent=1) + "\n")
    return manifest


def _validate(out: Path, manifest: dict) -> None:
    """Re-reads what was written before it may replace a good output: the manifest is
    complete, every shard's arrays open with the stated counts, the unigram counts add up,
    and the tokenizer copy has the recorded checksum."""
    from jaxbert.data.store import read_manifest  # noqa: PLC0415 (store imports this module)

    for shard in read_manifest(out)["shards"]:
        base = out / shard["name"]
        tokens, sents, docs = (
            np.load(f"{base}.{kind}.npy", mmap_mode="r")
            for kind in ("tokens", "sentences", "documents")
        )
        counts = (len(tokens), len(sents), len(docs), int(sents.sum()), int(docs.sum()))
        wanted = (shard["tokens"], shard["sentences"], shard["documents"], len(tokens), len(sents))
        if counts != wanted:
            raise UserError(f"{base}.*.npy: written shard disagrees with the manifest {shard}")
    unigram = np.load(out / UNIGRAM_NAME)
    if len(unigram) != manifest["tokenizer"]["vocab_size"] or unigram.sum() != manifest["tokens"]:
        raise UserError(f"{out / UNIGRAM_NAME}: written counts disagree with the manifest")
    copy = out / manifest["tokenizer"]["file"]
    if file_sha256(copy) != manifest["tokenizer"]["sha256"]:
        raise UserError(f"{copy}: the tokenizer copy differs from the tokenizer")


def _is_prepared_output(name: str) -> bool:
    """Names this module writes (or left behind when killed, in older versions)."""
    if name in (MANIFEST_NAME, MANIFEST_NAME + ".tmp", UNIGRAM_NAME, TOKENIZER_DIR):
        return True
    return (name.startswith("shard-") and name.endswith(".npy")) or name.endswith(".tmp.npy")


def _progress_bar(enabled: bool):
    from tqdm import tqdm  # noqa: PLC0415

    # disable=None: no bar when stderr is not a terminal (a log file would get one line
    # of \r-separated updates, thousands of characters long)
    return tqdm(desc="data prepare", unit=" docs", disable=None if enabled else True,
                file=sys.stderr)  # fmt: skip


def _log(message: str, enabled: bool) -> None:
    if enabled:
        print(message, file=sys.stderr)


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "unknown"
