"""CoNLL-2003 NER: reader, IOB2 conversion, sub-token alignment, decoding, entity F1."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from jaxbert.errors import UserError
from jaxbert.finetune.tasks import ner

SAMPLE = Path(__file__).resolve().parents[2] / "fixtures" / "finetune" / "conll2003" / "eng.sample"


def _oracle_roundtrip(sentences, tokenizer, max_seq_length):
    """Converts, feeds the gold labels back as predictions, and decodes to word tags."""
    arrays, metas = ner.convert_sentences(sentences, tokenizer, max_seq_length)
    return arrays, metas, ner.decode_predictions(arrays["labels"], metas, len(sentences))


# --- reading ------------------------------------------------------------------------------


def test_iob1_to_iob2():
    """Every entity starts with B-; a B- between same-type entities stays; idempotent."""
    iob1 = ["I-PER", "I-PER", "O", "I-LOC", "B-LOC", "I-LOC", "I-ORG", "I-MISC", "O", "I-LOC"]
    iob2 = ["B-PER", "I-PER", "O", "B-LOC", "B-LOC", "I-LOC", "B-ORG", "B-MISC", "O", "B-LOC"]
    assert ner.iob1_to_iob2(iob1) == iob2
    assert ner.iob1_to_iob2(iob2) == iob2
    assert ner.iob1_to_iob2([]) == []


def test_read_conll_fixture():
    """-DOCSTART- lines are dropped, blank lines split sentences, tags become IOB2."""
    sents = ner.read_conll(SAMPLE)
    assert [len(s.words) for s in sents] == [9, 2, 2, 20]
    assert sents[0].words[:3] == ("UNESCO", "praises", "Danish")
    assert sents[0].tags[:3] == ("B-ORG", "O", "B-MISC")
    last = dict(zip(sents[3].words, sents[3].tags))
    assert last["World"] == "B-ORG" and last["Council"] == "I-ORG"
    assert [last[w] for w in ("Portugal", "Spain", "Greece")] == ["B-LOC"] * 3


def test_read_conll_errors_name_file_and_line(tmp_path):
    """A one-column line or an unknown tag scheme raises a UserError naming file:line."""
    bad = tmp_path / "bad.txt"
    bad.write_text("EU NNP I-NP I-ORG\nrejects\n")
    with pytest.raises(UserError, match=r"bad.txt:2: malformed"):
        ner.read_conll(bad)
    bad.write_text("EU NNP I-NP I-ORG\n\nrejects VBZ I-VP X-PER\n")
    with pytest.raises(UserError, match=r"bad.txt:3: NER tag 'X-PER'"):
        ner.read_conll(bad)
    with pytest.raises(UserError, match="not found"):
        ner.read_conll(tmp_path / "missing.txt")


# --- alignment ----------------------------------------------------------------------------


def test_label_on_first_subtoken_only(tokenizer):
    """Each word's label sits on its first sub-token (weight 1); the rest weigh 0."""
    sent = ner.NerSentence(("Schleswig-Holstein", "in", "1996"), ("B-LOC", "O", "O"))
    arrays, metas = ner.convert_sentences([sent], tokenizer, 16)
    pieces = [len(tokenizer.encode(w)) for w in sent.words]
    assert pieces == [5, 1, 1]  # schle ##swig - holst ##ein | in | 1996
    ids = [tokenizer.cls_id, *tokenizer.encode("Schleswig-Holstein in 1996"), tokenizer.sep_id]
    assert arrays["input_ids"][0, : len(ids)].tolist() == ids
    assert arrays["input_ids"][0, len(ids) :].tolist() == [tokenizer.pad_id] * (16 - len(ids))
    b_loc = ner.LABELS.index("B-LOC")
    assert arrays["labels"][0, :9].tolist() == [0, b_loc, 0, 0, 0, 0, 0, 0, 0]
    assert arrays["label_weights"][0, :9].tolist() == [0, 1, 0, 0, 0, 0, 1, 1, 0]
    assert arrays["input_mask"][0].sum() == 9 and metas[0].word_positions == (1, 6, 7)
    assert arrays["labels"].dtype == np.int32 and arrays["label_weights"].dtype == np.float32


def test_empty_encoding_word_becomes_unk(tokenizer):
    """A word the tokenizer drops entirely still gets a position ([UNK]) and its label."""
    sent = ner.NerSentence(("\u200b", "Paris"), ("O", "B-LOC"))
    arrays, metas = ner.convert_sentences([sent], tokenizer, 8)
    assert arrays["input_ids"][0, 1] == tokenizer.unk_id
    assert ner.decode_predictions(arrays["labels"], metas, 1) == [["O", "B-LOC"]]


def test_word_windows_fit_budget_and_cover_every_word_once():
    """Windows are consecutive, non-overlapping, within budget (except one oversized word)."""
    assert ner.word_windows([2, 2, 3, 1, 9, 1], 5) == [(0, 2), (2, 4), (4, 5), (5, 6)]
    assert ner.word_windows([], 5) == []


def test_long_sentence_windows_roundtrip(tokenizer):
    """A sentence longer than max_seq_length splits into [CLS] … [SEP] windows that decode
    back to exactly the gold tags; an oversized word is cut but keeps its label."""
    sents = ner.read_conll(SAMPLE)
    arrays, metas, decoded = _oracle_roundtrip(sents, tokenizer, 8)
    assert len(metas) > len(sents)
    assert decoded == [list(s.tags) for s in sents]
    assert (arrays["input_ids"][:, 0] == tokenizer.cls_id).all()
    lengths = arrays["input_mask"].sum(1)
    assert (arrays["input_ids"][np.arange(len(lengths)), lengths - 1] == tokenizer.sep_id).all()
    assert arrays["label_weights"].sum() == sum(len(s.words) for s in sents)


def test_oracle_predictions_give_entity_f1_one(tokenizer):
    """Alignment round-trips gold tags exactly: oracle predictions score entity F1 = 1."""
    sents = ner.read_conll(SAMPLE)
    arrays, metas, decoded = _oracle_roundtrip(sents, tokenizer, 128)
    assert len(metas) == len(sents)
    gold = [list(s.tags) for s in sents]
    assert decoded == gold
    assert ner.entity_scores(gold, decoded)["f1"] == 1.0
    logits = np.eye(len(ner.LABELS))[arrays["labels"]]  # [N, S, L] one-hot "logits"
    assert ner.decode_predictions(logits, metas, len(sents)) == gold


def test_unknown_tag_is_user_error(tokenizer):
    """A tag outside the label list is rejected before training, not mid-run."""
    with pytest.raises(UserError, match="B-DATE"):
        ner.convert_sentences([ner.NerSentence(("x",), ("B-DATE",))], tokenizer, 8)


@pytest.mark.data
def test_real_testa_roundtrip(shared_data, tokenizer):
    """On eng.testa: 3,250 sentences, the 5,942 published entities (PER 1,842, LOC 1,837,
    ORG 1,341, MISC 922), and oracle predictions decode to entity F1 = 1.0."""
    sents = ner.read_conll(shared_data / "conll2003" / "eng.testa")
    assert len(sents) == 3250
    gold = [list(s.tags) for s in sents]
    per_type = ner.entity_scores(gold, gold)["per_type"]
    assert {t: v["support"] for t, v in per_type.items()} == {
        "PER": 1842,
        "LOC": 1837,
        "ORG": 1341,
        "MISC": 922,
    }
    for max_seq_length in (128, 24):
        _, _, decoded = _oracle_roundtrip(sents, tokenizer, max_seq_length)
        assert decoded == gold
        assert ner.entity_scores(gold, decoded)["f1"] == 1.0


# --- entity metrics -----------------------------------------------------------------------


def test_get_entities_strict_and_conlleval():
    """Strict IOB2 ignores a stray I-; conlleval mode opens an entity there instead."""
    tags = ["B-PER", "I-PER", "O", "I-LOC", "I-LOC", "B-ORG", "I-PER", "B-MISC"]
    assert ner.get_entities(tags) == [("PER", 0, 2), ("ORG", 5, 6), ("MISC", 7, 8)]
    assert ner.get_entities(tags, strict=False) == [
        ("PER", 0, 2),
        ("LOC", 3, 5),
        ("ORG", 5, 6),
        ("PER", 6, 7),
        ("MISC", 7, 8),
    ]


def test_entity_scores_hand_computed():
    """Gold has 3 entities, prediction 3 of which 2 match exactly (one has a wrong end):
    precision = recall = F1 = 2/3; per type PER 1/1, LOC 1/2 & 1/1."""
    gold = [["B-PER", "I-PER", "O", "B-LOC"], ["B-LOC", "I-LOC", "O"]]
    pred = [["B-PER", "I-PER", "O", "B-LOC"], ["B-LOC", "O", "O"]]
    s = ner.entity_scores(gold, pred)
    assert (s["precision"], s["recall"], s["f1"]) == pytest.approx((2 / 3, 2 / 3, 2 / 3))
    assert s["support"] == 3
    assert s["per_type"]["PER"]["f1"] == 1.0
    assert s["per_type"]["LOC"]["precision"] == pytest.approx(0.5)


def test_entity_scores_edge_cases():
    """No entities anywhere → 0 (not NaN); a missed entity → recall 0; lengths must match."""
    assert ner.entity_scores([["O", "O"]], [["O", "O"]])["f1"] == 0.0
    s = ner.entity_scores([["B-PER"]], [["O"]])
    assert (s["precision"], s["recall"], s["f1"]) == (0.0, 0.0, 0.0)
    s = ner.entity_scores([["B-PER", "O"]], [["I-PER", "O"]])  # stray I-: strict mode misses
    assert s["f1"] == 0.0
    assert ner.entity_scores([["B-PER", "O"]], [["I-PER", "O"]], strict=False)["f1"] == 1.0
    with pytest.raises(ValueError):
        ner.entity_scores([["O"]], [["O", "O"]])


def test_unknown_tag_and_undecodable_bytes_name_file_and_line(tmp_path, tokenizer):
    """A well-formed tag outside the label list names the file and the word's line as it
    is read (every line, not only those a run samples), a 3-column file (the NER column
    missing) is told so, a line with other columns is named, and bytes that are not
    UTF-8 name file:line."""
    bad = tmp_path / "bad.txt"
    bad.write_text("-DOCSTART- -X- -X- O\n\nEU NNP I-NP B-ORG\nrejects VBZ I-VP B-DATE\n")
    with pytest.raises(UserError, match=r"bad.txt:4: NER tag 'B-DATE' \(the last column\) is"):
        ner.read_conll(bad)
    bad.write_text("EU NNP I-NP\nrejects VBZ I-VP\n")
    with pytest.raises(UserError, match=r"bad.txt:1: NER tag 'I-NP'.*has 3 columns.*has 4"):
        ner.read_conll(bad)
    bad.write_text("EU NNP I-NP B-ORG\nrejects VBZ O\n")
    with pytest.raises(UserError, match=r"bad.txt:2: 3 columns, but the file's first line has 4"):
        ner.read_conll(bad)
    bad.write_bytes(b"EU NNP I-NP I-ORG\n\nBr\xfcssel NNP I-NP I-LOC\n")
    with pytest.raises(UserError, match=r"bad.txt:3: not valid UTF-8"):
        ner.read_conll(bad)
