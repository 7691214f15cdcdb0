"""The unattended scheduler: runs the pipelines on the cron schedules of their definitions.

``qpo schedule run`` (foreground; ``--once``: what is due now, then exit) is :meth:`Scheduler.run`.
A *job* is one pipeline's run due at one time; its *date* is the due time's date in the schedules'
zone (:func:`~qpo.workbench._cron.schedule_timezone`). Schedules are computed by croniter
(:mod:`qpo.workbench._cron`), never by hand. For each job the scheduler:

* **claims it** in its state file (``$QPO_HOME/schedule/state.json``) under an exclusive file lock
  before running it: a job claimed (running, or decided) by another scheduler is left to it, so two
  schedulers never run the same job twice;
* **waits for its dependency**: a definition saying ``after = "valuation"`` runs only once the
  valuation run of the same date (the last one due that date not after this job, else the first
  one due later that date) FINISHED; if
  that run failed, was killed, found invalid data, could not start or was skipped, the job is
  skipped with the reason; a date with no valuation due has nothing to wait for;
* **retries a run that could not start** (the runner raised a :class:`~qpo.errors.QpoError` or an
  ``OSError``: ``qpo pipeline run`` exit 3) after ``backoff``, ``backoff * factor``, ... seconds,
  ``retries`` times, then records it ERROR; a run that started and failed is not retried;
* **applies the missed-run policy** on start: runs due while no scheduler ran (more than ``grace``
  seconds before the start) are run once, the latest of them (``missed = "run_once"``, the default),
  or skipped (``missed = "skip"``), per definition or for all with ``--missed``; on the very first
  start (no state yet) nothing before it is looked for;
* **marks a job whose scheduler disappeared** (its process is gone while the job says RUNNING)
  FAILED ("process disappeared"), so that what waits on it is skipped and not stuck; a process on
  another host sharing ``QPO_HOME`` cannot be checked, so its claim holds for a *lease* (the
  whole-run limit ``run_timeout`` + ``lease_margin``, 4 h + 15 min by default) from the run's start,
  then the job is marked FAILED ("claim expired"); schedulers sharing one ``QPO_HOME`` should use the
  same ``--run-timeout``;
* **gives each run its date**: a notebook declaring the as-of parameter (the definition's
  ``[data] as_of``, default ``as_of``) gets ``-p as_of <the job's date>``, so that a late or missed
  run of date D values D;
* **repairs runs left RUNNING** by a dead process (``repair``, e.g.
  :func:`~qpo.workbench.run_control.repair_orphaned_runs`: FAILED with a notice) on start and on
  its ticks; a job that gives up after its retries sends a failed-run notice too;
* **refuses a definition that does not load** (a bad cron line: its file, expression and reason)
  loudly, with a notice, and runs the others (those waiting for it are refused too);
* **logs one line per decision**: due, missed, started, finished, retry, gave-up, skipped, waiting,
  taken (by another scheduler), stale.

The core takes an injectable clock (``now()``, ``sleep(seconds)``) and runner (``runner(name)``
returning an object with ``status``, ``run_id`` and ``error``, such as a
:class:`~qpo.workbench.pipelines.PipelineRun`); the default runner is :class:`SubprocessRunner`
(``qpo pipeline run NAME --json`` in a child process, so that a crash or an out-of-memory kill of a
run cannot take the scheduler down).

The parts live next to it: the job, clock and options (``_schedule_jobs``), the claims in the
state file (``_schedule_claims``, the state file itself ``_schedule_state``), the cron schedules
(``_cron``) and the runner (``_schedule_runner``).
"""
from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from qpo import config
from qpo.errors import QpoError
from qpo.workbench._cron import (
    MISSED_POLICIES,
    TZ_ENV,
    InvalidScheduleError,
    check_cron,
    due_between,
    next_after,
    schedule_timezone,
)
from qpo.workbench._schedule_claims import JobBook
from qpo.workbench._schedule_jobs import BAD, LEASE_MARGIN_S, Job, ScheduleOptions, SystemClock
from qpo.workbench._schedule_jobs import Pending as _Pending
from qpo.workbench._schedule_jobs import dependency_depths as _dependency_depths
from qpo.workbench._schedule_jobs import iso as _iso
from qpo.workbench._schedule_jobs import parse as _parse
from qpo.workbench._schedule_runner import RUN_TIMEOUT_S, RunResult, SubprocessRunner, crontab_text
from qpo.workbench._schedule_state import FINAL, StateFile

__all__ = ["BAD", "LEASE_MARGIN_S", "MISSED_POLICIES", "RUN_TIMEOUT_S", "TZ_ENV", "InvalidScheduleError", "Job", "RunResult",
           "ScheduleOptions", "Scheduler", "SubprocessRunner", "SystemClock", "crontab_text", "default_state_path",
           "schedule_table", "scheduled_specs"]

#: the longest between two repairs of runs left RUNNING by dead processes, on the scheduler's ticks
REPAIR_EVERY_S = 60.0


def default_state_path() -> Path:
    return config.home() / "schedule" / "state.json"


def scheduled_specs(refused: dict[str, str] | None = None) -> dict[str, Any]:
    """Every pipeline definition with a schedule, loaded (a bad cron expression refused here, with
    the file, the expression and the reason). With ``refused`` (a dict), a definition that does not
    load is left out and recorded there (name -> why) instead of stopping everything, and so is a
    definition whose ``after`` names one left out."""
    from qpo.workbench.pipelines import available_pipelines, load_spec

    specs = {}
    for name, path in available_pipelines().items():
        try:
            specs[name] = load_spec(name)
        except QpoError as exc:
            if refused is None:
                raise
            if _unscheduled(path):
                continue  # a broken definition that is never scheduled is not the scheduler's to report
            refused[name] = str(exc) if f"pipelines/{path.name}" in str(exc) else f"{path}: {exc}"
    specs = {name: spec for name, spec in specs.items() if spec.schedule}
    if refused is not None:
        broken = {n: why for n in specs if (why := _own_link_problem(n, specs, refused))}  # the others run
        refused.update(broken)
        for name in broken:
            specs.pop(name, None)
        changed = True
        while changed:  # what waits for a refused definition cannot run either
            changed = False
            for name, spec in list(specs.items()):
                if spec.after and spec.after in refused:
                    refused[name] = (f"pipelines/{name}.toml: after = {spec.after!r}, whose definition was refused: "
                                     f"{refused[spec.after]}")
                    del specs[name]
                    changed = True
    return specs


def _own_link_problem(name: str, specs: Mapping[str, Any], refused: Mapping[str, str]) -> str | None:
    """Why ``name``'s after line cannot be kept: it names a pipeline with no schedule, or it closes a
    cycle through ``name``; None otherwise (a chain broken further up is its own link's problem)."""
    up = specs[name].after
    if not up or up in refused:  # waiting for a refused definition: said as such below
        return None
    if up not in specs:
        return (f"pipelines/{name}.toml: after = {up!r} names a pipeline with no schedule; give {up} a schedule, "
                "or remove the after line")
    chain = [name]
    while up in specs and up not in chain:
        chain.append(up)
        up = specs[up].after
        if not up:
            return None
    if up == name:
        return (f"the pipelines' after lines form a cycle: {' -> '.join([*chain, name])}; one of them must not wait "
                "for the other")
    return None


def _print_line(line: str) -> None:
    import sys

    print(line, file=sys.stderr, flush=True)


class Scheduler(JobBook):
    """Runs scheduled pipelines (see the module). ``specs``: name -> PipelineSpec (default: every
    definition with a schedule); ``clock``, ``runner``, ``log`` (a callable taking one line) injectable."""

    def __init__(self, specs: Mapping[str, Any] | None = None, *, clock=None, runner: Callable[..., Any] | None = None,
                 state_path: Path | None = None, log: Callable[[str], None] | None = None,
                 options: ScheduleOptions | None = None, repair: Callable[..., Any] | None = None):
        #: definitions that could not be loaded (name -> why): not scheduled, reported on start
        self.refused: dict[str, str] = {}
        specs = scheduled_specs(self.refused) if specs is None else {n: s for n, s in specs.items() if s.schedule}
        self.specs = dict(specs)
        self.exprs = {name: check_cron(spec.schedule, f"pipelines/{name}.toml") for name, spec in self.specs.items()}
        self.depth = _dependency_depths(self.specs)
        self.clock = clock or SystemClock()
        self.tz: dt.tzinfo = getattr(self.clock, "tz", None) or self.clock.now().tzinfo or dt.UTC
        self.runner = runner or SubprocessRunner()
        self.state = StateFile(state_path or default_state_path())
        self._log = log or _print_line
        self.options = options or ScheduleOptions()
        self.id = uuid.uuid4().hex[:12]
        self.pending: dict[str, _Pending] = {}
        self.cursor: dt.datetime | None = None
        self.outcomes: dict[str, dict[str, Any]] = {}  # job key -> the record of each job this scheduler decided
        self.stopping = False
        self.repair = repair  # e.g. run_control.repair_orphaned_runs: called on start and on each tick
        self._repaired_at: dt.datetime | None = None
        self._as_of: dict[str, str | None] = {}

    def _add(self, job: Job) -> None:
        if job.key not in self.pending:
            self.pending[job.key] = _Pending(job)
            self.log("due", job, "missed while no scheduler ran: run once now" if job.missed else "")

    def repair_runs(self, *, force: bool = False) -> None:
        """Runs left RUNNING by a process that disappeared (SIGKILL, a crash) marked FAILED, with a
        notice, by :attr:`repair` (e.g. :func:`~qpo.workbench.run_control.repair_orphaned_runs`):
        on start (``force``) and then at most every :data:`REPAIR_EVERY_S` seconds, on the ticks.
        An unreachable tracking store is logged, never raised."""
        if self.repair is None:
            return
        now = self._now()
        if not force and self._repaired_at is not None and (now - self._repaired_at).total_seconds() < min(
                REPAIR_EVERY_S, self.options.poll):
            return
        self._repaired_at = now
        try:
            repaired = self.repair(log=lambda m: self.log("repair", detail=m))
        except Exception as exc:  # noqa: BLE001 - the tracking store unreachable: say so, schedule anyway
            self.log("repair", detail=f"runs left RUNNING were not checked: {type(exc).__name__}: {exc}")
            return
        if repaired:
            self.log("repair", detail=f"{len(repaired)} run(s) whose process disappeared marked FAILED")

    def as_of_parameter(self, pipeline: str) -> str | None:
        """The notebook parameter that takes the job's date (the definition's ``as_of``, default
        ``as_of``) when the pipeline's notebook declares it, else None."""
        if pipeline not in self._as_of:
            spec = self.specs[pipeline]
            name = getattr(spec, "as_of_parameter", None) or "as_of"
            declared: dict = {}
            if Path(spec.notebook).is_file():
                from qpo.workbench.pipelines import notebook_parameters

                try:
                    declared = notebook_parameters(Path(spec.notebook))
                except Exception as exc:  # noqa: BLE001 - the run itself reports an unreadable notebook
                    self.log("as-of", detail=f"{pipeline}: the notebook's parameters cannot be read ({exc}); "
                                             f"its runs get no date")
            self._as_of[pipeline] = name if name in declared else None
        return self._as_of[pipeline]

    def job_parameters(self, job: Job) -> dict[str, Any]:
        """What a job's run is given: for a late or missed run (its date before today), its date as
        the notebook's as-of parameter, if it has one, so that the run of date D values D, not the
        day it runs. A run on its own day is given nothing: the notebook takes the newest prices,
        so a weekday without a bar (an exchange holiday, data not in yet) re-runs the last priced
        date and says "no new market data" instead of failing on a date after the prices."""
        name = self.as_of_parameter(job.pipeline)
        if name and self.specs[job.pipeline].after:  # the date its upstream run says it ran as of
            ran = self._upstream_as_of(job)
            if ran is not None:
                return {name: ran}
        today = self.clock.now().astimezone(self.tz).date()
        return {name: job.date.isoformat()} if name and job.date < today else {}

    # -- start and collect --------------------------------------------------------------------------
    def report_refused(self) -> None:
        """Each definition that could not be loaded, loudly: a log line and a failed-run notice
        through the delivery channels; the other pipelines run."""
        from qpo.workbench.run_control import notify_failed_run

        for name, why in sorted(self.refused.items()):
            self.log("REFUSED", detail=f"pipeline {name} is NOT scheduled: {why}")
            try:
                notify_failed_run(None, pipeline=name, status="ERROR", error=f"not scheduled: {why}",
                                  log=lambda m: self.log("notice", detail=m))
            except Exception as exc:  # noqa: BLE001 - logged; the other pipelines still run
                self.log("notice", detail=f"not sent: {type(exc).__name__}: {exc}")

    def start(self) -> None:
        """Look for runs due since a scheduler last looked: missed ones by the policy, the rest due."""
        self.report_refused()
        self.repair_runs(force=True)
        now = self._now()
        with self.state.transaction() as st:
            self._sweep(st, now)
            others = self._others_alive(st, now)
            since = _parse(st.get("checked_until"))
            self._heartbeat(st, now)
            # jobs waiting for their next attempt when their scheduler stopped: retried, not forgotten
            retrying = [Job(r["pipeline"], dt.datetime.fromisoformat(r["due"]).astimezone(self.tz))
                        for r in st["jobs"].values() if r["status"] == "RETRY" and r["pipeline"] in self.exprs]
            orphans = self._inherited(st, now)
        for job in sorted(retrying, key=lambda j: j.due):
            if job.key not in self.pending:
                self.pending[job.key] = _Pending(job)
                self.log("resumed", job, "was waiting for its next attempt when its scheduler stopped")
        for job in orphans:  # undecided when its scheduler died or was stopped: decided now, not lost
            if job.key not in self.pending:
                self.pending[job.key] = _Pending(job)
                self.log("resumed", job, "was not decided yet when its scheduler stopped")
        if since is None:
            # a first start: runs due within the grace are late, not missed (run now); older ones are not looked for
            since = now - dt.timedelta(seconds=self.options.grace)
            self.log("start", detail=f"first start (no state at {self.state.path}): runs due before "
                                     f"{since.astimezone(self.tz):%Y-%m-%d %H:%M:%S} are not looked for")
        floor = now - dt.timedelta(days=self.options.lookback_days)
        if since < floor:
            days = self.options.lookback_days
            self.log("start", detail=f"no scheduler ran since {since.astimezone(self.tz):%Y-%m-%d %H:%M}; runs missed "
                                     f"before {floor.astimezone(self.tz):%Y-%m-%d %H:%M} ({days} days) are not looked for")
            since = floor
        late = now - dt.timedelta(seconds=self.options.grace)
        skips: list[tuple[Job, str]] = []
        for name in sorted(self.exprs, key=lambda n: (self.depth[n], n)):
            dues = due_between(self.exprs[name], since, now, self.tz)
            missed = [d for d in dues if d <= late]
            if missed and not others:
                policy = self.options.missed or self.specs[name].missed or "run_once"
                job = Job(name, missed[-1], missed=True)
                first = f"{missed[0]:%Y-%m-%d %H:%M}"
                what = (f"{len(missed)} run(s) due from {first} missed while no scheduler ran"
                        if len(missed) > 1 else "missed while no scheduler ran")
                if policy == "run_once":
                    self.log("missed", job, f"{what}; running the latest once (missed = run_once)")
                    self._add(job)
                else:
                    self.log("missed", job, f"{what}; not run (missed = skip)")
                    skips.append((job, f"missed while no scheduler ran (missed = skip); {what}"))
                dues = [d for d in dues if d > late]
            for due in dues:
                self._add(Job(name, due))
        if skips:
            with self.state.transaction() as st:
                for job, reason in skips:
                    if job.key not in st["jobs"]:
                        st["jobs"][job.key] = self._record(job, "SKIPPED", now, reason=reason)
                        self.outcomes[job.key] = st["jobs"][job.key]
                        self.log("skipped", job, reason)
        self.cursor = now
        self._save_pending()

    def collect(self) -> None:
        """Add the runs that fell due since the last look."""
        now = self._now()
        assert self.cursor is not None, "start() first"
        with self.state.transaction() as st:
            self._sweep(st, now)
            self._heartbeat(st, now)
        for name in sorted(self.exprs, key=lambda n: (self.depth[n], n)):
            for due in due_between(self.exprs[name], self.cursor, now, self.tz):
                self._add(Job(name, due))
        self.cursor = max(self.cursor, now)
        if self.pending:
            self._save_pending()

    # -- decide and run -----------------------------------------------------------------------------
    def _run(self, job: Job, rec: dict[str, Any]) -> dict[str, Any]:
        n, total = rec["attempts"], 1 + self.options.retries
        self.log("started", job, f"attempt {n}/{total}" + (f" ({rec['reason']})" if rec.get("reason") else ""))
        t0 = self._now()
        params = self.job_parameters(job)
        try:
            result = self.runner(job.pipeline, params) if params else self.runner(job.pipeline)
        except (QpoError, OSError) as exc:  # the run could not start: retried with backoff
            now = self._now()
            why = f"{type(exc).__name__}: {exc}" if isinstance(exc, OSError) else str(exc)
            if n < total:
                delay = self.options.backoff * self.options.backoff_factor ** (n - 1)
                at = now + dt.timedelta(seconds=delay)
                self.log("retry", job, f"could not start (attempt {n}/{total}): {why}; next attempt at "
                                       f"{at.astimezone(self.tz):%Y-%m-%d %H:%M:%S} (in {delay:.0f} s)")
                return self._finish(job, status="RETRY", next_attempt=_iso(at), error=why, ended=_iso(now))
            self.log("gave-up", job, f"could not start in {n} attempt(s): {why}")
            rec = self._finish(job, status="ERROR", error=f"could not start in {n} attempt(s): {why}",
                               ended=_iso(now), next_attempt=None)
            self._notify(job, rec)
            return rec
        except BaseException as exc:  # Ctrl-C in an in-process runner: recorded, then the scheduler stops
            self._finish(job, status="KILLED", error=f"the scheduler was stopped ({type(exc).__name__})",
                         ended=_iso(self._now()))
            raise
        now = self._now()
        status = str(getattr(result, "status", None) or "FAILED")
        status = status if status in FINAL else "FAILED"
        error, run_id = str(getattr(result, "error", None) or "") or None, getattr(result, "run_id", None)
        seconds = (now - t0).total_seconds()
        self.log("finished", job, f"{status} in {seconds:.1f} s" + (f", mlflow run {run_id}" if run_id else "")
                 + (f": {error}" if error else ""))
        ran_as_of = getattr(result, "as_of", None)
        rec = self._finish(job, status=status, run_id=run_id, error=error, ended=_iso(now), next_attempt=None,
                           **({"ran_as_of": ran_as_of} if ran_as_of else {}))
        if status == "INVALID_DATA":  # refused before a run was tracked: nobody else tells the ops desk
            self._notify(job, rec)
        return rec

    def _notify(self, job: Job, rec: dict[str, Any]) -> None:
        """A failed-run notice (the delivery channels of the environment) for a job that gave up,
        ended INVALID_DATA (its data refused before anything ran) or was skipped because the run it
        comes after did not finish."""
        from qpo.workbench.run_control import notify_failed_run

        try:
            report = notify_failed_run(rec.get("run_id"), pipeline=job.pipeline, status=rec["status"],
                                       error=f"{job.label}: {rec.get('error') or rec.get('reason')}",
                                       started=rec.get("started"),
                                       as_of=job.date.isoformat(), log=lambda m: self.log("notice", job, m))
        except Exception as exc:  # noqa: BLE001 - a notice that cannot go is logged, the scheduler goes on
            self.log("notice", job, f"not sent: {type(exc).__name__}: {exc}")
            return
        if report and report.get("sent"):
            self.log("notice", job, "sent: " + ", ".join(s["channel"] for s in report["sent"]))

    def step(self) -> tuple[bool, dt.datetime | None]:
        """Decide the pending jobs in due order, running at most one. Returns (something was decided
        or run, the earliest time a pending job waits for)."""
        now = self._now()
        decided, wake = False, None
        order = sorted(self.pending.items(), key=lambda kv: (kv[1].job.due.astimezone(dt.UTC), self.depth[kv[1].job.pipeline]))
        for key, _ in order:
            item = self.pending[key]
            job = item.job
            verdict, value = self._claim(job, now)
            if verdict == "run":
                rec = self._run(job, value)
                if rec["status"] != "RETRY":
                    self.outcomes[key] = rec
                    del self.pending[key]
                return True, None
            if verdict in ("done", "taken", "skipped"):
                del self.pending[key]
                decided = True
                if verdict == "skipped":
                    self.outcomes[key] = value
                    self.log("skipped", job, value["reason"])
                    if value.get("upstream_failed"):  # not a planned or first-start skip
                        self._notify(job, value)
                elif value.get("owner") != self.id:
                    self.log("taken", job, f"{value['status']} by another scheduler (process {value.get('pid')} "
                                           f"on {value.get('host')})")
                continue
            if verdict == "later":
                wake = value if wake is None else min(wake, value)
            elif verdict == "wait" and value not in item.logged:
                item.logged.add(value)
                self.log("waiting", job, value.removeprefix("waiting for "))
        return decided, wake

    def _next_due(self) -> dt.datetime | None:
        assert self.cursor is not None
        times = [next_after(expr, self.cursor, self.tz) for expr in self.exprs.values()]
        return min(times) if times else None

    def run(self, *, once: bool = False, until: dt.datetime | None = None) -> int:
        """Run until stopped (:attr:`stopping`, or the clock passing ``until``); with ``once``, decide
        the runs due now (their retries and dependencies too), then return. Returns 1 if a job this
        scheduler decided ended FAILED, KILLED, INVALID_DATA or ERROR, or a definition was refused
        (:attr:`refused`), else 0."""
        self.start()
        if once and not self.pending:
            self.log("idle", detail="nothing is due now")
        while not self.stopping:
            self.repair_runs()
            if not once:
                self.collect()
            decided, wake = self.step()
            if decided:
                continue
            if once and not self.pending:
                break
            now = self._now()
            if until is not None and now >= until:
                break
            limit = now + dt.timedelta(seconds=self.options.poll)
            candidates = [t.astimezone(dt.UTC) for t in (wake, None if once else self._next_due(), limit, until)
                          if t is not None]
            self.clock.sleep(max(0.0, (min(candidates) - now).total_seconds()))
        return 1 if self.refused or any(r["status"] in BAD for r in self.outcomes.values()) else 0

    def stop(self) -> None:
        self.stopping = True
        stop = getattr(self.clock, "stop", None)
        if stop is not None:
            stop.set()


def schedule_table(specs: Mapping[str, Any] | None = None, *, now: dt.datetime | None = None,
                   state_path: Path | None = None, refused: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """One row per scheduled pipeline: schedule, next run, ``after``, missed-run policy, last job.
    With ``refused`` (a dict), a definition that does not load (a bad cron line) is left out and
    recorded there (name -> why, see :func:`scheduled_specs`) instead of failing the whole table."""
    specs = scheduled_specs(refused) if specs is None else {n: s for n, s in specs.items() if s.schedule}
    _dependency_depths(specs)
    tz = schedule_timezone() if now is None or now.tzinfo is None else now.tzinfo
    now = now or dt.datetime.now(tz)
    path = state_path or default_state_path()
    jobs = StateFile(path).read()["jobs"] if path.exists() else {}
    rows = []
    for name, spec in sorted(specs.items()):
        expr = check_cron(spec.schedule, f"pipelines/{name}.toml")
        mine = [r for r in jobs.values() if r["pipeline"] == name]
        last = max(mine, key=lambda r: r["due"], default=None)
        rows.append({"pipeline": name, "schedule": spec.schedule, "next_run": next_after(expr, now, tz).isoformat(),
                     "after": spec.after, "missed": spec.missed or "run_once",
                     "last_due": last["due"] if last else None, "last_status": last["status"] if last else None,
                     "last_error": (last.get("error") or last.get("reason")) if last else None})
    return rows


def _unscheduled(path: Path) -> bool:
    """Whether a pipeline file that could not be loaded says no ``schedule`` (read as plain TOML;
    an unreadable file counts as scheduled, so that it is reported)."""
    import tomllib

    try:
        return "schedule" not in tomllib.loads(Path(path).read_text())
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError):
        return False
