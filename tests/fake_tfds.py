"""A stand-in `tensorflow_datasets` for reader tests: the slice of its API jaxbert uses.

`builder(name, data_dir=)` gives a prepared array_record dataset (`info.file_format`,
`info.features["label"].int2str` with TFDS's class names, `as_data_source(split=)`), or a
TFRecord one with `file_format="tfrecord"`; `load(name, split=, data_dir=, download=,
with_info=)` is the TFRecord path. Examples come as TFDS yields them (text as bytes, ints
as numpy scalars). Calls are recorded so a test can check what was read, and that
nothing was asked to download.
"""

from __future__ import annotations

import types

import numpy as np


class ClassLabel:
    def __init__(self, names: list[str]):
        self.names = names

    def int2str(self, i: int) -> str:
        return self.names[i]


def make_module(datasets: dict[tuple[str, str], list[dict]], labels: dict[str, list[str]],
                file_format: str = "array_record"):  # fmt: skip
    """datasets: (name, split) → examples; labels: name → TFDS class names."""
    module = types.ModuleType("tensorflow_datasets")
    module.calls = []

    def rows_of(name, split):
        return [
            {k: v.encode() if isinstance(v, str) else np.asarray(v) for k, v in ex.items()}
            for ex in datasets[(name, split)]
        ]

    def builder(name, *, data_dir=None):
        if not any(n == name for n, _ in datasets):
            raise ValueError(f"Dataset {name} not found in {data_dir}")
        features = {"label": ClassLabel(labels.get(name, []))}
        info = types.SimpleNamespace(
            file_format=f"FileFormat.{file_format.upper()}", features=features
        )

        def as_data_source(*, split):
            module.calls.append(
                {"name": name, "split": split, "data_dir": data_dir, "download": False}
            )
            if (name, split) not in datasets:
                raise ValueError(f"Unknown split {split!r}")
            return rows_of(name, split)

        return types.SimpleNamespace(info=info, as_data_source=as_data_source)

    module.builder = builder

    def load(name, *, split, data_dir=None, download=True, with_info=False):
        module.calls.append(
            {"name": name, "split": split, "data_dir": data_dir, "download": download}
        )
        if (name, split) not in datasets:
            raise ValueError(f"Dataset {name} split {split} not found in {data_dir}")
        rows = rows_of(name, split)
        info = types.SimpleNamespace(features={"label": ClassLabel(labels.get(name, []))})
        return (rows, info) if with_info else rows

    module.load = load
    module.as_numpy = lambda ds: iter(ds)
    return module
