"""Task heads on frozen features: the BERT paper's feature-based approach (section 5.4).

The encoder runs once over the data (`finetune/features.py`) and only these heads train,
on cached hidden states of chosen layers (the last, or the sum or concatenation of the
last four). Sequence tasks take the [CLS] features, token tasks every token's (optionally
through a BiLSTM first: the paper's NER head is a two-layer 768-dim BiLSTM), span tasks
every token's. The outputs match the full models' (`heads.py`), so the fine-tuning loss,
predictions and metrics are shared.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxbert.model.heads import output_dense

Array = jax.Array


class BiLSTM(nn.Module):
    """Forward and backward LSTMs over each row's real tokens, concatenated: [B, S, 2·size]."""

    size: int

    @nn.compact
    def __call__(self, x: Array, lengths: Array) -> Array:
        cell = nn.OptimizedLSTMCell
        fwd = nn.RNN(cell(self.size, name="forward_cell"), name="forward")
        bwd = nn.RNN(cell(self.size, name="backward_cell"), reverse=True, keep_order=True,
                     name="backward")  # fmt: skip
        return jnp.concatenate([fwd(x, seq_lengths=lengths), bwd(x, seq_lengths=lengths)], -1)


class FeatureHead(nn.Module):
    cfg: Any
    kind: str  # classification | regression | token | span
    num_labels: int
    lstm_size: int = 0  # token tasks: 0 = a linear tagger, else a BiLSTM of this width
    lstm_layers: int = 2

    @nn.compact
    def __call__(self, features: Array, input_mask: Array, deterministic: bool = True):
        x = features.astype(jnp.float32)
        drop = nn.Dropout(self.cfg.hidden_dropout)
        if self.kind in ("classification", "regression"):
            x = drop(x[:, 0], deterministic=deterministic)  # [CLS]: stored as [B, 1, D]
            n = 1 if self.kind == "regression" else self.num_labels
            return output_dense(self.cfg, n, "classifier", "embed_out")(x).astype(jnp.float32)
        if self.kind == "token" and self.lstm_size:
            lengths = jnp.sum(input_mask, axis=-1).astype(jnp.int32)
            for i in range(self.lstm_layers):
                x = drop(x, deterministic=deterministic)
                x = BiLSTM(self.lstm_size, name=f"bilstm_{i}")(x, lengths)
        x = drop(x, deterministic=deterministic)
        if self.kind == "token":
            return output_dense(self.cfg, self.num_labels, "classifier")(x).astype(jnp.float32)
        logits = output_dense(self.cfg, 2, "qa_outputs")(x).astype(jnp.float32)
        return {"start_logits": logits[..., 0], "end_logits": logits[..., 1]}
