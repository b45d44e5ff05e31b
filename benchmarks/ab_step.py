"""Interleaved A/B of one train-step change, in one process: is the leaner step faster?

Each A/B compiles `train_throughput.py`'s step twice — `before` with the change undone
(the previous code, patched in for the compile), `after` as the code stands — and times
them in alternating rounds (so machine load hits both alike). It also checks that both
give the same loss on the same batch and state, since a lean step must not change the
numbers. Reported: median step ms per variant and the median of per-round ratios.

    .venv/bin/python benchmarks/ab_step.py --ab xent --sizes tiny,mini --rounds 5 --steps 5
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
from pathlib import Path

import jax
import jax.numpy as jnp

sys.path.insert(0, str(Path(__file__).resolve().parent))
from train_throughput import (  # noqa: E402
    DEFAULT_BATCH,
    JaxbertMLMVariant,
    host_batches,
    loadavg,
    time_interleaved,
)

from jaxbert.model.config import model_config  # noqa: E402
from jaxbert.train import losses  # noqa: E402


def _autodiff_xent(logits, labels):
    """The cross-entropy before the custom VJP: autodiff of logsumexp − label logit, the
    label logit picked with a compare (a gather's gradient would be a scatter)."""
    z = logits.astype(jnp.float32)
    is_label = jnp.arange(z.shape[-1]) == labels[..., None]
    label_logit = jnp.sum(jnp.where(is_label, z, 0.0), axis=-1)
    nll = jax.nn.logsumexp(z, axis=-1) - label_logit
    return nll, (label_logit >= jnp.max(z, axis=-1)).astype(jnp.float32)


@contextlib.contextmanager
def undo_xent():
    saved = losses._xent
    losses._xent = _autodiff_xent
    try:
        yield
    finally:
        losses._xent = saved


ABS = {"xent": undo_xent}


def first_loss(v) -> float:
    """The loss of one step from the variant's initial state (the state is copied)."""
    state = jax.tree.map(jnp.copy, v.state)
    _, metrics = v.compiled(state, v.batches[0], v.rng)
    return float(metrics["loss"])


def run(ab: str, size: str, rounds: int, steps: int) -> dict:
    cfg = model_config(size)
    batch = DEFAULT_BATCH.get(size, 32)
    batches = host_batches(batch, cfg.vocab_size)
    with ABS[ab]():
        before = JaxbertMLMVariant("before", cfg, batches)
    after = JaxbertMLMVariant("after", cfg, batches)
    losses_ = {"before": first_loss(before), "after": first_loss(after)}
    times, _ = time_interleaved([before, after], rounds, steps, warmup=1)
    ratios = [
        statistics.median(b) / statistics.median(a) for b, a in zip(times["before"], times["after"])
    ]
    out = {
        "ab": ab, "size": size, "batch": batch, "rounds": rounds, "steps": steps,
        "loss": losses_, "loadavg": loadavg(),
        "step_ms": {k: 1e3 * statistics.median([t for r in v for t in r]) for k, v in times.items()},
        "speedup": statistics.median(ratios), "round_ratios": ratios,
    }  # fmt: skip
    print(f"{ab} {size}: before {out['step_ms']['before']:.1f} ms, after "
          f"{out['step_ms']['after']:.1f} ms, speedup {out['speedup']:.3f}× "
          f"(rounds {', '.join(f'{r:.3f}' for r in ratios)}); loss {losses_}", flush=True)  # fmt: skip
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--ab", choices=sorted(ABS), required=True)
    p.add_argument("--sizes", default="tiny,mini")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--out", default="")
    args = p.parse_args()
    results = [run(args.ab, s, args.rounds, args.steps) for s in args.sizes.split(",")]
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
