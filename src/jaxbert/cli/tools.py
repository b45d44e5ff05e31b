"""`jaxbert convert` (Hugging Face ⇄ jaxbert) and `jaxbert embed`."""

from __future__ import annotations

import argparse
from pathlib import Path

from jaxbert.errors import UserError


def add_parsers(subparsers) -> None:
    _add_convert(subparsers)
    _add_embed(subparsers)


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
    p.add_argument(
        "--output",
        help="save the vectors and texts to this .npz file (.npz is added to other names; "
        "written beside and renamed into place)",
    )
    p.set_defaults(func=run_embed)


def run_embed(args) -> int:
    """Paths are checked before the model is loaded, so a typo in one costs no loading."""
    from jaxbert import embed
    from jaxbert.data.tokenizer import load_tokenizer
    from jaxbert.finetune.pretrained import check_vocab, load_pretrained

    output = embed.output_path(args.output) if args.output else None
    _check_exists("--init", args.init, "a jaxbert run or params dir, or a Hugging Face dir")
    texts = list(args.text) + (embed.read_texts(args.file) if args.file else [])
    word = args.word
    if args.demo:
        texts, word = texts or list(embed.DEMO_SENTENCES), word or embed.DEMO_WORD
    pre = load_pretrained(args.init, args.tokenizer, key="--tokenizer")
    tokenizer = load_tokenizer(pre.tokenizer_path)
    check_vocab(pre.model_cfg, tokenizer, "--tokenizer")
    embedder = embed.Embedder(pre.model_cfg, pre.bert_params, tokenizer, args.layer, args.combine)
    vectors = embedder.word_vectors(texts, word) if word else embedder.sentence_vectors(texts)
    print(_similarity_table(embedder, pre, texts, word, vectors, args.combine))
    if output:
        embed.save_vectors(output, vectors, texts)
        print(f"\nvectors saved to {output}")
    return 0


def _similarity_table(embedder, pre, texts, word, vectors, combine) -> str:
    from jaxbert.embed import cosine_matrix, format_table

    what = f'"{word}" in each text' if word else "sentences (mean of sub-token vectors)"
    layers = ", ".join(str(i) for i in embedder.layers)
    title = (
        f"cosine similarity of {what}; layer(s) {layers} of {pre.model_cfg.num_layers} "
        f"({combine}), {vectors.shape[-1]}-dim vectors from {pre.source}"
    )
    return format_table(texts, cosine_matrix(vectors), title)


def _check_exists(flag: str, path: str, what: str) -> None:
    """A missing input named by the flag the user typed (library messages name config keys)."""
    if not Path(path).exists():
        raise UserError(f"{flag} {path}: not found ({what})")
