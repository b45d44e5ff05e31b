"""SQuAD v1.1 answers: n-best span decoding of the model's start/end logits back to text
(google-bert's `get_final_text`), the prediction file, and the official EM/F1
(`evaluate-v1.1.py`). The reader and the windows are `squad.py`'s. Pure Python/numpy."""

from __future__ import annotations

import json
import re
import string
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from jaxbert import fs
from jaxbert.data.tokenizer import Tokenizer
from jaxbert.finetune.tasks.squad import (
    SquadExample,
    SquadFeatureMeta,
    _span_text,
    basic_tokenize,
)

# --- decoding ---------------------------------------------------------------------------


def _strip_spaces(text: str) -> tuple[str, list[int]]:
    """Text without spaces, and each kept char's index in the original text."""
    keep = [i for i, c in enumerate(text) if c != " "]
    return "".join(text[i] for i in keep), keep


def get_final_text(pred_text: str, orig_text: str, do_lower_case: bool = True) -> str:
    """Maps normalized predicted text back onto the original words' characters.

    google-bert's trick: basic-tokenize the original span, find the prediction in it, and
    align the two by their non-space characters. This trims "(1895-1943)." to "1895" while
    keeping original case and accents. Falls back to the whole original span if alignment
    fails (e.g. lower-casing changed the character count).
    """
    tok_text = " ".join(basic_tokenize(orig_text, do_lower_case))
    pred_text = " ".join(basic_tokenize(pred_text, do_lower_case))
    start = tok_text.find(pred_text)
    if not pred_text or start == -1:
        return orig_text
    end = start + len(pred_text) - 1
    orig_ns, orig_map = _strip_spaces(orig_text)
    tok_ns, tok_map = _strip_spaces(tok_text)
    if len(orig_ns) != len(tok_ns):
        return orig_text
    tok_s_to_ns = {s: i for i, s in enumerate(tok_map)}
    if start not in tok_s_to_ns or end not in tok_s_to_ns:
        return orig_text
    return orig_text[orig_map[tok_s_to_ns[start]] : orig_map[tok_s_to_ns[end]] + 1]


def _candidates(meta, f: int, start_logits, end_logits, n_best: int, max_len: int):
    """Valid (feature, start, end, score) of one window among its n_best starts × ends."""
    s_top = np.argsort(-start_logits[f], kind="stable")[:n_best]
    e_top = np.argsort(-end_logits[f], kind="stable")[:n_best]
    s, e = np.meshgrid(s_top, e_top, indexing="ij")
    s, e = s.ravel(), e.ravel()
    t2o = meta.token_to_orig[f]
    ok = (t2o[s] >= 0) & (t2o[e] >= 0) & meta.max_context[f, s] & (e >= s)
    ok &= e - s + 1 <= max_len
    s, e = s[ok], e[ok]
    return np.full(len(s), f), s, e, start_logits[f, s] + end_logits[f, e]


def _example_candidates(meta, feats, start_logits, end_logits, n_best: int, max_len: int):
    """Candidates of all windows of one question, concatenated in window order."""
    parts = [_candidates(meta, f, start_logits, end_logits, n_best, max_len) for f in feats]
    if not parts:
        return np.zeros(0, int), np.zeros(0, int), np.zeros(0, int), np.zeros(0, np.float32)
    return tuple(np.concatenate([p[k] for p in parts]) for k in range(4))


def _text(tokenizer, example, meta, f: int, s: int, e: int, do_lower_case: bool) -> str:
    words = example.doc_tokens[meta.token_to_orig[f, s] : meta.token_to_orig[f, e] + 1]
    pred = _span_text(tokenizer, meta.input_ids[f, s : e + 1], do_lower_case)
    return get_final_text(pred, " ".join(words), do_lower_case)


def _nbest(tokenizer, example, meta, cands, n_best: int, do_lower_case: bool) -> list[dict]:
    """Distinct answer texts by descending score, with softmax probabilities."""
    feats, s, e, scores = cands
    out: list[dict] = []
    seen: set[str] = set()
    for k in np.argsort(-scores, kind="stable"):
        f, start, end = int(feats[k]), int(s[k]), int(e[k])
        text = _text(tokenizer, example, meta, f, start, end, do_lower_case)
        if text not in seen:
            seen.add(text)
            out.append({"text": text, "score": float(scores[k])})
        if len(out) >= n_best:
            break
    probs = np.exp([o["score"] for o in out] - np.max([o["score"] for o in out]))
    for o, p in zip(out, probs / probs.sum()):
        o["probability"] = float(p)
    return out


def postprocess(
    examples: Sequence[SquadExample],
    meta: SquadFeatureMeta,
    start_logits: np.ndarray,
    end_logits: np.ndarray,
    tokenizer: Tokenizer,
    n_best_size: int = 20,
    max_answer_length: int = 30,
    do_lower_case: bool | None = None,
    with_nbest: bool = False,
) -> tuple[dict[str, str], dict[str, list[dict]]]:
    """Best answer text per question ({qid: text}, the official format) and the n-best.

    Candidates are the top `n_best_size` starts × ends of every window, kept if both ends
    are doc tokens, the start has max context in that window, and the span is at most
    `max_answer_length` sub-tokens; the highest start+end logit wins (google-bert). The
    n-best lists (with probabilities) are built only when `with_nbest`, since text
    alignment dominates decoding time. A question without candidates gets "".
    `do_lower_case` (for aligning text) defaults to the tokenizer's `lowercase` flag.
    """
    if do_lower_case is None:
        do_lower_case = bool(getattr(tokenizer, "lowercase", True))
    start_logits = np.asarray(start_logits, np.float32)
    end_logits = np.asarray(end_logits, np.float32)
    shape = meta.token_to_orig.shape
    if start_logits.shape != shape or end_logits.shape != shape:
        raise ValueError(f"logits {start_logits.shape}/{end_logits.shape} != features {shape}")
    by_example: dict[int, list[int]] = {}
    for f, ex_index in enumerate(meta.example_index):
        by_example.setdefault(int(ex_index), []).append(f)
    predictions: dict[str, str] = {}
    nbest: dict[str, list[dict]] = {}
    for ex_index, example in enumerate(examples):
        feats = by_example.get(ex_index, [])
        cands = _example_candidates(
            meta, feats, start_logits, end_logits, n_best_size, max_answer_length
        )
        if not len(cands[0]):
            predictions[example.qas_id] = ""
            nbest[example.qas_id] = [{"text": "", "score": 0.0, "probability": 1.0}]
            continue
        k = int(np.argmax(cands[3]))  # the first of equal scores, like a stable sort
        f, s, e = int(cands[0][k]), int(cands[1][k]), int(cands[2][k])
        predictions[example.qas_id] = _text(tokenizer, example, meta, f, s, e, do_lower_case)
        if with_nbest:
            nbest[example.qas_id] = _nbest(
                tokenizer, example, meta, cands, n_best_size, do_lower_case
            )
    return predictions, nbest


def write_predictions(predictions: dict[str, str], path: str | Path) -> Path:
    """Writes {qid: answer text}, the file the official evaluate-v1.1.py reads."""
    path = Path(path)
    fs.atomic_write_text(path, json.dumps(predictions, ensure_ascii=False, indent=2) + "\n")
    return path


# --- official evaluation (evaluate-v1.1.py) ---------------------------------------------


def normalize_answer(s: str) -> str:
    """Lower text and remove punctuation, articles and extra whitespace (official)."""
    s = s.lower()
    exclude = set(string.punctuation)
    s = "".join(ch for ch in s if ch not in exclude)
    s = re.sub(r"\b(a|an|the)\b", " ", s)
    return " ".join(s.split())


def f1_score(prediction: str, ground_truth: str) -> float:
    """Bag-of-tokens F1 between normalized answers (official)."""
    pred_tokens = normalize_answer(prediction).split()
    gold_tokens = normalize_answer(ground_truth).split()
    common = Counter(pred_tokens) & Counter(gold_tokens)
    num_same = sum(common.values())
    if num_same == 0:
        return 0.0
    precision = num_same / len(pred_tokens)
    recall = num_same / len(gold_tokens)
    return (2 * precision * recall) / (precision + recall)


def exact_match_score(prediction: str, ground_truth: str) -> bool:
    return normalize_answer(prediction) == normalize_answer(ground_truth)


def evaluate(articles: Sequence[dict], predictions: dict[str, str]) -> dict[str, float]:
    """{'exact_match', 'f1'} in percent over every question in `articles` (official).

    Each score is the max over the gold answers; unanswered questions score 0, as in the
    official script, so evaluate against the same articles that were predicted.
    """
    f1 = exact_match = total = 0.0
    for article in articles:
        for paragraph in article["paragraphs"]:
            for qa in paragraph["qas"]:
                total += 1
                if qa["id"] not in predictions:
                    continue
                golds = [a["text"] for a in qa["answers"]]
                pred = predictions[qa["id"]]
                exact_match += max(exact_match_score(pred, g) for g in golds)
                f1 += max(f1_score(pred, g) for g in golds)
    if total == 0:
        return {"exact_match": 0.0, "f1": 0.0}
    return {"exact_match": 100.0 * exact_match / total, "f1": 100.0 * f1 / total}
