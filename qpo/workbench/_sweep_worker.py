"""The worker side of a sweep (:mod:`qpo.workbench.sweep`): one cell is one
:func:`~qpo.workbench.pipelines.run_pipeline` in a Dask worker *process*.

* Papermill changes the process's working directory (papermill #473): a process runs one cell at a
  time (:data:`_ONE_AT_A_TIME`), whatever threads its worker has.
* Kernels start on Unix sockets (``kernel_transport="ipc"``): no TCP port race when several start
  at once (papermill #511); Papermill's ``start_timeout`` is 300 s (papermill #776).
* The numerical libraries run ``QPO_WORKER_THREADS`` threads each, default 1 (``OMP_NUM_THREADS``
  ... and qpo's ``QPO_TORCH_THREADS``, inherited by the kernel: :func:`~qpo.operations.cluster.thread_env`;
  the worker's own ``QPO_WORKER_THREADS``, which a local cluster's workers inherit from the sweep's
  process); a value that is not a positive whole number fails the cell, saying so.
* A kernel that cannot start is started again by the pipeline; one that never starts fails the cell
  (its child run FAILED, "kernel could not start in 3 attempt(s)").
* Stopping (:func:`stop_sweep`, sent by the sweep's process to every worker with ``client.run``):
  the cells of that sweep not started yet return ``NOT_STARTED``; a running cell *of that sweep*
  (another sweep's, on a shared cluster, runs on: :func:`run_cell` records which sweep started the
  process's kernel) has its kernel signalled SIGTERM (SIGKILL after
  :data:`~qpo.workbench.run_control.KERNEL_GRACE_S`), the pipeline keeps and logs the partial
  notebook, and the child run is then marked KILLED with the reason ("interrupted by SIGINT"), as a
  single run stopped by a signal is.
"""
from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

from qpo.operations.cluster import thread_env

_STOPPED: dict[str, str] = {}  # sweep id -> the signal's name, in this worker process
_RUNNING: dict[str, str] = {}  # "sweep" -> the id of the sweep whose cell (and kernel) runs in this process
_ONE_AT_A_TIME = threading.Lock()  # Papermill's chdir is process-wide
_POLL_S = 0.3


def ignore_terminal_signals() -> int:
    """In a local worker process (run with ``client.run``): ignore SIGINT, so that Ctrl-C in the
    terminal (sent to the whole process group) reaches the sweep's process only, which stops the
    cells in order. Returns this process's id."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    return os.getpid()


def stop_sweep(sweep_id: str, signal_name: str) -> int:
    """Mark sweep ``sweep_id`` stopped in this worker process and stop its kernel, if its cell runs
    here (run_cell records which sweep started the kernels of this process: one cell at a time);
    another sweep's cell sharing the worker runs on. The number of kernels signalled."""
    _STOPPED[sweep_id] = signal_name
    if _RUNNING.get("sweep") != sweep_id:
        return 0
    return _stop_kernels({})


def _kernels() -> list[Any]:
    import psutil  # type: ignore[import-untyped]

    found = []
    for child in psutil.Process().children(recursive=True):
        try:
            if any("ipykernel" in part for part in child.cmdline()):
                found.append(child)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


def _stop_kernels(sent: dict[int, float]) -> int:
    """SIGTERM to this process's kernels (each leads its own session), SIGKILL after the grace."""
    from qpo.workbench.run_control import KERNEL_GRACE_S

    now, count = time.monotonic(), 0
    for kernel in _kernels():
        first = sent.setdefault(kernel.pid, now)
        if first != now and now - first <= KERNEL_GRACE_S:
            continue
        sig = signal.SIGTERM if first == now else signal.SIGKILL
        try:
            os.killpg(kernel.pid, sig) if os.getpgid(kernel.pid) == kernel.pid else os.kill(kernel.pid, sig)
            count += 1
        except (ProcessLookupError, PermissionError):
            pass
    return count


def _watch(sweep_id: str, done: threading.Event) -> None:
    sent: dict[int, float] = {}
    while not done.wait(_POLL_S):
        if sweep_id in _STOPPED and _RUNNING.get("sweep") == sweep_id:
            _stop_kernels(sent)


def _timings(notebook: str | None) -> dict[str, float]:
    """From the output notebook's Papermill metadata: the whole execution (kernel start, cells,
    shutdown) and the cells' own compute, in seconds."""
    if not notebook or not Path(notebook).exists():
        return {}
    import nbformat

    nb = nbformat.read(notebook, as_version=4)
    cells = sum(float(c.metadata.get("papermill", {}).get("duration") or 0.0) for c in nb.cells)
    whole = nb.metadata.get("papermill", {}).get("duration")
    return {"papermill_s": float(whole) if whole is not None else None, "cells_s": cells}  # type: ignore[dict-item]


def _mark_killed(run_id: str, tracking_uri: str, reason: str) -> None:
    from mlflow.tracking import MlflowClient

    from qpo.workbench.run_control import FAILURE_TAG

    client = MlflowClient(tracking_uri)
    if FAILURE_TAG in client.get_run(run_id).data.tags:
        client.delete_tag(run_id, FAILURE_TAG)  # the kernel died because it was stopped: not a failure
    for key, value in {"error_type": "RunInterrupted", "error": reason, "qpo.stop_reason": reason,
                       "mlflow.note.content": reason}.items():
        client.set_tag(run_id, key, value)
    client.set_terminated(run_id, "KILLED")


def run_cell(name: str, index: int, parameters: dict[str, Any], *, sweep_id: str, tags: dict[str, str],
             tracking_uri: str, run_name: str) -> dict[str, Any]:
    """Run cell ``index`` of a sweep of pipeline ``name`` (see the module); a dict for
    :class:`~qpo.workbench.sweep.SweepCell`. Never raises for a failing cell."""
    base: dict[str, Any] = {"index": index, "parameters": parameters, "run_id": None, "notebook": None, "html": None,
                            "metrics": {}, "error": None, "seconds": 0.0, "timings": {}, "pid": os.getpid()}
    if sweep_id in _STOPPED:
        return {**base, "status": "NOT_STARTED", "error": f"not started: interrupted by {_STOPPED[sweep_id]}"}
    try:  # QPO_WORKER_THREADS (default 1) each, the kernel's included (a remote worker's nanny may set others)
        os.environ.update(thread_env())
    except Exception as exc:  # noqa: BLE001 - a bad QPO_WORKER_THREADS on this worker: the cell says so
        return {**base, "status": "FAILED", "error": f"{type(exc).__name__}: {exc}"}
    with _ONE_AT_A_TIME:
        if sweep_id in _STOPPED:
            return {**base, "status": "NOT_STARTED", "error": f"not started: interrupted by {_STOPPED[sweep_id]}"}
        _RUNNING["sweep"] = sweep_id  # the kernels this process starts now are this sweep's
        previous_uri = os.environ.get("MLFLOW_TRACKING_URI")
        os.environ["MLFLOW_TRACKING_URI"] = tracking_uri  # the parent run's store, whatever this worker's default
        done = threading.Event()
        watcher = threading.Thread(target=_watch, args=(sweep_id, done), name="qpo-sweep-stop", daemon=True)
        watcher.start()
        t0 = time.perf_counter()
        try:
            from qpo.workbench.pipelines import run_pipeline

            run = run_pipeline(name, parameters, notify=False, tags={**tags, "qpo.sweep_cell": str(index)},
                               kernel_transport="ipc")
        except Exception as exc:  # noqa: BLE001 - the cell is reported FAILED; the sweep goes on
            return {**base, "status": "FAILED", "error": f"{type(exc).__name__}: {exc}",
                    "run_id": getattr(exc, "run_id", None), "seconds": time.perf_counter() - t0}
        finally:
            done.set()
            watcher.join()
            _RUNNING.pop("sweep", None)
            if previous_uri is None:
                os.environ.pop("MLFLOW_TRACKING_URI", None)
            else:
                os.environ["MLFLOW_TRACKING_URI"] = previous_uri
    out = {**base, "status": run.status, "run_id": run.run_id, "notebook": run.notebook, "html": run.html,
           "metrics": run.metrics, "error": run.error, "seconds": run.seconds,
           "timings": {"wall_s": run.seconds, **_timings(run.notebook)}}
    if run.run_id:
        try:
            from mlflow.tracking import MlflowClient

            MlflowClient(tracking_uri).set_tag(run.run_id, "mlflow.runName", run_name)
        except Exception:  # noqa: BLE001 - a name only
            pass
    if sweep_id in _STOPPED and run.status in ("FAILED", "KILLED"):
        reason = f"interrupted by {_STOPPED[sweep_id]}"
        if run.run_id:
            _mark_killed(run.run_id, tracking_uri, reason)
        out.update(status="KILLED", error=reason)
    return out
