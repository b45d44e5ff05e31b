"""One tokenizer interface over sentencepiece models and BERT WordPiece vocabularies.

jaxbert trains sentencepiece models (unigram or BPE) with the BERT special tokens at fixed
ids — [PAD]=0, [UNK]=1, [CLS]=2, [SEP]=3, [MASK]=4 — and byte fallback, so unseen characters
become byte pieces instead of [UNK]. Imported Hugging Face checkpoints bring a WordPiece
``vocab.txt``; it is loaded with the `tokenizers` library (not a hand-written WordPiece).

Both kinds expose the same `Tokenizer`: special ids, encode/decode, and a per-token "starts
a word" flag (vectorised through a lookup table) that whole-word and span masking need.
"""

from __future__ import annotations

import contextlib
import ctypes
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

from jaxbert.errors import UserError

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
SP_MODEL_NAME = "tokenizer.model"
WORDPIECE_VOCAB_NAME = "vocab.txt"
TRAIN_CONFIG_NAME = "tokenizer_config.json"
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
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2) + "\n")
    os.replace(tmp, path)


# Replacing an output directory whole ----------------------------------------------------

_AT_FDCWD, _RENAME_EXCHANGE = -100, 2


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
        _swap_in(staged, target)
    finally:
        shutil.rmtree(staged, ignore_errors=True)  # the failed build, or the old output
    return result


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


def _swap_in(staged: Path, target: Path) -> None:
    """Puts `staged` at `target`; after an exchange `staged` holds the old output."""
    if not target.exists():
        os.rename(staged, target)
    elif not _exchange(staged, target):
        aside = target.parent / f".{target.name}.old-{os.getpid()}"
        os.rename(target, aside)
        os.rename(staged, target)
        shutil.rmtree(aside, ignore_errors=True)


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swaps two paths (Linux renameat2); False where the system cannot."""
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p]
    renameat2.argtypes += [ctypes.c_uint]
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), str(b))
