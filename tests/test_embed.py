"""`jaxbert embed`: per-layer hidden states, layer selection, word vectors, the demo table."""

from __future__ import annotations

import functools
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import linen as nn

from jaxbert import cli, embed
from jaxbert.checkpoint import save_params
from jaxbert.data.tokenizer import load_tokenizer
from jaxbert.errors import UserError
from jaxbert.model.heads import BertEmbedder
from tests.conftest import REPO, micro_model_config

VOCAB = REPO / "tests" / "fixtures" / "finetune" / "vocab.txt"


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
    for bad in ("13", "-14", "top"):
        with pytest.raises(UserError, match="--layer"):
            embed.parse_layer(bad, 12)


def test_word_vector_is_the_same_alone_or_in_a_padded_batch():
    """A word's vector does not depend on the other texts in the batch (padding is masked),
    and the two senses of 'bank' get different vectors."""
    cfg, params = micro_encoder()
    embedder = embed.Embedder(cfg, params["bert"], load_tokenizer(VOCAB), "last4", "sum")
    alone = embedder.word_vectors([embed.DEMO_SENTENCES[0]], "bank")
    batch = embedder.word_vectors(list(embed.DEMO_SENTENCES) + ["the bank " + "the " * 30], "bank")
    assert alone.shape == (1, 32) and batch.shape == (5, 32)
    np.testing.assert_allclose(alone[0], batch[0], atol=1e-5)
    assert not np.allclose(batch[0], batch[1])
    with pytest.raises(UserError, match="does not occur"):
        embedder.word_vectors(["no such word here"], "bank")
    assert embedder.sentence_vectors(["a b", "c"]).shape == (2, 32)


def test_cli_demo_prints_a_symmetric_cosine_table(tmp_path, capsys):
    """`jaxbert embed --init DIR --demo`: a 4×4 table, 1.000 on the diagonal, symmetric;
    the tokenizer is found beside the params."""
    cfg, params = micro_encoder()
    save_params(tmp_path / "ckpt", jax.tree.map(np.asarray, params), cfg)
    (tmp_path / "ckpt" / "tokenizer").mkdir()
    shutil.copy(VOCAB, tmp_path / "ckpt" / "tokenizer" / "vocab.txt")
    out_npz = tmp_path / "v.npz"
    assert (
        cli.main(["embed", "--init", str(tmp_path / "ckpt"), "--demo", "--output", str(out_npz)])
        == 0
    )
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith("[")]
    assert len(rows) == 4 and "bank" in out
    sims = np.array([[float(x) for x in r.split()[-4:]] for r in rows])
    np.testing.assert_allclose(np.diag(sims), 1.0, atol=1e-3)
    np.testing.assert_allclose(sims, sims.T, atol=1e-3)
    assert np.load(out_npz)["vectors"].shape == (4, 32)
