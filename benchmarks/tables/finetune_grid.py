"""Fine-tuning all-MiniLM-L6-v2, jaxbert vs transformers' Trainer (benchmarks/finetune_grid.py):
dev scores per task and seed, and wall time, each pair run at once on one core each."""

from __future__ import annotations

import statistics
from pathlib import Path

from benchmarks.tables._format import fixed, load, not_measured, num, source, table

COMMAND = ".venv-bench/bin/python benchmarks/finetune_grid.py"
MACHINE = (
    "the shared 2-core CPU machine; each (task, seed) runs jaxbert and Trainer at once, "
    "one core and one thread each, cores swapped per seed"
)
FILES = ("finetune_grid.json",)
TASKS = {"mrpc": "MRPC", "rte": "RTE", "stsb": "STS-B", "cola": "CoLA", "conll2003": "CoNLL-2003"}
METRICS = {"mrpc": ("accuracy", "f1"), "rte": ("accuracy",), "stsb": ("pearson", "spearman"),
           "cola": ("mcc",), "conll2003": ("f1",)}  # fmt: skip
STACKS = (("torch", "Trainer"), ("jaxbert", "jaxbert"))


def _runs(res: dict, task: str, stack: str) -> list[dict]:
    runs = [r for r in res.get("runs", []) if r["task"] == task and r["stack"] == stack]
    return sorted(runs, key=lambda r: r["seed"])


def _paired(res: dict, task: str) -> list[tuple[dict, dict]]:
    """(Trainer, jaxbert) runs of the seeds both stacks finished."""
    by_seed = {r["seed"]: r for r in _runs(res, task, "jaxbert")}
    return [(t, by_seed[t["seed"]]) for t in _runs(res, task, "torch") if t["seed"] in by_seed]


def _mean_std(values: list[float]) -> tuple[float, float | None]:
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else None


def _cell(mean: float, std: float | None) -> str:
    return fixed(100 * mean, 1) + ("" if std is None else f" ± {fixed(100 * std, 1)}")


def fidelity(res: dict) -> str:
    rows = []
    for task, name in TASKS.items():
        pairs = _paired(res, task)
        if not pairs:
            continue
        for metric in METRICS[task]:
            stats = [_mean_std([p[i]["dev"][metric] for p in pairs]) for i in (0, 1)]
            delta = stats[1][0] - stats[0][0]
            spreads = [s for _, s in stats if s is not None]
            within = "–" if not spreads else ("yes" if abs(delta) <= max(spreads) else "no")
            rows.append((name, metric, len(pairs), _cell(*stats[0]), _cell(*stats[1]),
                         f"{100 * delta:+.1f}", within))  # fmt: skip
    if not rows:
        return not_measured(COMMAND)
    header = ("task", "dev metric ×100", "seeds", "transformers Trainer", "jaxbert finetune",
              "Δ", "|Δ| within the seed spread")  # fmt: skip
    note = (
        " Last epoch's dev scores (what Trainer reports), mean ± standard deviation over "
        "seeds; both stacks train on the same features and are scored by the same code"
    )
    return table(header, rows) + source(COMMAND, MACHINE + "." + note, files=FILES)


def _by_buckets(pairs: list[tuple[dict, dict]]) -> dict[str, list[tuple[dict, dict]]]:
    """Pairs grouped by the length buckets jaxbert padded to (the default changed)."""
    groups: dict[str, list] = {}
    for pair in pairs:
        groups.setdefault(pair[1].get("buckets", "32/64/128"), []).append(pair)
    return groups


def speed(res: dict) -> str:
    rows, totals = [], [0.0, 0.0]
    timed = {t: [p for p in _paired(res, t) if all(r.get("timing_valid", True) for r in p)]
             for t in TASKS}  # fmt: skip
    for name, buckets, pairs in (
        (n, b, p) for t, n in TASKS.items() for b, p in _by_buckets(timed[t]).items()
    ):
        walls = [[p[i]["wall_s"] for p in pairs] for i in (0, 1)]
        totals = [totals[i] + sum(walls[i]) for i in (0, 1)]
        ratio = statistics.median(t / j for t, j in zip(*walls))
        cells = []
        for key, digits in (("sys_s", 0), ("peak_gflops", 0)):
            cells.append(" / ".join(num(statistics.median(p[i][key] for p in pairs), digits)
                                    for i in (0, 1)))  # fmt: skip
        frac = [[p[i].get("fraction_of_own_peak") for p in pairs] for i in (0, 1)]
        cells.append(" / ".join("–" if None in f else f"{100 * statistics.median(f):.0f}%"
                                for f in frac))  # fmt: skip
        rows.append((name, buckets, len(pairs), num(statistics.median(walls[0]), 0),
                     num(statistics.median(walls[1]), 0), f"{fixed(ratio)}×", *cells))  # fmt: skip
    if not rows:
        return not_measured(COMMAND)
    rows.append(("all pairs", "", "", num(totals[0], 0), num(totals[1], 0),
                 f"{fixed(totals[0] / totals[1])}×", "", "", ""))  # fmt: skip
    header = ("task", "jaxbert's length buckets", "seeds", "Trainer wall s (median)",
              "jaxbert wall s (median)", "jaxbert speed vs Trainer", "system s (Trainer / jaxbert)",
              "own fp32 peak GFLOP/s (Trainer / jaxbert)",
              "useful FLOPs of own peak (Trainer / jaxbert)")  # fmt: skip
    note = (
        " Wall time of the whole command (start-up, compiles, per-epoch dev evaluation; "
        "jaxbert also predicts the test split and writes best_params); speed is the median "
        "of the per-seed ratios, the last row the ratio of the summed walls; a pair with a run marked `timing_valid: false` (resumed from a killed run) counts for the scores only"
    )
    return table(header, rows) + source(COMMAND, MACHINE + "." + note, files=FILES)


STEP_COMMAND = ".venv-bench/bin/python benchmarks/finetune_step.py"


def step_ab(res: dict | None) -> str:
    """Median seconds per step of each variant, and transformers' step over it."""
    if not res:
        return not_measured(STEP_COMMAND)
    steps = res["median_step_s"]
    lengths = list(next(iter(steps.values())))
    torch = steps.get("transformers", {})
    rows = []
    for name, by_len in steps.items():
        cells = []
        for n in lengths:
            ratio = (
                f" ({fixed(torch[n] / by_len[n])}× transformers)"
                if torch and name != "transformers"
                else ""
            )
            cells.append(f"{fixed(by_len[n], 3)}{ratio}")
        rows.append((name, *cells))
    header = ("variant", *(f"s/step at length {n}" for n in lengths))
    machine = f"the shared {res['cpus']}-core CPU machine, load average {res['load_average']}"
    note = f"; median of {res['reps']} processes × {res['steps']} steps each, batch {res['batch']}"
    return table(header, rows) + source(STEP_COMMAND, machine + note, files=("finetune_step.json",))


def step_profile(res: dict | None) -> str:
    if not res:
        return not_measured(f"{STEP_COMMAND} --profile")
    rows = [(k, f"{100 * v['share']:.0f}%") for k, v in
            sorted(res["kinds"].items(), key=lambda kv: -kv[1]["share"])]  # fmt: skip
    rows += [(f"`{t['origin']}`", f"{100 * t['share']:.1f}%") for t in res["top"][:10]]
    machine = f"the shared 2-core CPU machine, load average {res['load_average']}"
    return table((f"where (length {res['length']})", "share of thread time"), rows) + source(
        f"{STEP_COMMAND} --profile", machine, files=("finetune_profile.json",)
    )


def tables(results_dir: Path) -> dict[str, str]:
    res = load(results_dir, "finetune_grid") or {}
    return {
        "hf_finetune_fidelity": fidelity(res),
        "hf_finetune_speed": speed(res),
        "finetune_step_ab": step_ab(load(results_dir, "finetune_step")),
        "finetune_step_profile": step_profile(load(results_dir, "finetune_profile")),
    }
