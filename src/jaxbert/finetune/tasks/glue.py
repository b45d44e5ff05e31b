"""GLUE tasks: the task table, TSV/TFDS readers, pair features (metrics and submission
files: glue_scoring.py).

Pure Python/numpy (no jax): the fine-tuning loop turns examples into fixed-shape numpy
features here, runs the model, and hands predictions back here for metrics and the
leaderboard files. Column layouts follow google-bert's `run_classifier.py` processors and
the `glue_data/` files the GLUE download script writes.
"""

from __future__ import annotations

import csv
import dataclasses
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np

from jaxbert.data.tfds_source import open_split
from jaxbert.data.tokenizer import Tokenizer
from jaxbert.errors import UserError
from jaxbert.finetune.tasks import textfile


@dataclasses.dataclass(frozen=True)
class GlueTask:
    """Where a task's text and labels live, and how it is scored.

    Column indices refer to tab-separated fields; `label_column` may be negative (from the
    end), as in google-bert. Test files always have a header and an index in column 0.
    """

    name: str
    folder: str
    files: Mapping[str, str]
    text_columns: tuple[int, int | None]
    test_text_columns: tuple[int, int | None]
    label_column: int | None
    labels: tuple[str, ...] | None  # None: regression (STS-B)
    header: bool  # whether the labeled (train/dev) files have a header row
    num_columns: int | None  # field count of headerless files
    metric: str  # the main metric, used to pick the best checkpoint
    submission: Mapping[str, str]  # test split -> GLUE leaderboard file name
    tfds_keys: tuple[str, str | None]

    @property
    def is_regression(self) -> bool:
        return self.labels is None

    @property
    def num_labels(self) -> int:
        return 1 if self.labels is None else len(self.labels)

    @property
    def dev_splits(self) -> list[str]:
        """Labeled evaluation splits (MNLI has two); the first one picks the best checkpoint."""
        return [s for s in self.files if s.startswith("dev")]

    @property
    def test_splits(self) -> list[str]:
        return [s for s in self.files if is_test_split(s)]


_STD_FILES = {"train": "train.tsv", "dev": "dev.tsv", "test": "test.tsv"}
_BINARY = ("0", "1")
_NLI2 = ("entailment", "not_entailment")
_MNLI = ("contradiction", "entailment", "neutral")  # google-bert's order


def _task(name, folder, text, test_text, label, labels, metric, sub, keys, **kw) -> GlueTask:
    return GlueTask(
        name=name,
        folder=folder,
        files=kw.get("files", _STD_FILES),
        text_columns=text,
        test_text_columns=test_text,
        label_column=label,
        labels=labels,
        header=kw.get("header", True),
        num_columns=kw.get("num_columns"),
        metric=metric,
        submission=sub,
        tfds_keys=keys,
    )


# A table reads better aligned than with one argument per line.
# fmt: off
GLUE_TASKS: dict[str, GlueTask] = {
    t.name: t
    for t in [
        _task("cola", "CoLA", (3, None), (1, None), 1, _BINARY, "mcc", {"test": "CoLA.tsv"},
              ("sentence", None), header=False, num_columns=4),
        _task("sst2", "SST-2", (0, None), (1, None), 1, _BINARY, "accuracy",
              {"test": "SST-2.tsv"}, ("sentence", None)),
        _task("mrpc", "MRPC", (3, 4), (3, 4), 0, _BINARY, "f1", {"test": "MRPC.tsv"},
              ("sentence1", "sentence2")),
        _task("stsb", "STS-B", (7, 8), (7, 8), 9, None, "spearman", {"test": "STS-B.tsv"},
              ("sentence1", "sentence2")),
        _task("qqp", "QQP", (3, 4), (1, 2), 5, _BINARY, "f1", {"test": "QQP.tsv"},
              ("question1", "question2")),
        _task("mnli", "MNLI", (8, 9), (8, 9), -1, _MNLI, "accuracy",
              {"test_matched": "MNLI-m.tsv", "test_mismatched": "MNLI-mm.tsv"},
              ("premise", "hypothesis"),
              files={"train": "train.tsv", "dev_matched": "dev_matched.tsv",
                     "dev_mismatched": "dev_mismatched.tsv",
                     "test_matched": "test_matched.tsv",
                     "test_mismatched": "test_mismatched.tsv"}),
        _task("qnli", "QNLI", (1, 2), (1, 2), -1, _NLI2, "accuracy", {"test": "QNLI.tsv"},
              ("question", "sentence")),
        _task("rte", "RTE", (1, 2), (1, 2), -1, _NLI2, "accuracy", {"test": "RTE.tsv"},
              ("sentence1", "sentence2")),
        _task("wnli", "WNLI", (1, 2), (1, 2), -1, _BINARY, "accuracy", {"test": "WNLI.tsv"},
              ("sentence1", "sentence2")),
        # AX (diagnostic) is test-only and is predicted by an MNLI model.
        _task("ax", "diagnostic", (1, 2), (1, 2), None, _MNLI, "mcc", {"test": "AX.tsv"},
              ("premise", "hypothesis"), files={"test": "diagnostic.tsv"}),
    ]
}
# fmt: on


@dataclasses.dataclass(frozen=True)
class Example:
    """One GLUE row. `label` is the label string, a float for STS-B, None for test rows.

    For test rows `guid` is the file's own index column, which the leaderboard needs back.
    """

    guid: str
    text_a: str
    text_b: str | None
    label: str | float | None


def get_task(name: str) -> GlueTask:
    """Looks a task up by its lower-case name; a typo names the valid choices."""
    key = name.lower().replace("-", "")
    if key not in GLUE_TASKS:
        raise UserError(f"unknown GLUE task {name!r}; choose one of {sorted(GLUE_TASKS)}")
    return GLUE_TASKS[key]


def is_test_split(split: str) -> bool:
    return split.startswith("test")


def split_file(task: GlueTask, data_dir: str | Path, split: str) -> Path:
    """The TSV for `split`, accepting `data_dir` as the glue root or the task folder."""
    if split not in task.files:
        raise UserError(
            f"GLUE task {task.name} has no split {split!r}; use one of {sorted(task.files)}"
        )
    root = Path(data_dir)
    folder = root if (root / task.files[split]).is_file() else root / task.folder
    path = folder / task.files[split]
    if not path.is_file():
        raise UserError(
            f"GLUE file not found: {path}. Put the glue_data layout (<TASK>/{{train,dev,test}}"
            f".tsv) under the data dir, e.g. ../shared/data/glue."
        )
    return path


def _tsv_rows(path: Path) -> Iterator[tuple[int, list[str]]]:
    """(line number, fields) per non-empty line; never treats `"` as quoting.

    Undecodable bytes and over-long fields are UserErrors naming file:line, not tracebacks.
    """
    with open(path, encoding="utf-8-sig", newline="") as f:
        reader = csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        while True:
            try:
                row = next(reader)
            except StopIteration:
                return
            except UnicodeDecodeError as e:
                raise textfile.decode_error(path, e) from None
            except csv.Error as e:
                raise UserError(f"{path}:{reader.line_num}: {e}") from None
            if row:
                yield reader.line_num, row


def _parse_label(task: GlueTask, raw: str, where: str) -> str | float:
    if task.labels is None:
        try:
            return float(raw)
        except ValueError:
            raise UserError(f"{where}: STS-B score {raw!r} is not a number") from None
    if raw not in task.labels:
        raise UserError(f"{where}: label {raw!r} is not one of {list(task.labels)}")
    return raw


def _row_to_example(task: GlueTask, split: str, row: list[str], n: int, where: str) -> Example:
    test = is_test_split(split) or task.label_column is None
    a_col, b_col = task.test_text_columns if test else task.text_columns
    text_b = row[b_col] if b_col is not None else None
    if test:
        return Example(guid=row[0], text_a=row[a_col], text_b=text_b, label=None)
    label = _parse_label(task, row[task.label_column], where)
    return Example(guid=f"{split}-{n}", text_a=row[a_col], text_b=text_b, label=label)


def read_tsv_examples(task: GlueTask | str, data_dir: str | Path, split: str) -> list[Example]:
    """Reads one split of a local GLUE TSV directory (the `glue_data/` layout).

    Every row must have as many fields as the header (or `task.num_columns` for the
    headerless CoLA train/dev); otherwise a UserError names the file and line, because a
    stray tab silently shifts the text columns.
    """
    task = get_task(task) if isinstance(task, str) else task
    path = split_file(task, data_dir, split)
    has_header = task.header or is_test_split(split)
    examples: list[Example] = []
    expected = None if has_header else task.num_columns
    for lineno, row in _tsv_rows(path):
        if has_header and expected is None:
            expected = len(row)
            continue
        where = f"{path}:{lineno}"
        if len(row) != expected:
            raise UserError(f"{where}: malformed GLUE line, {len(row)} fields, expected {expected}")
        try:
            examples.append(_row_to_example(task, split, row, len(examples), where))
        except IndexError:  # a header with too few columns for this task's layout
            raise UserError(
                f"{where}: {len(row)} fields, too few for GLUE {task.name} {split} files"
            ) from None
    return examples


def read_examples(
    task: GlueTask | str, data_dir: str | Path, split: str, source: str = "tsv"
) -> list[Example]:
    """Examples of one split from local TSVs (`source="tsv"`) or a TFDS data_dir ("tfds")."""
    if source not in ("tsv", "tfds"):
        raise UserError(f"GLUE source must be 'tsv' or 'tfds', got {source!r}")
    reader = read_tsv_examples if source == "tsv" else read_tfds_examples
    return reader(task, data_dir, split)


_TFDS_SPLITS = {
    "dev": "validation",
    "dev_matched": "validation_matched",
    "dev_mismatched": "validation_mismatched",
}


def read_tfds_examples(
    task: GlueTask | str, data_dir: str | Path, split: str, dataset: str = "glue"
) -> list[Example]:
    """Reads `glue/<task>` from an already prepared TFDS data_dir, never downloading:
    array_record by random access without TensorFlow, TFRecord through `tfds.load`.

    See ../shared/data/README.md ("TFDS offline") for preparing that dir without network.
    Label ids are mapped through TFDS's class names, since its MNLI order differs from ours.
    """
    task = get_task(task) if isinstance(task, str) else task
    name = f"{dataset}/{task.name}"
    examples, info = open_split(name, str(data_dir), _TFDS_SPLITS.get(split, split),
                                f"TFDS {name}")  # fmt: skip
    return [_tfds_example(task, split, info, ex) for ex in examples]


def _tfds_example(task: GlueTask, split: str, info, ex: dict) -> Example:
    key_a, key_b = task.tfds_keys
    text = lambda k: ex[k].decode("utf-8") if k is not None else None
    idx = str(int(ex["idx"]))
    label: str | float | None = None
    if not is_test_split(split) and task.label_column is not None:
        if task.labels is None:
            label = float(ex["label"])
        else:
            name = info.features["label"].int2str(int(ex["label"]))
            label = name if name in task.labels else str(int(ex["label"]))
    guid = idx if label is None else f"{split}-{idx}"
    return Example(guid=guid, text_a=text(key_a), text_b=text(key_b), label=label)


# --- features ---------------------------------------------------------------------------


def truncate_pair(tokens_a: list[int], tokens_b: list[int], max_length: int) -> None:
    """Drops tokens from the end of the longer sequence, one at a time, in place.

    As google-bert does: a longer sequence loses more, since each of its tokens carries
    less information than one of a short sequence's.
    """
    while len(tokens_a) + len(tokens_b) > max_length:
        if len(tokens_a) > len(tokens_b):
            tokens_a.pop()
        else:
            tokens_b.pop()


def pack_pair(
    tokenizer: Tokenizer, ids_a: list[int], ids_b: list[int] | None, max_seq_length: int
) -> dict[str, np.ndarray]:
    """[CLS] A [SEP] (B [SEP]) with segment ids 0/1, truncated and padded to fixed length."""
    ids_a = list(ids_a)
    ids_b = None if ids_b is None else list(ids_b)
    specials = 2 if ids_b is None else 3
    if max_seq_length < specials + 1:
        raise UserError(f"max_seq_length={max_seq_length} is too short for [CLS]/[SEP]")
    if ids_b is None:
        del ids_a[max_seq_length - specials :]
        ids_b = []
    else:
        truncate_pair(ids_a, ids_b, max_seq_length - specials)
    ids = [tokenizer.cls_id, *ids_a, tokenizer.sep_id]
    segments = [0] * len(ids)
    if specials == 3:
        ids += [*ids_b, tokenizer.sep_id]
        segments += [1] * (len(ids_b) + 1)
    return _pad(ids, segments, max_seq_length, tokenizer.pad_id)


def _pad(ids: list[int], segments: list[int], length: int, pad_id: int) -> dict[str, np.ndarray]:
    input_ids = np.full(length, pad_id, np.int32)
    input_ids[: len(ids)] = ids
    input_mask = np.zeros(length, np.int32)
    input_mask[: len(ids)] = 1
    segment_ids = np.zeros(length, np.int32)
    segment_ids[: len(segments)] = segments
    return {"input_ids": input_ids, "input_mask": input_mask, "segment_ids": segment_ids}


def convert_pair(
    tokenizer: Tokenizer, text_a: str, text_b: str | None, max_seq_length: int
) -> dict[str, np.ndarray]:
    """Tokenizes one (pair of) text(s) into fixed-length input_ids/input_mask/segment_ids."""
    ids_b = None if text_b is None else tokenizer.encode(text_b)
    return pack_pair(tokenizer, tokenizer.encode(text_a), ids_b, max_seq_length)


def label_id(task: GlueTask, label: str | float | None) -> int | float:
    """Class index (or the float score); 0 for unlabeled test rows, which are never scored."""
    if label is None:
        return 0.0 if task.is_regression else 0
    return float(label) if task.is_regression else task.labels.index(label)


def convert_examples(
    task: GlueTask | str, examples: Sequence[Example], tokenizer: Tokenizer, max_seq_length: int
) -> dict[str, np.ndarray]:
    """Stacks examples into [N, max_seq_length] int32 arrays plus `label` [N].

    `label` is int32 class ids, or float32 scores for STS-B.
    """
    task = get_task(task) if isinstance(task, str) else task
    rows = [convert_pair(tokenizer, e.text_a, e.text_b, max_seq_length) for e in examples]
    keys = ("input_ids", "input_mask", "segment_ids")
    out = {k: np.zeros((0, max_seq_length), np.int32) for k in keys}
    if rows:
        out = {k: np.stack([r[k] for r in rows]) for k in keys}
    dtype = np.float32 if task.is_regression else np.int32
    out["label"] = np.asarray([label_id(task, e.label) for e in examples], dtype=dtype)
    return out
