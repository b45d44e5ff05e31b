"""Per-layer hidden states and the BERT paper's feature choices (section 5.4, Table 7).

`BertEncoder` returns only the last layer, so `hidden_states` re-applies its own
`Embeddings` and `Layer` modules one layer at a time to the same parameters; the last
state equals the encoder's output (tested, scanned and unrolled, post- and pre-LN).
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jaxbert.errors import UserError

COMBINES = ("sum", "mean", "concat", "stack")


def hidden_states(model_cfg, bert_params, input_ids, input_mask, segment_ids) -> jax.Array:
    """[num_layers + 1, B, S, H]: the embedding output, then each transformer layer's."""
    from jaxbert.model.config import ModelConfig
    from jaxbert.model.encoder import Embeddings, Layer, layer_norm

    # The sub-modules take the validated dataclass (a saved config may predate some keys).
    model_cfg = ModelConfig.from_config(model_cfg)
    x = Embeddings(model_cfg).apply(
        {"params": bert_params["embeddings"]}, input_ids, segment_ids, True
    )
    kv_lengths = jnp.sum(input_mask, axis=-1).astype(jnp.int32)
    layer = Layer(model_cfg, deterministic=True)
    encoder = bert_params["encoder"]
    states = [x]
    for i in range(model_cfg.num_layers):
        if model_cfg.scan_layers:  # scanned params carry a leading layer axis
            p = jax.tree.map(lambda a, i=i: a[i], encoder["layers"])
        else:
            p = encoder[f"layers_{i}"]
        x, _ = layer.apply({"params": p}, x, kv_lengths)
        states.append(x)
    if model_cfg.pre_layer_norm:  # the encoder normalises its final output
        states[-1] = layer_norm(model_cfg, "final_layer_norm").apply(
            {"params": bert_params["final_layer_norm"]}, x
        )
    return jnp.stack(states).astype(jnp.float32)


def parse_layer(layer: str | int, num_layers: int) -> list[int]:
    """Indices into `hidden_states`: "last", "last4", "all", N (0 = embeddings, -1 = last)."""
    text = str(layer).strip().lower()
    if text == "last":
        return [num_layers]
    if text == "last4":  # a model with fewer layers uses all of its transformer layers
        return list(range(max(num_layers - 3, 1), num_layers + 1))
    if text == "all":
        return list(range(num_layers + 1))
    try:
        n = int(text)
    except ValueError:
        raise UserError(
            f"--layer must be an integer, 'last', 'last4' or 'all', got {layer!r}"
        ) from None
    index = n if n >= 0 else num_layers + 1 + n
    if not 0 <= index <= num_layers:
        raise UserError(
            f"--layer {n} is out of range: the model has {num_layers} layers (0..{num_layers})"
        )
    return [index]


def select_layers(states, layers: Sequence[int], combine: str = "sum"):
    """[L+1, B, S, H] → [B, S, H] (sum/mean of the chosen layers), [B, S, k·H] (concat)
    or [B, S, k, H] (stack: every chosen layer kept apart, for per-layer statistics).
    Works on numpy and jax arrays alike, so the jitted embedder selects on device."""
    if combine not in COMBINES:
        raise UserError(f"--combine must be one of {COMBINES}, got {combine!r}")
    xp = jnp if isinstance(states, jax.Array) else np
    chosen = states[np.asarray(layers)]
    if combine == "concat":
        return xp.concatenate(list(chosen), axis=-1)
    if combine == "stack":
        return xp.moveaxis(chosen, 0, 2)
    return chosen.sum(0) if combine == "sum" else chosen.mean(0)
