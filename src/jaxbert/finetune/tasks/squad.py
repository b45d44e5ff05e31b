"""SQuAD v1.1: reader, doc-stride windows, splits (answers and EM/F1: squad_answers.py).

Pure Python/numpy (no jax). The logic follows google-bert's `run_squad.py` (whitespace
doc tokens, sub-token map, `_improve_answer_span`, `_check_is_max_context`,
`get_final_text`) and the official `evaluate-v1.1.py`, so numbers are comparable with the
BERT paper. Only the dev file exists offline: `split_articles` carves a train/eval split
out of it by article, so no paragraph is seen on both sides.
"""

from __future__ import annotations

import dataclasses
import gzip
import json
import unicodedata
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from jaxbert.data.tokenizer import Tokenizer
from jaxbert.errors import UserError
from jaxbert.finetune.tasks import textfile


@dataclasses.dataclass(frozen=True)
class SquadExample:
    """One question. `doc_tokens` is the paragraph split on whitespace (shared by all the
    questions of a paragraph); positions are word indices of the first gold answer."""

    qas_id: str
    question_text: str
    doc_tokens: tuple[str, ...]
    answers: tuple[str, ...]
    start_position: int | None = None
    end_position: int | None = None


@dataclasses.dataclass(frozen=True)
class SquadFeatureMeta:
    """Per-feature arrays kept on the host for decoding (row i ↔ feature i).

    token_to_orig: word index of each position, -1 for question/special/padding tokens.
    max_context: whether this window is the one where the token has most context, so each
    doc token is answered from one window only.
    """

    example_index: np.ndarray  # [N] int32
    token_to_orig: np.ndarray  # [N, S] int32
    max_context: np.ndarray  # [N, S] bool
    input_ids: np.ndarray  # [N, S] int32, the same array as the feature's input_ids


# --- reading ----------------------------------------------------------------------------


def load_squad(path: str | Path) -> list[dict]:
    """The `data` list (articles) of an official SQuAD JSON file."""
    path = Path(path)
    if not path.is_file():
        raise UserError(
            f"SQuAD file not found: {path} (expected e.g. ../shared/data/squad/dev-v1.1.json)"
        )
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
        data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as e:
        raise textfile.decode_error(path, e) from None
    except json.JSONDecodeError as e:
        raise UserError(f"{path}:{e.lineno}: not valid JSON ({e.msg})") from None
    except (EOFError, gzip.BadGzipFile, zlib.error) as e:  # a cut-short or non-gzip .gz
        raise UserError(f"{path}: not a complete gzip file ({e or type(e).__name__})") from None
    if not isinstance(data, dict) or not isinstance(data.get("data"), list):
        raise UserError(f"{path}: not a SQuAD file (no top-level 'data' list)")
    _check_layout(data["data"], path)
    return data["data"]


def _check_layout(articles: list, path: Path) -> None:
    """Every key the readers use, with its type, so a malformed file fails here, naming the
    entry (JSON gives no line numbers once parsed), not with a KeyError mid-conversion."""

    def need(obj, key: str, kind: type, where: str):
        if not isinstance(obj, dict) or not isinstance(obj.get(key), kind):
            raise UserError(f"{path}: {where} needs {key!r} of type {kind.__name__}")
        return obj[key]

    for a, article in enumerate(articles):
        for p, para in enumerate(need(article, "paragraphs", list, f"data[{a}]")):
            where = f"data[{a}].paragraphs[{p}]"
            need(para, "context", str, where)
            for q, qa in enumerate(need(para, "qas", list, where)):
                here = f"{where}.qas[{q}]"
                need(qa, "id", str, here)
                need(qa, "question", str, here)
                for k, answer in enumerate(qa.get("answers") or []):
                    need(answer, "text", str, f"{here}.answers[{k}]")
                    need(answer, "answer_start", int, f"{here}.answers[{k}]")


def _is_whitespace(c: str) -> bool:
    return c in " \t\r\n" or ord(c) == 0x202F


def split_doc_tokens(context: str) -> tuple[tuple[str, ...], list[int]]:
    """Whitespace words of a paragraph and, for each character, the index of its word."""
    tokens: list[str] = []
    char_to_word: list[int] = []
    prev_is_ws = True
    for c in context:
        if _is_whitespace(c):
            prev_is_ws = True
        else:
            if prev_is_ws:
                tokens.append(c)
            else:
                tokens[-1] += c
            prev_is_ws = False
        char_to_word.append(len(tokens) - 1)
    return tuple(tokens), char_to_word


def _answer_words(qa: dict, tokens, char_to_word) -> tuple[int | None, int | None]:
    """Word span of the first answer, or (None, None) if its text is not found there."""
    if not qa.get("answers"):
        return None, None
    answer = qa["answers"][0]
    start_char, text = answer["answer_start"], answer["text"]
    end_char = start_char + len(text) - 1
    if not text or not 0 <= start_char <= end_char < len(char_to_word):
        return None, None
    start, end = char_to_word[start_char], char_to_word[end_char]
    if " ".join(tokens[start : end + 1]).find(" ".join(text.split())) == -1:
        return None, None
    return start, end


def read_examples(articles: Sequence[dict], is_training: bool = False) -> list[SquadExample]:
    """One example per question. Training drops the few answers whose text does not match
    the context at `answer_start` (google-bert does the same); evaluation keeps all."""
    examples = []
    for article in articles:
        for paragraph in article["paragraphs"]:
            tokens, char_to_word = split_doc_tokens(paragraph["context"])
            for qa in paragraph["qas"]:
                start, end = _answer_words(qa, tokens, char_to_word)
                if is_training and start is None:
                    continue
                answers = tuple(a["text"] for a in qa.get("answers", []))
                examples.append(SquadExample(qa["id"], qa["question"], tokens, answers, start, end))
    return examples


def drop_paragraphs(articles: Sequence[dict], excluded: Sequence[dict]) -> list[dict]:
    """`articles` without the paragraphs whose context appears in `excluded` (articles
    left empty go too). XQuAD takes 240 paragraphs from every one of SQuAD dev's 48
    articles, so keeping its English text out of training works per paragraph."""
    contexts = {p["context"].strip() for a in excluded for p in a.get("paragraphs", [])}
    out = []
    for a in articles:
        kept = [p for p in a.get("paragraphs", []) if p["context"].strip() not in contexts]
        if kept:
            out.append({**a, "paragraphs": kept})
    return out


def split_articles(
    articles: Sequence[dict], eval_fraction: float = 0.2, seed: int | None = 0
) -> tuple[list[dict], list[dict]]:
    """(train, eval) articles: a split of the dev file for offline fine-tuning experiments.

    Splitting by article (not question) keeps every paragraph on one side, so eval
    questions never share a context seen in training. `seed=None` takes the last articles
    for eval; an int picks them with a seeded permutation. Both sides keep file order.
    """
    n = len(articles)
    if n < 2 or not 0 < eval_fraction < 1:
        raise UserError(f"cannot split {n} articles with eval_fraction={eval_fraction}")
    n_eval = min(n - 1, max(1, round(n * eval_fraction)))
    if seed is None:
        eval_ids = set(range(n - n_eval, n))
    else:
        eval_ids = {int(i) for i in np.random.default_rng(seed).permutation(n)[:n_eval]}
    train = [a for i, a in enumerate(articles) if i not in eval_ids]
    return train, [a for i, a in enumerate(articles) if i in eval_ids]


# --- basic tokenization (google-bert BasicTokenizer), used to align text ----------------

_CJK = (
    (0x4E00, 0x9FFF),
    (0x3400, 0x4DBF),
    (0x20000, 0x2A6DF),
    (0x2A700, 0x2B73F),
    (0x2B740, 0x2B81F),
    (0x2B820, 0x2CEAF),
    (0xF900, 0xFAFF),
    (0x2F800, 0x2FA1F),
)


def _is_punctuation(c: str) -> bool:
    cp = ord(c)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(c).startswith("P")


def _clean_char(c: str) -> str:
    """'' for NUL/U+FFFD/control characters, ' ' for whitespace, else the character."""
    cp = ord(c)
    if cp in (0, 0xFFFD) or (c not in "\t\n\r" and unicodedata.category(c) in ("Cc", "Cf")):
        return ""
    if c in " \t\n\r" or unicodedata.category(c) == "Zs":
        return " "
    if any(lo <= cp <= hi for lo, hi in _CJK):
        return f" {c} "
    return c


def basic_tokenize(text: str, do_lower_case: bool = True) -> list[str]:
    """google-bert's BasicTokenizer: clean, (lower + strip accents), split punctuation."""
    text = "".join(_clean_char(c) for c in text)
    if do_lower_case:
        text = unicodedata.normalize("NFD", text.lower())
        text = "".join(c for c in text if unicodedata.category(c) != "Mn")
    out = "".join(f" {c} " if _is_punctuation(c) else c for c in text)
    return out.split()


# --- features ---------------------------------------------------------------------------


def _span_text(tokenizer: Tokenizer, ids: Sequence[int], do_lower_case: bool) -> str:
    """Sub-tokens decoded and basic-tokenized, so it compares with `basic_tokenize` text."""
    text = tokenizer.decode([int(i) for i in ids]).replace(" ##", "").replace("##", "")
    return " ".join(basic_tokenize(text, do_lower_case))


def improve_answer_span(
    tokenizer: Tokenizer, doc_ids: Sequence[int], start: int, end: int, answer: str
) -> tuple[int, int]:
    """Tightest sub-token span inside [start, end] whose text is the annotated answer.

    Word-level gold spans over-cover when the answer is part of a word ("1895" in
    "(1895-1943)."); google-bert shrinks them so training targets the exact sub-tokens.
    Texts are compared after decoding, which works for WordPiece and SentencePiece alike.
    """
    target = " ".join(basic_tokenize(answer, True))
    for new_start in range(start, end + 1):
        for new_end in range(end, new_start - 1, -1):
            if _span_text(tokenizer, doc_ids[new_start : new_end + 1], True) == target:
                return new_start, new_end
    return start, end


def doc_spans(num_tokens: int, max_tokens: int, doc_stride: int) -> list[tuple[int, int]]:
    """(start, length) windows over the doc sub-tokens, each starting `doc_stride` later."""
    spans: list[tuple[int, int]] = []
    start = 0
    while start < num_tokens:
        length = min(num_tokens - start, max_tokens)
        spans.append((start, length))
        if start + length == num_tokens:
            break
        start += min(length, doc_stride)
    return spans


def best_span_per_token(spans: Sequence[tuple[int, int]], num_tokens: int) -> np.ndarray:
    """For each doc token, the window where it has the most context on its shorter side.

    google-bert's `_check_is_max_context` score: min(left, right) + 0.01 * window length;
    the first window wins ties.
    """
    scores = np.full((max(len(spans), 1), num_tokens), -np.inf)
    pos = np.arange(num_tokens)
    for i, (s, n) in enumerate(spans):
        p = pos[s : s + n]
        scores[i, s : s + n] = np.minimum(p - s, s + n - 1 - p) + 0.01 * n
    return scores.argmax(0)


@dataclasses.dataclass
class _Doc:
    """A paragraph's sub-tokens, computed once per paragraph, not once per question."""

    ids: np.ndarray  # all doc sub-token ids
    tok_to_orig: np.ndarray  # word index of each sub-token
    orig_to_tok: list[int]  # first sub-token of each word


def _tokenize_doc(tokenizer: Tokenizer, words: Sequence[str], cache: dict) -> _Doc:
    ids: list[int] = []
    tok_to_orig: list[int] = []
    orig_to_tok: list[int] = []
    for i, w in enumerate(words):
        if w not in cache:
            cache[w] = list(tokenizer.encode(w))
        orig_to_tok.append(len(ids))
        ids += cache[w]
        tok_to_orig += [i] * len(cache[w])
    return _Doc(np.asarray(ids, np.int32), np.asarray(tok_to_orig, np.int32), orig_to_tok)


def _gold_tokens(tokenizer, doc: _Doc, ex: SquadExample) -> tuple[int | None, int | None]:
    if ex.start_position is None:
        return None, None
    start = doc.orig_to_tok[ex.start_position]
    if ex.end_position < len(doc.orig_to_tok) - 1:
        end = doc.orig_to_tok[ex.end_position + 1] - 1
    else:
        end = len(doc.ids) - 1
    if end < start:  # the answer's words have no sub-tokens
        return None, None
    return improve_answer_span(tokenizer, doc.ids, start, end, ex.answers[0])


def _window_rows(tokenizer, query: list[int], doc: _Doc, gold, spans, max_seq_length: int):
    """Yields (input_ids, segment_ids, token_to_orig, max_context, start, end) per window."""
    best = best_span_per_token(spans, len(doc.ids))
    offset = len(query) + 2
    head = [tokenizer.cls_id, *query, tokenizer.sep_id]
    for i, (s, n) in enumerate(spans):
        ids = np.full(max_seq_length, tokenizer.pad_id, np.int32)
        ids[: offset + n + 1] = [*head, *doc.ids[s : s + n], tokenizer.sep_id]
        segments = np.zeros(max_seq_length, np.int32)
        segments[offset : offset + n + 1] = 1
        t2o = np.full(max_seq_length, -1, np.int32)
        t2o[offset : offset + n] = doc.tok_to_orig[s : s + n]
        ctx = np.zeros(max_seq_length, bool)
        ctx[offset : offset + n] = best[s : s + n] == i
        start = end = 0  # [CLS]: the answer is not (entirely) in this window
        if gold[0] is not None and s <= gold[0] and gold[1] < s + n:
            start, end = gold[0] - s + offset, gold[1] - s + offset
        yield ids, segments, t2o, ctx, start, end, offset + n + 1


def convert_examples(
    examples: Sequence[SquadExample],
    tokenizer: Tokenizer,
    max_seq_length: int = 384,
    doc_stride: int = 128,
    max_query_length: int = 64,
) -> tuple[dict[str, np.ndarray], SquadFeatureMeta]:
    """Features `[CLS] question [SEP] doc window [SEP]`, one per doc-stride window.

    Returns model arrays (input_ids/input_mask/segment_ids [N, S] int32,
    start_positions/end_positions [N] int32, 0 = [CLS] when the gold answer is not wholly
    inside the window) and the host-side metadata `postprocess` needs.
    """
    word_cache: dict[str, list[int]] = {}
    doc, last_words = None, None
    cols: list[list] = [[] for _ in range(8)]
    for ex_index, ex in enumerate(examples):
        if ex.doc_tokens is not last_words:
            doc, last_words = _tokenize_doc(tokenizer, ex.doc_tokens, word_cache), ex.doc_tokens
        query = list(tokenizer.encode(ex.question_text))[:max_query_length]
        max_doc = max_seq_length - len(query) - 3
        if max_doc < 1:
            raise UserError(
                f"max_seq_length={max_seq_length} leaves no room for the document "
                f"after a {len(query)}-token question"
            )
        gold = _gold_tokens(tokenizer, doc, ex)
        spans = doc_spans(len(doc.ids), max_doc, doc_stride)
        for row in _window_rows(tokenizer, query, doc, gold, spans, max_seq_length):
            for col, value in zip(cols, (*row, ex_index)):
                col.append(value)
    return _stack_features(cols, max_seq_length)


def _stack_features(cols, max_seq_length: int):
    ids, segs, t2o, ctx, starts, ends, lengths, ex_idx = cols
    stack = lambda xs, dtype: (
        np.stack(xs).astype(dtype) if xs else np.zeros((0, max_seq_length), dtype)
    )
    input_ids = stack(ids, np.int32)
    lengths = np.asarray(lengths, np.int32).reshape(-1, 1)
    arrays = {
        "input_ids": input_ids,
        "input_mask": (np.arange(max_seq_length) < lengths).astype(np.int32),
        "segment_ids": stack(segs, np.int32),
        "start_positions": np.asarray(starts, np.int32),
        "end_positions": np.asarray(ends, np.int32),
    }
    meta = SquadFeatureMeta(
        np.asarray(ex_idx, np.int32), stack(t2o, np.int32), stack(ctx, bool), input_ids
    )
    return arrays, meta
