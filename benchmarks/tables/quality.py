"""Pretrained vs scratch downstream tables: benchmarks/quality.py's results files."""

from __future__ import annotations

import statistics
from pathlib import Path

from benchmarks.tables._format import load, not_measured, source, table

TASKS = {
    "sst2": "SST-2 (accuracy)", "rte": "RTE (accuracy)", "mrpc": "MRPC (F1)",
    "cola": "CoLA (MCC)", "stsb": "STS-B (Spearman)", "conll2003": "CoNLL-2003 (entity F1)",
    "squad": "SQuAD v1.1 (F1, 20% of dev)",
}  # fmt: skip
ARM_LABELS = {
    "pretrained": "pretrained",
    "scratch": "scratch",
    "scratch_normal_init": "scratch, normal init",
}
MACHINE = "the 2-core CPU machine, up to four fine-tuning runs at once (loaded wall times)"
# name: (results file, command that reproduces it, arm label of `scratch`)
FILES = {
    "quality_local": (
        "quality_local.json",
        "python benchmarks/quality.py --pretrained runs/cpu_wiki --seeds 3 --epochs 3",
        "scratch, local init",
    ),
    "quality_meanpool": (
        "quality_local_meanpool.json",
        "python benchmarks/quality.py --pretrained runs/cpu_wiki --tasks sst2 --lrs 3e-4,1e-3 "
        "--finetune pooling=mean --results benchmarks/results/quality_local_meanpool.json",
        "scratch, local init",
    ),
    "quality_init005": (
        "quality_init005.json",
        "python benchmarks/quality.py --pretrained RUN --tasks sst2,rte,mrpc,cola,stsb "
        "--lrs 3e-4,1e-3 --results benchmarks/results/quality_init005.json",
        "scratch",
    ),
    "quality_sst2_6k": (
        "quality_sst2_6k.json",
        "python benchmarks/quality.py --pretrained RUN --tasks sst2 --lrs 3e-4 "
        "--results benchmarks/results/quality_sst2_6k.json",
        "scratch",
    ),
    "quality_4k": (
        "quality.json",
        "python benchmarks/quality.py --pretrained runs/cpu_wiki --tasks rte,mrpc,stsb,cola "
        "--lrs 3e-4,1e-3",
        "scratch",
    ),
}


def percent(task: str, value: float) -> float:
    """Dev metrics ×100; SQuAD's F1 already is a percentage."""
    return value if task == "squad" else 100 * value


def _cell(task: str, arm: dict | None) -> str:
    if arm is None:
        return "–"
    return f"{percent(task, arm['mean']):.1f} ± {percent(task, arm['std']):.1f}"


def _lrs(arm: dict | None) -> str:
    if arm is None:
        return "–"
    return f"{arm['lr']:.0e}".replace("e-0", "e-") + f" ({len(arm['all_lrs'])} tried)"


def render(data: dict, scratch_label: str) -> str:
    """Task rows (best lr per arm, mean ± std over seeds) and the average over the tasks
    that have both main arms (other arms averaged only where they cover those tasks)."""
    arms = ["pretrained", "scratch"]
    arms += sorted({a for t in data["tasks"].values() for a in t} - set(arms))
    labels = {**ARM_LABELS, "scratch": scratch_label}
    rows, sums = [], {a: [] for a in arms}
    for task, by_arm in data["tasks"].items():
        if not {"pretrained", "scratch"} <= set(by_arm):
            continue
        for a in arms:
            if a in by_arm:
                sums[a].append(percent(task, by_arm[a]["mean"]))
        pre = percent(task, by_arm["pretrained"]["mean"])
        deltas = [f"{pre - percent(task, by_arm[a]['mean']):+.1f}" for a in arms[1:] if a in by_arm]
        wall = " / ".join(f"{by_arm[a]['wall_s_all_lrs'] / 60:.0f}" for a in arms[:2])
        rows.append(
            [TASKS.get(task, task), *(_cell(task, by_arm.get(a)) for a in arms)]
            + [" / ".join(deltas), " / ".join(_lrs(by_arm.get(a)) for a in arms[:2]), wall]
        )
    n = len(sums["pretrained"])
    if n > 1:
        mean = {a: statistics.fmean(v) if len(v) == n else None for a, v in sums.items()}
        avg = ["–" if mean[a] is None else f"**{mean[a]:.1f}**" for a in arms]
        delta = f"**{mean['pretrained'] - mean['scratch']:+.1f}**"
        rows.append([f"**average** ({n} tasks)", *avg, delta, "", ""])
    header = ["task (dev metric)", *(labels.get(a, a) for a in arms),
              "Δ pretrained − " + " / ".join(labels.get(a, a) for a in arms[1:]),
              "best lr (pre / scr)", "wall, all lrs, min (pre / scr)"]  # fmt: skip
    return table(header, rows)


def tables(results_dir: Path) -> dict[str, str]:
    out = {}
    for name, (file, command, scratch_label) in FILES.items():
        data = load(results_dir, file)
        if data is None:
            out[name] = not_measured(command)
            continue
        checkpoint = data.get("pretrained", "").split(" (")[0]
        note = (
            f"\nPretrained checkpoint: `{checkpoint}`; {data['seeds']} seeds, "
            f"{data['epochs']} epochs; mean ± std over seeds of the best lr on dev (×100)."
        )
        if "--merge" in data.get("command", ""):
            note += (
                " Assembled from per-arm runs joined with `quality.py --merge`; the file's "
                "`command` field lists them."
            )
        out[name] = (
            render(data, scratch_label)
            + "\n"
            + note
            + source(command, MACHINE, data.get("date"), [file])
        )
    return out


def headline(results_dir: Path) -> str | None:
    """The front page's cell: the task average, pretrained vs the same model from scratch."""
    data = load(results_dir, "quality_local.json")
    if data is None:
        return None
    both = [t for t, a in data["tasks"].items() if {"pretrained", "scratch"} <= set(a)]
    mean = {
        arm: statistics.fmean(percent(t, data["tasks"][t][arm]["mean"]) for t in both)
        for arm in ("pretrained", "scratch")
    }
    return (
        f"{len(both)}-task dev average {mean['pretrained']:.1f} pretrained vs "
        f"{mean['scratch']:.1f} from scratch ({mean['pretrained'] - mean['scratch']:+.1f}), "
        "BERT-tiny pretrained on 2 CPU cores"
    )
