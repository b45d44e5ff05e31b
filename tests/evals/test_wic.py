"""WiC: the reader, the threshold chosen on train, accuracy by hand."""

from __future__ import annotations

import numpy as np
import pytest

from jaxbert.errors import UserError
from jaxbert.evals import wic
from jaxbert.evals.run import WIC_DIR, fitter


def test_threshold_and_accuracy_by_hand():
    """Separable cosines: the threshold falls between the classes (midpoint 0.5), accuracy
    1; one overlapping pair costs exactly one of five."""
    cos = np.array([0.1, 0.2, 0.8, 0.9])
    labels = np.array([False, False, True, True])
    t = wic.best_threshold(cos, labels)
    assert t == pytest.approx(0.5) and wic.accuracy(cos, labels, t) == 1.0
    cos2, labels2 = np.append(cos, 0.15), np.append(labels, True)
    assert wic.accuracy(cos2, labels2, wic.best_threshold(cos2, labels2)) == pytest.approx(0.8)
    v = np.array([[1, 0], [1, 0], [1, 0], [0, 1]], np.float32)
    np.testing.assert_allclose(wic.pair_cosines(v), [1.0, 0.0])


def test_reader_and_evaluation_on_the_fixture(eval_data):
    split = wic.read_split(eval_data / WIC_DIR, "train")
    assert len(split.words) == 8 and split.words[0][split.targets[0][0]] == "bank"
    assert split.labels.tolist() == [False, True, False, True]

    def vectors_of(words, targets):  # a stand-in encoder: the target word's letters
        return np.array([[len(w[t[0]]), w[t[0]].count("a") + 1.0] for w, t in zip(words, targets)])

    res = wic.evaluate(vectors_of, eval_data / WIC_DIR, fitter(["none", "center"]))
    assert res["pairs"] == {"train": 4, "dev": 2, "test": 2}
    assert set(res["results"]) == {"none", "center"}
    for r in res["results"].values():
        assert {"threshold", "train_accuracy", "dev_accuracy", "test_accuracy"} <= set(r)


@pytest.mark.parametrize(
    "line, error",
    [("bank\tN\t4-1\tone two\n", "expected 5 tab-separated fields, got 4"),
     ("bank\tN\t4\ta b c d e\ta b\n", "the index field must be I-J"),
     ("bank\tN\t9-0\ta b\tc d\n", "index 9 is past the sentence's 2 words")],
)  # fmt: skip
def test_malformed_lines_name_file_and_line(tmp_path, line, error):
    (tmp_path / "train").mkdir()
    (tmp_path / "train" / "train.data.txt").write_text("cat\tN\t1-1\tthe cat\tthe cat\n" + line)
    (tmp_path / "train" / "train.gold.txt").write_text("T\nF\n")
    with pytest.raises(UserError, match=f"train.data.txt:2: {error}"):
        wic.read_split(tmp_path, "train")


def test_bad_gold_labels(tmp_path):
    (tmp_path / "dev").mkdir()
    (tmp_path / "dev" / "dev.data.txt").write_text("cat\tN\t1-1\tthe cat\tthe cat\n")
    (tmp_path / "dev" / "dev.gold.txt").write_text("yes\n")
    with pytest.raises(UserError, match="dev.gold.txt:1: a label must be T or F"):
        wic.read_split(tmp_path, "dev")


@pytest.mark.data
def test_real_wic_counts(shared_data):
    """The published sizes, balanced labels, and every index inside its sentence."""
    for split, n in (("train", 5428), ("dev", 638), ("test", 1400)):
        s = wic.read_split(shared_data / WIC_DIR, split)
        assert len(s.labels) == n and s.labels.sum() == n // 2
