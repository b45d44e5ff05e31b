"""Tests for jaxbert.data.packing through the pipeline: packed windows are the token
stream cut without loss, doc_sentences never crosses a document, padding is rare, and
every packing mode resumes exactly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from jaxbert.data import packing, pipeline
from jaxbert.data.store import PreparedCorpus
from jaxbert.data.tokenizer import load_tokenizer
from jaxbert.errors import UserError

SEQ, BATCH = 64, 8
PACKED = ("full_sentences", "doc_sentences")


def _cfg(prepared_dir, **overrides):
    cfg = pipeline.default_data_config()
    cfg.prepared_dir = str(prepared_dir)
    cfg.max_seq_length, cfg.max_predictions_per_seq = SEQ, 0
    cfg.objective, cfg.eval_fraction = "mlm", 0.1
    cfg.update(overrides)
    return cfg


def _epoch(prepared_dir, mode, seed=0):
    """Every window of epoch 0 (unmasked), in window-index order, and the batch source."""
    it = pipeline.make_pretrain_iterator(
        _cfg(prepared_dir, packing=mode), batch_size=BATCH, seed=seed
    )
    source = it.source
    source.epoch_table(0)
    pack = source._packs[0]
    windows = np.arange(pack.num_windows)
    batch = packing.assemble_packed(
        source.corpus, pack, windows, max_seq_length=SEQ, cls_id=source.cls_id,
        sep_id=source.sep_id,
    )  # fmt: skip
    return {**batch, "original_ids": batch["input_ids"], "window": windows}, source


def _window_tokens(batch, i):
    """Original tokens between [CLS] and the closing [SEP] of window i."""
    n = int(batch["input_mask"][i].sum())
    return batch["original_ids"][i, 1 : n - 1]


def test_full_sentences_windows_are_the_document_stream_cut_without_loss(prepared_dir):
    """Windows of one epoch, in order, concatenate to this epoch's documents in its
    shuffled order, each followed by [SEP]; every window but the last is full."""
    batch, source = _epoch(prepared_dir, "full_sentences")
    n_windows = source._packs[0].num_windows
    corpus, sep = source.corpus, source.sep_id
    expected = np.concatenate(
        [np.concatenate([*corpus.document_sentences(d), [sep]]) for d in source._packs[0].docs]
    )
    got = np.concatenate([_window_tokens(batch, i) for i in range(n_windows)])
    assert np.array_equal(got, expected)
    assert (batch["input_mask"][: n_windows - 1] == 1).all()


def test_doc_sentences_windows_never_cross_a_document(prepared_dir):
    """Each doc_sentences window is a contiguous slice of one document's tokens, and the
    windows of a document, in order, are the whole document."""
    batch, source = _epoch(prepared_dir, "doc_sentences")
    corpus = source.corpus
    by_doc: dict[int, list[np.ndarray]] = {}
    for i in range(len(batch["window"])):
        by_doc.setdefault(int(batch["first_doc"][i]), []).append(_window_tokens(batch, i))
    assert sorted(by_doc) == sorted(source.local_docs.tolist())
    for doc, pieces in by_doc.items():
        assert np.array_equal(
            np.concatenate(pieces), np.concatenate(corpus.document_sentences(doc))
        )


@pytest.mark.parametrize("mode", PACKED)
def test_packed_batches_are_mostly_real_tokens(prepared_dir, mode):
    """full_sentences pads only the epoch's last window: >= 99% real tokens over an epoch
    of the tiny fixture; doc_sentences pads each document's last window."""
    it = pipeline.make_pretrain_iterator(_cfg(prepared_dir, packing=mode), batch_size=BATCH, seed=0)
    share = np.mean([next(it)["input_mask"].mean() for _ in range(it.batches_per_epoch)])
    assert share >= (0.99 if mode == "full_sentences" else 0.85)


@pytest.mark.parametrize("mode", packing.PACKING_MODES)
def test_resume_equals_uninterrupted_run_in_every_packing_mode(prepared_dir, mode):
    """set_state(get_state()) after 3 batches, across an epoch boundary, replays the
    uninterrupted run exactly, in each packing mode."""
    objective = "mlm_nsp" if mode == "pairs" else "mlm"
    cfg = _cfg(prepared_dir, packing=mode, objective=objective)
    it = pipeline.make_pretrain_iterator(cfg, batch_size=BATCH, seed=5)
    n = it.batches_per_epoch + 3
    full = [next(it) for _ in range(n)]
    first = pipeline.make_pretrain_iterator(cfg, batch_size=BATCH, seed=5)
    for _ in range(3):
        next(first)
    resumed = pipeline.make_pretrain_iterator(cfg, batch_size=BATCH, seed=5)
    resumed.set_state(first.get_state())
    rest = [next(resumed) for _ in range(n - 3)]
    for a, b in zip(full[3:], rest, strict=True):
        assert all(np.array_equal(a[k], b[k]) for k in a)


def test_full_sentences_reshuffles_documents_each_epoch(prepared_dir):
    """Epoch 1's document order differs from epoch 0's (windows cross other boundaries)."""
    source = pipeline.make_pretrain_iterator(
        _cfg(prepared_dir, packing="full_sentences"), batch_size=BATCH, seed=0
    ).source
    source.epoch_table(0)
    order0 = source._packs[0].docs.copy()
    source.epoch_table(1)
    assert not np.array_equal(order0, source._packs[1].docs)
    assert sorted(order0) == sorted(source._packs[1].docs)


def test_packed_masking_rate_and_derived_predictions(prepared_dir):
    """max_predictions_per_seq=0 derives round(mask_prob × (S − 2)); packed windows then
    get mask_prob ± 1% of their tokens selected at 0.4."""
    cfg = _cfg(prepared_dir, packing="full_sentences", mask_prob=0.4)
    it = pipeline.make_pretrain_iterator(cfg, batch_size=BATCH, seed=0, debug=True)
    assert it.source.cfg["max_predictions_per_seq"] == round(0.4 * (SEQ - 2))
    tok = load_tokenizer(PreparedCorpus(prepared_dir).tokenizer_path)
    selected = real = 0
    for _ in range(5):
        b = next(it)
        selected += b["masked_weights"].sum()
        real += (b["input_mask"].astype(bool) & ~tok.special_table[b["original_ids"]]).sum()
    assert abs(selected / real - 0.4) < 0.01


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"objective": "nsp"}, r"config\.data\.objective='nsp' must be one of"),
        ({"packing": "rows"}, r"config\.data\.packing='rows' must be one of"),
        ({"objective": "mlm_nsp", "packing": "full_sentences"}, r"needs config\.data\.packing"),
        ({"mask_prob": 0.85}, r"config\.data\.mask_prob=0\.85 must be in \(0, 0\.8\]"),
        ({"mask_prob": 0.0}, r"config\.data\.mask_prob=0\.0 must be in"),
        ({"mask_prob": 0.4, "max_predictions_per_seq": 20}, r"max_predictions_per_seq=20 is too"),
    ],
)
def test_bad_data_config_is_one_error_naming_the_key(prepared_dir, overrides, message):
    """Each bad value is a UserError that names its config key."""
    with pytest.raises(UserError, match=message):
        pipeline.make_pretrain_iterator(_cfg(prepared_dir, **overrides), batch_size=2, seed=0)


@pytest.fixture(scope="module")
def shipped_sample(sp_model, tmp_path_factory):
    """The corpus `make pretrain` ships (corpus/wiki_sample), prepared with the fixture
    tokenizer."""
    from jaxbert.data import prepare

    out = tmp_path_factory.mktemp("wiki_sample")
    sample = sorted((Path(__file__).resolve().parents[2] / "corpus" / "wiki_sample").glob("*.gz"))
    prepare.prepare(sample, sp_model, out, workers=0, progress=False)
    return out


@pytest.mark.parametrize("mode", PACKED)
def test_packed_modes_reach_97_percent_real_tokens_on_the_shipped_sample(shipped_sample, mode):
    """At make pretrain's sequence length (128), >= 97% of each packed batch position is a
    real token over a whole epoch of the shipped sample, in both packed modes."""
    cfg = _cfg(shipped_sample, packing=mode, max_seq_length=128, eval_fraction=0.01)
    it = pipeline.make_pretrain_iterator(cfg, batch_size=64, seed=0)
    share = np.mean([next(it)["input_mask"].mean() for _ in range(it.batches_per_epoch)])
    assert share >= 0.97
