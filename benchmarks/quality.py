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


def summarise(results: dict) -> list[str]:
    """The README table rows: task | pretrained | scratch | Δ, then the average."""
    rows = ["| task (dev metric) | pretrained | scratch | Δ | best lr (pre / scr) |",
            "|---|---|---|---|---|"]  # fmt: skip
    avg = {"pretrained": [], "scratch": []}
    for task, by_init in results["tasks"].items():
        if not {"pretrained", "scratch"} <= set(by_init):  # extra arms are reported beside
            continue
        cells, means = [], {}
        for init in ("pretrained", "scratch"):
            r = by_init[init]
            means[init] = 100 * r["mean"]
            avg[init].append(means[init])
            cells.append(f"{100 * r['mean']:.1f} ± {100 * r['std']:.1f}")
        delta = means["pretrained"] - means["scratch"]
        lrs = f"{by_init['pretrained']['lr']:g} / {by_init['scratch']['lr']:g}"
        rows.append(f"| {task} ({by_init['pretrained']['metric']}) | {cells[0]} | {cells[1]} "
                    f"| {delta:+.1f} | {lrs} |")  # fmt: skip
    if avg["pretrained"]:
        p, s = statistics.fmean(avg["pretrained"]), statistics.fmean(avg["scratch"])
        rows.append(f"| **average** ({len(avg['pretrained'])} tasks) | {p:.1f} | {s:.1f} "
                    f"| {p - s:+.1f} | |")  # fmt: skip
    return rows


def merge(paths: list[Path]) -> dict:
    """One results dict from several files, arm by arm: arms run as separate invocations
    (one core each) write separate files so they never race on one. Later files win."""
    merged: dict = {}
    for path in paths:
        try:
            data = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as e:
            sys.exit(f"quality: cannot merge {path}: {e}")
        if not isinstance(data.get("tasks"), dict):
            sys.exit(f"quality: cannot merge {path}: no 'tasks' table")
        tasks = merged.get("tasks", {})
        merged = {**merged, **data, "tasks": tasks}
        for task, arms in data["tasks"].items():
            tasks.setdefault(task, {}).update(arms)
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
            lr, m = best_lr(runs)
            key = m["metric"]
            results["tasks"].setdefault(task, {})[init] = {
                "metric": key, "lr": lr, "mean": m["dev"][key],
                "std": m.get("dev_std", {}).get(key, 0.0),
                "per_seed": [s["dev"][key] for s in m.get("per_seed", [m])],
                "wall_s_all_lrs": sum(r["train_time_s"] for r in runs.values()),
                "all_lrs": {f"{k:g}": r["dev"][key] for k, r in runs.items()},
            }  # fmt: skip
        write_results(results, args.results)
        print("\n".join(summarise(results)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
