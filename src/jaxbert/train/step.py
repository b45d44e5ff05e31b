"""Pure pretraining step functions and their sharded compilation (the pjit model).

`train_step(state, batch, rng)` is a deterministic function of its inputs: the dropout
key is `fold_in(rng, step)`, so a resumed run replays the same randomness.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
from jax.sharding import Mesh

from jaxbert import sharding
from jaxbert.train.losses import normalise, pretraining_sums

Array = jax.Array
MODEL_INPUTS = ("input_ids", "input_mask", "segment_ids", "masked_positions")


@flax.struct.dataclass
class TrainState:
    step: Array
    params: Any
    opt_state: Any


def init_state(
    model: nn.Module,
    tx: optax.GradientTransformation,
    example: dict,
    rng,
    inputs: tuple[str, ...] = MODEL_INPUTS,
) -> TrainState:
    """Boxed (logically named) initial state; use under jax.eval_shape / sharded_init.
    `inputs`: the batch keys the model takes, in order (fine-tuning heads take fewer)."""
    params = model.init(rng, *(example[k] for k in inputs))["params"]
    return TrainState(step=jnp.zeros((), jnp.int32), params=params, opt_state=tx.init(params))


def forward(model, params, batch, rng=None, inputs: tuple[str, ...] = MODEL_INPUTS):
    """The model on `batch`'s `inputs`; with an rng, in training mode (dropout on)."""
    kwargs = {"deterministic": rng is None}
    if rng is not None:
        kwargs["rngs"] = {"dropout": rng}
    return model.apply({"params": params}, *(batch[k] for k in inputs), **kwargs)


def _micro_grads(model, params, micro, rng, mlm_total, nsp_total):
    """Gradient of this micro-batch's share of the *whole batch's* mean loss."""

    def loss_fn(p):
        sums = pretraining_sums(forward(model, p, micro, rng), micro)
        return sums["mlm_loss"] / mlm_total + sums["nsp_loss"] / nsp_total, sums

    (_, sums), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
    return grads, sums


def split_micro_batches(batch: dict, k: int) -> dict:
    """[B, …] → [k, B/k, …], micro-batch i = rows i, i+k, … so each holds rows of every shard."""
    return jax.tree.map(lambda x: x.reshape(x.shape[0] // k, k, *x.shape[1:]).swapaxes(0, 1), batch)


def train_step(state: TrainState, batch: dict, rng, *, model, tx, schedule, accum_steps: int = 1):
    rng = jax.random.fold_in(rng, state.step)
    # Denominators of the full batch, known up front: summing micro-batch gradients of
    # (sum / total) then gives exactly the large-batch gradient.
    mlm_total = jnp.maximum(jnp.sum(batch["masked_weights"].astype(jnp.float32)), 1.0)
    nsp_total = jnp.float32(batch["next_sentence_label"].shape[0])
    if accum_steps == 1:
        grads, sums = _micro_grads(model, state.params, batch, rng, mlm_total, nsp_total)
    else:
        micro = split_micro_batches(batch, accum_steps)

        def body(carry, xs):
            i, mb = xs
            g, s = _micro_grads(
                model, state.params, mb, jax.random.fold_in(rng, i), mlm_total, nsp_total
            )
            return jax.tree.map(jnp.add, carry, (g, s)), None

        zero_g = jax.tree.map(jnp.zeros_like, state.params)
        zero_s = {k: jnp.zeros((), jnp.float32) for k in _SUM_KEYS}
        (grads, sums), _ = jax.lax.scan(body, (zero_g, zero_s), (jnp.arange(accum_steps), micro))
    updates, opt_state = tx.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    metrics = normalise(sums)
    metrics["grad_norm"] = optax.tree.norm(grads)
    metrics["learning_rate"] = jnp.asarray(schedule(state.step), jnp.float32)
    return TrainState(step=state.step + 1, params=params, opt_state=opt_state), metrics


_SUM_KEYS = ("mlm_loss", "mlm_correct", "mlm_count", "nsp_loss", "nsp_correct", "nsp_count")


def eval_step(params, batch: dict, *, model) -> dict[str, Array]:
    """Unnormalised sums; the loop adds them over eval batches, then calls `normalise`."""
    return pretraining_sums(forward(model, params, batch), batch)


def with_rules(fn: Callable, rules) -> Callable:
    """Trace `fn` under the logical-axis rules, so the model's names resolve to the mesh."""

    @functools.wraps(fn)
    def wrapped(*args):
        with nn.logical_axis_rules(rules):
            return fn(*args)

    return wrapped


class ShardedSteps:
    """A sharded train state and jitted train/eval steps (the pjit model), for any task.

    `init(rng)` builds the boxed (logically named) initial TrainState; `train(state,
    batch, rng)` and `eval(params, batch)` are pure. Shardings come from the logical names:
    parameters and optimizer state by `rules`, the batch over data × fsdp.
    """

    def __init__(
        self,
        init: Callable,
        train: Callable,
        evaluate: Callable,
        mesh: Mesh,
        rules=sharding.LOGICAL_RULES,
    ):
        self.mesh, self.rules, self._init = mesh, rules, init
        self._abstract = jax.eval_shape(functools.partial(init, jax.random.key(0)))  # boxed
        self.state_shardings = sharding.logical_shardings(self._abstract, mesh, rules)
        batch_sh, repl = sharding.batch_sharding(mesh), sharding.replicated(mesh)
        self.train = jax.jit(
            with_rules(train, rules),
            in_shardings=(self.state_shardings, batch_sh, repl),
            out_shardings=(self.state_shardings, repl),
            donate_argnums=(0,),
        )
        self.eval = jax.jit(
            with_rules(evaluate, rules),
            in_shardings=(self.state_shardings.params, batch_sh),
            out_shardings=repl,
        )
        self.params_finite = jax.jit(
            lambda p: jax.tree.reduce(
                jnp.logical_and, jax.tree.map(lambda x: jnp.isfinite(x).all(), p)
            ),
            in_shardings=(self.state_shardings.params,),
        )

    def init_state(self, rng) -> TrainState:
        """Initialise directly into shards (full parameters never sit on one device)."""
        init = functools.partial(self._init, rng)
        with jax.set_mesh(self.mesh), nn.logical_axis_rules(self.rules):
            return jax.jit(lambda: nn.unbox(init()), out_shardings=self.state_shardings)()

    def abstract_state(self) -> TrainState:
        """Shape/dtype/sharding skeleton, for restoring a checkpoint straight into shards."""
        return jax.tree.map(
            lambda a, s: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=s),
            nn.unbox(self._abstract),
            self.state_shardings,
        )


class CompiledSteps(ShardedSteps):
    """The pretraining model's sharded state and steps."""

    def __init__(
        self,
        model,
        tx,
        schedule,
        mesh: Mesh,
        example: dict,
        accum_steps: int = 1,
        rules=sharding.LOGICAL_RULES,
    ):
        super().__init__(
            init=functools.partial(init_state, model, tx, example),
            train=functools.partial(
                train_step, model=model, tx=tx, schedule=schedule, accum_steps=accum_steps
            ),
            evaluate=functools.partial(eval_step, model=model),
            mesh=mesh,
            rules=rules,
        )
