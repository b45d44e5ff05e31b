"""The exception types for what the user can fix, and the words for a failed write.

`UserError` is raised with a message that names the file, line or config key at fault;
the CLI prints it without a traceback (exit 2). It subclasses ValueError so library
callers can catch it generically. `WriteFailed` is a write the environment refused (a full
disk, a lost permission): the run stops at once with one line naming the path and the
cause (exit 1), because training on after a lost checkpoint only loses more work.
"""

from __future__ import annotations

import errno
import re


class UserError(ValueError):
    """Bad input from the user (file, line, config key, flag)."""

    exit_code = 2


class WriteFailed(UserError):
    """Writing an output failed (disk full, permission, read-only file system)."""

    exit_code = 1


# errno → the words the user searches for; orbax/tensorstore report the errno only as text
# ("... No space left on device [os_error_code='28']"), so the text is matched too.
WRITE_ERRNOS = {
    errno.ENOSPC: "No space left on device",
    errno.EDQUOT: "Disk quota exceeded",
    errno.EACCES: "Permission denied",
    errno.EPERM: "Operation not permitted",
    errno.EROFS: "Read-only file system",
    errno.EIO: "Input/output error",
    errno.EFBIG: "File too large",
}
_CODE = re.compile(r"os_error_code='?(\d+)")


def write_error_reason(exc: BaseException | None) -> str | None:
    """The cause of a failed write ("No space left on device"), searching the exception,
    its causes and their messages; None when it is not an environment write error."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.errno in WRITE_ERRNOS:
            return WRITE_ERRNOS[exc.errno]
        text = str(exc)
        code = _CODE.search(text)
        if code and int(code.group(1)) in WRITE_ERRNOS:
            return WRITE_ERRNOS[int(code.group(1))]
        for reason in WRITE_ERRNOS.values():
            if reason.lower() in text.lower():
                return reason
        if "requested and" in text and "written" in text:  # numpy's short write: disk full
            return WRITE_ERRNOS[errno.ENOSPC]
        exc = exc.__cause__ or exc.__context__
    return None


def write_failed(path, exc: BaseException, what: str = "", hint: str = "") -> WriteFailed | None:
    """A `WriteFailed` naming `path` and the cause of `exc`, or None if `exc` is not one."""
    reason = write_error_reason(exc)
    if reason is None:
        return None
    what = f"{what} " if what else ""
    return WriteFailed(f"could not write {what}{path}: {reason}" + (f"; {hint}" if hint else ""))
