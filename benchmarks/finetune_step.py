"""Where a fine-tuning step's time goes: A/Bs of jaxbert's MRPC train step on
all-MiniLM-L6-v2 against transformers' own step, same shapes, same machine.

Each variant runs in a fresh process (malloc settings only take effect before the first
allocation), one after the other and repeated `--reps` times in alternating order, and
reports the median seconds per step (batch 32, random token ids, lengths 64 and 128,
after one compiling step) — the number the wall time of a fine-tuning run is made of:

  jaxbert scanned, glibc malloc     the stacked layer scan pretraining uses, malloc as is
  jaxbert scanned, kept pages       + glibc set to keep freed pages (platforms.cpu_malloc)
  jaxbert unrolled, kept pages      fine-tuning's default now: config.scan_layers=False
  transformers                      BertForSequenceClassification forward, backward,
                                    clip and AdamW step (torch's threads: all cores)

    .venv-bench/bin/python benchmarks/finetune_step.py     # → results/finetune_step.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from reference import MODEL, load_average  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "finetune_step.json"
VARIANTS = {
    "jaxbert scanned, glibc malloc": {"scan": True, "malloc": False},
    "jaxbert scanned, kept pages": {"scan": True, "malloc": True},
    "jaxbert unrolled, kept pages": {"scan": False, "malloc": True},
    "transformers": {"torch": True},
}
BATCH = 32


def _batch(length: int) -> dict:
    rng = np.random.default_rng(0)
    return {"input_ids": rng.integers(1000, 20000, (BATCH, length)).astype(np.int32),
            "input_mask": np.ones((BATCH, length), np.int32),
            "segment_ids": np.zeros((BATCH, length), np.int32),
            "label": rng.integers(0, 2, (BATCH,)).astype(np.int32),
            "weight": np.ones((BATCH,), np.float32)}  # fmt: skip


def _mrpc_steps(overrides=()):
    """jaxbert's MRPC train steps and initial state from all-MiniLM-L6-v2, built as
    `jaxbert finetune` builds them (malloc set per JAXBERT_CPU_MALLOC first)."""
    from jaxbert import platforms

    platforms.cpu_malloc()
    from jaxbert.config import load_config
    from jaxbert.finetune.build import setup

    cfg = load_config("configs/finetune/glue.py:mrpc", [f"--config.init={MODEL}",
                      "--config.output_dir=/tmp/finetune_step", f"--config.batch_size={BATCH}",
                      *overrides])  # fmt: skip
    _, _, fsteps, state, _ = setup(cfg, lambda s: None)
    return fsteps, state


def _jaxbert_steps(variant: dict, lengths, steps: int) -> dict:
    import jax

    from jaxbert import sharding

    fsteps, state = _mrpc_steps([f"--config.scan_layers={variant['scan']}"])
    rng, out = jax.random.key(1), {}
    for length in lengths:
        batch = sharding.global_batch(_batch(length), fsteps.mesh)
        times = []
        for _ in range(steps + 1):
            t = time.perf_counter()
            state, metrics = fsteps.train(state, batch, rng)
            jax.block_until_ready(metrics)
            times.append(time.perf_counter() - t)
        out[length] = {"compile_s": times[0], "step_s": float(np.median(times[1:]))}
    return out


def _torch_steps(lengths, steps: int) -> dict:
    import torch
    from transformers import BertForSequenceClassification

    model = BertForSequenceClassification.from_pretrained(MODEL, num_labels=2)
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=5e-5, eps=1e-6, weight_decay=0.01)
    out = {}
    for length in lengths:
        b = {
            k: torch.tensor(v, dtype=torch.long) for k, v in _batch(length).items() if k != "weight"
        }
        times = []
        for _ in range(steps + 1):
            t = time.perf_counter()
            loss = model(input_ids=b["input_ids"], attention_mask=b["input_mask"],
                         token_type_ids=b["segment_ids"], labels=b["label"]).loss  # fmt: skip
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            opt.zero_grad()
            times.append(time.perf_counter() - t)
        out[length] = {"compile_s": times[0], "step_s": float(np.median(times[1:]))}
    return out


def profile(length: int = 64, steps: int = 3) -> dict:
    """Where the default step's time goes: XLA:CPU's own trace of `steps` train steps
    (thunk durations summed over both threads), by kind and the top operations, each
    named by the model code that made it (the HLO's op_name)."""
    import glob
    import gzip
    import re
    import tempfile

    import jax

    from jaxbert import sharding

    fsteps, state = _mrpc_steps()
    batch, rng = sharding.global_batch(_batch(length), fsteps.mesh), jax.random.key(1)
    state, m = fsteps.train(state, batch, rng)
    jax.block_until_ready(m)
    trace_dir = tempfile.mkdtemp()
    with jax.profiler.trace(trace_dir, create_perfetto_trace=True):
        for _ in range(steps):
            state, m = fsteps.train(state, batch, rng)
            jax.block_until_ready(m)
    path = glob.glob(f"{trace_dir}/**/perfetto_trace.json.gz", recursive=True)[0]
    with gzip.open(path) as f:
        events = json.load(f)
    events = events["traceEvents"] if isinstance(events, dict) else events
    ops: dict[str, float] = {}
    for e in events:
        if e.get("ph") == "X" and "hlo_op" in (e.get("args") or {}):
            ops[e["name"]] = ops.get(e["name"], 0.0) + e["dur"] / 1e3 / steps
    hlo = fsteps.train.lower(state, batch, rng).compile().as_text()

    def origin(op: str) -> str:
        """`backward: layers_*/mlp/wo/dot_general`: the model code, layers pooled."""
        found = re.search(rf"%{re.escape(op)} = .*?op_name=\"([^\"]+)\"", hlo)
        if not found:
            return op
        name = found.group(1)
        where = "backward" if "transpose(" in name else "forward"
        tail = re.sub(r"layers_\d+", "layers_*", name.rsplit("/encoder/", 1)[-1])
        return f"{where}: {tail.replace('checkpoint/', '')}"

    def kind(op: str) -> str:
        if op.startswith(("ynn_fusion", "dot", "xnn_fusion")):
            return "matmuls (YNNPACK/Eigen dots)"
        if re.search("dynamic|copy|transpose|slice|concatenate", op):
            return "copies, slices, transposes"
        return "elementwise and reductions (LayerNorm, GELU, softmax, dropout, AdamW)"

    total = sum(ops.values())
    kinds: dict[str, float] = {}
    for op, ms in ops.items():
        kinds[kind(op)] = kinds.get(kind(op), 0.0) + ms
    groups: dict[str, float] = {}
    for op, ms in ops.items():
        groups[origin(op)] = groups.get(origin(op), 0.0) + ms
    top = sorted(groups.items(), key=lambda kv: -kv[1])[:15]
    return {"length": length, "thread_ms_per_step": total,
            "kinds": {k: {"ms": v, "share": v / total} for k, v in kinds.items()},
            "top": [{"origin": name, "ms": ms, "share": ms / total} for name, ms in top]}  # fmt: skip


def child(name: str, lengths, steps: int) -> None:
    variant = VARIANTS[name]
    res = (
        _torch_steps(lengths, steps)
        if variant.get("torch")
        else _jaxbert_steps(variant, lengths, steps)
    )
    print("RESULT " + json.dumps(res))


def run_variant(name: str, lengths, steps: int) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    env["JAXBERT_CPU_MALLOC"] = "1" if VARIANTS[name].get("malloc") else "0"
    python = ROOT / ".venv" / "bin" / "python" if "jaxbert" in name else Path(sys.executable)
    cmd = [str(python), __file__, "--child", name, "--lengths", *map(str, lengths),
           "--steps", str(steps)]  # fmt: skip
    res = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    line = [x for x in res.stdout.splitlines() if x.startswith("RESULT ")]
    if res.returncode or not line:
        raise SystemExit(f"{name} failed:\n{res.stderr[-2000:]}")
    return json.loads(line[-1][7:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=[64, 128])
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--reps", type=int, default=2)
    parser.add_argument(
        "--profile",
        action="store_true",
        help="trace the default step instead → results/finetune_profile.json",
    )
    parser.add_argument("--child", choices=list(VARIANTS), help=argparse.SUPPRESS)
    args = parser.parse_args()
    os.chdir(ROOT)
    if args.child:
        return child(args.child, args.lengths, args.steps)
    if args.profile:
        out = profile(args.lengths[0]) | {"load_average": load_average()}
        (RESULTS.parent / "finetune_profile.json").write_text(json.dumps(out, indent=1) + "\n")
        for t in out["top"]:
            print(f"{t['ms']:8.1f} ms {100 * t['share']:4.1f}%  {t['origin'][:100]}")
        return None
    runs = {name: [] for name in VARIANTS}
    for rep in range(args.reps):
        for name in VARIANTS if rep % 2 == 0 else reversed(list(VARIANTS)):
            runs[name].append(run_variant(name, args.lengths, args.steps))
            step = {k: round(v["step_s"], 3) for k, v in runs[name][-1].items()}
            print(f"rep {rep}: {name}: s/step {step}", flush=True)
    summary = {name: {str(n): float(np.median([r[str(n)]["step_s"] for r in rs]))
                      for n in args.lengths} for name, rs in runs.items()}  # fmt: skip
    out = {"batch": BATCH, "steps": args.steps, "reps": args.reps, "median_step_s": summary,
           "runs": runs, "load_average": load_average(), "cpus": os.cpu_count()}  # fmt: skip
    RESULTS.write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
