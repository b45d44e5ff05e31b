"""All-words WSD: 1-nearest-neighbour sense centroids from SemCor, scored like Raganato
et al.'s (2017) framework, with the most-frequent-sense baseline beside.

A sense key's centroid is the mean of its SemCor instances' vectors (LMMS, Loureiro &
Jorge 2019, without their gloss and WordNet-propagation steps). A test instance's
candidates are its lemma's WordNet senses of its part of speech (from the sense index:
keys look like `art%1:09:00::`, the digit after `%` is the synset type, 1 n, 2 v, 3/5 a,
4 r); it gets the candidate centroid nearest by cosine. Candidates without a centroid
fall back to the most frequent SemCor sense, and a lemma with no SemCor sense at all to
its first listed key (counted as `backoff_first_listed`), so every instance whose lemma
WordNet knows is answered. The scorer is the framework's Scorer.java: a prediction is
right if it is any gold key; P = right/answered, R = right/all, F1 their harmonic mean.
Join on sense keys only (OEWN synset ids are not WN 3.0 offsets).
"""

from __future__ import annotations

import dataclasses
import gzip
import xml.etree.ElementTree as ET
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

from jaxbert.errors import UserError

POS_TYPES = {"NOUN": ("1",), "VERB": ("2",), "ADJ": ("3", "5"), "ADV": ("4",)}
SETS = ("senseval2", "senseval3", "semeval2007", "semeval2013", "semeval2015")


@dataclasses.dataclass
class Instances:
    words: list[list[str]]  # sentences
    targets: list[list[int]]  # per sentence, word indices of its instances
    ids: list[str]  # flattened in the order of targets
    lemmas: list[str]
    pos: list[str]


def _open_text(path: Path):
    return (
        gzip.open(path, "rt", encoding="utf-8")
        if path.suffix == ".gz"
        else path.open(encoding="utf-8")
    )


def read_framework_xml(path: Path) -> Instances:
    """A Raganato-format `X.data.xml`: `<sentence>`s of `<wf>`/`<instance>` tokens."""
    if not path.is_file():
        raise UserError(f"WSD: {path} not found")
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as e:
        raise UserError(f"{path}:{e.position[0]}: not well-formed XML ({e})") from None
    out = Instances([], [], [], [], [])
    for sentence in root.iter("sentence"):
        words, targets = [], []
        for tok in sentence:
            if tok.tag == "instance":
                if not tok.get("id") or not tok.get("lemma") or tok.get("pos") is None:
                    raise UserError(f"{path}: an <instance> in sentence {sentence.get('id')} "
                                    "lacks id, lemma or pos")  # fmt: skip
                targets.append(len(words))
                out.ids.append(tok.get("id"))
                out.lemmas.append(tok.get("lemma").lower())
                out.pos.append(tok.get("pos"))
            words.append((tok.text or "").strip() or "_")
        out.words.append(words)
        out.targets.append(targets)
    if not out.ids:
        raise UserError(f"{path}: no <instance> elements (not a WSD framework data file)")
    return out


def read_keys(path: Path) -> dict[str, set[str]]:
    """`instance_id key [key …]` per line: the gold file, or a system's answers."""
    if not path.is_file():
        raise UserError(f"WSD: {path} not found")
    keys: dict[str, set[str]] = {}
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) < 2 or "%" not in fields[1]:
            raise UserError(f"{path}:{n}: expected 'instance_id sense_key …', got {line!r}")
        keys.setdefault(fields[0], set()).update(fields[1:])
    return keys


def read_sense_index(path: Path) -> dict[tuple[str, str], list[str]]:
    """(lemma, synset type) → sense keys, from a `sense_key<TAB>…` TSV (OEWN's)."""
    if not path.is_file():
        raise UserError(f"WSD: {path} not found (the WordNet sense index)")
    index: dict[tuple[str, str], list[str]] = defaultdict(list)
    with _open_text(path) as f:
        for n, line in enumerate(f, 1):
            if line.startswith("#") or not line.strip():
                continue
            key = line.split("\t", 1)[0]
            lemma, _, rest = key.partition("%")
            if not lemma or not rest[:1].isdigit():
                raise UserError(f"{path}:{n}: {key!r} is not a sense key (lemma%type:…)")
            index[(lemma.lower(), rest[0])].append(key)
    return dict(index)


def read_semcor(path: Path, known: set[str], max_sentences: int = 0) -> tuple[Instances, list[str]]:
    """SemCor as a token TSV (`id form lemma pos keys senses synsets`, a blank line between
    sentences): its sentences, and the sense key of each tagged token whose key the index
    knows (tokens with no WN 3.0 synset, `-`, are dropped, as the framework does)."""
    if not path.is_file():
        raise UserError(f"WSD: {path} not found (SemCor, the sense centroids' source)")
    out, keys = Instances([], [], [], [], []), []
    words, targets = [], []

    def flush():
        if words:
            out.words.append(list(words))
            out.targets.append(list(targets))
        words.clear()
        targets.clear()

    with _open_text(path) as f:
        for n, line in enumerate(f, 1):
            if line.startswith("#"):
                continue
            if not line.strip():
                flush()
                if max_sentences and len(out.words) >= max_sentences:
                    break
                continue
            fields = line.rstrip("\n").split("\t")
            if len(fields) != 7:
                raise UserError(f"{path}:{n}: expected 7 tab-separated fields, got {len(fields)}")
            key = fields[4].split(";")[0]
            if key != "-" and fields[6] != "-" and key in known:
                targets.append(len(words))
                keys.append(key)
            words.append(fields[1].replace("_", " "))
    flush()
    return out, keys


def centroids(vectors: np.ndarray, keys: list[str]) -> dict[str, np.ndarray]:
    """Sense key → unit-length mean of its instances' vectors."""
    by_key = defaultdict(list)
    for i, k in enumerate(keys):
        by_key[k].append(i)
    out = {}
    for k, idx in by_key.items():
        c = vectors[idx].mean(0)
        out[k] = c / max(np.linalg.norm(c), 1e-12)
    return out


def candidates(index, lemma: str, pos: str) -> list[str]:
    return [k for t in POS_TYPES.get(pos, ()) for k in index.get((lemma, t), ())]


def predict(inst: Instances, vectors, index, cents, counts: Counter) -> tuple[dict, Counter]:
    """Instance id → predicted key, and how each was decided."""
    how, preds = Counter(), {}
    for i, (iid, lemma, pos) in enumerate(zip(inst.ids, inst.lemmas, inst.pos)):
        cands = candidates(index, lemma, pos)
        if not cands:
            how["unanswered"] += 1
            continue
        with_c = [k for k in cands if k in cents] if vectors is not None else []
        if with_c:
            v = vectors[i] / max(np.linalg.norm(vectors[i]), 1e-12)
            preds[iid] = max(with_c, key=lambda k: float(cents[k] @ v))
            how["nearest_centroid"] += 1
        elif any(counts[k] for k in cands):
            preds[iid] = max(cands, key=lambda k: counts[k])  # ties: first listed
            how["backoff_mfs"] += 1
        else:
            preds[iid] = cands[0]
            how["backoff_first_listed"] += 1
    return preds, how


def score(gold: dict[str, set[str]], system: dict[str, str | set[str]]) -> dict:
    """Scorer.java: answers for ids not in gold are skipped; several answers for one id
    share its credit."""
    ok = notok = 0.0
    for iid, answer in system.items():
        if iid not in gold:
            continue
        answers = {answer} if isinstance(answer, str) else set(answer)
        hits = len(answers & gold[iid])
        ok += hits / len(answers)
        notok += (len(answers) - hits) / len(answers)
    p = ok / (ok + notok) if ok + notok else 0.0
    r = ok / len(gold) if gold else 0.0
    f1 = 2 * p * r / (p + r) if p + r else 0.0
    return {"P": p, "R": r, "F1": f1, "instances": len(gold)}


def score_by_set(gold, system) -> dict:
    """ALL, then each of its datasets (the id prefix before the first dot)."""
    out = {"ALL": score(gold, system)}
    for name in sorted({iid.split(".")[0] for iid in gold}):
        sub = {k: v for k, v in gold.items() if k.split(".")[0] == name}
        out[name] = score(sub, system)
    return out


FRAMEWORK = Path("wsd/WSD_Evaluation_Framework/Evaluation_Datasets/ALL")
SENSES = Path("wsd/wordnet/oewn2021_senses.tsv.gz")
SEMCOR = Path("wsd/semcor/semcor30_wn30.tsv.gz")


def evaluate(vectors_of, data: Path, corrections, max_semcor_sentences: int = 0,
             write_answers=None) -> dict:  # fmt: skip
    """`vectors_of(words, targets)` embeds; `corrections(semcor_vectors)` gives name →
    fitted map. F1 per dataset for MFS and, per correction, for the centroids; with
    `write_answers(relative_path, lines)`, each system's answers as a key file
    (`SYSTEM.key.txt`: `instance_id sense_key` lines) that the framework's Scorer.java
    reads against ALL.gold.key.txt."""
    inst = read_framework_xml(data / FRAMEWORK / "ALL.data.xml")
    gold = read_keys(data / FRAMEWORK / "ALL.gold.key.txt")
    missing = set(inst.ids) ^ set(gold)
    if missing:
        raise UserError(f"{data / FRAMEWORK}: {len(missing)} instance ids are in only one of "
                        f"ALL.data.xml and ALL.gold.key.txt, e.g. {sorted(missing)[0]}")  # fmt: skip
    index = read_sense_index(data / SENSES)
    known = {k for keys in index.values() for k in keys}
    semcor, keys = read_semcor(data / SEMCOR, known, max_semcor_sentences)
    if not keys:
        raise UserError(f"{data / SEMCOR}: no tagged token has a sense key of the index")
    counts = Counter(keys)
    train = vectors_of(semcor.words, semcor.targets)
    test = vectors_of(inst.words, inst.targets)
    mfs, how = predict(inst, None, index, {}, counts)
    results = {"mfs": {"scores": score_by_set(gold, mfs), "decided_by": dict(how)}}
    systems = {"mfs": mfs}
    for name, fix in corrections(train).items():
        preds, how = predict(inst, fix(test), index, centroids(fix(train), keys), counts)
        results[name] = {"scores": score_by_set(gold, preds), "decided_by": dict(how)}
        systems[name] = preds
    for name, preds in systems.items() if write_answers else ():
        write_answers(f"{name}.key.txt", [f"{i} {k}" for i, k in sorted(preds.items())])
    return {"semcor_sentences": len(semcor.words), "semcor_instances": len(keys),
            "sense_keys_with_centroid": len(counts), "results": results}  # fmt: skip
