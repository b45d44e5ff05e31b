"""Frozen features for `mode=feature`: the encoder runs once over every split, and the
head trains on the cached hidden states, so epochs (and seeds) never rerun the encoder.

The features are the chosen layers of `jaxbert.embed.states` (config.features.layer:
last, last4, N; combine: sum, mean or concat). Sequence tasks keep only the [CLS] state,
stored as [N, 1, D] (a length axis of 1, so length-bucket trimming leaves it alone);
token and span tasks keep every position, [N, S, D] in float16 to halve the memory (for
CoNLL-2003 at seq 128: 0.45 GB at D = 128, 1.8 GB for BERT-base's sum, 7 GB for its
concat of four). Rows go through in length order, each batch trimmed to its bucket.
An in-process cache keyed by the checkpoint, layers and the data's bytes lets the seeds
of one `--config.seeds=N` command share one encoder pass.
"""

from __future__ import annotations

import hashlib

import jax
import jax.numpy as jnp
import numpy as np

from jaxbert.embed.encoding import length_batches
from jaxbert.embed.states import hidden_states, parse_layer, select_layers
from jaxbert.errors import UserError
from jaxbert.finetune import buckets as buckets_lib
from jaxbert.finetune.step import SEQUENCE_KINDS

_CACHE: dict[str, np.ndarray] = {}
MAX_CACHED = 8


def feature_layers(cfg, num_layers: int) -> list[int]:
    try:
        return parse_layer(cfg.features.layer, num_layers)
    except UserError as e:
        raise UserError(f"config.features.layer: {e}".replace("--layer ", "")) from None


def compute(cfg, model_cfg, bert_params, arrays: dict, kind: str, batch_size: int,
            source: str, log=print) -> np.ndarray:  # fmt: skip
    """The split's features ([N, 1, D] or [N, S, D]), from the cache when it has them."""
    layers = feature_layers(cfg, model_cfg.num_layers)
    combine, cls_only = cfg.features.combine, kind in SEQUENCE_KINDS
    ids, mask, seg = arrays["input_ids"], arrays["input_mask"], arrays["segment_ids"]
    key = hashlib.sha256(
        f"{source}|{layers}|{combine}|{cls_only}".encode() + ids.tobytes() + seg.tobytes()
    ).hexdigest()
    if key in _CACHE:
        return _CACHE[key]

    @jax.jit
    def run(p, i, m, s):
        out = select_layers(hidden_states(model_cfg, p, i, m, s), layers, combine)
        return out[:, :1] if cls_only else out.astype(jnp.float16)

    n, seq = ids.shape
    dim = model_cfg.hidden_size * (len(layers) if combine == "concat" else 1)
    out = np.zeros((n, 1 if cls_only else seq, dim), np.float32 if cls_only else np.float16)
    for idx, length in length_batches(buckets_lib.row_lengths(arrays), batch_size, seq):
        pad = np.resize(idx, batch_size)  # a full batch: one compile per bucket
        got = np.asarray(run(bert_params, ids[pad, :length], mask[pad, :length], seg[pad, :length]))
        out[idx, : got.shape[1]] = got[: len(idx)]
    while len(_CACHE) >= MAX_CACHED:  # the splits of one task, shared by its seeds
        _CACHE.pop(next(iter(_CACHE)))
    _CACHE[key] = out
    return out
