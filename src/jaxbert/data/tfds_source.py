"""One split of a prepared TFDS dataset, offline, for corpora (`tfds:NAME`) and GLUE.

A dataset stored as array_record is read by random access (`builder.as_data_source`, the
form Grain and MaxText consume) and needs no TensorFlow; a TFRecord one goes through
`tfds.load`, which does, so without it the error says how to convert the files once.
Nothing is ever downloaded. numpy only: no jax, no TensorFlow imported here.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from jaxbert.errors import UserError

CONVERT_HINT = (
    "pip install tensorflow-cpu, or convert it to array_record once with "
    "`tfds convert_format --out_file_format=array_record` (README: 'TFDS corpora')"
)


def _import_tfds(what: str):
    try:
        import tensorflow_datasets as tfds  # noqa: PLC0415 - optional and heavy
    except ImportError as e:
        raise UserError(
            f"{what} needs tensorflow-datasets, which is not installed: "
            "pip install tensorflow-datasets (array_record datasets need nothing more)"
        ) from e
    return tfds


def _first_line(e: Exception) -> str:
    """tfds's not-found errors go on for ~255 lines (every dataset name it knows): the
    first line says what is wrong."""
    lines = str(e).strip().splitlines() or [type(e).__name__]
    more = " …" if len(lines) > 1 else ""
    return lines[0][:300] + more


def open_split(
    name: str, data_dir: str | None, split: str, what: str
) -> tuple[Iterator[dict], Any]:
    """(the split's examples as numpy dicts, text as bytes; the dataset's info).

    `what` names the dataset in errors ("tfds:wiki", "TFDS glue/sst2")."""
    tfds = _import_tfds(what)
    try:
        builder = tfds.builder(name, data_dir=data_dir)
        array_record = str(builder.info.file_format).lower().endswith("array_record")
    except Exception as e:  # tfds raises many types for a missing/unprepared dataset
        where = data_dir or "the default TFDS data_dir"
        raise UserError(f"{what} not found or not prepared in {where}: {_first_line(e)}") from e
    if array_record:
        try:
            source = builder.as_data_source(split=split)
        except Exception as e:
            raise UserError(f"{what} has no split {split!r} in {data_dir}: {e}") from e
        return (source[i] for i in range(len(source))), builder.info
    try:
        import tensorflow  # noqa: F401, PLC0415
    except ImportError:
        raise UserError(
            f"{what} in {data_dir} is stored as TFRecord, which TFDS reads only "
            f"with tensorflow: {CONVERT_HINT}"
        ) from None
    try:
        ds, info = tfds.load(name, split=split, data_dir=data_dir, download=False, with_info=True)
    except Exception as e:  # tfds raises many types for a missing/unprepared dataset
        raise UserError(f"{what} (split {split!r}) not readable from {data_dir}: {e}") from e
    return iter(tfds.as_numpy(ds)), info
