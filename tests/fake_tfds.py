"""A stand-in `tensorflow_datasets` for reader tests: the slice of its API jaxbert uses.

`load(name, split=, data_dir=, download=, with_info=)` returns examples as TFDS's
`as_numpy` would yield them (text as bytes, ints as numpy scalars) and, with_info, an info
whose `features["label"].int2str` maps ids to TFDS's class names. Calls are recorded so a
test can check that nothing was asked to download.
"""

from __future__ import annotations

import types

import numpy as np


class ClassLabel:
    def __init__(self, names: list[str]):
        self.names = names

    def int2str(self, i: int) -> str:
        return self.names[i]


def make_module(datasets: dict[tuple[str, str], list[dict]], labels: dict[str, list[str]]):
    """datasets: (name, split) → examples; labels: name → TFDS class names."""
    module = types.ModuleType("tensorflow_datasets")
    module.calls = []

    def load(name, *, split, data_dir=None, download=True, with_info=False):
        module.calls.append(
            {"name": name, "split": split, "data_dir": data_dir, "download": download}
        )
        if (name, split) not in datasets:
            raise ValueError(f"Dataset {name} split {split} not found in {data_dir}")
        rows = [
            {k: v.encode() if isinstance(v, str) else np.asarray(v) for k, v in ex.items()}
            for ex in datasets[(name, split)]
        ]
        info = types.SimpleNamespace(features={"label": ClassLabel(labels.get(name, []))})
        return (rows, info) if with_info else rows

    module.load = load
    module.as_numpy = lambda ds: iter(ds)
    return module
