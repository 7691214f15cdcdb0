"""The folders a run writes to, checked before it starts (a pipeline run, a sweep, a nightly run):
read-only, not a folder, or on a disk with too little free space is refused with a message that
names the folder, what is needed and the setting that moves it; nothing is written."""
from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path

from qpo.errors import InvalidValueError, RunsFolderError

#: the free megabytes a run needs on the disk of each folder it writes to (``QPO_MIN_FREE_MB``)
DEFAULT_MIN_FREE_MB = 100


def min_free_mb(environ: Mapping[str, str] | None = None) -> int:
    """``QPO_MIN_FREE_MB`` (default :data:`DEFAULT_MIN_FREE_MB`): the free megabytes a run needs."""
    text = ((os.environ if environ is None else environ).get("QPO_MIN_FREE_MB") or "").strip()
    if not text:
        return DEFAULT_MIN_FREE_MB
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise InvalidValueError(f"QPO_MIN_FREE_MB must be a whole number of megabytes, 0 or more (default "
                                f"{DEFAULT_MIN_FREE_MB}), got {text!r}")
    return value


def check_run_folders(folders: list[tuple[Path, str, str]], *, min_free: int | None = None) -> None:
    """Refuse, with a :class:`RunsFolderError` that names the folder and what is needed, a folder
    (``(path, "the runs folder", "QPO_RUNS_DIR")``: where, what, the setting that moves it) that is
    not a folder, cannot be written, or is on a disk with less than ``min_free`` MB free (default
    :func:`min_free_mb`). Writes nothing: a missing folder is checked through its nearest existing
    parent (a probe file is created there and removed)."""
    need = min_free_mb() if min_free is None else min_free
    for folder, what, setting in folders:
        folder = Path(folder)
        existing = folder
        while not existing.exists() and existing.parent != existing:
            existing = existing.parent
        if not existing.is_dir():
            raise RunsFolderError(f"{what} {folder} cannot be created: {existing} is a file, not a folder; remove it or "
                                  f"set {setting} to another folder. The run did not start; nothing was written")
        try:
            fd, probe = tempfile.mkstemp(prefix=".qpo-write-check-", dir=existing)
            os.close(fd)
            os.unlink(probe)
        except OSError as exc:
            raise RunsFolderError(f"{what} {folder} is not writable ({exc.strerror or exc}): a run writes its notebook, "
                                  f"report and records there; make {existing} writable for this user or set "
                                  f"{setting} to another folder. The run did not start; nothing was written") from None
        free_mb = shutil.disk_usage(existing).free / 2**20
        if free_mb < need:
            raise RunsFolderError(f"the disk of {what} {folder} has {free_mb:.0f} MB free; a run needs at least {need} MB "
                                  f"(QPO_MIN_FREE_MB): free some space or set {setting} to a folder on another disk. The run "
                                  f"did not start; nothing was written")
