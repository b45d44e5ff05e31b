"""Run configs: a Python config file plus `--config.key=value` overrides, locked.

One ConfigDict describes a run. Config files are `configs/**.py` defining `get_config()`
(or `get_config(arg)` when loaded as `file.py:arg`). Unknown keys and wrong types are
errors naming the key, so a typo never silently trains the wrong model.
"""

from __future__ import annotations

import ast
import importlib.util
import json
from pathlib import Path

import ml_collections

from jaxbert.errors import UserError

OVERRIDE_PREFIX = "--config."


def load_config_file(spec: str) -> ml_collections.ConfigDict:
    """`path/to/file.py` or `path/to/file.py:arg` → the ConfigDict its get_config returns."""
    path, _, arg = spec.partition(":")
    file = Path(path)
    if not file.is_file():
        raise UserError(f"config file not found: {path}")
    if file.suffix != ".py":
        raise UserError(
            f"{path}: a config file is Python defining get_config() (e.g. "
            "configs/pretrain/cpu_smoke.py); a run's config.json only records what it resolved"
        )
    module = _exec_config_file(file)
    if not hasattr(module, "get_config"):
        raise UserError(f"{path}: defines no get_config()")
    try:
        cfg = module.get_config(arg) if arg else module.get_config()
    except (AttributeError, KeyError, TypeError, ValueError) as e:  # locked defaults reject typos
        raise UserError(f"{path}{_user_line(e, file)}: {e}") from None
    except Exception as e:  # noqa: BLE001 — any other failure inside the user's get_config
        raise UserError(f"{path}{_user_line(e, file)}: {type(e).__name__}: {e}") from None
    if not isinstance(cfg, ml_collections.ConfigDict):
        raise UserError(f"{path}: get_config() must return an ml_collections.ConfigDict")
    return cfg


def _exec_config_file(file: Path):
    """The config module; its syntax or import errors name the file and line."""
    spec = importlib.util.spec_from_file_location(f"jaxbert_config_{file.stem}", file)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except SyntaxError as e:
        raise UserError(f"{file}:{e.lineno}: syntax error: {e.msg}") from None
    except Exception as e:  # noqa: BLE001 — any failure while running the user's file
        line = _user_line(e, file)
        raise UserError(f"{file}{line}: {type(e).__name__}: {e}") from None
    return module


def _user_line(e: BaseException, file: Path) -> str:
    """`:LINE` of the deepest traceback frame inside `file`, or ''."""
    tb, line = e.__traceback__, ""
    while tb is not None:
        if Path(tb.tb_frame.f_code.co_filename).resolve() == file.resolve():
            line = f":{tb.tb_lineno}"
        tb = tb.tb_next
    return line


def _parse_value(text: str, current):
    """Parse an override string into the type of the value it replaces."""
    if isinstance(current, bool):
        low = text.lower()
        if low in ("true", "1", "yes"):
            return True
        if low in ("false", "0", "no"):
            return False
        raise TypeError(f"expected a bool, got {text!r}")
    if isinstance(current, str) or current is None:
        return text
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError) as e:
        raise TypeError(f"expected {type(current).__name__}, got {text!r}") from e
    if isinstance(current, float) and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if isinstance(current, (list, tuple)) and isinstance(value, (list, tuple)):
        value = type(current)(value)
    if type(value) is not type(current):
        raise TypeError(f"expected {type(current).__name__}, got {text!r}")
    return value


def apply_override(cfg: ml_collections.ConfigDict, dotted: str, text: str) -> None:
    *parents, leaf = dotted.split(".")
    node = cfg
    for i, part in enumerate(parents):
        if not isinstance(node, ml_collections.ConfigDict) or part not in node:
            raise UserError(f"unknown config key: config.{'.'.join(parents[: i + 1])}")
        node = node[part]
    if not isinstance(node, ml_collections.ConfigDict) or leaf not in node:
        raise UserError(f"unknown config key: config.{dotted}")
    try:
        node[leaf] = _parse_value(text, node[leaf])
    except TypeError as e:
        raise UserError(f"config.{dotted}: {e}") from None


def parse_overrides(argv: list[str]) -> list[tuple[str, str]]:
    """`--config.a.b=v` or `--config.a.b v` → [("a.b", "v")]; anything else is an error."""
    pairs, i = [], 0
    while i < len(argv):
        arg = argv[i]
        if not arg.startswith(OVERRIDE_PREFIX):
            raise UserError(
                f"unrecognized argument {arg!r} (overrides look like --config.key=value)"
            )
        key, eq, value = arg[len(OVERRIDE_PREFIX) :].partition("=")
        if not eq:
            if i + 1 >= len(argv):
                raise UserError(f"{arg} needs a value")
            value, i = argv[i + 1], i + 1
        pairs.append((key, value))
        i += 1
    return pairs


def load_config(spec: str, overrides: list[str] = ()) -> ml_collections.ConfigDict:
    cfg = load_config_file(spec)
    for key, value in parse_overrides(list(overrides)):
        apply_override(cfg, key, value)
    cfg.lock()
    return cfg


def to_json(cfg: ml_collections.ConfigDict) -> str:
    return json.dumps(cfg.to_dict(), indent=2, sort_keys=True, default=str)


def from_json(text: str) -> ml_collections.ConfigDict:
    return ml_collections.ConfigDict(json.loads(text))
