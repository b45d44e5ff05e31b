"""Word similarity: the reader (CRLF, malformed lines), Spearman ρ, context search."""

from __future__ import annotations

import numpy as np
import pytest

from jaxbert.errors import UserError
from jaxbert.evals import wordsim
from jaxbert.evals.run import fitter
from tests.evals.conftest import FIX


def test_reader_handles_crlf_and_no_final_newline():
    pairs = wordsim.read_pairs(FIX / "wordsim_toy.txt")
    assert pairs[0] == ("bank", "river", 5.0) and pairs[-1] == ("river", "muddy", 6.0)
    assert len(pairs) == 6


def test_spearman_by_hand():
    """Cosines ordered as the gold scores: ρ = 1; reversed: ρ = −1."""
    vec = {"a": np.array([1.0, 0]), "b": np.array([1.0, 0.1]), "c": np.array([0.0, 1]),
           "d": np.array([-1.0, 0.2])}  # fmt: skip
    pairs = [("a", "b", 9.0), ("a", "c", 5.0), ("a", "d", 1.0)]
    assert wordsim.spearman(pairs, vec) == pytest.approx(1.0)
    assert wordsim.spearman([(a, b, -s) for a, b, s in pairs], vec) == pytest.approx(-1.0)


def test_contexts_are_capped_per_word_and_matched_lowercase():
    sentences = [["The", "Bank", "sat"], ["a", "bank"], ["bank", "river", "bank"]]
    words, targets, owners = wordsim.find_contexts(sentences, {"bank", "river"}, 2)
    assert owners == ["bank", "bank", "river"]
    assert targets == [[1], [1], [1]] and len(words) == 3


def test_evaluate_on_the_fixture(eval_data):
    """Context vectors (contexts from a small sample, the rest embedded alone) and the
    input table, each under every correction; ρ in [−1, 1] for every set."""
    from tests.helpers import micro_embedder

    sample = [["the", "bank", "of", "the", "river"], ["the", "cat", "sat"]] * 30
    res = wordsim.evaluate(micro_embedder(), eval_data, sample, fitter(["none", "center"]), 4)
    assert res["words"] == 11 and res["words_with_context"] == 3
    for kind in ("context", "table"):
        for rho in res["results"][kind].values():
            assert -1 <= rho["EN-TOY"] <= 1


def test_malformed_line_is_named(tmp_path):
    f = tmp_path / "EN-BAD.txt"
    f.write_text("a\tb\t1\nc\td\tmany\n")
    with pytest.raises(UserError, match=r"EN-BAD.txt:2: expected 'word1<TAB>word2<TAB>score'"):
        wordsim.read_pairs(f)
