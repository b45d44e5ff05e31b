"""WSD: the framework's scorer by hand, the readers, centroid 1-NN and the MFS back-off."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from jaxbert.errors import UserError
from jaxbert.evals import wsd
from tests.evals.conftest import FIX


def test_scorer_matches_scorer_java_by_hand():
    """Right if any gold key; two answers share the credit; an id not in gold is skipped;
    an unanswered instance costs recall only. ok = 1 + 1 + ½ = 2.5, notok = ½."""
    gold = {"a": {"k1"}, "b": {"k2", "k3"}, "c": {"k4"}, "d": {"k5"}}
    system = {"a": "k1", "b": "k3", "c": {"k4", "kx"}, "e": "k9"}
    s = wsd.score(gold, system)
    p, r = 2.5 / 3, 2.5 / 4
    assert s["P"] == pytest.approx(p) and s["R"] == pytest.approx(r)
    assert s["F1"] == pytest.approx(2 * p * r / (p + r))
    assert wsd.score(gold, {})["F1"] == 0.0


def test_readers_on_the_fixture(eval_data):
    inst = wsd.read_framework_xml(eval_data / wsd.FRAMEWORK / "ALL.data.xml")
    assert inst.ids[0] == "toyA.d000.s000.t000" and inst.targets[0] == [4]
    assert inst.words[0][4] == "bank" and inst.lemmas[3] == "kite" and inst.pos[2] == "VERB"
    gold = wsd.read_keys(eval_data / wsd.FRAMEWORK / "ALL.gold.key.txt")
    assert gold["toyB.d000.s000.t000"] == {"play%2:33:00::", "play%2:36:00::"}
    index = wsd.read_sense_index(eval_data / wsd.SENSES)
    assert index[("kite", "1")] == ["kite%1:06:00::", "kite%1:05:00::"]
    known = {k for keys in index.values() for k in keys}
    semcor, keys = wsd.read_semcor(eval_data / wsd.SEMCOR, known)
    # loan's key is not in the index and muddy has no WN 3.0 synset: both dropped
    assert keys == ["bank%1:14:00::", "bank%1:14:00::", "bank%1:17:01::", "play%2:33:00::"]
    assert semcor.words[3][4] == "San Francisco" and semcor.targets[2] == [2]


def test_mfs_baseline_by_hand(eval_data):
    """MFS picks bank's money sense (2 SemCor tags to 1): wrong for the river bank, right
    for the loan; play's one tagged sense is a gold key; kite has no SemCor sense so its
    first listed key (wrong); zzz is not in WordNet: unanswered. P ½, R ⅖."""
    res = wsd.evaluate(lambda w, t: None, eval_data, lambda x: {}, 0)
    mfs = res["results"]["mfs"]
    assert mfs["decided_by"] == {"backoff_mfs": 3, "backoff_first_listed": 1, "unanswered": 1}
    assert mfs["scores"]["ALL"]["P"] == pytest.approx(0.5)
    assert mfs["scores"]["ALL"]["R"] == pytest.approx(0.4)
    assert mfs["scores"]["toyA"]["F1"] == pytest.approx(0.5)
    assert mfs["scores"]["toyB"]["R"] == pytest.approx(1 / 3)


def test_nearest_centroid_and_backoffs():
    """The nearest centroid among the lemma's candidates wins over frequency; a candidate
    set without centroids backs off to MFS."""
    inst = wsd.Instances(
        [["x"], ["y"]], [[0], [0]], ["i1", "i2"], ["bank", "play"], ["NOUN", "VERB"]
    )
    index = {("bank", "1"): ["b_money", "b_river"], ("play", "2"): ["p1", "p2"]}
    cents = wsd.centroids(
        np.array([[1.0, 0], [0, 1.0], [0, 2.0]]), ["b_money", "b_river", "b_river"]
    )
    np.testing.assert_allclose(cents["b_river"], [0, 1])
    vectors = np.array([[0.1, 0.9], [1.0, 1.0]])
    preds, how = wsd.predict(inst, vectors, index, cents, Counter({"b_money": 5, "p2": 1}))
    assert preds == {"i1": "b_river", "i2": "p2"}
    assert how == {"nearest_centroid": 1, "backoff_mfs": 1}


def test_centroid_run_on_the_fixture_with_a_micro_model(eval_data):
    """Embedding SemCor and the test sentences: bank and play are decided by centroids,
    kite by its first listed key, zzz is unanswered; play is right whatever the model."""
    from tests.helpers import micro_embedder

    emb = micro_embedder()
    from jaxbert.evals.run import fitter

    res = wsd.evaluate(emb.word_vectors, eval_data, fitter(["none", "center"]), 0)
    assert res["semcor_instances"] == 4 and res["sense_keys_with_centroid"] == 3
    for kind in ("none", "center"):
        r = res["results"][kind]
        assert r["decided_by"] == {
            "nearest_centroid": 3,
            "backoff_first_listed": 1,
            "unanswered": 1,
        }
        assert r["scores"]["ALL"]["P"] >= 0.25


def test_malformed_files_name_file_and_line(tmp_path):
    bad = tmp_path / "gold.txt"
    bad.write_text("a art%1:09:00::\nb\n")
    with pytest.raises(UserError, match=r"gold.txt:2: expected 'instance_id sense_key"):
        wsd.read_keys(bad)
    xml = tmp_path / "x.xml"
    xml.write_text((FIX / "wsd_all.data.xml").read_text().replace("</sentence>", "", 1))
    with pytest.raises(UserError, match=r"x.xml:\d+: not well-formed XML"):
        wsd.read_framework_xml(xml)
    tsv = tmp_path / "semcor.tsv"
    tsv.write_text("w0\tthe\tthe\n")
    with pytest.raises(UserError, match="semcor.tsv:1: expected 7 tab-separated fields"):
        wsd.read_semcor(tsv, set())
    senses = tmp_path / "senses.tsv"
    senses.write_text("bank\t1\n")
    with pytest.raises(UserError, match="senses.tsv:1: 'bank' is not a sense key"):
        wsd.read_sense_index(senses)


@pytest.mark.data
def test_real_framework_and_semcor_counts(shared_data):
    """The readers on the real files give the published counts (Raganato et al. Table 2;
    SemCor: 226,036 of 234,136 tags have a WN 3.0 synset, fewer once the index joins)."""
    fw = shared_data / wsd.FRAMEWORK
    inst = wsd.read_framework_xml(fw / "ALL.data.xml")
    gold = wsd.read_keys(fw / "ALL.gold.key.txt")
    assert len(inst.ids) == len(gold) == 7253
    counts = Counter(i.split(".")[0] for i in inst.ids)
    assert counts == {"senseval2": 2282, "senseval3": 1850, "semeval2007": 455,
                      "semeval2013": 1644, "semeval2015": 1022}  # fmt: skip
    index = wsd.read_sense_index(shared_data / wsd.SENSES)
    known = {k for keys in index.values() for k in keys}
    _, keys = wsd.read_semcor(shared_data / wsd.SEMCOR, known, max_sentences=2000)
    assert 0.8 * 2000 * 5 < len(keys) < 2000 * 15
