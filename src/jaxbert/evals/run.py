"""One `jaxbert eval-embeddings` run: the tasks, each with and without corrections, as one
JSON-able dict with the settings, and the summary lines the CLI prints."""

from __future__ import annotations

import time
from pathlib import Path

from jaxbert.embed import corrections as corr
from jaxbert.errors import UserError
from jaxbert.evals import flores, sts, wic, wordsim, wsd

TASKS = ("wic", "wsd", "wordsim", "flores", "sts")
WIC_DIR = Path("wsd/WiC_dataset")


def fitter(kinds, top_k: int = 0):
    """sample → {kind: fitted correction} for the requested kinds."""

    def fit_all(sample, what="the fitting sample"):
        return {k: corr.fit(k, sample, top_k, what) for k in kinds}

    return fit_all


def check_data(data: Path, tasks) -> None:
    """Before any model loading: every task's files are where they should be."""
    needs = {"wic": [WIC_DIR / "train"], "wsd": [wsd.FRAMEWORK, wsd.SENSES, wsd.SEMCOR],
             "wordsim": [wordsim.DIR], "flores": [flores.DIR], "sts": [sts.DIR / sts.SPLIT, sts.DIR / sts.FIT_SPLIT]}  # fmt: skip
    for task in tasks:
        for rel in needs[task]:
            if not (data / rel).exists():
                raise UserError(f"--task {task}: {data / rel} not found (set --data or "
                                "JAXBERT_DATA to the folder that holds wsd/, wordsim/ and "
                                "glue/, e.g. ../shared/data)")  # fmt: skip


def run(embedder, tasks, data: Path, kinds, *, sentences=(), semcor_sentences=0, per_word=8,
        top_k=0, languages=(), sentence_pool=None, answers: Path | None = None,
        log=print) -> dict:  # fmt: skip
    """Every task's scores; with `answers`, each system's answers in the benchmark's own
    format under answers/TASK/ (WiC T/F lines, WSD key files) for re-scoring."""
    fit = fitter(kinds, top_k)
    out = {}
    for task in tasks:
        t0 = time.time()
        log(f"eval-embeddings: {task} …")
        if task == "wic":
            res = wic.evaluate(embedder.word_vectors, data / WIC_DIR, fit, _writer(answers, task))
        elif task == "wsd":
            res = wsd.evaluate(embedder.word_vectors, data, fit, semcor_sentences,
                               _writer(answers, task))  # fmt: skip
        elif task == "flores":
            vectors = lambda texts: embedder.sentence_vectors(texts, sentence_pool)  # noqa: E731
            res = flores.evaluate(vectors, data / flores.DIR, languages, fit)
        elif task == "sts":
            vectors = lambda texts: embedder.sentence_vectors(texts, sentence_pool)  # noqa: E731
            res = sts.evaluate(vectors, data, fit)
        else:
            res = wordsim.evaluate(embedder, data, sentences, fit, per_word)
        res["wall_s"] = round(time.time() - t0, 1)
        out[task] = res
        for line in summary(task, res):
            log("  " + line)
    return out


def _writer(answers: Path | None, task: str):
    """(relative path, lines) → a file under answers/task/, written beside and renamed."""
    if answers is None:
        return None

    def write(rel: str, lines) -> None:
        path = answers / task / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text("".join(f"{x}\n" for x in lines), encoding="utf-8")
        tmp.replace(path)

    return write


def summary(task: str, res: dict) -> list[str]:
    r = res["results"]
    if task == "wic":
        return [f"{k:>7}: dev {v['dev_accuracy']:.3f}" + (f"  test {v['test_accuracy']:.3f}"
                if "test_accuracy" in v else "") + f"  (threshold {v['threshold']:.3f})"
                for k, v in r.items()]  # fmt: skip
    if task == "sts":
        return [f"{k:>7}: STS-B dev Spearman {v['spearman']:.4f}" for k, v in r.items()]
    if task == "wsd":
        return [f"{k:>7}: ALL F1 {v['scores']['ALL']['F1']:.3f}" for k, v in r.items()]
    if task == "flores":
        return [f"{k:>7}: mean top-1 xx→en {sum(x['to_en'] for x in v.values()) / len(v):.3f}, "
                f"en→xx {sum(x['from_en'] for x in v.values()) / len(v):.3f} over {len(v)} languages"
                for k, v in r.items()]  # fmt: skip
    lines = []
    for kind, by_corr in r.items():
        for k, rho in by_corr.items():
            mean = sum(rho.values()) / len(rho)
            lines.append(f"{kind:>7} {k:>7}: mean ρ {mean:.3f} over {len(rho)} sets")
    return lines
