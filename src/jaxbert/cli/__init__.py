"""The `jaxbert` command: the only place with argparse, and the one error handler.

Each sub-module adds its sub-commands (`add_parsers(subparsers)`) and holds their
handlers, which turn parsed flags into plain calls of library functions. Library code
raises `UserError` (or an `OSError`/`UnicodeDecodeError` from the environment); `main`
turns each into one line naming the file, line or key and a non-zero exit, never a
traceback. Heavy libraries (jax, flax) are imported inside the handlers, so `--help` and
argument errors stay fast.
"""

from __future__ import annotations

import argparse
import errno
import os
import signal
import sys

from jaxbert import platforms
from jaxbert.cli import data, embeddings, finetune, tools, train
from jaxbert.errors import UserError, WriteFailed

EXIT_USER_ERROR = 2
EXIT_WRITE_FAILED = 1  # the environment refused a write (disk full, permission): errors.WriteFailed
EXIT_INTERRUPTED = 130  # the shell's code for SIGINT


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="jaxbert", description="BERT pretraining and fine-tuning in JAX/Flax."
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for module in (train, data, finetune, tools, embeddings):
        module.add_parsers(sub)
    return parser


_OS_REASONS = {
    errno.ENOENT: "not found",
    errno.EEXIST: "already exists",
    errno.EROFS: "read-only file system",
    errno.ENOSPC: "no space left on device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.ENOTDIR: "a path component is a file, not a directory",
    errno.EISDIR: "is a directory, not a file",
}


_WRITE_ONLY = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG)  # a read never fails so


def describe_os_error(e: OSError) -> str:
    """`PATH: reason` for the user; the path is the one the failing call named.

    OSErrors raised without an errno (gzip's BadGzipFile, many C extensions) carry their
    reason only as the message, so that is the fallback before the bare type name.
    """
    reason = _OS_REASONS.get(e.errno) or e.strerror or str(e) or type(e).__name__
    paths = [p for p in (e.filename, e.filename2) if p]
    return f"{' → '.join(str(p) for p in paths)}: {reason}" if paths else reason


def describe_decode_error(e: UnicodeDecodeError) -> str:
    where = getattr(e, "jaxbert_where", "")  # set by readers that know file and line
    where = f"{where}: " if where else ""
    return f"{where}undecodable bytes ({e.encoding}: {e.reason} at byte {e.start})"


def run(args: argparse.Namespace, rest: list[str]) -> int:
    if getattr(args, "accepts_overrides", False):
        return int(args.func(args, rest) or 0)
    return int(args.func(args) or 0)


# `plan --target` compiles for TPUs it cannot run on: nothing there worth caching.
NO_COMPILE_CACHE = ("plan",)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, rest = parser.parse_known_args(argv)
    if rest and not getattr(args, "accepts_overrides", False):
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    name = f"jaxbert {args.command}"
    code = EXIT_USER_ERROR
    platforms.cpu_malloc()  # before jax allocates anything
    if args.command not in NO_COMPILE_CACHE:
        platforms.compile_cache()
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        # A background job (`cmd &` in a script) starts with SIGINT ignored; `kill -INT`
        # should still stop it the way Ctrl-C stops it in the foreground.
        signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        return run(args, rest)
    except WriteFailed as e:
        # A refused write: stop now. Writer threads (orbax's, TensorBoard's) may still
        # hold data for the full disk and never finish: leave without waiting for them.
        print(f"{name}: error: {e}", file=sys.stderr)
        _hard_exit(e.exit_code)
    except UserError as e:
        message, code = str(e), getattr(e, "exit_code", EXIT_USER_ERROR)
    except UnicodeDecodeError as e:
        message = describe_decode_error(e)
    except OSError as e:
        message = describe_os_error(e)
        code = EXIT_WRITE_FAILED if e.errno in _WRITE_ONLY else EXIT_USER_ERROR
    except KeyboardInterrupt:
        print(f"{name}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    print(f"{name}: error: {message}", file=sys.stderr)
    return code


def _hard_exit(code: int) -> None:
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
