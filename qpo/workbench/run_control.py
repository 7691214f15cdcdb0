"""A pipeline run that SIGINT (Ctrl-C) and SIGTERM stop cleanly.

:class:`SignalGuard` holds SIGINT and SIGTERM while a pipeline runs (in the main thread; elsewhere
it does nothing and signals keep their usual effect):

* before the MLflow run exists (parameters, data validation) a signal raises
  :class:`~qpo.errors.RunInterrupted` at once: there is nothing to record;
* once the run exists, the notebook executes in a worker thread (so that nbclient installs no
  signal handlers of its own) while the main thread waits; a signal stops the kernel (SIGTERM to
  its process group, SIGKILL after :data:`KERNEL_GRACE_S`), nbclient then sees it dead, writes
  the partial notebook and removes the kernel's connection file, and :meth:`SignalGuard.execute`
  raises :class:`~qpo.errors.RunInterrupted`: the caller records the run KILLED with the reason.

A second signal while stopping is ignored: the run is being stopped already.
"""
from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable
from typing import Any

from qpo.errors import RunInterrupted

KERNEL_GRACE_S = 5.0  # from SIGTERM to SIGKILL of a kernel that does not stop
_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def exit_code(signal_number: int) -> int:
    """The shell's exit status of a process ended by ``signal_number``: 130 for SIGINT, 143 for SIGTERM."""
    return 128 + int(signal_number)


def signal_name(signal_number: int) -> str:
    return signal.Signals(signal_number).name


class SignalGuard:
    """``with SignalGuard() as guard:`` holds SIGINT/SIGTERM for one pipeline run (see the module)."""

    def __init__(self) -> None:
        self.signal_number: int | None = None
        self.deferred = False  # True once the MLflow run exists: signals are recorded, not raised
        self._kernels: list[Any] = []
        self._previous: dict[int, Any] = {}
        self._kill_sent: dict[int, float] = {}

    @property
    def active(self) -> bool:
        return bool(self._previous)

    def __enter__(self) -> SignalGuard:
        if threading.current_thread() is threading.main_thread():
            for sig in _SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for sig, previous in self._previous.items():
            signal.signal(sig, previous)
        self._previous.clear()

    def interrupted(self) -> RunInterrupted:
        number = self.signal_number or signal.SIGINT
        return RunInterrupted(f"interrupted by {signal_name(number)}", int(number))

    def check(self) -> None:
        """Raise :class:`~qpo.errors.RunInterrupted` if a signal came."""
        if self.signal_number is not None:
            raise self.interrupted()

    def _handle(self, signum: int, frame) -> None:
        if self.signal_number is not None:
            return  # stopping already
        self.signal_number = signum
        if not self.deferred:
            raise self.interrupted()
        self.stop_kernels()

    # -- the notebook's kernel ------------------------------------------------------------------
    def kernel_manager_class(self) -> type:
        """nbclient's kernel manager class, remembering each kernel it starts so a signal can stop it."""
        import uuid
        from pathlib import Path

        from jupyter_client.manager import AsyncKernelManager
        from jupyter_core.paths import jupyter_runtime_dir

        guard = self

        class GuardedKernelManager(AsyncKernelManager):
            def __init__(self, **kwargs):
                super().__init__(**kwargs)
                if not self.connection_file:  # not a nameless temporary file: the runtime dir, where Jupyter looks
                    runtime = Path(jupyter_runtime_dir())
                    runtime.mkdir(parents=True, exist_ok=True)
                    self.connection_file = str(runtime / f"kernel-qpo-{uuid.uuid4()}.json")
                guard._kernels.append(self)

        return GuardedKernelManager

    def stop_kernels(self) -> None:
        """SIGTERM to every live kernel's process group; SIGKILL to one still alive after the grace."""
        now = time.monotonic()
        for km in list(self._kernels):
            provisioner = getattr(km, "provisioner", None)
            process = getattr(provisioner, "process", None)
            if process is None or process.poll() is not None:
                continue
            first = self._kill_sent.setdefault(process.pid, now)
            sig = signal.SIGKILL if now - first > KERNEL_GRACE_S else signal.SIGTERM
            if first != now and sig == signal.SIGTERM:
                continue  # sent already; wait for the grace to pass
            pgid = getattr(provisioner, "pgid", None)
            try:
                if pgid and pgid != os.getpgrp():
                    os.killpg(pgid, sig)
                else:
                    os.kill(process.pid, sig)
            except ProcessLookupError:
                pass

    def _remove_connection_files(self) -> None:
        for km in self._kernels:
            try:
                km.cleanup_connection_file()
            except OSError:
                pass

    def execute(self, func: Callable[..., Any], *args, **kwargs) -> Any:
        """``func(*args, **kwargs)`` (the notebook's execution); stopped by a signal, it raises
        :class:`~qpo.errors.RunInterrupted` once the kernel is down and the partial notebook written."""
        self.check()
        if not self.active:
            return func(*args, **kwargs)
        outcome: dict[str, Any] = {}

        def work() -> None:
            try:
                outcome["value"] = func(*args, **kwargs)
            except BaseException as exc:  # noqa: BLE001 - handed to the main thread
                outcome["error"] = exc

        worker = threading.Thread(target=work, name="qpo-notebook", daemon=True)
        worker.start()
        while worker.is_alive():
            worker.join(0.2)
            if self.signal_number is not None:
                self.stop_kernels()  # a kernel that started after the signal, or the SIGKILL after the grace
        if self.signal_number is not None:
            self._remove_connection_files()
            raise self.interrupted() from outcome.get("error")
        if "error" in outcome:
            raise outcome["error"]
        return outcome.get("value")
