"""Pretraining losses and metrics, in float32 whatever the compute dtype.

Losses are returned as sums with their denominators so that gradient accumulation and
multi-host reductions can combine them exactly before dividing.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

Array = jax.Array


def weighted_xent(logits: Array, labels: Array, weights: Array) -> tuple[Array, Array]:
    """Σ w·(−log p[label]) and Σ w·[label has the top logit].

    The per-position loss and its gradient are one custom VJP (`_xent`): autodiff of
    logsumexp − label logit writes the [B, P, V] gradient in three passes (the label
    select, the softmax, their sum), which on CPU cost more than the encoder of a tiny
    model; the hand-written backward is a single fused pass, softmax − one-hot.
    """
    nll, correct = _xent(logits, labels.astype(jnp.int32))
    weights = weights.astype(jnp.float32)
    return jnp.sum(nll * weights), jnp.sum(correct * weights)


def _xent_forward(logits: Array, labels: Array) -> tuple[Array, Array, Array]:
    """(−log p[label], [label logit is the max], logsumexp), in float32. The label logit
    is gathered (its gradient is never taken: `_xent_bwd` writes the one-hot itself;
    clipped, so a padding label out of range stays finite under weight 0), and accuracy
    compares it with the max instead of an argmax over the vocabulary."""
    z = logits.astype(jnp.float32)
    label_logit = jnp.take_along_axis(z, labels[..., None], axis=-1, mode="clip")[..., 0]
    top = jnp.max(z, axis=-1)
    lse = top + jnp.log(jnp.sum(jnp.exp(z - top[..., None]), axis=-1))
    return lse - label_logit, (label_logit >= top).astype(jnp.float32), lse


@jax.custom_vjp
def _xent(logits: Array, labels: Array) -> tuple[Array, Array]:
    nll, correct, _ = _xent_forward(logits, labels)
    return nll, correct


def _xent_fwd(logits, labels):
    nll, correct, lse = _xent_forward(logits, labels)
    return (nll, correct), (logits, labels, lse)


def _xent_bwd(res, cotangents):
    logits, labels, lse = res
    g = cotangents[0][..., None]  # accuracy has no gradient
    is_label = jnp.arange(logits.shape[-1]) == labels[..., None]
    softmax = jnp.exp(logits.astype(jnp.float32) - lse[..., None])
    grad = (softmax - is_label.astype(jnp.float32)) * g
    return grad.astype(logits.dtype), None


_xent.defvjp(_xent_fwd, _xent_bwd)


def pretraining_sums(outputs: dict[str, Array], batch: dict[str, Array]) -> dict[str, Array]:
    """Unnormalised MLM (and, when the model has an NSP head, NSP) loss and accuracy sums
    plus their counts; also the real (non-pad) token count, for real tokens/s."""
    mlm_w = batch["masked_weights"].astype(jnp.float32)
    mlm_loss, mlm_correct = weighted_xent(outputs["mlm_logits"], batch["masked_ids"], mlm_w)
    sums = {"mlm_loss": mlm_loss, "mlm_correct": mlm_correct, "mlm_count": jnp.sum(mlm_w)}
    if "nsp_logits" in outputs:
        nsp_w = jnp.ones(batch["next_sentence_label"].shape, jnp.float32)
        nsp_loss, nsp_correct = weighted_xent(
            outputs["nsp_logits"], batch["next_sentence_label"], nsp_w
        )
        sums |= {"nsp_loss": nsp_loss, "nsp_correct": nsp_correct, "nsp_count": jnp.sum(nsp_w)}
    sums["real_tokens"] = jnp.sum(batch["input_mask"].astype(jnp.float32))
    return sums


def normalise(sums: dict[str, Array]) -> dict[str, Array]:
    """Sums → the reported means (total loss = MLM mean + NSP mean, as google-bert)."""
    mlm_n = jnp.maximum(sums["mlm_count"], 1.0)
    out = {"mlm_loss": sums["mlm_loss"] / mlm_n, "mlm_accuracy": sums["mlm_correct"] / mlm_n}
    out["loss"] = out["mlm_loss"]
    if "nsp_count" in sums:
        nsp_n = jnp.maximum(sums["nsp_count"], 1.0)
        out |= {"nsp_loss": sums["nsp_loss"] / nsp_n, "nsp_accuracy": sums["nsp_correct"] / nsp_n}
        out["loss"] = out["mlm_loss"] + out["nsp_loss"]
    if "real_tokens" in sums:
        out["real_tokens"] = sums["real_tokens"]
    return out
