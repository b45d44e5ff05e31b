"""Uncased pipelines end to end: the tokenizer records its casing, fine-tuning text goes
through the same normaliser, and weights trained cased are refused an uncased tokenizer
(and the reverse) with one error naming the key."""

from __future__ import annotations

import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import linen as nn

from jaxbert.checkpoint import save_params
from jaxbert.data import corpus, tokenizer
from jaxbert.data.tokenizer import load_tokenizer
from jaxbert.errors import UserError
from jaxbert.model.heads import BertEmbedder
from jaxbert.pretrained import load_pretrained
from tests.conftest import WIKI_TINY, micro_model_config


@pytest.fixture(scope="module")
def tokenizers(tmp_path_factory):
    """A cased and an uncased 600-piece sentencepiece model of the tiny fixture."""
    sentences = [s for d in corpus.iter_corpus([WIKI_TINY]) for s in corpus.split_sentences(d)]
    out = {}
    for name, lower in (("cased", False), ("uncased", True)):
        path = tmp_path_factory.mktemp(name)
        tokenizer.train_sentencepiece(sentences, path, vocab_size=600, lowercase=lower, quiet=True)
        out[name] = path
    return out


def _run_with(tok_dir, path):
    """A params dir whose own tokenizer is `tok_dir` (as a finished run holds it)."""
    cfg = micro_model_config(vocab_size=600, num_layers=1, scan_layers=False)
    z = jnp.zeros((1, 8), jnp.int32)
    params = nn.unbox(BertEmbedder(cfg).init(jax.random.key(0), z, z, z)["params"])
    save_params(path, jax.tree.map(np.asarray, params), cfg)
    shutil.copytree(tok_dir, path / "tokenizer")
    return path


def test_uncased_tokenizer_records_and_applies_lowercasing(tokenizers):
    """The uncased tokenizer says so in its config and tokenizes "The BANK" as "the bank";
    the cased one keeps the case apart."""
    cased, uncased = load_tokenizer(tokenizers["cased"]), load_tokenizer(tokenizers["uncased"])
    assert uncased.lowercase and not cased.lowercase
    assert uncased.encode("The BANK of the river") == uncased.encode("the bank of the river")
    assert cased.encode("The BANK of the river") != cased.encode("the bank of the river")


@pytest.mark.parametrize(("trained", "given"), [("cased", "uncased"), ("uncased", "cased")])
def test_mixing_cased_and_uncased_is_refused_naming_the_key(tokenizers, tmp_path, trained, given):
    """Weights trained with one casing and a tokenizer of the other: a UserError naming
    config.tokenizer and both casings; the weights' own tokenizer loads fine."""
    run = _run_with(tokenizers[trained], tmp_path / "run")
    with pytest.raises(UserError, match=rf"config\.tokenizer=.* is {given}.*with a {trained}"):
        load_pretrained(str(run), str(tokenizers[given]))
    assert load_pretrained(str(run)).tokenizer_path == run / "tokenizer"
