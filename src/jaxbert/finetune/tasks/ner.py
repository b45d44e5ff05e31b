"""CoNLL-2003 NER: reader, IOB1→IOB2, word/sub-token label alignment, decoding, entity F1.

Pure Python/numpy (no jax). Only the first sub-token of each word carries a label (BERT
paper, section 5.3); the others get weight 0 so the loss and the metrics see one
prediction per word, and decoding reads exactly those positions back.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from jaxbert.data.tokenizer import Tokenizer
from jaxbert.errors import UserError
from jaxbert.finetune.tasks import textfile

# The HF/TFDS `conll2003` order, so label ids agree with converted checkpoints.
LABELS: tuple[str, ...] = (
    "O",
    "B-PER",
    "I-PER",
    "B-ORG",
    "I-ORG",
    "B-LOC",
    "I-LOC",
    "B-MISC",
    "I-MISC",
)


@dataclasses.dataclass(frozen=True)
class NerSentence:
    """One sentence: whitespace-free words and their IOB2 tags.

    `source` and `line` (the file and the line of the first word; word k is on line
    `line + k`) let a later error name file:line; they take no part in equality.
    """

    words: tuple[str, ...]
    tags: tuple[str, ...]
    source: str = dataclasses.field(default="", compare=False)
    line: int = dataclasses.field(default=0, compare=False)

    def where(self, k: int, index: int) -> str:
        """Where word k is: file:line when read from a file, else its sentence index."""
        return f"{self.source}:{self.line + k}" if self.source else f"sentence {index}, word {k}"


@dataclasses.dataclass(frozen=True)
class NerFeatureMeta:
    """Which words a feature row covers and where each word's first sub-token sits."""

    sentence_index: int
    word_start: int
    word_positions: tuple[int, ...]  # position in the row of each covered word's label


# --- reading ----------------------------------------------------------------------------


def iob1_to_iob2(tags: Sequence[str]) -> list[str]:
    """Gives every entity a B- on its first token (IOB2), as seqeval strict mode expects.

    In IOB1 an entity starts with I- unless it directly follows one of the same type. An
    I-X is therefore a start whenever the previous tag is not B-X/I-X. Idempotent on IOB2.
    """
    out: list[str] = []
    prev = "O"
    for tag in tags:
        if tag.startswith("I-") and prev[2:] != tag[2:]:
            tag = "B-" + tag[2:]
        out.append(tag)
        prev = tag
    return out


def _check_tag(tag: str, where: str, types: Sequence[str], columns: int) -> None:
    """The tag as written in the file (the last column), checked on every line read, not
    only on the sentences a run samples."""
    if tag == "O" or (tag[:2] in ("B-", "I-") and tag[2:] in types):
        return
    shape = "O, B-<type> or I-<type>" if tag[:2] not in ("B-", "I-") or len(tag) < 3 else ""
    message = f"{where}: NER tag {tag!r} (the last column) is not " + (
        shape or f"of a known type ({', '.join(types)})"
    )
    if columns == 3:  # CoNLL-2003 is `word POS chunk NER`: a chunk tag looks like I-NP
        message += "; this line has 3 columns, CoNLL-2003 has 4 (word POS chunk NER)"
    raise UserError(message)


def _conll_lines(path: Path) -> Iterator[tuple[int, list[str]]]:
    """(line number, whitespace-split fields) per line; bad UTF-8 names file:line."""
    try:
        with open(path, encoding="utf-8") as f:
            yield from enumerate((line.split() for line in f), 1)
    except UnicodeDecodeError as e:
        raise textfile.decode_error(path, e) from None


def read_conll(path: str | Path, labels: Sequence[str] = LABELS) -> list[NerSentence]:
    """Reads CoNLL column format (`word ... tag` per line), converting tags to IOB2.

    Blank lines end sentences; `-DOCSTART-` lines mark documents and are dropped. The
    tag is the last column, so 2-column and 4-column files both work, but every line of
    a file has the same columns; each tag's type must be one of `labels`' types.
    """
    types = sorted({t[2:] for t in labels if t != "O"})
    columns = 0
    path = Path(path)
    if not path.is_file():
        raise UserError(
            f"CoNLL file not found: {path} (expected e.g. ../shared/data/conll2003/eng.train)"
        )
    sentences: list[NerSentence] = []
    words: list[str] = []
    tags: list[str] = []
    first = 0  # the line of the sentence's first word

    def flush() -> None:
        if words:
            tags2 = tuple(iob1_to_iob2(tags))
            sentences.append(NerSentence(tuple(words), tags2, str(path), first))
        words.clear()
        tags.clear()

    for lineno, fields in _conll_lines(path):
        if not fields or fields[0] == "-DOCSTART-":
            flush()
            continue
        if len(fields) < 2:
            raise UserError(
                f"{path}:{lineno}: malformed CoNLL line {' '.join(fields)!r}, "
                "expected 'word ... tag'"
            )
        if columns and len(fields) != columns:
            raise UserError(
                f"{path}:{lineno}: {len(fields)} columns, but the file's first line has "
                f"{columns} ({' '.join(fields)!r})"
            )
        columns = len(fields)
        _check_tag(fields[-1], f"{path}:{lineno}", types, columns)
        first = first if words else lineno
        words.append(fields[0])
        tags.append(fields[-1])
    flush()
    return sentences


# --- alignment --------------------------------------------------------------------------


def encode_words(
    tokenizer: Tokenizer, words: Sequence[str], cache: dict[str, list[int]] | None = None
) -> list[list[int]]:
    """Sub-tokens of each word; a word the tokenizer drops becomes [UNK] to keep its label."""
    cache = {} if cache is None else cache
    out = []
    for w in words:
        if w not in cache:
            cache[w] = list(tokenizer.encode(w)) or [tokenizer.unk_id]
        out.append(cache[w])
    return out


def word_windows(piece_counts: Sequence[int], budget: int) -> list[tuple[int, int]]:
    """Splits words into consecutive [start, end) runs whose sub-tokens fit in `budget`.

    Windows do not overlap, so every word is labeled (and decoded) exactly once. A single
    word longer than the budget gets a window of its own and is cut (its first sub-token,
    which carries the label, survives).
    """
    windows: list[tuple[int, int]] = []
    start, used = 0, 0
    for i, n in enumerate(piece_counts):
        if i > start and used + n > budget:
            windows.append((start, i))
            start, used = i, 0
        used += n
    if piece_counts:
        windows.append((start, len(piece_counts)))
    return windows


def _window_row(pieces, tag_ids, max_seq_length: int, tokenizer: Tokenizer):
    ids = [tokenizer.cls_id]
    labels = [0]
    weights = [0.0]
    positions = []
    for word_pieces, tag in zip(pieces, tag_ids):
        word_pieces = word_pieces[: max_seq_length - 2 - (len(ids) - 1)]
        positions.append(len(ids))
        ids += word_pieces
        labels += [tag] + [0] * (len(word_pieces) - 1)
        weights += [1.0] + [0.0] * (len(word_pieces) - 1)
    ids.append(tokenizer.sep_id)
    return ids, labels, weights, positions


def _label_ids(sent: NerSentence, label_list: Sequence[str], s_idx: int) -> list[int]:
    index = {t: i for i, t in enumerate(label_list)}
    for k, t in enumerate(sent.tags):
        if t not in index:
            raise UserError(
                f"{sent.where(k, s_idx)}: tag {t!r} is not in the label list {list(label_list)}"
            )
    return [index[t] for t in sent.tags]


def convert_sentences(
    sentences: Sequence[NerSentence],
    tokenizer: Tokenizer,
    max_seq_length: int,
    label_list: Sequence[str] = LABELS,
) -> tuple[dict[str, np.ndarray], list[NerFeatureMeta]]:
    """Turns sentences into fixed-shape rows `[CLS] sub-tokens [SEP]` plus decoding metadata.

    Arrays: input_ids/input_mask/segment_ids/labels [N, S] int32 and label_weights [N, S]
    float32. Positions not scored (specials, non-first sub-tokens, padding) carry label 0
    with weight 0 rather than -100, so a gather or one_hot on device never sees a bad id.
    """
    if max_seq_length < 3:
        raise UserError(f"max_seq_length={max_seq_length} is too short for [CLS] w [SEP]")
    cache: dict[str, list[int]] = {}
    rows, metas = [], []
    for s_idx, sent in enumerate(sentences):
        pieces = encode_words(tokenizer, sent.words, cache)
        tag_ids = _label_ids(sent, label_list, s_idx)
        for start, end in word_windows([len(p) for p in pieces], max_seq_length - 2):
            ids, labels, weights, pos = _window_row(
                pieces[start:end], tag_ids[start:end], max_seq_length, tokenizer
            )
            rows.append((ids, labels, weights))
            metas.append(NerFeatureMeta(s_idx, start, tuple(pos)))
    return _stack_rows(rows, max_seq_length, tokenizer.pad_id), metas


def _stack_rows(rows, length: int, pad_id: int) -> dict[str, np.ndarray]:
    n = len(rows)
    out = {
        "input_ids": np.full((n, length), pad_id, np.int32),
        "input_mask": np.zeros((n, length), np.int32),
        "segment_ids": np.zeros((n, length), np.int32),
        "labels": np.zeros((n, length), np.int32),
        "label_weights": np.zeros((n, length), np.float32),
    }
    for i, (ids, labels, weights) in enumerate(rows):
        out["input_ids"][i, : len(ids)] = ids
        out["input_mask"][i, : len(ids)] = 1
        out["labels"][i, : len(labels)] = labels
        out["label_weights"][i, : len(weights)] = weights
    return out


def decode_predictions(
    predictions: np.ndarray,
    metas: Sequence[NerFeatureMeta],
    num_sentences: int,
    label_list: Sequence[str] = LABELS,
) -> list[list[str]]:
    """Word-level tags per sentence from per-position predictions.

    `predictions` is [N, S] label ids or [N, S, L] logits (argmax taken). Each word's tag
    is read at its first sub-token, the position that was trained.
    """
    pred = np.asarray(predictions)
    if pred.ndim == 3:
        pred = pred.argmax(-1)
    if len(pred) != len(metas):
        raise ValueError(f"{len(pred)} prediction rows but {len(metas)} feature metas")
    out: list[list[str | None]] = [[] for _ in range(num_sentences)]
    for row, meta in zip(pred, metas):
        tags = out[meta.sentence_index]
        end = meta.word_start + len(meta.word_positions)
        tags.extend([None] * (end - len(tags)))
        for k, p in enumerate(meta.word_positions):
            tags[meta.word_start + k] = label_list[int(row[p])]
    return [[t if t is not None else "O" for t in tags] for tags in out]


# --- entity-level metrics ---------------------------------------------------------------


def get_entities(tags: Sequence[str], strict: bool = True) -> list[tuple[str, int, int]]:
    """Entities as (type, start, end) with end exclusive.

    strict=True is seqeval's `mode="strict", scheme=IOB2`: an entity is B-X followed by
    any I-X; a stray I- (after O or another type) is no entity at all. strict=False is
    conlleval's rule, where such a stray I-X opens a new entity.
    """
    if not strict:
        tags = iob1_to_iob2(tags)
    entities = []
    i, n = 0, len(tags)
    while i < n:
        if not tags[i].startswith("B-"):
            i += 1
            continue
        typ, j = tags[i][2:], i + 1
        while j < n and tags[j] == "I-" + typ:
            j += 1
        entities.append((typ, i, j))
        i = j
    return entities


def _prf(n_correct: int, n_pred: int, n_true: int) -> dict[str, float]:
    p = n_correct / n_pred if n_pred else 0.0
    r = n_correct / n_true if n_true else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return {"precision": p, "recall": r, "f1": f, "support": n_true}


def entity_scores(
    true_tags: Sequence[Sequence[str]], pred_tags: Sequence[Sequence[str]], strict: bool = True
) -> dict:
    """Micro-averaged entity precision/recall/F1 (CoNLL's headline numbers) and per type.

    An entity counts as correct only if type, start and end all match. Returns
    {"precision", "recall", "f1", "support", "per_type": {type: {...}}}.
    """
    if len(true_tags) != len(pred_tags):
        raise ValueError(f"{len(true_tags)} gold sentences but {len(pred_tags)} predicted")
    gold, pred = set(), set()
    for k, (t, p) in enumerate(zip(true_tags, pred_tags)):
        if len(t) != len(p):
            raise ValueError(f"sentence {k}: {len(t)} gold tags but {len(p)} predicted")
        gold.update((k, *e) for e in get_entities(t, strict))
        pred.update((k, *e) for e in get_entities(p, strict))
    scores = _prf(len(gold & pred), len(pred), len(gold))
    types = sorted({e[1] for e in gold | pred})
    scores["per_type"] = {
        typ: _prf(
            sum(e[1] == typ for e in gold & pred),
            sum(e[1] == typ for e in pred),
            sum(e[1] == typ for e in gold),
        )
        for typ in types
    }
    return scores
