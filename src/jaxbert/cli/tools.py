"""`jaxbert convert` (Hugging Face ⇄ jaxbert) and `jaxbert embed`."""

from __future__ import annotations

import argparse

import numpy as np

from jaxbert.errors import UserError


def add_parsers(subparsers) -> None:
    _add_convert(subparsers)
    _add_embed(subparsers)


def run_hf_to_jaxbert(args: argparse.Namespace) -> int:
    from jaxbert.checkpoint import save_params
    from jaxbert.convert import load_hf_checkpoint

    cfg, params = load_hf_checkpoint(args.src, scan_layers=not args.unscanned)
    save_params(args.dst, params, cfg)
    heads = "with" if "mlm" in params else "without"
    print(f"converted {args.src} → {args.dst} ({cfg.num_layers} layers, {heads} heads)")
    return 0


def run_jaxbert_to_hf(args: argparse.Namespace) -> int:
    from jaxbert.checkpoint import load_params
    from jaxbert.convert import save_hf_checkpoint

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


def _add_embed(subparsers) -> None:
    p = subparsers.add_parser(
        "embed",
        help="contextual word/sentence embeddings and a cosine-similarity table",
        description="Embed words or sentences with a pretrained encoder and print their "
        "cosine similarities. `--demo` compares 'bank' (river) with 'bank' (money).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--init", required=True, help="jaxbert run/params dir or Hugging Face dir")
    p.add_argument("--tokenizer", default="", help="default: the checkpoint's own")
    p.add_argument(
        "--layer",
        default="last4",
        help="N (0 = embedding output, -1 = last layer), 'last', or 'last4' (last four layers)",
    )
    p.add_argument(
        "--combine",
        default="sum",
        choices=("sum", "mean", "concat"),
        help="how to mix several layers",
    )
    p.add_argument("--text", action="append", default=[], help="a text (repeatable)")
    p.add_argument("--file", help="a file with one text per line")
    p.add_argument("--word", help="embed this word in each text (default: whole sentences)")
    p.add_argument("--demo", action="store_true", help="the 'bank' word-sense demo")
    p.add_argument("--output", help="save the vectors to this .npz file")
    p.set_defaults(func=run_embed)


def run_embed(args) -> int:
    from pathlib import Path

    from jaxbert.data.tokenizer import load_tokenizer
    from jaxbert.embed import (
        DEMO_SENTENCES,
        DEMO_WORD,
        Embedder,
        cosine_matrix,
        format_table,
    )  # fmt: skip
    from jaxbert.finetune.pretrained import check_vocab, load_pretrained

    texts = list(args.text)
    if args.file:
        path = Path(args.file)
        if not path.is_file():
            raise UserError(f"--file {path} does not exist")
        texts += [t.strip() for t in path.read_text(encoding="utf-8").splitlines() if t.strip()]
    word = args.word
    if args.demo:
        texts, word = texts or list(DEMO_SENTENCES), word or DEMO_WORD
    pre = load_pretrained(args.init, args.tokenizer)
    tokenizer = load_tokenizer(pre.tokenizer_path)
    check_vocab(pre.model_cfg, tokenizer, "--tokenizer")
    embedder = Embedder(pre.model_cfg, pre.bert_params, tokenizer, args.layer, args.combine)
    vectors = embedder.word_vectors(texts, word) if word else embedder.sentence_vectors(texts)
    what = f'"{word}" in each text' if word else "sentences (mean of sub-token vectors)"
    layers = ", ".join(str(i) for i in embedder.layers)
    title = (
        f"cosine similarity of {what}; layer(s) {layers} of {pre.model_cfg.num_layers} "
        f"({args.combine}), {vectors.shape[-1]}-dim vectors from {pre.source}"
    )
    print(format_table(texts, cosine_matrix(vectors), title))
    if args.output:
        np.savez(args.output, vectors=vectors, texts=np.asarray(texts))
        print(f"\nvectors saved to {args.output}")
    return 0
