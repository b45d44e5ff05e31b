"""Prepared data on gs:// (a local GCS server): same batches as from disk, each host opening
only the shards of its documents and fetching about its share of the token bytes."""

from __future__ import annotations

import numpy as np
import pytest

from jaxbert import fs
from jaxbert.data import pipeline, prepare, store
from jaxbert.errors import UserError
from tests.conftest import DATA_PRED, DATA_SEQ, WIKI_TINY, micro_data_config

SEQ, PRED, BATCH = DATA_SEQ, DATA_PRED, 4


_cfg = micro_data_config


def _batches(prepared_dir, n, **kw):
    overrides = {k: kw.pop(k) for k in list(kw) if k in pipeline.default_data_config()}
    it = pipeline.make_pretrain_iterator(_cfg(prepared_dir, **overrides), batch_size=BATCH, **kw)
    return it, [next(it) for _ in range(n)]


def _equal(a, b):
    return all(np.array_equal(x[k], y[k]) for x, y in zip(a, b, strict=True) for k in x)


@pytest.fixture(scope="module")
def sharded(sp_model, tmp_path_factory):
    """The tiny corpus in ~12 shards, prepared on disk (the reference for the bucket)."""
    out = tmp_path_factory.mktemp("sharded")
    prepare.prepare([WIKI_TINY], sp_model, out, workers=0, shard_max_tokens=400, progress=False)
    return out


def test_prepare_to_bucket_then_same_batches_and_exact_resume(sharded, sp_model, gcs_bucket):
    """`data prepare --out gs://…` uploads the same files (manifest last); training batches
    read from the bucket equal those from disk, in packed and pair modes; a state saved
    mid-epoch resumes to the same batches; a re-run is a no-op."""
    out = f"{gcs_bucket}/prepared"
    manifest = prepare.prepare(
        [WIKI_TINY], sp_model, out, workers=0, shard_max_tokens=400, progress=False
    )
    assert fs.relative_files(out) == fs.relative_files(sharded)
    assert prepare.prepare([WIKI_TINY], sp_model, out, workers=0, shard_max_tokens=400,
                           progress=False) == manifest  # fmt: skip
    for packing, objective in (("full_sentences", "mlm"), ("pairs", "mlm_nsp")):
        kw = dict(packing=packing, objective=objective, seed=3, host_documents="contiguous")
        _, local = _batches(sharded, 6, **kw)
        it, remote = _batches(out, 4, **kw)
        assert _equal(local[:4], remote)
        state = it.get_state()
        it2, _ = _batches(out, 0, **kw)
        it2.set_state(state)
        assert _equal(local[4:], [next(it2), next(it2)])


def test_each_host_opens_only_its_shards(sharded, gcs_bucket):
    """With contiguous host documents, 4 hosts each open about a quarter of the shards, and
    the token bytes they fetch for one epoch add up to about the training split's once."""
    out = fs.as_path(f"{gcs_bucket}/prepared")
    fs.swap_in_dir(_copy(sharded), out, marker=prepare.MANIFEST_NAME)
    corpus = store.PreparedCorpus(out)
    shards, opened, fetched = len(corpus.shard_names), [], 0
    train = pipeline.split_documents(corpus.num_documents, 0.1, "train")
    token_bytes = int(corpus.doc_token_spans(train)[1].sum()) * 2  # uint16 ids
    for host in range(4):
        cfg = _cfg(out, packing="full_sentences", objective="mlm", host_documents="contiguous")
        before = store.REMOTE_READS["token_bytes"]
        source = pipeline.BatchSource(
            pipeline.validate_data_config(cfg), batch_size=BATCH, seed=0, process_index=host,
            process_count=4, split="train", debug=False,
        )  # fmt: skip
        for g in range(source.batches_per_epoch):
            source(g)
        fetched += store.REMOTE_READS["token_bytes"] - before
        opened.append(source.corpus.opened_shards)
    assert all(len(o) <= shards // 4 + 2 for o in opened), (shards, opened)
    assert 0.7 * token_bytes <= fetched <= 1.3 * token_bytes, (fetched, token_bytes)


def _copy(src):
    import shutil
    import tempfile

    dst = tempfile.mkdtemp()
    shutil.rmtree(dst)
    shutil.copytree(src, dst)
    return dst


def test_missing_bucket_manifest_is_a_user_error(gcs_bucket):
    """A bucket prefix without manifest.json (an interrupted upload) names the path."""
    with pytest.raises(UserError, match="manifest.json not found"):
        store.PreparedCorpus(f"{gcs_bucket}/nothing")


def test_host_documents_contiguous_blocks(sharded):
    """Contiguous shares are disjoint blocks covering the split, each within one document's
    tokens of 1/N of the split's tokens; round_robin deals every N-th document."""
    corpus = store.PreparedCorpus(sharded)
    for split in ("train", "eval"):
        docs = pipeline.split_documents(corpus.num_documents, 0.2, split)
        tokens = corpus.doc_token_spans(docs)[1]
        shares = [pipeline.host_documents(docs, "contiguous", i, 3, corpus) for i in range(3)]
        assert np.array_equal(np.concatenate(shares), docs)
        sizes = [corpus.doc_token_spans(s)[1].sum() if len(s) else 0 for s in shares]
        assert max(abs(x - tokens.sum() / 3) for x in sizes) <= tokens.max()
    docs = np.arange(10)
    assert pipeline.host_documents(docs, "round_robin", 1, 4).tolist() == [1, 5, 9]


def test_mixture_specs_take_bucket_directories():
    """data.corpora entries may be gs:// URLs, with or without a :WEIGHT."""
    from jaxbert.data.mixture import parse_corpora

    specs = parse_corpora("en=gs://b/en/prepared:2,gs://b/de:1")
    assert [(c.name, c.directory, c.weight) for c in specs] == [
        ("en", "gs://b/en/prepared", 2.0),
        ("de", "gs://b/de", 1.0),
    ]


@pytest.mark.slow
def test_grain_workers_read_the_bucket(sharded, gcs_bucket):
    """data.num_workers=2: Grain's spawned workers re-open the gs:// corpus (the server's
    address comes with the environment) and yield exactly the in-process batches."""
    out = fs.as_path(f"{gcs_bucket}/prepared")
    fs.swap_in_dir(_copy(sharded), out, marker=prepare.MANIFEST_NAME)
    kw = dict(packing="full_sentences", objective="mlm", seed=0)
    _, serial = _batches(sharded, 4, **kw)
    it, workers = _batches(out, 4, num_workers=2, **kw)
    it.close()
    assert _equal(serial, workers)
