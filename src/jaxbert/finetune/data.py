"""Task data for the fine-tuning loop: features from `finetune/tasks/*`, and how each
split is scored and written out.

Each family (GLUE, CoNLL-2003, SQuAD) produces a `TaskData`: the training features and
a list of `EvalSplit`s, each with numpy features plus three closures over the host-side
metadata — `decode(predictions) -> answers` (labels, tag sequences, answer strings; done
once per evaluation, since SQuAD's n-best decoding is not cheap), `score(answers) ->
metrics` and `write(answers, out_dir) -> files`.
The loop stays task-agnostic; no jax here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from jaxbert import fs
from jaxbert.errors import UserError
from jaxbert.finetune.config import task_family
from jaxbert.finetune.tasks import glue, glue_scoring, ner, squad, squad_answers
from jaxbert.pretrained import resolve_path

Arrays = dict[str, np.ndarray]


@dataclasses.dataclass
class EvalSplit:
    name: str  # dev, dev_matched, test, …
    features: Arrays
    decode: Callable[[Arrays], Any]  # device predictions → the task's answers
    score: Callable[[Any], dict] | None  # None: unlabeled (GLUE test)
    write: Callable[[Any, Path], list[Path]]


@dataclasses.dataclass
class TaskData:
    kind: str  # classification | regression | token | span
    num_labels: int
    metric: str  # the dev metric that picks the best epoch (higher is better)
    train: Arrays
    dev: list[EvalSplit]  # the first one picks the best epoch
    test: list[EvalSplit]  # predicted (and scored if labeled) with the best params
    buckets: tuple[int, ...] | None = None  # length buckets (finetune/buckets.py); None: off


def data_layout_message(data_dir: Path) -> str:
    return (
        f"data dir {data_dir} not found (set --config.data_dir). Expected the offline "
        "layout of ../shared/data (relative to the repository root):\n"
        "  glue/<TASK>/{train,dev,test}.tsv   e.g. glue/SST-2/train.tsv (GLUE's glue_data "
        "layout)\n"
        "  conll2003/eng.{train,testa,testb}  CoNLL-2003 English, 4 columns, IOB1\n"
        "  squad/dev-v1.1.json                SQuAD v1.1\n"
        "For GLUE from TFDS instead: --config.source=tfds --config.data_dir=<your TFDS "
        "data_dir> with glue/<task> already prepared (see ../shared/data/README.md, "
        "'TFDS offline'; nothing is downloaded)."
    )


def data_root(cfg) -> Path:
    path = resolve_path(cfg.data_dir)
    if not path.is_dir():
        raise UserError(data_layout_message(path))
    return path


def load_task_data(cfg, tokenizer) -> TaskData:
    root = data_root(cfg)
    family = task_family(cfg.task)
    return {"glue": _glue, "ner": _ner, "squad": _squad}[family](cfg, tokenizer, root)


def subset(items: list, n: int, seed: int) -> list:
    """A seeded random subset of n items in their original order (n=0: all)."""
    if not n or n >= len(items):
        return list(items)
    keep = np.sort(np.random.default_rng(seed).permutation(len(items))[:n])
    return [items[i] for i in keep]


def _require(examples: list, what: str) -> list:
    if not examples:
        raise UserError(f"{what} is empty")
    return examples


# --- GLUE -------------------------------------------------------------------------------


def _glue(cfg, tokenizer, root: Path) -> TaskData:
    task = glue.get_task(cfg.task)
    data_dir = root / "glue" if cfg.source == "tsv" and (root / "glue").is_dir() else root

    def features(split: str, limit: int):
        examples = glue.read_examples(task, data_dir, split, cfg.source)
        if limit:
            examples = examples[:limit] if split != "train" else subset(examples, limit, cfg.seed)
        _require(examples, f"GLUE {task.name} {split} split")
        return examples, glue.convert_examples(task, examples, tokenizer, cfg.max_seq_length)

    _, train = features("train", cfg.max_train_examples)
    dev = [_glue_split(task, s, *features(s, cfg.max_eval_examples)) for s in task.dev_splits]
    test = []
    for split in task.test_splits:
        try:
            test.append(_glue_split(task, split, *features(split, cfg.max_eval_examples)))
        except UserError as e:  # a missing test file only costs the leaderboard file
            print(f"warning: no GLUE {task.name} {split} predictions: {e}")
    kind = "regression" if task.is_regression else "classification"
    return TaskData(kind, task.num_labels, task.metric, train, dev, test)


def _glue_split(task, split: str, examples, feats: Arrays) -> EvalSplit:
    labeled = not glue.is_test_split(split)
    guids = [e.guid for e in examples]

    def decode(preds: Arrays) -> np.ndarray:
        return preds["score"] if task.is_regression else preds["logits"].argmax(-1)

    def score(values: np.ndarray) -> dict:
        return glue_scoring.glue_metrics(task, values, feats["label"])

    def write(values: np.ndarray, out_dir: Path) -> list[Path]:
        if not labeled:
            return [
                glue_scoring.write_glue_predictions(task, split, guids, values, out_dir / "test")
            ]
        # Dev predictions in the same leaderboard format, under the test file's name.
        name = task.submission[split.replace("dev", "test")]
        path = out_dir / "dev" / name
        rows = [f"{g}\t{glue_scoring.format_prediction(task, v)}" for g, v in zip(guids, values)]
        fs.atomic_write_text(path, "\n".join(["index\tprediction", *rows]) + "\n")
        return [path]

    return EvalSplit(split, feats, decode, score if labeled else None, write)


# --- CoNLL-2003 NER ---------------------------------------------------------------------


def _ner(cfg, tokenizer, root: Path) -> TaskData:
    folder = root / "conll2003"

    def split(name: str, file: str, limit: int) -> EvalSplit:
        sentences = _require(ner.read_conll(folder / file)[: limit or None], str(folder / file))
        feats, metas = ner.convert_sentences(sentences, tokenizer, cfg.max_seq_length)
        return _ner_split(name, sentences, feats, metas)

    sentences = subset(
        ner.read_conll(folder / cfg.ner.train_file), cfg.max_train_examples, cfg.seed
    )
    train, _ = ner.convert_sentences(
        _require(sentences, "NER train file"), tokenizer, cfg.max_seq_length
    )
    dev = [split("dev", cfg.ner.dev_file, cfg.max_eval_examples)]
    test = [split("test", cfg.ner.test_file, cfg.max_eval_examples)] if cfg.ner.test_file else []
    return TaskData("token", len(ner.LABELS), "f1", train, dev, test)


def _ner_split(name: str, sentences, feats: Arrays, metas) -> EvalSplit:
    gold = [list(s.tags) for s in sentences]

    def decode(preds: Arrays) -> list[list[str]]:
        return ner.decode_predictions(preds["tags"], metas, len(sentences))

    def score(predicted: list[list[str]]) -> dict:
        scores = ner.entity_scores(gold, predicted)
        return {k: scores[k] for k in ("precision", "recall", "f1")}

    def write(predicted: list[list[str]], out_dir: Path) -> list[Path]:
        """conlleval input: `word gold predicted` per line, a blank line between sentences."""
        lines = []
        for sent, tags in zip(sentences, predicted):
            lines += [f"{w} {g} {p}" for w, g, p in zip(sent.words, sent.tags, tags)] + [""]
        path = out_dir / f"ner_{name}.txt"
        fs.atomic_write_text(path, "\n".join(lines))
        return [path]

    return EvalSplit(name, feats, decode, score, write)


# --- SQuAD v1.1 -------------------------------------------------------------------------


def _keep_questions(articles: list[dict], qids: set[str]) -> list[dict]:
    """Articles restricted to the given questions (so unseen ones do not score 0)."""
    out = []
    for a in articles:
        paragraphs = [
            {**p, "qas": [q for q in p["qas"] if q["id"] in qids]} for p in a["paragraphs"]
        ]
        paragraphs = [p for p in paragraphs if p["qas"]]
        if paragraphs:
            out.append({**a, "paragraphs": paragraphs})
    return out


def _squad(cfg, tokenizer, root: Path) -> TaskData:
    """SQuAD v1.1; `squad.eval_files` adds splits in other languages (XQuAD zero-shot), and
    `squad.exclude_paragraphs_from` keeps another file's paragraphs out of training
    (XQuAD's English paragraphs are all in SQuAD dev, spread over all its articles)."""
    s = cfg.squad
    articles = squad.load_squad(root / "squad" / s.file)
    if s.train_file:
        train_articles, eval_articles = squad.load_squad(root / "squad" / s.train_file), articles
    else:
        train_articles, eval_articles = squad.split_articles(
            articles, s.eval_fraction, s.split_seed
        )
    if s.get("exclude_paragraphs_from"):
        path = _data_path(root, s.exclude_paragraphs_from)
        train_articles = squad.drop_paragraphs(train_articles, squad.load_squad(path))
        if not train_articles:
            raise UserError(f"squad.exclude_paragraphs_from={path} holds every training "
                            "paragraph: nothing is left to train on")  # fmt: skip
    convert = dict(
        tokenizer=tokenizer,
        max_seq_length=cfg.max_seq_length,
        doc_stride=s.doc_stride,
        max_query_length=s.max_query_length,
    )
    train_ex = subset(squad.read_examples(train_articles, True), cfg.max_train_examples, cfg.seed)
    train, _ = squad.convert_examples(_require(train_ex, "SQuAD training questions"), **convert)
    dev = _squad_split("dev", eval_articles, cfg, convert, "squad_dev_predictions.json")
    test = []
    for spec in (x.strip() for x in s.get("eval_files", "").split(",") if x.strip()):
        name = Path(spec).name.removesuffix(".gz").removesuffix(".json")
        test.append(_squad_split(name, squad.load_squad(_data_path(root, spec)), cfg, convert,
                                 f"{name}_predictions.json"))  # fmt: skip
    return TaskData("span", 2, "f1", train, [dev], test)


def _data_path(root: Path, spec: str) -> Path:
    """A path as given, else under data_dir (e.g. multilingual/parallel/xquad/xquad.de.json.gz)."""
    p = Path(spec)
    return p if p.is_absolute() or p.exists() else root / spec


def _squad_split(name: str, articles, cfg, convert: dict, filename: str) -> EvalSplit:
    s, tokenizer = cfg.squad, convert["tokenizer"]
    eval_ex = squad.read_examples(articles, False)[: cfg.max_eval_examples or None]
    feats, meta = squad.convert_examples(_require(eval_ex, f"SQuAD {name} questions"), **convert)
    gold = _keep_questions(articles, {e.qas_id for e in eval_ex})

    def answers(preds: Arrays) -> dict[str, str]:
        return squad_answers.postprocess(
            eval_ex, meta, preds["start_logits"], preds["end_logits"], tokenizer,
            s.n_best_size, s.max_answer_length,
        )[0]  # fmt: skip

    def score(predicted: dict[str, str]) -> dict:
        return squad_answers.evaluate(gold, predicted)

    def write(predicted: dict[str, str], out_dir: Path) -> list[Path]:
        return [squad_answers.write_predictions(predicted, out_dir / filename)]

    return EvalSplit(name, feats, answers, score, write)
