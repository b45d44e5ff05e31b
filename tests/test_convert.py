"""Hugging Face BERT ⇄ jaxbert conversion (src/jaxbert/convert.py).

The reference numbers come from transformers' PyTorch BERT, computed once by
tests/fixtures/hf_tiny_bert/generate.py; torch and transformers are not imported here.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import re
import shutil
import sys
import types

import flax.linen as nn
import jax
import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from jaxbert import convert
from jaxbert.cli import tools as cli_tools
from jaxbert.errors import UserError
from jaxbert.model.config import model_config
from jaxbert.model.encoder import BertEncoder
from jaxbert.model.heads import (
    BertForPreTraining,
    BertForQuestionAnswering,
    BertForSequenceClassification,
    BertForTokenClassification,
)

FIXTURE = pathlib.Path(__file__).parent / "fixtures" / "hf_tiny_bert"
TOLERANCE = 1e-5
OUTPUTS = ("sequence_output", "pooled_output", "mlm_logits", "nsp_logits")


@pytest.fixture(scope="module")
def inputs() -> dict[str, np.ndarray]:
    return dict(np.load(FIXTURE / "inputs.npz"))


@pytest.fixture(scope="module")
def expected() -> dict[str, np.ndarray]:
    return dict(np.load(FIXTURE / "expected.npz"))


@pytest.fixture(scope="module")
def loaded():
    return convert.load_hf_checkpoint(FIXTURE)


def forward(cfg, params, inputs) -> dict[str, np.ndarray]:
    args = (inputs["input_ids"], inputs["attention_mask"], inputs["token_type_ids"])
    heads = BertForPreTraining(cfg).apply({"params": params}, *args, deterministic=True)
    sequence, pooled = BertEncoder(cfg).apply({"params": params["bert"]}, *args)
    return {
        "sequence_output": np.asarray(sequence),
        "pooled_output": np.asarray(pooled),
        "mlm_logits": np.asarray(heads["mlm_logits"]),
        "nsp_logits": np.asarray(heads["nsp_logits"]),
    }


def max_diffs(outputs, expected) -> dict[str, float]:
    return {k: float(np.max(np.abs(outputs[k] - expected[k]))) for k in OUTPUTS}


def assert_trees_equal(a, b) -> None:
    """Same structure, shapes, dtypes and bits."""
    leaves_a, tree_a = jax.tree_util.tree_flatten(a)
    leaves_b, tree_b = jax.tree_util.tree_flatten(b)
    assert tree_a == tree_b
    for x, y in zip(leaves_a, leaves_b, strict=True):
        assert x.dtype == y.dtype and x.shape == y.shape
        assert np.array_equal(x, y)


def write_checkpoint(directory, tensors, config=None) -> pathlib.Path:
    directory.mkdir(parents=True, exist_ok=True)
    if config is None:
        config = json.loads((FIXTURE / "config.json").read_text())
    (directory / "config.json").write_text(json.dumps(config))
    save_file(tensors, directory / "model.safetensors")
    return directory


def fixture_tensors() -> dict[str, np.ndarray]:
    return dict(load_file(FIXTURE / "model.safetensors"))


# ---------------------------------------------------------------------------- parity


@pytest.mark.parametrize("scan_layers", [True, False], ids=["scanned", "unscanned"])
def test_parity_with_transformers(scan_layers, inputs, expected):
    """jaxbert on the imported fixture reproduces transformers' sequence output, pooled
    output, MLM and NSP logits within 1e-5 (fp32) at every position, padded rows and
    padded positions included, with scanned and unscanned layers."""
    assert inputs["attention_mask"].min() == 0  # the fixture really has padding
    cfg, params = convert.load_hf_checkpoint(FIXTURE, scan_layers=scan_layers)
    assert cfg.scan_layers is scan_layers
    assert ("layers" in params["bert"]["encoder"]) is scan_layers
    diffs = max_diffs(forward(cfg, params, inputs), expected)
    print(f"max abs diff vs transformers (scan_layers={scan_layers}): {diffs}")
    assert all(d <= TOLERANCE for d in diffs.values()), diffs


def test_imported_config_matches_fixture(loaded):
    """config.json maps field by field onto the jaxbert model config."""
    cfg, _ = loaded
    assert (cfg.vocab_size, cfg.hidden_size, cfg.num_layers, cfg.num_heads) == (99, 32, 2, 4)
    assert (cfg.intermediate_size, cfg.max_position_embeddings) == (37, 64)
    assert (cfg.hidden_act, cfg.layer_norm_eps, cfg.dtype) == ("gelu", 1e-12, "float32")
    assert cfg.size == "custom"


def test_stack_and_unstack_layers_are_inverse(loaded):
    """unstack_layers then stack_layers restores the scanned tree bit for bit."""
    _, params = loaded
    unstacked = convert.unstack_layers(params)
    assert sorted(k for k in unstacked["bert"]["encoder"]) == ["layers_0", "layers_1"]
    assert_trees_equal(convert.stack_layers(unstacked), params)


def test_bare_bert_model_names_load_encoder_only(tmp_path, loaded):
    """A BertModel checkpoint (no `bert.` prefix, no `cls.*`) loads the same encoder
    weights and leaves the pretraining heads absent."""
    tensors = {
        k.removeprefix("bert."): v for k, v in fixture_tensors().items() if k.startswith("bert.")
    }
    _, params = convert.load_hf_checkpoint(write_checkpoint(tmp_path / "bare", tensors))
    assert set(params) == {"bert"}
    assert_trees_equal(params["bert"], loaded[1]["bert"])


def test_legacy_layer_norm_names_and_tied_decoder_accepted(tmp_path, loaded):
    """TF-era `LayerNorm.gamma/beta` names, the `position_ids` buffer and an explicit
    (equal) tied decoder weight and bias load to the same params."""
    legacy = {"LayerNorm.weight": "LayerNorm.gamma", "LayerNorm.bias": "LayerNorm.beta"}
    tensors = {}
    for name, value in fixture_tensors().items():
        for new, old in legacy.items():
            name = name.replace(new, old)
        tensors[name] = value
    tensors["bert.embeddings.position_ids"] = np.arange(64, dtype=np.int64)[None]
    tensors["cls.predictions.decoder.weight"] = tensors["bert.embeddings.word_embeddings.weight"]
    tensors["cls.predictions.decoder.bias"] = tensors["cls.predictions.bias"]
    _, params = convert.load_hf_checkpoint(write_checkpoint(tmp_path / "legacy", tensors))
    assert_trees_equal(params, loaded[1])


# ---------------------------------------------------------------------------- export


@pytest.mark.parametrize("scan_layers", [True, False], ids=["scanned", "unscanned"])
def test_export_import_round_trip_is_bitwise(tmp_path, scan_layers):
    """export → import gives identical params (bitwise) and the same model config."""
    cfg, params = convert.load_hf_checkpoint(FIXTURE, scan_layers=scan_layers)
    convert.save_hf_checkpoint(params, cfg, tmp_path / "hf")
    cfg2, params2 = convert.load_hf_checkpoint(tmp_path / "hf", scan_layers=scan_layers)
    assert cfg2.to_dict() == cfg.to_dict()
    assert_trees_equal(params2, params)


def test_exported_files_match_fixture_and_give_same_outputs(tmp_path, loaded, inputs, expected):
    """The exported safetensors holds exactly the fixture's tensors (plus the tied MLM
    decoder, written out for any loader), and loading it back gives transformers'
    outputs within 1e-5."""
    cfg, params = loaded
    convert.save_hf_checkpoint(params, cfg, tmp_path / "hf")
    written = load_file(tmp_path / "hf" / "model.safetensors")
    original = fixture_tensors()
    assert set(written) == set(original) | {
        "cls.predictions.decoder.weight",
        "cls.predictions.decoder.bias",
    }
    for name, value in original.items():
        assert np.array_equal(written[name], value), name
    config = json.loads((tmp_path / "hf" / "config.json").read_text())
    assert config["architectures"] == ["BertForPreTraining"] and config["model_type"] == "bert"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp dirs left
    cfg2, params2 = convert.load_hf_checkpoint(tmp_path / "hf")
    diffs = max_diffs(forward(cfg2, params2, inputs), expected)
    assert all(d <= TOLERANCE for d in diffs.values()), diffs


def test_export_of_freshly_initialised_model_round_trips(tmp_path):
    """A jaxbert-initialised tree ({"params": …} with boxed leaves, relu, no named size)
    exports and re-imports bit for bit: the table covers every param the model creates."""
    cfg = model_config(
        "tiny", vocab_size=50, hidden_size=24, num_heads=3, intermediate_size=40,
        max_position_embeddings=16, type_vocab_size=3, num_layers=3, hidden_act="relu",
    )  # fmt: skip
    ids = np.zeros((1, 4), np.int32)
    variables = BertForPreTraining(cfg).init(jax.random.key(0), ids, ids + 1, ids)
    convert.save_hf_checkpoint(variables, cfg, tmp_path / "hf")
    cfg2, params2 = convert.load_hf_checkpoint(tmp_path / "hf")
    assert (cfg2.hidden_act, cfg2.type_vocab_size, cfg2.num_layers) == ("relu", 3, 3)
    expected = jax.tree_util.tree_map(np.asarray, nn.unbox(variables))
    assert_trees_equal(params2, expected["params"])


def test_encoder_only_export_round_trips(tmp_path, loaded):
    """Params without heads export as an encoder-only checkpoint and import unchanged."""
    cfg, params = loaded
    convert.save_hf_checkpoint({"bert": params["bert"]}, cfg, tmp_path / "hf")
    assert not any(k.startswith("cls.") for k in load_file(tmp_path / "hf" / "model.safetensors"))
    _, params2 = convert.load_hf_checkpoint(tmp_path / "hf")
    assert_trees_equal(params2, {"bert": params["bert"]})


def test_export_refuses_to_overwrite_unless_asked(tmp_path, loaded):
    """An existing non-empty destination is never silently replaced; overwrite=True
    replaces it whole."""
    cfg, params = loaded
    target = tmp_path / "hf"
    target.mkdir()
    (target / "keep.txt").write_text("precious")
    with pytest.raises(UserError, match="already exists"):
        convert.save_hf_checkpoint(params, cfg, target)
    assert (target / "keep.txt").read_text() == "precious"
    convert.save_hf_checkpoint(params, cfg, target, overwrite=True)
    assert sorted(p.name for p in target.iterdir()) == ["config.json", "model.safetensors"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hf"]


def test_export_rejects_what_hf_bert_cannot_hold(tmp_path, loaded):
    """Pre-LN models and task heads other than MLM/NSP are errors, not silent losses."""
    cfg, params = loaded
    with pytest.raises(UserError, match="classifier"):
        convert.save_hf_checkpoint({**params, "classifier": {}}, cfg, tmp_path / "a")
    pre_ln = cfg.copy_and_resolve_references()
    pre_ln.pre_layer_norm = True
    with pytest.raises(UserError, match="pre_layer_norm"):
        convert.save_hf_checkpoint(params, pre_ln, tmp_path / "b")
    assert not list(tmp_path.iterdir())


def test_config_round_trip(loaded):
    """model config → HF config.json dict → model config is the identity."""
    cfg, _ = loaded
    for act in ("gelu", "gelu_tanh", "relu"):
        cfg = cfg.copy_and_resolve_references()
        cfg.hidden_act = act
        back = convert.hf_config_to_model_config(convert.model_config_to_hf_config(cfg))
        assert back.to_dict() == cfg.to_dict()


# ---------------------------------------------------------------------------- errors


def test_missing_tensor_is_named(tmp_path):
    """A missing tensor is a UserError naming the safetensors file and the tensor."""
    tensors = fixture_tensors()
    del tensors["bert.encoder.layer.1.output.dense.bias"]
    path = write_checkpoint(tmp_path / "ckpt", tensors)
    with pytest.raises(UserError) as e:
        convert.load_hf_checkpoint(path)
    assert "model.safetensors" in str(e.value)
    assert "missing tensor bert.encoder.layer.1.output.dense.bias" in str(e.value)


def test_wrong_shape_and_unexpected_tensor_are_named_together(tmp_path):
    """A wrongly shaped and an unexpected tensor are reported in one UserError naming
    the file and both tensors."""
    tensors = fixture_tensors()
    tensors["bert.encoder.layer.0.intermediate.dense.weight"] = np.zeros((36, 32), np.float32)
    tensors["bert.extra.weight"] = np.zeros((2, 32), np.float32)
    path = write_checkpoint(tmp_path / "ckpt", tensors)
    with pytest.raises(UserError) as e:
        convert.load_hf_checkpoint(path)
    message = str(e.value)
    assert "model.safetensors" in message
    assert "bert.encoder.layer.0.intermediate.dense.weight has shape [36, 32]" in message
    assert "expected [37, 32]" in message
    assert "unexpected tensor bert.extra.weight" in message


def test_untied_decoder_is_rejected(tmp_path):
    """A decoder weight that differs from the word embeddings cannot be loaded into a
    tied model and is an error naming both tensors."""
    tensors = fixture_tensors()
    tensors["cls.predictions.decoder.weight"] = (
        tensors["bert.embeddings.word_embeddings.weight"] + 1.0
    )
    with pytest.raises(UserError, match="cls.predictions.decoder.weight differs from"):
        convert.load_hf_checkpoint(write_checkpoint(tmp_path / "ckpt", tensors))


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("position_embedding_type", "relative_key", "position_embedding_type"),
        ("hidden_act", "swish", "hidden_act"),
        ("model_type", "roberta", "model_type"),
        ("is_decoder", True, "is_decoder"),
        ("hidden_size", "32", "hidden_size must be int"),
        ("num_attention_heads", 5, "not divisible"),
        ("num_hidden_layers", None, "missing required key 'num_hidden_layers'"),
    ],
)
def test_bad_config_key_is_named(tmp_path, key, value, message):
    """Unsupported or malformed config.json entries are UserErrors naming config.json
    and the key."""
    config = json.loads((FIXTURE / "config.json").read_text())
    if value is None:
        del config[key]
    else:
        config[key] = value
    path = write_checkpoint(tmp_path / "ckpt", fixture_tensors(), config)
    with pytest.raises(UserError) as e:
        convert.load_hf_checkpoint(path)
    assert "config.json" in str(e.value)
    assert message in str(e.value)


def test_missing_files_are_named(tmp_path):
    """A directory without config.json, or without model.safetensors, is a UserError
    naming the missing file."""
    with pytest.raises(UserError, match="config.json: not found"):
        convert.load_hf_checkpoint(tmp_path)
    shutil.copy(FIXTURE / "config.json", tmp_path / "config.json")
    with pytest.raises(UserError, match="model.safetensors: not found"):
        convert.load_hf_checkpoint(tmp_path)
    (tmp_path / "model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(UserError, match="cannot read safetensors"):
        convert.load_hf_checkpoint(tmp_path)


# ---------------------------------------------------------------------------- CLI


def test_cli_converts_both_ways(tmp_path, monkeypatch, loaded):
    """`convert hf-to-jaxbert` then `convert jaxbert-to-hf` reproduces the fixture's
    tensors; the checkpoint module is stubbed so this checks only the wiring."""
    store = {}
    stub = types.ModuleType("jaxbert.checkpoint")
    stub.save_params = lambda path, params, cfg: store.__setitem__(str(path), (cfg, params))
    stub.load_params = lambda path: store[str(path)]
    stub.step_dirs = lambda path: []  # no run config to find beside the stored params
    monkeypatch.setitem(sys.modules, "jaxbert.checkpoint", stub)
    parser = argparse.ArgumentParser()
    cli_tools.add_parsers(parser.add_subparsers(dest="command"))
    for argv in (
        ["convert", "hf-to-jaxbert", str(FIXTURE), str(tmp_path / "jb")],
        ["convert", "jaxbert-to-hf", str(tmp_path / "jb"), str(tmp_path / "hf")],
    ):
        args = parser.parse_args(argv)
        assert args.func(args) == 0
    assert_trees_equal(store[str(tmp_path / "jb")][1], loaded[1])
    written = load_file(tmp_path / "hf" / "model.safetensors")
    for name, value in fixture_tensors().items():
        assert np.array_equal(written[name], value), name


# ------------------------------------------------- export of every kind of run

TASK_MODELS = {
    "BertForMaskedLM": lambda cfg: BertForPreTraining(cfg, nsp=False),
    "BertForSequenceClassification": lambda cfg: BertForSequenceClassification(cfg, 3),
    "BertForTokenClassification": lambda cfg: BertForTokenClassification(cfg, 9),
    "BertForQuestionAnswering": lambda cfg: BertForQuestionAnswering(cfg),
}
TASK_KIND = {"BertForSequenceClassification": "sequence", "BertForTokenClassification": "token"}


def _tiny_task_model(arch):
    cfg = model_config("tiny", vocab_size=40, hidden_size=16, num_heads=2, intermediate_size=24,
                       max_position_embeddings=16, num_layers=2)  # fmt: skip
    model = TASK_MODELS[arch](cfg)
    ids = np.array([[2, 7, 9, 11, 3, 0], [2, 5, 3, 8, 12, 3]], np.int32)
    mask, seg = (ids > 0).astype(np.int32), np.zeros_like(ids)
    params = nn.unbox(model.init(jax.random.key(1), ids, mask, seg))["params"]
    params = jax.tree_util.tree_map(lambda x: np.asarray(x) + 0.01, params)  # no zero biases
    return cfg, model, params, (ids, mask, seg)


@pytest.mark.parametrize("arch", list(TASK_MODELS))
def test_every_run_kind_exports_as_its_class_and_reloads_with_the_same_logits(tmp_path, arch):
    """MLM-only pretraining and fine-tuned classifier / tagger / span-QA params export as
    the matching transformers class (config.architectures, id2label for classifiers) and,
    read back from the files, give the same logits within 1e-5."""
    cfg, model, params, args = _tiny_task_model(arch)
    labels = [f"L{i}" for i in range(9)] if arch == "BertForTokenClassification" else None
    got = convert.save_hf_checkpoint(params, cfg, tmp_path / "hf", task_kind=TASK_KIND.get(arch, ""),
                                     labels=labels)  # fmt: skip
    config = json.loads((tmp_path / "hf" / "config.json").read_text())
    assert got == arch and config["architectures"] == [arch]
    if arch == "BertForTokenClassification":
        assert config["id2label"]["8"] == "L8" and config["label2id"]["L0"] == 0
    if arch == "BertForSequenceClassification":
        assert config["id2label"] == {"0": "LABEL_0", "1": "LABEL_1", "2": "LABEL_2"}
    _, params2 = convert.load_hf_checkpoint(tmp_path / "hf")
    before = model.apply({"params": params}, *args)
    after = model.apply({"params": params2}, *args)
    for a, b in zip(
        jax.tree_util.tree_leaves(before), jax.tree_util.tree_leaves(after), strict=True
    ):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-5, rtol=0)


def test_a_classifier_without_its_task_kind_is_refused(tmp_path):
    """Sequence and token classifiers have the same tensors: exporting one without saying
    which is an error, not a guess."""
    cfg, _, params, _ = _tiny_task_model("BertForSequenceClassification")
    with pytest.raises(UserError, match="classify sequences or tokens"):
        convert.save_hf_checkpoint(params, cfg, tmp_path / "hf")
    assert not list(tmp_path.iterdir())


def _finetune_run(tmp_path, task="mrpc", **config):
    """A directory laid out as `jaxbert finetune` leaves it: config.json, best_params/
    with the tokenizer (a tokenizer.json made in the test) beside the params."""
    from jaxbert.checkpoint import save_params
    from tests.fixtures.hf_tokenizer import make as hf_make

    arch = "BertForTokenClassification" if task == "conll2003" else "BertForSequenceClassification"
    cfg, model, params, args = _tiny_task_model(arch)
    if task == "mrpc":
        params["classifier"] = {k: v[..., :2] for k, v in params["classifier"].items()}
        model = BertForSequenceClassification(cfg, 2)
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"task": task, "mode": "full", **config}))
    save_params(run / "best_params", params, cfg)
    hf_make.tokenizer_json(run / "best_params" / "tokenizer", lowercase=True)
    return run, model, params, args


def test_cli_exports_a_finetuning_run_with_labels_and_tokenizer(tmp_path, capsys):
    """`convert jaxbert-to-hf RUN` on a fine-tuning run: the class and id2label from the
    run's task, the tokenizer as transformers expects it (tokenizer.json, vocab.txt,
    tokenizer_config.json) encoding as jaxbert does, and the same logits."""
    from tokenizers import Tokenizer as HF

    from jaxbert import cli
    from jaxbert.data.tokenizer import load_tokenizer

    run, model, params, args = _finetune_run(tmp_path)
    assert cli.main(["convert", "jaxbert-to-hf", str(run), str(tmp_path / "hf")]) == 0
    assert "BertForSequenceClassification" in capsys.readouterr().out
    hf = tmp_path / "hf"
    config = json.loads((hf / "config.json").read_text())
    assert config["id2label"] == {"0": "0", "1": "1"}
    names = {p.name for p in hf.iterdir()}
    assert {"tokenizer.json", "vocab.txt", "tokenizer_config.json"} <= names
    assert json.loads((hf / "tokenizer_config.json").read_text())["do_lower_case"] is True
    text = "The Cat sat on the mat, unaffable!"
    ours = load_tokenizer(run / "best_params" / "tokenizer").encode(text)
    assert (
        HF.from_file(str(hf / "tokenizer.json")).encode(text, add_special_tokens=False).ids == ours
    )
    assert load_tokenizer(hf / "vocab.txt").encode(text) == ours  # the slow tokenizer's file
    _, params2 = convert.load_hf_checkpoint(hf)
    np.testing.assert_allclose(model.apply({"params": params2}, *args),
                               model.apply({"params": params}, *args), atol=1e-5)  # fmt: skip


@pytest.mark.parametrize(
    ("config", "message"),
    [({"pooling": "mean"}, "pooling=mean: transformers' BertForSequenceClassification"),
     ({"mode": "feature"}, "mode=feature .* has no Hugging Face class")],
)  # fmt: skip
def test_cli_refuses_runs_transformers_cannot_hold(tmp_path, capsys, config, message):
    from jaxbert import cli

    run, *_ = _finetune_run(tmp_path, **config)
    assert cli.main(["convert", "jaxbert-to-hf", str(run), str(tmp_path / "hf")]) == 2
    err = capsys.readouterr().err
    assert re.search(message, err) and "Traceback" not in err
    assert not (tmp_path / "hf").exists()


def test_bf16_and_sharded_checkpoints_load(tmp_path, loaded):
    """bf16 weights (as many Hub models ship) load as float32 of the same values, and a
    sharded model.safetensors.index.json gives the same params as one file."""
    import ml_dtypes

    tensors = fixture_tensors()
    half = {k: v.astype(ml_dtypes.bfloat16) for k, v in tensors.items()}
    _, params = convert.load_hf_checkpoint(write_checkpoint(tmp_path / "bf16", half))
    assert_trees_equal(params, convert.load_hf_checkpoint(write_checkpoint(
        tmp_path / "ref", {k: v.astype(np.float32) for k, v in half.items()}))[1])  # fmt: skip
    shard = tmp_path / "sharded"
    shard.mkdir()
    shutil.copy(FIXTURE / "config.json", shard / "config.json")
    names = sorted(tensors)
    weight_map = {}
    for i, part in enumerate((names[: len(names) // 2], names[len(names) // 2 :])):
        save_file({k: tensors[k] for k in part}, shard / f"model-{i}.safetensors")
        weight_map |= {k: f"model-{i}.safetensors" for k in part}
    (shard / "model.safetensors.index.json").write_text(json.dumps({"weight_map": weight_map}))
    assert_trees_equal(convert.load_hf_checkpoint(shard)[1], loaded[1])
