"""tfds: corpora for real: an array_record TFDS dataset built here (no TensorFlow) and
read by random access through tokenizer train, data prepare and a mixture."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from jaxbert import cli
from jaxbert.data import corpus
from jaxbert.errors import UserError
from tests.conftest import REPO, WIKI_TINY

pytest.importorskip("tensorflow_datasets")


@pytest.fixture(scope="module")
def tfds_dir(tmp_path_factory):
    from tests.tfds_toy import build

    root = tmp_path_factory.mktemp("tfds")
    build(root)
    return root


def test_documents_equal_the_source_files(tfds_dir):
    """Every example is one document (TFDS shuffles them when it writes the split); the
    split in the spec is the one read."""
    want = list(corpus.iter_corpus([WIKI_TINY]))
    train = list(corpus.iter_corpus(["tfds:jaxbert_toy_wiki"], tfds_data_dir=str(tfds_dir)))
    val = list(
        corpus.iter_corpus(["tfds:jaxbert_toy_wiki:validation"], tfds_data_dir=str(tfds_dir))
    )
    assert sorted(val) == sorted(want[:2]) and sorted(train) == sorted(want[2:])
    with pytest.raises(UserError, match="has no split 'test'"):
        list(corpus.iter_corpus(["tfds:jaxbert_toy_wiki:test"], tfds_data_dir=str(tfds_dir)))
    with pytest.raises(UserError, match="tfds:nope not found or not prepared"):
        list(corpus.iter_corpus(["tfds:nope"], tfds_data_dir=str(tfds_dir)))


def test_tokenizer_prepare_and_mixture_from_tfds(tfds_dir, tmp_path, prepared_dir, capsys):
    """`tokenizer train` and `data prepare` read tfds:NAME in a fresh process (the builder
    code is not imported there: TFDS reads the prepared files alone); the prepared corpus
    mixes with another prepared with the same tokenizer."""
    env_py = [sys.executable, "-m", "jaxbert.cli"]
    spec, d = "tfds:jaxbert_toy_wiki", ["--tfds-data-dir", str(tfds_dir)]
    tok = tmp_path / "tok"
    for argv in (["tokenizer", "train", "--corpus", spec, *d, "--out", str(tok), "--vocab-size", "600"],
                 ["data", "prepare", "--corpus", spec, *d, "--tokenizer", str(tok),
                  "--out", str(tmp_path / "prep"), "--workers", "0"]):  # fmt: skip
        proc = subprocess.run(env_py + argv, capture_output=True, text=True, cwd=REPO)
        assert proc.returncode == 0, proc.stderr[-2000:]
    manifest = json.loads((tmp_path / "prep" / "manifest.json").read_text())
    assert manifest["documents"] == len(list(corpus.iter_corpus([WIKI_TINY]))) - 2
    other = tmp_path / "prep2"
    assert cli.main(["data", "prepare", "--corpus", str(WIKI_TINY), "--tokenizer", str(tok),
                     "--out", str(other), "--workers", "0"]) == 0  # fmt: skip
    argv = ["data", "inspect", "--corpora", f"tfds={tmp_path / 'prep'},wiki={other}", "--n", "32",
            "--max-seq-length", "64", "--out", str(tmp_path / "x.jsonl")]  # fmt: skip
    assert cli.main(argv) == 0
    assert '"tfds"' in capsys.readouterr().out
