"""Task files are UTF-8 text; one that is not gets an error naming its first bad line.

Python's decoder reports a byte offset within the chunk it was decoding, which points
nowhere useful in a large file, so after a decode fails the file is scanned again in
binary, line by line (UTF-8 never puts a newline byte inside a character).
"""

from __future__ import annotations

from pathlib import Path

from jaxbert.errors import UserError


def first_undecodable_line(path: str | Path) -> tuple[int, int] | None:
    """(line number, byte offset within the line) of the first invalid UTF-8, or None."""
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, 1):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError as e:
                return lineno, e.start
    return None


def decode_error(path: str | Path, error: UnicodeDecodeError) -> UserError:
    found = first_undecodable_line(path)
    where = f"{path}:{found[0]}" if found else str(path)
    at = f" at byte {found[1]} of the line" if found else ""
    return UserError(f"{where}: not valid UTF-8 ({error.reason}{at}); re-save the file as UTF-8")
