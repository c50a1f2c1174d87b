"""The one error type of the on-disk format: a ``ValueError`` that names the file at fault."""
from __future__ import annotations

import os


class FormatError(ValueError):
    """A file of the V2XSet / OPV2V layout is missing, malformed or inconsistent.

    The message always starts with the path of the offending file (or folder) and says what was
    wrong and what was expected.
    """

    def __init__(self, path: str | os.PathLike, message: str):
        self.path = os.fspath(path)
        super().__init__(f"{self.path}: {message}")


def read_file_bytes(path: str | os.PathLike, what: str) -> bytes:
    """The bytes of ``path``; a missing or unreadable file is a :class:`FormatError` naming it."""
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except FileNotFoundError:
        raise FormatError(path, f"{what} does not exist") from None
    except OSError as err:
        raise FormatError(path, f"cannot read {what}: {err.strerror}") from None
