"""Optimizers (AdamW, LAMB), warmup + decay schedules, the weight-decay mask, clipping.

Gradient accumulation lives in `train/step.py` (it sums exact per-token gradients over
micro-batches), not here, so an accumulated step equals one large-batch step.
"""

from __future__ import annotations

from typing import Any

import jax
import ml_collections
import optax

from jaxbert.errors import UserError

# Parameter leaf names that are never weight-decayed (google-bert: LayerNorm and biases).
NO_DECAY_LEAVES = frozenset({"bias", "scale", "output_bias"})


def optimizer_defaults() -> ml_collections.ConfigDict:
    """google-bert's pretraining optimizer: AdamW 1e-4, β 0.9/0.999, ε 1e-6, wd 0.01."""
    return ml_collections.ConfigDict(
        {
            "name": "adamw",  # adamw | lamb
            "learning_rate": 1e-4,
            "b1": 0.9,
            "b2": 0.999,
            "eps": 1e-6,
            "weight_decay": 0.01,
            "warmup_steps": 10000,
            "decay": "linear",  # linear | polynomial | constant | wsd
            "decay_power": 1.0,  # polynomial decay exponent (LAMB recipe uses 0.5)
            # wsd (warmup-stable-decay): the peak holds until the last decay_fraction of
            # num_steps, which decay linearly to end_learning_rate.
            "decay_fraction": 0.2,
            "end_learning_rate": 0.0,
            "clip_norm": 1.0,  # global-norm clipping; 0 disables
        }
    )


def learning_rate_schedule(opt: Any, num_steps: int) -> optax.Schedule:
    """Linear warmup from 0 to the peak, then decay to end_learning_rate at num_steps."""
    warmup = min(int(opt.warmup_steps), num_steps)
    decay_steps = max(num_steps - warmup, 1)
    if opt.decay == "constant":
        decay = optax.constant_schedule(opt.learning_rate)
    elif opt.decay == "wsd":
        decay = _stable_then_decay(opt, decay_steps, num_steps)
    elif opt.decay in ("linear", "polynomial"):
        power = 1.0 if opt.decay == "linear" else float(opt.decay_power)
        decay = optax.polynomial_schedule(
            opt.learning_rate, opt.end_learning_rate, power, decay_steps
        )
    else:
        raise UserError(
            f"config.optimizer.decay must be linear, polynomial, constant or wsd, got {opt.decay!r}"
        )
    if warmup == 0:
        return decay
    return optax.join_schedules(
        [optax.linear_schedule(0.0, opt.learning_rate, warmup), decay], [warmup]
    )


def _stable_then_decay(opt: Any, after_warmup: int, num_steps: int) -> optax.Schedule:
    """WSD's stable and decay phases: the peak, then a linear fall over the last
    decay_fraction of the run. A short-run CPU recipe climbs mostly while the lr falls
    (benchmarks/README.md), and the stable phase's checkpoints can each start a decay."""
    fraction = float(opt.get("decay_fraction", 0.2))
    if not 0 < fraction <= 1:
        raise UserError(f"config.optimizer.decay_fraction must be in (0, 1], got {fraction}")
    fall = min(max(round(fraction * num_steps), 1), after_warmup)
    return optax.join_schedules(
        [optax.constant_schedule(opt.learning_rate),
         optax.linear_schedule(opt.learning_rate, opt.end_learning_rate, fall)],
        [after_warmup - fall],
    )  # fmt: skip


def decay_mask(params: Any) -> Any:
    """True for parameters that get weight decay: everything but LayerNorm and biases."""

    def leaf_mask(path, _):
        # The last dict key is the leaf's name (boxed parameters add a non-dict entry).
        names = [entry.key for entry in path if isinstance(entry, jax.tree_util.DictKey)]
        return not names or names[-1] not in NO_DECAY_LEAVES

    return jax.tree_util.tree_map_with_path(leaf_mask, params)


def make_optimizer(opt: Any, num_steps: int) -> optax.GradientTransformation:
    schedule = learning_rate_schedule(opt, num_steps)
    common = dict(b1=opt.b1, b2=opt.b2, eps=opt.eps, weight_decay=opt.weight_decay, mask=decay_mask)
    if opt.name == "adamw":
        core = optax.adamw(schedule, **common)
    elif opt.name == "lamb":
        core = optax.lamb(schedule, **common)
    else:
        raise UserError(f"config.optimizer.name must be adamw or lamb, got {opt.name!r}")
    if opt.clip_norm and opt.clip_norm > 0:
        return optax.chain(optax.clip_by_global_norm(opt.clip_norm), core)
    return core
