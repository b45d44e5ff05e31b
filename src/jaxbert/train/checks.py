"""Every check a pretraining config must pass before anything is written or compiled.

`jaxbert pretrain` and `jaxbert plan` run the same checks, so a plan that prints is a run
that starts. Each failure is one UserError naming the key; nothing here touches a device.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from jaxbert.errors import UserError
from jaxbert.model.config import NEW_KEY_DEFAULTS, ModelConfig

# (section, key, predicate, what it must be). Keys absent from a config are skipped.
_RANGES = [
    ("train", "batch_size", lambda v: v >= 1, ">= 1"),
    ("train", "num_steps", lambda v: v >= 1, ">= 1"),
    ("train", "grad_accum_steps", lambda v: v >= 1, ">= 1"),
    ("train", "log_every", lambda v: v >= 1, ">= 1"),
    ("train", "eval_every", lambda v: v >= 0, ">= 0 (0 = never)"),
    ("train", "eval_batches", lambda v: v >= 1, ">= 1"),
    ("train", "peak_flops_per_device", lambda v: v >= 0, ">= 0 (0 = datasheet or measured)"),
    ("train", "profile_steps", lambda v: v >= 1, ">= 1"),
    ("optimizer", "learning_rate", lambda v: v > 0, "> 0"),
    ("optimizer", "warmup_steps", lambda v: v >= 0, ">= 0"),
    ("optimizer", "weight_decay", lambda v: v >= 0, ">= 0"),
    ("optimizer", "clip_norm", lambda v: v >= 0, ">= 0 (0 = no clipping)"),
    ("optimizer", "b1", lambda v: 0 <= v < 1, "in [0, 1)"),
    ("optimizer", "b2", lambda v: 0 <= v < 1, "in [0, 1)"),
    ("optimizer", "eps", lambda v: v > 0, "> 0"),
    ("optimizer", "end_learning_rate", lambda v: v >= 0, ">= 0"),
    ("optimizer", "decay_power", lambda v: v > 0, "> 0"),
    ("optimizer", "decay_fraction", lambda v: 0 < v <= 1, "in (0, 1]"),
    ("checkpoint", "every_steps", lambda v: v >= 1, ">= 1"),
    ("checkpoint", "keep", lambda v: v >= 1, ">= 1"),
]
_CHOICES = [
    ("optimizer", "name", ("adamw", "lamb")),
    ("optimizer", "decay", ("linear", "polynomial", "constant", "wsd")),
    ("data", "source", ("prepared", "synthetic")),
    ("distributed", "mode", ("auto", "on", "off")),
]
MAX_SEQ_LENGTH = (
    512  # BERT's learned position table; longer needs a bigger model.max_position_embeddings
)


def check_ranges(cfg: Any) -> None:
    """Numeric keys in range and string keys among their choices."""
    for section, key, ok, expected in _RANGES:
        node = cfg.get(section)
        if node is not None and key in node and not ok(node[key]):
            raise UserError(f"config.{section}.{key}={node[key]!r} must be {expected}")
    for section, key, choices in _CHOICES:
        node = cfg.get(section)
        if node is not None and key in node and node[key] not in choices:
            raise UserError(f"config.{section}.{key}={node[key]!r} must be one of {choices}")


def check_model_and_data(cfg: Any, mesh_shape: dict[str, int], processes: int = 1) -> ModelConfig:
    """The model, data and batch checks that need the mesh's shape (not its devices)."""
    check_ranges(cfg)
    model = ModelConfig.from_config(cfg.model)
    _check_data(cfg)
    t = cfg.train
    divisor = mesh_shape["data"] * mesh_shape["fsdp"] * t.grad_accum_steps
    if t.batch_size % divisor:
        raise UserError(
            f"config.train.batch_size={t.batch_size} must be divisible by data×fsdp×grad_accum_steps"
            f" = {divisor}"
        )
    if t.batch_size % processes:
        raise UserError(f"config.train.batch_size must divide over {processes} processes")
    tensor = mesh_shape["tensor"]
    for key in ("vocab_size", "num_heads", "intermediate_size"):
        if getattr(model, key) % tensor:
            hint = " (train the tokenizer with a vocab size that is a multiple of 128)"
            raise UserError(
                f"config.model.{key}={getattr(model, key)} is not divisible by mesh.tensor="
                f"{tensor}" + (hint if key == "vocab_size" else "")
            )
    return model


def _check_data(cfg: Any) -> None:
    from jaxbert.data.pipeline import validate_data_config

    seq, positions = cfg.data.max_seq_length, cfg.model.max_position_embeddings
    if seq > positions:
        raise UserError(
            f"config.data.max_seq_length={seq} exceeds config.model.max_position_embeddings="
            f"{positions} (BERT's position table)"
        )
    resolved = validate_data_config(cfg.data)
    if cfg.data.get("max_predictions_per_seq") == 0:  # derived: every later reader sees it
        cfg.data.max_predictions_per_seq = resolved["max_predictions_per_seq"]
    if cfg.data.get("corpora"):  # a mixture: the checks read its first corpus
        cfg.data.prepared_dir = resolved["prepared_dir"]


def prepared_tokenizer(cfg: Any) -> dict:
    """The prepared data's manifest entry for its tokenizer (vocab size, sha256)."""
    from jaxbert import fs

    if not cfg.data.prepared_dir:
        raise UserError("config.data.prepared_dir is empty: run `jaxbert data prepare` first")
    path = fs.as_path(cfg.data.prepared_dir) / "manifest.json"  # may be gs://
    manifest = os.path.join(cfg.data.prepared_dir, "manifest.json")  # as the user gave it
    if not path.is_file():
        raise UserError(
            f"{manifest} not found: config.data.prepared_dir must be the output of "
            "`jaxbert data prepare` (an interrupted prepare leaves no manifest)"
        )
    try:
        return json.loads(path.read_text())["tokenizer"]
    except (json.JSONDecodeError, KeyError) as e:
        raise UserError(f"{manifest}: not a jaxbert manifest ({e})") from None


def check_vocab(cfg: Any) -> None:
    """The model's vocabulary must be the data's, and config.tokenizer the data's tokenizer:
    otherwise ids index the wrong embeddings, and fine-tuning would tokenize differently."""
    if cfg.data.source != "prepared":
        return
    tok = prepared_tokenizer(cfg)
    if tok["vocab_size"] != cfg.model.vocab_size:
        raise UserError(
            f"config.model.vocab_size={cfg.model.vocab_size}, but the tokenizer of "
            f"{cfg.data.prepared_dir} has {tok['vocab_size']} tokens; set "
            f"--config.model.vocab_size={tok['vocab_size']}"
        )
    if cfg.tokenizer:
        _check_same_tokenizer(cfg.tokenizer, tok, cfg.data.prepared_dir)


def _check_same_tokenizer(path: str, data_tok: dict, prepared_dir: str) -> None:
    from jaxbert.data.tokenizer import load_tokenizer

    if not Path(path).exists():
        raise UserError(
            f"config.tokenizer={path}: not found (a tokenizer dir, .model or vocab.txt)"
        )
    tok = load_tokenizer(path)
    if "sha256" in data_tok and tok.fingerprint() != data_tok["sha256"]:
        raise UserError(
            f"config.tokenizer={path} is not the tokenizer {prepared_dir} was prepared with "
            f"({tok.vocab_size} vs {data_tok['vocab_size']} tokens, different files); use "
            f"--config.tokenizer={prepared_dir.rstrip('/')}/tokenizer"
        )


# Keys a resumed pretraining run may change: where things go, how often it logs, evaluates,
# checkpoints or profiles, how long it runs, how it is laid out (mesh, micro-batches,
# workers, dtype, remat, attention kernel). Every other key fixes what a run directory
# holds (one model, trained on one tokenization, data and recipe): `runtime.
# config_differences` refuses a resume that changes one.
RESUMABLE_CHANGES = (
    "output_dir", "checkpoint", "mesh", "distributed",
    "train.num_steps", "train.log_every", "train.eval_every", "train.eval_batches",
    "train.peak_flops_per_device", "train.profile_start_step", "train.profile_steps",
    "train.init_from", "train.grad_accum_steps",
    "model.dtype", "model.remat_policy", "model.attention_impl",
    "data.num_workers", "data.prefetch", "data.eval_packing", "data.eval_mask_prob",
)  # fmt: skip


def identity_differences(saved: dict, cfg: Any) -> list[str]:
    """`config.KEY: saved → now` for each key a resume may not change (keys a saved
    config lacks predate it: they had today's defaults)."""
    from jaxbert.train.config import pretrain_defaults
    from jaxbert.train.runtime import config_differences

    now = cfg.to_dict() if hasattr(cfg, "to_dict") else cfg
    defaults = pretrain_defaults().to_dict()
    defaults["model"] = {**defaults["model"], **NEW_KEY_DEFAULTS}
    return config_differences(saved, now, RESUMABLE_CHANGES, defaults)
