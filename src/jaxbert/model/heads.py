"""Task heads on top of `BertEncoder`.

Every model names its encoder `bert`, so a pretraining checkpoint's `params["bert"]`
drops into any fine-tuning model unchanged.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxbert.model.config import ModelConfig
from jaxbert.model.encoder import (
    BertEncoder,
    Dense,
    activation,
    dense,
    layer_norm,
    typed_config_post_init,
    zeros_init,
)

Array = jax.Array


def gather_positions(sequence: Array, positions: Array) -> Array:
    """[B, S, H] × [B, P] → [B, P, H]: the MLM head runs on P ≪ S masked slots only."""
    return jnp.take_along_axis(sequence, positions[..., None].astype(jnp.int32), axis=1)


@jax.custom_vjp
def add_bias(x: Array, bias: Array) -> Array:
    """x + bias, whose bias gradient is a matmul (ones @ g) instead of a column reduction:
    XLA:CPU reduces a [B·P, vocab] gradient column-wise ~20× slower than it multiplies."""
    return x + bias


def _add_bias_fwd(x, bias):
    return x + bias, None


def _add_bias_bwd(_, g):
    flat = g.reshape(-1, g.shape[-1])
    return g, jnp.ones((flat.shape[0],), g.dtype) @ flat


add_bias.defvjp(_add_bias_fwd, _add_bias_bwd)


def output_dense(cfg: Any, features: int, name: str, in_axis: str = "embed") -> Dense:
    """A task output layer: its label dimension is small and never sharded."""
    return dense(cfg, features, (in_axis, None), name)


class MLMHead(nn.Module):
    """Transform (dense + GELU + LayerNorm), then logits tied to the word embeddings."""

    cfg: Any

    @nn.compact
    def __call__(self, x: Array, attend) -> Array:
        cfg = self.cfg
        x = dense(cfg, cfg.hidden_size, ("embed", "embed_out"), "transform")(x)
        x = layer_norm(cfg, "layer_norm")(activation(cfg)(x))
        bias = self.param("output_bias", zeros_init(("vocab",)), (cfg.vocab_size,), jnp.float32)
        return add_bias(attend(x).astype(jnp.float32), bias)


class BertForPreTraining(nn.Module):
    """Masked-LM logits at `masked_positions` (or every position if None) and, with `nsp`,
    NSP logits (`data.objective=mlm` builds no NSP head: RoBERTa's objective)."""

    cfg: ModelConfig
    nsp: bool = True
    __post_init__ = typed_config_post_init

    @nn.compact
    def __call__(
        self, input_ids, input_mask, segment_ids, masked_positions=None, deterministic=True
    ) -> dict[str, Array]:
        bert = BertEncoder(self.cfg, name="bert")
        sequence, pooled = bert(input_ids, input_mask, segment_ids, deterministic)
        if masked_positions is not None:
            sequence = gather_positions(sequence, masked_positions)
        out = {"mlm_logits": MLMHead(self.cfg, name="mlm")(sequence, bert.attend)}
        if self.nsp:
            nsp = output_dense(self.cfg, 2, "nsp", "embed_out")(pooled)
            out["nsp_logits"] = nsp.astype(jnp.float32)
        return out


class BertForSequenceClassification(nn.Module):
    """Pooled [CLS] → dropout → dense. num_labels=1 is regression (STS-B).

    `pooling="mean"` averages the real tokens' final states instead: a checkpoint
    pretrained without NSP (`data.objective=mlm`) never trained its pooler or asked [CLS]
    to summarise the sentence, while every token state was trained."""

    cfg: ModelConfig
    num_labels: int
    pooling: str = "cls"
    __post_init__ = typed_config_post_init

    @nn.compact
    def __call__(self, input_ids, input_mask, segment_ids, deterministic=True) -> Array:
        sequence, pooled = BertEncoder(self.cfg, name="bert")(
            input_ids, input_mask, segment_ids, deterministic
        )
        if self.pooling == "mean":
            pooled = masked_mean(sequence, input_mask)
        pooled = nn.Dropout(self.cfg.hidden_dropout)(pooled, deterministic=deterministic)
        return output_dense(self.cfg, self.num_labels, "classifier", "embed_out")(pooled).astype(
            jnp.float32
        )


def masked_mean(sequence: Array, input_mask: Array) -> Array:
    """[B, S, H] → [B, H]: the mean over real (mask 1) positions, in float32."""
    mask = input_mask.astype(jnp.float32)[..., None]
    total = jnp.sum(sequence.astype(jnp.float32) * mask, axis=1)
    return (total / jnp.maximum(jnp.sum(mask, axis=1), 1.0)).astype(sequence.dtype)


class BertForTokenClassification(nn.Module):
    """Per-token logits (NER)."""

    cfg: ModelConfig
    num_labels: int
    __post_init__ = typed_config_post_init

    @nn.compact
    def __call__(self, input_ids, input_mask, segment_ids, deterministic=True) -> Array:
        sequence, _ = BertEncoder(self.cfg, name="bert")(
            input_ids, input_mask, segment_ids, deterministic
        )
        sequence = nn.Dropout(self.cfg.hidden_dropout)(sequence, deterministic=deterministic)
        return output_dense(self.cfg, self.num_labels, "classifier")(sequence).astype(jnp.float32)


class BertForQuestionAnswering(nn.Module):
    """Start and end logits per token (SQuAD span extraction)."""

    cfg: ModelConfig
    __post_init__ = typed_config_post_init

    @nn.compact
    def __call__(self, input_ids, input_mask, segment_ids, deterministic=True) -> dict[str, Array]:
        sequence, _ = BertEncoder(self.cfg, name="bert")(
            input_ids, input_mask, segment_ids, deterministic
        )
        logits = output_dense(self.cfg, 2, "qa_outputs")(sequence).astype(jnp.float32)
        return {"start_logits": logits[..., 0], "end_logits": logits[..., 1]}


class BertEmbedder(nn.Module):
    """All hidden states, for contextual embeddings (feature extraction)."""

    cfg: ModelConfig
    __post_init__ = typed_config_post_init

    @nn.compact
    def __call__(self, input_ids, input_mask, segment_ids, deterministic=True):
        return BertEncoder(self.cfg, name="bert")(input_ids, input_mask, segment_ids, deterministic)
