"""FLORES retrieval: top-1 by hand, the reader's errors, a run on the fixture."""

from __future__ import annotations

import numpy as np
import pytest

from jaxbert.errors import UserError
from jaxbert.evals import flores
from jaxbert.evals.run import fitter


def test_top1_by_hand():
    """Each query nearest its own key: 1.0; queries rotated by one row: 0; two of three
    queries nearest key 0: 2/3."""
    keys = np.eye(3)
    assert flores.top1(keys + 0.1, keys) == 1.0
    assert flores.top1(np.roll(keys, 1, axis=0), keys) == 0.0
    q = np.array([[1.0, 0.1, 0], [0.9, 0.2, 0], [0, 0, 1]])
    assert flores.top1(q, keys) == pytest.approx(2 / 3)


def test_evaluate_on_the_fixture(eval_data):
    from tests.helpers import micro_embedder

    emb = micro_embedder()
    res = flores.evaluate(
        emb.sentence_vectors, eval_data / flores.DIR, [], fitter(["none", "center"])
    )
    assert res["languages"] == ["deu_Latn"] and res["sentences"] == 5
    for r in res["results"].values():
        assert 0 <= r["deu_Latn"]["to_en"] <= 1 and 0 <= r["deu_Latn"]["from_en"] <= 1


def test_missing_language_and_misaligned_files_are_named(eval_data):
    root = eval_data / flores.DIR
    with pytest.raises(UserError, match=r"no kor_Hang.devtest in .*present: deu_Latn, eng_Latn"):
        flores.evaluate(lambda t: None, root, ["kor_Hang"], fitter(["none"]))
    (root / "tur_Latn.devtest").write_text("bir\niki\n")
    with pytest.raises(UserError, match="tur_Latn.devtest has 2 lines, eng_Latn has 5"):
        flores.evaluate(lambda t: None, root, ["tur_Latn"], fitter(["none"]))
    (root / "vie_Latn.devtest").write_text("a\n\nb\n")
    with pytest.raises(UserError, match=r"vie_Latn.devtest:2: an empty line"):
        flores.evaluate(lambda t: None, root, ["vie_Latn"], fitter(["none"]))


@pytest.mark.data
def test_real_flores_files_are_aligned(shared_data):
    root = shared_data / flores.DIR
    assert len(flores.available(root)) == 10
    assert all(len(flores.read_language(root, x)) == 1012 for x in flores.available(root))
