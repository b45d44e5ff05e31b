"""Fine-tuning models, losses and pure steps, jitted with shardings like pretraining.

Every batch carries `weight` [B] (1 for real examples, 0 for the rows that pad the last
batch to the fixed shape), so padded rows add nothing to losses, gradients or metrics.
The loss of a step is Σ weight·loss / Σ weight over the *global* batch, so a
data-parallel step equals the one-device step.
"""

from __future__ import annotations

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
from jax.sharding import Mesh

from jaxbert import sharding
from jaxbert.model.heads import (
    BertForQuestionAnswering,
    BertForSequenceClassification,
    BertForTokenClassification,
)
from jaxbert.train import step as pretrain_step
from jaxbert.train.losses import weighted_xent
from jaxbert.train.step import ShardedSteps, TrainState

Array = jax.Array
MODEL_INPUTS = ("input_ids", "input_mask", "segment_ids")
KINDS = ("classification", "regression", "token", "span")


def build_model(kind: str, model_cfg, num_labels: int) -> nn.Module:
    if kind in ("classification", "regression"):
        return BertForSequenceClassification(model_cfg, 1 if kind == "regression" else num_labels)
    if kind == "token":
        return BertForTokenClassification(model_cfg, num_labels)
    if kind == "span":
        return BertForQuestionAnswering(model_cfg)
    raise ValueError(f"unknown task kind {kind!r}")


def forward(model, params, batch, rng=None) -> dict[str, Array]:
    """Model outputs as a dict: {"logits"} or {"start_logits", "end_logits"}."""
    out = pretrain_step.forward(model, params, batch, rng, inputs=MODEL_INPUTS)
    return out if isinstance(out, dict) else {"logits": out}


def loss_sums(kind: str, outputs: dict, batch: dict) -> tuple[Array, Array]:
    """(Σ weight·loss, Σ weight) in float32; the loss is per example or per labeled token."""
    w = batch["weight"].astype(jnp.float32)
    if kind == "classification":
        return weighted_xent(outputs["logits"], batch["label"], w)[0], jnp.sum(w)
    if kind == "regression":
        err = outputs["logits"][:, 0].astype(jnp.float32) - batch["label"].astype(jnp.float32)
        return jnp.sum(w * err * err), jnp.sum(w)
    if kind == "token":
        tw = batch["label_weights"].astype(jnp.float32) * w[:, None]
        return weighted_xent(outputs["logits"], batch["labels"], tw)[0], jnp.sum(tw)
    start = weighted_xent(outputs["start_logits"], batch["start_positions"], w)[0]
    end = weighted_xent(outputs["end_logits"], batch["end_positions"], w)[0]
    return (start + end) / 2, jnp.sum(w)


def predictions(kind: str, outputs: dict) -> dict[str, Array]:
    """What the host needs for metrics, made small on device (argmax for token tags)."""
    if kind == "token":
        return {"tags": jnp.argmax(outputs["logits"], -1).astype(jnp.int32)}
    if kind == "regression":
        return {"score": outputs["logits"][:, 0]}
    return outputs


def train_step(state: TrainState, batch: dict, rng, *, model, tx, schedule, kind: str):
    rng = jax.random.fold_in(rng, state.step)

    def loss_fn(params):
        total, count = loss_sums(kind, forward(model, params, batch, rng), batch)
        return total / jnp.maximum(count, 1.0)

    loss, grads = jax.value_and_grad(loss_fn)(state.params)
    updates, opt_state = tx.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    metrics = {
        "loss": loss,
        "grad_norm": optax.tree.norm(grads),
        "learning_rate": jnp.asarray(schedule(state.step), jnp.float32),
    }
    return TrainState(step=state.step + 1, params=params, opt_state=opt_state), metrics


def eval_step(params, batch: dict, *, model, kind: str) -> tuple[dict, Array, Array]:
    """(predictions, loss sum, weight sum) of one batch, without dropout."""
    outputs = forward(model, params, batch)
    total, count = loss_sums(kind, outputs, batch)
    return predictions(kind, outputs), total, count


def make_optimizer(opt_cfg, num_steps: int, mode: str) -> optax.GradientTransformation:
    """AdamW + warmup/linear decay (train/optim.py); `feature` mode freezes params["bert"]."""
    from jaxbert.train import optim

    tx = optim.make_optimizer(opt_cfg, num_steps)
    if mode == "full":
        return tx
    if mode != "feature":
        raise ValueError(f"mode must be full or feature, got {mode!r}")

    def labels(params):
        return {
            k: jax.tree.map(lambda _, k=k: "frozen" if k == "bert" else "train", v)
            for k, v in params.items()
        }

    return optax.multi_transform({"train": tx, "frozen": optax.set_to_zero()}, labels)


class FinetuneSteps(ShardedSteps):
    """The sharded train state and the jitted train/eval steps for one task and mesh."""

    def __init__(
        self,
        model,
        tx,
        schedule,
        kind: str,
        mesh: Mesh,
        example: dict,
        rules=sharding.LOGICAL_RULES,
    ):
        super().__init__(
            init=functools.partial(
                pretrain_step.init_state, model, tx, example, inputs=MODEL_INPUTS
            ),
            train=functools.partial(train_step, model=model, tx=tx, schedule=schedule, kind=kind),
            evaluate=functools.partial(eval_step, model=model, kind=kind),
            mesh=mesh,
            rules=rules,
        )

    def init_state(self, rng, bert_params=None) -> TrainState:
        """Sharded random init; `bert_params` (host arrays) then replace the encoder's."""
        state = super().init_state(rng)
        if bert_params is None:
            return state
        _check_same_structure(state.params["bert"], bert_params)
        bert = jax.device_put(bert_params, self.state_shardings.params["bert"])
        return state.replace(params={**state.params, "bert": bert})

    def copy_params(self, state: TrainState):
        """A copy that survives the next (donating) train step: the best-on-dev params."""
        return jax.tree.map(jnp.copy, state.params)


def _check_same_structure(expected, loaded) -> None:
    from jaxbert.errors import UserError

    exp = {
        jax.tree_util.keystr(p): x.shape for p, x in jax.tree_util.tree_leaves_with_path(expected)
    }
    got = {
        jax.tree_util.keystr(p): tuple(x.shape)
        for p, x in jax.tree_util.tree_leaves_with_path(loaded)
    }
    if exp != got:
        diff = sorted(set(exp.items()) ^ set(got.items()))[:4]
        raise UserError(
            f"config.init: the checkpoint's encoder does not match its model config "
            f"(first differences: {diff})"
        )
