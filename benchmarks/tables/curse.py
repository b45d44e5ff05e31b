"""The curse-of-multilinguality grid (benchmarks/curse.py): a target alone vs with 2 or 5
other languages added, at a held target budget and at a held total budget."""

from __future__ import annotations

import statistics
from itertools import product
from pathlib import Path

from benchmarks.tables._format import load, not_measured, source, table

COMMAND = "taskset -c 1 python benchmarks/curse.py"
MACHINE = "the 2-core CPU machine, one core (taskset -c 1) beside five other jobs"
CONDITIONS = (
    ("alone", "both"),
    ("+2", "fixed_target"),
    ("+5", "fixed_target"),
    ("+2", "fixed_total"),
    ("+5", "fixed_total"),
)
BUDGET = {"both": "–", "fixed_target": "target held", "fixed_total": "total held"}


SCALES = {
    "b16": "b16 (batch 16, lr 2e-3 linear decay)",
    "b64": "b64 (batch 64, lr 3e-3 constant)",
}


def points(runs: dict) -> dict[tuple, list[dict]]:
    """Complete runs grouped by (scale, capacity, target, condition, budget), seeds in
    order."""
    out: dict[tuple, list[dict]] = {}
    for row in sorted(runs.values(), key=lambda r: r["seed"]):
        if row.get("complete"):
            scale = row.get("scale", "b16")
            key = (scale, row["capacity"], row["target"], row["condition"], row["budget"])
            out.setdefault(key, []).append(row)
    return out


def mean_left(rows: list[dict]) -> float | None:
    """Mean held-out accuracy over the seeds that left the plateau (stuck runs are
    reported, not averaged in)."""
    accs = [r["mlm_accuracy"] for r in rows if r["left_plateau"]]
    return statistics.fmean(accs) if accs else None


def delta(rows: list[dict], alone: list[dict]) -> str:
    """Mean minus alone's mean over the runs that left the plateau; where neither group
    left it, the same over the stuck runs, marked so (a plateau compared with a plateau),
    and "–" where one left and the other did not (a stuck run is not averaged in)."""
    m, a = mean_left(rows), mean_left(alone)
    if rows is alone:
        return "–"
    if m is not None and a is not None:
        return f"{m - a:+.3f}"
    if alone and not any(r["left_plateau"] for r in rows + alone):
        both = [statistics.fmean(r["mlm_accuracy"] for r in g) for g in (rows, alone)]
        return f"{both[0] - both[1]:+.3f} (both stuck)"
    if alone:
        both = [statistics.fmean(r["mlm_accuracy"] for r in g) for g in (rows, alone)]
        return f"{both[0] - both[1]:+.3f} (one stuck, one not)"
    return "–"


def _cells(rows: list[dict], alone: list[dict]) -> list[str]:
    seeds = " / ".join(
        f"{r['mlm_accuracy']:.3f}" + ("" if r["left_plateau"] else " (stuck)") for r in rows
    )
    m = mean_left(rows)
    accs = [r["mlm_accuracy"] for r in rows]
    spread = f"{max(accs) - min(accs):.3f}" if len(accs) > 1 else "–"
    loss = statistics.fmean(r["mlm_loss"] for r in rows)
    left = f"{sum(bool(r['left_plateau']) for r in rows)}/{len(rows)}"
    d = delta(rows, alone)
    return [seeds, "–" if m is None else f"{m:.3f}", d, spread, f"{loss:.3f}", left]


def grid(results_dir: Path) -> str:
    runs = load(results_dir, "curse.json")
    if not runs:
        return not_measured(COMMAND)
    by = points(runs)
    rows = []
    for scale, capacity, target in product(SCALES, ("tiny", "mini"), ("en", "tr")):
        alone = by.get((scale, capacity, target, "alone", "both"), [])
        for condition, budget in CONDITIONS:
            got = by.get((scale, capacity, target, condition, budget))
            if not got:
                continue
            r = got[0]
            head = [SCALES[scale], capacity, target, condition, BUDGET[budget]]
            head += [f"{r['steps']:,}"]
            head += [f"{r['target_share']:.2f}", f"{r['target_tokens_seen'] / 1e6:.2f}M"]
            rows.append(head + _cells(got, alone))
    header = [
        "recipe",
        "model",
        "target",
        "added",
        "budget",
        "steps",
        "target share",
        "target tokens",
    ]
    header += ["held-out MLM acc (seed 0 / 1)", "mean", "Δ vs alone", "seed spread"]
    header += ["loss (mean)", "left plateau"]
    return table(header, rows) + "\n" + source(COMMAND, MACHINE, None, ["curse.json"])


def mixtures(results_dir: Path) -> str:
    """Every language of each six-way run: the en- and tr-targeted "+5, total held" runs
    are the same equal-share mixture with the same seed, the corpora listed in another
    order (another draw), so each pair is a replicate."""
    runs = load(results_dir, "curse.json")
    if not runs:
        return not_measured(COMMAND)
    langs = ("en", "de", "ko", "vi", "zh", "tr")
    rows = []
    for name, r in sorted(runs.items()):
        if r.get("complete") and r["condition"] == "+5" and r["budget"] == "fixed_total":
            last = r.get("all_languages") or {}
            cells = [f"{last[x]:.3f}" if x in last else "–" for x in langs]
            rows.append([name, r.get("scale", "b16"), r["seed"], f"{r['steps']:,}", *cells])
    header = ["run", "recipe", "seed", "steps", *(f"{x} acc" for x in langs)]
    return table(header, rows) + "\n" + source(COMMAND, MACHINE, None, ["curse.json"])


def tables(results_dir: Path) -> dict[str, str]:
    return {"curse_grid": grid(results_dir), "curse_mixtures": mixtures(results_dir)}
