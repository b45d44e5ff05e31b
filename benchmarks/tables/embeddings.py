"""Contextual-embedding tables: `jaxbert eval-embeddings` and `jaxbert embed stats` results."""

from __future__ import annotations

from pathlib import Path

from benchmarks.embeddings_table import cells
from benchmarks.tables._format import fixed, load, not_measured, source, table

CORRECTIONS = ("none", "center", "whiten", "abtt")
# results file → how the table names the checkpoint
RUNS = {
    "embeddings_cpu_wiki_local.json": "cpu_wiki recipe (6,000 steps, local heads, MLM 0.362)",
    "embeddings_cpu_wiki.json": "cpu_wiki at 4,000 steps (normal init, MLM 0.202)",
    "embeddings_random_init.json": "random init (same architecture)",
}
EVAL_COMMAND = (
    "jaxbert eval-embeddings --init runs/cpu_wiki --corpus ../shared/data/wikipedia "
    "--sentences 20000 --output benchmarks/results/embeddings_cpu_wiki_local.json"
)
STATS = {
    "embed_stats_cpu_wiki.json": "cpu_wiki, 4,000 steps",
    "embed_stats_random_init.json": "random init",
}
STATS_COMMAND = (
    "jaxbert embed stats --init runs/cpu_wiki --corpus ../shared/data/wikipedia "
    "--sentences 2000 --output benchmarks/results/embed_stats_cpu_wiki.json"
)
MACHINE = "the 2-core CPU machine, beside fine-tuning runs (about 3 min per checkpoint)"


def _getter(by_task: dict):
    return lambda task, key: by_task.get(task, {}).get(key, "–")


def evaluations(results_dir: Path) -> str:
    found = {f: load(results_dir, f) for f in RUNS}
    found = {f: d for f, d in found.items() if d is not None}
    if not found:
        return not_measured(EVAL_COMMAND)
    rows = []
    for file, data in found.items():
        tasks = data["tasks"]
        by_task = {t: cells(t, tasks[t]) for t in ("wic", "wsd", "wordsim") if t in tasks}
        for corr in CORRECTIONS:
            get = _getter(by_task)
            rows.append([
                RUNS[file] if corr == "none" else "", corr, get("wic", corr), get("wsd", corr),
                get("wordsim", f"context:{corr}"), get("wordsim", f"table:{corr}"),
            ])  # fmt: skip
    header = ["checkpoint", "correction", "WiC acc. dev / test (%)", "WSD ALL F1 (%)",
              "word similarity, context vectors (mean ρ)", "word similarity, input table (mean ρ)"]  # fmt: skip
    mfs = next((d["tasks"]["wsd"]["results"]["mfs"]["scores"] for d in found.values()
                if "wsd" in d["tasks"]), None)  # fmt: skip
    note = "" if mfs is None else (
        "\nBaselines: WiC chance 50%; WSD most frequent SemCor sense ALL F1 "
        f"{100 * mfs['ALL']['F1']:.1f} ("
        + ", ".join(f"{k} {100 * v['F1']:.1f}" for k, v in mfs.items() if k != "ALL") + ")."
    )  # fmt: skip
    return table(header, rows) + "\n" + note + source(EVAL_COMMAND, MACHINE, None, list(found))


def anisotropy(results_dir: Path) -> str:
    found = {f: load(results_dir, f) for f in STATS}
    found = {f: d for f, d in found.items() if d is not None}
    if not found:
        return not_measured(STATS_COMMAND)
    rows = []
    for file, data in found.items():
        for layer in data["layers"]:
            raw, cen = layer["raw"], layer["centered"]
            rows.append([
                STATS[file], layer["layer"], fixed(raw["random_cosine"]), fixed(cen["random_cosine"]),
                fixed(raw["self_minus_random"]), fixed(cen["self_minus_random"]),
            ])  # fmt: skip
    header = ["checkpoint", "layer (0 = embedding output)", "random-pair cosine, raw",
              "random-pair cosine, centred", "self-similarity − baseline, raw",
              "self-similarity − baseline, centred"]  # fmt: skip
    instances = next(iter(found.values()))["instances"]
    return (
        table(header, rows)
        + f"\n\n{instances:,} word instances per checkpoint."
        + source(STATS_COMMAND, MACHINE, None, list(found))
    )


def tables(results_dir: Path) -> dict[str, str]:
    return {
        "embeddings_eval": evaluations(results_dir),
        "embeddings_anisotropy": anisotropy(results_dir),
    }
