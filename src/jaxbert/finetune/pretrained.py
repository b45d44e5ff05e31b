"""Where a fine-tuned (or embedded) encoder comes from: its config, weights and tokenizer.

`init` is one of: a jaxbert pretraining run directory (or its `checkpoints/` folder), a
standalone `save_params` directory, or a Hugging Face safetensors directory. The
tokenizer defaults to the one the weights were trained with: the run config's
`tokenizer` entry for a jaxbert run, the `vocab.txt` beside Hugging Face weights.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import ml_collections

from jaxbert.errors import UserError

REPO_ROOT = Path(__file__).resolve().parents[3]


@dataclasses.dataclass
class Pretrained:
    model_cfg: ml_collections.ConfigDict
    bert_params: Any  # the `bert` subtree, host arrays; None for a scratch model
    tokenizer_path: Path
    source: str  # human-readable: where the weights came from
    objective: str = ""  # a jaxbert run's data.objective ("mlm": its pooler never trained)


def resolve_path(path: str | Path) -> Path:
    """A relative path from the working directory, else from the repository root."""
    path = Path(path)
    if path.is_absolute() or path.exists():
        return path
    return REPO_ROOT / path if (REPO_ROOT / path).exists() else path


def is_hf_dir(path: Path) -> bool:
    return (
        path.is_dir()
        and (path / "config.json").is_file()
        and (
            (path / "model.safetensors").is_file()
            or (path / "model.safetensors.index.json").is_file()
        )
    )


def _run_dir(path: Path) -> Path:
    """A jaxbert run dir, given it or its checkpoints/ dir."""
    return path.parent if path.name == "checkpoints" else path


def _run_config(path: Path) -> dict:
    """The config.json a jaxbert run (or its checkpoints/ dir) recorded, or {}."""
    config = _run_dir(path) / "config.json"
    try:
        return json.loads(config.read_text()) if config.is_file() else {}
    except (OSError, json.JSONDecodeError):
        return {}


def _run_tokenizer(path: Path, run_config: dict) -> Path | None:
    """The tokenizer a jaxbert run recorded in its config.json (or a tokenizer/ subdir)."""
    run_dir = _run_dir(path)
    recorded = run_config.get("tokenizer", "")
    if recorded:
        found = resolve_path(recorded)
        if found.exists():
            return found
    for candidate in (run_dir / "tokenizer", run_dir / "vocab.txt", run_dir / "tokenizer.model"):
        if candidate.exists():
            return candidate
    return None


def _check_same_tokenizer(given: Path, trained_with: Path | None, key: str) -> None:
    """An explicit tokenizer must be the one the weights were trained with (same file
    bytes): another vocabulary of the same size would silently map ids to wrong embeddings."""
    from jaxbert.data.tokenizer import load_tokenizer

    if trained_with is None or not Path(trained_with).exists():
        return
    mine, theirs = load_tokenizer(given), load_tokenizer(trained_with)
    case = {True: "uncased (lower-cases its text)", False: "cased"}
    if bool(mine.lowercase) != bool(theirs.lowercase):
        raise UserError(
            f"{key}={given} is {case[bool(mine.lowercase)]}, but these weights were trained "
            f"with a {case[bool(theirs.lowercase)].split(' ')[0]} tokenizer ({theirs.path}): "
            f"text would be tokenized differently; leave {key} empty to use theirs"
        )
    if mine.fingerprint() != theirs.fingerprint():
        raise UserError(
            f"{key}={given} is not the tokenizer these weights were trained with "
            f"({theirs.path}); leave {key} empty to use it"
        )


def load_pretrained(init: str, tokenizer: str = "", key: str = "config.tokenizer") -> Pretrained:
    """Model config, `bert` params and tokenizer path of a checkpoint (not for scratch);
    `key` names the tokenizer setting in errors (`--tokenizer` for the embed command)."""
    from jaxbert import checkpoint, convert

    path = resolve_path(init)
    if not path.exists():
        raise UserError(
            f"config.init: {init} does not exist. Give a jaxbert run dir (e.g. runs/cpu_smoke "
            "from `make pretrain`), a Hugging Face safetensors dir, or 'scratch'"
        )
    objective = ""
    if is_hf_dir(path):
        model_cfg, params = convert.load_hf_checkpoint(path)
        default_tok, source = path, f"Hugging Face checkpoint {path}"
    else:
        model_cfg, params = checkpoint.load_params(path)
        run_config = _run_config(path)
        default_tok, source = _run_tokenizer(path, run_config), f"jaxbert checkpoint {path}"
        objective = run_config.get("data", {}).get("objective", "")
    if "bert" not in params:
        raise UserError(f"config.init: {path} holds no `bert` encoder parameters")
    tok_path = resolve_path(tokenizer) if tokenizer else default_tok
    if tok_path is None or not Path(tok_path).exists():
        raise UserError(
            f"no tokenizer found for {path}: set {key} (a sentencepiece .model, "
            "a WordPiece vocab.txt or a directory with one)"
        )
    if tokenizer:
        _check_same_tokenizer(tok_path, default_tok, key)
    return Pretrained(
        ml_collections.ConfigDict(model_cfg.to_dict()), params["bert"], tok_path, source, objective
    )


def check_vocab(model_cfg, tokenizer, where: str) -> None:
    if tokenizer.vocab_size > model_cfg.vocab_size:
        raise UserError(
            f"{where}: tokenizer {tokenizer.path} has {tokenizer.vocab_size} tokens but the "
            f"model's vocab_size is {model_cfg.vocab_size}; use the tokenizer it was trained with"
        )
