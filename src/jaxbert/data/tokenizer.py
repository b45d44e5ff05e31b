"""One tokenizer interface over sentencepiece models and BERT WordPiece vocabularies.

jaxbert trains sentencepiece models (unigram or BPE) with the BERT special tokens at fixed
ids — [PAD]=0, [UNK]=1, [CLS]=2, [SEP]=3, [MASK]=4 — and byte fallback, so unseen characters
become byte pieces instead of [UNK]. Imported Hugging Face checkpoints bring a WordPiece
``vocab.txt`` (casing from the ``tokenizer_config.json`` beside it) or, as most current
Hugging Face repositories ship, only a ``tokenizer.json`` (normaliser, pre-tokenizer and
WordPiece model in one file). Both are read with the `tokenizers` library, never a
hand-written WordPiece, so token ids are the Hugging Face tokenizer's own.

Every kind exposes the same `Tokenizer`: special ids, encode/decode, the tokenizer's own
split of a text into words (`word_pieces`, so embeddings name the words the model saw),
and a per-token "starts a word" flag (vectorised through a lookup table) that whole-word
and span masking need.
"""

from __future__ import annotations

import collections
import contextlib
import errno
import hashlib
import itertools
import json
import os
import random
import re
import shutil
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import TypeVar

import numpy as np

from jaxbert import fs
from jaxbert.errors import UserError, write_failed

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
SP_MODEL_NAME = "tokenizer.model"
WORDPIECE_VOCAB_NAME = "vocab.txt"
HF_TOKENIZER_NAME = "tokenizer.json"
TRAIN_CONFIG_NAME = "tokenizer_config.json"
# What a tokenizer file brings along when copied (a run's best_params/, convert's output).
_COMPANIONS = (TRAIN_CONFIG_NAME, "special_tokens_map.json", WORDPIECE_VOCAB_NAME)
_KINDS_HINT = "a sentencepiece .model, a Hugging Face tokenizer.json or a WordPiece vocab.txt"
_WORD_RE = re.compile(r"\w+|[^\w\s]")  # words of a sentencepiece model's text
_warned: set[str] = set()
SP_LOG_NAME = "sentencepiece.log"
MIN_VOCAB_SIZE = len(SPECIAL_TOKENS) + 256 + 1  # specials, byte-fallback pieces, one more
_TOKENIZER_OUTPUTS = (SP_MODEL_NAME, "tokenizer.vocab", TRAIN_CONFIG_NAME, SP_LOG_NAME)
_SP_WORD_BOUNDARY = "\u2581"  # "▁", sentencepiece's word-boundary marker
SAMPLE_SEED = 0  # which sentences --max-sentences keeps (recorded in tokenizer_config.json)
_SPM_FIXED_OPTIONS = {
    "pad_id": 0,
    "unk_id": 1,
    "bos_id": -1,
    "eos_id": -1,
    "pad_piece": "[PAD]",
    "unk_piece": "[UNK]",
    "control_symbols": list(SPECIAL_TOKENS[2:]),
    "byte_fallback": True,
    "hard_vocab_limit": False,
    "character_coverage": 0.9995,
    "shuffle_input_sentence": True,
    "max_sentence_length": 16384,
}
_SPM_ERRORS = (  # (pattern in sentencepiece's message, what to tell the user)
    (
        re.compile(r"sentences_\.empty\(\)"),
        "the corpus has no sentences: {source} holds no text sentencepiece can train on",
    ),
    (
        re.compile(r"smaller than required_chars\. \d+ vs (\d+)"),
        "--vocab-size {v} is too small for {source}: its characters, the special tokens and "
        "the byte pieces already take {0}; use a larger --vocab-size",
    ),
    (
        re.compile(r"Vocabulary size is too high \(\d+\)\. Please set it to a value <= (\d+)"),
        "--vocab-size {v} is more than {source} supports; use --vocab-size {0} or less, "
        "or a larger corpus",
    ),
)
T = TypeVar("T")


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
        word_pieces: Callable[[str], tuple[list[list[int]], list[tuple[int, int]]]] | None = None,
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
        self._word_pieces = word_pieces or self._regex_word_pieces

    def word_pieces(self, text: str) -> tuple[list[list[int]], list[tuple[int, int]]]:
        """`text` split into the tokenizer's own words: each word's token ids and its
        [start, end) character span in `text`. A WordPiece tokenizer splits with its own
        normaliser and pre-tokenizer, so the concatenated ids equal `encode(text)`."""
        return self._word_pieces(text)

    def _regex_word_pieces(self, text: str) -> tuple[list[list[int]], list[tuple[int, int]]]:
        spans = [m.span() for m in _WORD_RE.finditer(text)]
        pieces = self._encode_batch([text[a:b] for a, b in spans]) if spans else []
        return [list(p) for p in pieces], spans

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
    """Loads a sentencepiece ``.model``, a Hugging Face ``tokenizer.json``, a WordPiece
    ``vocab.txt``, or a directory with one (in that order of preference)."""
    path = Path(path)
    if path.is_dir():
        for name in (SP_MODEL_NAME, HF_TOKENIZER_NAME, WORDPIECE_VOCAB_NAME):
            if (path / name).is_file():
                return load_tokenizer(path / name)
        models = sorted(path.glob("*.model"))
        if len(models) == 1:
            return load_tokenizer(models[0])
        raise UserError(
            f"tokenizer directory {path} has no {SP_MODEL_NAME}, {HF_TOKENIZER_NAME} or "
            f"{WORDPIECE_VOCAB_NAME} (give {_KINDS_HINT})"
        )
    if not path.is_file():
        raise UserError(f"tokenizer {path} does not exist")
    if path.suffix == ".model":
        return _load_sentencepiece(path)
    if path.suffix == ".json":
        return _load_hf_json(path)
    if path.suffix == ".txt":
        return _load_wordpiece(path)
    raise UserError(f"tokenizer {path}: expected {_KINDS_HINT}")


def copy_tokenizer_files(path: str | Path, dest: str | Path) -> Path:
    """Copies a tokenizer (file or directory) into `dest` under its canonical name, with
    the files that define how it reads text (tokenizer_config.json: casing; a
    tokenizer.json's vocab.txt), so `dest` loads as the same tokenizer; returns the copy."""
    src = load_tokenizer(path).path
    names = {".model": SP_MODEL_NAME, ".json": HF_TOKENIZER_NAME}
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    target = dest / names.get(src.suffix, WORDPIECE_VOCAB_NAME)
    shutil.copyfile(src, target)
    for extra in _COMPANIONS:
        if (src.parent / extra).is_file() and not (dest / extra).exists():
            shutil.copyfile(src.parent / extra, dest / extra)
    return target


def export_hf_tokenizer(path: str | Path, dest: str | Path, model_max_length: int) -> list[str]:
    """Writes a tokenizer into `dest` as transformers loads it (`AutoTokenizer`): a
    tokenizer.json that encodes exactly as `load_tokenizer(path)` does (checked on a few
    texts before returning), plus vocab.txt / tokenizer.model and tokenizer_config.json
    with BERT's special tokens and casing. Returns the file names written."""
    tok = load_tokenizer(path)
    dest = Path(dest)
    if tok.kind == "wordpiece":
        hf = _wordpiece_json(tok, dest)
        (dest / WORDPIECE_VOCAB_NAME).write_text("\n".join(tok._pieces) + "\n", encoding="utf-8")
        names = [HF_TOKENIZER_NAME, WORDPIECE_VOCAB_NAME]
    else:
        hf = _sentencepiece_json(tok, dest)
        shutil.copyfile(tok.path, dest / SP_MODEL_NAME)
        names = [HF_TOKENIZER_NAME, SP_MODEL_NAME]
    _check_same_encoding(tok, hf)
    config = {"tokenizer_class": "BertTokenizerFast" if tok.kind == "wordpiece" else
              "PreTrainedTokenizerFast", "do_lower_case": bool(tok.lowercase),
              "model_max_length": int(model_max_length), "clean_up_tokenization_spaces": False}  # fmt: skip
    specials = {f"{k}_token": f"[{k.upper()}]" for k in ("pad", "unk", "cls", "sep", "mask")}
    _write_json_atomic(dest / TRAIN_CONFIG_NAME, config | specials)
    _write_json_atomic(dest / "special_tokens_map.json", specials)
    return [*names, TRAIN_CONFIG_NAME, "special_tokens_map.json"]


def _post_processor(tok: Tokenizer):
    from tokenizers import processors  # noqa: PLC0415

    return processors.BertProcessing(("[SEP]", tok.sep_id), ("[CLS]", tok.cls_id))


def _wordpiece_json(tok: Tokenizer, dest: Path):
    from tokenizers import BertWordPieceTokenizer  # noqa: PLC0415
    from tokenizers import Tokenizer as HF

    if tok.path.suffix == ".json":
        shutil.copyfile(tok.path, dest / HF_TOKENIZER_NAME)
    else:
        options = _wordpiece_options(tok.path, tok._pieces)
        BertWordPieceTokenizer(str(tok.path), **options).save(str(dest / HF_TOKENIZER_NAME))
    hf = HF.from_file(str(dest / HF_TOKENIZER_NAME))
    hf.no_truncation()  # saved without a shipped file's fixed padding/truncation:
    hf.no_padding()  # transformers sets both per call
    hf.save(str(dest / HF_TOKENIZER_NAME))
    return hf


def _sentencepiece_json(tok: Tokenizer, dest: Path):
    """A sentencepiece unigram model as a `tokenizers` Unigram tokenizer.json: its pieces
    and scores, its precompiled normaliser and whitespace rules, byte fallback and BERT's
    specials (`tokenizers`' own `from_spm` needs a protobuf module it cannot find, and
    keeps the ends of a text's whitespace, which sentencepiece strips)."""
    from sentencepiece import sentencepiece_model_pb2  # noqa: PLC0415
    from tokenizers import AddedToken, Regex, decoders, normalizers, pre_tokenizers  # noqa: PLC0415
    from tokenizers import Tokenizer as HF  # noqa: PLC0415
    from tokenizers.models import Unigram  # noqa: PLC0415

    m = sentencepiece_model_pb2.ModelProto()
    m.ParseFromString(tok.path.read_bytes())
    if m.trainer_spec.model_type != 1:
        raise UserError(
            f"tokenizer {tok.path}: only unigram sentencepiece models can be written as a "
            "Hugging Face tokenizer.json (this one is BPE)"
        )
    vocab = [(piece.piece, piece.score) for piece in m.pieces]
    hf = HF(Unigram(vocab, m.trainer_spec.unk_id, bool(m.trainer_spec.byte_fallback)))
    rules = []
    if m.normalizer_spec.remove_extra_whitespaces:  # sentencepiece's default
        rules = [normalizers.Strip(), normalizers.Replace(Regex(" {2,}"), " ")]
    if m.normalizer_spec.precompiled_charsmap:
        rules.insert(0, normalizers.Precompiled(m.normalizer_spec.precompiled_charsmap))
    hf.normalizer = normalizers.Sequence(rules)
    hf.pre_tokenizer = pre_tokenizers.Metaspace(
        replacement=_SP_WORD_BOUNDARY, prepend_scheme="always"
    )
    hf.decoder = decoders.Sequence([decoders.ByteFallback(),
                                    decoders.Metaspace(replacement=_SP_WORD_BOUNDARY, prepend_scheme="always")])  # fmt: skip
    hf.add_special_tokens([AddedToken(t, special=True) for t in SPECIAL_TOKENS])
    hf.post_processor = _post_processor(tok)
    hf.save(str(dest / HF_TOKENIZER_NAME))
    return hf


_CHECK_TEXTS = ("The Aegean Sea, 434 AD — Attila's “Huns”.", "naïve  café 日本 ✓ £3m")


def _check_same_encoding(tok: Tokenizer, hf) -> None:
    for text in _CHECK_TEXTS:
        mine, theirs = tok.encode(text), hf.encode(text, add_special_tokens=False).ids
        if mine != theirs:
            raise UserError(
                f"tokenizer {tok.path}: its tokenizer.json export encodes {text!r} as "
                f"{theirs[:12]}…, jaxbert as {mine[:12]}…; not exported"
            )


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
    _check_vocab_pieces(path, pieces)
    options = _wordpiece_options(path, pieces)
    wp = BertWordPieceTokenizer(str(path), **options)
    return _hf_tokenizer("wordpiece", path, pieces, wp, "##", options["lowercase"])


def _check_vocab_pieces(path: Path, pieces: list[str]) -> None:
    """A vocab.txt is one token per line with BERT's special tokens; anything else (a
    text file given by mistake) is refused here, naming the file."""
    if len(set(pieces)) != len(pieces):
        dup = next(p for p, n in collections.Counter(pieces).items() if n > 1)
        raise UserError(f"tokenizer {path}: duplicate token {dup!r}")
    missing = [t for t in SPECIAL_TOKENS if t not in set(pieces)]
    if missing:
        raise UserError(
            f"tokenizer {path}: not a WordPiece vocab.txt (no {', '.join(missing)} line; "
            f"expected one token per line with BERT's special tokens), or give {_KINDS_HINT}"
        )


def _hf_tokenizer(kind: str, path: Path, pieces: list[str], hf, prefix: str,
                  lowercase: bool) -> Tokenizer:  # fmt: skip
    """A `Tokenizer` over a `tokenizers` object (no specials added, no truncation)."""

    def encode_batch(texts: list[str]) -> list[list[int]]:
        return [e.ids for e in hf.encode_batch(texts, add_special_tokens=False)]

    def word_pieces(text: str) -> tuple[list[list[int]], list[tuple[int, int]]]:
        enc = hf.encode(text, add_special_tokens=False)
        ids: list[list[int]] = []
        spans: list[list[int]] = []
        last = None
        for token, word, (a, b) in zip(enc.ids, enc.word_ids, enc.offsets, strict=True):
            if word is None or word != last:
                ids.append([])
                spans.append([a, b])
            ids[-1].append(token)
            spans[-1][1] = max(spans[-1][1], b)
            last = word
        return ids, [tuple(x) for x in spans]

    return Tokenizer(
        kind=kind,
        path=path,
        pieces=pieces,
        encode_batch=encode_batch,
        decode=lambda ids: hf.decode(ids),
        word_start_table=np.array([not p.startswith(prefix) for p in pieces]),
        lowercase=lowercase,
        word_pieces=word_pieces,
    )


def _load_hf_json(path: Path) -> Tokenizer:
    """A Hugging Face fast-tokenizer file: its own normaliser (casing, accents, Chinese
    characters), pre-tokenizer and WordPiece vocabulary; padding/truncation settings
    saved in the file are switched off (rows are built and cut by the caller)."""
    from tokenizers import Tokenizer as HFTokenizer  # noqa: PLC0415

    if path.name in (TRAIN_CONFIG_NAME, "config.json", "special_tokens_map.json"):
        raise UserError(
            f"tokenizer {path}: this is a configuration file, not a tokenizer; give the "
            f"{HF_TOKENIZER_NAME} beside it or the directory"
        )
    try:
        spec = json.loads(path.read_text(encoding="utf-8"))
        hf = HFTokenizer.from_file(str(path))
    except (ValueError, UnicodeDecodeError, Exception) as e:  # tokenizers raises Exception
        raise UserError(f"tokenizer {path}: not a Hugging Face {HF_TOKENIZER_NAME} ({e})") from None
    model = spec.get("model") or {}
    if model.get("type") != "WordPiece":
        raise UserError(
            f"tokenizer {path}: model type {model.get('type')!r} is not supported; jaxbert "
            "reads BERT (WordPiece) tokenizer.json files"
        )
    hf.no_truncation()
    hf.no_padding()
    vocab = hf.get_vocab(with_added_tokens=True)
    if sorted(vocab.values()) != list(range(len(vocab))):
        raise UserError(f"tokenizer {path}: token ids are not 0..{len(vocab) - 1} without gaps")
    pieces = [p for p, _ in sorted(vocab.items(), key=lambda kv: kv[1])]
    prefix = model.get("continuing_subword_prefix") or "##"
    return _hf_tokenizer("wordpiece", path, pieces, hf, prefix, _json_lowercase(spec))


def _json_lowercase(spec: dict) -> bool:
    """Whether a tokenizer.json's normaliser lower-cases (BertNormalizer or Lowercase,
    alone or in a Sequence): the tokenizer's own statement, nothing is guessed."""
    norm = spec.get("normalizer") or {}
    parts = norm.get("normalizers", []) if norm.get("type") == "Sequence" else [norm]
    return any(
        p.get("type") == "Lowercase" or (p.get("type") == "BertNormalizer" and p.get("lowercase"))
        for p in parts
    )


def _wordpiece_options(path: Path, pieces: list[str]) -> dict:
    """BertWordPieceTokenizer settings from a Hugging Face tokenizer_config.json beside the
    vocab (do_lower_case, strip_accents, tokenize_chinese_chars); without one, casing is
    guessed from the vocabulary and a warning says so and how to set it."""
    config = path.parent / TRAIN_CONFIG_NAME
    data = {}
    if config.is_file():
        try:
            data = json.loads(config.read_text())
        except json.JSONDecodeError as e:
            raise UserError(f"{config}: not valid JSON ({e})") from e
    options = {"strip_accents": data.get("strip_accents")}
    options["handle_chinese_chars"] = bool(data.get("tokenize_chinese_chars", True))
    if data.get("do_lower_case") is not None:
        return options | {"lowercase": bool(data["do_lower_case"])}
    lowercase = guess_lowercase(pieces)
    if str(path) not in _warned:
        _warned.add(str(path))
        case = "uncased (lower-cases text)" if lowercase else "cased"
        print(
            f"warning: tokenizer {path}: no {TRAIN_CONFIG_NAME} with do_lower_case beside it; "
            f"guessed {case} from the vocabulary. If that is wrong, put a {TRAIN_CONFIG_NAME} "
            f'with {{"do_lower_case": {str(not lowercase).lower()}}} beside it',
            file=sys.stderr,
            flush=True,
        )
    return options | {"lowercase": lowercase}


def guess_lowercase(pieces: Sequence[str]) -> bool:
    """An uncased vocabulary has (almost) no upper-case letters outside its [bracketed]
    special tokens: bert-base-uncased's holds 2 (`ℝ`, `##ℝ`) of 30,522, a cased one
    thousands. Under 1% of pieces with an upper-case letter reads as uncased."""
    words = [p for p in pieces if not p.startswith("[")]
    upper = sum(1 for p in words if any(c.isupper() for c in p))
    return upper < 0.01 * max(len(words), 1)


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
    verbose: bool = False,
    source: str = "the corpus",
    extra_config: dict | None = None,
) -> Path:
    """Trains a sentencepiece model with BERT's special tokens; returns the .model path.

    Everything is trained and checked beside `out_dir`, which is then replaced whole
    (`replace_directory`): a bad corpus, a refused vocabulary size or a killed run leaves a
    previous tokenizer there untouched. sentencepiece's C++ log (hundreds of lines on fd 2)
    goes to ``sentencepiece.log`` in the output unless `verbose`; `quiet` keeps only its
    warnings. Its failures become UserErrors naming `source`, not INTERNAL check messages.
    """
    _check_train_args(vocab_size, model_type, max_sentences, num_threads)
    options = {"vocab_size": vocab_size, "model_type": model_type}
    options |= {"input_sentence_size": max_sentences, "minloglevel": 1 if quiet else 0}
    options |= {"normalization_rule_name": "nmt_nfkc_cf" if lowercase else "nmt_nfkc"}
    options |= {"num_threads": num_threads or os.cpu_count() or 1}
    config = {"kind": "sentencepiece", "vocab_size": vocab_size, "model_type": model_type}
    config |= {"lowercase": lowercase, "special_tokens": list(SPECIAL_TOKENS)}
    # The vocabulary is a function of these too: sentencepiece splits its work by thread.
    config |= {"max_sentences": max_sentences, "sample_seed": SAMPLE_SEED}
    config |= {"num_threads": options["num_threads"]}
    sentences = reservoir_sample(sentences, max_sentences)
    config |= extra_config or {}

    def build(staged: Path) -> None:
        _run_sentencepiece(sentences, staged, options, verbose, source)
        _check_trained(staged, vocab_size, source)
        _write_json_atomic(staged / TRAIN_CONFIG_NAME, config)

    replace_directory(out_dir, build, owned=_is_tokenizer_output, command="tokenizer train")
    return Path(out_dir) / SP_MODEL_NAME


def reservoir_sample(sentences: Iterable[str], k: int, seed: int = SAMPLE_SEED) -> Iterator[str]:
    """A uniform sample of k sentences (all of them if fewer), in corpus order.

    sentencepiece's own `input_sentence_size` sampling ignores its seed, so the same corpus
    gave a different vocabulary on every run once it held more than k sentences. Reservoir
    sampling (Algorithm R) with a fixed seed streams the corpus once, as sentencepiece did;
    unlike `vocab_sampling.sample_sentences` (several corpora, all in memory, oversampling
    the small ones) it never holds more than k sentences. Each is dropped once yielded, so
    the sample is not held twice while sentencepiece copies it in.
    """
    rng = random.Random(seed)
    kept: list[tuple[int, str]] = []
    for i, sentence in enumerate(sentences):
        if i < k:
            kept.append((i, sentence))
        elif (j := rng.randrange(i + 1)) < k:
            kept[j] = (i, sentence)
    kept.sort(reverse=True)
    while kept:
        yield kept.pop()[1]


def _check_train_args(
    vocab_size: int, model_type: str, max_sentences: int, num_threads: int | None
) -> None:
    if model_type not in ("unigram", "bpe"):
        raise UserError(f"--model-type must be unigram or bpe, got {model_type!r}")
    if vocab_size < MIN_VOCAB_SIZE:
        raise UserError(
            f"--vocab-size {vocab_size} is too small: the {len(SPECIAL_TOKENS)} special tokens "
            f"and 256 byte-fallback pieces alone take {MIN_VOCAB_SIZE - 1} ids "
            f"(use at least {MIN_VOCAB_SIZE}, in practice thousands)"
        )
    if max_sentences < 1:
        raise UserError(f"--max-sentences must be >= 1, got {max_sentences}")
    if num_threads is not None and num_threads < 1:
        raise UserError(f"num_threads must be >= 1, got {num_threads}")


def _run_sentencepiece(
    sentences: Iterable[str], staged: Path, options: dict, verbose: bool, source: str
) -> None:
    """Runs the trainer on a stream of sentences; the stream is peeked first so that an
    empty corpus is reported before sentencepiece starts."""
    import sentencepiece as spm  # noqa: PLC0415

    stream = iter(sentences)
    first = next(stream, None)
    if first is None:
        raise UserError(
            f"the corpus has no sentences: {source} holds no text to train on "
            "(empty files, or only blank lines?)"
        )
    errors: list[BaseException] = []
    try:
        with _fd2_to(None if verbose else staged / SP_LOG_NAME):
            spm.SentencePieceTrainer.Train(
                sentence_iterator=_keeping_errors(itertools.chain([first], stream), errors),
                model_prefix=str(staged / "tokenizer"),
                **_SPM_FIXED_OPTIONS,
                **options,
            )
    except RuntimeError as e:  # sentencepiece reports every failure as RuntimeError
        raise (errors[0] if errors else _translate(e, options["vocab_size"], source)) from None
    if errors:
        raise errors[0]


def _keeping_errors(sentences: Iterator[str], errors: list) -> Iterator[str]:
    """Records the reader's exception (a UserError, Ctrl-C), which sentencepiece would
    otherwise flatten into an 'INTERNAL: …' RuntimeError, so the original can be raised."""
    try:
        yield from sentences
    except GeneratorExit:
        raise
    except BaseException as e:
        errors.append(e)
        raise


def _translate(e: RuntimeError, vocab_size: int, source: str) -> UserError:
    """sentencepiece's CHECK failures, in the user's terms (flags, not trainer internals)."""
    message = str(e)
    for pattern, template in _SPM_ERRORS:
        match = pattern.search(message)
        if match:
            return UserError(template.format(*match.groups(), v=vocab_size, source=source))
    detail = re.sub(r"^\w+: src/\S+ ", "", message.strip().splitlines()[0] if message else "")
    return UserError(
        f"sentencepiece training on {source} failed: {detail} (rerun with --verbose to see its log)"
    )


def _check_trained(staged: Path, vocab_size: int, source: str) -> None:
    """Refuses a model smaller than asked: with a soft vocabulary limit sentencepiece quietly
    stops at what the corpus supports, and a BERT config must match the tokenizer exactly."""
    if not (staged / SP_MODEL_NAME).is_file():
        raise UserError(f"sentencepiece training on {source} produced no model")
    pieces = load_tokenizer(staged / SP_MODEL_NAME).vocab_size
    if pieces < vocab_size:
        raise UserError(
            f"--vocab-size {vocab_size} is more than {source} supports: sentencepiece "
            f"found only {pieces:,} pieces; use --vocab-size {pieces} or less, "
            "or a larger corpus"
        )


def _is_tokenizer_output(name: str) -> bool:
    return name in _TOKENIZER_OUTPUTS or name.startswith(".tmp-") or name.endswith(".tmp")


@contextlib.contextmanager
def _fd2_to(path: Path | None) -> Iterator[None]:
    """Points file descriptor 2 at `path` (None: leaves it alone). sentencepiece logs from
    C++ straight to fd 2, so replacing Python's sys.stderr would not catch it."""
    if path is None:
        yield
        return
    _flush_stderr()
    saved = os.dup(2)
    try:
        with open(path, "ab") as log:
            os.dup2(log.fileno(), 2)
        yield
    finally:
        _flush_stderr()
        os.dup2(saved, 2)
        os.close(saved)


def _flush_stderr() -> None:
    with contextlib.suppress(AttributeError, OSError, ValueError):  # None, or closed
        sys.stderr.flush()


def _write_json_atomic(path: Path, obj: dict) -> None:
    fs.atomic_write_text(path, json.dumps(obj, indent=2) + "\n")


# Replacing an output directory whole ----------------------------------------------------


def replace_directory(
    target: str | Path, build: Callable[[Path], T], *, owned: Callable[[str], bool], command: str
) -> T:
    """Builds a new `target` directory beside it, then swaps it in whole; returns build's result.

    `build(staged)` writes *and validates* everything in a sibling ``.NAME.tmp-PID``. Only
    when it returns is the old directory replaced, by an atomic exchange of the two names
    (two renames where the system has no exchange), so at every instant `target` holds the
    complete old output or the complete new one: an error or a SIGKILL mid-build leaves
    the old output byte-identical. The swap would drop entries that `owned` does not
    recognise (files the user put there), so their presence is refused before any work.
    """
    target = Path(os.path.realpath(target))
    _check_target(target, owned, command)
    _remove_stale_siblings(target)
    staged = target.parent / f".{target.name}.tmp-{os.getpid()}"
    shutil.rmtree(staged, ignore_errors=True)
    staged.mkdir(parents=True)
    try:
        result = build(staged)
        fs.swap_in_dir(staged, target)
    except Exception as e:
        error = _disk_error(e, target, staged)
        if error is None:
            raise
        raise error from None
    finally:
        shutil.rmtree(staged, ignore_errors=True)  # the failed build, or the old output
    return result


def _disk_error(e: Exception, target: Path, staged: Path) -> UserError | None:
    """A build the disk stopped, as one line naming `target` and the cause. Native
    writers (sentencepiece, numpy's tofile) report a full disk without an errno ("[output->
    WriteLine(...)]", "N requested and M written") or not at all (a cut-short file that
    then fails to read back), so such a failure on an almost full disk counts too."""
    hint = "the previous output (if any) is intact"
    error = write_failed(target, e, hint=hint)
    if error is None and ("writ" in str(e).lower() or str(staged) in str(e)):
        with contextlib.suppress(OSError):
            if shutil.disk_usage(target.parent).free < 1 << 20:
                error = write_failed(target, OSError(errno.ENOSPC, "disk full"), hint=hint)
    return error


def _check_target(target: Path, owned: Callable[[str], bool], command: str) -> None:
    if target.exists() and not target.is_dir():
        raise UserError(f"--out {target} is a file, not a directory")
    if Path.cwd().is_relative_to(target):
        raise UserError(f"--out {target} holds the current directory; run from elsewhere")
    entries = sorted(e.name for e in target.iterdir()) if target.is_dir() else []
    foreign = [name for name in entries if not owned(name)]
    if foreign:
        more = f" and {len(foreign) - 3} more" if len(foreign) > 3 else ""
        raise UserError(
            f"--out {target} holds {', '.join(foreign[:3])}{more}, which `jaxbert {command}` "
            "did not write; it replaces the directory whole, so give an empty or new --out"
        )


def _remove_stale_siblings(target: Path) -> None:
    """Cleans up after killed runs: their staging directories, and an old output moved
    aside by a run killed between its two renames (put back if `target` is missing)."""
    if not target.parent.is_dir():
        return
    pattern = re.compile(rf"\.{re.escape(target.name)}\.(tmp|old)-(\d+)")
    for entry in sorted(target.parent.iterdir()):
        match = pattern.fullmatch(entry.name)
        if match is None or _pid_alive(int(match[2])):
            continue
        if match[1] == "old" and not target.exists():
            os.rename(entry, target)
        else:
            shutil.rmtree(entry, ignore_errors=True)


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return False  # a leftover of this process, not a concurrent run
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
