"""`jaxbert convert`: Hugging Face ⇄ jaxbert checkpoints."""

from __future__ import annotations

import argparse
from pathlib import Path

from jaxbert.errors import UserError


def add_parsers(subparsers) -> None:
    _add_convert(subparsers)


def run_hf_to_jaxbert(args: argparse.Namespace) -> int:
    from jaxbert.checkpoint import save_params
    from jaxbert.convert import load_hf_checkpoint

    if Path(args.dst).exists():  # save_params refuses too, but only after the loading
        raise UserError(f"{args.dst}: already exists; give a new directory (nothing was written)")
    cfg, params = load_hf_checkpoint(args.src, scan_layers=not args.unscanned)
    save_params(args.dst, params, cfg)
    heads = "with" if "mlm" in params else "without"
    print(f"converted {args.src} → {args.dst} ({cfg.num_layers} layers, {heads} heads)")
    return 0


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
    hf.set_defaults(func=run_hf_to_jaxbert)
    jb = sub.add_parser(
        "jaxbert-to-hf", help="jaxbert checkpoint → HF directory (BertForPreTraining names)"
    )
    jb.add_argument("src", help="jaxbert checkpoint directory")
    jb.add_argument("dst", help="Hugging Face checkpoint directory to write")
    jb.add_argument("--overwrite", action="store_true", help="replace an existing DST")
    jb.set_defaults(func=run_jaxbert_to_hf)
