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
from jaxbert.model.feature_heads import FeatureHead
from jaxbert.model.heads import (
    BertForQuestionAnswering,
    BertForSequenceClassification,
    BertForTokenClassification,
)
from jaxbert.train import step as pretrain_step
from jaxbert.train.losses import weighted_xent
from jaxbert.train.step import Loss, ShardedSteps

Array = jax.Array
MODEL_INPUTS = ("input_ids", "input_mask", "segment_ids")
FEATURE_INPUTS = ("features", "input_mask")  # mode=feature: heads on cached features
KINDS = ("classification", "regression", "token", "span")
SEQUENCE_KINDS = ("classification", "regression")  # one output per example (pooled)


def build_model(
    kind: str, model_cfg, num_labels: int, features=None, pooling: str = "cls"
) -> nn.Module:
    """The full model of a task kind, or with `features` (config.features, mode=feature)
    its head alone, which reads cached encoder features. `pooling` (cls | mean) is the
    sentence-level kinds' summary of the sequence."""
    if features is not None:
        lstm = (features.lstm_size or model_cfg.hidden_size) if features.head == "bilstm" else 0
        return FeatureHead(model_cfg, kind, num_labels, lstm, features.lstm_layers)
    if kind in SEQUENCE_KINDS:
        labels = 1 if kind == "regression" else num_labels
        return BertForSequenceClassification(model_cfg, labels, pooling)
    if kind == "token":
        return BertForTokenClassification(model_cfg, num_labels)
    if kind == "span":
        return BertForQuestionAnswering(model_cfg)
    raise ValueError(f"unknown task kind {kind!r}")


def model_inputs(model) -> tuple[str, ...]:
    """The batch keys a model takes: token ids, or cached features for a feature head."""
    return FEATURE_INPUTS if isinstance(model, FeatureHead) else MODEL_INPUTS


def forward(model, params, batch, rng=None) -> dict[str, Array]:
    """Model outputs as a dict: {"logits"} or {"start_logits", "end_logits"}."""
    out = pretrain_step.forward(model, params, batch, rng, inputs=model_inputs(model))
    return out if isinstance(out, dict) else {"logits": out}


def loss_weights(kind: str, batch: dict) -> Array:
    """Float32 weight of each loss term: per example, or per labeled token for token tasks
    (padding rows weigh 0)."""
    w = batch["weight"].astype(jnp.float32)
    if kind == "token":
        return batch["label_weights"].astype(jnp.float32) * w[:, None]
    return w


def loss_sums(kind: str, outputs: dict, batch: dict) -> tuple[Array, Array]:
    """(Σ weight·loss, Σ weight) in float32; the loss is per example or per labeled token."""
    w = loss_weights(kind, batch)
    if kind == "classification":
        return weighted_xent(outputs["logits"], batch["label"], w)[0], jnp.sum(w)
    if kind == "regression":
        err = outputs["logits"][:, 0].astype(jnp.float32) - batch["label"].astype(jnp.float32)
        return jnp.sum(w * err * err), jnp.sum(w)
    if kind == "token":
        return weighted_xent(outputs["logits"], batch["labels"], w)[0], jnp.sum(w)
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


def task_loss(model, kind: str) -> Loss:
    """Σ weight·loss / Σ weight over the whole batch (per example or per labeled token)."""

    def sums(params, batch, rng):
        total, count = loss_sums(kind, forward(model, params, batch, rng), batch)
        return {"loss": total, "count": count}

    return Loss(
        sums=sums,
        totals=lambda b: {"count": jnp.maximum(jnp.sum(loss_weights(kind, b)), 1.0)},
        combine=lambda s, t: s["loss"] / t["count"],
        report=lambda s, t: {"loss": s["loss"] / t["count"]},
    )


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


def FinetuneSteps(  # noqa: N802 — reads as the class it builds
    model,
    tx,
    schedule,
    kind: str,
    mesh: Mesh,
    example: dict,
    accum_steps: int = 1,
    rules=sharding.LOGICAL_RULES,
) -> ShardedSteps:
    """The sharded train state and jitted train/eval steps for one task and mesh."""
    return ShardedSteps(
        functools.partial(pretrain_step.init_state, model, tx, example, inputs=model_inputs(model)),
        task_loss(model, kind), functools.partial(eval_step, model=model, kind=kind), mesh,
        tx=tx, schedule=schedule, accum_steps=accum_steps, rules=rules,
    )  # fmt: skip
