"""Model sizes and the frozen model config.

The model only ever sees this config (never the run config, mesh or optimizer), so that a
checkpoint's architecture is fully described by one small dict saved beside it.
"""

from __future__ import annotations

import ml_collections

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
        }
    )
    for key, value in overrides.items():
        if key not in cfg:
            raise ValueError(f"unknown model config key {key!r}")
        cfg[key] = value
    return cfg


def validate(cfg: ml_collections.ConfigDict, prefix: str = "model") -> None:
    """Reject architectures that would fail deep inside tracing with an obscure error."""
    if cfg.hidden_size % cfg.num_heads:
        raise ValueError(
            f"{prefix}.hidden_size={cfg.hidden_size} is not divisible by "
            f"{prefix}.num_heads={cfg.num_heads}"
        )
    if cfg.remat_policy not in REMAT_POLICIES:
        raise ValueError(f"{prefix}.remat_policy must be one of {REMAT_POLICIES}")
    if cfg.dtype not in DTYPES:
        raise ValueError(f"{prefix}.dtype must be one of {DTYPES}")
    if cfg.hidden_act not in ("gelu", "gelu_tanh", "relu"):
        raise ValueError(f"{prefix}.hidden_act must be gelu, gelu_tanh or relu")
    for key in ("vocab_size", "num_layers", "intermediate_size", "max_position_embeddings"):
        if cfg[key] <= 0:
            raise ValueError(f"{prefix}.{key} must be positive, got {cfg[key]}")
