"""Model sizes and the frozen model config.

The model only ever sees this config (never the run config, mesh or optimizer), so that a
checkpoint's architecture is fully described by one small dict saved beside it.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import ml_collections

from jaxbert.errors import UserError

# name: (layers, hidden, heads, intermediate). tiny..medium follow Turc et al. (2019),
# "Well-Read Students Learn Better"; base/large are the BERT paper's.
SIZES: dict[str, tuple[int, int, int, int]] = {
    "tiny": (2, 128, 2, 512),
    "mini": (4, 256, 4, 1024),
    "small": (4, 512, 8, 2048),
    "medium": (8, 512, 8, 2048),
    "base": (12, 768, 12, 3072),
    "large": (24, 1024, 16, 4096),
}

REMAT_POLICIES = ("none", "full", "dots", "dots_no_batch")
DTYPES = ("float32", "bfloat16", "float16")
ACTIVATIONS = ("gelu", "gelu_tanh", "relu")
ATTENTION_IMPLS = ("xla", "cudnn")
POSITION_INITS = ("normal", "sinusoidal", "sinusoidal_linear")
ATTENTION_INITS = ("normal", "mimetic", "local")
# Keys added after configs were first saved: a saved config without one had this value.
NEW_KEY_DEFAULTS = {"attention_impl": "xla", "position_init": "normal", "attention_init": "normal"}


def model_config(size: str = "base", **overrides) -> ml_collections.ConfigDict:
    """The architecture of one of the named sizes, with optional field overrides."""
    if size not in SIZES:
        raise ValueError(f"unknown model size {size!r}; choose one of {sorted(SIZES)}")
    layers, hidden, heads, ffn = SIZES[size]
    cfg = ml_collections.ConfigDict(
        {
            "size": size,
            "vocab_size": 30522,
            "hidden_size": hidden,
            "num_layers": layers,
            "num_heads": heads,
            "intermediate_size": ffn,
            "max_position_embeddings": 512,
            "type_vocab_size": 2,
            "hidden_dropout": 0.1,
            "attention_dropout": 0.1,
            "layer_norm_eps": 1e-12,
            "initializer_range": 0.02,
            "hidden_act": "gelu",  # exact (erf) GELU, as google-bert and HF "gelu"
            "pre_layer_norm": False,  # BERT is post-LN; pre-LN trains more stably at depth
            "dtype": "float32",  # compute dtype; parameters are always float32
            "scan_layers": True,  # nn.scan: compile time independent of depth
            # Save matmul outputs and dropout masks, recompute the rest (LayerNorm, GELU,
            # softmax) in the backward pass: less memory, and on CPU 7% faster at base
            # than saving everything (benchmarks/README.md).
            "remat_policy": "dots",
            # jax.nn.dot_product_attention's kernel where it applies (no attention dropout,
            # i.e. evaluation or attention_dropout=0): xla, or cudnn (fused flash attention;
            # CUDA GPUs, bf16/fp16 only).
            "attention_impl": "xla",
            # How the learned position table starts: google-bert's truncated normal, or
            # Vaswani's sines and cosines at the same RMS. Only the starting point differs
            # (the table is still learned and converts to Hugging Face as is); a structured
            # start lets attention find its neighbours early (benchmarks/README.md).
            "position_init": "normal",
            # W_q and W_k: independent truncated normals (google-bert), one shared draw
            # ("mimetic": scores start as token similarity, see SelfAttention), or "local":
            # heads 0 and 1 start attending to the previous / next token (needs
            # position_init="sinusoidal_linear", sines at evenly spaced frequencies).
            "attention_init": "normal",
        }
    )
    for key, value in overrides.items():
        if key not in cfg:
            raise ValueError(f"unknown model config key {key!r}")
        cfg[key] = value
    return cfg


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """The frozen, validated architecture the model modules receive (hashable, so it can
    be a Flax module attribute, and immutable, so no layer can change another's view)."""

    size: str
    vocab_size: int
    hidden_size: int
    num_layers: int
    num_heads: int
    intermediate_size: int
    max_position_embeddings: int
    type_vocab_size: int
    hidden_dropout: float
    attention_dropout: float
    layer_norm_eps: float
    initializer_range: float
    hidden_act: str
    pre_layer_norm: bool
    dtype: str
    scan_layers: bool
    remat_policy: str
    attention_impl: str = "xla"
    position_init: str = "normal"
    attention_init: str = "normal"

    @classmethod
    def from_config(cls, cfg: Any, prefix: str = "config.model") -> ModelConfig:
        """From a ConfigDict/mapping/ModelConfig; a bad value is a UserError naming its key."""
        if isinstance(cfg, cls):
            return cfg
        values = {**NEW_KEY_DEFAULTS, **dict(cfg.to_dict() if hasattr(cfg, "to_dict") else cfg)}
        names = [f.name for f in dataclasses.fields(cls)]
        missing = [n for n in names if n not in values]
        unknown = sorted(set(values) - set(names))
        if missing or unknown:
            raise UserError(f"{prefix}: missing keys {missing}, unknown keys {unknown}")
        validate(values, prefix)
        return cls(**{n: values[n] for n in names})

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _check(ok: bool, key: str, value, expected: str) -> None:
    if not ok:
        raise UserError(f"{key}={value!r}: must be {expected}")


def validate(cfg: Any, prefix: str = "config.model") -> None:
    """Reject architectures that would fail deep inside tracing with an obscure error."""
    get = cfg.__getitem__
    for key in ("vocab_size", "hidden_size", "num_layers", "num_heads", "intermediate_size",
                "max_position_embeddings", "type_vocab_size"):  # fmt: skip
        _check(isinstance(get(key), int) and get(key) > 0, f"{prefix}.{key}", get(key), "> 0")
    if get("hidden_size") % get("num_heads"):
        raise UserError(
            f"{prefix}.hidden_size={get('hidden_size')} is not divisible by "
            f"{prefix}.num_heads={get('num_heads')}"
        )
    for key in ("hidden_dropout", "attention_dropout"):
        _check(0 <= get(key) < 1, f"{prefix}.{key}", get(key), "in [0, 1)")
    _check(get("layer_norm_eps") > 0, f"{prefix}.layer_norm_eps", get("layer_norm_eps"), "> 0")
    _check(get("initializer_range") > 0, f"{prefix}.initializer_range",
           get("initializer_range"), "> 0")  # fmt: skip
    _check(get("remat_policy") in REMAT_POLICIES, f"{prefix}.remat_policy",
           get("remat_policy"), f"one of {REMAT_POLICIES}")  # fmt: skip
    _check(get("dtype") in DTYPES, f"{prefix}.dtype", get("dtype"), f"one of {DTYPES}")
    later = {}  # keys a saved config may lack
    for key, choices in (("attention_impl", ATTENTION_IMPLS), ("position_init", POSITION_INITS),
                         ("attention_init", ATTENTION_INITS)):  # fmt: skip
        later[key] = cfg.get(key, NEW_KEY_DEFAULTS[key]) if hasattr(cfg, "get") else get(key)
        _check(later[key] in choices, f"{prefix}.{key}", later[key], f"one of {choices}")
    if later["attention_init"] == "local":  # its heads read that table's frequencies
        _check(later["position_init"] == "sinusoidal_linear", f"{prefix}.position_init",
               later["position_init"], "'sinusoidal_linear' with attention_init='local'")  # fmt: skip
    _check(get("hidden_act") in ACTIVATIONS, f"{prefix}.hidden_act", get("hidden_act"),
           f"one of {ACTIVATIONS}")  # fmt: skip
    _check(get("size") in SIZES or get("size") == "custom", f"{prefix}.size", get("size"),
           f"one of {sorted(SIZES)} or 'custom'")  # fmt: skip
