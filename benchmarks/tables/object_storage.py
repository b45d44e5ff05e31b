"""Bytes per host with the prepared corpus on gs://: benchmarks/object_storage.py's results,
and what they mean for a 64-host pod and a 200 GB corpus."""

from __future__ import annotations

from pathlib import Path

from benchmarks.tables._format import fixed, load, not_measured, source, table

FILE = "object_storage.json"
COMMAND = ".venv/bin/python benchmarks/object_storage.py"
POD_HOSTS, POD_CORPUS_GB = 64, 200


def _span(values, digits=2) -> str:
    lo, hi = min(values), max(values)
    return (
        fixed(lo, digits)
        if fixed(lo, digits) == fixed(hi, digits)
        else (f"{fixed(lo, digits)}–{fixed(hi, digits)}")
    )


def _machine(meta: dict) -> str:
    loads = meta["loadavg_start"][0], meta["loadavg_end"][0]
    return f"{meta['machine']}, {meta['server']}, load average {min(loads):.1f}–{max(loads):.1f}"


def _measured(data: dict) -> str:
    c = data["corpus"]
    rows = [
        (
            run["mode"],
            run["hosts"],
            _span(run["per_host_token_mb"], 3),
            _span([r["token_bytes"] / r["share_token_bytes"] for r in run["rows"]], 3),
            _span(run["per_host_over_corpus_share"]),
            fixed(run["total_over_corpus"], 3),
            f"{max(run['opened_shards'])} of {c['shards']}",
            _span(run["per_host_other_kb"], 1),
            _span([r["requests"] / r["batches"] for r in run["rows"]], 1),
        )
        for run in data["runs"]
    ]
    header = ("data.host_documents", "hosts N", "token MB per host", "per host ÷ its documents",
              "per host ÷ (corpus/N)", "all hosts ÷ corpus", "shards opened per host (max)",
              "other KB per host", "GETs per batch")  # fmt: skip
    corpus = (
        f"Corpus: {len(c['files'])} Wikipedia files, {c['documents']:,} documents, "
        f"{c['tokens']:,} tokens in {c['shards']} shards; training split "
        f"{c['train_token_bytes'] / 1e6:.2f} MB of token ids. One epoch of packed MLM batches "
        f"({data['batch']['batch_size']} × {data['batch']['max_seq_length']}) per host."
    )
    meta = data["meta"]
    return (
        table(header, rows)
        + "\n\n"
        + corpus
        + "\n"
        + source(meta["command"], _machine(meta), meta["date"], [FILE])  # fmt: skip
    )


def _pod(data: dict) -> str:
    runs = [r for r in data["runs"] if r["mode"] == "contiguous"]
    own = max(r["token_bytes"] / r["share_token_bytes"] for run in runs for r in run["rows"])
    total = max(r["total_over_corpus"] for r in runs)
    share = POD_CORPUS_GB / POD_HOSTS
    widest = max(runs, key=lambda r: r["hosts"])
    spread = max(abs(x - 1) for x in widest["per_host_over_corpus_share"])
    docs = data["corpus"]["train_documents"]
    rows = [
        ("install.sh before: the whole corpus rsynced to every host", f"{POD_CORPUS_GB:,}",
         f"{POD_CORPUS_GB * POD_HOSTS / 1000:.1f} TB"),
        ("read in place from the bucket, each host its block of documents",
         f"{share * own:.2f}", f"{POD_CORPUS_GB * total:,.0f} GB"),
    ]  # fmt: skip
    return (
        table(("data path", "GB read per host per epoch", "total transfer per epoch"), rows)
        + f"\n\nArithmetic: {POD_HOSTS} hosts × a {POD_CORPUS_GB} GB prepared corpus. A "
        f"host's share is {POD_CORPUS_GB} / {POD_HOSTS} = {share:.3f} GB, times the largest "
        f"measured ratio of bytes read to its own documents' bytes (×{fixed(own, 3)}); all "
        f"hosts together read the corpus ×{fixed(total, 3)} (the largest measured total). "
        "Blocks are balanced by tokens, edges at document starts, so hosts differ by up to "
        f"about one document (±{spread:.0%} at {widest['hosts']} hosts × {docs} documents "
        "above; less as documents per host grow). Not included: each host's shard indexes "
        "and headers (about 4 bytes per sentence of its shards), the unigram counts and the "
        'tokenizer copy (the "other" column, once per host).'
    )


def tables(results_dir: Path) -> dict[str, str]:
    data = load(results_dir, FILE)
    if data is None:
        missing = not_measured(COMMAND)
        return {"object_storage_bytes": missing, "object_storage_pod": missing}
    return {"object_storage_bytes": _measured(data), "object_storage_pod": _pod(data)}
