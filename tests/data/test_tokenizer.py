"""Tests for jaxbert.data.tokenizer: one interface over sentencepiece and WordPiece."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from jaxbert.data import tokenizer
from jaxbert.errors import UserError

FIXTURES = Path(__file__).parents[1] / "fixtures" / "data"
SENTENCES = [
    "The Aegean Sea is an elongated embayment of the Mediterranean Sea.",
    "Attila was the ruler of the Huns from 434 until his death in March 453.",
] * 20


def test_sentencepiece_special_ids_are_fixed(sp_model):
    """Trained models have [PAD]=0, [UNK]=1, [CLS]=2, [SEP]=3, [MASK]=4."""
    tok = tokenizer.load_tokenizer(sp_model)
    assert (tok.pad_id, tok.unk_id, tok.cls_id, tok.sep_id, tok.mask_id) == (0, 1, 2, 3, 4)
    assert [tok.id_to_token(i) for i in range(5)] == list(tokenizer.SPECIAL_TOKENS)
    assert tok.special_table.sum() == 4 and not tok.special_table[tok.unk_id]


def test_sentencepiece_byte_fallback_avoids_unk(sp_model):
    """Characters never seen in training become byte pieces, never [UNK]; decode round-trips."""
    tok = tokenizer.load_tokenizer(sp_model)
    text = "Attila 日本 ✓ ŋ"
    ids = tok.encode(text)
    assert tok.unk_id not in ids
    assert tok.decode(ids) == text


def test_special_token_text_is_not_a_special_id(sp_model):
    """The literal text "[MASK]" in a corpus does not produce the [MASK] id."""
    tok = tokenizer.load_tokenizer(sp_model)
    assert tok.mask_id not in tok.encode("a [MASK] b [CLS]")


def test_sentencepiece_word_starts_follow_boundary_marker(sp_model):
    """word_starts is True exactly on pieces that begin with '▁'; a lone word carries it."""
    tok = tokenizer.load_tokenizer(sp_model)
    ids = tok.encode("Mediterranean embayment")
    flags = tok.word_starts(ids)
    assert flags.tolist() == [tok.id_to_token(i).startswith("\u2581") for i in ids]
    assert flags.sum() == 2
    word = tok.encode("Huns")
    assert tok.id_to_token(word[0]).startswith("\u2581") and tok.word_starts(word)[0]


def test_lowercase_option_case_folds(tmp_path):
    """--lowercase trains a model that encodes upper and lower case identically."""
    model = tokenizer.train_sentencepiece(
        SENTENCES, tmp_path, vocab_size=300, lowercase=True, quiet=True
    )
    tok = tokenizer.load_tokenizer(tmp_path)
    assert tok.path == model and tok.lowercase
    assert tok.encode("The AEGEAN Sea") == tok.encode("the aegean sea")


def test_bpe_model_type_trains(tmp_path):
    """--model-type bpe works and keeps the special ids."""
    tokenizer.train_sentencepiece(SENTENCES, tmp_path, vocab_size=300, model_type="bpe", quiet=True)
    config = json.loads((tmp_path / tokenizer.TRAIN_CONFIG_NAME).read_text())
    assert config["model_type"] == "bpe"
    assert tokenizer.load_tokenizer(tmp_path).mask_id == 4


def test_wordpiece_vocab_loads_with_bert_semantics():
    """A BERT vocab.txt loads via `tokenizers`: uncased guessed, ## pieces continue words."""
    tok = tokenizer.load_tokenizer(FIXTURES / "vocab.txt")
    assert tok.kind == "wordpiece" and tok.lowercase and tok.vocab_size == 27
    assert (tok.pad_id, tok.unk_id, tok.cls_id, tok.sep_id, tok.mask_id) == (0, 1, 2, 3, 4)
    ids = tok.encode("The cat sat unaffable")
    assert [tok.id_to_token(i) for i in ids] == ["the", "cat", "sat", "un", "##aff", "##able"]
    assert tok.word_starts(ids).tolist() == [True, True, True, True, False, False]
    assert [tok.id_to_token(i) for i in tok.encode("running")] == ["run", "##ning"]
    assert tok.encode("zebra") == [tok.unk_id]
    assert tok.decode(ids) == "the cat sat unaffable"


def test_wordpiece_directory_and_hf_config(tmp_path):
    """A directory with vocab.txt loads; tokenizer_config.json's do_lower_case wins."""
    (tmp_path / "vocab.txt").write_text((FIXTURES / "vocab.txt").read_text())
    (tmp_path / "tokenizer_config.json").write_text('{"do_lower_case": false}')
    tok = tokenizer.load_tokenizer(tmp_path)
    assert not tok.lowercase
    assert tok.token_to_id("The") == tok.unk_id and tok.token_to_id("the") == 5


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("[UNK]\n[PAD]\n[CLS]\n[SEP]\n[MASK]\n", r"\[PAD\] must have id 0"),
        ("[PAD]\n[UNK]\n[CLS]\n[SEP]\n", r"\[MASK\] is missing"),
        ("[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\na\na\n", "duplicate token 'a'"),
    ],
)
def test_bad_vocab_is_a_user_error(tmp_path, content, message):
    """Malformed vocabularies raise a UserError naming the problem."""
    (tmp_path / "vocab.txt").write_text(content)
    with pytest.raises(UserError, match=message):
        tokenizer.load_tokenizer(tmp_path / "vocab.txt")


def test_missing_or_unknown_tokenizer_path_is_a_user_error(tmp_path):
    """Nonexistent paths, empty directories and unknown file types raise UserError."""
    with pytest.raises(UserError, match="does not exist"):
        tokenizer.load_tokenizer(tmp_path / "nope.model")
    with pytest.raises(UserError, match="no tokenizer.model"):
        tokenizer.load_tokenizer(tmp_path)
    (tmp_path / "x.json").write_text("{}")
    with pytest.raises(UserError, match="expected a sentencepiece"):
        tokenizer.load_tokenizer(tmp_path / "x.json")
    (tmp_path / "bad.model").write_bytes(b"garbage")
    with pytest.raises(UserError, match="not a sentencepiece model"):
        tokenizer.load_tokenizer(tmp_path / "bad.model")


def test_word_start_table_is_vectorised(sp_model):
    """word_starts accepts arrays of any shape (used on whole batches)."""
    tok = tokenizer.load_tokenizer(sp_model)
    ids = np.arange(60).reshape(6, 10)
    assert tok.word_starts(ids).shape == (6, 10)
