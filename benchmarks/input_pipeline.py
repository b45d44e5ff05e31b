"""Input-pipeline throughput: seq128 pretraining examples/s per CPU core from prepared shards.

Runs the real pipeline (`make_pretrain_iterator`) in-process (num_workers=0, so one core
does everything: instance creation, gathering, masking, batching) after one warm-up batch,
and prints one result line per masking mode. Target: >= 5,000 examples/s per core, so the
pipeline never starves a TPU host.

    python benchmarks/input_pipeline.py [--prepared runs/prepared] [--batches 40]

Without a prepared directory it trains a tokenizer on corpus/wiki_sample and prepares it
under runs/bench_data first (about half a minute, once).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def ensure_prepared(prepared: Path | None) -> Path:
    from jaxbert.data import corpus, prepare, tokenizer

    if prepared is not None:
        return prepared
    default = REPO / "runs" / "prepared"
    if (default / prepare.MANIFEST_NAME).is_file():
        return default
    out = REPO / "runs" / "bench_data"
    source = REPO / "corpus" / "wiki_sample"
    if not (out / "tokenizer" / tokenizer.SP_MODEL_NAME).is_file():
        print("bench: training a tokenizer on corpus/wiki_sample ...", file=sys.stderr)
        docs = corpus.iter_corpus([source])
        sentences = (s for d in docs for s in corpus.split_sentences(d))
        tokenizer.train_sentencepiece(sentences, out / "tokenizer", vocab_size=8000, quiet=True)
    prepare.prepare([source], out / "tokenizer", out / "prepared")
    return out / "prepared"


def measure(prepared: Path, masking: str, batch_size: int, batches: int) -> float:
    """Steady-state examples/s of one in-process iterator (one core)."""
    from jaxbert.data import pipeline

    cfg = pipeline.default_data_config()
    cfg.prepared_dir, cfg.masking = str(prepared), masking
    it = pipeline.make_pretrain_iterator(cfg, batch_size=batch_size, seed=0)
    next(it)  # warm-up: builds epoch 0's instance table
    start = time.perf_counter()
    for _ in range(batches):
        next(it)
    return batches * batch_size / (time.perf_counter() - start)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prepared", type=Path, default=None)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--batches", type=int, default=40)
    parser.add_argument("--masking", nargs="+", default=["token", "whole_word", "span"])
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):  # one core, so the figure really is per core
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    prepared = ensure_prepared(args.prepared)
    for mode in args.masking:
        rate = measure(prepared, mode, args.batch_size, args.batches)
        print(
            f"input_pipeline seq128 masking={mode} batch={args.batch_size}: "
            f"{rate:,.0f} examples/s per core (target 5,000) [{prepared}]"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
