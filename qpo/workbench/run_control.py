"""A pipeline run that SIGINT (Ctrl-C) and SIGTERM stop cleanly.

:class:`SignalGuard` holds SIGINT and SIGTERM while a pipeline runs (in the main thread; elsewhere
it does nothing and signals keep their usual effect):

* before the MLflow run exists (parameters, data validation) a signal raises
  :class:`~qpo.errors.RunInterrupted` at once: there is nothing to record;
* once the run exists, the notebook executes in a worker thread (so that nbclient installs no
  signal handlers of its own) while the main thread waits; a signal stops the kernel (SIGTERM to
  its process group, SIGKILL after :data:`KERNEL_GRACE_S`), nbclient then sees it dead, writes
  the partial notebook and removes the kernel's connection file, and :meth:`SignalGuard.execute`
  raises :class:`~qpo.errors.RunInterrupted`: the caller records the run KILLED with the reason
  (a second signal while stopping is ignored).

Failures that are loud and kept (nbclient raises a dead kernel and a cell timeout raw, and
Papermill leaves the notebook marked completed): :func:`kernel_failure` turns them into a
:class:`RunFailure` whose ``reason`` ("kernel died in cell 3 (killed by SIGKILL: out of memory, or
killed)", "cell timed out after 600 s in cell 4") goes to the MLflow tag ``qpo.failure``, and marks
the cell failed in the partial notebook. A run whose process vanished (SIGKILL, a crash of the
machine) stays RUNNING in MLflow: every run records its ``qpo.pid``, ``qpo.host`` and the process's
start time, and :func:`repair_orphaned_runs` (``qpo pipeline runs --repair``, the scheduler) marks
the ones whose process is gone FAILED ("process disappeared"). :func:`check_run_folders` refuses,
before anything is written, a runs folder that is read-only or on a disk with less free space than
``QPO_MIN_FREE_MB`` (default 100).
"""
from __future__ import annotations

import datetime as dt
import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from qpo._folders import DEFAULT_MIN_FREE_MB, check_run_folders, min_free_mb  # noqa: F401 - part of this module's interface
from qpo.errors import InvalidValueError, PipelineError, RunInterrupted, RunsFolderError  # noqa: F401
from qpo.workbench._pipeline_banner import warning_count

KERNEL_GRACE_S = 5.0  # from SIGTERM to SIGKILL of a kernel that does not stop
_SIGNALS = (signal.SIGINT, signal.SIGTERM)
#: the MLflow tag holding why a run failed
FAILURE_TAG = "qpo.failure"
#: the tag naming a run's validation warnings and their row counts (set by :func:`~qpo.workbench.pipelines.run_pipeline`)
DATA_WARNINGS_TAG = "qpo.data_warnings"
#: the reason :func:`repair_orphaned_runs` records
PROCESS_DISAPPEARED = "process disappeared"
_PID_TAG, _HOST_TAG, _STARTED_TAG, RUN_DIR_TAG = "qpo.pid", "qpo.host", "qpo.pid_started", "qpo.run_dir"


class RunFailure(PipelineError):
    """A run that failed in a way its notebook could not report: the kernel died or a cell timed
    out. ``reason`` is the short text of the MLflow tag ``qpo.failure``."""

    def __init__(self, message: str, reason: str):
        self.reason = reason
        super().__init__(message)


def exit_code(signal_number: int) -> int:
    """The shell's exit status of a process ended by ``signal_number``: 130 for SIGINT, 143 for SIGTERM."""
    return 128 + int(signal_number)


def signal_name(signal_number: int) -> str:
    return signal.Signals(signal_number).name


class SignalGuard:
    """``with SignalGuard() as guard:`` holds SIGINT/SIGTERM for one pipeline run (see the module)."""

    def __init__(self, transport: str | None = None) -> None:
        # Unix sockets on POSIX: kernels started at once cannot race for a TCP port (papermill #511)
        self.transport = transport or ("ipc" if os.name == "posix" else "tcp")
        self.signal_number: int | None = None
        self.deferred = False  # True once the MLflow run exists: signals are recorded, not raised
        self._kernels: list[Any] = []
        self._previous: dict[int, Any] = {}
        self._kill_sent: dict[int, float] = {}
        self._processes: list[Any] = []  # the kernels' processes (subprocess.Popen)

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
                if guard.transport == "ipc":  # socket paths short enough for AF_UNIX (108 bytes)
                    import tempfile

                    base = tempfile.gettempdir() if len(tempfile.gettempdir()) < 80 else "/tmp"
                    self.transport, self.ip = "ipc", str(Path(base) / f"qpo-k{uuid.uuid4().hex[:16]}")
                guard._kernels.append(self)

            async def _async_launch_kernel(self, kernel_cmd, **kw):
                await super()._async_launch_kernel(kernel_cmd, **kw)
                process = getattr(self.provisioner, "process", None)
                if process is not None:  # kept after the kernel is gone: its exit status says how it died
                    guard._processes.append(process)

        return GuardedKernelManager

    def kernel_exit_status(self) -> int | None:
        """The exit status of the last kernel started, once it has ended (``-9``: killed by SIGKILL)."""
        for process in reversed(self._processes):
            return process.poll()
        return None

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

    def _remove_connection_files(self, *, only_ended: bool = False) -> None:
        """The kernels' connection files and, on the ipc transport, their Unix socket files: a
        kernel killed by a signal (or by the OOM killer) cannot unlink its sockets itself."""
        for km in self._kernels:
            process = getattr(getattr(km, "provisioner", None), "process", None)
            if only_ended and process is not None and process.poll() is None:
                continue  # still running: its files are in use
            for cleanup in (km.cleanup_connection_file, km.cleanup_ipc_files):
                try:
                    cleanup()
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
        self._remove_connection_files(only_ended=True)  # a kernel that died mid-run left its sockets
        if "error" in outcome:
            raise outcome["error"]
        return outcome.get("value")


# -- a dead kernel, a cell timeout ---------------------------------------------------------------
def _died_how(exit_status: int | None) -> str:
    if exit_status is None:
        return ""
    if exit_status == -signal.SIGKILL:
        return " (killed by SIGKILL: out of memory, or killed)"
    if exit_status < 0:
        try:
            return f" (killed by {signal_name(-exit_status)})"
        except ValueError:
            return f" (killed by signal {-exit_status})"
    return f" (exit status {exit_status})"


def kernel_failure(exc: BaseException, notebook: Path | None, *, timeout: int | None = None,
                   exit_status: int | None = None) -> RunFailure | None:
    """For nbclient's ``DeadKernelError`` and ``CellTimeoutError`` (raised raw by Papermill, the
    notebook left marked completed): a :class:`RunFailure` with the reason, the cell that was
    running marked failed in ``notebook`` (an error output, Papermill's ``exception`` flags). For
    any other error: None."""
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    if isinstance(exc, CellTimeoutError):
        ename, what = "CellTimeoutError", "cell timed out after {timeout} s".format(timeout=timeout or "?")
    elif isinstance(exc, DeadKernelError):
        ename, what = "DeadKernelError", "kernel died"
    else:
        return None
    kept = notebook is not None and notebook.exists()
    cell = _mark_failed_cell(notebook, ename, "") if notebook is not None and kept else None
    where = f" in cell {cell}" if cell else ""
    reason = f"{what}{where}{_died_how(exit_status) if ename == 'DeadKernelError' else ''}"
    if notebook is not None and cell:
        _mark_failed_cell(notebook, ename, reason, cell=cell)
    return RunFailure(f"{reason}; the partial notebook is kept: {notebook}" if kept else reason, reason)


def _mark_failed_cell(path: Path, ename: str, evalue: str, cell: int | None = None) -> int | None:
    """The 1-based position of the cell that was running (the last one Papermill started); with
    ``cell`` given, write the failure into it (an error output; the cell and the notebook flagged)."""
    import nbformat

    nb = nbformat.read(str(path), as_version=4)
    started = [i for i, c in enumerate(nb.cells) if c.get("metadata", {}).get("papermill", {}).get("start_time")]
    if not started:
        return None
    index = started[-1] if cell is None else cell - 1
    if cell is None:
        return index + 1
    target = nb.cells[index]
    target.metadata.setdefault("papermill", {}).update(status="failed", exception=True)
    nb.metadata.setdefault("papermill", {})["exception"] = True
    if target.cell_type == "code":
        target.setdefault("outputs", []).append(nbformat.v4.new_output(
            "error", ename=ename, evalue=evalue, traceback=[f"{ename}: {evalue}"]))
    nbformat.write(nb, str(path))
    return cell


# -- before a run starts: writable folders, free space ------------------------------------------
# -- who owns a run: repairing runs whose process disappeared --------------------------------------
def _proc_stat(pid: int) -> tuple[str, str] | None:
    """(state, start time in clock ticks since boot) of process ``pid`` from ``/proc`` (Linux);
    None when there is no such process or no ``/proc``."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2:].split()  # after "pid (command) ": state is field 3, starttime 22
    return fields[0], fields[19]


def run_owner_tags() -> dict[str, str]:
    """The MLflow tags that let :func:`repair_orphaned_runs` tell a live run from a dead one: this
    process's id, the host's name and the process's start time (a reused pid is not the run's)."""
    tags = {_PID_TAG: str(os.getpid()), _HOST_TAG: socket.gethostname()}
    stat = _proc_stat(os.getpid())
    if stat is not None:
        tags[_STARTED_TAG] = stat[1]
    return tags


def owner_state(tags: Mapping[str, str]) -> str:
    """``alive``, ``gone`` (no such process here, a zombie, or a pid reused by a later process),
    ``elsewhere`` (started on another host: cannot tell) or ``unknown`` (no owner recorded)."""
    pid_text, host = tags.get(_PID_TAG), tags.get(_HOST_TAG)
    if not pid_text or not host:
        return "unknown"
    if host != socket.gethostname():
        return "elsewhere"
    pid = int(pid_text)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return "gone"
    except PermissionError:
        pass  # another user's process: it exists
    stat = _proc_stat(pid)
    if stat is not None:
        if stat[0] in ("Z", "X"):
            return "gone"  # a zombie: dead, not yet reaped
        recorded = tags.get(_STARTED_TAG)
        if recorded and recorded != stat[1]:
            return "gone"  # the pid now belongs to a later process
    return "alive"


def _iso(ms: int | None) -> str | None:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).isoformat(timespec="seconds") if ms else None


def _describe(run, experiments: Mapping[str, str]) -> dict[str, Any]:
    tags, info = run.data.tags, run.info
    reason = tags.get(FAILURE_TAG) or tags.get("qpo.stop_reason") or (tags.get("error") if info.status == "FAILED" else None)
    row = {"run_id": info.run_id, "pipeline": tags.get("qpo.pipeline"), "experiment": experiments.get(info.experiment_id),
           "status": info.status, "started": _iso(info.start_time), "ended": _iso(info.end_time),
           "seconds": round((info.end_time - info.start_time) / 1000, 1) if info.end_time and info.start_time else None,
           "reason": reason, "pid": int(tags[_PID_TAG]) if tags.get(_PID_TAG) else None, "host": tags.get(_HOST_TAG),
           "run_dir": tags.get(RUN_DIR_TAG), "data_warnings": warning_count(tags.get(DATA_WARNINGS_TAG))}
    if info.status == "RUNNING":
        row["process"] = owner_state(tags)
    return row


def status_text(row: Mapping[str, Any]) -> str:
    """A listed run's status as ``qpo pipeline runs`` prints it: ``FINISHED (2 data warnings)``,
    ``RUNNING (gone)``."""
    notes = [str(row["process"])] if row.get("process") else []
    n = int(row.get("data_warnings") or 0)
    if n:
        notes.append(f"{n} data warning{'s' if n != 1 else ''}")
    return str(row["status"]) + (f" ({', '.join(notes)})" if notes else "")


def _search(client, *, running_only: bool, limit: int) -> list[dict[str, Any]]:
    experiments = {e.experiment_id: e.name for e in client.search_experiments()}
    if not experiments:
        return []
    query = "tags.`qpo.pipeline` LIKE '%'" + (" and attributes.status = 'RUNNING'" if running_only else "")
    runs = client.search_runs(list(experiments), filter_string=query, order_by=["attributes.start_time DESC"],
                              max_results=limit)
    return [_describe(r, experiments) for r in runs]


def pipeline_runs(limit: int = 20, *, tracking_uri: str | None = None) -> list[dict[str, Any]]:
    """The last ``limit`` pipeline runs (newest first): run id, pipeline, experiment, status,
    start and end (UTC), why it failed or stopped, the pid and host that ran it, ``data_warnings``
    (the number of rows its price data's validation warned about: reported, they did not stop the
    run; 0 for none), and for a RUNNING run whether that process is ``alive`` (see :func:`owner_state`)."""
    from mlflow.tracking import MlflowClient

    from qpo.tracking import configure

    return _search(MlflowClient(configure(tracking_uri)), running_only=False, limit=limit)


def repair_orphaned_runs(*, tracking_uri: str | None = None, notify: bool = True, log=None,
                         quiet_pids: Iterable[int] = ()) -> list[dict[str, Any]]:
    """Mark FAILED, with the reason "process disappeared" (tag ``qpo.failure``), every RUNNING
    pipeline run whose process is gone from this host (killed with SIGKILL, a crash); its partial
    notebook, if any, is logged to the run, and with ``notify`` a failed-run notice goes through the
    delivery channels (:mod:`qpo.operations.delivery`; none configured: none sent). Runs of live
    processes, of other hosts and runs that recorded no owner are left alone. Returns the runs
    repaired (as :func:`pipeline_runs` describes them, status FAILED). The runs of ``quiet_pids``
    are repaired without a notice (their caller sends its own, e.g. "timed out"). Safe to call at
    any time, e.g. by the scheduler on start."""
    from mlflow.tracking import MlflowClient

    from qpo.tracking import configure

    log = log or (lambda msg: None)
    client = MlflowClient(configure(tracking_uri))
    repaired = []
    for row in _search(client, running_only=True, limit=1000):
        if row.get("process") != "gone":
            continue
        if client.get_run(row["run_id"]).info.status != "RUNNING":
            continue  # ended meanwhile (another repairer, or the run itself)
        detail = (f"{PROCESS_DISAPPEARED}: process {row['pid']} on {row['host']} ended without ending its run "
                  f"(killed with SIGKILL, out of memory, or the machine stopped)")
        notebook = Path(row["run_dir"]) / "notebook.ipynb" if row.get("run_dir") else None
        if notebook is not None and notebook.exists():
            try:
                client.log_artifact(row["run_id"], str(notebook))
                detail += f"; the partial notebook is kept: {notebook}"
            except Exception as exc:  # noqa: BLE001 - the repair matters more than the artifact
                log(f"could not log the partial notebook {notebook} of run {row['run_id']}: {exc}")
        for key, value in {FAILURE_TAG: PROCESS_DISAPPEARED, "error": detail, "error_type": "ProcessDisappeared",
                           "mlflow.note.content": detail}.items():
            client.set_tag(row["run_id"], key, value)
        client.set_terminated(row["run_id"], "FAILED")
        log(f"run {row['run_id']} of pipeline {row['pipeline']} marked FAILED: {detail}")
        row.update(status="FAILED", reason=PROCESS_DISAPPEARED, error=detail, process="gone")
        if notify and row.get("pid") not in set(quiet_pids):
            row["notice"] = notify_failed_run(row["run_id"], pipeline=row["pipeline"], status="FAILED", error=detail,
                                              started=row["started"], tracking_uri=client.tracking_uri, log=log)
        repaired.append(row)
    return repaired


def notify_failed_run(run_id: str | None, *, pipeline: str | None, status: str, error: str | None,
                      started: str | None = None, as_of: str | None = None, tracking_uri: str | None = None,
                      log=None) -> dict[str, Any] | None:
    """Send a failed-run notice through the delivery channels of the environment
    (:meth:`~qpo.operations.delivery.DeliverySettings.from_env`); None when no channel is configured.
    Returns the delivery's report (sent, errors); a failed delivery is logged, never raised, and
    recorded on the MLflow run as the tag ``qpo.notice``."""
    from qpo.errors import QpoError
    from qpo.operations.delivery import DeliverySettings, deliver_failed_run

    log = log or (lambda msg: None)
    try:
        settings = DeliverySettings.from_env()
    except QpoError as exc:
        log(f"failed-run notice not sent: {exc}")
        return {"sent": [], "errors": [str(exc)], "delivered": [], "skipped": []}
    if not settings.configured:
        return None
    now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    notice = {"id": run_id, "kind": f"pipeline {pipeline}", "as_of": as_of or (started or now)[:10], "status": status,
              "error": error, "started_at": started, "finished_at": now}
    report = deliver_failed_run(notice, settings)
    for problem in report.errors:
        log(f"failed-run notice not delivered: {problem}")
    summary = ("sent: " + ", ".join(s["channel"] for s in report.sent)) if report.sent else "not sent"
    if report.errors:
        summary += "; errors: " + "; ".join(report.errors)
    if run_id:
        try:
            from mlflow.tracking import MlflowClient

            MlflowClient(tracking_uri).set_tag(run_id, "qpo.notice", summary[:4000])
        except Exception as exc:  # noqa: BLE001 - the notice went (or not); the tag is a record only
            log(f"could not tag run {run_id} with its notice: {exc}")
    return report.to_dict()


def withdraw_champion(run_id: str | None, why: str, log) -> None:
    """A model this run registered as champion is withdrawn when the run then failed or was
    stopped (a retrain's later cell failed): :func:`qpo.tracking.registration.withdraw_run_champion`.
    Never raises: the run's own outcome is what the caller reports."""
    if not run_id:
        return
    try:
        from qpo.tracking.registration import withdraw_run_champion

        done = withdraw_run_champion(run_id, why)
    except Exception as exc:  # noqa: BLE001 - the registry unreachable: said, the run's failure reported as it is
        log(f"warning: could not check the model registry for a champion of run {run_id}: {type(exc).__name__}")
        return
    if done:
        log(done)
