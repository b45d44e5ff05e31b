"""One path layer for local disks and buckets: every path a run writes or reads goes here.

`pathlib.Path("gs://b/x")` silently becomes `gs:/b/x`, so any path that may be a bucket
(run and checkpoint directories, saved configs, params, predictions, metrics, prepared
data) is an `etils.epath.Path` (which orbax already uses): the local backend on a disk,
fsspec/gcsfs on `gs://` (tests point gcsfs at a local GCS server through
STORAGE_EMULATOR_HOST).

Which guarantee holds where (docs/object-storage.md says the same for users):

- `atomic_write_*`. Local: written beside with a temporary name, fsynced, `os.replace`d
  over, directory fsynced — a reader (or a crash) sees the old bytes or the new, and the
  new survive power loss. gs://: an object upload is all-or-nothing, and the bytes go to a
  temporary object first, then are copied over the target (a server-side rewrite) — a
  reader sees the old object or the new one, never a partial one; a crash leaves at most a
  stray `.NAME.tmp-*` object. There is no fsync to do: a finished upload is durable.
- `swap_in_dir`. Local: one `renameat2(RENAME_EXCHANGE)` where Linux has it (else two
  renames), so the final directory is always the complete old or the complete new one.
  gs:// has no directories and no rename: objects are copied one by one and the ones the
  new tree lacks deleted, so during the swap a reader may see a mix. Callers therefore
  write a commit marker (the prepared data's manifest.json, orbax's commit_success.txt)
  and pass it as `marker`: it is deleted first and copied last, so a directory whose
  marker is present is complete.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import uuid

from etils import epath

PathLike = str | os.PathLike

_AT_FDCWD, _RENAME_EXCHANGE = -100, 2


def is_remote(path: PathLike) -> bool:
    """True for object-store URLs (gs://, s3://, …): no rename, no fsync, no mmap there."""
    text = os.fspath(path)
    return "://" in text and not text.startswith("file://")


def as_path(path: PathLike) -> epath.Path:
    """The one constructor for a path that may be a bucket; a local one is made absolute,
    so the result never depends on a later chdir."""
    if isinstance(path, epath.Path) and is_remote(path):
        return path
    text = os.fspath(path)
    if not text:  # os.path.abspath("") is the working directory: never what was meant
        raise ValueError("empty path")
    if is_remote(text):
        return epath.Path(text)
    if text.startswith("file://"):
        text = text[len("file://") :]
    return epath.Path(os.path.abspath(os.path.expanduser(text)))


def local_str(path: PathLike) -> str:
    """A local path as a plain string (for mmap, sentencepiece, subprocesses); a bucket
    path is refused, since those tools would read `gs:/…` from the local disk."""
    if is_remote(path):
        raise ValueError(f"{os.fspath(path)} is on object storage; this needs a local path")
    return os.fspath(as_path(path))


def _tmp_name(path: epath.Path) -> epath.Path:
    return path.parent / f".{path.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"


def atomic_write_bytes(path: PathLike, data: bytes) -> epath.Path:
    """Writes `data` so that readers see the old content or all of the new (see the module
    docstring for what holds on local disks and on gs://); returns the path written."""
    path = as_path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp_name(path)
    try:
        if is_remote(path):
            tmp.write_bytes(data)
            remote_fs(path).copy(_bucket_key(tmp), _bucket_key(path))  # server-side rewrite
        else:
            _write_synced(str(tmp), data)
            os.replace(tmp, path)
            _fsync_dir(str(path.parent))
    finally:
        with contextlib.suppress(FileNotFoundError, OSError):
            if tmp.exists():
                tmp.unlink()
    return path


def atomic_write_text(path: PathLike, text: str) -> epath.Path:
    """`atomic_write_bytes` of UTF-8 text."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def _write_synced(path: str, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _fsync_dir(path: str) -> None:
    """Makes a rename inside `path` durable; some filesystems cannot open a directory."""
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def swap_in_dir(staging: PathLike, final: PathLike, *, marker: str | None = None) -> None:
    """Puts the complete directory `staging` at `final`, replacing what was there; on
    return `staging` no longer exists. See the module docstring for the guarantee."""
    staging, final = as_path(staging), as_path(final)
    if is_remote(final) or is_remote(staging):
        _swap_remote(staging, final, marker)
    else:
        _swap_local(staging, final)


def _swap_local(staging: epath.Path, final: epath.Path) -> None:
    import shutil

    final.parent.mkdir(parents=True, exist_ok=True)
    if not final.exists():
        os.rename(staging, final)
    elif _exchange(str(staging), str(final)):
        shutil.rmtree(staging, ignore_errors=True)  # now the old output
    else:
        aside = final.parent / f".{final.name}.old-{os.getpid()}"
        os.rename(final, aside)
        os.rename(staging, final)
        shutil.rmtree(aside, ignore_errors=True)
    _fsync_dir(str(final.parent))


def _exchange(a: str, b: str) -> bool:
    """Atomically swaps two paths (Linux renameat2); False where the system cannot."""
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p]
    renameat2.argtypes += [ctypes.c_uint]
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), b)


def relative_files(root: PathLike) -> list[str]:
    """Every file under `root` as a '/'-joined relative name, sorted (objects on gs://)."""
    root = as_path(root)
    if is_remote(root):
        prefix = _bucket_key(root).rstrip("/") + "/"
        return sorted(name[len(prefix) :] for name in remote_fs(root).find(_bucket_key(root)))
    return sorted(
        os.path.relpath(os.path.join(d, f), root).replace(os.sep, "/")
        for d, _, files in os.walk(root)
        for f in files
    )


def remote_fs(path: PathLike):
    """The fsspec filesystem behind a bucket path (gcsfs for gs://): server-side copies,
    recursive listings and ranged reads that epath does not expose."""
    from etils.epath import backend

    return backend.fsspec_backend.fs(os.fspath(path))


def _bucket_key(path: PathLike) -> str:
    """'gs://bkt/a/b' → 'bkt/a/b', the form fsspec listings return."""
    return os.fspath(path).split("://", 1)[1]


def _swap_remote(staging: epath.Path, final: epath.Path, marker: str | None) -> None:
    """Copies (or uploads, from a local `staging`) the new tree, marker last; deletes what
    the new tree lacks. Not atomic: see the module docstring."""
    new = relative_files(staging)
    old = relative_files(final) if final.exists() else []
    if marker and marker in old:
        (final / marker).unlink()  # from here until the end the directory reads incomplete
    rfs = remote_fs(final)
    for name in [n for n in new if n != marker] + ([marker] if marker in new else []):
        if is_remote(staging):
            rfs.copy(_bucket_key(staging / name), _bucket_key(final / name))  # server-side
        else:  # built on a local disk, uploaded
            rfs.put_file(os.fspath(staging / name), _bucket_key(final / name))
    for name in set(old) - set(new) - {marker}:
        rfs.rm_file(_bucket_key(final / name))
    if is_remote(staging):
        rfs.rm(_bucket_key(staging), recursive=True)
    else:
        import shutil

        shutil.rmtree(staging)
