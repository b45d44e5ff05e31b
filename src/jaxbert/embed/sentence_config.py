"""A sentence-embedding model's own recipe, read from its sentence-transformers layout.

A sentence-transformers checkpoint (all-MiniLM-L6-v2 and most sentence models on the
Hub) says how its vectors are made: `modules.json` lists Transformer → Pooling (→
Normalize), `1_Pooling/config.json` the pooling, `sentence_bert_config.json` the length
it was trained at. Its scores are only reproduced with that recipe (mean over *every*
real token of the last layer, [CLS] and [SEP] included: STS-B 0.867; jaxbert's generic
last-4 default gives 0.804), so it becomes the embedding default for that model; flags
still override it. A model without these files gets `EmbeddingDefaults()`.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from jaxbert.errors import UserError

MODULES_FILE = "modules.json"
ST_CONFIG_FILE = "sentence_bert_config.json"
_ST = "sentence_transformers.models."
_SUPPORTED = {f"{_ST}Transformer", f"{_ST}Pooling", f"{_ST}Normalize"}
# pooling_mode_* keys → jaxbert sentence pools (mean_all: the mean over all real tokens).
_POOLS = {"pooling_mode_mean_tokens": "mean_all", "pooling_mode_cls_token": "cls"}
# Files a converted checkpoint carries along so the recipe survives `convert`.
FILES = (MODULES_FILE, ST_CONFIG_FILE, "config_sentence_transformers.json")


@dataclasses.dataclass(frozen=True)
class EmbeddingDefaults:
    layer: str = "last4"
    sentence_pool: str = "mean"
    max_seq_length: int = 0  # 0: the model's max_position_embeddings
    normalize: bool = False
    source: str = ""  # the file the recipe came from ("" for jaxbert's generic default)


def _read_json(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise UserError(f"{path}: cannot read it as JSON ({e})") from None


def _pool(config: dict, path: Path) -> str:
    """The one pooling mode a Pooling config switches on, as a jaxbert sentence pool."""
    on = [k for k, v in config.items() if k.startswith("pooling_mode_") and v is True]
    if len(on) != 1 or on[0] not in _POOLS:
        raise UserError(
            f"{path}: pooling {on or 'none'} is not supported (jaxbert pools one of: "
            f"{', '.join(sorted(_POOLS))}); pass --sentence-pool to embed anyway"
        )
    return _POOLS[on[0]]


def read_defaults(directory: str | Path | None) -> EmbeddingDefaults:
    """The model's own embedding recipe from its sentence-transformers files, or the
    generic defaults when `directory` has no `modules.json`."""
    if directory is None or not (Path(directory) / MODULES_FILE).is_file():
        return EmbeddingDefaults()
    directory = Path(directory)
    modules_path = directory / MODULES_FILE
    modules = _read_json(modules_path)
    if not isinstance(modules, list) or not all(isinstance(m, dict) for m in modules):
        raise UserError(f"{modules_path}: expected a list of modules")
    kinds = [m.get("type", "") for m in modules]
    unsupported = [k for k in kinds if k not in _SUPPORTED]
    if unsupported:
        raise UserError(
            f"{modules_path}: module {unsupported[0]} is not supported (jaxbert embeds with "
            "Transformer → Pooling → Normalize); its vectors would differ from the model's"
        )
    pooling = next((m for m in modules if m["type"] == f"{_ST}Pooling"), None)
    if pooling is None:
        raise UserError(f"{modules_path}: no {_ST}Pooling module")
    pool_path = directory / pooling.get("path", "") / "config.json"
    pool = _pool(_read_json(pool_path), pool_path)
    st_config = directory / ST_CONFIG_FILE
    max_len = int(_read_json(st_config).get("max_seq_length") or 0) if st_config.is_file() else 0
    normalize = f"{_ST}Normalize" in kinds
    return EmbeddingDefaults("last", pool, max_len, normalize, str(pool_path))


def copy_files(src: str | Path, dest: str | Path) -> list[str]:
    """Copies a sentence-transformers layout's recipe files (not its weights) from `src`
    to `dest`; returns what was copied (nothing when `src` has no modules.json)."""
    import shutil

    src, dest = Path(src), Path(dest)
    if not (src / MODULES_FILE).is_file():
        return []
    copied = []
    for name in FILES:
        if (src / name).is_file():
            shutil.copyfile(src / name, dest / name)
            copied.append(name)
    for module in _read_json(src / MODULES_FILE):
        sub = module.get("path", "")
        if sub and (src / sub / "config.json").is_file():
            (dest / sub).mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src / sub / "config.json", dest / sub / "config.json")
            copied.append(f"{sub}/config.json")
    return copied
