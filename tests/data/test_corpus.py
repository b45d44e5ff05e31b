"""Tests for jaxbert.data.corpus: document readers and sentence splitting."""

from __future__ import annotations

import gzip
import shutil
import sys
from pathlib import Path

import pytest

from jaxbert.data import corpus
from jaxbert.errors import UserError

FIXTURES = Path(__file__).parents[1] / "fixtures" / "data"
WIKI_TINY = FIXTURES / "wiki_tiny.txt"
SHARED_DATA = Path(__file__).parents[2] / "../shared/data"


def test_wikiextractor_documents_drop_title_and_keep_paragraphs():
    """WikiExtractor files yield one document per <doc>, without the title line."""
    docs = list(corpus.read_documents(WIKI_TINY))
    assert len(docs) == WIKI_TINY.read_text().count("<doc ")
    assert docs[0][0].startswith("Attila ( or ; fl. 434")  # title "Attila" dropped
    assert all(p and not p.startswith("<") for d in docs for p in d)


def test_plain_text_documents_split_on_blank_lines():
    """google-bert plain text: blank lines separate documents, each line is kept."""
    docs = list(corpus.read_documents(FIXTURES / "plain.txt"))
    assert [len(d) for d in docs] == [3, 3, 1]
    assert docs[2] == ["Short third document."]


def test_gzip_reads_like_plain(tmp_path):
    """A .gz file yields exactly the documents of its uncompressed content."""
    gz = tmp_path / "wiki.txt.gz"
    gz.write_bytes(gzip.compress(WIKI_TINY.read_bytes()))
    assert list(corpus.read_documents(gz)) == list(corpus.read_documents(WIKI_TINY))


def test_directory_is_read_recursively_skipping_docs(tmp_path):
    """Directories are read in sorted order; README/LICENSE/.md/hidden files are skipped."""
    (tmp_path / "sub").mkdir()
    shutil.copy(FIXTURES / "plain.txt", tmp_path / "sub" / "b.txt")
    shutil.copy(FIXTURES / "plain.txt", tmp_path / "a.txt")
    (tmp_path / "README.md").write_text("not corpus text\n")
    (tmp_path / "LICENSE").write_text("not corpus text\n")
    files = corpus.list_corpus_files([tmp_path])
    assert [f.name for f in files] == ["a.txt", "b.txt"]
    assert len(list(corpus.iter_corpus([tmp_path]))) == 6


def test_empty_file_and_empty_document_are_counted(tmp_path):
    """Empty files and <doc>s with only a title are skipped and counted, not yielded."""
    (tmp_path / "empty.txt").write_text("\n\n")
    (tmp_path / "w.txt").write_text(
        '<doc id="1">\nTitle\n\n</doc>\n<doc id="2">\nT\nText.\n</doc>\n'
    )
    stats = corpus.ReadStats()
    docs = list(corpus.iter_corpus([tmp_path], stats))
    assert docs == [["Text."]]
    assert (stats.empty_files, stats.empty_documents, stats.documents) == (1, 1, 1)


def test_empty_corpus_directory_is_a_user_error(tmp_path):
    """A directory without text files raises a UserError naming it."""
    (tmp_path / "README.md").write_text("x")
    with pytest.raises(UserError, match=str(tmp_path)):
        corpus.list_corpus_files([tmp_path])


def test_undecodable_lines_are_skipped_and_located(tmp_path):
    """Invalid UTF-8 lines are dropped, counted, and the first one's file:line recorded."""
    path = tmp_path / "bad.txt"
    path.write_bytes(b"Good line.\n\xff\xfe broken\nAnother good line.\n")
    stats = corpus.ReadStats()
    assert list(corpus.read_documents(path, stats)) == [["Good line.", "Another good line."]]
    assert stats.undecodable_lines == 1 and stats.first_undecodable == f"{path}:2"


def test_latin1_file_is_reported_not_silently_dropped(tmp_path):
    """A Latin-1 file loses only its non-ASCII lines, and the warning says how many, in how
    many files, and where the first one is."""
    path = tmp_path / "latin1.txt"
    path.write_bytes("Plain line.\nCafé crème.\nNaïve façade.\n".encode("latin-1"))
    stats = corpus.ReadStats()
    assert list(corpus.iter_corpus([tmp_path], stats)) == [["Plain line."]]
    assert (stats.undecodable_lines, stats.undecodable_files) == (2, 1)
    warning = stats.undecodable_warning()
    assert "skipped 2 line(s)" in warning and f"first at {path}:2" in warning
    assert "--strict" in warning
    assert corpus.ReadStats().undecodable_warning() is None


def test_strict_refuses_the_first_undecodable_line(tmp_path):
    """With strict=True an undecodable line is a UserError naming file:line, not a skip."""
    path = tmp_path / "bad.txt"
    path.write_bytes(b"Good line.\n\xff\xfe broken\n")
    with pytest.raises(UserError, match=f"{path}:2: not valid UTF-8"):
        list(corpus.iter_corpus([path], strict=True))
    gz = tmp_path / "bad.txt.gz"
    gz.write_bytes(gzip.compress(path.read_bytes()))
    with pytest.raises(UserError, match=f"{gz}:2: not valid UTF-8"):
        list(corpus.read_documents(gz, strict=True))


def test_truncated_gzip_is_a_user_error(tmp_path):
    """A gzip cut short (a partial download) is a UserError naming the file, not EOFError."""
    cut = tmp_path / "cut.gz"
    cut.write_bytes(gzip.compress(WIKI_TINY.read_bytes())[:2000])
    with pytest.raises(UserError, match="cut.gz: not a valid gzip file"):
        list(corpus.iter_corpus([cut]))


def test_malformed_inputs_raise_user_errors(tmp_path):
    """Missing paths, unterminated <doc>, and corrupt gzip raise a UserError naming the file."""
    with pytest.raises(UserError, match="does not exist"):
        corpus.list_corpus_files([tmp_path / "nope"])
    unterminated = tmp_path / "u.txt"
    unterminated.write_text('<doc id="1">\nT\nText.\n')
    with pytest.raises(UserError, match="u.txt: unterminated"):
        list(corpus.read_documents(unterminated))
    bad_gz = tmp_path / "x.gz"
    bad_gz.write_bytes(b"not gzip at all")
    with pytest.raises(UserError, match="x.gz"):
        list(corpus.read_documents(bad_gz))


def test_tfds_without_tensorflow_datasets_is_a_user_error(monkeypatch):
    """tfds: corpora need tensorflow_datasets; without it the error says what to install."""
    monkeypatch.setitem(sys.modules, "tensorflow_datasets", None)
    with pytest.raises(UserError, match="tensorflow-datasets"):
        list(corpus.iter_corpus(["tfds:wikipedia/20230601.en:train"]))


def test_sentence_splitting_handles_abbreviations():
    """Paragraphs split into sentences; abbreviations and decimals do not end a sentence."""
    text = "Dr. Smith went to Washington D.C. on Jan. 5. He paid $3.50 for it. Then he left."
    assert corpus.split_sentences([text, "  ", "One more."]) == [
        "Dr. Smith went to Washington D.C. on Jan. 5.",
        "He paid $3.50 for it.",
        "Then he left.",
        "One more.",
    ]


@pytest.mark.data
@pytest.mark.skipif(not (SHARED_DATA / "wikipedia").is_dir(), reason="../shared/data absent")
def test_shared_wikipedia_file_reads_cleanly():
    """A shared Wikipedia file yields one document per <doc> with no undecodable lines."""
    path = SHARED_DATA / "wikipedia" / "AA" / "wiki_00.gz"
    stats = corpus.ReadStats()
    docs = list(corpus.read_documents(path, stats))
    with gzip.open(path, "rt") as f:
        n_docs = f.read().count("<doc ")
    assert len(docs) + stats.empty_documents == n_docs
    assert stats.undecodable_lines == 0


def test_tfds_corpus_reads_documents_offline(monkeypatch):
    """A tfds: source yields one document per example (its non-empty lines), reads the
    split named in the spec from the given data_dir, never asks TFDS to download, and a
    missing feature is a UserError naming the features there are."""
    from tests.fake_tfds import make_module

    fake = make_module(
        {
            ("wiki/en", "train"): [{"text": "First para.\n\nSecond para.\n"}, {"text": "  \n"}],
            ("wiki/en", "validation"): [{"text": "Held out."}],
        },
        {},
    )
    monkeypatch.setitem(sys.modules, "tensorflow_datasets", fake)
    docs = list(
        corpus.iter_corpus(["tfds:wiki/en:validation", "tfds:wiki/en"], tfds_data_dir="/tfds")
    )
    assert docs == [["Held out."], ["First para.", "Second para."]]
    assert [c["split"] for c in fake.calls] == ["validation", "train"]
    assert all(c["download"] is False and c["data_dir"] == "/tfds" for c in fake.calls)
    with pytest.raises(UserError, match="no feature 'body'"):
        list(corpus.iter_corpus(["tfds:wiki/en"], tfds_feature="body"))
    with pytest.raises(UserError, match="tfds:wiki/de"):
        list(corpus.iter_corpus(["tfds:wiki/de"]))
