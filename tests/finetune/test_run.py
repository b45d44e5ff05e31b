"""The fine-tuning loop: files it writes, padding, losses, feature mode, data parallelism.

A micro model (1 layer, hidden 32) from scratch on the tiny files in
tests/fixtures/finetune, tokenized with tests/fixtures/finetune/vocab.txt (a WordPiece
vocabulary of the fixtures' words plus single characters, written for these tests).
"""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import linen as nn

from jaxbert import cli, sharding
from jaxbert.checkpoint import load_params, save_params
from jaxbert.config import load_config
from jaxbert.data.tokenizer import load_tokenizer
from jaxbert.errors import UserError
from jaxbert.finetune import build, outputs, run
from jaxbert.finetune.data import load_task_data
from jaxbert.finetune.step import FinetuneSteps, build_model, loss_sums, make_optimizer
from jaxbert.finetune.tasks import ner
from jaxbert.model.heads import BertEmbedder
from jaxbert.pretrained import Pretrained, load_pretrained
from jaxbert.train import optim, runtime
from tests.conftest import REPO, micro_model_config

FIXTURES = REPO / "tests" / "fixtures" / "finetune"
VOCAB = FIXTURES / "vocab.txt"
CONFIGS = REPO / "configs" / "finetune"
MICRO = dict(num_layers=1, scan_layers=False, attention_dropout=0.0)


def overrides(tmp_path, **extra) -> list[str]:
    values = {
        "init": "scratch",
        "tokenizer": str(VOCAB),
        "data_dir": str(FIXTURES),
        "output_dir": str(tmp_path / "run"),
        "batch_size": 8,
        "max_seq_length": 32,
        "num_epochs": 1,
        "log_every": 1,
        "model.hidden_size": 32,
        "model.num_heads": 4,
        "model.intermediate_size": 64,
        "model.max_position_embeddings": 64,
        **{f"model.{k}": v for k, v in MICRO.items()},
        **extra,
    }
    return [f"--config.{k}={v}" for k, v in values.items()]


def save_micro_checkpoint(path):
    """A standalone params dir (as `save_params` writes) of a random micro encoder."""
    model_cfg = micro_model_config(vocab_size=472, **MICRO)
    z = jnp.zeros((1, 8), jnp.int32)
    params = nn.unbox(BertEmbedder(model_cfg).init(jax.random.key(3), z, z, z)["params"])
    params = jax.tree.map(np.asarray, params)
    save_params(path, params, model_cfg)
    return params


def test_cli_feature_mode_run_writes_metrics_predictions_and_config(tmp_path, capsys):
    """`jaxbert finetune` on STS-B (regression), mode=feature, init from a jaxbert params
    dir: metrics.json with the dev correlations; dev and test predictions in the GLUE
    leaderboard format (index<TAB>score with 3 decimals, file order); the resolved config;
    the best params with a copy of the tokenizer, whose encoder is bit-identical to the
    checkpoint's (frozen) while the head was trained."""
    params = save_micro_checkpoint(tmp_path / "ckpt")
    argv = [
        "finetune",
        "--config",
        f"{CONFIGS / 'glue.py'}:stsb",
        *overrides(
            tmp_path,
            init=str(tmp_path / "ckpt"),
            mode="feature",
            **{"optimizer.learning_rate": 1e-2},
        ),
    ]
    assert cli.main(argv) == 0
    out = tmp_path / "run"
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["task"] == "stsb" and metrics["metric"] == "spearman"
    assert set(metrics["dev"]) == {"loss", "pearson", "spearman", "corr"}
    assert [h["epoch"] for h in metrics["history"]] == [1] and metrics["best_epoch"] == 1
    for split, n in (("dev", 1), ("test", 2)):
        lines = (out / "predictions" / split / "STS-B.tsv").read_text().splitlines()
        assert lines[0] == "index\tprediction" and len(lines) == n + 1
        assert all(len(x.split("\t")[1].split(".")[1]) == 3 for x in lines[1:])
    assert [x.split("\t")[0] for x in lines[1:]] == ["0", "1"]
    config = json.loads((out / "config.json").read_text())
    assert config["mode"] == "feature" and config["resolved"]["model"]["vocab_size"] == 472
    assert "dev: pearson" in capsys.readouterr().out
    pre = load_pretrained(str(out / "best_params"))  # finds its own copy of the tokenizer
    assert load_tokenizer(pre.tokenizer_path).vocab_size == 472
    same = jax.tree.map(np.array_equal, pre.bert_params, params["bert"])
    assert all(jax.tree.leaves(same))
    _, saved = load_params(out / "best_params")
    assert set(saved) == {"bert", "classifier"}


def test_scratch_init_takes_the_vocabulary_from_the_tokenizer(tmp_path):
    """init=scratch: the configured size with vocab_size = the tokenizer's; it needs a
    tokenizer."""
    pre, tok = run.resolve_model(load_config(f"{CONFIGS / 'glue.py'}:sst2", overrides(tmp_path)))
    assert pre.bert_params is None and pre.model_cfg.vocab_size == tok.vocab_size == 472
    assert pre.model_cfg.hidden_size == 32
    with pytest.raises(UserError, match="config.tokenizer"):
        run.resolve_model(
            load_config(f"{CONFIGS / 'glue.py'}:sst2", overrides(tmp_path, tokenizer=""))
        )


def test_feature_mode_optimizer_freezes_only_bert():
    """optax multi_transform: zero updates for params['bert'], AdamW for the head."""
    params = {"bert": {"w": jnp.ones((2, 2))}, "classifier": {"kernel": jnp.ones((2, 2))}}
    grads = jax.tree.map(jnp.ones_like, params)
    opt = optim.optimizer_defaults()
    opt.warmup_steps = 0
    tx = make_optimizer(opt, 10, "feature")
    updates, _ = tx.update(grads, tx.init(params), params)
    assert float(jnp.abs(updates["bert"]["w"]).max()) == 0.0
    assert float(jnp.abs(updates["classifier"]["kernel"]).min()) > 0.0


def test_data_parallel_step_matches_one_device():
    """The same token-classification steps (dropout on, a weight-0 padding row) give the
    same losses on an 8-device data-parallel mesh as on one device."""
    model_cfg = micro_model_config(**MICRO)
    model = build_model("token", model_cfg, 9)
    rng = np.random.default_rng(0)
    batch = {
        "input_ids": rng.integers(5, 128, (8, 16)).astype(np.int32),
        "input_mask": (np.arange(16)[None] < rng.integers(4, 17, (8, 1))).astype(np.int32),
        "segment_ids": np.zeros((8, 16), np.int32),
        "labels": rng.integers(0, 9, (8, 16)).astype(np.int32),
        "label_weights": (rng.random((8, 16)) < 0.5).astype(np.float32),
        "weight": np.array([1, 1, 1, 1, 1, 1, 1, 0], np.float32),
    }
    opt = optim.optimizer_defaults()
    opt.learning_rate, opt.warmup_steps = 1e-3, 0
    losses, initial = {}, None
    for n in (1, 8):
        mesh = sharding.create_mesh({"data": n, "fsdp": 1, "tensor": 1}, jax.devices()[:n])
        tx, schedule = make_optimizer(opt, 4, "full"), optim.learning_rate_schedule(opt, 4)
        steps = FinetuneSteps(model, tx, schedule, "token", mesh, batch)
        if initial is None:
            initial = jax.device_get(steps.init_state(jax.random.key(0)))
        # The same initial state re-sharded (one init compilation for both meshes).
        state = jax.device_put(initial, steps.state_shardings)
        losses[n] = []
        for _ in range(3):
            state, m = steps.train(state, sharding.global_batch(batch, mesh), jax.random.key(1))
            losses[n].append(float(m["loss"]))
    assert jax.device_count() == 8
    np.testing.assert_allclose(losses[8], losses[1], rtol=2e-5)
    assert losses[1][2] < losses[1][0]


def test_loss_sums_by_kind_ignore_padding_rows():
    """Hand-computed sums: uniform logits give log(L) per example/token; weight-0 rows
    add nothing; span loss is the mean of start and end cross-entropies."""
    w = jnp.array([1.0, 1.0, 0.0])
    total, count = loss_sums(
        "classification",
        {"logits": jnp.zeros((3, 4))},
        {"label": jnp.array([0, 3, 1]), "weight": w},
    )
    assert np.isclose(total, 2 * np.log(4)) and count == 2
    total, count = loss_sums(
        "regression",
        {"logits": jnp.array([[1.0], [2.0], [9.0]])},
        {"label": jnp.array([0.0, 4.0, 0.0]), "weight": w},
    )
    assert np.isclose(total, 1 + 4) and count == 2
    tw = jnp.array([[1.0, 0.0], [1.0, 1.0], [1.0, 1.0]])
    total, count = loss_sums(
        "token",
        {"logits": jnp.zeros((3, 2, 9))},
        {"labels": jnp.zeros((3, 2), jnp.int32), "label_weights": tw, "weight": w},
    )
    assert np.isclose(total, 3 * np.log(9)) and count == 3
    span = {"start_logits": jnp.zeros((3, 5)), "end_logits": jnp.zeros((3, 5))}
    pos = jnp.array([1, 2, 3])
    total, count = loss_sums(
        "span", span, {"start_positions": pos, "end_positions": pos, "weight": w}
    )
    assert np.isclose(total, 2 * np.log(5)) and count == 2


def test_padded_batches_cover_every_row_once_with_fixed_shape():
    """10 rows, batch 4: 3 batches of 4; the last has 2 real rows (weight 1) and 2
    weight-0 copies of real rows; the epoch order is seeded and differs per epoch."""
    feats = {"input_ids": np.arange(10)[:, None].repeat(3, 1), "label": np.arange(10)}
    order = run.epoch_order(10, seed=0, epoch=1)
    batches = list(run.padded_batches(feats, order, 4))
    assert [b["input_ids"].shape for b in batches] == [(4, 3)] * 3
    assert batches[-1]["weight"].tolist() == [1, 1, 0, 0]
    seen = np.concatenate([b["label"][b["weight"] > 0] for b in batches])
    assert sorted(seen.tolist()) == list(range(10))
    assert np.array_equal(order, run.epoch_order(10, 0, 1))
    assert not np.array_equal(order, run.epoch_order(10, 0, 2))


def test_ner_and_squad_splits_score_and_write_oracle_predictions(tmp_path):
    """With gold labels as predictions: NER entity F1 = 1 and a `word gold pred` file;
    SQuAD predictions JSON {question id: answer text} scoring ≥ 90 EM."""
    tok = load_tokenizer(VOCAB)
    cfg = load_config(
        str(CONFIGS / "ner.py"),
        overrides(
            tmp_path,
            **{
                "ner.train_file": "eng.sample",
                "ner.dev_file": "eng.sample",
                "ner.test_file": "eng.sample",
            },
        ),
    )
    data = load_task_data(cfg, tok)
    dev = data.dev[0]
    answers = dev.decode({"tags": dev.features["labels"]})
    assert dev.score(answers)["f1"] == 1.0
    (path,) = dev.write(answers, tmp_path / "pred")
    sentences = path.read_text().strip().split("\n\n")
    assert all(len(set(line.split()[1:])) == 1 for s in sentences for line in s.splitlines())
    assert (
        len(sentences) == len(ner.read_conll(FIXTURES / "conll2003" / "eng.sample"))
        and data.kind == "token"
        and len(data.test) == 1
    )

    cfg = load_config(
        str(CONFIGS / "squad.py"),
        overrides(
            tmp_path,
            max_seq_length=64,
            **{
                "squad.file": "sample-v1.1.json",
                "squad.doc_stride": 32,
                "squad.eval_fraction": 0.5,
            },
        ),
    )
    data = load_task_data(cfg, tok)
    dev = data.dev[0]
    n, s = dev.features["input_ids"].shape
    onehot = lambda p: np.where(np.arange(s)[None] == p[:, None], 10.0, 0.0)  # noqa: E731
    preds = {
        "start_logits": onehot(dev.features["start_positions"]),
        "end_logits": onehot(dev.features["end_positions"]),
    }
    decoded = dev.decode(preds)
    assert dev.score(decoded)["exact_match"] >= 90.0
    (path,) = dev.write(decoded, tmp_path / "pred")
    answers = json.loads(path.read_text())
    assert answers and all(isinstance(k, str) and isinstance(v, str) for k, v in answers.items())


def test_missing_data_dir_says_where_to_put_the_data(tmp_path, capsys):
    """No traceback: one message naming the expected layout and the TFDS alternative."""
    argv = [
        "finetune",
        "--config",
        f"{CONFIGS / 'glue.py'}:sst2",
        *overrides(tmp_path, data_dir=str(tmp_path / "nowhere")),
    ]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert "nowhere" in err and "glue/<TASK>" in err and "squad/dev-v1.1.json" in err
    assert "--config.source=tfds" in err


def test_bad_inputs_are_user_errors(tmp_path):
    """Existing results are not overwritten; a missing init or unknown task names the key."""
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "metrics.json").write_text("{}")
    with pytest.raises(UserError, match="already holds a fine-tuning run"):
        run.finetune(load_config(f"{CONFIGS / 'glue.py'}:sst2", overrides(tmp_path)))
    cfg = load_config(
        f"{CONFIGS / 'glue.py'}:sst2",
        overrides(tmp_path, init=str(tmp_path / "no_ckpt"), output_dir=str(tmp_path / "b")),
    )
    with pytest.raises(UserError, match="config.init"):
        run.finetune(cfg)
    with pytest.raises(UserError, match="unknown GLUE task"):
        load_config(f"{CONFIGS / 'glue.py'}:sst3")


BAD_VALUES = [
    ("glue.py:sst2", "optimizer.learning_rate", "0.0"),
    ("glue.py:sst2", "optimizer.learning_rate", "-1e-5"),
    ("glue.py:sst2", "optimizer.warmup_steps", "-2"),
    ("glue.py:sst2", "optimizer.weight_decay", "-0.1"),
    ("glue.py:sst2", "optimizer.clip_norm", "-1.0"),
    ("glue.py:sst2", "optimizer.b2", "1.0"),
    ("glue.py:sst2", "optimizer.name", "sgd"),
    ("glue.py:sst2", "warmup_fraction", "1.5"),
    ("glue.py:sst2", "batch_size", "0"),
    ("glue.py:sst2", "eval_batch_size", "-8"),
    ("glue.py:sst2", "num_epochs", "0"),
    ("glue.py:sst2", "max_seq_length", "0"),
    ("glue.py:sst2", "checkpoint_every_steps", "-1"),
    ("glue.py:sst2", "max_train_examples", "-5"),
    ("glue.py:sst2", "max_eval_examples", "-5"),
    ("glue.py:sst2", "seed", "-1"),
    ("glue.py:sst2", "log_every", "0"),
    ("glue.py:sst2", "mode", "partial"),
    ("glue.py:sst2", "pooling", "max"),
    ("ner.py", "pooling", "mean"),  # a tagger has no sentence to pool
    ("ner.py", "ner.train_file", ""),
    ("squad.py", "squad.doc_stride", "0"),
    ("squad.py", "squad.max_query_length", "0"),
    ("squad.py", "squad.max_query_length", "29"),  # max_seq_length 32: no room for a doc
    ("squad.py", "squad.n_best_size", "0"),
    ("squad.py", "squad.max_answer_length", "0"),
    ("squad.py", "squad.eval_fraction", "1.0"),
]


@pytest.mark.parametrize(("config", "key", "value"), BAD_VALUES)
def test_out_of_range_values_name_the_key_before_anything_is_written(tmp_path, config, key, value):
    """Each numeric key's range (and each choice key's values) is checked first: one
    UserError naming config.KEY, and output_dir is not even created."""
    cfg = load_config(str(CONFIGS / config), overrides(tmp_path, **{key: value}))
    with pytest.raises(UserError, match=rf"config\.{key}\b"):
        run.finetune(cfg)
    assert not (tmp_path / "run").exists()


def test_optimizer_block_is_pretrainings_with_a_fractional_warmup():
    """cfg.optimizer has exactly pretraining's keys; warmup_steps=-1 (the default) means
    warmup_fraction × the run's steps, and a warmup_steps >= 0 is taken as given."""
    cfg = load_config(f"{CONFIGS / 'glue.py'}:rte")
    assert set(cfg.optimizer) == set(optim.optimizer_defaults())
    assert cfg.optimizer.learning_rate == 5e-5 and cfg.optimizer.warmup_steps == -1
    assert run.warmup_steps(cfg, 1000) == 100
    cfg = load_config(f"{CONFIGS / 'glue.py'}:rte", ["--config.optimizer.warmup_steps=7"])
    assert run.warmup_steps(cfg, 1000) == 7


def fake_checkpoint(run_dir, cfg, step: int = 3):
    """A checkpoint directory as far as check_output_dir reads one: its saved config."""
    meta = run_dir / "checkpoints" / str(step) / "config" / "metadata"
    meta.parent.mkdir(parents=True)
    meta.write_text(json.dumps(cfg.to_dict()))


def test_unfinished_run_resumes_only_with_the_same_training_config(tmp_path):
    """A dir with a checkpoint (and a stale metrics.json) is an unfinished run: the same
    config resumes, a changed log_every or output-only key still resumes, changed
    training keys are one UserError naming each with both values, and overwrite=true
    starts over instead."""
    spec = f"{CONFIGS / 'glue.py'}:sst2"
    cfg = load_config(spec, overrides(tmp_path))
    fake_checkpoint(tmp_path / "run", cfg)
    (tmp_path / "run" / "metrics.json").write_text("{}")
    assert run.check_output_dir(cfg) == "resume"
    same = load_config(spec, overrides(tmp_path, log_every=9, save_best=False))
    assert run.check_output_dir(same) == "resume"
    changed = overrides(tmp_path, num_epochs=2, **{"model.hidden_size": 64})
    with pytest.raises(UserError) as e:
        run.check_output_dir(load_config(spec, changed))
    assert "config.model.hidden_size: 32 → 64" in str(e.value)
    assert "config.num_epochs: 1 → 2" in str(e.value)
    assert "overwrite=true" in str(e.value)
    restart = load_config(spec, [*changed, "--config.overwrite=true"])
    assert run.check_output_dir(restart) == "restart"


def test_best_params_survive_a_crash_between_writing_and_renaming(tmp_path, monkeypatch):
    """_save_best writes the new params beside the old, then renames them over: a crash
    after the new ones are written leaves the old best_params complete (params, config,
    tokenizer); the next save replaces it and leaves no .new/.old directory behind."""
    pre = Pretrained(micro_model_config(**MICRO), None, VOCAB, "test")
    old, new = {"w": np.zeros((2, 3), np.float32)}, {"w": np.ones((2, 3), np.float32)}
    outputs.save_best(old, pre, tmp_path)

    def crash(point, step):
        if point == "best_params":
            raise RuntimeError("simulated crash")

    monkeypatch.setattr(runtime, "FAULT_HOOK", crash)
    with pytest.raises(RuntimeError, match="simulated crash"):
        outputs.save_best(new, pre, tmp_path)
    _, saved = load_params(tmp_path / "best_params")
    assert np.array_equal(saved["w"], old["w"])
    assert (tmp_path / "best_params" / "tokenizer" / "vocab.txt").is_file()
    monkeypatch.setattr(runtime, "FAULT_HOOK", None)
    outputs.save_best(new, pre, tmp_path)
    _, saved = load_params(tmp_path / "best_params")
    assert np.array_equal(saved["w"], new["w"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best_params"]


def test_json_outputs_are_replaced_atomically(tmp_path):
    """config.json/metrics.json go to a temp file beside and are renamed over: a failed
    write leaves the old file whole and no temp file behind a successful one."""
    path = tmp_path / "metrics.json"
    outputs.write_json(path, {"a": 1})
    with pytest.raises(TypeError):
        outputs.write_json(path, {"a": object()})
    assert json.loads(path.read_text()) == {"a": 1}
    outputs.write_json(path, {"a": 2})
    assert json.loads(path.read_text()) == {"a": 2}
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]


def test_an_mlm_only_checkpoint_gets_a_pooling_hint_for_sentence_tasks(tmp_path):
    """A jaxbert run pretrained with data.objective=mlm is recognised as such (its run
    config.json), and a GLUE run from it with pooling=cls is told that the pooler never
    trained; a tagger, pooling=mean, or an NSP checkpoint get no such note."""
    save_micro_checkpoint(tmp_path / "ckpt")
    (tmp_path / "ckpt" / "config.json").write_text(json.dumps({"data": {"objective": "mlm"}}))
    pre = load_pretrained(str(tmp_path / "ckpt"), str(VOCAB))
    assert pre.objective == "mlm"
    cfg = load_config(str(CONFIGS / "glue.py") + ":sst2", overrides(tmp_path))
    notes = []
    build._pooling_hint(cfg, pre, "classification", notes.append)
    assert len(notes) == 1 and "--config.pooling=mean" in notes[0]
    build._pooling_hint(cfg, pre, "token", notes.append)
    cfg.pooling = "mean"
    build._pooling_hint(cfg, pre, "classification", notes.append)
    pre.objective = "mlm_nsp"
    cfg.pooling = "cls"
    build._pooling_hint(cfg, pre, "regression", notes.append)
    assert len(notes) == 1


def test_unrolled_and_scanned_layers_train_alike_and_save_the_checkpoints_layout(tmp_path):
    """config.scan_layers only changes how the encoder is compiled: from a stacked
    (scanned) 2-layer checkpoint, unrolled and scanned fine-tuning give the same losses and
    dev scores (without dropout, whose draws differ between the layouts), and both write
    best_params/ stacked, the layout the checkpoint came in."""
    model_cfg = micro_model_config(vocab_size=472, num_layers=2, scan_layers=True,
                                   attention_dropout=0.0, hidden_dropout=0.0)  # fmt: skip
    z = jnp.zeros((1, 8), jnp.int32)
    params = nn.unbox(BertEmbedder(model_cfg).init(jax.random.key(3), z, z, z)["params"])
    save_params(tmp_path / "ckpt", jax.tree.map(np.asarray, params), model_cfg)
    runs = {}
    for scan in (False, True):
        extra = {"init": str(tmp_path / "ckpt"), "scan_layers": scan, "num_epochs": 2,
                 "output_dir": str(tmp_path / f"run-{scan}")}  # fmt: skip
        cfg = load_config(f"{CONFIGS / 'glue.py'}:sst2", overrides(tmp_path, **extra))
        runs[scan] = run.finetune(cfg).metrics
        saved_cfg, saved = load_params(tmp_path / f"run-{scan}" / "best_params")
        assert saved_cfg.scan_layers and set(saved["bert"]["encoder"]) == {"layers"}
    losses = [[h["train_loss"] for h in runs[s]["history"]] for s in (False, True)]
    np.testing.assert_allclose(losses[0], losses[1], rtol=1e-5)
    assert runs[False]["dev"] == pytest.approx(runs[True]["dev"], rel=1e-5)
