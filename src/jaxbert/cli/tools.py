"""`jaxbert convert`: Hugging Face ⇄ jaxbert checkpoints."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from jaxbert.errors import UserError


def add_parsers(subparsers) -> None:
    _add_convert(subparsers)


def run_hf_to_jaxbert(args: argparse.Namespace) -> int:
    """Weights → DST (save_params layout); the tokenizer → DST/tokenizer/ and a
    sentence-transformers recipe → DST, so `--init DST` works exactly as `--init SRC`."""
    from jaxbert.checkpoint import save_params
    from jaxbert.convert import load_hf_checkpoint
    from jaxbert.data.tokenizer import copy_tokenizer_files, load_tokenizer
    from jaxbert.embed import sentence_config

    if Path(args.dst).exists():  # save_params refuses too, but only after the loading
        raise UserError(f"{args.dst}: already exists; give a new directory (nothing was written)")
    tok_src = args.tokenizer or _hf_tokenizer_source(Path(args.src))
    tok = load_tokenizer(tok_src) if tok_src else None  # a bad tokenizer fails before writing
    sentence_config.read_defaults(args.src)  # so does an unsupported sentence recipe
    cfg, params = load_hf_checkpoint(args.src, scan_layers=not args.unscanned)
    if tok is not None and tok.vocab_size > cfg.vocab_size:
        raise UserError(f"tokenizer {tok.path} has {tok.vocab_size} tokens but "
                        f"{args.src}/config.json has vocab_size {cfg.vocab_size}")  # fmt: skip
    save_params(args.dst, params, cfg)
    heads = "with" if "mlm" in params else "without"
    print(f"converted {args.src} → {args.dst} ({cfg.num_layers} layers, {heads} heads)")
    if tok is None:
        print(f"warning: {args.src} has no tokenizer (tokenizer.json, vocab.txt or "
              f"tokenizer.model): {args.dst} has none either; pass --tokenizer here or "
              "when using it", file=sys.stderr)  # fmt: skip
    else:
        copied = copy_tokenizer_files(tok.path, Path(args.dst) / "tokenizer")
        print(f"tokenizer: {tok.path} → {copied} ({'un' if tok.lowercase else ''}cased)")
    recipe = sentence_config.copy_files(args.src, args.dst)
    if recipe:
        print(f"sentence-transformers recipe: {', '.join(recipe)}")
    return 0


def _hf_tokenizer_source(src: Path) -> Path | None:
    names = ("tokenizer.json", "vocab.txt", "tokenizer.model")
    return src if any((src / n).is_file() for n in names) else None


def run_jaxbert_to_hf(args: argparse.Namespace) -> int:
    from jaxbert.checkpoint import load_params
    from jaxbert.convert import check_hf_target, save_hf_checkpoint

    check_hf_target(args.dst, args.overwrite)  # before loading: a refusal should be instant
    cfg, params = load_params(args.src)
    save_hf_checkpoint(params, cfg, args.dst, overwrite=args.overwrite)
    print(f"converted {args.src} → {args.dst} (config.json + model.safetensors)")
    return 0


def _add_convert(subparsers) -> None:
    """`jaxbert convert hf-to-jaxbert SRC DST` and `jaxbert convert jaxbert-to-hf SRC DST`."""
    parser = subparsers.add_parser(
        "convert", help="convert Hugging Face BERT checkpoints to and from jaxbert"
    )
    sub = parser.add_subparsers(dest="direction", metavar="DIRECTION")
    sub.required = True
    hf = sub.add_parser(
        "hf-to-jaxbert",
        help="HF directory (config.json + model.safetensors) → jaxbert checkpoint",
    )
    hf.add_argument("src", help="Hugging Face checkpoint directory")
    hf.add_argument("dst", help="jaxbert checkpoint directory to write")
    hf.add_argument(
        "--unscanned", action="store_true", help="store layers_0..layers_{L-1} (scan_layers=False)"
    )
    hf.add_argument(
        "--tokenizer", default="", help="tokenizer to carry along (default: the one in SRC)"
    )
    hf.set_defaults(func=run_hf_to_jaxbert)
    jb = sub.add_parser(
        "jaxbert-to-hf", help="jaxbert checkpoint → HF directory (BertForPreTraining names)"
    )
    jb.add_argument("src", help="jaxbert checkpoint directory")
    jb.add_argument("dst", help="Hugging Face checkpoint directory to write")
    jb.add_argument("--overwrite", action="store_true", help="replace an existing DST")
    jb.set_defaults(func=run_jaxbert_to_hf)
