"""One tokenizer interface over sentencepiece models and BERT WordPiece vocabularies.

jaxbert trains sentencepiece models (unigram or BPE) with the BERT special tokens at fixed
ids — [PAD]=0, [UNK]=1, [CLS]=2, [SEP]=3, [MASK]=4 — and byte fallback, so unseen characters
become byte pieces instead of [UNK]. Imported Hugging Face checkpoints bring a WordPiece
``vocab.txt``; it is loaded with the `tokenizers` library (not a hand-written WordPiece).

Both kinds expose the same `Tokenizer`: special ids, encode/decode, and a per-token "starts
a word" flag (vectorised through a lookup table) that whole-word and span masking need.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np

from jaxbert.errors import UserError

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
SP_MODEL_NAME = "tokenizer.model"
WORDPIECE_VOCAB_NAME = "vocab.txt"
TRAIN_CONFIG_NAME = "tokenizer_config.json"
_SP_WORD_BOUNDARY = "\u2581"  # "▁", sentencepiece's word-boundary marker


class Tokenizer:
    """A tokenizer with BERT's special tokens; built by `load_tokenizer`."""

    def __init__(
        self,
        *,
        kind: str,
        path: Path,
        pieces: Sequence[str],
        encode_batch: Callable[[list[str]], list[list[int]]],
        decode: Callable[[list[int]], str],
        word_start_table: np.ndarray,
        lowercase: bool,
    ):
        self.kind = kind
        self.path = path
        self.lowercase = lowercase
        self._pieces = list(pieces)
        self._ids = {p: i for i, p in enumerate(self._pieces)}
        self._encode_batch = encode_batch
        self._decode = decode
        ids = {}
        for token in SPECIAL_TOKENS:
            if token not in self._ids:
                raise UserError(f"tokenizer {path}: special token {token} is missing")
            ids[token] = self._ids[token]
        if ids["[PAD]"] != 0:
            raise UserError(f"tokenizer {path}: [PAD] must have id 0, has {ids['[PAD]']}")
        self.pad_id, self.unk_id = ids["[PAD]"], ids["[UNK]"]
        self.cls_id, self.sep_id, self.mask_id = ids["[CLS]"], ids["[SEP]"], ids["[MASK]"]
        self.special_table = np.zeros(len(self._pieces), dtype=bool)
        self.special_table[[self.pad_id, self.cls_id, self.sep_id, self.mask_id]] = True
        self.word_start_table = np.asarray(word_start_table, dtype=bool)

    @property
    def vocab_size(self) -> int:
        return len(self._pieces)

    def encode(self, text: str) -> list[int]:
        """Token ids of `text`, no special tokens added."""
        return self._encode_batch([text])[0]

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        return self._encode_batch(texts)

    def decode(self, ids: Iterable[int]) -> str:
        return self._decode([int(i) for i in ids])

    def id_to_token(self, i: int) -> str:
        return self._pieces[int(i)]

    def token_to_id(self, token: str) -> int:
        """The id of `token`, or unk_id when it is not in the vocabulary."""
        return self._ids.get(token, self.unk_id)

    def word_starts(self, ids: np.ndarray | Sequence[int]) -> np.ndarray:
        """True where a token begins a word (specials count as word starts)."""
        return self.word_start_table[np.asarray(ids, dtype=np.int64)]

    def fingerprint(self) -> str:
        """sha256 of the model/vocab file: prepared data records it to catch mismatches."""
        return file_sha256(self.path)


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def load_tokenizer(path: str | Path) -> Tokenizer:
    """Loads a sentencepiece ``.model``, a WordPiece ``vocab.txt``, or a directory with one."""
    path = Path(path)
    if path.is_dir():
        for name in (SP_MODEL_NAME, WORDPIECE_VOCAB_NAME):
            if (path / name).is_file():
                return load_tokenizer(path / name)
        models = sorted(path.glob("*.model"))
        if len(models) == 1:
            return load_tokenizer(models[0])
        raise UserError(f"tokenizer directory {path} has no {SP_MODEL_NAME} or vocab.txt")
    if not path.is_file():
        raise UserError(f"tokenizer {path} does not exist")
    if path.suffix == ".model":
        return _load_sentencepiece(path)
    if path.suffix == ".txt":
        return _load_wordpiece(path)
    raise UserError(f"tokenizer {path}: expected a sentencepiece .model or a WordPiece vocab.txt")


def _load_sentencepiece(path: Path) -> Tokenizer:
    import sentencepiece as spm  # noqa: PLC0415

    sp = spm.SentencePieceProcessor()
    try:
        sp.Load(str(path))
    except (OSError, RuntimeError) as e:
        raise UserError(f"tokenizer {path}: not a sentencepiece model ({e})") from e
    pieces = [sp.IdToPiece(i) for i in range(sp.GetPieceSize())]
    starts = np.array(
        [p.startswith(_SP_WORD_BOUNDARY) or sp.IsControl(i) for i, p in enumerate(pieces)]
    )
    config_path = path.parent / TRAIN_CONFIG_NAME
    lowercase = False
    if config_path.is_file():
        lowercase = bool(json.loads(config_path.read_text()).get("lowercase", False))
    return Tokenizer(
        kind="sentencepiece",
        path=path,
        pieces=pieces,
        encode_batch=lambda texts: sp.Encode(texts),
        decode=lambda ids: sp.Decode(ids),
        word_start_table=starts,
        lowercase=lowercase,
    )


def _load_wordpiece(path: Path) -> Tokenizer:
    from tokenizers import BertWordPieceTokenizer  # noqa: PLC0415

    try:
        pieces = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as e:
        raise UserError(f"tokenizer {path}: not UTF-8 text ({e})") from e
    if len(set(pieces)) != len(pieces):
        dup = next(p for i, p in enumerate(pieces) if p in pieces[:i])
        raise UserError(f"tokenizer {path}: duplicate token {dup!r}")
    lowercase = _wordpiece_lowercase(path, pieces)
    wp = BertWordPieceTokenizer(str(path), lowercase=lowercase)
    starts = np.array([not p.startswith("##") for p in pieces])

    def encode_batch(texts: list[str]) -> list[list[int]]:
        return [e.ids for e in wp.encode_batch(texts, add_special_tokens=False)]

    return Tokenizer(
        kind="wordpiece",
        path=path,
        pieces=pieces,
        encode_batch=encode_batch,
        decode=lambda ids: wp.decode(ids),
        word_start_table=starts,
        lowercase=lowercase,
    )


def _wordpiece_lowercase(path: Path, pieces: list[str]) -> bool:
    """do_lower_case from a Hugging Face tokenizer_config.json beside the vocab, else a guess:
    an uncased vocabulary has no upper-case letters outside its [bracketed] special tokens."""
    config = path.parent / TRAIN_CONFIG_NAME
    if config.is_file():
        try:
            value = json.loads(config.read_text()).get("do_lower_case")
        except json.JSONDecodeError as e:
            raise UserError(f"{config}: not valid JSON ({e})") from e
        if value is not None:
            return bool(value)
    return not any(c.isupper() for p in pieces if not p.startswith("[") for c in p)


def train_sentencepiece(
    sentences: Iterable[str],
    out_dir: str | Path,
    *,
    vocab_size: int,
    model_type: str = "unigram",
    lowercase: bool = False,
    max_sentences: int = 2_000_000,
    num_threads: int | None = None,
    quiet: bool = False,
    extra_config: dict | None = None,
) -> Path:
    """Trains a sentencepiece model with BERT's special tokens; returns the .model path.

    The model and its config are written to a temporary directory and moved into `out_dir`
    at the end, the config last, so an interrupted run never looks finished.
    """
    import sentencepiece as spm  # noqa: PLC0415

    if model_type not in ("unigram", "bpe"):
        raise UserError(f"--model-type must be unigram or bpe, got {model_type!r}")
    if vocab_size < 300:
        raise UserError(f"--vocab-size {vocab_size} is too small (byte fallback needs > 261)")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out_dir, prefix=".tmp-"))
    try:
        spm.SentencePieceTrainer.Train(
            sentence_iterator=iter(sentences),
            model_prefix=str(tmp / "tokenizer"),
            vocab_size=vocab_size,
            model_type=model_type,
            pad_id=0,
            unk_id=1,
            bos_id=-1,
            eos_id=-1,
            pad_piece="[PAD]",
            unk_piece="[UNK]",
            control_symbols=list(SPECIAL_TOKENS[2:]),
            byte_fallback=True,
            hard_vocab_limit=False,
            character_coverage=0.9995,
            normalization_rule_name="nmt_nfkc_cf" if lowercase else "nmt_nfkc",
            input_sentence_size=max_sentences,
            shuffle_input_sentence=True,
            max_sentence_length=16384,
            num_threads=num_threads or os.cpu_count() or 1,
            minloglevel=1 if quiet else 0,
        )
        if not (tmp / "tokenizer.model").is_file():
            raise UserError("sentencepiece training produced no model (is the corpus empty?)")
        for name in ("tokenizer.model", "tokenizer.vocab"):
            os.replace(tmp / name, out_dir / name)
        config = {"kind": "sentencepiece", "vocab_size": vocab_size, "model_type": model_type}
        config |= {"lowercase": lowercase, "special_tokens": list(SPECIAL_TOKENS)}
        config |= extra_config or {}
        _write_json_atomic(out_dir / TRAIN_CONFIG_NAME, config)
    except RuntimeError as e:  # sentencepiece reports bad input as RuntimeError
        raise UserError(f"sentencepiece training failed: {e}") from e
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out_dir / SP_MODEL_NAME


def _write_json_atomic(path: Path, obj: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2) + "\n")
    os.replace(tmp, path)
