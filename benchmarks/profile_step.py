"""Where a train step's time goes: a `jax.profiler` trace of a few steps, op times summed.

Builds the same step as `train_throughput.py` (synthetic batch, seq 128, 20 predictions,
vocab 30522, AdamW) for one size and variant, traces `--steps` steps, and prints the top
HLO ops (fusions, dots, scatters, ...) by total time, with the share of the step that is
matmul (`dot`/`convolution` ops). The trace stays in `--trace-dir` for Perfetto.

    .venv/bin/python benchmarks/profile_step.py --size tiny --variant jaxbert-mlm --top 25
"""

from __future__ import annotations

import argparse
import collections
import gzip
import json
import re
import sys
import tempfile
from pathlib import Path

import jax

sys.path.insert(0, str(Path(__file__).resolve().parent))
from train_throughput import (  # noqa: E402
    JaxbertMLMVariant,
    JaxbertVariant,
    host_batches,
)

from jaxbert.model.config import model_config  # noqa: E402

VARIANTS = {"jaxbert": JaxbertVariant, "jaxbert-mlm": JaxbertMLMVariant}


def op_times(trace_dir: Path) -> tuple[collections.Counter, float]:
    """Total µs per op name over every XLA op event in the trace, and the traced wall µs."""
    path = max(trace_dir.rglob("*.trace.json.gz"), key=lambda p: p.stat().st_mtime)
    events = json.loads(gzip.decompress(path.read_bytes()))["traceEvents"]
    totals: collections.Counter = collections.Counter()
    steps = [e for e in events if e.get("ph") == "X" and e.get("name", "").startswith("step ")]
    for e in events:
        args = e.get("args", {})
        if e.get("ph") == "X" and ("hlo_op" in args or "long_name" in args):
            totals[e["name"]] += e["dur"]
    wall = sum(e["dur"] for e in steps)
    return totals, wall


def hlo_sources(hlo: str) -> dict[str, str]:
    """Instruction name → the jax op it came from (its `op_name` metadata, shortened)."""
    out = {}
    for m in re.finditer(r"^\s*(?:ROOT )?%?([\w.-]+) = .*?op_name=\"([^\"]+)\"", hlo, re.M):
        out[m.group(1)] = m.group(2).replace("jit(wrapped)/", "")[-90:]
    return out


def is_matmul(name: str, sources: dict[str, str]) -> bool:
    return name.startswith(("dot", "convolution")) or sources.get(name, "").endswith("dot_general")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", default="tiny")
    p.add_argument("--variant", choices=sorted(VARIANTS), default="jaxbert-mlm")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--top", type=int, default=25)
    p.add_argument("--trace-dir", default="")
    args = p.parse_args()
    cfg = model_config(args.size)
    v = VARIANTS[args.variant](args.variant, cfg, host_batches(args.batch, cfg.vocab_size))
    for _ in range(3):
        v.step()
    trace_dir = Path(args.trace_dir or tempfile.mkdtemp(prefix="jaxbert-profile-"))
    with jax.profiler.trace(str(trace_dir), create_perfetto_trace=True):
        for i in range(args.steps):
            with jax.profiler.StepTraceAnnotation("step", step_num=i):
                v.step()
    totals, wall = op_times(trace_dir)
    sources = hlo_sources(v.compiled.as_text())
    ops = sum(totals.values())
    mm = sum(t for n, t in totals.items() if is_matmul(n, sources))
    per = max(wall, ops) / args.steps / 1e3
    print(f"{args.size} {args.variant} batch {args.batch}: {per:.1f} ms/step traced, "
          f"ops {ops / args.steps / 1e3:.1f} ms/step, matmul ops {100 * mm / max(ops, 1):.0f}%")  # fmt: skip
    for name, t in totals.most_common(args.top):
        where = sources.get(name, "")
        print(f"  {t / args.steps / 1e3:8.2f} ms  {100 * t / max(ops, 1):5.1f}%  {name:28} {where}")
    print(f"trace: {trace_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
