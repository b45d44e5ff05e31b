"""Shared fixtures for the data tests: a tiny tokenizer and prepared corpus, built once."""

from __future__ import annotations

from pathlib import Path

import pytest

from jaxbert.data import corpus, prepare, tokenizer

FIXTURES = Path(__file__).parents[1] / "fixtures" / "data"
WIKI_TINY = FIXTURES / "wiki_tiny.txt"
SHARED_DATA = Path(__file__).parents[2] / "../shared/data"


@pytest.fixture(scope="session")
def sp_model(tmp_path_factory) -> Path:
    """A 600-piece unigram sentencepiece model trained on the tiny Wikipedia fixture."""
    out = tmp_path_factory.mktemp("tokenizer")
    sentences = [s for d in corpus.iter_corpus([WIKI_TINY]) for s in corpus.split_sentences(d)]
    return tokenizer.train_sentencepiece(sentences, out, vocab_size=600, quiet=True)


@pytest.fixture(scope="session")
def prepared_dir(sp_model, tmp_path_factory) -> Path:
    """The tiny Wikipedia fixture prepared in-process with `sp_model`."""
    out = tmp_path_factory.mktemp("prepared")
    prepare.prepare([WIKI_TINY], sp_model, out, workers=0, progress=False)
    return out
