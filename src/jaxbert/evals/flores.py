"""FLORES-200 retrieval: do sentence vectors line up across languages without training?

Every devtest sentence (1,012 per language, line-aligned) is embedded (mean over its
sub-tokens, or [CLS]); for each sentence of language X the nearest English sentence by
cosine should be its own translation (line i → line i), and the reverse. Top-1 accuracy
per direction, as XTREME's Tatoeba/BUCC tasks; chance is 1/1,012. A random-init model of
the same architecture gives the floor (shared sub-words and digits alone retrieve some).
Corrections are fitted on all the evaluated languages' vectors together.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from jaxbert.errors import UserError

DIR = Path("multilingual/parallel/flores200_devtest")
PIVOT = "eng_Latn"


def available(root: Path) -> list[str]:
    return sorted(p.name.removesuffix(".devtest") for p in root.glob("*.devtest"))


def read_language(root: Path, lang: str) -> list[str]:
    path = root / f"{lang}.devtest"
    if not path.is_file():
        raise UserError(
            f"FLORES: no {lang}.devtest in {root} (present: {', '.join(available(root))})"
        )
    lines = path.read_text(encoding="utf-8").splitlines()
    for n, line in enumerate(lines, 1):
        if not line.strip():
            raise UserError(f"{path}:{n}: an empty line (FLORES files are line-aligned)")
    return lines


def top1(queries: np.ndarray, keys: np.ndarray) -> float:
    """Share of rows i whose nearest key (cosine) is key i."""
    q = queries / np.maximum(np.linalg.norm(queries, axis=1, keepdims=True), 1e-12)
    k = keys / np.maximum(np.linalg.norm(keys, axis=1, keepdims=True), 1e-12)
    return float((np.argmax(q @ k.T, axis=1) == np.arange(len(q))).mean())


def evaluate(sentence_vectors, root: Path, languages, corrections) -> dict:
    """`sentence_vectors(texts)` embeds; per correction and language: xx→en and en→xx."""
    languages = [x for x in (languages or available(root)) if x != PIVOT]
    if not languages:
        raise UserError(f"FLORES: no language besides {PIVOT} in {root}")
    texts = {lang: read_language(root, lang) for lang in [PIVOT, *languages]}
    n = len(texts[PIVOT])
    for lang, lines in texts.items():
        if len(lines) != n:
            raise UserError(f"FLORES: {lang}.devtest has {len(lines)} lines, {PIVOT} has {n}")
    vecs = {lang: sentence_vectors(lines) for lang, lines in texts.items()}
    out = {}
    for name, fix in corrections(np.concatenate(list(vecs.values()))).items():
        fixed = {lang: fix(v) for lang, v in vecs.items()}
        out[name] = {lang: {"to_en": top1(fixed[lang], fixed[PIVOT]),
                            "from_en": top1(fixed[PIVOT], fixed[lang])} for lang in languages}  # fmt: skip
    return {"sentences": n, "languages": languages, "results": out}
