"""The BERT encoder: embeddings, bidirectional self-attention layers, pooler.

Written against logical axis names only (see `jaxbert.sharding` for the table that maps
them to mesh axes). Weights are named at creation with `nn.with_logical_partitioning`;
activations get separate `activation_*` names so FSDP can shard weights without
touching activations.
"""

from __future__ import annotations

import math
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax.ad_checkpoint import checkpoint_name

from jaxbert.model import inits
from jaxbert.model.config import ModelConfig

Array = jax.Array

# Logical axis names of activations (weights use embed/heads/kv/mlp/vocab/layers).
BATCH_LENGTH_EMBED = ("activation_batch", "activation_length", "activation_embed")
BATCH_LENGTH_HEADS_KV = (
    "activation_batch",
    "activation_length",
    "activation_heads",
    "activation_kv",
)
BATCH_LENGTH_MLP = ("activation_batch", "activation_length", "activation_mlp")


def dense_init(cfg: Any, axes: tuple[str, ...]):
    """Truncated-normal(0.02) as google-bert, named for sharding."""
    return nn.with_logical_partitioning(
        nn.initializers.truncated_normal(cfg.initializer_range), axes
    )


def zeros_init(axes: tuple[str, ...]):
    return nn.with_logical_partitioning(nn.initializers.zeros_init(), axes)


def token_matmul(x: Array, kernel: Array, contract: int = 1) -> Array:
    """Contract x's last `contract` dims with kernel's first, as one 2-D [tokens, in] matmul.

    Why not einsum on [batch, length, ...]: autodiff of a dot with two batch-like
    contracting dims (batch and length) gives the weight gradient a transposed copy of the
    activation gradient and a transposed-operand GEMM, which XLA:CPU runs ~1.4× slower
    (the FFN of BERT-base: 35 ms vs 24 ms per weight gradient). Flattening the tokens
    first makes every backward matmul a plain [T, a]ᵀ·[T, b]. The reshapes only merge
    a sharded major dim with unsharded minor ones, so the partitioner keeps the layout.
    """
    lead, inner = x.shape[:-contract], x.shape[-contract:]
    out = kernel.shape[contract:]
    y = x.reshape(-1, math.prod(inner)) @ kernel.reshape(math.prod(inner), -1)
    return y.reshape(*lead, *out)


class Dense(nn.Module):
    """A dense layer whose kernel is [*in, *features] (head axes kept, for sharding names).

    Parameters are float32 and named as flax's nn.Dense (`kernel`, `bias`), so checkpoints
    and the Hugging Face converter see the same tree; the matmul runs in the compute dtype
    on flattened tokens (`token_matmul`).
    """

    cfg: Any
    features: tuple[int, ...]
    kernel_axes: tuple[str | None, ...]
    contract: int = 1  # trailing input dims contracted with the kernel's leading dims
    kernel_init: Any = None  # an unnamed initializer; None: dense_init's truncated normal

    @nn.compact
    def __call__(self, x: Array) -> Array:
        dtype = compute_dtype(self.cfg)
        kernel_shape = (*x.shape[x.ndim - self.contract :], *self.features)
        init = dense_init(self.cfg, self.kernel_axes)
        if self.kernel_init is not None:
            init = nn.with_logical_partitioning(self.kernel_init, self.kernel_axes)
        kernel = self.param("kernel", init, kernel_shape, jnp.float32)
        bias_axes = self.kernel_axes[self.contract :]
        bias = self.param("bias", zeros_init(bias_axes), self.features, jnp.float32)
        kernel = nn.with_logical_constraint(kernel.astype(dtype), gathered(self.kernel_axes))
        y = token_matmul(x.astype(dtype), kernel, self.contract)
        return y + bias.astype(dtype)


def gathered(axes: tuple[str | None, ...]) -> tuple[str | None, ...]:
    """A weight's names at use: FSDP's `embed` shards are all-gathered (one layer's, in
    the compute dtype) right before the matmul. Left to itself the partitioner may instead
    keep the weight sharded and replicate the batch over fsdp, all-reducing activations."""
    return tuple("embed_gathered" if a == "embed" else a for a in axes)


def dense(cfg: Any, features: int, axes: tuple, name: str) -> Dense:
    """A [in, features] Dense layer in the compute dtype with fp32 params named `axes`."""
    return Dense(cfg, (features,), axes, name=name)


def compute_dtype(cfg: Any) -> jnp.dtype:
    return jnp.dtype(cfg.dtype)


def activation(cfg: Any):
    return {
        "gelu": lambda x: jax.nn.gelu(x, approximate=False),
        "gelu_tanh": lambda x: jax.nn.gelu(x, approximate=True),
        "relu": jax.nn.relu,
    }[cfg.hidden_act]


def layer_norm(cfg: Any, name: str) -> nn.LayerNorm:
    return nn.LayerNorm(
        epsilon=cfg.layer_norm_eps,
        dtype=compute_dtype(cfg),
        param_dtype=jnp.float32,
        scale_init=nn.with_logical_partitioning(nn.initializers.ones_init(), ("embed",)),
        bias_init=zeros_init(("embed",)),
        name=name,
    )


class Embeddings(nn.Module):
    """Token + learned absolute position + segment embeddings, then LayerNorm and dropout."""

    cfg: Any

    def setup(self):
        cfg, dtype = self.cfg, compute_dtype(self.cfg)

        def embed(num, axes, name, init=None):
            """`init`: an unnamed initializer (as Dense's kernel_init); None: dense_init's."""
            named = nn.with_logical_partitioning(init, axes) if init else dense_init(cfg, axes)
            return nn.Embed(
                num,
                cfg.hidden_size,
                dtype=dtype,
                param_dtype=jnp.float32,
                embedding_init=named,
                name=name,
            )

        self.word_embeddings = embed(cfg.vocab_size, ("vocab", "embed"), "word_embeddings")
        omega = inits.position_frequencies(cfg) if cfg.position_init != "normal" else None
        position_init = (
            None if omega is None else inits.sinusoidal_init(cfg.initializer_range, omega)
        )
        self.position_embeddings = embed(
            cfg.max_position_embeddings, (None, "embed"), "position_embeddings", position_init
        )
        self.token_type_embeddings = embed(
            cfg.type_vocab_size, (None, "embed"), "token_type_embeddings"
        )
        self.layer_norm = layer_norm(cfg, "layer_norm")
        self.dropout = nn.Dropout(cfg.hidden_dropout)

    def __call__(self, input_ids: Array, segment_ids: Array, deterministic: bool) -> Array:
        positions = jnp.arange(input_ids.shape[-1])[None, :]
        x = (
            self._lookup(self.word_embeddings, input_ids)
            + self._lookup(self.position_embeddings, positions)
            + self._lookup(self.token_type_embeddings, segment_ids)
        )
        # Pin the sum to the activation layout right away; otherwise the partitioner keeps
        # the gather's table-derived layout and reshards the LayerNorm (and its backward).
        x = nn.with_logical_constraint(x, BATCH_LENGTH_EMBED)
        x = self.layer_norm(x)
        x = self.dropout(x, deterministic=deterministic)
        return nn.with_logical_constraint(x, BATCH_LENGTH_EMBED)

    def _lookup(self, embed: nn.Embed, ids: Array) -> Array:
        """Rows of an all-gathered table (as FSDP gathers any weight it uses): a gather from
        a table sharded on `embed` would fight the batch sharding of its output."""
        table = jnp.asarray(embed.embedding, compute_dtype(self.cfg))
        table = nn.with_logical_constraint(table, ("vocab_gathered", "embed_gathered"))
        return jnp.take(table, ids, axis=0)

    def attend(self, x: Array) -> Array:
        """Logits against the word embeddings (the MLM decoder is tied to them)."""
        table = jnp.asarray(self.word_embeddings.embedding, compute_dtype(self.cfg))
        table = nn.with_logical_constraint(table, gathered(("vocab", "embed")))
        return token_matmul(x.astype(table.dtype), table.T)


# Checkpoint names of the dropout keep-masks: hidden ([b, s, h] bytes) and attention
# ([b, a, s, s] bytes, as large as the scores at seq 512) are saved by different policies.
DROPOUT_MASK = "dropout_mask"
ATTENTION_DROPOUT_MASK = "attention_dropout_mask"


def keep_mask(rng, rate: float, shape: tuple[int, ...]) -> tuple[Array, float]:
    """Dropout's keep-mask and its exact keep probability, from 16 random bits per element.

    `jax.random.bernoulli` spends one threefry evaluation (32 bits) per element; splitting
    each 32-bit word into two 16-bit uniforms halves the random-number work, which is ~4%
    of a BERT-base train step on CPU. The rate is rounded to a multiple of 1/65536 (0.1 →
    0.100006) and the returned keep probability is the exact one, so scaling stays unbiased.
    """
    if shape[-1] % 2:
        return jax.random.bernoulli(rng, 1.0 - rate, shape), 1.0 - rate
    threshold = round(rate * 65536)
    words = jax.random.bits(rng, (*shape[:-1], shape[-1] // 2), jnp.uint32)
    halves = jax.lax.bitcast_convert_type(words, jnp.uint16).reshape(shape)
    return halves >= threshold, 1.0 - threshold / 65536


def dropout(x: Array, rate: float, rng, name: str = DROPOUT_MASK) -> Array:
    """Inverted dropout whose keep-mask is named, so remat policies can save it (1 byte per
    element) instead of regenerating the random bits in the backward pass."""
    keep, keep_prob = keep_mask(rng, rate, x.shape)
    keep = checkpoint_name(keep, name)
    return jnp.where(keep, x / jnp.asarray(keep_prob, x.dtype), jnp.zeros((), x.dtype))


def attention_weights_path(q, k, v, kv_lengths, dropout_rng, rate, dtype):
    """Explicit softmax attention, used only when attention dropout is active.

    `jax.nn.dot_product_attention` has no dropout, so training with attention dropout
    takes this path; evaluation (and attention_dropout=0) takes the fused one.
    """
    depth = q.shape[-1]
    scores = jnp.einsum("bqhd,bkhd->bhqk", q, k, preferred_element_type=jnp.float32)
    scores = scores / jnp.sqrt(depth).astype(jnp.float32)
    key_valid = jnp.arange(k.shape[1])[None, :] < kv_lengths[:, None]
    scores = jnp.where(key_valid[:, None, None, :], scores, jnp.finfo(jnp.float32).min)
    probs = jax.nn.softmax(scores, axis=-1)
    probs = dropout(probs, rate, dropout_rng, ATTENTION_DROPOUT_MASK).astype(dtype)
    return jnp.einsum("bhqk,bkhd->bqhd", probs, v)


class SelfAttention(nn.Module):
    """Bidirectional multi-head self-attention with a key padding mask (no causal mask)."""

    cfg: Any

    @nn.compact
    def __call__(self, x: Array, kv_lengths: Array, deterministic: bool) -> Array:
        cfg, dtype = self.cfg, compute_dtype(self.cfg)
        head_dim = cfg.hidden_size // cfg.num_heads
        heads_shape = (cfg.num_heads, head_dim)

        qk_init = {"query": None, "key": None}
        if cfg.attention_init == "mimetic":
            qk_init = dict.fromkeys(qk_init, inits.mimetic_qk_init(self, head_dim))
        elif cfg.attention_init == "local":
            qk_init = {name: inits.local_qk_init(cfg, name) for name in qk_init}

        def project(name):
            init = qk_init.get(name)
            dense = Dense(cfg, heads_shape, ("embed", "heads", "kv"), kernel_init=init, name=name)
            return nn.with_logical_constraint(dense(x), BATCH_LENGTH_HEADS_KV)

        q, k, v = project("query"), project("key"), project("value")
        if deterministic or cfg.attention_dropout == 0.0:
            # Padding is always on the right, so per-example key lengths express the mask
            # and keep the cuDNN flash-attention path available on GPUs.
            out = jax.nn.dot_product_attention(
                q, k, v, key_value_seq_lengths=kv_lengths, implementation=cfg.attention_impl
            )
        else:
            out = attention_weights_path(
                q, k, v, kv_lengths, self.make_rng("dropout"), cfg.attention_dropout, dtype
            )
        out = nn.with_logical_constraint(out, BATCH_LENGTH_HEADS_KV)
        out_dense = Dense(cfg, (cfg.hidden_size,), ("heads", "kv", "embed"), contract=2, name="out")
        return out_dense(out)


class MLP(nn.Module):
    cfg: Any

    @nn.compact
    def __call__(self, x: Array) -> Array:
        cfg = self.cfg
        h = dense(cfg, cfg.intermediate_size, ("embed", "mlp"), "wi")(x)
        h = nn.with_logical_constraint(activation(cfg)(h), BATCH_LENGTH_MLP)
        return dense(cfg, cfg.hidden_size, ("mlp", "embed"), "wo")(h)


class Layer(nn.Module):
    """One transformer block; post-LN as BERT by default, pre-LN as an option.

    `deterministic` is an attribute, not an argument, so the block can be scanned and
    rematerialised without static-argument plumbing.
    """

    cfg: Any
    deterministic: bool

    @nn.compact
    def __call__(self, x: Array, kv_lengths: Array) -> tuple[Array, None]:
        cfg = self.cfg

        def drop(y: Array, deterministic: bool) -> Array:
            if deterministic or cfg.hidden_dropout == 0.0:
                return y
            return dropout(y, cfg.hidden_dropout, self.make_rng("dropout"))

        attn_ln, out_ln = (
            layer_norm(cfg, "attention_layer_norm"),
            layer_norm(cfg, "output_layer_norm"),
        )
        attn = SelfAttention(cfg, name="attention")
        mlp = MLP(cfg, name="mlp")
        if cfg.pre_layer_norm:
            x = x + drop(attn(attn_ln(x), kv_lengths, self.deterministic), self.deterministic)
            x = x + drop(mlp(out_ln(x)), self.deterministic)
        else:
            x = attn_ln(x + drop(attn(x, kv_lengths, self.deterministic), self.deterministic))
            x = out_ln(x + drop(mlp(x), self.deterministic))
        return nn.with_logical_constraint(x, BATCH_LENGTH_EMBED), None


def _remat_policy(name: str):
    """What the backward pass may read instead of recomputing.

    The dot policies also keep dropout masks, since regenerating the random bits costs more
    than the byte per element they take; `dots_no_batch`, the memory-lean one, keeps only
    the hidden masks, nothing of attention's [b, a, s, s] size.
    """
    policies = jax.checkpoint_policies
    both = policies.save_from_both_policies
    return {
        "full": None,  # save nothing: recompute the whole block in the backward pass
        "dots": both(
            policies.checkpoint_dots,
            policies.save_only_these_names(DROPOUT_MASK, ATTENTION_DROPOUT_MASK),
        ),
        "dots_no_batch": both(
            policies.dots_with_no_batch_dims_saveable,
            policies.save_only_these_names(DROPOUT_MASK),
        ),
    }[name]


class LayerStack(nn.Module):
    """All transformer blocks, scanned (one compiled body) or unrolled."""

    cfg: Any

    @nn.compact
    def __call__(self, x: Array, kv_lengths: Array, deterministic: bool) -> Array:
        cfg = self.cfg
        block = Layer
        if cfg.remat_policy != "none":
            block = nn.remat(
                block, policy=_remat_policy(cfg.remat_policy), prevent_cse=not cfg.scan_layers
            )
        if cfg.scan_layers:
            scanned = nn.scan(
                block,
                variable_axes={"params": 0},
                split_rngs={"params": True, "dropout": True},
                in_axes=nn.broadcast,
                length=cfg.num_layers,
                metadata_params={nn.PARTITION_NAME: "layers"},
            )
            x, _ = scanned(cfg, deterministic, name="layers")(x, kv_lengths)
            return x
        for i in range(cfg.num_layers):
            x, _ = block(cfg, deterministic, name=f"layers_{i}")(x, kv_lengths)
        return x


def typed_config_post_init(self) -> None:
    """Module __post_init__ that freezes `cfg` into a validated ModelConfig first, so every
    model sees the same typed, immutable architecture whatever the caller passed."""
    object.__setattr__(self, "cfg", ModelConfig.from_config(self.cfg))
    nn.Module.__post_init__(self)


class BertEncoder(nn.Module):
    """Embeddings → transformer blocks → (sequence output, pooled [CLS] output)."""

    cfg: ModelConfig
    __post_init__ = typed_config_post_init

    def setup(self):
        cfg = self.cfg
        self.embeddings = Embeddings(cfg)
        self.encoder = LayerStack(cfg)
        self.final_layer_norm = layer_norm(cfg, "final_layer_norm") if cfg.pre_layer_norm else None
        self.pooler = dense(cfg, cfg.hidden_size, ("embed", "embed_out"), "pooler")

    def __call__(
        self, input_ids: Array, input_mask: Array, segment_ids: Array, deterministic: bool = True
    ) -> tuple[Array, Array]:
        kv_lengths = jnp.sum(input_mask, axis=-1).astype(jnp.int32)
        x = self.embeddings(input_ids, segment_ids, deterministic)
        x = self.encoder(x, kv_lengths, deterministic)
        if self.final_layer_norm is not None:
            x = self.final_layer_norm(x)
        pooled = jnp.tanh(self.pooler(x[:, 0]))
        return x, pooled

    def attend(self, x: Array) -> Array:
        return self.embeddings.attend(x)
