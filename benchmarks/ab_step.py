"""Interleaved A/B of one train-step change, in one process: is the leaner step faster?

Each A/B compiles `train_throughput.py`'s step twice — `before` and `after` the change,
each either code patched in for the compile (`xent`: the previous code undone) or a
model-config override (`remat-none`: a setting to decide a default by) — and times
them in alternating rounds (so machine load hits both alike). It also checks that both
give the same loss on the same batch and state, since a lean step must not change the
numbers. Reported: median step ms per variant and the median of per-round ratios.

    .venv/bin/python benchmarks/ab_step.py --ab xent --sizes tiny,mini --rounds 5 --steps 5
    .venv/bin/python benchmarks/ab_step.py --ab unroll --sizes tiny,mini --rounds 5 --steps 5
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import statistics
import sys
from collections.abc import Callable
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

from jaxbert.model import encoder  # noqa: E402
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


@contextlib.contextmanager
def unrolled_scan():
    """The layer scan fully unrolled (`nn.scan(unroll=num_layers)`): the same stacked
    parameters and numbers, straight-line HLO instead of a while loop."""
    saved = encoder.nn.scan

    def scan(*args, **kwargs):
        return saved(*args, **{**kwargs, "unroll": kwargs.get("length", 1)})

    encoder.nn.scan = scan
    try:
        yield
    finally:
        encoder.nn.scan = saved


@dataclasses.dataclass(frozen=True)
class AB:
    """`before` and `after`: a context the variant compiles inside, or model-config
    overrides (changes of setting rather than of code)."""

    before: Callable = contextlib.nullcontext
    after: Callable = contextlib.nullcontext
    before_cfg: dict = dataclasses.field(default_factory=dict)
    after_cfg: dict = dataclasses.field(default_factory=dict)


ABS = {
    "xent": AB(before=undo_xent),
    "unroll": AB(after=unrolled_scan),
    "remat-none": AB(after_cfg={"remat_policy": "none"}),
    # Python-unrolled layers: a per-layer parameter tree, so a different init (the loss
    # differs for that reason only).
    "no-scan": AB(after_cfg={"scan_layers": False}),
}


def first_loss(v) -> float:
    """The loss of one step from the variant's initial state (the state is copied)."""
    state = jax.tree.map(jnp.copy, v.state)
    _, metrics = v.compiled(state, v.batches[0], v.rng)
    return float(metrics["loss"])


def run(ab: str, size: str, rounds: int, steps: int) -> dict:
    spec = ABS[ab]
    batch = DEFAULT_BATCH.get(size, 32)
    batches = host_batches(batch, model_config(size).vocab_size)
    with spec.before():
        before = JaxbertMLMVariant("before", model_config(size, **spec.before_cfg), batches)
    with spec.after():
        after = JaxbertMLMVariant("after", model_config(size, **spec.after_cfg), batches)
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
