"""SQLite store files: is one there, is it sound, and open it without ever creating it.

A reader opens an existing file with SQLite's ``mode=rw`` (SQLite then refuses to create a missing
file, even when it disappears while the engine lives); a damaged file is named as such
(:class:`qpo.errors.CorruptFileError`) instead of surfacing as a raw SQL error.
"""
from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from urllib.parse import quote

from qpo.errors import CorruptFileError

#: how long a SQLite connection waits for another one's write lock before "database is locked" (seconds;
#: ``QPO_SQLITE_BUSY_TIMEOUT``)
SQLITE_BUSY_TIMEOUT = float(os.environ.get("QPO_SQLITE_BUSY_TIMEOUT") or 60.0)
_MAGIC = b"SQLite format 3\x00"
_HEADER = 100
#: what SQLite says when a file is not (or no longer) a database
_CORRUPT_MESSAGES = ("file is not a database", "database disk image is malformed", "file is encrypted")


def recovery_advice(path: Path) -> str:
    return (f"move it aside (mv '{path}' '{path}.damaged') and restore it from a backup, or start a new "
            "store with `qpo db upgrade` (empty) or `qpo db seed` (the demo portfolios)")


def corrupt(path: Path, what: str) -> CorruptFileError:
    return CorruptFileError(f"the store file {path} is damaged: {what}; {recovery_advice(path)}")


def check_file(path: Path) -> None:
    """Raise :class:`CorruptFileError` when ``path`` (an existing, non-empty file) is not a whole
    SQLite database: wrong magic bytes, a header cut short, or fewer bytes than its header's pages.
    An empty file is left alone (SQLite reads it as an empty database)."""
    size = path.stat().st_size
    if size == 0:
        return
    with open(path, "rb") as f:
        header = f.read(_HEADER)
    if not header.startswith(_MAGIC) and not _MAGIC.startswith(header):
        raise corrupt(path, f"it is not a SQLite database (it begins {header[:16]!r}, not 'SQLite format 3')")
    if len(header) < _HEADER:
        raise corrupt(path, f"it is truncated to {size} bytes, shorter than SQLite's 100-byte header")
    page_size = int.from_bytes(header[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    if page_size < 512 or page_size & (page_size - 1):
        raise corrupt(path, f"its header gives a page size of {page_size} bytes, not a power of two from 512")
    pages = int.from_bytes(header[28:32], "big")
    # the header's page count is valid only when its version-valid-for number matches the change
    # counter (older writers leave it stale); a write-ahead log may hold pages not yet in the file
    valid = header[92:96] == header[24:28] and pages > 0
    if valid and not Path(f"{path}-wal").exists() and size < pages * page_size:
        raise corrupt(path, f"it is truncated: its header counts {pages} pages of {page_size} bytes "
                            f"({pages * page_size} bytes) but the file holds {size}")


def is_corruption(exc: BaseException) -> bool:
    """Whether ``exc`` (or the DBAPI error inside it) is SQLite saying the file is damaged."""
    orig = getattr(exc, "orig", exc)
    return isinstance(orig, sqlite3.DatabaseError) and any(m in str(orig) for m in _CORRUPT_MESSAGES)


def existing_file_creator(path: Path):
    """A DBAPI connection factory that opens ``path`` read-write and never creates it."""
    uri = "file:" + quote(str(path.resolve())) + "?mode=rw"

    def creator() -> sqlite3.Connection:
        # the pool hands a connection to one thread at a time, as SQLAlchemy's own pysqlite setup assumes
        return sqlite3.connect(uri, uri=True, check_same_thread=False, timeout=SQLITE_BUSY_TIMEOUT)

    return creator
