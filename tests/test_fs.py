"""fs.py: one path layer for disks and buckets, and the lint that keeps pathlib off buckets."""

import ast
import os
from pathlib import Path

import pytest

from jaxbert import fs

SRC = Path(__file__).resolve().parents[1] / "src" / "jaxbert"


def test_bucket_urls_keep_their_double_slash():
    """as_path never routes a URL through pathlib (which would read gs://b as gs:/b)."""
    p = fs.as_path("gs://bkt/runs/x")
    assert str(p) == "gs://bkt/runs/x" and str(p / "1") == "gs://bkt/runs/x/1"
    assert fs.is_remote(p) and fs.is_remote("s3://a/b") and not fs.is_remote("runs/x")
    assert str(fs.as_path(fs.as_path("gs://bkt/a"))) == "gs://bkt/a"


def test_local_paths_are_absolute(tmp_path, monkeypatch):
    """A relative local path is made absolute once, so a later chdir cannot move it."""
    monkeypatch.chdir(tmp_path)
    assert str(fs.as_path("out/x")) == str(tmp_path / "out" / "x")
    assert str(fs.as_path(f"file://{tmp_path}/y")) == str(tmp_path / "y")
    with pytest.raises(ValueError, match="object storage"):
        fs.local_str("gs://bkt/x")
    with pytest.raises(ValueError, match="empty path"):
        fs.as_path("")  # not silently the working directory


def test_atomic_write_local_replaces_and_leaves_no_temporary(tmp_path):
    """Local atomic writes create parents, replace the old content and leave no stray file."""
    target = tmp_path / "a" / "b.json"
    fs.atomic_write_text(target, "old")
    fs.atomic_write_bytes(target, b"new")
    assert target.read_bytes() == b"new"
    assert os.listdir(target.parent) == ["b.json"]


def test_atomic_write_local_failure_keeps_old(tmp_path, monkeypatch):
    """A failure before the rename leaves the old file byte-identical and no temporary."""
    target = tmp_path / "c.txt"
    target.write_text("old")

    def boom(*_):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError, match="disk full"):
        fs.atomic_write_text(target, "new")
    assert target.read_text() == "old" and os.listdir(tmp_path) == ["c.txt"]


def test_swap_in_dir_local(tmp_path):
    """The final directory becomes exactly the staged one; the staging name is gone."""
    final = tmp_path / "out"
    for content in ("first", "second"):
        staging = tmp_path / ".out.tmp"
        staging.mkdir()
        (staging / f"{content}.txt").write_text(content)
        fs.swap_in_dir(staging, final)
        assert os.listdir(final) == [f"{content}.txt"] and not staging.exists()
    assert sorted(os.listdir(tmp_path)) == ["out"]


def test_atomic_write_and_swap_on_gcs(gcs_bucket):
    """On the GCS server: writes land at the exact object, no temporary object stays, and a
    swapped-in prefix holds the new tree only, its marker written last."""
    target = fs.as_path(f"{gcs_bucket}/runs/config.json")
    fs.atomic_write_text(target, "old")
    fs.atomic_write_text(target, "new")
    assert target.read_text() == "new"
    assert fs.relative_files(f"{gcs_bucket}/runs") == ["config.json"]

    final, staging = fs.as_path(f"{gcs_bucket}/data"), fs.as_path(f"{gcs_bucket}/.data.tmp")
    (final / "stale.bin").write_bytes(b"x")
    (final / "manifest.json").write_text("old")
    (staging / "sub" / "a.bin").write_bytes(b"a")
    (staging / "manifest.json").write_text("new")
    fs.swap_in_dir(staging, final, marker="manifest.json")
    assert fs.relative_files(final) == ["manifest.json", "sub/a.bin"]
    assert (final / "manifest.json").read_text() == "new" and not staging.exists()


# The lint: no pathlib on a path that may be a bucket ----------------------------------

# Modules whose paths may be gs:// (checkpoints, run dirs, prepared data): they go through
# fs.as_path / epath and must not build a pathlib.Path at all.
BUCKET_MODULES = ("checkpoint.py", "fs.py", "data/store.py", "data/pipeline.py", "data/packing.py")


def _calls(tree: ast.AST, name: str):
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            f = node.func
            called = f.id if isinstance(f, ast.Name) else getattr(f, "attr", None)
            if called == name:
                yield node


def test_no_pathlib_path_of_str_anywhere_in_src():
    """`Path(str(x))` is how a gs:// path silently loses a slash; no module may do it."""
    offenders = []
    for file in sorted(SRC.rglob("*.py")):
        tree = ast.parse(file.read_text())
        for call in _calls(tree, "Path"):
            arg = call.args[0] if call.args else None
            if isinstance(arg, ast.Call) and getattr(arg.func, "id", None) == "str":
                offenders.append(f"{file.relative_to(SRC)}:{call.lineno}")
    assert not offenders, f"Path(str(...)) drops gs:// — use jaxbert.fs.as_path: {offenders}"


@pytest.mark.parametrize("module", BUCKET_MODULES)
def test_bucket_modules_use_no_pathlib(module):
    """Modules that handle bucket paths import nothing from pathlib (fs.as_path instead)."""
    tree = ast.parse((SRC / module).read_text())
    imports = [
        n.lineno
        for n in ast.walk(tree)
        if (isinstance(n, ast.ImportFrom) and n.module == "pathlib")
        or (isinstance(n, ast.Import) and any(a.name == "pathlib" for a in n.names))
    ]
    assert not imports, f"{module} imports pathlib at lines {imports}; use jaxbert.fs"
