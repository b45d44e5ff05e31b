"""SQuAD v1.1: reader, doc-stride windows, span decoding, official EM/F1, article split."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from jaxbert.errors import UserError
from jaxbert.finetune.tasks import squad, squad_answers

SAMPLE = (
    Path(__file__).resolve().parents[2] / "fixtures" / "finetune" / "squad" / "sample-v1.1.json"
)


def oracle_logits(arrays: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Start/end logits that peak (10 vs 0) at each window's gold positions."""
    n, s = arrays["input_ids"].shape
    start, end = np.zeros((n, s), np.float32), np.zeros((n, s), np.float32)
    start[np.arange(n), arrays["start_positions"]] = 10.0
    end[np.arange(n), arrays["end_positions"]] = 10.0
    return start, end


def run_oracle(articles, tokenizer, **kw) -> tuple[dict[str, float], dict[str, str]]:
    examples = squad.read_examples(articles)
    arrays, meta = squad.convert_examples(examples, tokenizer, **kw)
    predictions, _ = squad_answers.postprocess(examples, meta, *oracle_logits(arrays), tokenizer)
    return squad_answers.evaluate(articles, predictions), predictions


# --- reading ------------------------------------------------------------------------------


def test_split_doc_tokens_maps_chars_to_words():
    """Whitespace runs separate words; each char (spaces too) maps to the word it ends in."""
    tokens, char_to_word = squad.split_doc_tokens(" ab  c\td\u202fe")
    assert tokens == ("ab", "c", "d", "e")
    assert char_to_word == [-1, 0, 0, 0, 0, 1, 1, 2, 2, 3]


def test_read_examples_positions_and_answers():
    """Each question becomes one example with all gold texts and the first answer's words."""
    examples = squad.read_examples(squad.load_squad(SAMPLE))
    assert len(examples) == 15
    ex = next(e for e in examples if e.qas_id == "t1")
    assert ex.answers == ("10 July 1856",)
    assert ex.doc_tokens[ex.start_position : ex.end_position + 1] == ("(10", "July", "1856")
    assert ex.doc_tokens is examples[1].doc_tokens  # shared per paragraph


def test_training_drops_misaligned_answers(tmp_path):
    """In training, an answer whose text is not at answer_start is dropped; eval keeps it."""
    qas = [{"id": "q", "question": "?", "answers": [{"answer_start": 0, "text": "world"}]}]
    articles = [{"title": "t", "paragraphs": [{"context": "hello world", "qas": qas}]}]
    assert squad.read_examples(articles, is_training=True) == []
    [ex] = squad.read_examples(articles)
    assert ex.start_position is None and ex.answers == ("world",)


def test_load_squad_errors(tmp_path):
    """A missing, non-JSON or non-SQuAD file is a UserError naming it."""
    with pytest.raises(UserError, match="not found"):
        squad.load_squad(tmp_path / "nope.json")
    (tmp_path / "bad.json").write_text("{\n oops")
    with pytest.raises(UserError, match=r"bad.json:2"):
        squad.load_squad(tmp_path / "bad.json")
    (tmp_path / "list.json").write_text("[]")
    with pytest.raises(UserError, match="'data'"):
        squad.load_squad(tmp_path / "list.json")


def test_split_articles_deterministic_disjoint():
    """The split is by article, disjoint, complete, seed-determined; seed=None takes the tail."""
    articles = [{"title": str(i), "paragraphs": []} for i in range(48)]
    train, dev = squad.split_articles(articles, 0.2, seed=0)
    assert (len(train), len(dev)) == (38, 10)
    titles = lambda xs: [a["title"] for a in xs]
    assert sorted(titles(train) + titles(dev), key=int) == titles(articles)
    assert (train, dev) == squad.split_articles(articles, 0.2, seed=0)
    assert dev != squad.split_articles(articles, 0.2, seed=1)[1]
    assert titles(squad.split_articles(articles, 1 / 6, seed=None)[1]) == [
        str(i) for i in range(40, 48)
    ]
    with pytest.raises(UserError):
        squad.split_articles(articles[:1])


# --- windows ------------------------------------------------------------------------------


def test_doc_spans_stride():
    """Windows start every doc_stride tokens and the last one reaches the end."""
    assert squad.doc_spans(10, 4, 3) == [(0, 4), (3, 4), (6, 4)]
    assert squad.doc_spans(3, 4, 3) == [(0, 3)]
    assert squad.doc_spans(9, 4, 5) == [(0, 4), (4, 4), (8, 1)]  # stride capped by length


def test_best_span_per_token_prefers_central_context():
    """Each token is owned by the window where min(left, right) context is largest; on a tie
    (tokens 3 and 6 sit at the edge of two windows) the first window wins."""
    spans = [(0, 4), (3, 4), (6, 4)]
    assert squad.best_span_per_token(spans, 10).tolist() == [0, 0, 0, 0, 1, 1, 1, 2, 2, 2]


def test_feature_layout_and_positions(tokenizer):
    """[CLS] question [SEP] window [SEP]; gold positions inside the window; 0 outside it."""
    examples = squad.read_examples(squad.load_squad(SAMPLE))
    arrays, meta = squad.convert_examples(
        examples, tokenizer, max_seq_length=40, doc_stride=8, max_query_length=12
    )
    n = len(meta.example_index)
    assert n > len(examples) and arrays["input_ids"].shape == (n, 40)
    assert all(v.dtype == np.int32 for v in arrays.values())
    assert (arrays["input_ids"][:, 0] == tokenizer.cls_id).all()
    for i in range(n):
        q = tokenizer.encode(examples[meta.example_index[i]].question_text)[:12]
        doc = meta.token_to_orig[i] >= 0
        assert (arrays["segment_ids"][i] == 1).sum() == doc.sum() + 1
        assert doc.argmax() == len(q) + 2
    inside = arrays["start_positions"] > 0
    assert inside.any() and (~inside).any()
    assert (arrays["end_positions"][~inside] == 0).all()
    assert (meta.token_to_orig[inside, arrays["start_positions"][inside]] >= 0).all()


def test_every_doc_token_has_exactly_one_max_context_window(tokenizer):
    """Across an example's windows, each doc sub-token is max-context exactly once."""
    examples = squad.read_examples(squad.load_squad(SAMPLE))
    arrays, meta = squad.convert_examples(examples, tokenizer, 32, 6, 8)
    for ex_index, ex in enumerate(examples):
        rows = meta.example_index == ex_index
        n_doc = sum(len(tokenizer.encode(w)) for w in ex.doc_tokens)
        assert meta.max_context[rows].sum() == n_doc


def test_improve_answer_span_trims_to_answer(tokenizer):
    """A word-level span over "(1895-1943)." shrinks to the sub-tokens of "1895"."""
    words = ["born", "(1895-1943)."]
    ids = [i for w in words for i in tokenizer.encode(w)]
    start, end = squad.improve_answer_span(tokenizer, ids, 1, len(ids) - 1, "1895")
    assert tokenizer.decode(ids[start : end + 1]) == "1895"


def test_query_too_long_for_window_is_user_error(tokenizer):
    """If the question leaves no room for the document, the error says so."""
    examples = squad.read_examples(squad.load_squad(SAMPLE))
    with pytest.raises(UserError, match="no room"):
        squad.convert_examples(examples, tokenizer, max_seq_length=8, max_query_length=64)


# --- decoding -----------------------------------------------------------------------------


def test_get_final_text_maps_back_to_original():
    """The normalized prediction is located in the original words, keeping case/accents."""
    assert squad_answers.get_final_text("1895", "(1895-1943).") == "1895"
    assert squad_answers.get_final_text("steve jobs", "Steve Jobs'") == "Steve Jobs"
    assert squad_answers.get_final_text("zoe", "Zoë,") == "Zoë"
    assert squad_answers.get_final_text("nowhere", "Steve Jobs'") == "Steve Jobs'"


@pytest.mark.parametrize("window", [(384, 128, 64), (64, 16, 16), (48, 8, 12)])
def test_oracle_logits_recover_fixture_answers(tokenizer, window):
    """Oracle start/end logits decode to the gold answers on the fixture: EM = F1 = 100,
    with one window per question and with many overlapping small windows (each answer
    still fits in the window where its start has max context)."""
    max_seq_length, doc_stride, max_query_length = window
    scores, predictions = run_oracle(
        squad.load_squad(SAMPLE),
        tokenizer,
        max_seq_length=max_seq_length,
        doc_stride=doc_stride,
        max_query_length=max_query_length,
    )
    assert scores == {"exact_match": 100.0, "f1": 100.0}, predictions
    assert predictions["t1"] == "10 July 1856" and predictions["t9"] == "Frédéric"


def test_nbest_sorted_unique_probabilities(tokenizer):
    """n-best texts are distinct, in descending score, probabilities sum to 1, and the first
    is the prediction; max_answer_length bounds every candidate."""
    articles = squad.load_squad(SAMPLE)
    examples = squad.read_examples(articles)
    arrays, meta = squad.convert_examples(examples, tokenizer, 64, 16, 16)
    rng = np.random.default_rng(0)
    start, end = rng.normal(size=(2, *arrays["input_ids"].shape))
    preds, nbest = squad_answers.postprocess(
        examples, meta, start, end, tokenizer, n_best_size=5, max_answer_length=4, with_nbest=True
    )
    for ex in examples:
        entries = nbest[ex.qas_id]
        texts = [e["text"] for e in entries]
        assert len(set(texts)) == len(texts) <= 5 and texts[0] == preds[ex.qas_id]
        assert [e["score"] for e in entries] == sorted((e["score"] for e in entries), reverse=True)
        assert sum(e["probability"] for e in entries) == pytest.approx(1.0)
        assert all(len(t.split()) <= 4 for t in texts)


def test_no_candidate_gives_empty_answer(tokenizer):
    """When every logit peaks on [CLS]/question tokens there is no valid span: answer "";
    logits that do not match the features are refused."""
    examples = squad.read_examples(squad.load_squad(SAMPLE))[:1]
    arrays, meta = squad.convert_examples(examples, tokenizer)
    logits = np.zeros(arrays["input_ids"].shape)
    preds, _ = squad_answers.postprocess(examples, meta, logits, logits, tokenizer, n_best_size=3)
    assert preds == {"t1": ""}
    with pytest.raises(ValueError, match="features"):
        squad_answers.postprocess(examples, meta, logits[:, :5], logits, tokenizer)


def test_write_predictions_official_format(tmp_path):
    """The predictions file is a flat JSON object {question id: answer text}."""
    path = squad_answers.write_predictions(
        {"q1": "Denver Broncos", "q2": "Zoë"}, tmp_path / "p.json"
    )
    assert json.loads(path.read_text(encoding="utf-8")) == {"q1": "Denver Broncos", "q2": "Zoë"}


# --- official metric ----------------------------------------------------------------------


def test_normalize_answer_official():
    """Lower-case, drop punctuation, then articles, then collapse whitespace."""
    assert squad_answers.normalize_answer("The  Quick, brown fox!") == "quick brown fox"
    assert squad_answers.normalize_answer("an apple-a-day") == "appleaday"
    assert squad_answers.normalize_answer("Theory of a thing") == "theory of thing"


def test_em_f1_hand_computed():
    """F1('the cat sat', 'cat sat down') = 2·1·(2/3)/(1+2/3) = 0.8; EM ignores case/articles."""
    assert squad_answers.f1_score("the cat sat", "cat sat down") == pytest.approx(0.8)
    assert squad_answers.f1_score("dog", "cat") == 0.0
    assert squad_answers.f1_score("the", "a") == 0.0  # both normalize to nothing
    assert squad_answers.exact_match_score("The Broncos.", "broncos")
    assert not squad_answers.exact_match_score("Broncos", "Denver Broncos")


def test_evaluate_max_over_golds_and_missing_predictions():
    """Each question takes its best gold; an unanswered question counts as 0 (official)."""
    qas = [
        {"id": "a", "answers": [{"text": "Denver"}, {"text": "Denver Broncos"}]},
        {"id": "b", "answers": [{"text": "cat sat down"}]},
        {"id": "c", "answers": [{"text": "x"}]},
    ]
    articles = [{"paragraphs": [{"qas": qas}]}]
    scores = squad_answers.evaluate(articles, {"a": "the Denver Broncos", "b": "the cat sat"})
    assert scores["exact_match"] == pytest.approx(100 / 3)
    assert scores["f1"] == pytest.approx(100 * (1 + 0.8) / 3)


@pytest.mark.data
def test_oracle_recovers_dev_answers(shared_data, tokenizer):
    """On the full SQuAD v1.1 dev set (384/128/64, n-best 20, max answer 30), oracle logits
    give EM ≥ 99%: windowing + decoding lose only answers inside a sub-token or > 30 long."""
    scores, _ = run_oracle(squad.load_squad(shared_data / "squad" / "dev-v1.1.json"), tokenizer)
    assert scores["exact_match"] >= 99.0, scores


def test_undecodable_and_malformed_squad_files_are_user_errors(tmp_path):
    """Bytes that are not UTF-8 name file:line; a missing or mistyped key names its entry
    (e.g. data[0].paragraphs[0].qas[0]) instead of a KeyError during conversion."""
    path = tmp_path / "bad.json"
    path.write_bytes(b'{"data": [\n{"title": "caf\xe9"}\n]}')
    with pytest.raises(UserError, match=r"bad.json:2: not valid UTF-8"):
        squad.load_squad(path)
    qa = {"id": "q1", "answers": [{"text": "x", "answer_start": 0}]}
    path.write_text(json.dumps({"data": [{"paragraphs": [{"context": "x", "qas": [qa]}]}]}))
    with pytest.raises(
        UserError, match=r"data\[0\]\.paragraphs\[0\]\.qas\[0\] needs 'question' of type str"
    ):
        squad.load_squad(path)
    qa.update(question="?", answers=[{"text": "x", "answer_start": "0"}])
    path.write_text(json.dumps({"data": [{"paragraphs": [{"context": "x", "qas": [qa]}]}]}))
    with pytest.raises(UserError, match=r"answers\[0\] needs 'answer_start' of type int"):
        squad.load_squad(path)
