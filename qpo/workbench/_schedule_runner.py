"""What the scheduler runs a pipeline with (a child ``qpo pipeline run NAME --json``), and the
crontab that does the same without it."""
from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qpo import config
from qpo.errors import PipelineError

#: ``qpo pipeline run``'s exit status for a run that could not start (the scheduler retries it)
EXIT_COULD_NOT_START = 3


@dataclass
class RunResult:
    status: str  # FINISHED | FAILED | INVALID_DATA | KILLED | ERROR
    run_id: str | None = None
    error: str | None = None
    as_of: str | None = None  # the date the run reported it ran as of (its ``as_of`` record), when it says


def _tail(text: str, lines: int = 3) -> str:
    kept = [line for line in (text or "").strip().splitlines() if line.strip()]
    return " | ".join(kept[-lines:])[-1000:]


#: the default whole-run limit of a scheduled run, seconds (``qpo schedule run --run-timeout``)
RUN_TIMEOUT_S = 4 * 3600.0
#: from SIGTERM to SIGKILL of a timed-out run's process group
STOP_GRACE_S = 30.0


def _children(pid: int) -> list[int]:
    """Every descendant of ``pid`` (Linux ``/proc``; none elsewhere): the kernels a run started in
    their own sessions, which a signal to the run's process group does not reach."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").glob("[0-9]*/stat") if Path("/proc").is_dir() else []:
        try:
            text = entry.read_text()
            ppid = int(text[text.rindex(")") + 2:].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        parents.setdefault(ppid, []).append(int(entry.parent.name))
    found, todo = [], [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _kill(pids: list[int], signum: int) -> None:
    for pid in pids:
        try:
            os.kill(pid, signum)
        except (ProcessLookupError, PermissionError):
            pass


class SubprocessRunner:
    """``runner(name, parameters)``: ``qpo pipeline run NAME [-p NAME VALUE ...] --json`` in a child
    process (its own process group); returns a :class:`RunResult`; raises
    :class:`~qpo.errors.PipelineError` when the run could not start (exit 3: the scheduler retries it).

    * A child killed by a signal (SIGKILL by the kernel's out-of-memory killer, say) is a FAILED run
      with the signal named; its MLflow run, left RUNNING, is repaired at once
      (:func:`~qpo.workbench.run_control.repair_orphaned_runs`: FAILED "process disappeared", and a
      failed-run notice through the delivery channels) when ``repair`` is true.
    * ``timeout``: the longest a whole run may take, in seconds (None: no limit). Past it the
      child's process group gets SIGTERM (the run stops its kernel and keeps its partial notebook),
      and the group and the kernels it started get SIGKILL ``stop_grace`` seconds later if still there; the MLflow run
      is marked FAILED with the reason (tag ``qpo.failure`` = "timed out") and a notice is sent.
    Repairs and notices go to the tracking store of this process's environment (the child's unless
    ``env`` changes it)."""

    def __init__(self, command: list[str] | None = None, env: dict[str, str] | None = None, *,
                 timeout: float | None = None, repair: bool = True, stop_grace: float = STOP_GRACE_S, log=None):
        from qpo.errors import InvalidValueError

        if timeout is not None and timeout <= 0:
            raise InvalidValueError(f"a run's timeout must be more than 0 seconds (or none), got {timeout}")
        self.command = command or [sys.executable, "-m", "qpo.cli"]
        self.env = env
        self.timeout = timeout
        self.repair = repair
        self.stop_grace = stop_grace
        self.log = log or (lambda msg: None)
        self.process: subprocess.Popen | None = None

    def __call__(self, pipeline: str, parameters: dict[str, Any] | None = None) -> RunResult:
        cmd = [*self.command, "pipeline", "run", pipeline]
        for name, value in (parameters or {}).items():
            cmd += ["-p", str(name), str(value)]
        cmd.append("--json")
        try:
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                    cwd=str(config.project_root()), env=self.env, start_new_session=True)
        except OSError as exc:
            raise PipelineError(f"cannot start {shlex.join(cmd)}: {exc}") from None
        self.process = proc
        timed_out = False
        try:
            try:
                out, err = proc.communicate(timeout=self.timeout)
            except subprocess.TimeoutExpired:
                timed_out = True
                out, err = self._stop(proc)
        finally:
            self.process = None
        data: dict[str, Any] = {}
        for line in reversed((out or "").splitlines()):
            if line.startswith("{"):
                try:
                    data = json.loads(line)
                    break
                except ValueError:
                    continue
        code = proc.returncode
        if timed_out:
            return self._timed_out(pipeline, proc.pid, data.get("run_id"))
        if code == EXIT_COULD_NOT_START:
            raise PipelineError(data.get("error") or _tail(err) or f"`{shlex.join(cmd)}` exited 3 (could not start)")
        if code < 0:
            name = signal.Signals(-code).name
            why = " (out of memory?)" if -code == signal.SIGKILL else ""
            error = f"the run's process was killed by {name}{why}"
            run_id = data.get("run_id") or self._repair(proc.pid, notify=True)
            return RunResult("FAILED", run_id, error)
        status = data.get("status") or ("FINISHED" if code == 0 else "FAILED")
        as_of = (data.get("metrics") or {}).get("as_of") if isinstance(data.get("metrics"), dict) else None
        return RunResult(status, data.get("run_id"), data.get("error") or (_tail(err) if code else None),
                         as_of=as_of if isinstance(as_of, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", as_of) else None)

    def _stop(self, proc: subprocess.Popen) -> tuple[str, str]:
        """SIGTERM to the child's process group (the run stops its own kernels); SIGKILL to the group
        and its kernels after the grace, and to kernels that outlived a child that exited."""
        kernels = _children(proc.pid)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            out = proc.communicate(timeout=self.stop_grace)
            _kill(kernels, signal.SIGKILL)  # (none left when the run stopped them: a no-op then)
            return out
        except subprocess.TimeoutExpired:
            kernels = sorted(set(kernels) | set(_children(proc.pid)))
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            _kill(kernels, signal.SIGKILL)
            return proc.communicate()

    def _repair(self, pid: int, *, notify: bool) -> str | None:
        """Repair the runs left RUNNING by dead processes, each with its notice (the run of ``pid``
        without one unless ``notify``); the run id of the one process ``pid`` owned."""
        if not self.repair:
            return None
        from qpo.errors import QpoError
        from qpo.workbench.run_control import repair_orphaned_runs

        try:
            repaired = repair_orphaned_runs(notify=True, log=self.log, quiet_pids=() if notify else (pid,))
        except (QpoError, OSError) as exc:
            self.log(f"runs left RUNNING were not checked: {exc}")
            return None
        return next((r["run_id"] for r in repaired if r.get("pid") == pid), None)

    def _timed_out(self, pipeline: str, pid: int, run_id: str | None) -> RunResult:
        error = (f"timed out: the run took longer than {self.timeout:g} s (the scheduler's whole-run limit, "
                 f"--run-timeout); its processes were stopped")
        run_id = run_id or self._repair(pid, notify=False)
        if run_id and self.repair:
            from qpo.workbench.run_control import FAILURE_TAG, notify_failed_run

            try:
                from mlflow.tracking import MlflowClient

                from qpo.tracking import configure

                client = MlflowClient(configure(None))
                for key, value in {FAILURE_TAG: "timed out", "error": error, "error_type": "RunTimeout",
                                   "mlflow.note.content": error}.items():
                    client.set_tag(run_id, key, value)
                client.set_terminated(run_id, "FAILED")
            except Exception as exc:  # noqa: BLE001 - the run's record matters less than stopping it
                self.log(f"could not mark run {run_id} FAILED: {exc}")
            notify_failed_run(run_id, pipeline=pipeline, status="FAILED", error=error, log=self.log)
        return RunResult("FAILED", run_id, error)

    def signal(self, signum: int) -> None:
        """Pass a signal on to the running child (it stops its kernel and records the run KILLED)."""
        proc = self.process
        if proc is not None and proc.poll() is None:
            try:
                proc.send_signal(signum)
            except ProcessLookupError:
                pass


def _qpo_command() -> str:
    script = Path(sys.executable).parent / "qpo"
    return shlex.quote(str(script)) if script.exists() else f"{shlex.quote(sys.executable)} -m qpo.cli"


#: the settings that decide where a run reads and writes, carried into each cron line when set
#: (never a secret: a value holding a password is left out, with a comment)
CRON_VARIABLES = ("QPO_HOME", "QPO_PROJECT_ROOT", "MLFLOW_TRACKING_URI", "QPO_MLFLOW_ARTIFACTS", "QPO_DATABASE_URL",
                  "QPO_RUNS_DIR", "QPO_DASK_SCHEDULER")


def _holds_password(value: str) -> bool:
    """Whether a setting's value may hold a secret: a password in a URL (read the way SQLAlchemy and
    urllib each read it: a database URL's password may hold a bare ``/``, ``?`` or ``#``, which
    urllib would take for the path), a ``user:password@`` before the host, or a password-like query key."""
    from urllib.parse import parse_qs, urlsplit

    from sqlalchemy.engine import make_url

    with contextlib.suppress(Exception):  # not a database URL: the other readings decide
        if make_url(value).password:
            return True
    scheme, sep, rest = value.partition("://")
    if sep and ":" in rest.split("?", 1)[0].rpartition("@")[0]:
        return True  # user:password before a host, however the password is spelled
    try:
        parts = urlsplit(value)
        if parts.password:
            return True
        query = {k.lower() for k in parse_qs(parts.query)}
    except ValueError:
        return True  # unreadable: not written, to be safe
    from qpo.store.db import SECRET_QUERY_KEYS

    return bool(query & SECRET_QUERY_KEYS)


def _cron_environment() -> tuple[str, list[str]]:
    """``VAR=value `` for each setting of :data:`CRON_VARIABLES` this process has, and the
    variables left out because they hold a password."""
    env, secret = "", []
    for var in CRON_VARIABLES:
        value = os.environ.get(var)
        if not value:
            continue
        if var != "QPO_PROJECT_ROOT" and var != "QPO_HOME" and _holds_password(value):
            secret.append(var)
            continue
        env += f"{var}={shlex.quote(value)} "
    return env, secret


def crontab_text(specs: dict[str, Any], *, tz_name: str | None = None, log_file: Path | None = None,
                 refused: dict[str, str] | None = None) -> str:
    """Cron lines running each scheduled pipeline as ``qpo schedule run`` would, without its
    dependencies, retries, missed-run policy or lock (said in the comments). A definition in
    ``refused`` (name -> why: a bad cron line) gets a comment saying why it has no line."""
    root = config.project_root()
    log = log_file or config.runs_dir() / "cron.log"
    qpo = _qpo_command()
    env, secret = _cron_environment()
    lines = ["# qpo pipelines for cron (`crontab -e`), as `qpo schedule crontab` printed them.",
             "# cron does not wait for a pipeline's `after`, retry a run that could not start, run a missed run",
             "# or keep two schedulers sharing one QPO_HOME from running the same job: `qpo schedule run` does",
             "# (README, Scheduling).",
             "SHELL=/bin/sh"]
    for var in secret:
        lines.append(f"# {var} is set here but holds a password: not written in this file. Put it in an env file only "
                     f"you can read (chmod 600), e.g. ~/.qpo.env with `export {var}=...`, and start each line with "
                     f"`. ~/.qpo.env &&`")
    if tz_name:
        lines += ["# the schedules' zone, QPO_SCHEDULE_TZ or TZ (cronie reads CRON_TZ; other crons use the machine's zone)",
                  f"CRON_TZ={tz_name}"]
    for name, why in sorted((refused or {}).items()):
        lines.append(f"# {name} is left out: its definition was refused: {' '.join(str(why).split())}")
    for name, spec in sorted(specs.items()):
        if not spec.schedule:
            continue
        if spec.after:
            lines.append(f"# {name} runs after {spec.after} under `qpo schedule run`; cron starts it at its time "
                         f"whether or not {spec.after} finished")
        command = (f"cd {shlex.quote(str(root))} && mkdir -p {shlex.quote(str(log.parent))} && {env}{qpo} pipeline "
                   f"run {shlex.quote(name)} --json >> {shlex.quote(str(log))} 2>&1")
        lines.append(f"{spec.schedule}  {command.replace('%', chr(92) + '%')}")  # % ends a cron command: escaped
    return "\n".join(lines) + "\n"
