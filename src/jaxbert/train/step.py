"""Pure pretraining step functions and their sharded compilation (the pjit model).

`train_step(state, batch, rng)` is a deterministic function of its inputs: the dropout
key is `fold_in(rng, step)`, so a resumed run replays the same randomness.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from contextlib import nullcontext
from typing import Any

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
from jax.sharding import Mesh

from jaxbert import sharding
from jaxbert.errors import UserError
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


@dataclasses.dataclass(frozen=True)
class Loss:
    """A loss written as sums over examples plus the whole batch's denominators.

    `sums(params, batch, rng)` → float32 sums of one (micro-)batch; `totals(batch)` → the
    denominators of the *whole* batch, known before any micro-batch runs; `combine(sums,
    totals)` → the scalar to differentiate; `report(sums, totals)` → the logged means.
    Summing micro-batch gradients of combine(sums_i, totals) then gives exactly the
    large-batch gradient, whatever the task.
    """

    sums: Callable[..., dict]
    totals: Callable[[dict], dict]
    combine: Callable[[dict, dict], Array]
    report: Callable[[dict, dict], dict]


def split_micro_batches(batch: dict, k: int) -> dict:
    """[B, …] → [k, B/k, …], micro-batch i = rows i, i+k, … so each holds rows of every shard."""
    return jax.tree.map(lambda x: x.reshape(x.shape[0] // k, k, *x.shape[1:]).swapaxes(0, 1), batch)


def _grads_and_sums(
    loss_fn: Loss, params, batch, rng, totals, accum_steps: int, grad_shardings=None
):
    def grad_of(micro, key):
        def objective(p):
            sums = loss_fn.sums(p, micro, key)
            return loss_fn.combine(sums, totals), sums

        (_, sums), grads = jax.value_and_grad(objective, has_aux=True)(params)
        if grad_shardings is not None:  # FSDP: reduce-scatter each micro-batch's gradient
            grads = jax.lax.with_sharding_constraint(grads, grad_shardings)
        return grads, sums

    if accum_steps == 1:
        return grad_of(batch, rng)

    def body(carry, xs):
        i, micro = xs
        return jax.tree.map(jnp.add, carry, grad_of(micro, jax.random.fold_in(rng, i))), None

    micro = split_micro_batches(batch, accum_steps)
    zeros = jax.eval_shape(grad_of, jax.tree.map(lambda x: x[0], micro), rng)
    zeros = jax.tree.map(lambda a: jnp.zeros(a.shape, a.dtype), zeros)
    if grad_shardings is not None:  # the running sum stays sharded as the parameters
        zeros = (jax.lax.with_sharding_constraint(zeros[0], grad_shardings), zeros[1])
    (grads, sums), _ = jax.lax.scan(body, zeros, (jnp.arange(accum_steps), micro))
    return grads, sums


def train_step(
    state: TrainState, batch: dict, rng, *, loss_fn: Loss, tx, schedule, accum_steps: int = 1,
    grad_shardings=None,
):  # fmt: skip
    """The one update rule of every run, pretraining or fine-tuning. `grad_shardings`
    (the parameters' shardings) keeps gradients sharded like the parameters."""
    rng = jax.random.fold_in(rng, state.step)
    totals = loss_fn.totals(batch)
    grads, sums = _grads_and_sums(
        loss_fn, state.params, batch, rng, totals, accum_steps, grad_shardings
    )
    updates, opt_state = tx.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    metrics = loss_fn.report(sums, totals)
    metrics["grad_norm"] = optax.tree.norm(grads)
    metrics["learning_rate"] = jnp.asarray(schedule(state.step), jnp.float32)
    return TrainState(step=state.step + 1, params=params, opt_state=opt_state), metrics


def pretraining_model(cfg):
    """The pretraining model of a run config: an NSP head only for data.objective=mlm_nsp."""
    from jaxbert.model.config import ModelConfig
    from jaxbert.model.heads import BertForPreTraining

    nsp = cfg.data.get("objective", "mlm_nsp") == "mlm_nsp"
    return BertForPreTraining(ModelConfig.from_config(cfg.model), nsp=nsp)


def pretraining_loss(model) -> Loss:
    """MLM mean over real prediction slots + NSP mean over sequences (google-bert); MLM
    alone when the model has no NSP head."""
    nsp = getattr(model, "nsp", True)

    def totals(b):
        t = {"mlm_count": jnp.maximum(jnp.sum(b["masked_weights"].astype(jnp.float32)), 1.0)}
        if nsp:
            t["nsp_count"] = jnp.float32(b["next_sentence_label"].shape[0])
        return t

    def combine(s, t):
        loss = s["mlm_loss"] / t["mlm_count"]
        return loss + s["nsp_loss"] / t["nsp_count"] if nsp else loss

    return Loss(
        sums=lambda p, b, rng: pretraining_sums(forward(model, p, b, rng), b),
        totals=totals,
        combine=combine,
        report=lambda s, t: normalise(s),
    )


def eval_step(params, batch: dict, *, model) -> dict[str, Array]:
    """Unnormalised sums; the loop adds them over eval batches, then calls `normalise`."""
    return pretraining_sums(forward(model, params, batch), batch)


def with_rules(fn: Callable, rules, mesh: Mesh | None = None) -> Callable:
    """Trace `fn` under the logical-axis rules and the mesh, so the model's names resolve
    to it. Without the mesh every `with_logical_constraint` is silently a no-op (flax
    applies one only under a global mesh), and e.g. FSDP's weights are never gathered."""

    @functools.wraps(fn)
    def wrapped(*args):
        mesh_ctx = jax.sharding.use_abstract_mesh(mesh.abstract_mesh) if mesh else nullcontext()
        with nn.logical_axis_rules(rules), mesh_ctx:
            return fn(*args)

    return wrapped


class ShardedSteps:
    """A sharded train state and jitted train/eval steps (the pjit model), for any task.

    `init(rng)` builds the boxed (logically named) initial TrainState; `train(state,
    batch, rng)` is `train_step` with `loss_fn`, and `eval(params, batch)` is `evaluate`:
    both pure. Shardings come from the logical names: parameters and optimizer state by
    `rules`, the batch over data × fsdp.
    """

    def __init__(
        self, init: Callable, loss_fn: Loss, evaluate: Callable, mesh: Mesh, *, tx, schedule,
        accum_steps: int = 1, rules=sharding.LOGICAL_RULES,
    ):  # fmt: skip
        self.mesh, self.rules, self._init = mesh, rules, init
        self._abstract = jax.eval_shape(functools.partial(init, jax.random.key(0)))  # boxed
        self.state_shardings = sharding.logical_shardings(self._abstract, mesh, rules)
        train = functools.partial(
            train_step, loss_fn=loss_fn, tx=tx, schedule=schedule, accum_steps=accum_steps,
            grad_shardings=self.state_shardings.params,
        )  # fmt: skip
        batch_sh, repl = sharding.batch_sharding(mesh), sharding.replicated(mesh)
        self.train = jax.jit(
            with_rules(train, rules, mesh),
            in_shardings=(self.state_shardings, batch_sh, repl),
            out_shardings=(self.state_shardings, repl),
            donate_argnums=(0,),
        )
        self.eval = jax.jit(
            with_rules(evaluate, rules, mesh),
            in_shardings=(self.state_shardings.params, batch_sh),
            out_shardings=repl,
        )
        self.params_finite = jax.jit(
            lambda p: jax.tree.reduce(
                jnp.logical_and, jax.tree.map(lambda x: jnp.isfinite(x).all(), p)
            ),
            in_shardings=(self.state_shardings.params,),
        )

    def init_state(self, rng, pretrained: dict | None = None) -> TrainState:
        """Initialise directly into shards (full parameters never sit on one device);
        `pretrained` ({top-level param name: host arrays}, e.g. {"bert": …}) then replaces
        those sub-trees, which must have the initialised shapes."""
        init = functools.partial(self._init, rng)
        with jax.set_mesh(self.mesh), nn.logical_axis_rules(self.rules):
            state = jax.jit(lambda: nn.unbox(init()), out_shardings=self.state_shardings)()
        if not pretrained:
            return state
        params = dict(state.params)
        for name, tree in pretrained.items():
            check_same_structure(params[name], tree, name)
            params[name] = jax.device_put(tree, self.state_shardings.params[name])
        return state.replace(params=params)

    def copy_params(self, state: TrainState):
        """A copy that survives the next (donating) train step, e.g. the best-on-dev params."""
        return jax.tree.map(jnp.copy, state.params)

    def abstract_state(self) -> TrainState:
        """Shape/dtype/sharding skeleton, for restoring a checkpoint straight into shards."""
        return jax.tree.map(
            lambda a, s: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=s),
            nn.unbox(self._abstract),
            self.state_shardings,
        )


def check_same_structure(expected, loaded, name: str) -> None:
    """Loaded weights must have the shapes the model config implies, key for key."""

    def shapes(tree):
        leaves = jax.tree_util.tree_leaves_with_path(tree)
        return {jax.tree_util.keystr(p): tuple(x.shape) for p, x in leaves}

    exp, got = shapes(expected), shapes(loaded)
    if exp != got:
        diff = sorted(set(exp.items()) ^ set(got.items()))[:4]
        raise UserError(
            f"config.init: the checkpoint's {name} parameters do not match its model config "
            f"(first differences: {diff})"
        )


def CompiledSteps(  # noqa: N802 — reads as the class it builds
    model,
    tx,
    schedule,
    mesh: Mesh,
    example: dict,
    accum_steps: int = 1,
    rules=sharding.LOGICAL_RULES,
) -> ShardedSteps:
    """The pretraining model's sharded state and steps."""
    return ShardedSteps(
        functools.partial(init_state, model, tx, example), pretraining_loss(model),
        functools.partial(eval_step, model=model), mesh, tx=tx, schedule=schedule,
        accum_steps=accum_steps, rules=rules,
    )  # fmt: skip
