"""Per-layer hidden states and the BERT paper's layer choices."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import linen as nn

from jaxbert import embed
from jaxbert.errors import UserError
from jaxbert.model.heads import BertEmbedder
from tests.conftest import micro_model_config


@functools.cache
def micro_encoder(scan_layers: bool = True, pre_layer_norm: bool = False):
    """A random 4-layer micro encoder (cached: initialising costs a compilation)."""
    cfg = micro_model_config(
        vocab_size=472, num_layers=4, scan_layers=scan_layers, pre_layer_norm=pre_layer_norm
    )
    z = jnp.zeros((1, 8), jnp.int32)
    init = jax.jit(lambda: nn.unbox(BertEmbedder(cfg).init(jax.random.key(0), z, z, z)))
    return cfg, init()["params"]


@pytest.mark.parametrize("overrides", [{}, {"scan_layers": False, "pre_layer_norm": True}])
def test_last_hidden_state_is_the_encoder_output(overrides):
    """Re-applying Embeddings and each Layer gives num_layers + 1 states, the last equal
    to BertEncoder's sequence output (scanned and unrolled, post- and pre-LN)."""
    cfg, params = micro_encoder(**overrides)
    rng = np.random.default_rng(0)
    ids = rng.integers(5, 472, (2, 16)).astype(np.int32)
    mask = (np.arange(16)[None] < np.array([[16], [9]])).astype(np.int32)
    seg = np.zeros_like(ids)
    states = jax.jit(functools.partial(embed.hidden_states, cfg))(params["bert"], ids, mask, seg)
    sequence, _ = jax.jit(BertEmbedder(cfg).apply)({"params": params}, ids, mask, seg)
    assert states.shape == (5, 2, 16, 32)
    np.testing.assert_allclose(states[-1], sequence, atol=1e-5)


def test_layer_selection_shapes_and_errors():
    """N, -1, last, last4 pick the documented states; sum/mean keep H, concat gives k·H."""
    states = np.random.default_rng(0).normal(size=(13, 2, 5, 8))
    assert embed.parse_layer("last4", 12) == [9, 10, 11, 12]
    assert embed.parse_layer("last4", 2) == [1, 2]  # fewer layers: all of them
    assert embed.parse_layer("-1", 12) == embed.parse_layer("last", 12) == [12]
    assert embed.parse_layer("0", 12) == [0]
    assert embed.select_layers(states, [3], "sum").shape == (2, 5, 8)
    np.testing.assert_allclose(
        embed.select_layers(states, [9, 10, 11, 12], "sum"), states[9:].sum(0)
    )
    assert embed.select_layers(states, [9, 10, 11, 12], "mean").shape == (2, 5, 8)
    assert embed.select_layers(states, [9, 10, 11, 12], "concat").shape == (2, 5, 32)
    assert embed.parse_layer("all", 2) == [0, 1, 2]
    assert embed.select_layers(states, [0, 5, 12], "stack").shape == (2, 5, 3, 8)
    np.testing.assert_allclose(embed.select_layers(states, [0, 5], "stack")[:, :, 1], states[5])
    for bad in ("13", "-14", "top"):
        with pytest.raises(UserError, match="--layer"):
            embed.parse_layer(bad, 12)


def test_a_config_saved_before_attention_impl_still_embeds():
    """A checkpoint's config without later keys (attention_impl) is completed, not refused."""
    cfg, params = micro_encoder()
    old = {k: v for k, v in cfg.to_dict().items() if k != "attention_impl"}
    ids = np.full((1, 8), 7, np.int32)
    states = embed.hidden_states(old, params["bert"], ids, np.ones_like(ids), np.zeros_like(ids))
    assert states.shape == (5, 1, 8, 32)
