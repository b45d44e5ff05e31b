"""The GPU check: the bf16 base phase-1 recipe on one GPU, with cuDNN attention on and off.

One command, about 6 minutes on an H100/H200 (`benchmarks/gpu_check.sh`). Each variant is
the real `jaxbert pretrain` loop (synthetic batches of the recipe's shape: batch 256,
seq 128, 20 predictions, vocabulary 30,522, remat dots_no_batch, AdamW) in its own
process, so peak memory is its own:

  recipe        attention dropout 0.1, as BERT: attention takes the explicit softmax path
  cudnn         attention dropout 0, jax.nn.dot_product_attention(implementation="cudnn")
  xla           attention dropout 0, the same call with implementation="xla"

Reported per variant: median tokens/s over the logged steps after the first (compile)
log, MFU against the datasheet bf16 peak (`train/flops.py`), the device's peak bytes in
use against `jaxbert plan`'s estimate for the same config. Results:
benchmarks/results/gpu_check.json.

    bash benchmarks/gpu_check.sh              # on the GPU machine
    python benchmarks/gpu_check.py --dry-run  # anywhere: the configs, plans and commands
    python benchmarks/gpu_check.py --cpu      # anywhere: the whole path, tiny model, 6 steps
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "gpu_check.json"
VARIANTS = {
    "recipe": {},
    "cudnn": {"model.attention_dropout": 0.0, "model.attention_impl": "cudnn"},
    "xla": {"model.attention_dropout": 0.0, "model.attention_impl": "xla"},
}


def variant_config(name: str, steps: int, out: Path, cpu: bool):
    """The phase-1 recipe (tiny at batch 8 with --cpu) on synthetic batches."""
    from jaxbert.config import load_config

    size = "tiny" if cpu else "base"
    overrides = {
        "data.source": "synthetic", "train.num_steps": steps, "train.log_every": max(steps // 6, 1),
        "train.eval_every": 0, "checkpoint.every_steps": steps + 1, "output_dir": str(out),
        "tokenizer": "", **VARIANTS[name],
    }  # fmt: skip
    if cpu:
        overrides.update({"train.batch_size": 8, "model.dtype": "float32"})
        if name == "cudnn":  # no cuDNN on a CPU: the path is exercised with xla
            overrides["model.attention_impl"] = "xla"
    argv = [f"--config.{k}={v}" for k, v in overrides.items()]
    return load_config(f"{ROOT / 'configs/pretrain/phase1_seq128.py'}:{size},adamw", argv)


def plan_bytes(cfg) -> float:
    from jaxbert.plan import make_plan

    return make_plan(cfg, dict(cfg.mesh), 1).total_bytes


def child(name: str, steps: int, cpu: bool) -> dict:
    """Runs one variant in this process; returns its measurements."""
    import jax

    from jaxbert.train.loop import pretrain

    with tempfile.TemporaryDirectory() as tmp:
        cfg = variant_config(name, steps, Path(tmp) / "run", cpu)
        result = pretrain(cfg)
        logs = [
            json.loads(x) for x in (Path(tmp) / "run" / "metrics.jsonl").read_text().splitlines()
        ]
    train = [r for r in logs if r.get("split") == "train"][1:]  # the first includes compile
    stats = jax.local_devices()[0].memory_stats() or {}
    return {
        "variant": name, "steps": result.step, "device": jax.devices()[0].device_kind,
        "tokens_per_s": statistics.median(r["tokens_per_s"] for r in train) if train else None,
        "mfu": statistics.median(r["mfu"] for r in train) if train else None,
        "final_loss": result.train_metrics.get("loss"),
        "peak_bytes_in_use": stats.get("peak_bytes_in_use"),
        "plan_bytes": plan_bytes(cfg),
    }  # fmt: skip


def run_variant(name: str, args) -> dict:
    cmd = [sys.executable, __file__, "--child", name, "--steps", str(args.steps)]
    cmd += ["--cpu"] if args.cpu else []
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    lines = [x for x in proc.stdout.splitlines() if x.startswith("{")]
    if proc.returncode or not lines:
        return {"variant": name, "error": (proc.stderr or proc.stdout)[-1500:]}
    return json.loads(lines[-1])


def table(rows) -> str:
    out = ["| variant | tokens/s | MFU (bf16 datasheet) | peak memory | plan | loss |",
           "|---|---|---|---|---|---|"]  # fmt: skip
    gib = 2**30
    for r in rows:
        if "error" in r:
            out.append(f"| {r['variant']} | failed: {r['error'].splitlines()[-1][:80]} | | | | |")
            continue
        peak = f"{r['peak_bytes_in_use'] / gib:.1f} GiB" if r["peak_bytes_in_use"] else "n/a"
        out.append(f"| {r['variant']} | {r['tokens_per_s']:,.0f} | {100 * r['mfu']:.1f}% | {peak} "
                   f"| {r['plan_bytes'] / gib:.1f} GiB | {r['final_loss']:.3f} |")  # fmt: skip
    return "\n".join(out)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--cpu", action="store_true", help="tiny model, batch 8: test the path")
    p.add_argument("--dry-run", action="store_true", help="configs, plans, commands; no run")
    p.add_argument("--out", type=Path, default=RESULTS)
    p.add_argument("--child", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.steps, args.cpu)), flush=True)
        return 0
    if args.dry_run:
        for name in VARIANTS:
            cfg = variant_config(name, args.steps, Path("/tmp/gpu_check") / name, args.cpu)
            print(f"{name}: batch {cfg.train.batch_size} × seq {cfg.data.max_seq_length}, "
                  f"{cfg.model.size} {cfg.model.dtype}, attention_impl {cfg.model.attention_impl}, "
                  f"attention_dropout {cfg.model.attention_dropout}; plan "
                  f"{plan_bytes(cfg) / 2**30:.1f} GiB per device")  # fmt: skip
            print(f"  {sys.executable} {__file__} --child {name} --steps {args.steps}")
        return 0
    rows = [run_variant(name, args) for name in VARIANTS]
    print(table(rows))
    if not args.cpu:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        record = {"date": datetime.date.today().isoformat(), "steps": args.steps, "rows": rows}
        args.out.write_text(json.dumps(record, indent=2) + "\n")
        print(f"written to {args.out}")
    return 1 if any("error" in r for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
