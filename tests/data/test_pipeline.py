"""Tests for jaxbert.data.pipeline: batches, epochs, splits, sharding, exact resume."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from jaxbert.data import pipeline
from jaxbert.errors import UserError
from tests.conftest import DATA_PRED, DATA_SEQ, micro_data_config

SEQ, PRED, BATCH = DATA_SEQ, DATA_PRED, 4


_cfg = micro_data_config


def _take(it, n):
    return [next(it) for _ in range(n)]


def _equal(a, b):
    return all(np.array_equal(x[k], y[k]) for x, y in zip(a, b, strict=True) for k in x)


def test_importing_pipeline_does_not_import_jax():
    """jaxbert.data.pipeline (and the whole data package) imports no jax at module import."""
    code = (
        "import sys, jaxbert.data.pipeline, jaxbert.data.inspection, jaxbert.cli.data;"
        "print(sorted(m for m in sys.modules if m == 'jax' or m.startswith(('jax.', 'jaxlib'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_batches_have_the_documented_format(prepared_dir):
    """Keys, shapes [B,S]/[B,P]/[B], dtypes int32 (weights float32), labels in {0, 1}."""
    batch = next(pipeline.make_pretrain_iterator(_cfg(prepared_dir), batch_size=BATCH, seed=0))
    assert set(batch) == set(pipeline.BATCH_KEYS)
    for key in ("input_ids", "input_mask", "segment_ids"):
        assert batch[key].shape == (BATCH, SEQ) and batch[key].dtype == np.int32
    for key in ("masked_positions", "masked_ids"):
        assert batch[key].shape == (BATCH, PRED) and batch[key].dtype == np.int32
    assert batch["masked_weights"].dtype == np.float32
    assert batch["next_sentence_label"].shape == (BATCH,)
    assert set(batch["next_sentence_label"].tolist()) <= {0, 1}
    assert json.dumps(pipeline.default_data_config().to_dict())  # config is plain data


def test_resume_mid_epoch_equals_uninterrupted_run(prepared_dir):
    """Batches after set_state(get_state()) mid-epoch equal the uninterrupted run, across the
    next epoch boundary; the state is JSON-serialisable."""
    cfg = _cfg(prepared_dir)
    it = pipeline.make_pretrain_iterator(cfg, batch_size=BATCH, seed=3)
    per_epoch = it.batches_per_epoch
    assert per_epoch >= 4
    k = per_epoch // 2
    _take(it, k)
    state = json.loads(json.dumps(it.get_state()))
    expected = _take(it, per_epoch)  # runs into epoch 1
    resumed = pipeline.make_pretrain_iterator(cfg, batch_size=BATCH, seed=3)
    next(resumed)  # a restored iterator may already have been used
    resumed.set_state(state)
    assert _equal(_take(resumed, per_epoch), expected)


def test_epochs_re_pair_and_re_mask(prepared_dir):
    """Epoch 1 is not a copy of epoch 0 (new pairing, order and masking)."""
    it = pipeline.make_pretrain_iterator(_cfg(prepared_dir), batch_size=BATCH, seed=0, debug=True)
    n = it.batches_per_epoch
    epochs = _take(it, 2 * n)
    assert all(b["epoch"][0] == i // n for i, b in enumerate(epochs))
    assert not _equal(epochs[:n], epochs[n:])


def test_same_seed_same_batches_other_seed_other_batches(prepared_dir):
    """The pipeline is deterministic given the seed and changes with it."""
    cfg = _cfg(prepared_dir)
    a = _take(pipeline.make_pretrain_iterator(cfg, batch_size=BATCH, seed=1), 3)
    b = _take(pipeline.make_pretrain_iterator(cfg, batch_size=BATCH, seed=1), 3)
    c = _take(pipeline.make_pretrain_iterator(cfg, batch_size=BATCH, seed=2), 3)
    assert _equal(a, b) and not _equal(a, c)


def test_eval_split_is_held_out_and_deterministic(prepared_dir):
    """split='eval' reads only the last documents (disjoint from train) and repeats exactly."""
    cfg = _cfg(prepared_dir)
    train = pipeline.make_pretrain_iterator(cfg, batch_size=BATCH, seed=0, debug=True)
    evals = [
        _take(pipeline.make_pretrain_iterator(cfg, batch_size=BATCH, seed=0, split="eval",
                                              debug=True), 3)
        for _ in range(2)
    ]  # fmt: skip
    assert _equal(*evals)
    eval_docs = set(pipeline.split_documents(train.source.corpus.num_documents, 0.1, "eval"))
    train_docs = {int(d) for b in _take(train, train.batches_per_epoch) for d in b["doc_a"]}
    assert {int(d) for b in evals[0] for d in np.r_[b["doc_a"], b["doc_b"]]} <= eval_docs
    assert not train_docs & eval_docs


def test_processes_read_disjoint_document_shares(prepared_dir):
    """With process_count=2, the two processes' A segments come from disjoint documents."""
    cfg = _cfg(prepared_dir)
    docs = []
    for p in range(2):
        it = pipeline.make_pretrain_iterator(
            cfg, batch_size=BATCH, seed=0, process_index=p, process_count=2, debug=True
        )
        docs.append({int(d) for b in _take(it, it.batches_per_epoch) for d in b["doc_a"]})
    assert docs[0] and docs[1] and not docs[0] & docs[1]


def test_grain_worker_processes_give_the_same_batches(prepared_dir):
    """num_workers=2 (Grain multiprocessing) yields exactly the in-process batches."""
    serial = _take(pipeline.make_pretrain_iterator(_cfg(prepared_dir), batch_size=BATCH, seed=0), 4)
    it = pipeline.make_pretrain_iterator(
        _cfg(prepared_dir, num_workers=2), batch_size=BATCH, seed=0
    )
    try:
        assert _equal(_take(it, 4), serial)
    finally:
        it.close()


@pytest.mark.parametrize(
    ("key", "value"),
    [("masking", "words"), ("random_token", "zipf"), ("mask_prob", 0.0),
     ("max_predictions_per_seq", 100), ("num_workers", -1)],
)  # fmt: skip
def test_bad_config_values_name_the_key(prepared_dir, key, value):
    """Invalid data config values raise a UserError naming data.<key>."""
    with pytest.raises(UserError, match=f"data.{key}="):
        pipeline.make_pretrain_iterator(_cfg(prepared_dir, **{key: value}), batch_size=2, seed=0)


def test_missing_prepared_dir_and_mismatched_state_are_user_errors(prepared_dir, tmp_path):
    """No manifest → UserError telling to run prepare; a state from another setup → UserError."""
    with pytest.raises(UserError, match="jaxbert data prepare"):
        pipeline.make_pretrain_iterator(_cfg(tmp_path), batch_size=2, seed=0)
    it = pipeline.make_pretrain_iterator(_cfg(prepared_dir), batch_size=2, seed=0)
    state = it.get_state() | {"seed": 1}
    with pytest.raises(UserError, match="seed: saved 1 vs now 0"):
        it.set_state(state)


def test_too_many_processes_for_the_documents_is_a_user_error(prepared_dir):
    """A process with no documents gets a clear error rather than an empty stream."""
    with pytest.raises(UserError, match="none for process"):
        pipeline.make_pretrain_iterator(
            _cfg(prepared_dir), batch_size=2, seed=0, split="eval", process_index=3,
            process_count=4,
        )  # fmt: skip
