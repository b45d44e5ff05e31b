"""GLUE scoring: the official metrics per task (accuracy, F1, Matthews correlation,
Pearson/Spearman) and the leaderboard submission files. The task table and readers are
`glue.py`'s. Pure Python/numpy."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from scipy import stats

from jaxbert import fs
from jaxbert.errors import UserError
from jaxbert.finetune.tasks.glue import GlueTask, get_task

# --- metrics ----------------------------------------------------------------------------


def accuracy(predictions: np.ndarray, labels: np.ndarray) -> float:
    """Fraction of exact matches; 0.0 for no examples rather than NaN."""
    predictions, labels = np.asarray(predictions), np.asarray(labels)
    return float(np.mean(predictions == labels)) if labels.size else 0.0


def f1_binary(predictions: np.ndarray, labels: np.ndarray, positive: int = 1) -> float:
    """F1 of the positive class (MRPC/QQP); 0.0 when there are no true positives."""
    pred_pos = np.asarray(predictions) == positive
    true_pos = np.asarray(labels) == positive
    tp = int(np.sum(pred_pos & true_pos))
    if tp == 0:
        return 0.0
    precision = tp / int(np.sum(pred_pos))
    recall = tp / int(np.sum(true_pos))
    return float(2 * precision * recall / (precision + recall))


def matthews_corrcoef(predictions: np.ndarray, labels: np.ndarray) -> float:
    """Matthews correlation (multi-class form, as sklearn); 0.0 when undefined.

    Constant predictions (or labels) make the denominator 0; MCC's convention then is 0,
    which keeps best-checkpoint selection free of NaN.
    """
    p, t = np.asarray(predictions).ravel(), np.asarray(labels).ravel()
    classes, idx = np.unique(np.concatenate([p, t]), return_inverse=True)
    k = len(classes)
    p_idx, t_idx = idx[: len(p)], idx[len(p) :]
    n = len(t)
    correct = int(np.sum(p_idx == t_idx))
    p_count = np.bincount(p_idx, minlength=k).astype(np.float64)
    t_count = np.bincount(t_idx, minlength=k).astype(np.float64)
    cov_pt = correct * n - np.dot(t_count, p_count)
    cov_pp = n * n - np.dot(p_count, p_count)
    cov_tt = n * n - np.dot(t_count, t_count)
    denom = np.sqrt(cov_pp * cov_tt)
    return float(cov_pt / denom) if denom > 0 else 0.0


def pearson(predictions: np.ndarray, labels: np.ndarray) -> float:
    """Pearson r; 0.0 (not NaN) when either side is constant, i.e. carries no signal."""
    x = np.asarray(predictions, np.float64).ravel()
    y = np.asarray(labels, np.float64).ravel()
    if x.size < 2:
        return 0.0
    x, y = x - x.mean(), y - y.mean()
    denom = np.sqrt(np.dot(x, x) * np.dot(y, y))
    return float(np.clip(np.dot(x, y) / denom, -1.0, 1.0)) if denom > 0 else 0.0


def spearman(predictions: np.ndarray, labels: np.ndarray) -> float:
    """Spearman rho: Pearson on average ranks (ties share their mean rank, as scipy)."""
    return pearson(stats.rankdata(predictions), stats.rankdata(labels))


def glue_metrics(
    task: GlueTask | str, predictions: np.ndarray, labels: np.ndarray
) -> dict[str, float]:
    """The official GLUE metrics for a task; `task.metric` names the headline one.

    `predictions` are class ids (argmax of logits) or, for STS-B, the regression outputs.
    """
    task = get_task(task) if isinstance(task, str) else task
    if task.is_regression:
        p, s = pearson(predictions, labels), spearman(predictions, labels)
        return {"pearson": p, "spearman": s, "corr": (p + s) / 2}
    out = {"accuracy": accuracy(predictions, labels)}
    if task.metric == "mcc":
        out["mcc"] = matthews_corrcoef(predictions, labels)
    if task.metric == "f1":
        out["f1"] = f1_binary(predictions, labels)
    return out


# --- leaderboard files ------------------------------------------------------------------


def format_prediction(task: GlueTask, prediction: int | float) -> str:
    """A label string for classification, a 3-decimal score for STS-B."""
    if task.is_regression:
        return f"{float(prediction):.3f}"
    return task.labels[int(prediction)]


def write_glue_predictions(
    task: GlueTask | str,
    split: str,
    guids: Sequence[str],
    predictions: Sequence[int | float] | np.ndarray,
    out_dir: str | Path,
) -> Path:
    """Writes `<out_dir>/<SST-2.tsv|MNLI-m.tsv|…>` as the GLUE server expects.

    Format: a header `index<TAB>prediction`, then one row per test example with the test
    file's own index, in input order. Returns the path written.
    """
    task = get_task(task) if isinstance(task, str) else task
    if split not in task.submission:
        raise UserError(
            f"GLUE task {task.name} has no leaderboard file for split {split!r}; "
            f"use one of {sorted(task.submission)}"
        )
    if len(guids) != len(predictions):
        raise ValueError(f"{len(guids)} guids but {len(predictions)} predictions")
    path = Path(out_dir) / task.submission[split]
    lines = ["index\tprediction"]
    lines += [f"{g}\t{format_prediction(task, p)}" for g, p in zip(guids, predictions)]
    fs.atomic_write_text(path, "\n".join(lines) + "\n")
    return path
