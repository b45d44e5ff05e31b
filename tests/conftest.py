"""Test set-up: 8 host CPU devices (set before jax is imported) and shared fixtures."""

import os
from pathlib import Path

_DEVICES = "--xla_force_host_platform_device_count=8"
if _DEVICES not in os.environ.get("XLA_FLAGS", ""):  # pytest-xdist workers inherit it
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " " + _DEVICES).strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")
# Most of the suite's time is XLA compiling the same micro models again, in-process and in
# CLI subprocesses (which inherit these): a persistent cache keyed by the HLO compiles each
# program once per machine. Set JAX_COMPILATION_CACHE_DIR= (empty) to turn it off.
_CACHE = Path(__file__).resolve().parents[1] / ".pytest_cache" / "jax-compile"
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", str(_CACHE))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.1")

import pytest  # noqa: E402

pytest_plugins = ("tests.gcs_emulator",)  # gcs_server, gcs_bucket: a local GCS server

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
WIKI_TINY = REPO / "tests" / "fixtures" / "data" / "wiki_tiny.txt"


@pytest.fixture
def shared_data() -> Path:
    """../shared/data, or skip the test when it is absent (CI without the data)."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"{SHARED_DATA} is absent")
    return SHARED_DATA


@pytest.fixture(scope="session")
def sp_model(tmp_path_factory) -> Path:
    """A 600-piece unigram sentencepiece model trained on the tiny Wikipedia fixture."""
    out = tmp_path_factory.mktemp("tokenizer")
    from jaxbert.data import corpus, tokenizer

    sentences = [s for d in corpus.iter_corpus([WIKI_TINY]) for s in corpus.split_sentences(d)]
    return tokenizer.train_sentencepiece(sentences, out, vocab_size=600, quiet=True)


@pytest.fixture(scope="session")
def prepared_dir(sp_model, tmp_path_factory) -> Path:
    """The tiny Wikipedia fixture prepared in-process with `sp_model`."""
    from jaxbert.data import prepare

    out = tmp_path_factory.mktemp("prepared")
    prepare.prepare([WIKI_TINY], sp_model, out, workers=0, progress=False)
    return out


DATA_SEQ, DATA_PRED = 64, 10  # micro_data_config's window and predictions per window


def micro_data_config(prepared_dir, **overrides):
    """The pipeline tests' data config: 64-token windows, 10 predictions, 10% held out."""
    from jaxbert.data import pipeline

    cfg = pipeline.default_data_config()
    cfg.prepared_dir = str(prepared_dir)
    cfg.max_seq_length, cfg.max_predictions_per_seq = DATA_SEQ, DATA_PRED
    cfg.eval_fraction = 0.1
    cfg.update(overrides)
    return cfg


def micro_model_config(**overrides):
    """A model small enough that a forward/backward pass takes milliseconds."""
    from jaxbert.model.config import model_config

    base = dict(
        vocab_size=128,
        hidden_size=32,
        num_layers=2,
        num_heads=4,
        intermediate_size=64,
        max_position_embeddings=64,
    )
    base.update(overrides)
    return model_config("tiny", **base)
