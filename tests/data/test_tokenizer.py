"""Tests for jaxbert.data.tokenizer: one interface over sentencepiece and WordPiece."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from jaxbert.data import tokenizer
from jaxbert.errors import UserError
from tests.fixtures.hf_tokenizer import make as hf_make

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
        ("[PAD]\n[UNK]\n[CLS]\n[SEP]\n", r"not a WordPiece vocab.txt \(no \[MASK\] line"),
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
    with pytest.raises(UserError, match="not a Hugging Face tokenizer.json"):
        tokenizer.load_tokenizer(tmp_path / "x.json")
    (tmp_path / "x.vocab").write_text("a\n")
    with pytest.raises(UserError, match="expected a sentencepiece .model, a Hugging Face"):
        tokenizer.load_tokenizer(tmp_path / "x.vocab")
    (tmp_path / "bad.model").write_bytes(b"garbage")
    with pytest.raises(UserError, match="not a sentencepiece model"):
        tokenizer.load_tokenizer(tmp_path / "bad.model")


def test_word_start_table_is_vectorised(sp_model):
    """word_starts accepts arrays of any shape (used on whole batches)."""
    tok = tokenizer.load_tokenizer(sp_model)
    ids = np.arange(60).reshape(6, 10)
    assert tok.word_starts(ids).shape == (6, 10)


def _checksums(directory: Path) -> dict[str, str]:
    return {
        str(f.relative_to(directory)): tokenizer.file_sha256(f)
        for f in sorted(directory.rglob("*"))
        if f.is_file()
    }


def _siblings(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.parent.iterdir() if p.name != directory.name)


def test_sentencepiece_log_goes_to_a_file_not_the_terminal(tmp_path, capfd):
    """By default sentencepiece's C++ log (fd 2) lands in sentencepiece.log in the output
    directory and nothing reaches the terminal; verbose=True shows it instead."""
    out = tmp_path / "tok"
    tokenizer.train_sentencepiece(SENTENCES, out, vocab_size=300)
    captured = capfd.readouterr()
    assert captured.err == "" and captured.out == ""
    log = (out / tokenizer.SP_LOG_NAME).read_text()
    assert "trainer_interface.cc" in log and "Saving model" in log
    tokenizer.train_sentencepiece(SENTENCES, tmp_path / "loud", vocab_size=300, verbose=True)
    assert "trainer_interface.cc" in capfd.readouterr().err
    assert not (tmp_path / "loud" / tokenizer.SP_LOG_NAME).exists()


def test_vocab_size_beyond_the_corpus_is_an_error_stating_the_maximum(tmp_path):
    """Asking for more pieces than the corpus supports is a UserError giving the maximum
    (not a silently smaller model), and that maximum then trains exactly."""
    with pytest.raises(UserError, match=r"--vocab-size 60000 is more than the corpus") as err:
        tokenizer.train_sentencepiece(SENTENCES, tmp_path / "big", vocab_size=60_000, quiet=True)
    assert not (tmp_path / "big").exists()
    suggested = int(str(err.value).split("use --vocab-size ")[1].split()[0])
    assert 262 <= suggested < 60_000
    tokenizer.train_sentencepiece(SENTENCES, tmp_path / "max", vocab_size=suggested, quiet=True)
    assert tokenizer.load_tokenizer(tmp_path / "max").vocab_size == suggested


@pytest.mark.parametrize(
    ("sentences", "options", "message"),
    [
        ([], {}, "the corpus has no sentences: the corpus holds no text"),
        (SENTENCES, {"vocab_size": 100}, "--vocab-size 100 is too small: the 5 special"),
        (SENTENCES, {"vocab_size": 262}, "--vocab-size 262 is too small for the corpus: its"),
        (SENTENCES, {"max_sentences": 0}, "--max-sentences must be >= 1, got 0"),
        (SENTENCES, {"model_type": "wordpiece"}, "--model-type must be unigram or bpe"),
    ],
)
def test_bad_training_input_is_one_clear_user_error(tmp_path, sentences, options, message):
    """An empty corpus, a too-small vocabulary (before or inside sentencepiece) and bad
    settings are UserErrors in the user's terms, and leave no output or staging behind."""
    out = tmp_path / "tok"
    with pytest.raises(UserError, match=message) as err:
        tokenizer.train_sentencepiece(sentences, out, **({"vocab_size": 300} | options))
    assert "\n" not in str(err.value) and "INTERNAL" not in str(err.value)
    assert list(tmp_path.iterdir()) == []


def test_a_reader_error_during_training_surfaces_as_itself(tmp_path):
    """An error raised while sentencepiece pulls sentences (a bad corpus line under
    --strict) reaches the caller unchanged, not as sentencepiece's INTERNAL RuntimeError."""

    def sentences():
        yield from SENTENCES
        raise UserError("corpus.txt:41: not valid UTF-8")

    with pytest.raises(UserError, match=r"^corpus.txt:41: not valid UTF-8$"):
        tokenizer.train_sentencepiece(sentences(), tmp_path / "tok", vocab_size=300, quiet=True)


def test_failed_retrain_leaves_the_previous_tokenizer_untouched(tmp_path):
    """Retraining into a complete tokenizer directory with a corpus that fails (too small
    for the vocabulary, or empty) leaves every old file byte-identical and no staging."""
    out = tmp_path / "tok"
    tokenizer.train_sentencepiece(SENTENCES, out, vocab_size=300, quiet=True)
    before = _checksums(out)
    for sentences, vocab_size in ((SENTENCES, 60_000), ([], 300)):
        with pytest.raises(UserError):
            tokenizer.train_sentencepiece(sentences, out, vocab_size=vocab_size, quiet=True)
        assert _checksums(out) == before and _siblings(out) == []
    tokenizer.train_sentencepiece(SENTENCES, out, vocab_size=295, quiet=True)
    assert tokenizer.load_tokenizer(out).vocab_size == 295 and _siblings(out) == []


def test_output_directory_with_foreign_files_is_refused(tmp_path):
    """A directory holding files tokenizer training did not write is refused before
    training (replacing it whole would lose them), and the files stay."""
    out = tmp_path / "tok"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match=r"holds notes.txt, which `jaxbert tokenizer train`"):
        tokenizer.train_sentencepiece(SENTENCES, out, vocab_size=300, quiet=True)
    assert [p.name for p in out.iterdir()] == ["notes.txt"]
    (tmp_path / "file").write_text("x")
    with pytest.raises(UserError, match="is a file, not a directory"):
        tokenizer.train_sentencepiece(SENTENCES, tmp_path / "file", vocab_size=300, quiet=True)


def test_sentence_sample_is_k_sentences_in_corpus_order_and_covers_the_corpus():
    """Reservoir sampling: k of n, in corpus order, every sentence kept about k/n of the time."""
    corpus = [f"s{i}" for i in range(1000)]
    assert list(tokenizer.reservoir_sample(corpus[:5], 10)) == corpus[:5]
    kept = list(tokenizer.reservoir_sample(corpus, 100))
    assert len(kept) == 100 and kept == sorted(kept, key=lambda s: int(s[1:]))
    counts = np.zeros(1000)
    for seed in range(200):
        counts[[int(s[1:]) for s in tokenizer.reservoir_sample(corpus, 100, seed=seed)]] += 1
    # Each sentence ~ Binomial(200, 0.1): mean 20, sd 4.2; first and last tenths alike.
    assert abs(counts[:100].mean() - 20) < 2 and abs(counts[-100:].mean() - 20) < 2


_TRAIN_IN_A_PROCESS = """
import sys
import sentencepiece as spm
from jaxbert.data import tokenizer
sentences = [f"{s} {i} {i * 7 % 13}" for i, s in enumerate(sys.argv[2:] * 400)]
model = tokenizer.train_sentencepiece(
    sentences, sys.argv[1], vocab_size=300, max_sentences=200, num_threads=1, quiet=True
)
sp = spm.SentencePieceProcessor(model_file=str(model))
print([sp.id_to_piece(i) for i in range(sp.get_piece_size())])
"""


def test_a_sampled_corpus_gives_the_same_vocabulary_in_every_process(tmp_path):
    """--max-sentences below the corpus size: two processes train one vocabulary.
    (sentencepiece's own sampling is seeded from the OS: two processes, two vocabularies.)"""
    import subprocess
    import sys

    runs = [
        subprocess.run(
            [sys.executable, "-c", _TRAIN_IN_A_PROCESS, str(tmp_path / f"t{i}"), *SENTENCES[:2]],
            capture_output=True, text=True, check=True,
        ).stdout
        for i in range(2)
    ]  # fmt: skip
    assert runs[0] == runs[1] and len(runs[0]) > 1000


# Hugging Face tokenizer.json (made in the test by `tokenizers`, as the Hub ships them) ----


@pytest.mark.parametrize("lowercase", [True, False])
def test_tokenizer_json_gives_the_hf_tokenizers_own_ids(tmp_path, lowercase):
    """A tokenizer.json loads through `tokenizers` with its own normaliser: ids equal the
    library's encoding without specials (its saved truncation/padding switched off), and
    the casing is the normaliser's, not a guess."""
    from tokenizers import Tokenizer as HF

    path = hf_make.tokenizer_json(tmp_path, lowercase=lowercase)
    tok = tokenizer.load_tokenizer(tmp_path)  # the directory finds tokenizer.json
    assert tok.path == path and tok.kind == "wordpiece" and tok.lowercase is lowercase
    hf = HF.from_file(str(path))
    hf.no_truncation()
    hf.no_padding()
    for text in ("The cat sat on the mat, playing!", "Héllo NORTH 北京 unaffable deal £3m"):
        assert tok.encode(text) == hf.encode(text, add_special_tokens=False).ids
    assert len(tok.encode("the cat sat on the mat the cat sat")) == 9  # no truncation at 6
    same = tok.encode("The Cat") == tok.encode("the cat")
    assert same is lowercase


def test_tokenizer_json_normalises_accents_and_chinese_characters(tmp_path):
    """BertNormalizer(lowercase) strips accents and spaces CJK characters: "Café" is
    "cafe", "北京" two words; ## pieces continue a word."""
    tok = tokenizer.load_tokenizer(hf_make.tokenizer_json(tmp_path))
    pieces = [tok.id_to_token(i) for i in tok.encode("Café 北京 unaffable")]
    assert pieces == ["cafe", "北", "京", "un", "##aff", "##able"]
    assert tok.word_starts(tok.encode("unaffable")).tolist() == [True, False, False]


def test_word_pieces_are_the_tokenizers_own_words(tmp_path):
    """`word_pieces` splits with the model's pre-tokenizer ("£3m" is one word, as BERT
    sees it; a regex would make it two), concatenates to `encode`, and gives char spans."""
    tok = tokenizer.load_tokenizer(hf_make.tokenizer_json(tmp_path))
    text = "The £3m deal, unaffable!"
    pieces, spans = tok.word_pieces(text)
    assert [text[a:b] for a, b in spans] == ["The", "£3m", "deal", ",", "unaffable", "!"]
    assert [i for p in pieces for i in p] == tok.encode(text)
    assert [len(p) for p in pieces] == [1, 2, 1, 1, 3, 1]


def test_vocab_txt_casing_comes_from_its_config_and_a_guess_warns(tmp_path, capsys):
    """vocab.txt + tokenizer_config.json: do_lower_case decides, silently. Without the
    config the casing is guessed from the vocabulary and stderr says so and how to set it;
    a few upper-case symbols (bert-base-uncased's `ℝ`) still read as uncased."""
    words = hf_make.SPECIALS + [f"w{i}" for i in range(300)] + ["ℝ", "##ℝ"]
    (tmp_path / "vocab.txt").write_text("\n".join(words) + "\n")
    tok = tokenizer.load_tokenizer(tmp_path / "vocab.txt")
    err = capsys.readouterr().err
    assert tok.lowercase and "guessed uncased" in err and '"do_lower_case": false' in err
    (tmp_path / "tokenizer_config.json").write_text('{"do_lower_case": false}')
    tok = tokenizer.load_tokenizer(tmp_path / "vocab.txt")
    assert not tok.lowercase and capsys.readouterr().err == ""
    cased = hf_make.SPECIALS + ["Word", "Paris", "the", "of"]
    assert not tokenizer.guess_lowercase(cased) and tokenizer.guess_lowercase(words)


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("notes.txt", "hello world\nthis is text\n", r"notes.txt: not a WordPiece vocab.txt"),
        ("config.json", "{}", "configuration file, not a tokenizer"),
        ("tokenizer.json", "not json", "not a Hugging Face tokenizer.json"),
        ("tokenizer.json", "bpe", "model type 'BPE' is not supported"),
    ],
)
def test_a_wrong_tokenizer_file_is_one_clear_error(tmp_path, name, content, message):
    """A plain text file, a config file, a broken or non-WordPiece tokenizer.json: one
    UserError naming the file (a plain .txt used to end in a TypeError traceback)."""
    path = tmp_path / name
    if content == "bpe":
        from tokenizers import Tokenizer, models

        Tokenizer(models.BPE()).save(str(path))
    else:
        path.write_text(content)
    with pytest.raises(UserError, match=message):
        tokenizer.load_tokenizer(path)


def test_copy_tokenizer_files_brings_the_casing_along(tmp_path):
    """A copied tokenizer.json keeps its tokenizer_config.json and loads as the same
    tokenizer; a vocab.txt copy keeps the config that sets its casing."""
    src = hf_make.tokenizer_json(tmp_path / "src", lowercase=False)
    copy = tokenizer.copy_tokenizer_files(src.parent, tmp_path / "dst")
    assert copy.name == "tokenizer.json"
    assert (tmp_path / "dst" / "tokenizer_config.json").is_file()
    again = tokenizer.load_tokenizer(tmp_path / "dst")
    assert not again.lowercase
    assert again.encode("Hello World") == [again.token_to_id("Hello"), again.unk_id]


@pytest.mark.parametrize("kind", ["sentencepiece", "vocab.txt", "tokenizer.json"])
def test_export_hf_tokenizer_encodes_as_jaxbert_does(tmp_path, sp_model, kind):
    """A jaxbert tokenizer written for transformers (tokenizer.json + tokenizer.model or
    vocab.txt + tokenizer_config.json) encodes text with the same ids, a sentencepiece
    model included (its normaliser, whitespace stripping and byte fallback)."""
    from tokenizers import Tokenizer as HF

    source = {"sentencepiece": sp_model, "vocab.txt": FIXTURES / "vocab.txt",
              "tokenizer.json": None}[kind]  # fmt: skip
    if source is None:
        source = hf_make.tokenizer_json(tmp_path / "src")
    out = tmp_path / "out"
    out.mkdir()
    names = tokenizer.export_hf_tokenizer(source, out, 128)
    assert "tokenizer.json" in names and "tokenizer_config.json" in names
    config = json.loads((out / "tokenizer_config.json").read_text())
    assert config["model_max_length"] == 128 and config["cls_token"] == "[CLS]"
    ours, hf = tokenizer.load_tokenizer(source), HF.from_file(str(out / "tokenizer.json"))
    for text in [*SENTENCES[:2], "  Extra  spaces ", "naïve café 日本 ✓", "The cat sat."]:
        assert hf.encode(text, add_special_tokens=False).ids == ours.encode(text), text
    ids = hf.encode("The cat").ids
    assert ids[0] == ours.cls_id and ids[-1] == ours.sep_id
