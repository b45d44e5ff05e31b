"""Bytes each host reads per epoch when the prepared corpus stays on object storage.

A real local GCS server (gcp-storage-emulator, as in the tests) holds a prepared slice of
the offline Wikipedia; N = 1, 2, 4 processes stand in for N hosts, each building this
process's training batches of one epoch (`BatchSource`, data.host_documents=contiguous,
packed MLM windows) straight from `gs://`. Every byte the store fetches is counted
(`store.REMOTE_READS`: token-file bytes apart from indexes, headers, unigram counts and
the tokenizer copy). The claim checked: per host ≈ corpus / N, all hosts together ≈ the
corpus once — against install.sh's old way, the whole corpus copied to every host.

    .venv/bin/python benchmarks/object_storage.py            # → benchmarks/results/object_storage.json

Needs requirements-dev.txt (gcp-storage-emulator, gcsfs) and ../shared/data/wikipedia.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

WIKI = REPO.parent / "shared" / "data" / "wikipedia" / "AA"
BATCH, SEQ = 32, 128


def _worker(prepared: str, mode: str, index: int, count: int) -> dict:
    """One host: one epoch of training batches read from the bucket; what it fetched."""
    from jaxbert.data import pipeline, store

    cfg = pipeline.default_data_config()
    cfg.update(prepared_dir=prepared, packing="full_sentences", objective="mlm",
               max_seq_length=SEQ, max_predictions_per_seq=0, host_documents=mode)  # fmt: skip
    t0 = time.perf_counter()
    source = pipeline.BatchSource(
        pipeline.validate_data_config(cfg), batch_size=BATCH, seed=0, process_index=index,
        process_count=count, split="train", debug=False,
    )  # fmt: skip
    for g in range(source.batches_per_epoch):
        source(g)
    first, length = source.corpus.doc_token_spans(source.local_docs)
    return {
        "host": index,
        "token_bytes": store.REMOTE_READS["token_bytes"],
        "other_bytes": store.REMOTE_READS["other_bytes"],
        "requests": store.REMOTE_READS["requests"],
        "share_token_bytes": int(length.sum()) * _itemsize(source.corpus),
        "opened_shards": source.corpus.opened_shards,
        "batches": source.batches_per_epoch,
        "seconds": round(time.perf_counter() - t0, 2),
    }


def _prepare(work: Path, files: int, shard_tokens: int) -> Path:
    from jaxbert.data import corpus, prepare, tokenizer

    paths = [WIKI / f"wiki_{i:02d}.gz" for i in range(files)]
    sentences = (s for d in corpus.iter_corpus(paths) for s in corpus.split_sentences(d))
    tok = tokenizer.train_sentencepiece(
        sentences, work / "tokenizer", vocab_size=8000, max_sentences=50_000, quiet=True
    )
    out = work / "prepared"
    prepare.prepare(paths, tok, out, workers=1, shard_max_tokens=shard_tokens, progress=False)
    return out


def _hosts(url: str, mode: str, n: int, env: dict) -> list[dict]:
    """N worker processes at once, as N hosts would read at once."""
    tmp = [tempfile.mkdtemp(prefix=f"host{i}-") for i in range(n)]  # no shared tokenizer copy
    procs = [
        subprocess.Popen(
            [sys.executable, __file__, "--worker", url, mode, str(i), str(n)],
            env={**env, "TMPDIR": tmp[i]},
            stdout=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        for i in range(n)
    ]
    rows = []
    for p in procs:
        out, _ = p.communicate(timeout=1800)
        if p.returncode != 0:
            raise SystemExit(f"worker failed ({p.returncode})")
        rows.append(json.loads(out.strip().splitlines()[-1]))
    for folder in tmp:
        shutil.rmtree(folder, ignore_errors=True)
    return rows


def _summary(rows: list[dict], corpus_train_bytes: int) -> dict:
    n = len(rows)
    ratios = [r["token_bytes"] / (corpus_train_bytes / n) for r in rows]
    return {
        "hosts": n,
        "per_host_token_mb": [round(r["token_bytes"] / 1e6, 3) for r in rows],
        "per_host_over_corpus_share": [round(x, 3) for x in ratios],
        "total_over_corpus": round(sum(r["token_bytes"] for r in rows) / corpus_train_bytes, 3),
        "per_host_other_kb": [round(r["other_bytes"] / 1e3, 1) for r in rows],
        "opened_shards": [len(r["opened_shards"]) for r in rows],
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--files", type=int, default=4, help="wiki_NN.gz files in the corpus")
    ap.add_argument("--shard-tokens", type=int, default=100_000, help="prepare's shard size")
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "object_storage.json"))
    args = ap.parse_args(argv)
    from jaxbert import fs
    from jaxbert.data.prepare import MANIFEST_NAME
    from jaxbert.data.store import PreparedCorpus
    from tests.gcs_emulator import emulator_env, running_emulator

    load_start = os.getloadavg()
    work = Path(tempfile.mkdtemp(prefix="object-storage-"))
    try:
        prepared = _prepare(work, args.files, args.shard_tokens)
        local = PreparedCorpus(prepared)
        train_docs = _train_docs(local)
        corpus_train_bytes = int(local.doc_token_spans(train_docs)[1].sum()) * _itemsize(local)
        files = {p.name: p.stat().st_size for p in prepared.iterdir() if p.is_file()}
        with running_emulator() as port:
            env = {**os.environ, **emulator_env(port)}
            os.environ.update(emulator_env(port))
            url = "gs://jaxbert-test/prepared"
            fs.swap_in_dir(shutil.copytree(prepared, work / "upload"), url, marker=MANIFEST_NAME)
            runs = []
            for mode, n in (("contiguous", 1), ("contiguous", 2), ("contiguous", 4),
                            ("round_robin", 4)):  # fmt: skip
                rows = _hosts(url, mode, n, env)
                runs.append({"mode": mode, **_summary(rows, corpus_train_bytes), "rows": rows})
                print(json.dumps(runs[-1] | {"rows": "…"}), flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    result = {
        "meta": {
            "command": "python benchmarks/object_storage.py"
            + (f" --files {args.files}" if args.files != 4 else ""),
            "date": time.strftime("%Y-%m-%d"),
            "machine": f"{os.cpu_count()} CPU cores, {platform.machine()}",
            "loadavg_start": [round(x, 2) for x in load_start],
            "loadavg_end": [round(x, 2) for x in os.getloadavg()],
            "server": "gcp-storage-emulator on 127.0.0.1 (in-memory)",
            "counting": "jaxbert.data.store.REMOTE_READS (bytes the client fetched)",
        },
        "corpus": {
            "files": [f"wikipedia/AA/wiki_{i:02d}.gz" for i in range(args.files)],
            "documents": local.num_documents,
            "train_documents": len(train_docs),
            "tokens": int(local.shard_token_start[-1]),
            "shards": len(local.shard_names),
            "train_token_bytes": corpus_train_bytes,
            "prepared_bytes": sum(files.values()),
            "token_file_bytes": sum(v for k, v in files.items() if k.endswith(".tokens.npy")),
        },
        "batch": {"batch_size": BATCH, "max_seq_length": SEQ, "packing": "full_sentences"},
        "runs": runs,
    }
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {args.out}")
    return 0


def _itemsize(corpus) -> int:
    import numpy as np

    return np.dtype(corpus.manifest["token_dtype"]).itemsize


def _train_docs(corpus):
    from jaxbert.data import pipeline

    return pipeline.split_documents(corpus.num_documents, 0.01, "train")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        url, mode, index, count = sys.argv[2:6]
        print(json.dumps(_worker(url, mode, int(index), int(count))))
        sys.exit(0)
    sys.exit(main())
