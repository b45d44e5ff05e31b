"""`jaxbert embed` (vectors and a cosine table), `jaxbert embed stats` (anisotropy per
layer, fitted corrections) and `jaxbert eval-embeddings` (WiC, WSD, word similarity).

Every path is checked before the model is loaded, so a typo costs no loading; results
are written beside their target and renamed into place.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from jaxbert.errors import UserError

# Relative to the working directory (the repository root in the docs), never to the
# source tree; JAXBERT_DATA points elsewhere without a flag.
DEFAULT_DATA = os.environ.get("JAXBERT_DATA", "../shared/data")
DEFAULT_CORPUS = "corpus/wiki_sample"
SENTENCE_POOLS = ("mean", "mean_all", "cls")
TABLE_MAX_TEXTS = 20  # with --output, a larger cosine table is not printed
_POOL_HELP = ("a sentence's vector: mean of its words' sub-tokens, mean_all of every token "
              "([CLS]/[SEP] included: sentence-transformers' mean), or [CLS]; default: the "
              "model's own pooling (1_Pooling/config.json) if it has one, else mean")  # fmt: skip


def add_parsers(subparsers) -> None:
    p = subparsers.add_parser(
        "embed",
        help="contextual word/sentence embeddings and a cosine-similarity table",
        description="Embed words or sentences with a pretrained encoder and print their "
        "cosine similarities. `--demo` compares 'bank' (river) with 'bank' (money). "
        "`jaxbert embed stats` measures anisotropy per layer.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    _model_flags(p, required=False)
    p.add_argument("--text", action="append", default=[], help="a text (repeatable)")
    p.add_argument("--file", help="a file with one text per line")
    p.add_argument("--word", help="embed this word in each text (default: whole sentences)")
    p.add_argument("--sentence-pool", default=None, choices=SENTENCE_POOLS, help=_POOL_HELP)
    p.add_argument("--demo", action="store_true", help="the 'bank' word-sense demo")
    p.add_argument("--correction", help="apply a correction saved by `embed stats`")
    p.add_argument(
        "--output",
        help="save the vectors, their index and texts to this .npz file (.npz is added to "
        "other names; written beside and renamed into place); then the cosine table is "
        f"printed only for up to {TABLE_MAX_TEXTS} texts",
    )
    p.set_defaults(func=run_embed)
    sub = p.add_subparsers(dest="embed_command", metavar="stats")
    s = sub.add_parser(
        "stats",
        help="anisotropy per layer: random-pair cosine and self-similarity",
        description="Per layer, the mean cosine between instances of different random words "
        "and the self-similarity of repeated words (Ethayarajh 2019) on a corpus sample, raw "
        "and mean-centred; fits the corrections (center, whiten, abtt) on the sample.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    _model_flags(s)
    _corpus_flags(s, sentences=2000)
    s.add_argument("--max-instances", type=int, default=20000, help="word instances kept")
    s.add_argument("--save-corrections", help="directory for center/whiten/abtt .npz files")
    s.add_argument("--abtt-k", type=int, default=0, help="components removed (0: D/100)")
    s.add_argument("--output", help="write the statistics as JSON here")
    s.set_defaults(func=run_stats)
    _add_eval(subparsers)


def _model_flags(p, required: bool = True) -> None:
    p.add_argument("--init", required=required, help="jaxbert run/params dir or HF dir")
    p.add_argument("--tokenizer", default="", help="default: the checkpoint's own")
    p.add_argument("--random-init", action="store_true",
                   help="the checkpoint's architecture and tokenizer with random weights")  # fmt: skip
    p.add_argument("--layer", default=None,
                   help="N (0 = embedding output, -1 = last), 'last' or 'last4'; default: "
                   "'last' for a sentence-transformers model, else 'last4'")  # fmt: skip
    p.add_argument("--combine", default="sum", choices=("sum", "mean", "concat"),
                   help="how to mix several layers")  # fmt: skip
    p.add_argument("--pool", default="mean", choices=("first", "mean"),
                   help="a word's vector from its sub-tokens")  # fmt: skip
    p.add_argument("--batch-size", type=int, default=64)


def _corpus_flags(p, sentences: int) -> None:
    p.add_argument("--corpus", nargs="+", default=[DEFAULT_CORPUS],
                   help="text files/dirs for the sentence sample")  # fmt: skip
    p.add_argument("--sentences", type=int, default=sentences,
                   help="sentences of ≥ 5 words read from the corpus")  # fmt: skip


def _add_eval(subparsers) -> None:
    p = subparsers.add_parser(
        "eval-embeddings",
        help="score contextual embeddings on WiC, WSD and word similarity",
        description="WiC (cosine threshold chosen on train), all-words WSD (1-NN SemCor "
        "sense centroids, Raganato et al. 2017 sets, MFS baseline) and word similarity "
        "(Spearman ρ, 13 sets), each with and without anisotropy corrections; `flores`: "
        "FLORES-200 cross-lingual sentence retrieval (top-1, xx↔en).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    _model_flags(p)
    p.add_argument("--task", nargs="+", default=["wic", "wsd", "wordsim"],
                   choices=("wic", "wsd", "wordsim", "flores", "sts"))  # fmt: skip
    p.add_argument(
        "--languages",
        default="",
        help="flores: comma-separated codes (e.g. deu_Latn,kor_Hang); default all",
    )
    p.add_argument("--sentence-pool", default=None, choices=SENTENCE_POOLS,
                   help="flores, sts: " + _POOL_HELP)  # fmt: skip
    p.add_argument("--data", default=DEFAULT_DATA,
                   help="the folder with wsd/, wordsim/, glue/ (env JAXBERT_DATA)")  # fmt: skip
    p.add_argument("--corrections", default="none,center,whiten,abtt",
                   help="comma-separated: none, center, whiten, abtt")  # fmt: skip
    p.add_argument("--abtt-k", type=int, default=0, help="components removed (0: D/100)")
    p.add_argument("--semcor-sentences", type=int, default=0, help="0: all of SemCor")
    p.add_argument("--per-word", type=int, default=8, help="wordsim: contexts per word")
    _corpus_flags(p, sentences=100_000)
    p.add_argument("--output", required=True, help="results JSON (with the settings)")
    p.add_argument("--answers", help="also write each system's answers here in the "
                   "benchmarks' own formats (wic/CORRECTION/SPLIT.txt T/F lines, "
                   "wsd/SYSTEM.key.txt for Scorer.java)")  # fmt: skip
    p.set_defaults(func=run_eval)


def _check_exists(flag: str, path: str, what: str) -> None:
    """A missing input named by the flag the user typed (library messages name config keys)."""
    if not Path(path).exists():
        raise UserError(f"{flag} {path}: not found ({what})")


def _embedder(args, layer: str | None = None, combine: str | None = None):
    """The flags' embedder (or, for `embed stats`, the same model with other layers)."""
    from jaxbert.embed import load_embedder

    if not args.init:
        raise UserError("--init is required (a jaxbert run, params or HF dir)")
    _check_exists("--init", args.init, "a jaxbert run or params dir, or a Hugging Face dir")
    return load_embedder(args.init, args.tokenizer, random_init=args.random_init,
                         layer=layer or args.layer, combine=combine or args.combine,
                         pool=args.pool, batch_size=args.batch_size,
                         sentence_pool=getattr(args, "sentence_pool", None))  # fmt: skip


def _json_target(path: str) -> Path:
    p = Path(path)
    if p.is_dir() or not p.parent.is_dir():
        raise UserError(
            f"--output {p}: {'is a directory' if p.is_dir() else f'{p.parent} does not exist'}"
        )
    return p


def run_embed(args) -> int:
    from jaxbert import embed
    from jaxbert.embed import corrections

    output = embed.output_path(args.output) if args.output else None
    texts = list(args.text) + (embed.read_texts(args.file) if args.file else [])
    word = args.word
    if args.demo:
        texts, word = texts or list(embed.DEMO_SENTENCES), word or embed.DEMO_WORD
    if not texts:
        raise UserError(f"--file {args.file} holds no text (empty, or only blank lines)"
                        if args.file and not args.text else
                        "no text to embed: give --text, --file or --demo")  # fmt: skip
    fix = corrections.load(args.correction) if args.correction else None
    embedder, source = _embedder(args)
    if word:  # the index: which text, and where in it the word is
        vectors, spans = embedder.find_word(texts, word)
        index = {"word": word, "char_span": spans}
    else:
        vectors = embedder.sentence_vectors(texts)
        index = {"sentence_pool": embedder.sentence_pool}
    if fix is not None and fix.mean.shape[-1] != vectors.shape[-1]:
        raise UserError(f"--correction {args.correction} was fitted on {fix.mean.shape[-1]}-dim "
                        f"vectors, these are {vectors.shape[-1]}-dim: fit it with the same "
                        "--layer and --combine")  # fmt: skip
    if fix is not None:
        vectors = fix(vectors)
    pool = f"{embedder.sentence_pool} pooling" + (", normalised" if embedder.normalize else "")
    what = f'"{word}" in each text' if word else f"sentences ({pool})"
    layers = ", ".join(str(i) for i in embedder.layers)
    title = (f"cosine similarity of {what}; layer(s) {layers} of "
             f"{embedder.model_cfg.num_layers} ({args.combine}), {vectors.shape[-1]}-dim "
             f"vectors from {source}" + (f", {fix.kind}-corrected" if fix else ""))  # fmt: skip
    if output is None or len(texts) <= TABLE_MAX_TEXTS:
        print(embed.format_table(texts, embed.cosine_matrix(vectors), title))
    if output:
        extra = fix.arrays() if fix else {}
        embed.save_vectors(output, vectors, texts, text_index=range(len(texts)), **index,
                           layers=embedder.layers, **extra)  # fmt: skip
        print(f"{len(texts)} {vectors.shape[-1]}-dim vectors saved to {output}")
    return 0


def _sample_sentences(args):
    from jaxbert.embed.files import corpus_sentences

    for c in args.corpus:
        _check_exists("--corpus", c, "a text file or directory")
    return corpus_sentences(args.corpus, args.sentences)


def run_stats(args) -> int:
    from jaxbert.embed import anisotropy, corrections, parse_layer, read_defaults, select_layers
    from jaxbert.embed.files import save_npz

    out = _json_target(args.output) if args.output else None
    sentences = _sample_sentences(args)
    all_layers, source = _embedder(args, layer="all", combine="stack")
    layer = args.layer or read_defaults(args.init).layer  # the layers corrections are fit on
    chosen = parse_layer(layer, all_layers.model_cfg.num_layers)
    words, targets, names = [], [], []
    for s in sentences:
        idx = [i for i, w in enumerate(s) if w.isalpha()]
        room = args.max_instances - len(names)
        if room <= 0:
            break
        idx = idx[:room]
        words.append(s)
        targets.append(idx)
        names += [s[i].lower() for i in idx]
    stacked = all_layers.word_vectors(words, targets)  # [N, L+1, H]
    rows = anisotropy.layer_stats(stacked, names)
    print(f"anisotropy of {source}: {len(names)} word instances from {len(words)} sentences")
    print(anisotropy.format_stats(rows))
    result = {"init": args.init, "source": source, "instances": len(names), "layers": rows}
    if args.save_corrections:
        vecs = select_layers(stacked.transpose(1, 0, 2)[:, None], chosen, args.combine)[0]
        target = Path(args.save_corrections)
        target.mkdir(parents=True, exist_ok=True)
        for kind in ("center", "whiten", "abtt"):
            fix = corrections.fit(kind, vecs, args.abtt_k, f"the {len(vecs)}-instance sample")
            save_npz(target / f"{kind}.npz", **fix.arrays())
        print(
            f"corrections (layers {chosen}, {args.combine}) saved to {target}/{{center,whiten,abtt}}.npz"
        )
    if out:
        _write_json(out, result)
    return 0


def run_eval(args) -> int:
    from jaxbert.evals import run

    out = _json_target(args.output)
    kinds = [k.strip() for k in args.corrections.split(",") if k.strip()]
    from jaxbert.embed.corrections import KINDS

    bad = [k for k in kinds if k not in KINDS]
    if bad or not kinds:
        raise UserError(f"--corrections: unknown {bad or 'empty list'}; choose from {KINDS}")
    data = Path(args.data)
    run.check_data(data, args.task)
    sentences = _sample_sentences(args) if "wordsim" in args.task else []
    embedder, source = _embedder(args)
    results = run.run(embedder, args.task, data, kinds, sentences=sentences,
                      semcor_sentences=args.semcor_sentences, per_word=args.per_word,
                      top_k=args.abtt_k, sentence_pool=args.sentence_pool,
                      languages=[x for x in args.languages.split(",") if x],
                      answers=Path(args.answers) if args.answers else None)  # fmt: skip
    settings = {k: v for k, v in vars(args).items() if k != "func"}
    settings |= {"layer": embedder.layer, "sentence_pool": embedder.sentence_pool,
                 "normalize": embedder.normalize}  # as resolved (flags or the model's recipe)  # fmt: skip
    _write_json(out, {"settings": settings, "source": source, "tasks": results})
    print(f"results written to {out}")
    return 0


def _write_json(path: Path, obj) -> None:
    from jaxbert.fs import atomic_write_text

    atomic_write_text(path, json.dumps(obj, indent=2, default=str) + "\n")
