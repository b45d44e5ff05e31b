"""The texts to embed and the saved vectors.

`read_texts` reports an undecodable byte as FILE:LINE; `save_vectors` writes the .npz
beside its target and renames it into place, and `output_path` says which file that is
(numpy would add `.npz` silently) before any model is loaded. The .npz holds the vectors,
their index (text number, word, token span) and any correction applied to them, so a
file of vectors says what it contains.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from jaxbert.errors import UserError


def read_texts(path: str | os.PathLike) -> list[str]:
    """The non-blank lines of a UTF-8 file (a BOM is dropped), one text each.

    Decoded line by line so a bad byte is reported as `FILE:LINE` (the CLI prints the
    `jaxbert_where` it carries), not as an offset into the whole file.
    """
    p = Path(path)
    if p.is_dir():
        raise UserError(f"--file {p} is a directory, not a file")
    if not p.is_file():
        raise UserError(f"--file {p} does not exist")
    texts = []
    with p.open("rb") as f:
        for n, raw in enumerate(f, 1):
            try:
                line = raw.decode("utf-8-sig" if n == 1 else "utf-8")
            except UnicodeDecodeError as e:
                e.jaxbert_where = f"{p}:{n}"
                raise
            if line.strip():
                texts.append(line.strip())
    return texts


def output_path(path: str | os.PathLike) -> Path:
    """The file `--output` will write: numpy's savez would silently add `.npz` to any
    other name, so it is added here, where the caller can report the real path. Checked
    before any work, so a bad path costs no model loading."""
    p = Path(path)
    if p.suffix != ".npz":
        p = p.with_name(p.name + ".npz")
    for candidate in (Path(path), p):
        if candidate.is_dir():
            raise UserError(
                f"--output {candidate} is a directory; name a file in it, e.g. "
                f"{candidate / 'vectors.npz'}"
            )
    parent = p.parent
    if not parent.is_dir():
        what = "is a file, not a directory" if parent.exists() else "does not exist"
        raise UserError(f"--output {p}: {parent} {what}")
    return p


def save_vectors(path: Path, vectors: np.ndarray, texts: Sequence[str], **extra) -> None:
    """`vectors`, `texts` and `extra` arrays (the index, a correction) in one .npz."""
    save_npz(path, vectors=vectors, texts=np.asarray(texts), **extra)


def save_npz(path: Path, **arrays) -> None:
    """An .npz written to a temporary file beside `path` and renamed over it, so a crash
    or a full disk never leaves a truncated file there."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp's 0600 is for secrets; vectors are shared
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def corpus_sentences(
    corpus: Sequence[str | Path], count: int, min_words: int = 5
) -> list[list[str]]:
    """The first `count` sentences of ≥ `min_words` words of a corpus, split into words:
    the deterministic sample that statistics, corrections and word contexts come from."""
    from jaxbert.data.corpus import iter_corpus, split_sentences
    from jaxbert.embed.encoding import split_words

    out = []
    for doc in iter_corpus(list(corpus)):
        for sentence in split_sentences(doc):
            words = split_words(sentence)
            if len(words) >= min_words:
                out.append(words)
                if len(out) >= count:
                    return out
    if not out:
        raise UserError(
            f"--corpus {' '.join(map(str, corpus))}: no sentence of ≥ {min_words} words"
        )
    return out
