"""CLI: `jaxbert tokenizer train` and `jaxbert data prepare|inspect`.

Handlers parse nothing themselves: argparse does, and user mistakes surface as UserError,
which `jaxbert.cli` prints without a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

from jaxbert.errors import UserError


def add_parsers(subparsers) -> None:
    """Adds the `tokenizer` and `data` command groups to the top-level sub-parsers."""
    tok = subparsers.add_parser("tokenizer", help="train a sentencepiece tokenizer")
    tok_sub = tok.add_subparsers(dest="tokenizer_command", metavar="SUBCOMMAND")
    tok_sub.required = True
    _add_tokenizer_train(tok_sub)

    data = subparsers.add_parser("data", help="prepare and inspect pretraining data")
    data_sub = data.add_subparsers(dest="data_command", metavar="SUBCOMMAND")
    data_sub.required = True
    _add_data_prepare(data_sub)
    _add_data_inspect(data_sub)


def _add_corpus_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--corpus", nargs="+", required=True, metavar="PATH",
        help="files or directories (plain text or WikiExtractor, .gz ok) or tfds:NAME[:SPLIT]",
    )  # fmt: skip
    p.add_argument("--language", default="en", help="sentence-splitting language (sentencex)")
    p.add_argument("--tfds-data-dir", default=None, help="data_dir for tfds: corpora (offline)")
    p.add_argument("--tfds-feature", default="text", help="text feature of tfds: corpora")
    p.add_argument("--force", action="store_true", help="redo even if the output is up to date")
    p.add_argument(
        "--strict", action="store_true",
        help="refuse a corpus line that is not valid UTF-8 (error naming file:line) instead "
        "of skipping it with a warning",
    )  # fmt: skip


def _add_tokenizer_train(sub) -> None:
    p = sub.add_parser("train", help="train a sentencepiece model with BERT special tokens")
    _add_corpus_args(p)
    p.add_argument(
        "--out", required=True,
        help="output directory, new or an earlier output (tokenizer.model, "
        "tokenizer_config.json, sentencepiece.log); it is built beside and swapped in "
        "whole, so a failed or killed run leaves it as it was",
    )  # fmt: skip
    p.add_argument(
        "--vocab-size", type=int, default=8000,
        help="pieces in the model (default 8000, at least 262). A corpus too small to "
        "support it is an error that states the most it supports, not a smaller model",
    )  # fmt: skip
    p.add_argument("--model-type", choices=("unigram", "bpe"), default="unigram")
    p.add_argument("--lowercase", action="store_true", help="case-fold (uncased model)")
    p.add_argument(
        "--max-sentences", type=int, default=2_000_000,
        help="train on a fixed-seed uniform sample of at most this many sentences "
        "(the same corpus gives the same sample, hence the same vocabulary, every run)",
    )  # fmt: skip
    p.add_argument(
        "--verbose", action="store_true",
        help="show sentencepiece's own log here instead of writing it to OUT/sentencepiece.log",
    )  # fmt: skip
    p.add_argument(
        "--sampling-alpha", type=float, default=0.0,
        help="a shared vocabulary over several --corpus: each contributes sentences by its "
        "smoothed character share q ∝ p^alpha (mBERT: 0.7); 0 (default): read them in order",
    )  # fmt: skip
    p.set_defaults(func=tokenizer_train)


def _add_data_prepare(sub) -> None:
    p = sub.add_parser("prepare", help="tokenize a corpus into shards + manifest.json")
    _add_corpus_args(p)
    p.add_argument("--tokenizer", required=True, help="tokenizer .model / vocab.txt / dir")
    p.add_argument(
        "--out", required=True,
        help="output directory, new or an earlier output; a rebuild is built beside it and "
        "swapped in whole, so a failed or killed run leaves the previous output as it was",
    )  # fmt: skip
    p.add_argument(
        "--workers", type=int, default=None,
        help="processes (default: all cores; 0: tokenize in this process)",
    )  # fmt: skip
    p.add_argument("--shard-max-tokens", type=int, default=64_000_000, help="at least 1")
    p.set_defaults(func=data_prepare)


def _add_data_inspect(sub) -> None:
    p = sub.add_parser("inspect", help="write N pipeline examples as JSON lines + statistics")
    p.add_argument("--prepared", default="", help="directory made by `jaxbert data prepare`")
    p.add_argument(
        "--corpora",
        default="",
        help="a mixture instead: NAME=DIR[:WEIGHT],… (shows target vs realized shares)",
    )
    p.add_argument(
        "--sampling-alpha",
        type=float,
        default=1.0,
        help="mixture shares ∝ (token share)^alpha; 1 = proportional",
    )
    p.add_argument("--n", type=int, default=100, help="number of examples (>= 1)")
    p.add_argument("--out", required=True, help="output .jsonl file")
    p.add_argument("--split", choices=("train", "eval"), default="train")
    p.add_argument("--seed", type=int, default=0, help=">= 0")
    p.add_argument("--max-seq-length", type=int, default=128, help=">= 8")
    p.add_argument(
        "--max-predictions-per-seq", type=int, default=0,
        help="in [0, --max-seq-length]; 0 (default) = derived from --mask-prob",
    )  # fmt: skip
    p.add_argument("--mask-prob", type=float, default=0.15, help="in (0, 0.8]")
    p.add_argument(
        "--packing", choices=("pairs", "full_sentences", "doc_sentences"), default="pairs",
        help="sentence pairs with NSP labels (google-bert) or packed windows (RoBERTa)",
    )  # fmt: skip
    p.add_argument("--masking", choices=("token", "whole_word", "span"), default="token")
    p.add_argument("--random-token", choices=("unigram", "uniform"), default="unigram")
    p.add_argument("--short-seq-prob", type=float, default=0.1, help="in [0, 1]")
    p.add_argument("--eval-fraction", type=float, default=0.01, help="in [0, 1)")
    p.set_defaults(func=data_inspect)


def tokenizer_train(args: argparse.Namespace) -> int:
    from jaxbert.data import corpus, tokenizer  # noqa: PLC0415

    out = Path(args.out)
    settings = {
        "corpus": list(args.corpus),
        "corpus_bytes": _corpus_bytes(args.corpus),
        "vocab_size": args.vocab_size,
        "model_type": args.model_type,
        "lowercase": args.lowercase,
        "language": args.language,
        "max_sentences": args.max_sentences,
    }
    if args.sampling_alpha:
        settings["sampling_alpha"] = args.sampling_alpha
    if not args.force and _tokenizer_up_to_date(out, settings):
        print(f"tokenizer train: {out / tokenizer.SP_MODEL_NAME} is up to date", file=sys.stderr)
        return 0
    start = time.time()
    stats = corpus.ReadStats()
    per_corpus = _per_corpus_sentences(args, stats) if args.sampling_alpha != 0 else None
    console = _console()
    if per_corpus is None:
        sentences = _sentences(args, stats, console)
    else:
        sentences = _smoothed_sentences(args, per_corpus, console)
    try:
        model = tokenizer.train_sentencepiece(
            sentences, out, vocab_size=args.vocab_size, model_type=args.model_type,
            lowercase=args.lowercase, max_sentences=args.max_sentences, verbose=args.verbose,
            source=", ".join(args.corpus), extra_config={"trained_with": settings},
        )  # fmt: skip
    finally:
        sentences.close()  # its progress bar writes to the console, closed next
        if console is not sys.stderr:
            console.close()
        if stats.undecodable_warning():
            print(f"tokenizer train: {stats.undecodable_warning()}", file=sys.stderr)
    tok = tokenizer.load_tokenizer(model)
    if per_corpus is not None:  # the first 2,000 sentences of each corpus, already read
        _report_fertility(args, tok, out, [c[:2000] for c in per_corpus])
    log = "" if args.verbose else f", log in {out / tokenizer.SP_LOG_NAME}"
    print(
        f"tokenizer train: {model} ({tok.vocab_size} pieces) in {time.time() - start:.1f}s{log}",
        file=sys.stderr,
    )
    return 0


def _tokenizer_up_to_date(out: Path, settings: dict) -> bool:
    from jaxbert.data import tokenizer  # noqa: PLC0415

    config_path = out / tokenizer.TRAIN_CONFIG_NAME
    if not ((out / tokenizer.SP_MODEL_NAME).is_file() and config_path.is_file()):
        return False
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        return False  # unreadable: retrain, which replaces it
    return isinstance(config, dict) and config.get("trained_with") == settings


def _sentences(args: argparse.Namespace, stats, console) -> Iterator[str]:
    """The corpus's sentences, with a progress bar on `console`: sentencepiece reads them
    while its log holds file descriptor 2."""
    from tqdm import tqdm  # noqa: PLC0415

    from jaxbert.data import corpus  # noqa: PLC0415

    docs = corpus.iter_corpus(
        args.corpus, stats, strict=args.strict,
        tfds_data_dir=args.tfds_data_dir, tfds_feature=args.tfds_feature,
    )  # fmt: skip
    bar = tqdm(desc="tokenizer train: reading", unit=" docs", file=console, disable=None)
    with bar:
        for doc in docs:
            bar.update(1)
            yield from corpus.split_sentences(doc, args.language)
    if stats.documents:
        print("tokenizer train: running sentencepiece ...", file=console, flush=True)


def _per_corpus_sentences(args, stats) -> list[list[str]]:
    """Every --corpus read whole, one list of sentences each (shared-vocabulary sampling)."""
    from jaxbert.data import corpus  # noqa: PLC0415

    if len(args.corpus) < 2:
        raise UserError("--sampling-alpha needs two or more --corpus (one per language)")
    out = []
    for spec in args.corpus:
        sentences = []
        for doc in corpus.iter_corpus([spec], stats, strict=args.strict,
                                      tfds_data_dir=args.tfds_data_dir,
                                      tfds_feature=args.tfds_feature):  # fmt: skip
            sentences += corpus.split_sentences(doc, args.language)
        if not sentences:
            raise UserError(f"tokenizer train: --corpus {spec} has no text")
        out.append(sentences)
    return out


def _smoothed_sentences(args, per_corpus: list[list[str]], console) -> Iterator[str]:
    """mBERT's recipe (data/vocab_sampling.py): every corpus sampled by its smoothed
    share; the shares are printed before sentencepiece runs."""
    from jaxbert.data import vocab_sampling  # noqa: PLC0415

    sample, q, taken = vocab_sampling.sample_sentences(per_corpus, args.sampling_alpha,
                                                       args.max_sentences)  # fmt: skip
    for spec, share, k, n in zip(args.corpus, q, taken, (len(c) for c in per_corpus)):
        print(f"tokenizer train: {spec}: share {share:.3f}, {k:,} of its {n:,} sentences"
              + (" (oversampled)" if k > n else ""), file=console, flush=True)  # fmt: skip
    print("tokenizer train: running sentencepiece ...", file=console, flush=True)
    yield from sample


def _report_fertility(args, tok, out: Path, samples: list[list[str]]) -> None:
    """Per corpus: pieces per word and per character, byte-fallback rate (on `samples`),
    printed and written to OUT/fertility.json."""
    from jaxbert import fs  # noqa: PLC0415
    from jaxbert.data import vocab_sampling  # noqa: PLC0415

    report = {}
    for spec, sentences in zip(args.corpus, samples):
        report[spec] = vocab_sampling.fertility(tok, sentences)
        r = report[spec]
        print(f"tokenizer train: {spec}: {r['pieces_per_word']:.2f} pieces/word, "
              f"{r['pieces_per_char']:.2f} pieces/char, byte fallback "
              f"{100 * r['byte_fallback_rate']:.2f}%", file=sys.stderr)  # fmt: skip
    fs.atomic_write_text(out / "fertility.json", json.dumps(report, indent=2) + "\n")


def _console() -> TextIO:
    """A stream to the terminal that survives the redirect of fd 2 to sentencepiece.log:
    a duplicate of fd 2 when sys.stderr writes there, else sys.stderr itself (a capture)."""
    try:
        sys.stderr.flush()
        if sys.stderr.fileno() != 2:
            return sys.stderr
    except (AttributeError, OSError, ValueError):  # no file descriptor behind it
        return sys.stderr
    return os.fdopen(os.dup(2), "w", buffering=1, encoding=sys.stderr.encoding, errors="replace")


def _corpus_bytes(specs: list[str]) -> int:
    from jaxbert.data import corpus  # noqa: PLC0415

    local = [s for s in specs if not s.startswith(corpus.TFDS_PREFIX)]
    return sum(f.stat().st_size for f in corpus.list_corpus_files(local)) if local else 0


def data_prepare(args: argparse.Namespace) -> int:
    from jaxbert.data import prepare  # noqa: PLC0415

    prepare.prepare(
        args.corpus, args.tokenizer, args.out, workers=args.workers, language=args.language,
        force=args.force, shard_max_tokens=args.shard_max_tokens, strict=args.strict,
        tfds_data_dir=args.tfds_data_dir, tfds_feature=args.tfds_feature,
    )  # fmt: skip
    return 0


def data_inspect(args: argparse.Namespace) -> int:
    from jaxbert.data import inspection  # noqa: PLC0415

    _check_inspect_flags(args)
    summary = inspection.inspect_prepared(
        args.prepared, args.n, args.out, seed=args.seed, split=args.split,
        max_seq_length=args.max_seq_length, max_predictions_per_seq=args.max_predictions_per_seq,
        mask_prob=args.mask_prob, masking=args.masking, random_token=args.random_token,
        short_seq_prob=args.short_seq_prob, eval_fraction=args.eval_fraction,
        packing=args.packing, objective="mlm_nsp" if args.packing == "pairs" else "mlm",
        corpora=args.corpora, sampling_alpha=args.sampling_alpha,
    )  # fmt: skip
    print(json.dumps(summary, indent=2))
    print(f"data inspect: wrote {args.n} examples to {args.out}", file=sys.stderr)
    return 0


def _check_inspect_flags(args: argparse.Namespace) -> None:
    """Bounds checked here, so the message names the flag rather than a config key.
    One of --prepared and --corpora is needed.

    --mask-prob stops at 0.8: beyond that BERT's 80/10/10 replacement leaves hardly any
    unmasked context to predict from.
    """
    rules = (
        ("--n", args.n, args.n >= 1, ">= 1"),
        ("--seed", args.seed, args.seed >= 0, ">= 0"),
        ("--max-seq-length", args.max_seq_length, args.max_seq_length >= 8, ">= 8"),
        (
            "--max-predictions-per-seq", args.max_predictions_per_seq,
            0 <= args.max_predictions_per_seq <= args.max_seq_length, "in [0, --max-seq-length]",
        ),
        ("--mask-prob", args.mask_prob, 0 < args.mask_prob <= 0.8, "in (0, 0.8]"),
        ("--short-seq-prob", args.short_seq_prob, 0 <= args.short_seq_prob <= 1, "in [0, 1]"),
        ("--eval-fraction", args.eval_fraction, 0 <= args.eval_fraction < 1, "in [0, 1)"),
    )  # fmt: skip
    for flag, value, ok, want in rules:
        if not ok:
            raise UserError(f"{flag} must be {want}, got {value}")
    if not args.prepared and not args.corpora:
        raise UserError("data inspect: give --prepared DIR or --corpora NAME=DIR,…")
    if args.sampling_alpha <= 0:
        raise UserError(f"--sampling-alpha must be > 0, got {args.sampling_alpha}")
