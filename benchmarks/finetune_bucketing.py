"""Length-bucketed vs fully padded fine-tuning: end-to-end wall time and dev accuracy.

The same `jaxbert finetune` command (SST-2 by default, the default recipe: seq 128,
batch 32) with `--config.length_buckets=true` and `=false`, alternated round by round in
separate processes so that both see the same machine load; the medians and their ratio go
to benchmarks/results/finetune_bucketing.json.

    .venv/bin/python benchmarks/finetune_bucketing.py --init runs/cpu_smoke --rounds 2
    .venv/bin/python benchmarks/finetune_bucketing.py --init scratch --tokenizer runs/cpu_smoke/tokenizer \\
        --max-train-examples 8000 --epochs 1
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
os.environ["PYTHONPATH"] = str(ROOT / "src")
RESULTS = ROOT / "benchmarks" / "results" / "finetune_bucketing.json"
MALLOC = {"MALLOC_ARENA_MAX": "1", "MALLOC_MMAP_MAX_": "0", "MALLOC_TRIM_THRESHOLD_": str(2**36)}


def one_run(args, bucketed: bool, out: Path) -> dict:
    cmd = [sys.executable, "-m", "jaxbert.cli", "finetune", "--config",
           f"{ROOT / 'configs/finetune/glue.py'}:{args.task}", f"--config.init={args.init}",
           f"--config.length_buckets={str(bucketed).lower()}", f"--config.output_dir={out}",
           f"--config.num_epochs={args.epochs}", f"--config.max_train_examples={args.max_train_examples}",
           f"--config.optimizer.learning_rate={args.lr}", "--config.save_best=false",
           "--config.overwrite=true", "--config.log_every=100000"]  # fmt: skip
    if args.tokenizer:
        cmd.append(f"--config.tokenizer={args.tokenizer}")
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env={**os.environ, **MALLOC}, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"finetune failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    m = json.loads((out / "metrics.json").read_text())
    return {"wall_s": wall, "train_time_s": m["train_time_s"], "dev": m["dev"][m["metric"]],
            "metric": m["metric"]}  # fmt: skip


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--task", default="sst2")
    p.add_argument("--init", default="runs/cpu_smoke")
    p.add_argument("--tokenizer", default="")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--max-train-examples", type=int, default=0)
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--out", type=Path, default=RESULTS)
    args = p.parse_args()
    runs = {"bucketed": [], "padded": []}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            for name in ("bucketed", "padded") if r % 2 == 0 else ("padded", "bucketed"):
                res = one_run(args, name == "bucketed", Path(tmp) / name)
                runs[name].append(res)
                print(f"round {r + 1} {name}: {res}", flush=True)
    med = {k: statistics.median(x["wall_s"] for x in v) for k, v in runs.items()}
    train = {k: statistics.median(x["train_time_s"] for x in v) for k, v in runs.items()}
    summary = {
        "task": args.task, "init": args.init, "epochs": args.epochs,
        "max_train_examples": args.max_train_examples, "date": time.strftime("%Y-%m-%d"),
        "runs": runs, "median_wall_s": med, "median_train_time_s": train,
        "speedup_wall": med["padded"] / med["bucketed"],
        "speedup_train": train["padded"] / train["bucketed"],
    }  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps({k: summary[k] for k in ("median_wall_s", "speedup_wall", "speedup_train")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
