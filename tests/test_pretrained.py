"""Loading an encoder for fine-tuning and embedding (src/jaxbert/pretrained.py): Hugging
Face directories exactly as shipped (tokenizer.json, no vocab.txt), their conversions,
and the tokenizer checks."""

from __future__ import annotations

import json

import pytest

from jaxbert import cli
from jaxbert.data.tokenizer import load_tokenizer
from jaxbert.errors import UserError
from jaxbert.pretrained import find_tokenizer, load_pretrained, resolve_path
from tests.conftest import REPO
from tests.fixtures.hf_tokenizer import make as hf_make

FIXTURES = REPO / "tests" / "fixtures" / "finetune"


@pytest.fixture(scope="module")
def hf_dir(tmp_path_factory):
    return hf_make.hf_model_dir(tmp_path_factory.mktemp("hf") / "model", st=False)


def test_an_hf_directory_as_shipped_brings_its_tokenizer_json(hf_dir):
    """config.json + model.safetensors + tokenizer.json (no vocab.txt): the weights and
    the tokenizer.json beside them, uncased from its own normaliser."""
    pre = load_pretrained(str(hf_dir))
    assert pre.tokenizer_path == hf_dir and find_tokenizer(hf_dir) == hf_dir
    tok = load_tokenizer(pre.tokenizer_path)
    assert tok.path.name == "tokenizer.json" and tok.lowercase
    assert pre.model_cfg.vocab_size == 99 and "Hugging Face checkpoint" in pre.source


def test_a_different_tokenizer_is_refused_the_same_one_in_another_file_is_not(hf_dir, tmp_path):
    """An explicit tokenizer must be the weights' own: the same vocabulary written as
    vocab.txt passes; a cased tokenizer.json is refused naming the key."""
    tok = load_tokenizer(hf_dir)
    (tmp_path / "same").mkdir()
    (tmp_path / "same" / "vocab.txt").write_text("\n".join(tok._pieces) + "\n")
    (tmp_path / "same" / "tokenizer_config.json").write_text('{"do_lower_case": true}')
    assert load_pretrained(str(hf_dir), str(tmp_path / "same")).tokenizer_path == tmp_path / "same"
    cased = hf_make.tokenizer_json(tmp_path / "cased", lowercase=False).parent
    with pytest.raises(UserError, match=r"config\.tokenizer=.* is cased"):
        load_pretrained(str(hf_dir), str(cased))


def test_paths_are_taken_from_the_working_directory_only(tmp_path, monkeypatch):
    """No source-tree fallback: a relative path means the working directory's."""
    monkeypatch.chdir(tmp_path)
    assert resolve_path("runs/x") == tmp_path.joinpath("runs/x").relative_to(tmp_path)
    with pytest.raises(UserError, match="config.init: runs/cpu_smoke does not exist"):
        load_pretrained("runs/cpu_smoke")


def test_finetune_runs_from_the_hf_directory_as_unzipped(hf_dir, tmp_path, capsys):
    """`jaxbert finetune --config.init=DIR` on the shipped layout: trains, writes
    metrics.json naming its headline, and best_params/ carries the tokenizer.json."""
    out = tmp_path / "run"
    argv = ["finetune", "--config", f"{REPO / 'configs' / 'finetune' / 'glue.py'}:mrpc",
            f"--config.init={hf_dir}", f"--config.data_dir={FIXTURES}",
            f"--config.output_dir={out}", "--config.batch_size=8", "--config.max_seq_length=32",
            "--config.num_epochs=1", "--config.log_every=50"]  # fmt: skip
    assert cli.main(argv) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["headline"].startswith("best epoch on dev f1")
    assert metrics["last_epoch_dev"] == metrics["history"][-1]["dev"]
    assert (out / "best_params" / "tokenizer" / "tokenizer.json").is_file()
    assert "step 1/" in capsys.readouterr().out or metrics["num_steps"] < 10
