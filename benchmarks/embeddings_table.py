"""The README's contextual-embeddings table from `jaxbert eval-embeddings` result JSONs.

    jaxbert eval-embeddings --init runs/cpu_wiki --output benchmarks/results/embeddings_cpu_wiki.json
    jaxbert eval-embeddings --init runs/cpu_wiki --random-init --output benchmarks/results/embeddings_random_init.json
    python benchmarks/embeddings_table.py benchmarks/results/embeddings_cpu_wiki.json \
        benchmarks/results/embeddings_random_init.json

One row per task and metric, one column per (result file, correction); MFS (WSD) and
chance (WiC 50%) are baselines of their own.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path


def cells(task: str, res: dict) -> dict[str, str]:
    """correction → the headline number of that task."""
    out = {}
    for corr, r in res["results"].items():
        if task == "wic":
            out[corr] = (
                f"{100 * r['dev_accuracy']:.1f} / {100 * r.get('test_accuracy', float('nan')):.1f}"
            )
        elif task == "wsd":
            if corr != "mfs":
                out[corr] = f"{100 * r['scores']['ALL']['F1']:.1f}"
        elif task == "flores":
            out[corr] = f"{100 * statistics.fmean(x['to_en'] for x in r.values()):.1f}"
    if task == "wordsim":
        for kind, by_corr in res["results"].items():
            for corr, rho in by_corr.items():
                out[f"{kind}:{corr}"] = f"{statistics.fmean(rho.values()):.3f}"
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("results", nargs="+", type=Path)
    args = p.parse_args()
    runs = [(f.stem.removeprefix("embeddings_"), json.loads(f.read_text())) for f in args.results]
    corrs = ["none", "center", "whiten", "abtt"]
    head = (
        "| task (metric) | " + " | ".join(f"{name}: {c}" for name, _ in runs for c in corrs) + " |"
    )
    print(head)
    print("|" + "---|" * (1 + len(runs) * len(corrs)))
    labels = {"wic": "WiC (acc. dev / test, %)", "wsd": "WSD ALL (F1, %)",
              "flores": "FLORES xx→en (top-1, %)"}  # fmt: skip
    for task in ("wic", "wsd", "flores", "wordsim"):
        if not any(task in r["tasks"] for _, r in runs):
            continue
        rows = [("context", "word similarity, context vectors (mean ρ)"),
                ("table", "word similarity, input table (mean ρ)")] if task == "wordsim" else [("", labels[task])]  # fmt: skip
        for kind, label in rows:
            line = [label]
            for _, r in runs:
                c = cells(task, r["tasks"][task]) if task in r["tasks"] else {}
                line += [c.get(f"{kind}:{x}" if kind else x, "–") for x in corrs]
            print("| " + " | ".join(line) + " |")
    for name, r in runs:
        if "wsd" in r["tasks"]:
            mfs = r["tasks"]["wsd"]["results"]["mfs"]["scores"]
            print(f"\nMFS baseline (SemCor counts), {name}: ALL F1 {100 * mfs['ALL']['F1']:.1f}; "
                  + ", ".join(f"{k} {100 * v['F1']:.1f}" for k, v in mfs.items() if k != "ALL"))  # fmt: skip
            break
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
