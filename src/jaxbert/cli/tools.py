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
    """A pretraining run, params dir or fine-tuning run → the matching transformers class,
    with its tokenizer and (classifiers) label names."""
    from jaxbert.checkpoint import load_params
    from jaxbert.convert import check_hf_target, save_hf_checkpoint
    from jaxbert.data.tokenizer import load_tokenizer
    from jaxbert.pretrained import find_tokenizer

    check_hf_target(args.dst, args.overwrite)  # before loading: a refusal should be instant
    params_dir, run_cfg = _export_source(Path(args.src))
    task_kind, labels = _task_head(run_cfg, params_dir)
    tok = Path(args.tokenizer) if args.tokenizer else find_tokenizer(params_dir)
    if tok is not None:
        load_tokenizer(tok)  # a bad tokenizer fails before anything is written
    cfg, params = load_params(params_dir)
    arch = save_hf_checkpoint(params, cfg, args.dst, overwrite=args.overwrite,
                              task_kind=task_kind, labels=labels, tokenizer=tok)  # fmt: skip
    print(f"converted {params_dir} → {args.dst} ({arch}; config.json + model.safetensors"
          f"{' + tokenizer files' if tok else ''})")  # fmt: skip
    if tok is None:
        print(f"warning: no tokenizer found for {params_dir}: {args.dst} has none; pass "
              "--tokenizer to include it", file=sys.stderr)  # fmt: skip
    return 0


def _export_source(src: Path) -> tuple[Path, dict]:
    """(params directory, run config) of what the user named: a fine-tuning run dir (its
    best_params/), a best_params/ dir, a pretraining run or a params dir."""
    from jaxbert.pretrained import run_config

    if (src / "best_params").is_dir():
        return src / "best_params", run_config(src)
    seeds = sorted(p.name for p in src.glob("seed-*") if (p / "best_params").is_dir())
    if seeds:
        raise UserError(f"{src}: a run of {len(seeds)} seeds; export one of them, "
                        f"e.g. {src / seeds[0]}")  # fmt: skip
    if src.name == "best_params":
        return src, run_config(src.parent)
    return src, run_config(src)


def _task_head(run_cfg: dict, params_dir: Path) -> tuple[str, list[str] | None]:
    """(task_kind, label names) of a fine-tuning run's config; ("", None) otherwise."""
    task = run_cfg.get("task")
    if not task:
        return "", None
    from jaxbert.finetune.config import task_family
    from jaxbert.finetune.tasks import glue, ner

    where = f"{params_dir}: fine-tuned on {task}"
    if run_cfg.get("mode", "full") != "full":
        raise UserError(f"{where} with mode={run_cfg['mode']} (heads on cached features) "
                        "has no Hugging Face class; export a mode=full run")  # fmt: skip
    family = task_family(task)
    if family == "glue" and run_cfg.get("pooling", "cls") != "cls":
        raise UserError(f"{where} with pooling={run_cfg['pooling']}: transformers' "
                        "BertForSequenceClassification classifies the pooled [CLS] only")  # fmt: skip
    if family == "glue":
        labels = glue.get_task(task).labels
        return "sequence", list(labels) if labels else None
    return ("token", list(ner.LABELS)) if family == "ner" else ("", None)


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
        "jaxbert-to-hf",
        help="jaxbert run → HF directory: BertForPreTraining / BertForMaskedLM / "
        "BertFor{SequenceClassification,TokenClassification,QuestionAnswering} / BertModel",
    )
    jb.add_argument(
        "src", help="pretraining run, params dir, fine-tuning run (its best_params) or best_params"
    )
    jb.add_argument("--tokenizer", default="", help="tokenizer to include (default: the run's own)")
    jb.add_argument("dst", help="Hugging Face checkpoint directory to write")
    jb.add_argument("--overwrite", action="store_true", help="replace an existing DST")
    jb.set_defaults(func=run_jaxbert_to_hf)
