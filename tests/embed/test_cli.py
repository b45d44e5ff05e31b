"""`jaxbert embed` and `jaxbert embed stats` through the CLI: tables, files, errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from jaxbert import cli
from tests.conftest import WIKI_TINY
from tests.helpers import micro_embedder


@pytest.fixture
def ckpt(tmp_path):
    return micro_embedder(tmp_path)[1]


def test_demo_prints_a_symmetric_table_and_saves_the_index(ckpt, tmp_path, capsys):
    """`embed --demo`: a 4×4 table, 1.000 on the diagonal, symmetric; the .npz holds the
    vectors, which text and the word's character span in it."""
    out_npz = tmp_path / "v.npz"
    assert cli.main(["embed", "--init", str(ckpt), "--demo", "--output", str(out_npz)]) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith("[")]
    assert len(rows) == 4 and "bank" in out
    sims = np.array([[float(x) for x in r.split()[-4:]] for r in rows])
    np.testing.assert_allclose(np.diag(sims), 1.0, atol=1e-3)
    np.testing.assert_allclose(sims, sims.T, atol=1e-3)
    z = np.load(out_npz)
    assert z["vectors"].shape == (4, 32) and z["text_index"].tolist() == [0, 1, 2, 3]
    for text, (s, e) in zip(z["texts"], z["char_span"]):
        assert text[s:e] == "bank"


def test_stats_then_apply_a_saved_correction(ckpt, tmp_path, capsys):
    """`embed stats` reports every layer (embeddings + 4) raw and centred, and saves the
    three corrections; `embed --correction` applies one and records it with the vectors."""
    corr, stats = tmp_path / "corr", tmp_path / "stats.json"
    argv = ["embed", "stats", "--init", str(ckpt), "--corpus", str(WIKI_TINY), "--sentences",
            "60", "--save-corrections", str(corr), "--output", str(stats)]  # fmt: skip
    assert cli.main(argv) == 0
    result = json.loads(stats.read_text())
    assert [r["layer"] for r in result["layers"]] == [0, 1, 2, 3, 4]
    for r in result["layers"]:
        assert abs(r["centered"]["random_cosine"]) < abs(r["raw"]["random_cosine"]) + 0.05
    assert sorted(p.name for p in corr.iterdir()) == ["abtt.npz", "center.npz", "whiten.npz"]
    out_npz = tmp_path / "s.npz"
    argv = ["embed", "--init", str(ckpt), "--text", "the cat sat", "--text", "a bank",
            "--correction", str(corr / "whiten.npz"), "--output", str(out_npz)]  # fmt: skip
    assert cli.main(argv) == 0
    assert "whiten-corrected" in capsys.readouterr().out
    assert str(np.load(out_npz)["correction_kind"]) == "whiten"


@pytest.mark.parametrize(
    "argv, error",
    [(["--layer", "9", "--demo"], "--layer 9 is out of range: the model has 4 layers"),
     (["--text", "no such word", "--word", "bank"], "does not occur in text 1"),
     (["--pool", "max", "--demo"], "invalid choice: 'max'"),
     (["--demo", "--correction", "{tmp}/nope.npz"], "not a saved correction"),
     (["stats", "--corpus", "{tmp}/nope.txt"], "--corpus .*nope.txt: not found"),
     (["stats", "--corpus", str(WIKI_TINY), "--max-instances", "20", "--save-corrections", "{tmp}/c"],
      "too small to fit whitening")],
)  # fmt: skip
def test_bad_inputs_give_one_clear_error(ckpt, tmp_path, capsys, argv, error):
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    if argv[0] == "stats":
        full = ["embed", "stats", "--init", str(ckpt), *argv[1:]]
    else:
        full = ["embed", "--init", str(ckpt), *argv]
    with pytest.raises(SystemExit) if "invalid choice" in error else _no_raise():
        code = cli.main(full)
        assert code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    import re

    assert re.search(error, err), err


class _no_raise:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False
