"""`jaxbert embed`: contextual embeddings of words and sentences from a chosen layer.

The BERT paper (section 5.4) uses the encoder as a feature extractor: the hidden states
of one layer, or the sum (or concatenation) of the last four. `BertEncoder` returns only
the last layer, so `hidden_states` re-applies its own `Embeddings` and `Layer` modules
one layer at a time to the same parameters; the last state equals the encoder's output.

A word's vector is the mean of its sub-tokens' vectors; a sentence's vector is the mean
over all its sub-tokens (not [CLS]/[SEP]). Texts are split into words and punctuation
first, and each word is tokenized on its own, so we always know which sub-tokens belong
to which word.

`read_texts` reports an undecodable byte as FILE:LINE; `save_vectors` writes the .npz
beside its target and renames it into place, and `output_path` says which file that is
(numpy would add `.npz` silently) before any model is loaded.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import tempfile
from collections.abc import Sequence
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from jaxbert.errors import UserError

DEMO_WORD = "bank"
DEMO_SENTENCES = (
    "He sat on the bank of the river.",
    "She deposited cash at the bank.",
    "The river bank was muddy.",
    "The bank approved the loan.",
)
COMBINES = ("sum", "mean", "concat")
_WORD_RE = re.compile(r"\w+|[^\w\s]")


def hidden_states(model_cfg, bert_params, input_ids, input_mask, segment_ids) -> jax.Array:
    """[num_layers + 1, B, S, H]: the embedding output, then each transformer layer's."""
    from jaxbert.model.encoder import Embeddings, Layer, layer_norm

    x = Embeddings(model_cfg).apply(
        {"params": bert_params["embeddings"]}, input_ids, segment_ids, True
    )
    kv_lengths = jnp.sum(input_mask, axis=-1).astype(jnp.int32)
    layer = Layer(model_cfg, deterministic=True)
    encoder = bert_params["encoder"]
    states = [x]
    for i in range(model_cfg.num_layers):
        if model_cfg.scan_layers:  # scanned params carry a leading layer axis
            p = jax.tree.map(lambda a, i=i: a[i], encoder["layers"])
        else:
            p = encoder[f"layers_{i}"]
        x, _ = layer.apply({"params": p}, x, kv_lengths)
        states.append(x)
    if model_cfg.pre_layer_norm:  # the encoder normalises its final output
        states[-1] = layer_norm(model_cfg, "final_layer_norm").apply(
            {"params": bert_params["final_layer_norm"]}, x
        )
    return jnp.stack(states).astype(jnp.float32)


def parse_layer(layer: str | int, num_layers: int) -> list[int]:
    """Indices into `hidden_states`: "last", "last4", N (0 = embeddings, -1 = last)."""
    text = str(layer).strip().lower()
    if text == "last":
        return [num_layers]
    if text == "last4":  # a model with fewer layers uses all of its transformer layers
        return list(range(max(num_layers - 3, 1), num_layers + 1))
    try:
        n = int(text)
    except ValueError:
        raise UserError(f"--layer must be an integer, 'last' or 'last4', got {layer!r}") from None
    index = n if n >= 0 else num_layers + 1 + n
    if not 0 <= index <= num_layers:
        raise UserError(
            f"--layer {n} is out of range: the model has {num_layers} layers (0..{num_layers})"
        )
    return [index]


def select_layers(states: np.ndarray, layers: Sequence[int], combine: str = "sum") -> np.ndarray:
    """[L+1, B, S, H] → [B, S, H] (sum/mean of the chosen layers) or [B, S, k·H] (concat)."""
    if combine not in COMBINES:
        raise UserError(f"--combine must be one of {COMBINES}, got {combine!r}")
    chosen = states[np.asarray(layers)]
    if combine == "concat":
        return np.concatenate(list(chosen), axis=-1)
    return chosen.sum(0) if combine == "sum" else chosen.mean(0)


@dataclasses.dataclass
class Encoded:
    input_ids: np.ndarray  # [B, S]
    input_mask: np.ndarray
    words: list[list[str]]
    spans: list[list[tuple[int, int]]]  # per text, per word: [start, end) token positions


def split_words(text: str) -> list[str]:
    return _WORD_RE.findall(text)


def encode_texts(tokenizer, texts: Sequence[str], max_seq_length: int = 128) -> Encoded:
    """[CLS] sub-tokens [SEP] per text, padded to a common length (a multiple of 8)."""
    rows, words, spans = [], [], []
    for text in texts:
        ids, row_words, row_spans = [tokenizer.cls_id], [], []
        for w in split_words(text):
            pieces = list(tokenizer.encode(w)) or [tokenizer.unk_id]
            if len(ids) + len(pieces) > max_seq_length - 1:
                break
            row_words.append(w)
            row_spans.append((len(ids), len(ids) + len(pieces)))
            ids += pieces
        rows.append([*ids, tokenizer.sep_id])
        words.append(row_words)
        spans.append(row_spans)
    length = -(-max(len(r) for r in rows) // 8) * 8
    input_ids = np.full((len(rows), length), tokenizer.pad_id, np.int32)
    input_mask = np.zeros((len(rows), length), np.int32)
    for i, r in enumerate(rows):
        input_ids[i, : len(r)] = r
        input_mask[i, : len(r)] = 1
    return Encoded(input_ids, input_mask, words, spans)


class Embedder:
    """Contextual vectors from one checkpoint, layer choice and combination."""

    def __init__(self, model_cfg, bert_params, tokenizer, layer="last4", combine="sum"):
        self.model_cfg, self.tokenizer, self.combine = model_cfg, tokenizer, combine
        self.layers = parse_layer(layer, model_cfg.num_layers)
        self.params = bert_params
        self._states = jax.jit(lambda p, i, m, s: hidden_states(model_cfg, p, i, m, s))

    def token_vectors(self, texts: Sequence[str]) -> tuple[np.ndarray, Encoded]:
        if not texts:
            raise UserError("no text to embed: give --text, --file or --demo")
        enc = encode_texts(self.tokenizer, texts, self.model_cfg.max_position_embeddings)
        states = self._states(
            self.params, enc.input_ids, enc.input_mask, np.zeros_like(enc.input_ids)
        )
        return select_layers(np.asarray(states), self.layers, self.combine), enc

    def word_vectors(self, texts: Sequence[str], word: str) -> np.ndarray:
        """[len(texts), D]: the first occurrence of `word` (case-insensitive) in each text."""
        vectors, enc = self.token_vectors(texts)
        out = []
        for i, (words, spans) in enumerate(zip(enc.words, enc.spans)):
            hits = [k for k, w in enumerate(words) if w.lower() == word.lower()]
            if not hits:
                raise UserError(f"the word {word!r} does not occur in text {i + 1}: {texts[i]!r}")
            start, end = spans[hits[0]]
            out.append(vectors[i, start:end].mean(0))
        return np.stack(out)

    def sentence_vectors(self, texts: Sequence[str]) -> np.ndarray:
        vectors, enc = self.token_vectors(texts)
        out = []
        for i, spans in enumerate(enc.spans):
            end = spans[-1][1] if spans else 1
            out.append(vectors[i, 1:end].mean(0) if spans else vectors[i, 0])
        return np.stack(out)


def cosine_matrix(vectors: np.ndarray) -> np.ndarray:
    v = vectors / np.maximum(np.linalg.norm(vectors, axis=-1, keepdims=True), 1e-12)
    return v @ v.T


def format_table(labels: Sequence[str], sims: np.ndarray, title: str) -> str:
    width = min(max(len(s) for s in labels), 48) + 5
    head = " " * width + "".join(f"{f'[{j + 1}]':>7}" for j in range(len(labels)))
    lines = [title, "", head]
    for i, label in enumerate(labels):
        name = f"[{i + 1}] " + (label if len(label) <= 48 else label[:45] + "...")
        lines.append(f"{name:<{width}}" + "".join(f"{sims[i, j]:7.3f}" for j in range(len(labels))))
    return "\n".join(lines)


# --------------------------------------------------------------------------------------
# Files: the texts to embed and the saved vectors


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


def save_vectors(path: Path, vectors: np.ndarray, texts: Sequence[str]) -> None:
    """`vectors` and `texts` as an .npz, written to a temporary file beside `path` and
    renamed over it, so a crash or a full disk never leaves a truncated file there."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, vectors=vectors, texts=np.asarray(texts))
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp's 0600 is for secrets; vectors are shared
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
