"""Hugging Face BERT checkpoints (config.json + model.safetensors) ⇄ jaxbert params.

So users can take models either way: import a transformers `BertForPreTraining` or bare
`BertModel` checkpoint (fp32, fp16 or bf16; one file or a sharded index) to pretrain
further or fine-tune here, and export every kind of jaxbert run a user would publish so
transformers' `from_pretrained(dir)` loads it as the matching class (`ARCHITECTURES`):
pretraining with NSP → `BertForPreTraining`, MLM-only pretraining → `BertForMaskedLM`,
fine-tuned classifiers / taggers / span-QA → `BertForSequenceClassification` (with
`id2label`) / `BertForTokenClassification` / `BertForQuestionAnswering`, an encoder alone
→ `BertModel`; the tokenizer files go along (`data.tokenizer.export_hf_tokenizer`).

The mapping is a table of (HF tensor name, jaxbert param path, transform) built from the
model config, so loading and saving are the same table read in opposite directions and
one check finds every missing, unexpected or wrongly shaped tensor at once.

Layouts and conventions:
- torch Linear weights are [out, in]; Flax kernels are [in, out] (transposed). The
  attention projections keep their head axes in jaxbert: query/key/value kernels are
  [hidden, heads, head_dim], the output kernel [heads, head_dim, hidden].
- The MLM decoder is tied to the word embeddings in both libraries. transformers'
  `save_pretrained` leaves the tied `cls.predictions.decoder.{weight,bias}` out of the
  file; when present they must equal `word_embeddings` / `cls.predictions.bias`.
- Task heads (`classifier`, `qa_outputs`) are one dense layer in both libraries, the
  same tensors for a sequence and a token classifier: which class to export is the
  caller's `task_kind` (the CLI reads it from the fine-tuning run's config).
- The pooler is always written (HF's masked-LM, token and QA classes ignore it with a
  warning), so every export re-imports here bit for bit.
- A bare `BertModel` checkpoint (or one without `cls.*` tensors) has no pretraining
  heads: the returned params then hold only `bert`, and the heads are left **absent**
  (not initialised), so nothing random is passed off as pretrained. Fine-tuning models
  take `params["bert"]` unchanged; exporting such params writes no `cls.*` tensors.
- Params are returned as float32 numpy arrays, scanned layout (one `layers` subtree
  with a leading layer axis) unless `scan_layers=False` (`layers_0 … layers_{L-1}`);
  `stack_layers` / `unstack_layers` move between the two.

This module needs only numpy, safetensors and json; flax is imported only to unbox
logically-partitioned params passed to `save_hf_checkpoint`.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import shutil
import tempfile
from collections.abc import Callable, Mapping
from typing import Any

import ml_collections
import numpy as np

from jaxbert.errors import UserError
from jaxbert.model import config as model_config_lib

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
WEIGHTS_INDEX_FILE = "model.safetensors.index.json"

_ACT_FROM_HF = {
    "gelu": "gelu",
    "gelu_new": "gelu_tanh",
    "gelu_pytorch_tanh": "gelu_tanh",
    "relu": "relu",
}
_ACT_TO_HF = {"gelu": "gelu", "gelu_tanh": "gelu_new", "relu": "relu"}

# HF config key -> (jaxbert key, required, type). Optional keys default like BertConfig's.
_HF_KEYS: dict[str, tuple[str, bool, type]] = {
    "vocab_size": ("vocab_size", True, int),
    "hidden_size": ("hidden_size", True, int),
    "num_hidden_layers": ("num_layers", True, int),
    "num_attention_heads": ("num_heads", True, int),
    "intermediate_size": ("intermediate_size", True, int),
    "max_position_embeddings": ("max_position_embeddings", True, int),
    "type_vocab_size": ("type_vocab_size", False, int),
    "layer_norm_eps": ("layer_norm_eps", False, float),
    "hidden_dropout_prob": ("hidden_dropout", False, float),
    "attention_probs_dropout_prob": ("attention_dropout", False, float),
    "initializer_range": ("initializer_range", False, float),
}

# Tensors that may appear in a checkpoint but carry nothing jaxbert stores.
_IGNORED = ("bert.embeddings.position_ids",)
_TIED = {
    "cls.predictions.decoder.weight": "bert.embeddings.word_embeddings.weight",
    "cls.predictions.decoder.bias": "cls.predictions.bias",
}


# --------------------------------------------------------------------------------------
# Config


def _config_value(hf_config: Mapping[str, Any], key: str, kind: type, source: str):
    value = hf_config[key]
    ok = isinstance(value, int | float) if kind is float else isinstance(value, int)
    if not ok or isinstance(value, bool):
        raise UserError(f"{source}: {key} must be {kind.__name__}, got {value!r}")
    return kind(value)


def _check_supported(hf_config: Mapping[str, Any], source: str) -> None:
    """Reject BERT variants whose weights would load but compute something else."""
    if hf_config.get("model_type", "bert") != "bert":
        raise UserError(
            f"{source}: model_type is {hf_config['model_type']!r}; only 'bert' is supported"
        )
    position = hf_config.get("position_embedding_type", "absolute")
    if position != "absolute":
        raise UserError(
            f"{source}: position_embedding_type={position!r} is not supported "
            "(jaxbert has learned absolute positions only)"
        )
    for key in ("is_decoder", "add_cross_attention"):
        if hf_config.get(key, False):
            raise UserError(f"{source}: {key}=true is not supported (jaxbert is an encoder)")
    if not hf_config.get("tie_word_embeddings", True):
        raise UserError(
            f"{source}: tie_word_embeddings=false is not supported "
            "(jaxbert's MLM decoder is tied to the word embeddings)"
        )
    act = hf_config.get("hidden_act", "gelu")
    if act not in _ACT_FROM_HF:
        raise UserError(
            f"{source}: hidden_act={act!r} is not supported; use one of {sorted(_ACT_FROM_HF)}"
        )


def _size_name(overrides: Mapping[str, Any]) -> str:
    dims = tuple(
        overrides[k] for k in ("num_layers", "hidden_size", "num_heads", "intermediate_size")
    )
    return next((n for n, d in model_config_lib.SIZES.items() if d == dims), "custom")


def hf_config_to_model_config(
    hf_config: Mapping[str, Any], source: str = CONFIG_FILE
) -> ml_collections.ConfigDict:
    """A transformers BertConfig dict → jaxbert model config (float32, scanned layers).

    Unknown HF keys (generation settings, `architectures`, …) are ignored; settings that
    would change the computation in a way jaxbert cannot reproduce are errors naming
    `source` and the key. `size` is the matching named size, else "custom".
    """
    _check_supported(hf_config, source)
    overrides: dict[str, Any] = {}
    for hf_key, (key, required, kind) in _HF_KEYS.items():
        if hf_key in hf_config and hf_config[hf_key] is not None:
            overrides[key] = _config_value(hf_config, hf_key, kind, source)
        elif required:
            raise UserError(f"{source}: missing required key {hf_key!r}")
    overrides["hidden_act"] = _ACT_FROM_HF[hf_config.get("hidden_act", "gelu")]
    cfg = model_config_lib.model_config("base", **overrides)
    cfg.size = _size_name(overrides)
    try:
        model_config_lib.validate(cfg)
    except ValueError as e:
        raise UserError(f"{source}: {e}") from None
    return cfg


def model_config_to_hf_config(cfg: ml_collections.ConfigDict) -> dict[str, Any]:
    """jaxbert model config → a transformers `BertForPreTraining` config.json dict."""
    if cfg.pre_layer_norm:
        raise UserError(
            "model.pre_layer_norm=True has no Hugging Face BERT equivalent (BERT is post-LN)"
        )
    return {
        "architectures": ["BertForPreTraining"],
        "model_type": "bert",
        "vocab_size": int(cfg.vocab_size),
        "hidden_size": int(cfg.hidden_size),
        "num_hidden_layers": int(cfg.num_layers),
        "num_attention_heads": int(cfg.num_heads),
        "intermediate_size": int(cfg.intermediate_size),
        "hidden_act": _ACT_TO_HF[cfg.hidden_act],
        "hidden_dropout_prob": float(cfg.hidden_dropout),
        "attention_probs_dropout_prob": float(cfg.attention_dropout),
        "max_position_embeddings": int(cfg.max_position_embeddings),
        "type_vocab_size": int(cfg.type_vocab_size),
        "initializer_range": float(cfg.initializer_range),
        "layer_norm_eps": float(cfg.layer_norm_eps),
        "pad_token_id": 0,
        "position_embedding_type": "absolute",
        "classifier_dropout": None,
        "tie_word_embeddings": True,
        "use_cache": True,
        "torch_dtype": "float32",
    }


# --------------------------------------------------------------------------------------
# The tensor table


@dataclasses.dataclass(frozen=True)
class _Tensor:
    """One HF tensor, where it lives in the (unscanned) jaxbert tree, and how to move it."""

    hf_name: str
    path: tuple[str, ...]
    hf_shape: tuple[int, ...]
    to_jax: Callable[[np.ndarray], np.ndarray]
    to_hf: Callable[[np.ndarray], np.ndarray]


def _same(x: np.ndarray) -> np.ndarray:
    return x


def _transpose(x: np.ndarray) -> np.ndarray:
    return x.T


def _layer_norm(hf: str, path: tuple[str, ...], hidden: int) -> list[_Tensor]:
    return [
        _Tensor(f"{hf}.weight", (*path, "scale"), (hidden,), _same, _same),
        _Tensor(f"{hf}.bias", (*path, "bias"), (hidden,), _same, _same),
    ]


def _dense(hf: str, path: tuple[str, ...], n_in: int, n_out: int) -> list[_Tensor]:
    return [
        _Tensor(f"{hf}.weight", (*path, "kernel"), (n_out, n_in), _transpose, _transpose),
        _Tensor(f"{hf}.bias", (*path, "bias"), (n_out,), _same, _same),
    ]


def _attention(hf: str, path: tuple[str, ...], cfg: Any) -> list[_Tensor]:
    hidden, heads = cfg.hidden_size, cfg.num_heads
    head_dim = hidden // heads
    out = []
    for name in ("query", "key", "value"):
        out += [
            _Tensor(
                f"{hf}.self.{name}.weight",
                (*path, name, "kernel"),
                (hidden, hidden),
                lambda w: w.T.reshape(hidden, heads, head_dim),
                lambda k: k.reshape(hidden, hidden).T,
            ),
            _Tensor(
                f"{hf}.self.{name}.bias",
                (*path, name, "bias"),
                (hidden,),
                lambda b: b.reshape(heads, head_dim),
                lambda b: b.reshape(hidden),
            ),
        ]
    out += [
        _Tensor(
            f"{hf}.output.dense.weight",
            (*path, "out", "kernel"),
            (hidden, hidden),
            lambda w: w.T.reshape(heads, head_dim, hidden),
            lambda k: k.reshape(hidden, hidden).T,
        ),
        _Tensor(f"{hf}.output.dense.bias", (*path, "out", "bias"), (hidden,), _same, _same),
    ]
    return out


def _layer(i: int, cfg: Any) -> list[_Tensor]:
    hf, path = f"bert.encoder.layer.{i}", ("bert", "encoder", f"layers_{i}")
    h, f = cfg.hidden_size, cfg.intermediate_size
    return (
        _attention(f"{hf}.attention", (*path, "attention"), cfg)
        + _layer_norm(f"{hf}.attention.output.LayerNorm", (*path, "attention_layer_norm"), h)
        + _dense(f"{hf}.intermediate.dense", (*path, "mlp", "wi"), h, f)
        + _dense(f"{hf}.output.dense", (*path, "mlp", "wo"), f, h)
        + _layer_norm(f"{hf}.output.LayerNorm", (*path, "output_layer_norm"), h)
    )


def _encoder_table(cfg: Any) -> list[_Tensor]:
    h = cfg.hidden_size
    emb = ("bert", "embeddings")
    table = [
        _Tensor(
            f"bert.embeddings.{name}.weight",
            (*emb, name, "embedding"),
            (rows, h),
            _same,
            _same,
        )
        for name, rows in (
            ("word_embeddings", cfg.vocab_size),
            ("position_embeddings", cfg.max_position_embeddings),
            ("token_type_embeddings", cfg.type_vocab_size),
        )
    ]
    table += _layer_norm("bert.embeddings.LayerNorm", (*emb, "layer_norm"), h)
    for i in range(cfg.num_layers):
        table += _layer(i, cfg)
    return table + _dense("bert.pooler.dense", ("bert", "pooler"), h, h)


def _mlm_table(cfg: Any) -> list[_Tensor]:
    h = cfg.hidden_size
    return (
        _dense("cls.predictions.transform.dense", ("mlm", "transform"), h, h)
        + _layer_norm("cls.predictions.transform.LayerNorm", ("mlm", "layer_norm"), h)
        + [_Tensor("cls.predictions.bias", ("mlm", "output_bias"), (cfg.vocab_size,), _same, _same)]
    )


def _heads_table(cfg: Any) -> list[_Tensor]:
    return _mlm_table(cfg) + _dense("cls.seq_relationship", ("nsp",), cfg.hidden_size, 2)


# jaxbert's top-level heads (besides `bert`) → the transformers class that holds them.
ARCHITECTURES = {
    (): "BertModel",
    ("mlm", "nsp"): "BertForPreTraining",
    ("mlm",): "BertForMaskedLM",
    ("classifier", "sequence"): "BertForSequenceClassification",
    ("classifier", "token"): "BertForTokenClassification",
    ("qa_outputs",): "BertForQuestionAnswering",
}
TASK_KINDS = ("sequence", "token")


def _task_table(name: str, num_labels: int, cfg: Any) -> list[_Tensor]:
    """`classifier` / `qa_outputs`: a dense layer hidden → labels, same name both sides."""
    return _dense(name, (name,), cfg.hidden_size, num_labels)


# --------------------------------------------------------------------------------------
# Nested-dict helpers (no jax needed)


def _get(tree: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    for key in path:
        if not isinstance(tree, Mapping) or key not in tree:
            return None
        tree = tree[key]
    return tree


def _set(tree: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    for key in path[:-1]:
        tree = tree.setdefault(key, {})
    tree[path[-1]] = value


def _map(fn: Callable[..., Any], *trees: Any) -> Any:
    if isinstance(trees[0], Mapping):
        return {k: _map(fn, *(t[k] for t in trees)) for k in trees[0]}
    return fn(*trees)


def _host_stack(arrays: list) -> np.ndarray:
    return np.stack([np.asarray(x) for x in arrays])


def _host_take(array, i: int) -> np.ndarray:
    return np.asarray(array)[i]


def stack_layers(params: Mapping[str, Any], stack=_host_stack) -> dict[str, Any]:
    """Unscanned params (`layers_0 … layers_{L-1}`) → scanned (`layers`, leading axis L).
    `stack` joins one leaf's L arrays (host numpy by default; `jnp.stack` keeps sharded
    arrays of a multi-host run where they are)."""
    encoder = dict(params["bert"]["encoder"])
    count = sum(1 for k in encoder if k.startswith("layers_"))
    if "layers" in encoder or count == 0:
        return dict(params)
    layers = [encoder.pop(f"layers_{i}") for i in range(count)]
    encoder["layers"] = _map(lambda *xs: stack(list(xs)), *layers)
    return {**params, "bert": {**params["bert"], "encoder": encoder}}


def unstack_layers(params: Mapping[str, Any], take=_host_take) -> dict[str, Any]:
    """Scanned params (`layers`, leading axis L) → unscanned (`layers_0 … layers_{L-1}`).
    `take(array, i)` reads layer i of a leaf (host numpy by default)."""
    encoder = dict(params["bert"]["encoder"])
    if "layers" not in encoder:
        return dict(params)
    stacked = encoder.pop("layers")
    count = len(next(iter(_leaves(stacked))))
    for i in range(count):
        encoder[f"layers_{i}"] = _map(lambda x, i=i: take(x, i), stacked)
    return {**params, "bert": {**params["bert"], "encoder": encoder}}


def _leaves(tree: Any):
    if isinstance(tree, Mapping):
        for value in tree.values():
            yield from _leaves(value)
    else:
        yield tree


# --------------------------------------------------------------------------------------
# Loading


def _read_config(directory: pathlib.Path) -> dict[str, Any]:
    path = directory / CONFIG_FILE
    if not path.is_file():
        raise UserError(f"{path}: not found (expected a Hugging Face checkpoint directory)")
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise UserError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected a JSON object")
    return data


def _read_safetensors(path: pathlib.Path) -> dict[str, np.ndarray]:
    from safetensors.numpy import load_file

    try:
        return load_file(path)
    except Exception as e:  # safetensors raises its own error types for corrupt files
        raise UserError(f"{path}: cannot read safetensors file ({e})") from None


def _read_weights(directory: pathlib.Path) -> tuple[dict[str, np.ndarray], str]:
    """All tensors of the checkpoint, and the file name to blame in messages."""
    single, index = directory / WEIGHTS_FILE, directory / WEIGHTS_INDEX_FILE
    if single.is_file():
        return _read_safetensors(single), str(single)
    if index.is_file():  # sharded checkpoint
        try:
            shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
        except (json.JSONDecodeError, KeyError, AttributeError, TypeError) as e:
            raise UserError(f"{index}: not a safetensors index ({e!r})") from None
        tensors: dict[str, np.ndarray] = {}
        for shard in shards:
            tensors.update(_read_safetensors(directory / shard))
        return tensors, str(index)
    raise UserError(
        f"{single}: not found (only safetensors checkpoints are supported; re-save a "
        "pytorch_model.bin with `save_pretrained(dir, safe_serialization=True)`)"
    )


def _canonical_names(tensors: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """BertForPreTraining names for any of the accepted spellings.

    Bare BertModel files have no `bert.` prefix; checkpoints converted from TensorFlow
    long ago name LayerNorm parameters `gamma`/`beta`.
    """
    bare = not any(k.startswith(("bert.", "cls.")) for k in tensors)
    out = {}
    for name, value in tensors.items():
        if bare:
            name = f"bert.{name}"
        if ".LayerNorm." in name:
            name = name.replace(".gamma", ".weight").replace(".beta", ".bias")
        out[name] = value
    return out


def _check_tied(tensors: Mapping[str, np.ndarray]) -> list[str]:
    problems = []
    for tied, owner in _TIED.items():
        if tied in tensors and owner in tensors:
            a, b = tensors[tied], tensors[owner]
            if a.shape != b.shape or not np.array_equal(a, b):
                problems.append(
                    f"{tied} differs from {owner}; jaxbert ties them and cannot load "
                    "an untied MLM decoder"
                )
    return problems


def _match(table: list[_Tensor], tensors: Mapping[str, np.ndarray], source: str) -> dict[str, Any]:
    """Build the unscanned jaxbert tree, or raise one error listing every problem."""
    used = set(_IGNORED) | set(_TIED)
    problems = _check_tied(tensors)
    params: dict[str, Any] = {}
    for entry in table:
        used.add(entry.hf_name)
        value = tensors.get(entry.hf_name)
        if value is None:
            problems.append(f"missing tensor {entry.hf_name} (shape {list(entry.hf_shape)})")
        elif tuple(value.shape) != entry.hf_shape:
            problems.append(
                f"tensor {entry.hf_name} has shape {list(value.shape)}, "
                f"expected {list(entry.hf_shape)} from {CONFIG_FILE}"
            )
        else:
            array = entry.to_jax(np.asarray(value, dtype=np.float32))
            _set(params, entry.path, np.ascontiguousarray(array))
    problems += [f"unexpected tensor {name}" for name in sorted(set(tensors) - used)]
    if problems:
        raise UserError(f"{source}: " + "; ".join(problems))
    return params


def load_hf_checkpoint(
    path: str | os.PathLike, scan_layers: bool = True
) -> tuple[ml_collections.ConfigDict, dict[str, Any]]:
    """Read a HF BERT checkpoint directory → (jaxbert model config, params).

    Accepts `BertForPreTraining` names (`bert.…`, `cls.predictions.…`,
    `cls.seq_relationship.…`), `BertForMaskedLM`'s, the task heads of `ARCHITECTURES`
    (`classifier.…`, `qa_outputs.…`) and bare `BertModel` names (`embeddings.…`,
    `encoder.…`, `pooler.…`). Without head tensors the returned params hold only `bert`
    (heads left absent, see the module docstring). `params` is the tree under "params"
    (`{"bert": …, "mlm": …, "nsp": …}`), float32 numpy arrays, scanned unless
    `scan_layers=False`; `model_cfg.scan_layers` says which.
    """
    directory = pathlib.Path(path)
    cfg = hf_config_to_model_config(_read_config(directory), str(directory / CONFIG_FILE))
    cfg.scan_layers = bool(scan_layers)
    tensors, source = _read_weights(directory)
    tensors = _canonical_names(tensors)
    table = _encoder_table(cfg)
    if any(k.startswith("cls.seq_relationship.") for k in tensors):
        table += _heads_table(cfg)
    elif any(k.startswith("cls.") for k in tensors):  # BertForMaskedLM
        table += _mlm_table(cfg)
    for name in ("classifier", "qa_outputs"):  # fine-tuned task heads
        if f"{name}.weight" in tensors:
            table += _task_table(name, int(tensors[f"{name}.weight"].shape[0]), cfg)
    params = _match(table, tensors, source)
    return cfg, stack_layers(params) if scan_layers else params


# --------------------------------------------------------------------------------------
# Saving


def _plain_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """Accept `{"params": …}` variables and boxed (logically partitioned) leaves."""
    if set(params) == {"params"}:
        params = params["params"]
    if any(not isinstance(x, np.ndarray | np.generic) for x in _leaves(params)):
        import flax.linen as nn

        params = nn.unbox(params)
    return _map(np.asarray, dict(params))


def architecture(params: Mapping[str, Any], task_kind: str = "") -> str:
    """The transformers class for these params' heads (`ARCHITECTURES`), or a UserError
    saying what cannot be exported and why."""
    heads = tuple(sorted(set(params) - {"bert"}))
    if "bert" not in params:
        raise UserError(
            f"cannot export params with top-level keys {sorted(params)}: no 'bert' encoder"
        )
    if heads == ("classifier",):
        if task_kind not in TASK_KINDS:
            raise UserError(
                "classifier params: say whether they classify sequences or tokens "
                f"(task_kind one of {TASK_KINDS}); exporting a fine-tuning run's directory "
                "reads it from the run's config"
            )
        heads = ("classifier", task_kind)
    if heads not in ARCHITECTURES:
        raise UserError(
            f"cannot export params with top-level keys {sorted(params)}: Hugging Face BERT "
            "classes hold the encoder ('bert') with the pretraining heads ('mlm', 'nsp'), "
            "'mlm' alone, or one task head ('classifier', 'qa_outputs')"
        )
    return ARCHITECTURES[heads]


def _export_table(params: Mapping[str, Any], cfg: Any) -> list[_Tensor]:
    table = _encoder_table(cfg)
    if "nsp" in params:
        return table + _heads_table(cfg)
    if "mlm" in params:
        return table + _mlm_table(cfg)
    for name in ("classifier", "qa_outputs"):
        if name in params:
            kernel = _get(params, (name, "kernel"))
            table += _task_table(name, int(np.shape(kernel)[-1]) if kernel is not None else 0, cfg)
    return table


def _hf_tensors(params: Mapping[str, Any], cfg: Any) -> dict[str, np.ndarray]:
    table = _export_table(params, cfg)
    params = unstack_layers(params)
    tensors: dict[str, np.ndarray] = {}
    for entry in table:
        value = _get(params, entry.path)
        name = "/".join(entry.path)
        if value is None:
            raise UserError(f"params: missing {name} (needed for {entry.hf_name})")
        array = np.ascontiguousarray(entry.to_hf(np.asarray(value, dtype=np.float32)))
        if array.shape != entry.hf_shape:
            raise UserError(
                f"params: {name} has shape {list(np.shape(value))}, which does not fit "
                f"the model config ({entry.hf_name} must be {list(entry.hf_shape)})"
            )
        tensors[entry.hf_name] = array
    if "mlm" in params:  # written out so any loader finds them, tied or not
        for tied, owner in _TIED.items():
            tensors[tied] = tensors[owner].copy()
    return tensors


def _task_config(arch: str, tensors: Mapping[str, np.ndarray], labels) -> dict[str, Any]:
    """id2label/label2id (and regression) for a classifier export; {} for other classes."""
    if "classifier.weight" not in tensors:
        return {}
    n = int(tensors["classifier.weight"].shape[0])
    labels = list(labels) if labels else [f"LABEL_{i}" for i in range(n)]
    if len(labels) != n:
        raise UserError(f"{len(labels)} label names given for a classifier with {n} outputs")
    out: dict[str, Any] = {
        "id2label": {str(i): str(x) for i, x in enumerate(labels)},
        "label2id": {str(x): i for i, x in enumerate(labels)},
    }
    if arch == "BertForSequenceClassification":
        out["problem_type"] = "regression" if n == 1 else "single_label_classification"
    return out


def check_hf_target(path: str | os.PathLike, overwrite: bool = False) -> pathlib.Path:
    """`path` as a directory `save_hf_checkpoint` may write: new, empty, or (with
    `overwrite`) an existing directory — never a file. Callers check before loading."""
    target = pathlib.Path(path)
    if target.exists() and not target.is_dir():
        raise UserError(f"{target}: exists and is not a directory")
    if target.exists() and any(target.iterdir()) and not overwrite:
        raise UserError(
            f"{target}: already exists and is not empty (refusing to overwrite it; "
            "--overwrite / overwrite=True replaces it)"
        )
    return target


def save_hf_checkpoint(
    params: Mapping[str, Any],
    model_cfg: ml_collections.ConfigDict,
    path: str | os.PathLike,
    overwrite: bool = False,
    *,
    task_kind: str = "",
    labels=None,
    tokenizer: str | os.PathLike | None = None,
) -> str:
    """Write jaxbert params as a HF checkpoint directory; returns the transformers class.

    The class follows the params' heads (`architecture`; `task_kind` tells a sequence
    from a token classifier, `labels` name its outputs as id2label). With `tokenizer`,
    its files go along as transformers expects them (tokenizer.json, vocab.txt,
    tokenizer_config.json; a sentencepiece model as tokenizer.model). Everything is
    written into a temporary sibling directory that is renamed into place, so a crash
    never leaves a half-written checkpoint; an existing non-empty `path` is an error
    unless `overwrite=True`.
    """
    from safetensors.numpy import save_file

    target = check_hf_target(path, overwrite)
    hf_config = model_config_to_hf_config(model_cfg)
    params = _plain_params(params)
    arch = architecture(params, task_kind)
    tensors = _hf_tensors(params, model_cfg)
    hf_config["architectures"] = [arch]
    hf_config |= _task_config(arch, tensors, labels)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = pathlib.Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        (tmp / CONFIG_FILE).write_text(json.dumps(hf_config, indent=2, sort_keys=True) + "\n")
        save_file(tensors, tmp / WEIGHTS_FILE, metadata={"format": "pt"})
        if tokenizer is not None:
            from jaxbert.data.tokenizer import export_hf_tokenizer

            export_hf_tokenizer(tokenizer, tmp, int(model_cfg.max_position_embeddings))
        # mkdtemp and safetensors create owner-only files; a checkpoint is meant to be shared.
        for f in tmp.iterdir():
            os.chmod(f, 0o644)
        os.chmod(tmp, 0o755)
        _replace_dir(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return arch


def _replace_dir(new: pathlib.Path, target: pathlib.Path) -> None:
    """Puts `new` at `target` whole (`fs.swap_in_dir`: an atomic exchange where Linux has
    one); an empty `target` directory is simply replaced."""
    from jaxbert import fs

    if target.is_dir() and not any(target.iterdir()):
        target.rmdir()
    fs.swap_in_dir(new, target)
