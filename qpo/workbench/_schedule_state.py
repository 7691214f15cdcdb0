"""The scheduler's own state: one JSON file, changed only under an exclusive file lock, written
atomically (a temporary file in the same folder, fsync, rename), so that a crash leaves the old
state or the new one, never half of one.

Layout (``$QPO_HOME/schedule/state.json``)::

    {"version": 1,
     "checked_until": ISO time up to which a scheduler looked for due runs,
     "schedulers": {id: {"pid", "pstart", "host", "seen"}},
     "jobs": {"<pipeline>@<due ISO>": {"pipeline", "due", "date", "status", "attempts", "owner",
                                       "pid", "pstart", "host", "started", "ended", "next_attempt", "run_id",
                                       "error", "reason"}}}

A job's ``status`` is RUNNING or RETRY while it is open, and one of :data:`FINAL` once decided.
"""
from __future__ import annotations

import contextlib
import json
import os
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from qpo.errors import CorruptFileError, PipelineError

VERSION = 1
#: the outcomes of a job: the pipeline's own statuses, ERROR (could not start, retries spent) and SKIPPED
FINAL = ("FINISHED", "FAILED", "KILLED", "INVALID_DATA", "ERROR", "SKIPPED")
OPEN = ("RUNNING", "RETRY")
LOCK_TIMEOUT_S = 120.0
HOST = socket.gethostname()


def empty_state() -> dict[str, Any]:
    return {"version": VERSION, "checked_until": None, "schedulers": {}, "jobs": {}}


def process_start(pid: int | None = None) -> str | None:
    """When process ``pid`` (default: this one) started, in clock ticks since boot from ``/proc``
    (a wall-clock step or a VM resume does not move it; None without ``/proc``): with the pid, what
    tells a live scheduler from a later process given its pid."""
    from qpo.workbench.run_control import _proc_stat

    stat = _proc_stat(pid or os.getpid())
    return None if stat is None else stat[1]


_STARTS: dict[int, str | None] = {}


def my_start() -> str | None:
    """This process's :func:`process_start` (read once per process)."""
    pid = os.getpid()
    if pid not in _STARTS:
        _STARTS[pid] = process_start(pid)
    return _STARTS[pid]


def pid_alive(pid: int | None, host: str | None, started: str | None = None) -> bool:
    """Whether process ``pid`` on ``host`` is alive (a process on another host is taken as alive).
    With ``started`` (its recorded :func:`process_start`), a pid now held by a process that started
    at another time (the pid reused: a restarted container's PID 1, a reboot) is not it, and a
    zombie is dead."""
    if not pid:
        return False
    if host and host != HOST:
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        pass
    if started is not None:
        from qpo.workbench.run_control import _proc_stat

        stat = _proc_stat(int(pid))
        if stat is None:
            return True  # no /proc to ask: taken as alive, as without a start time
        return stat[0] not in ("Z", "X") and stat[1] == str(started)  # a zombie, or the pid reused: dead
    return True


class StateFile:
    """``with state.transaction() as st:`` reads the state under the lock and writes it back on exit."""

    def __init__(self, path: Path):
        from filelock import FileLock

        self.path = Path(path)
        self.lock = FileLock(str(self.path) + ".lock", timeout=LOCK_TIMEOUT_S)

    def _read(self) -> dict[str, Any]:
        if not self.path.exists():
            return empty_state()
        try:
            state = json.loads(self.path.read_text(encoding="utf-8"))
            if not isinstance(state, dict) or not isinstance(state.get("jobs"), dict):
                raise ValueError("not a scheduler state (no 'jobs' table)")
        except (ValueError, UnicodeDecodeError) as exc:
            raise CorruptFileError(f"the scheduler's state {self.path} cannot be read ({exc}); move it aside "
                                   f"(the scheduler then starts afresh and does not know which runs it missed "
                                   f"before) or restore a backup") from None
        state.setdefault("schedulers", {})
        state.setdefault("checked_until", None)
        return state

    def _write(self, state: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".state-", suffix=".json", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(state, fh, indent=1, sort_keys=True, default=str)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    @contextlib.contextmanager
    def transaction(self) -> Iterator[dict[str, Any]]:
        from filelock import Timeout

        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise PipelineError(f"the scheduler cannot create its state folder {self.path.parent}: {exc}") from None
        try:
            with self.lock:
                state = self._read()
                before = json.dumps(state, sort_keys=True, default=str)
                yield state
                if json.dumps(state, sort_keys=True, default=str) != before:
                    self._write(state)
        except Timeout:
            raise PipelineError(f"the scheduler's state {self.path} stayed locked for {LOCK_TIMEOUT_S:.0f} s "
                                f"({self.lock.lock_file}); is a process stuck holding it?") from None

    def read(self) -> dict[str, Any]:
        with self.transaction() as state:
            return json.loads(json.dumps(state, default=str))
