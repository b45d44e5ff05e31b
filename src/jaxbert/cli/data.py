"""CLI: `jaxbert tokenizer train` and `jaxbert data prepare|inspect`.

Handlers parse nothing themselves: argparse does, and user mistakes surface as UserError,
which `jaxbert.cli` prints without a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

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


def _add_tokenizer_train(sub) -> None:
    p = sub.add_parser("train", help="train a sentencepiece model with BERT special tokens")
    _add_corpus_args(p)
    p.add_argument("--out", required=True, help="output directory (tokenizer.model goes here)")
    p.add_argument("--vocab-size", type=int, default=8000)
    p.add_argument("--model-type", choices=("unigram", "bpe"), default="unigram")
    p.add_argument("--lowercase", action="store_true", help="case-fold (uncased model)")
    p.add_argument(
        "--max-sentences", type=int, default=2_000_000,
        help="sentencepiece samples at most this many sentences",
    )  # fmt: skip
    p.set_defaults(func=tokenizer_train)


def _add_data_prepare(sub) -> None:
    p = sub.add_parser("prepare", help="tokenize a corpus into shards + manifest.json")
    _add_corpus_args(p)
    p.add_argument("--tokenizer", required=True, help="tokenizer .model / vocab.txt / dir")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--workers", type=int, default=None, help="processes (default: all cores)")
    p.add_argument("--shard-max-tokens", type=int, default=64_000_000)
    p.set_defaults(func=data_prepare)


def _add_data_inspect(sub) -> None:
    p = sub.add_parser("inspect", help="write N pipeline examples as JSON lines + statistics")
    p.add_argument("--prepared", required=True, help="directory made by `jaxbert data prepare`")
    p.add_argument("--n", type=int, default=100, help="number of examples")
    p.add_argument("--out", required=True, help="output .jsonl file")
    p.add_argument("--split", choices=("train", "eval"), default="train")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-seq-length", type=int, default=128)
    p.add_argument("--max-predictions-per-seq", type=int, default=20)
    p.add_argument("--mask-prob", type=float, default=0.15)
    p.add_argument("--masking", choices=("token", "whole_word", "span"), default="token")
    p.add_argument("--random-token", choices=("unigram", "uniform"), default="unigram")
    p.add_argument("--short-seq-prob", type=float, default=0.1)
    p.add_argument("--eval-fraction", type=float, default=0.01)
    p.set_defaults(func=data_inspect)


def tokenizer_train(args: argparse.Namespace) -> int:
    from tqdm import tqdm  # noqa: PLC0415

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
    config_path = out / tokenizer.TRAIN_CONFIG_NAME
    up_to_date = (
        not args.force
        and (out / tokenizer.SP_MODEL_NAME).is_file()
        and config_path.is_file()
        and json.loads(config_path.read_text()).get("trained_with") == settings
    )
    if up_to_date:
        print(f"tokenizer train: {out / tokenizer.SP_MODEL_NAME} is up to date", file=sys.stderr)
        return 0
    start = time.time()
    docs = corpus.iter_corpus(
        args.corpus, tfds_data_dir=args.tfds_data_dir, tfds_feature=args.tfds_feature
    )
    bar = tqdm(desc="tokenizer train: reading", unit=" docs", file=sys.stderr)

    def sentences():
        for doc in docs:
            bar.update(1)
            yield from corpus.split_sentences(doc, args.language)
        bar.close()
        print("tokenizer train: running sentencepiece ...", file=sys.stderr)

    model = tokenizer.train_sentencepiece(
        sentences(), out, vocab_size=args.vocab_size, model_type=args.model_type,
        lowercase=args.lowercase, max_sentences=args.max_sentences, quiet=False,
        extra_config={"trained_with": settings},
    )  # fmt: skip
    tok = tokenizer.load_tokenizer(model)
    print(
        f"tokenizer train: {model} ({tok.vocab_size} pieces) in {time.time() - start:.1f}s",
        file=sys.stderr,
    )
    return 0


def _corpus_bytes(specs: list[str]) -> int:
    from jaxbert.data import corpus  # noqa: PLC0415

    local = [s for s in specs if not s.startswith(corpus.TFDS_PREFIX)]
    return sum(f.stat().st_size for f in corpus.list_corpus_files(local)) if local else 0


def data_prepare(args: argparse.Namespace) -> int:
    from jaxbert.data import prepare  # noqa: PLC0415

    if args.workers is not None and args.workers < 0:
        raise UserError(f"--workers must be >= 0, got {args.workers}")
    prepare.prepare(
        args.corpus, args.tokenizer, args.out, workers=args.workers, language=args.language,
        force=args.force, shard_max_tokens=args.shard_max_tokens,
        tfds_data_dir=args.tfds_data_dir, tfds_feature=args.tfds_feature,
    )  # fmt: skip
    return 0


def data_inspect(args: argparse.Namespace) -> int:
    from jaxbert.data import inspection  # noqa: PLC0415

    if args.n < 1:
        raise UserError(f"--n must be >= 1, got {args.n}")
    summary = inspection.inspect_prepared(
        args.prepared, args.n, args.out, seed=args.seed, split=args.split,
        max_seq_length=args.max_seq_length, max_predictions_per_seq=args.max_predictions_per_seq,
        mask_prob=args.mask_prob, masking=args.masking, random_token=args.random_token,
        short_seq_prob=args.short_seq_prob, eval_fraction=args.eval_fraction,
    )  # fmt: skip
    print(json.dumps(summary, indent=2))
    print(f"data inspect: wrote {args.n} examples to {args.out}", file=sys.stderr)
    return 0
