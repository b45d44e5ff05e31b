"""Encoder properties: sizes, scan/remat equivalence, bidirectionality, padding, dtypes."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxbert.convert import unstack_layers
from jaxbert.model.config import model_config, validate
from jaxbert.model.encoder import BertEncoder, attention_weights_path, dropout, keep_mask
from jaxbert.model.heads import BertForPreTraining
from jaxbert.model.params import count_params
from tests.helpers import micro_model_config, random_batch

INPUTS = ("input_ids", "input_mask", "segment_ids")


def init_encoder(cfg, batch):
    model = BertEncoder(cfg)
    params = nn.unbox(model.init(jax.random.key(0), *(batch[k] for k in INPUTS)))["params"]
    return model, params


@pytest.mark.parametrize(
    "size, encoder, pretraining",
    # transformers' BertModel / BertForPreTraining parameter counts for the same configs.
    [("base", 109_482_240, 110_106_428), ("large", 335_141_888, 336_226_108)],
)
def test_parameter_counts_match_transformers(size, encoder, pretraining):
    """BERT-base has ≈110M and BERT-large ≈335M parameters, exactly as transformers counts them."""
    counts = count_params(model_config(size))
    assert counts == {"encoder": encoder, "pretraining": pretraining}


def test_scanned_and_unrolled_layers_compute_the_same_function():
    """nn.scan over layers is only a compilation strategy: same params → same outputs."""
    batch = random_batch()
    model, params = init_encoder(micro_model_config(), batch)
    unrolled = BertEncoder(micro_model_config(scan_layers=False))
    a = model.apply({"params": params}, *(batch[k] for k in INPUTS))
    b = unrolled.apply(
        {"params": unstack_layers({"bert": params})["bert"]}, *(batch[k] for k in INPUTS)
    )
    for x, y in zip(a, b):
        np.testing.assert_allclose(x, y, atol=1e-6)


@pytest.mark.parametrize("policy", ["full", "dots", "dots_no_batch"])
def test_remat_changes_neither_outputs_nor_gradients(policy):
    """Rematerialisation trades compute for memory without changing the maths."""
    batch = random_batch()
    model, params = init_encoder(micro_model_config(), batch)
    remat = BertEncoder(micro_model_config(remat_policy=policy))

    def loss(m, p):
        seq, pooled = m.apply({"params": p}, *(batch[k] for k in INPUTS))
        return jnp.sum(seq**2) + jnp.sum(pooled)

    np.testing.assert_allclose(loss(model, params), loss(remat, params), rtol=1e-6)
    g1, g2 = jax.grad(lambda p: loss(model, p))(params), jax.grad(lambda p: loss(remat, p))(params)
    for x, y in zip(jax.tree.leaves(g1), jax.tree.leaves(g2)):
        np.testing.assert_allclose(x, y, atol=1e-5)


def test_attention_is_bidirectional():
    """Changing the last real token changes the first position's output (no causal mask)."""
    batch = random_batch(seq=8)
    batch["input_mask"][:] = 1
    model, params = init_encoder(micro_model_config(), batch)
    seq_a, _ = model.apply({"params": params}, *(batch[k] for k in INPUTS))
    batch["input_ids"][:, -1] = (batch["input_ids"][:, -1] + 1) % 128
    seq_b, _ = model.apply({"params": params}, *(batch[k] for k in INPUTS))
    assert np.all(np.abs(np.asarray(seq_a[:, 0] - seq_b[:, 0])).max(axis=-1) > 1e-6)


def test_padding_tokens_do_not_affect_real_positions():
    """Whatever ids sit in padded positions, the outputs at real positions are unchanged."""
    batch = random_batch()
    model, params = init_encoder(micro_model_config(), batch)
    seq_a, pooled_a = model.apply({"params": params}, *(batch[k] for k in INPUTS))
    noisy = dict(batch)
    noisy["input_ids"] = np.where(batch["input_mask"] == 1, batch["input_ids"], 77).astype(np.int32)
    seq_b, pooled_b = model.apply({"params": params}, *(noisy[k] for k in INPUTS))
    real = batch["input_mask"].astype(bool)
    np.testing.assert_allclose(np.asarray(seq_a)[real], np.asarray(seq_b)[real], atol=1e-6)
    np.testing.assert_allclose(pooled_a, pooled_b, atol=1e-6)


def test_explicit_attention_path_matches_fused_attention_without_dropout():
    """The dropout-capable attention (training) computes the same softmax attention."""
    rng = np.random.default_rng(0)
    q, k, v = (jnp.asarray(rng.normal(size=(2, 6, 3, 4)), jnp.float32) for _ in range(3))
    lengths = jnp.array([6, 3], jnp.int32)
    fused = jax.nn.dot_product_attention(q, k, v, key_value_seq_lengths=lengths)
    explicit = attention_weights_path(q, k, v, lengths, jax.random.key(0), 0.0, jnp.float32)
    np.testing.assert_allclose(fused, explicit, atol=1e-6)


def test_bf16_compute_keeps_float32_params_and_logits():
    """Mixed precision: parameters stay fp32, losses see fp32 logits."""
    batch = random_batch()
    cfg = micro_model_config(dtype="bfloat16")
    model = BertForPreTraining(cfg)
    args = [batch[k] for k in (*INPUTS, "masked_positions")]
    variables = nn.unbox(model.init(jax.random.key(0), *args))
    assert all(x.dtype == jnp.float32 for x in jax.tree.leaves(variables))
    out = model.apply(variables, *args)
    assert out["mlm_logits"].dtype == jnp.float32 and out["nsp_logits"].dtype == jnp.float32


def test_every_parameter_carries_logical_axis_names():
    """Sharding is configuration: no parameter is left without logical names."""
    batch = random_batch()
    boxed = BertForPreTraining(micro_model_config()).init(
        jax.random.key(0), *(batch[k] for k in (*INPUTS, "masked_positions"))
    )
    leaves = jax.tree.leaves(boxed, is_leaf=lambda x: isinstance(x, nn.Partitioned))
    assert leaves and all(isinstance(x, nn.Partitioned) for x in leaves)


def test_invalid_architecture_is_rejected_with_the_key_named():
    """hidden_size must divide into heads; the error names both keys."""
    with pytest.raises(ValueError, match="hidden_size.*num_heads"):
        validate(model_config("tiny", num_heads=3))
    with pytest.raises(ValueError, match="unknown model config key 'hiden_size'"):
        model_config("tiny", hiden_size=3)


@pytest.mark.parametrize("shape", [(64, 128, 256), (64, 128, 255)])
def test_dropout_drops_the_requested_fraction_and_is_unbiased(shape):
    """16-bit keep-masks (even last dim) and the bernoulli fallback (odd) both drop ~rate of
    the elements, keep the mean, and differ between keys."""

    x = jnp.ones(shape)
    y = dropout(x, 0.1, jax.random.key(0))
    assert abs(float(jnp.mean(y == 0)) - 0.1) < 0.002
    assert abs(float(jnp.mean(y)) - 1.0) < 0.003
    _, keep_prob = keep_mask(jax.random.key(0), 0.1, shape)
    assert abs(keep_prob - 0.9) < 1e-5
    other = dropout(x, 0.1, jax.random.key(1))
    assert float(jnp.mean((y == 0) != (other == 0))) > 0.1


def test_sinusoidal_position_start_is_shift_invariant_at_the_normal_inits_scale():
    """position_init=sinusoidal: p_i·p_j depends only on i − j (what lets attention find a
    neighbour from step 0), at RMS = initializer_range; only the position table changes."""
    batch = random_batch()
    _, normal = init_encoder(micro_model_config(), batch)
    _, sines = init_encoder(micro_model_config(position_init="sinusoidal"), batch)
    table = np.asarray(sines["embeddings"]["position_embeddings"]["embedding"])
    assert np.sqrt(np.mean(table**2)) == pytest.approx(0.02, rel=1e-5)
    gram = table @ table.T
    for offset in (1, 5):
        diagonal = np.diagonal(gram, offset)
        np.testing.assert_allclose(diagonal, diagonal[0], rtol=1e-3)
    assert gram[0, 1] > gram[0, 5] > 0  # near positions are more alike than far ones
    flat_normal = jax.tree_util.tree_leaves_with_path(normal)
    flat_sines = dict(jax.tree_util.tree_leaves_with_path(sines))
    for path, leaf in flat_normal:
        if "position_embeddings" not in jax.tree_util.keystr(path):
            np.testing.assert_array_equal(leaf, flat_sines[path])


@pytest.mark.parametrize("key, bad", [("position_init", "rope"), ("attention_init", "identity")])
def test_unknown_init_is_rejected_and_old_configs_load_as_normal(key, bad):
    """A bad position_init / attention_init names the key; a config saved before the key
    existed loads as `normal`."""
    from jaxbert.errors import UserError
    from jaxbert.model.config import ModelConfig

    old = model_config("tiny").to_dict()
    del old[key]
    assert getattr(ModelConfig.from_config(old), key) == "normal"
    with pytest.raises(UserError, match=f"config.model.{key}='{bad}'"):
        ModelConfig.from_config({**old, key: bad})


def test_mimetic_attention_starts_with_equal_query_and_key_kernels():
    """attention_init=mimetic: W_q = W_k in every layer (distinct across layers), so each
    head's scores start as a similarity: a token scores itself near 4, others near 0."""
    batch = random_batch()
    cfg = micro_model_config(attention_init="mimetic")
    model, params = init_encoder(cfg, batch)
    attention = params["encoder"]["layers"]["attention"]
    query, key = attention["query"]["kernel"], attention["key"]["kernel"]
    np.testing.assert_array_equal(query, key)
    assert not np.array_equal(query[0], query[1])
    x = nn.LayerNorm(use_scale=False, use_bias=False).apply(
        {}, jax.random.normal(jax.random.key(1), (64, 32))
    )
    q = np.einsum("th,hnd->ntd", x, query[0])
    scores = np.einsum("ntd,nsd->nts", q, q) / np.sqrt(q.shape[-1])
    self_scores = np.diagonal(scores, axis1=1, axis2=2)
    assert 2.5 < self_scores.mean() < 5.5
    others = (scores.sum(axis=(1, 2)) - self_scores.sum(axis=1)) / (64 * 63)
    assert (self_scores.mean(axis=1) > others + 2.0).all()
    _, normal = init_encoder(micro_model_config(), batch)
    plain = normal["encoder"]["layers"]["attention"]
    assert not np.array_equal(plain["query"]["kernel"], plain["key"]["kernel"])


def layer0_attention(cfg, batch):
    """Layer 0's attention probabilities at init, [b, heads, q, k], padding excluded."""
    cfg = {**cfg.to_dict(), "scan_layers": False}
    model, params = init_encoder(cfg, batch)
    _, state = model.apply(
        {"params": params},
        *(batch[k] for k in INPUTS),
        capture_intermediates=lambda mdl, _: mdl.name in ("query", "key"),
    )
    attn = state["intermediates"]["encoder"]["layers_0"]["attention"]
    q, k = (np.asarray(attn[n]["__call__"][0]) for n in ("query", "key"))
    scores = np.einsum("bqhd,bkhd->bhqk", q, k) / np.sqrt(q.shape[-1])
    scores = np.where(batch["input_mask"][:, None, None, :] > 0, scores, -np.inf)
    return np.asarray(jax.nn.softmax(scores, axis=-1))


def test_local_attention_starts_with_previous_and_next_token_heads():
    """attention_init=local (with the sinusoidal_linear table it reads): head 0 attends to
    token i − 1 and head 1 to i + 1 from the first step, for any words; the other heads
    start as `normal` (near-uniform)."""
    cfg = micro_model_config(hidden_size=256, num_heads=4, max_position_embeddings=128,
                             position_init="sinusoidal_linear", attention_init="local")  # fmt: skip
    batch = random_batch(batch=8, seq=64)
    probs = layer0_attention(cfg, batch)
    lengths = batch["input_mask"].sum(-1)
    for head, delta in ((0, -1), (1, 1)):
        for b, length in enumerate(lengths):
            queries = np.arange(max(0, -delta), length - max(0, delta))
            target = probs[b, head, queries, queries + delta]
            assert (probs[b, head, queries].argmax(-1) == queries + delta).mean() > 0.7
            assert target.mean() > 0.5
    assert probs[:, 2:].max() < 0.3  # heads 2 and 3 start spread out
    uniform = layer0_attention(micro_model_config(hidden_size=256, num_heads=4), batch)
    assert uniform.max() < 0.3


def test_sinusoidal_linear_blocks_single_out_one_offset():
    """Each head-width block of the sinusoidal_linear table spreads its frequencies over
    (0, π), one per equal cell: its p_i·p_j kernel is ≈ 0 one position away and stays
    well below its peak at every offset up to 511 (no aliasing), which is what lets a
    `local` head single out i ± 1; the table is the same on every call."""
    from jaxbert.model.inits import sinusoidal_frequencies

    omega = sinusoidal_frequencies(128, "linear", block=64)
    np.testing.assert_array_equal(omega, sinusoidal_frequencies(128, "linear", block=64))
    for block in (omega[:32], omega[32:]):
        assert ((block > 0) & (block < np.pi)).all()
        cells = np.floor(block / (np.pi / 32))
        np.testing.assert_array_equal(cells, np.arange(32))
        kernel = np.cos(np.arange(1, 512)[:, None] * block[None]).sum(-1)  # offsets 1…511
        assert abs(kernel[0]) < 0.1 * len(block)
        assert np.abs(kernel).max() < 0.5 * len(block)


def test_local_attention_init_needs_the_table_it_reads():
    """attention_init=local with any other position table is refused, naming the key."""
    from jaxbert.errors import UserError

    with pytest.raises(UserError, match="config.model.position_init='sinusoidal'"):
        validate(model_config("tiny", attention_init="local", position_init="sinusoidal"))


@pytest.mark.parametrize("position_init", ["sinusoidal", "sinusoidal_linear"])
def test_sinusoidal_tables_fill_an_odd_width(position_init):
    """An odd hidden size still gets a full table: its last column is a sine without a
    cosine partner, and the table keeps RMS ≈ initializer_range."""
    cfg = micro_model_config(hidden_size=33, num_heads=3, position_init=position_init)
    _, params = init_encoder(cfg, random_batch())
    table = np.asarray(params["embeddings"]["position_embeddings"]["embedding"])
    assert table.shape == (64, 33) and np.isfinite(table).all()
    assert np.sqrt(np.mean(table**2)) == pytest.approx(0.02, rel=0.1)
