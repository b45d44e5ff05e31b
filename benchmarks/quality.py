"""The downstream table: a pretrained run against the same architecture from scratch.

For each task, init (the pretrained run, then scratch with the same model config and
tokenizer) and learning rate of a small grid, one `jaxbert finetune --config.seeds=N`
command; the best lr is chosen per (task, init) on the mean dev metric, and the table
reports its mean ± std over seeds, the average over tasks and the wall time. Every
command writes its own output_dir, so an interrupted table resumes where it stopped
(finished commands are only read back). Results: benchmarks/results/quality.json.

    nohup .venv/bin/python benchmarks/quality.py --pretrained runs/cpu_wiki > runs/quality.log 2>&1 &

Defaults follow Turc et al. (2019) for small BERTs: lr ∈ {1e-4, 3e-4, 1e-3}, 3 epochs,
3 seeds, full training sets; SQuAD v1.1 trains on 80% of the dev file's articles and is
scored on the other 20% (only the dev file is offline). `--quick` caps the training sets
for a smoke run of the script itself.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
os.environ["PYTHONPATH"] = str(ROOT / "src")  # this checkout's code, from any worktree
JAXBERT = [sys.executable, "-m", "jaxbert.cli"]
RESULTS = ROOT / "benchmarks" / "results" / "quality.json"
MALLOC = {"MALLOC_ARENA_MAX": "1", "MALLOC_MMAP_MAX_": "0", "MALLOC_TRIM_THRESHOLD_": str(2**36)}
TASKS = ("sst2", "cola", "mrpc", "stsb", "rte", "conll2003", "squad")
PERCENT_TASKS = ("squad",)  # their metrics.json values are already ×100
MAIN_ARMS = ("pretrained", "scratch")
# Turc et al. (2019) Table 6 (GLUE *test*, BERT-Tiny / BERT-Mini, 3.3B words): orientation only.
TURC = {
    "tiny": {"sst2": 83.2, "cola": 0.0, "mrpc": 81.1, "stsb": 74.3, "rte": 57.2},
    "mini": {"sst2": 85.9, "cola": 0.0, "mrpc": 81.1, "stsb": 75.4, "rte": 57.4},
}


def task_config(task: str) -> str:
    if task == "conll2003":
        return str(ROOT / "configs/finetune/ner.py")
    if task == "squad":
        return str(ROOT / "configs/finetune/squad.py")
    return f"{ROOT / 'configs/finetune/glue.py'}:{task}"


def init_overrides(init: str, pretrained: Path, scratch_model: dict | None = None) -> list[str]:
    """Scratch gets the pretrained run's model config key for key (then `scratch_model`'s
    changes, e.g. another init), and its tokenizer."""
    if init == "pretrained":
        return [f"--config.init={pretrained}"]
    config = json.loads((pretrained / "config.json").read_text())
    model = {**config["model"], **(scratch_model or {})}
    keys = [f"--config.model.{k}={v}" for k, v in model.items()]
    tokenizer = Path(config.get("tokenizer") or pretrained / "tokenizer")
    tokenizer = tokenizer if tokenizer.is_absolute() else ROOT / tokenizer
    return ["--config.init=scratch", f"--config.tokenizer={tokenizer}", *keys]


def run_one(task, init, lr, args, out: Path) -> dict | None:
    """One finetune command (all seeds); its metrics.json, or None if it failed."""
    metrics = out / "metrics.json"
    if not metrics.exists():
        cmd = [*JAXBERT, "finetune", "--config", task_config(task)]
        cmd += init_overrides(init, args.pretrained, dict(args.scratch_model))
        cmd += [f"--config.{key}={value}" for key, value in args.finetune]
        cmd += [f"--config.optimizer.learning_rate={lr}", f"--config.seeds={args.seeds}",
                f"--config.num_epochs={args.epochs}", f"--config.output_dir={out}",
                "--config.save_best=false", "--config.log_every=1000"]  # fmt: skip
        if task not in ("squad",) and args.max_seq_length:
            cmd.append(f"--config.max_seq_length={args.max_seq_length}")
        if args.quick:
            cmd += ["--config.max_train_examples=300", "--config.max_eval_examples=200"]
        out.mkdir(parents=True, exist_ok=True)
        t0 = time.time()
        with open(out.parent / f"{out.name}.log", "a") as log:
            rc = subprocess.run(
                cmd, env={**os.environ, **MALLOC}, stdout=log, stderr=log
            ).returncode
        print(f"   {task} {init} lr {lr}: rc {rc} in {time.time() - t0:.0f}s", flush=True)
        if rc != 0 or not metrics.exists():
            return None
    return json.loads(metrics.read_text())


def key_value(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"{text!r}: expected KEY=VALUE")
    return key, value


def best_lr(runs: dict[float, dict]) -> tuple[float, dict]:
    """The lr with the highest mean dev value of the task's metric."""
    return max(runs.items(), key=lambda kv: kv[1]["dev"][kv[1]["metric"]])


def percent(task: str, value: float) -> float:
    """Dev metrics ×100 for the table; SQuAD's F1 and EM already are percentages."""
    return value if task in PERCENT_TASKS else 100 * value


def arm_result(runs: dict[float, dict]) -> dict:
    """One (task, arm) of the results file: its best lr's seeds, and every lr's mean."""
    lr, m = best_lr(runs)
    key = m["metric"]
    return {
        "metric": key, "lr": lr, "mean": m["dev"][key],
        "std": m.get("dev_std", {}).get(key, 0.0),
        "per_seed": [s["dev"][key] for s in m.get("per_seed", [m])],
        "wall_s_all_lrs": sum(r["train_time_s"] for r in runs.values()),
        "all_lrs": {f"{k:g}": r["dev"][key] for k, r in runs.items()},
    }  # fmt: skip


def summarise(results: dict) -> list[str]:
    """The README table rows: task | pretrained | scratch | Δ | any other arms (e.g. scratch
    at another init), then the averages over the tasks that have both main arms."""
    extra = sorted({a for arms in results["tasks"].values() for a in arms} - set(MAIN_ARMS))
    rows = [
        "| task (dev metric) | pretrained | scratch | Δ | best lr (pre / scr) |"
        + "".join(f" {a} |" for a in extra),
        "|---|---|---|---|---|" + "---|" * len(extra),
    ]
    avg: dict[str, list[float]] = {a: [] for a in (*MAIN_ARMS, *extra)}
    for task, by_init in results["tasks"].items():
        if not set(MAIN_ARMS) <= set(by_init):
            continue
        cells, means = [], {}
        for arm in (*MAIN_ARMS, *extra):
            r = by_init.get(arm)
            if r is not None:
                means[arm] = percent(task, r["mean"])
                avg[arm].append(means[arm])
            cells.append("–" if r is None else f"{means[arm]:.1f} ± {percent(task, r['std']):.1f}")
        delta = means["pretrained"] - means["scratch"]
        lrs = f"{by_init['pretrained']['lr']:g} / {by_init['scratch']['lr']:g}"
        rows.append(
            f"| {task} ({by_init['pretrained']['metric']}) | {cells[0]} | {cells[1]} "
            f"| {delta:+.1f} | {lrs} |" + "".join(f" {c} |" for c in cells[2:])
        )
    n = len(avg["pretrained"])
    if n:
        means = {a: statistics.fmean(v) if len(v) == n else None for a, v in avg.items()}
        p, s = means["pretrained"], means["scratch"]
        rows.append(
            f"| **average** ({n} tasks) | {p:.1f} | {s:.1f} | {p - s:+.1f} | |"
            + "".join(" – |" if means[a] is None else f" {means[a]:.1f} |" for a in extra)
        )
    return rows


def merge_arm(old: dict, new: dict) -> dict:
    """One (task, arm) measured at different lr points by two invocations: the union of
    their lr grids, and the seeds of whichever best point wins. A point both measured
    takes the newer value (and the newer file's wall time, which may then undercount)."""
    old_lrs, new_lrs = old.get("all_lrs", {}), new.get("all_lrs", {})
    if old.get("metric") != new.get("metric") or not old_lrs or not new_lrs:
        return new
    superseded = f"{old['lr']:g}" in new_lrs
    best = new if superseded or new["mean"] >= old["mean"] else old
    walls = (old.get("wall_s_all_lrs", 0.0), new.get("wall_s_all_lrs", 0.0))
    wall = max(walls) if set(old_lrs) & set(new_lrs) else sum(walls)
    return {**best, "all_lrs": {**old_lrs, **new_lrs}, "wall_s_all_lrs": wall}


def merge(paths: list[Path]) -> dict:
    """One results dict from several files, arm by arm: arms run as separate invocations
    (one core each) write separate files so they never race on one, and an arm's lr grid
    may be finished by a later invocation (see merge_arm). The run description (command,
    date) is the first file's; an arm's own scratch_model changes travel with the arm."""
    merged: dict = {}
    for path in paths:
        try:
            data = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as e:
            sys.exit(f"quality: cannot merge {path}: {e}")
        if not isinstance(data.get("tasks"), dict):
            sys.exit(f"quality: cannot merge {path}: no 'tasks' table")
        tasks = merged.get("tasks", {})
        merged = {**data, **merged, "tasks": tasks}  # the first file's run description
        for task, arms in data["tasks"].items():
            for arm, new in arms.items():
                old = tasks.setdefault(task, {}).get(arm)
                tasks[task][arm] = new if old is None else merge_arm(old, new)
    return merged


def write_results(results: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(results, indent=2) + "\n")
    tmp.replace(path)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pretrained", type=Path, default=ROOT / "runs/cpu_wiki")
    p.add_argument("--tasks", default=",".join(TASKS))
    p.add_argument("--lrs", default="1e-4,3e-4,1e-3")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--max-seq-length", type=int, default=128, help="GLUE/CoNLL; 0 = config's")
    p.add_argument("--out", type=Path, default=ROOT / "runs/quality")
    p.add_argument("--results", type=Path, default=RESULTS)
    p.add_argument("--quick", action="store_true", help="300 training examples: a smoke run")
    p.add_argument("--inits", default="pretrained,scratch",
                   help="which inits to run now (scratch needs only the run's config and "
                   "tokenizer, so it can run while the pretraining does)")  # fmt: skip
    p.add_argument("--scratch-model", action="append", default=[], type=key_value,
                   metavar="KEY=VALUE", help="change a model key of the scratch arm only "
                   "(e.g. attention_init=normal: scratch at its usual start)")  # fmt: skip
    p.add_argument("--finetune", action="append", default=[], type=key_value,
                   metavar="KEY=VALUE", help="a fine-tuning config key for both arms "
                   "(e.g. pooling=mean); give the run its own --out and --results")  # fmt: skip
    p.add_argument("--scratch-arm", default="scratch", metavar="NAME",
                   help="results key of the scratch arm (e.g. scratch_normal_init beside "
                   "--scratch-model, so it lands beside the plain scratch arm)")  # fmt: skip
    p.add_argument("--merge", nargs="+", type=Path, metavar="FILE",
                   help="merge these results files (e.g. one per arm) into --results, arm "
                   "by arm, print the table and exit; runs nothing")  # fmt: skip
    args = p.parse_args()
    if args.merge:
        base = [args.results] if args.results.is_file() else []
        results = merge(base + args.merge)
        write_results(results, args.results)
        print("\n".join(summarise(results)))
        return 0
    if not (args.pretrained / "config.json").is_file():
        sys.exit(f"quality: {args.pretrained} is not a pretraining run (no config.json)")
    results = {"pretrained": str(args.pretrained), "seeds": args.seeds, "epochs": args.epochs,
               "quick": args.quick, "scratch_model": dict(args.scratch_model),
               "finetune": dict(args.finetune),
               "tasks": {}}  # fmt: skip
    if args.results.is_file():  # another invocation's inits (e.g. scratch run earlier)
        results["tasks"] = json.loads(args.results.read_text()).get("tasks", {})
    for task in args.tasks.split(","):
        for init in args.inits.split(","):
            runs = {}
            for lr in (float(x) for x in args.lrs.split(",")):
                m = run_one(task, init, lr, args, args.out / task / init / f"lr{lr:g}")
                if m is not None:
                    runs[lr] = m
            if not runs:
                continue
            arm = args.scratch_arm if init == "scratch" else init
            results["tasks"].setdefault(task, {})[arm] = arm_result(runs)
            if init == "scratch" and args.scratch_model:
                results["tasks"][task][arm]["scratch_model"] = dict(args.scratch_model)
        write_results(results, args.results)
        print("\n".join(summarise(results)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
