"""Length-bucketed fine-tuning: batches of similar lengths trimmed to a few fixed
lengths, evaluation that predicts exactly what unbucketed evaluation predicts, one
compile per bucket, determinism per (seed, epoch), and exact resume (test_resume.py runs
with bucketing on, the default)."""

from __future__ import annotations

import json

import jax
import numpy as np

from jaxbert import cli, sharding
from jaxbert.finetune import buckets, run
from jaxbert.finetune.step import FinetuneSteps, build_model, make_optimizer
from jaxbert.train import optim
from tests.conftest import micro_model_config
from tests.finetune.test_run import CONFIGS, MICRO, overrides

SEQ = 64


def _features(n=300, seed=0, kind="token"):
    """Random rows with real lengths 3..SEQ (padding at the end), as the task readers give."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(3, SEQ + 1, n)
    mask = (np.arange(SEQ)[None] < lengths[:, None]).astype(np.int32)
    feats = {
        "input_ids": (rng.integers(5, 128, (n, SEQ)) * mask).astype(np.int32),
        "input_mask": mask,
        "segment_ids": np.zeros((n, SEQ), np.int32),
    }
    if kind == "token":
        feats["labels"] = (rng.integers(0, 9, (n, SEQ)) * mask).astype(np.int32)
        feats["label_weights"] = mask.astype(np.float32)
    else:
        feats["label"] = rng.integers(0, 2, n).astype(np.int32)
    return feats


def test_bucketed_batches_cover_each_row_once_and_are_deterministic():
    """Every row once per epoch, as many batches as unbucketed, the same batches for the same
    (seed, epoch) and different ones for another epoch; most batches fit a short bucket."""
    feats = _features(1000)
    lengths = buckets.row_lengths(feats)
    order = run.epoch_order(1000, 0, 1)
    batches = buckets.bucketed_batches(order, lengths, 32, seed=0, epoch=1)
    assert len(batches) == -(-1000 // 32)
    assert sorted(np.concatenate(batches).tolist()) == list(range(1000))
    again = buckets.bucketed_batches(order, lengths, 32, seed=0, epoch=1)
    assert all(np.array_equal(a, b) for a, b in zip(batches, again, strict=True))
    other = buckets.bucketed_batches(run.epoch_order(1000, 0, 2), lengths, 32, seed=0, epoch=2)
    assert not all(np.array_equal(a, b) for a, b in zip(batches, other, strict=True))
    spans = [lengths[b].max() - lengths[b].min() for b in batches]
    assert np.median(spans) <= 8  # sorted groups: a batch holds similar lengths


def test_trimmed_batches_use_the_smallest_bucket_that_fits():
    """Each batch is cut to the smallest bucket holding its longest row; no real token
    is lost and weight-0 padding rows still top up the last batch."""
    feats = _features(100)
    bucket_set = buckets.bucket_lengths(SEQ)
    assert bucket_set == (16, 32, 48, 64)
    lengths = buckets.row_lengths(feats)
    order = np.argsort(lengths, kind="stable")
    for b in run.padded_batches(feats, order, 16, buckets=bucket_set):
        width = b["input_ids"].shape[1]
        longest = b["input_mask"].sum(1).max()
        assert width == next(n for n in bucket_set if n >= longest)
        assert b["labels"].shape[1] == width
    assert b["weight"].sum() == 100 % 16


def _steps(kind, num_labels):
    model = build_model(kind, micro_model_config(**MICRO), num_labels)
    opt = optim.optimizer_defaults()
    mesh = sharding.create_mesh({"data": 1, "fsdp": 1, "tensor": 1}, jax.devices()[:1])
    tx, schedule = make_optimizer(opt, 1, "full"), optim.learning_rate_schedule(opt, 1)
    example = {k: v[:8] for k, v in _features(8, kind=kind).items()}
    example["weight"] = np.ones(8, np.float32)
    return FinetuneSteps(model, tx, schedule, kind, mesh, example)


def test_bucketed_eval_predicts_what_unbucketed_eval_predicts():
    """A fixed model: bucketed evaluation gives the same predicted tags (token task) and
    classes (sequence task) in file order, logits within float tolerance, and the same loss."""
    for kind, labels, key in (("token", 9, "tags"), ("classification", 2, "logits")):
        steps = _steps(kind, labels)
        params = steps.init_state(jax.random.key(0)).params
        feats = _features(90, seed=1, kind=kind)
        full, loss_full = run.predict(steps, params, feats, 16)
        bucketed, loss_b = run.predict(steps, params, feats, 16, buckets.bucket_lengths(SEQ))
        assert full[key].shape == bucketed[key].shape
        mask = feats["input_mask"].astype(bool)
        if kind == "token":
            assert np.array_equal(full[key][mask], bucketed[key][mask])
        else:
            np.testing.assert_allclose(full[key], bucketed[key], rtol=1e-4, atol=1e-5)
            assert np.array_equal(full[key].argmax(-1), bucketed[key].argmax(-1))
        np.testing.assert_allclose(loss_full, loss_b, rtol=1e-4)


def test_run_compiles_once_per_bucket_and_logs_it(tmp_path, capsys):
    """An SST-2 fixture run at max_seq_length 64: the train step compiles for each bucket
    length used (logged once each), and the config records length_buckets."""
    argv = ["finetune", "--config", f"{CONFIGS / 'glue.py'}:sst2",
            *overrides(tmp_path, max_seq_length=64, num_epochs=2)]  # fmt: skip
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    compiled = [line for line in out.splitlines() if "compiling the train step" in line]
    assert compiled and len(compiled) == len(set(compiled)) and len(compiled) <= 4
    assert "length buckets [16, 32, 48, 64]" in out
    assert json.loads((tmp_path / "run" / "config.json").read_text())["length_buckets"] is True
