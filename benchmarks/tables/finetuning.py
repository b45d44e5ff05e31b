"""Fine-tuning speed tables: length buckets vs padding, and vmapped vs sequential seeds."""

from __future__ import annotations

from pathlib import Path

from benchmarks.tables._format import load, not_measured, source, table

BUCKETING = (
    "finetune_bucketing.json",
    "finetune_bucketing_sst2_full.json",
    "finetune_bucketing_sst2_3ep.json",
)
BUCKETING_COMMAND = (
    ".venv/bin/python benchmarks/finetune_bucketing.py --init runs/cpu_wiki --epochs 1 "
    "--rounds 1 --lr 3e-4 --out benchmarks/results/finetune_bucketing_sst2_full.json"
)
VMAP_COMMAND = ".venv/bin/python benchmarks/vmap_seeds.py --sizes tiny,mini --rounds 5 --steps 5"
MACHINE = "the 2-core CPU machine"


def bucketing(results_dir: Path) -> str:
    found = [(f, load(results_dir, f)) for f in BUCKETING]
    found = [(f, d) for f, d in found if d is not None]
    if not found:
        return not_measured(BUCKETING_COMMAND)
    rows = []
    for _, d in found:
        examples = "all" if not d["max_train_examples"] else f"{d['max_train_examples']:,}"
        dev = {k: max(r["dev"] for r in runs) for k, runs in d["runs"].items()}
        wall = d["median_wall_s"]
        rows.append([
            f"{d['task']}, {examples} training examples, {d['epochs']} epoch(s)", f"`{d['init']}`",
            f"{wall['bucketed']:.0f} / {wall['padded']:.0f}", f"**{d['speedup_wall']:.2f}×**",
            f"{d['speedup_train']:.2f}×", f"{dev['bucketed']:.3f} / {dev['padded']:.3f}",
            d.get("date", "–"),
        ])  # fmt: skip
    header = ["run", "init", "median wall s (bucketed / padded)", "speed-up, wall",
              "speed-up, training time", "dev accuracy (bucketed / padded)", "date"]  # fmt: skip
    return (
        table(header, rows) + "\n" + source(BUCKETING_COMMAND, MACHINE, None, [f for f, _ in found])
    )


def vmap(results_dir: Path) -> str:
    data = load(results_dir, "vmap_seeds.json")
    if data is None:
        return not_measured(VMAP_COMMAND)
    rows = [
        [r["size"], r["seeds"], r["seq"], f"{r['sequential_examples_per_s']:.1f}",
         f"{r['vmapped_examples_per_s']:.1f}", f"{r['speedup_median']:.2f}×",
         "–".join(f"{x:.2f}" for x in r["speedup_min_max"])]
        for r in data["rows"]
    ]  # fmt: skip
    header = ["size", "seeds", "seq", "sequential examples/s", "vmapped examples/s",
              "vmapped / sequential (median)", "range over rounds"]  # fmt: skip
    return (
        table(header, rows)
        + "\n"
        + source(VMAP_COMMAND, MACHINE, data["meta"]["date"], ["vmap_seeds.json"])
    )


def tables(results_dir: Path) -> dict[str, str]:
    return {"finetune_bucketing": bucketing(results_dir), "vmap_seeds": vmap(results_dir)}
