"""What the scheduler runs a pipeline with (a child ``qpo pipeline run NAME --json``), and the
crontab that does the same without it."""
from __future__ import annotations

import json
import os
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


def _tail(text: str, lines: int = 3) -> str:
    kept = [line for line in (text or "").strip().splitlines() if line.strip()]
    return " | ".join(kept[-lines:])[-1000:]


class SubprocessRunner:
    """``runner(name)``: ``qpo pipeline run NAME --json`` in a child process; returns a
    :class:`RunResult`; raises :class:`~qpo.errors.PipelineError` when the run could not start
    (exit 3: the scheduler retries it). A child killed by a signal (SIGKILL by the kernel's
    out-of-memory killer, say) is a FAILED run with the signal named."""

    def __init__(self, command: list[str] | None = None, env: dict[str, str] | None = None):
        self.command = command or [sys.executable, "-m", "qpo.cli"]
        self.env = env
        self.process: subprocess.Popen | None = None

    def __call__(self, pipeline: str) -> RunResult:
        cmd = [*self.command, "pipeline", "run", pipeline, "--json"]
        try:
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                    cwd=str(config.project_root()), env=self.env)
        except OSError as exc:
            raise PipelineError(f"cannot start {shlex.join(cmd)}: {exc}") from None
        self.process = proc
        try:
            out, err = proc.communicate()
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
        if code == EXIT_COULD_NOT_START:
            raise PipelineError(data.get("error") or _tail(err) or f"`{shlex.join(cmd)}` exited 3 (could not start)")
        if code < 0:
            name = signal.Signals(-code).name
            why = " (out of memory?)" if -code == signal.SIGKILL else ""
            return RunResult("FAILED", data.get("run_id"), f"the run's process was killed by {name}{why}")
        status = data.get("status") or ("FINISHED" if code == 0 else "FAILED")
        error = data.get("error") or (_tail(err) if code else None)
        return RunResult(status, data.get("run_id"), error)

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


def crontab_text(specs: dict[str, Any], *, tz_name: str | None = None, log_file: Path | None = None) -> str:
    """Cron lines running each scheduled pipeline as ``qpo schedule run`` would, without its
    dependencies, retries, missed-run policy or lock (said in the comments)."""
    root = config.project_root()
    log = log_file or config.runs_dir() / "cron.log"
    qpo = _qpo_command()
    env = "".join(f"{var}={shlex.quote(os.environ[var])} " for var in ("QPO_HOME", "QPO_PROJECT_ROOT")
                  if os.environ.get(var))
    lines = ["# qpo pipelines for cron (`crontab -e`), as `qpo schedule crontab` printed them.",
             "# cron does not wait for a pipeline's `after`, retry a run that could not start, run a missed run",
             "# or keep two machines from running the same job: `qpo schedule run` does (README, Scheduling).",
             "SHELL=/bin/sh"]
    if tz_name:
        lines += ["# the schedules' zone, QPO_SCHEDULE_TZ (cronie reads CRON_TZ; other crons use the machine's zone)",
                  f"CRON_TZ={tz_name}"]
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
