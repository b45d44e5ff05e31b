"""The cpu_wiki schedule (and init) runs on one chart: held-out MLM accuracy against step.

The runs differ in their lr schedule or their init, and what they show is *when* each leaves the
~0.135 plateau, which a table of four eval points hides. Reads the measured results
(benchmarks/results/cpu_wiki_4k.json and the `recipe` wave of pretrain_sweep.json) and
writes docs/img/cpu_wiki_schedules.png.

    .venv/bin/python benchmarks/plot_schedules.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
OUT = ROOT / "docs" / "img" / "cpu_wiki_schedules.png"
# name in pretrain_sweep.json → legend label
SWEEP_RUNS = {
    "wiki_6k_lr3e-3": "linear 3e-3, 6,000 steps (the recipe to 12-06)",
    "wiki_6k_lr3e-3_s1": "the same, seed 1",
    "wiki_wsd_lr3e-3": "wsd 3e-3 (constant, last 25% decay)",
    "wiki_poly2_lr3e-3": "polynomial² decay from 3e-3",
    "wiki_lr1.5e-3": "linear 1.5e-3",
    "wiki_6k_s1_r": "6,000 steps, seed 1, 2026-12-07 vocabulary (stopped)",
    "wiki_6k_s1_init0.05": "6,000 steps, init 0.05, seed 1",
    "wiki_6k_s0_init0.05": "6,000 steps, init 0.05, seed 0",
    "wiki_6k_s0_local": "local heads at init, seed 0 (the recipe since 12-07)",
    "wiki_6k_s1_local": "local heads at init, seed 1",
}


def curves() -> dict[str, list[tuple[int, float]]]:
    """label → [(step, held-out MLM accuracy)], for the runs that have results."""
    base = json.loads((RESULTS / "cpu_wiki_4k.json").read_text())["eval_fixed_set_15pct"]
    found = {"linear 3e-3, 4,000 steps": [(r["step"], r["mlm_accuracy"]) for r in base]}
    sweep = json.loads((RESULTS / "pretrain_sweep.json").read_text())
    for name, label in SWEEP_RUNS.items():
        if sweep.get(name, {}).get("eval"):
            found[label] = [(r["step"], r["mlm_accuracy"]) for r in sweep[name]["eval"]]
    return found


def main() -> int:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.5))
    for label, points in curves().items():
        steps, acc = zip(*sorted(points))
        style = {"color": "black", "linewidth": 2} if label.startswith("local") else {}
        if label.endswith("seed 1") and label.startswith("local"):
            style["linestyle"] = "--"
        ax.plot(steps, acc, marker="o", markersize=3, label=label, **style)
    ax.axhline(0.30, color="grey", linestyle=":", linewidth=1)
    ax.text(0.01, 0.301, "goal 0.30", color="grey", fontsize=8, transform=ax.get_yaxis_transform())
    ax.set_xlabel("step (batch 64 × 128 tokens)")
    ax.set_ylabel("held-out MLM accuracy (15% masking)")
    ax.set_title("cpu_wiki: tiny model, one lr schedule or init per line")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    OUT.parent.mkdir(parents=True, exist_ok=True)
    tmp = OUT.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=110)
    tmp.replace(OUT)
    print(f"wrote {OUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
