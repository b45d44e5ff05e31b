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

    Written as logsumexp − label logit (picked with a compare, not a gather) and accuracy
    as label logit ≥ max: on CPU the gather's gradient (a zero-filled [B, P, V] scatter)
    and argmax over the vocabulary cost more than the rest of a tiny model's step.
    """
    logits = logits.astype(jnp.float32)
    is_label = jnp.arange(logits.shape[-1]) == labels[..., None].astype(jnp.int32)
    label_logit = jnp.sum(jnp.where(is_label, logits, 0.0), axis=-1)
    nll = jax.nn.logsumexp(logits, axis=-1) - label_logit
    correct = (label_logit >= jnp.max(logits, axis=-1)).astype(jnp.float32)
    return jnp.sum(nll * weights), jnp.sum(correct * weights)


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
