"""Where an encoder comes from: its config, weights and tokenizer, for every consumer.

`jaxbert finetune` (config.init), `jaxbert embed` / `eval-embeddings` (--init) and the
Python API all load through `load_pretrained`, so a checkpoint that works for one works
for all, and neither `finetune` nor `embed` imports the other to get at it.

`init` is one of: a jaxbert pretraining run directory (or its `checkpoints/` folder), a
standalone `save_params` directory (e.g. `best_params/`, `convert hf-to-jaxbert` output),
or a Hugging Face directory exactly as shipped (config.json + model.safetensors or a
sharded index; tokenizer.json and/or vocab.txt + tokenizer_config.json). The tokenizer
defaults to the one the weights were trained with: the run config's `tokenizer` entry or
a `tokenizer/` folder beside jaxbert params, the tokenizer files beside Hugging Face
weights. Paths are taken as given (relative to the working directory), never resolved
against the source tree.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import ml_collections

from jaxbert import fs
from jaxbert.errors import UserError

_TOKENIZER_CANDIDATES = ("tokenizer", "tokenizer.json", "vocab.txt", "tokenizer.model")


@dataclasses.dataclass
class Pretrained:
    model_cfg: ml_collections.ConfigDict
    bert_params: Any  # the `bert` subtree, host arrays; None for a scratch model
    tokenizer_path: Path
    source: str  # human-readable: where the weights came from
    objective: str = ""  # a jaxbert run's data.objective ("mlm": its pooler never trained)
    path: Path | None = None  # the directory the weights were read from
    stored_scan: bool | None = None  # the checkpoint's layer layout (stacked or layers_i)


def resolve_path(path: str | Path) -> Path:
    """A user-given path, `~` expanded; relative paths are from the working directory.
    A bucket URL (gs://…) becomes an epath.Path, which has the same API and keeps `//`."""
    if fs.is_remote(path):
        return fs.as_path(path)
    return Path(path).expanduser()


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
    """The config.json a jaxbert run (or its checkpoints/ dir) recorded, else the config
    saved with its newest checkpoint (all a bucket holds when output_dir was local), or {}."""
    from jaxbert import checkpoint

    config = _run_dir(path) / "config.json"
    try:
        if config.is_file():
            return json.loads(config.read_text())
        steps = path / "checkpoints" if (path / "checkpoints").is_dir() else path
        return checkpoint.read_config(steps).to_dict() if checkpoint.step_dirs(steps) else {}
    except (OSError, ValueError):  # json.JSONDecodeError and UserError are ValueErrors
        return {}


def _run_tokenizer(path: Path, run_config: dict) -> Path | None:
    """The tokenizer a jaxbert run recorded in its config.json (or a tokenizer/ subdir)."""
    run_dir = _run_dir(path)
    recorded = run_config.get("tokenizer", "")
    if recorded:
        found = resolve_path(recorded)
        if found.exists():
            return found
    for name in _TOKENIZER_CANDIDATES:
        if (run_dir / name).exists():
            return run_dir / name
    return None


def find_tokenizer(path: str | Path) -> Path | None:
    """The tokenizer belonging to a checkpoint directory (any kind `load_pretrained`
    reads), or None."""
    path = resolve_path(path)
    return _hf_tokenizer(path) if is_hf_dir(path) else _run_tokenizer(path, _run_config(path))


def run_config(path: str | Path) -> dict:
    """The config.json recorded by the jaxbert run `path` belongs to, or {}."""
    return _run_config(resolve_path(path))


def _hf_tokenizer(path: Path) -> Path | None:
    """The tokenizer files shipped beside Hugging Face weights, if any."""
    names = ("tokenizer.json", "vocab.txt", "tokenizer.model")
    return path if any((path / n).is_file() for n in names) else None


def _check_same_tokenizer(given: Path, trained_with: Path | None, key: str) -> None:
    """An explicit tokenizer must be the one the weights were trained with (same file
    bytes, or the same vocabulary and casing): another vocabulary of the same size would
    silently map ids to wrong embeddings."""
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
    same_vocab = mine._pieces == theirs._pieces  # noqa: SLF001 (vocab.txt vs tokenizer.json)
    if mine.fingerprint() != theirs.fingerprint() and not same_vocab:
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
        default_tok, source = _hf_tokenizer(path), f"Hugging Face checkpoint {path}"
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
            f"no tokenizer found for {path}: set {key} (a Hugging Face tokenizer.json, a "
            "WordPiece vocab.txt, a sentencepiece .model, or a directory with one)"
        )
    if tokenizer:
        _check_same_tokenizer(tok_path, default_tok, key)
    cfg = ml_collections.ConfigDict(model_cfg.to_dict())
    return Pretrained(cfg, params["bert"], tok_path, source, objective, _run_dir(path))


def check_vocab(model_cfg, tokenizer, where: str) -> None:
    if tokenizer.vocab_size > model_cfg.vocab_size:
        raise UserError(
            f"{where}: tokenizer {tokenizer.path} has {tokenizer.vocab_size} tokens but the "
            f"model's vocab_size is {model_cfg.vocab_size}; use the tokenizer it was trained with"
        )
