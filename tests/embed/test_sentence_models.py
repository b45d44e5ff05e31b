"""Sentence-embedding models as shipped: the recipe in their sentence-transformers files
(modules.json, 1_Pooling/config.json) becomes the embedding default, and `embed` works
on the Hugging Face directory as unzipped and on its `convert hf-to-jaxbert` output."""

from __future__ import annotations

import json

import numpy as np
import pytest

from jaxbert import cli
from jaxbert.embed import load_embedder, read_defaults
from jaxbert.embed.states import hidden_states
from jaxbert.errors import UserError
from tests.fixtures.hf_tokenizer import make as hf_make

TEXTS = ["The cat sat on the mat.", "A man is playing a guitar!", "Hello world, £3m deal."]


@pytest.fixture(scope="module")
def st_dir(tmp_path_factory):
    return hf_make.hf_model_dir(tmp_path_factory.mktemp("hf") / "model")


def _manual_mean_all(embedder, text):
    """sentence-transformers' mean pooling by hand: last layer, every real token of
    [CLS] text [SEP] (specials included), then L2-normalised."""
    tok = embedder.tokenizer
    ids = np.array([[tok.cls_id, *tok.encode(text), tok.sep_id]], np.int32)
    h = hidden_states(embedder.model_cfg, embedder.params, ids, np.ones_like(ids), ids * 0)
    v = np.asarray(h[-1, 0]).mean(0)
    return v / np.linalg.norm(v)


def test_the_models_own_pooling_is_the_default(st_dir):
    """modules.json + 1_Pooling (mean_tokens) + Normalize: last layer, mean over all real
    tokens with [CLS]/[SEP], normalised, cut at sentence_bert_config's 32 tokens; the
    vectors equal that recipe computed by hand. Flags still override it."""
    embedder, source = load_embedder(str(st_dir))
    assert (embedder.layer, embedder.sentence_pool, embedder.normalize) == (
        "last",
        "mean_all",
        True,
    )
    assert embedder.max_len == 32 and "1_Pooling" in source
    vectors = embedder.sentence_vectors(TEXTS)
    for text, v in zip(TEXTS, vectors, strict=True):
        np.testing.assert_allclose(v, _manual_mean_all(embedder, text), atol=1e-5)
    words_only = embedder.sentence_vectors(TEXTS, "mean")
    assert not np.allclose(words_only, vectors, atol=1e-3)  # specials are in the mean
    other, _ = load_embedder(str(st_dir), layer="last4", sentence_pool="cls")
    assert (other.layer, other.sentence_pool) == ("last4", "cls")


@pytest.mark.parametrize(
    ("pooling", "extra", "expect"),
    [("pooling_mode_cls_token", None, "cls"),
     ("pooling_mode_max_tokens", None, "pooling .*max_tokens.* is not supported"),
     ("pooling_mode_mean_tokens", "sentence_transformers.models.Dense", "Dense is not supported")],
)  # fmt: skip
def test_pooling_configs_map_or_are_refused_naming_the_file(tmp_path, pooling, extra, expect):
    """CLS pooling maps to `cls`; max pooling and a Dense module (vectors jaxbert would not
    reproduce) are one UserError naming the file."""
    hf_make.st_layout(tmp_path, pooling=pooling)
    if extra:
        modules = json.loads((tmp_path / "modules.json").read_text())
        modules.append({"idx": 3, "name": "3", "path": "3_Dense", "type": extra})
        (tmp_path / "modules.json").write_text(json.dumps(modules))
    if expect == "cls":
        assert read_defaults(tmp_path).sentence_pool == "cls"
    else:
        with pytest.raises(UserError, match=expect):
            read_defaults(tmp_path)


def test_no_sentence_transformers_files_keeps_the_generic_defaults(tmp_path):
    d = read_defaults(tmp_path)
    assert (d.layer, d.sentence_pool, d.normalize, d.source) == ("last4", "mean", False, "")


def test_embed_works_on_the_hf_dir_and_on_its_conversion(st_dir, tmp_path, capsys):
    """`embed --init DIR` on the directory as shipped and `--init OUT` after `convert
    hf-to-jaxbert DIR OUT` give the same vectors: the tokenizer and the pooling recipe
    travel with the conversion."""
    out = tmp_path / "jb"
    assert cli.main(["convert", "hf-to-jaxbert", str(st_dir), str(out)]) == 0
    assert (out / "tokenizer" / "tokenizer.json").is_file()
    assert (out / "1_Pooling" / "config.json").is_file()
    vecs = []
    for init in (st_dir, out):
        npz = tmp_path / f"{init.name}.npz"
        argv = ["embed", "--init", str(init), "--output", str(npz)]
        assert cli.main(argv + [a for t in TEXTS for a in ("--text", t)]) == 0
        vecs.append(np.load(npz)["vectors"])
    assert "mean_all pooling, normalised" in capsys.readouterr().out
    np.testing.assert_allclose(vecs[0], vecs[1], atol=1e-6)


def test_output_never_floods_stdout(st_dir, tmp_path, capsys):
    """With --output, 40 texts print a one-line summary, not a 40×40 cosine table."""
    texts = tmp_path / "t.txt"
    texts.write_text("\n".join(f"the cat sat {i}" for i in range(40)) + "\n")
    npz = tmp_path / "v.npz"
    assert (
        cli.main(["embed", "--init", str(st_dir), "--file", str(texts), "--output", str(npz)]) == 0
    )
    out = capsys.readouterr().out
    assert len(out.splitlines()) <= 2 and "40 32-dim vectors saved to" in out
    assert np.load(npz)["vectors"].shape == (40, 32)


def test_a_missing_tokenizer_is_one_clear_error(tmp_path, capsys):
    """Weights without any tokenizer file: one error line saying to set --tokenizer."""
    d = hf_make.hf_model_dir(tmp_path / "m", st=False)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        (d / name).unlink()
    assert cli.main(["embed", "--init", str(d), "--text", "the cat"]) == 2
    err = capsys.readouterr().err
    assert "no tokenizer found" in err and "--tokenizer" in err and "Traceback" not in err
