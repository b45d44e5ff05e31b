"""A synthetic `../shared/data` layout for the embedding evaluations, built from the
plain-text files in tests/fixtures/embeddings (none of them copies WiC or SemCor)."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import pytest

from tests.conftest import REPO

FIX = REPO / "tests" / "fixtures" / "embeddings"


def build_data(root: Path) -> Path:
    wic = root / "wsd" / "WiC_dataset"
    for split in ("train", "dev", "test"):
        (wic / split).mkdir(parents=True)
        for kind in ("data", "gold"):
            shutil.copy(FIX / f"wic_{split}.{kind}.txt", wic / split / f"{split}.{kind}.txt")
    fw = root / "wsd" / "WSD_Evaluation_Framework" / "Evaluation_Datasets" / "ALL"
    fw.mkdir(parents=True)
    shutil.copy(FIX / "wsd_all.data.xml", fw / "ALL.data.xml")
    shutil.copy(FIX / "wsd_all.gold.key.txt", fw / "ALL.gold.key.txt")
    for src, dst in (("senses.tsv", "wordnet/oewn2021_senses.tsv.gz"),
                     ("semcor.tsv", "semcor/semcor30_wn30.tsv.gz")):  # fmt: skip
        (root / "wsd" / dst).parent.mkdir(parents=True, exist_ok=True)
        with gzip.open(root / "wsd" / dst, "wb") as f:
            f.write((FIX / src).read_bytes())
    flores = root / "multilingual" / "parallel" / "flores200_devtest"
    flores.mkdir(parents=True)
    en = ["the cat sat on the bank .", "the river was muddy .", "she played the violin .",
          "he sold the loan in 2016 .", "the bird flew over the hill ."]  # fmt: skip
    (flores / "eng_Latn.devtest").write_text("\n".join(en) + "\n")
    (flores / "deu_Latn.devtest").write_text("\n".join(s.replace("the", "die") for s in en) + "\n")
    (root / "wordsim").mkdir()
    shutil.copy(FIX / "wordsim_toy.txt", root / "wordsim" / "EN-TOY.txt")
    return root


@pytest.fixture
def eval_data(tmp_path) -> Path:
    return build_data(tmp_path / "data")
