"""The scheduler's book of jobs in its state file (:mod:`qpo.workbench.scheduler`): a job claimed
under the file lock before it runs, its dependency looked up, its end recorded; claims whose
scheduler disappeared, or whose lease from another host ran out, marked FAILED; old jobs and
schedulers forgotten. :class:`JobBook` is the part of :class:`~qpo.workbench.scheduler.Scheduler`
that does it (with the clock and the log it uses)."""
from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable
from typing import Any

from qpo.workbench._cron import last_at_or_before, next_after
from qpo.workbench._schedule_jobs import Job, Pending, ScheduleOptions
from qpo.workbench._schedule_jobs import at as _at
from qpo.workbench._schedule_jobs import iso as _iso
from qpo.workbench._schedule_jobs import parse as _parse
from qpo.workbench._schedule_state import FINAL, HOST, StateFile, my_start, pid_alive


class JobBook:
    """The state-file side of a scheduler: what :class:`~qpo.workbench.scheduler.Scheduler` sets up."""

    specs: dict[str, Any]
    exprs: dict[str, str]
    clock: Any
    tz: dt.tzinfo
    state: StateFile
    options: ScheduleOptions
    id: str
    pending: dict[str, Pending]
    cursor: dt.datetime | None
    _log: Callable[[str], None]

    def _now(self) -> dt.datetime:
        """The clock's time in UTC: compared across zones and changes of the clocks without ambiguity."""
        return self.clock.now().astimezone(dt.UTC)

    # -- log ----------------------------------------------------------------------------------------
    def log(self, event: str, job: Job | None = None, detail: str = "") -> None:
        now = self.clock.now()
        self._log(f"{now:%Y-%m-%d %H:%M:%S %Z} {event:<8} {job.label + ' ' if job else ''}{detail}".rstrip())

    # -- state --------------------------------------------------------------------------------------
    def lease(self) -> dt.timedelta | None:
        """How long a job claimed by a scheduler on another host stays its (no process of another
        host can be checked): the whole-run limit plus a margin; None (no limit) without a run limit."""
        if self.options.run_timeout is None:
            return None
        return dt.timedelta(seconds=self.options.run_timeout + self.options.lease_margin)

    def _abandoned(self, rec: dict[str, Any], now: dt.datetime) -> str | None:
        """Why a RUNNING job's claim is dead (its scheduler's process gone from this host, or the
        lease of a claim from another host ran out), None while it holds."""
        pid, host = rec.get("pid"), rec.get("host")
        if host and host != HOST:
            lease, started = self.lease(), _parse(rec.get("started"))
            if lease is None or started is None or now < started + lease:
                return None
            return (f"claim expired: scheduler process {pid} on host {host} started the run at {rec['started']} and "
                    f"did not record its end within the lease ({lease.total_seconds():.0f} s: the run limit "
                    f"{self.options.run_timeout:.0f} s + {self.options.lease_margin:.0f} s); its scheduler is taken "
                    f"as gone")
        if pid_alive(pid, host, rec.get("pstart")):
            return None
        return (f"process disappeared: scheduler process {pid} on {host} stopped while the run was going "
                f"(killed?)")

    def _sweep(self, st: dict, now: dt.datetime) -> None:
        """Mark RUNNING jobs whose scheduler process is gone, or whose claim from another host
        outlived its lease, FAILED; forget old jobs and schedulers."""
        for rec in st["jobs"].values():
            why = self._abandoned(rec, now) if rec["status"] == "RUNNING" else None
            if why is not None:
                rec.update(status="FAILED", ended=_iso(now), error=why)
                self.log("stale", Job(rec["pipeline"], _at(rec["due"]).astimezone(self.tz)), rec["error"])
        horizon = now - dt.timedelta(days=self.options.keep_days)
        st["jobs"] = {k: r for k, r in st["jobs"].items()
                      if r["status"] not in FINAL or _at(r["due"]) >= horizon}
        st["schedulers"] = {k: s for k, s in st["schedulers"].items()
                            if k == self.id or (pid_alive(s.get("pid"), s.get("host"), s.get("pstart"))
                                                and _at(s["seen"]) >= now - dt.timedelta(days=1))}

    def _others_alive(self, st: dict, now: dt.datetime) -> bool:
        fresh = now - dt.timedelta(seconds=3 * self.options.poll)
        if any(k != self.id and _at(s["seen"]) >= fresh for k, s in st["schedulers"].items()):
            return True
        return any(r["status"] == "RUNNING" and r.get("owner") != self.id for r in st["jobs"].values())

    def _heartbeat(self, st: dict, now: dt.datetime) -> None:
        st["schedulers"][self.id] = {"pid": os.getpid(), "pstart": my_start(), "host": HOST, "seen": _iso(now)}
        checked = _parse(st.get("checked_until"))
        if checked is None or now > checked:
            st["checked_until"] = _iso(now)

    def _record(self, job: Job, status: str, now: dt.datetime, **extra) -> dict[str, Any]:
        return {"pipeline": job.pipeline, "due": _iso(job.due), "date": job.date.isoformat(), "status": status,
                "attempts": 0, "owner": self.id, "pid": os.getpid(), "pstart": my_start(), "host": HOST, "started": None,
                "ended": _iso(now), "next_attempt": None, "run_id": None, "error": None, "reason": None,
                "missed": job.missed, **extra}

    def _upstream_job(self, job: Job) -> Job | None:
        """The run of the same date that ``job`` comes after (its definition's ``after``): the last
        due at or before it, else the first due later that date; None when none is due that date."""
        up = self.specs[job.pipeline].after
        due = last_at_or_before(self.exprs[up], job.due)
        if due.date() != job.date:
            due = next_after(self.exprs[up], job.due, self.tz)
        return Job(up, due) if due.date() == job.date else None

    def _upstream(self, st: dict, job: Job, now: dt.datetime) -> tuple[str, str]:
        """("go" | "wait" | "skip" | "skip-failed", why) for a job whose definition says ``after``."""
        up = self.specs[job.pipeline].after
        upjob = self._upstream_job(job)
        if upjob is None:
            return "go", f"no {up} run is due on {job.date}: nothing to wait for"
        due = upjob.due
        rec = st["jobs"].get(upjob.key)
        what = f"{up} of {job.date} (due {due:%H:%M})"
        if rec is None:
            if upjob.key in self.pending or due > (self.cursor or now) or self._others_alive(st, now):
                return "wait", f"waiting for {what}: not run yet"
            return "skip", (f"{what} has no run: it was due before the scheduler first started, or missed while no "
                            f"scheduler ran and not run")
        if rec["status"] == "FINISHED":
            return "go", f"after {what}: FINISHED"
        if rec["status"] in FINAL:
            reason = rec.get("error") or rec.get("reason") or ""
            return ("skip" if rec["status"] == "SKIPPED" else "skip-failed",
                    f"{what} ended {rec['status']}" + (f": {reason}" if reason else ""))
        return "wait", f"waiting for {what}: {rec['status']}"

    def _claim(self, job: Job, now: dt.datetime) -> tuple[str, Any]:
        with self.state.transaction() as st:
            self._sweep(st, now)
            rec = st["jobs"].get(job.key)
            if rec is not None and rec["status"] in FINAL:
                return "done", rec
            if rec is not None and rec["status"] == "RUNNING":
                return "taken", rec
            if rec is not None and rec["status"] == "RETRY" and _at(rec["next_attempt"]) > now:
                return "later", _at(rec["next_attempt"])
            why = ""
            if self.specs[job.pipeline].after:
                verdict, why = self._upstream(st, job, now)
                if verdict == "wait":
                    return "wait", why
                if verdict in ("skip", "skip-failed"):  # skip-failed: the run it comes after failed (a notice)
                    rec = st["jobs"][job.key] = self._record(job, "SKIPPED", now, reason=why,
                                                             upstream_failed=verdict == "skip-failed")
                    return "skipped", rec
            attempts = (rec or {}).get("attempts", 0) + 1
            rec = st["jobs"][job.key] = self._record(job, "RUNNING", now, attempts=attempts, started=_iso(now),
                                                     ended=None, reason=why or None)
            return "run", rec

    def _finish(self, job: Job, **changes) -> dict[str, Any]:
        with self.state.transaction() as st:
            rec = st["jobs"][job.key]
            rec.update(changes)
            return dict(rec)

    def _save_pending(self) -> None:
        """Keep this scheduler's undecided jobs in the state file: if it dies (SIGKILL) or is stopped
        after it looked past them, the next scheduler to start decides them instead of losing them."""
        with self.state.transaction() as st:
            st.setdefault("pending", {})[self.id] = [
                {"pipeline": p.job.pipeline, "due": _iso(p.job.due), "missed": p.job.missed}
                for p in self.pending.values()]

    def _inherited(self, st: dict, now: dt.datetime) -> list[Job]:
        """The undecided jobs of schedulers that are gone (:meth:`_save_pending`), without a final
        record; their lists are dropped from the state once taken."""
        out: list[Job] = []
        floor = now - dt.timedelta(days=self.options.lookback_days)
        pending = st.get("pending") or {}
        for sid in [s for s in pending if s != self.id and s not in st["schedulers"]]:
            for item in pending.pop(sid) or []:
                if item.get("pipeline") not in self.exprs:
                    continue
                job = Job(item["pipeline"], _at(item["due"]).astimezone(self.tz), missed=bool(item.get("missed")))
                rec = st["jobs"].get(job.key)
                if job.due >= floor and (rec is None or rec["status"] not in FINAL):
                    out.append(job)
        return sorted(out, key=lambda j: j.due)

    def _upstream_as_of(self, job: Job) -> str | None:
        """The as-of date the run ``job`` comes after reported (a valuation on its own day values
        the newest priced date, which may be the day before: the risk run of that job checks that
        date, whenever it runs), or None when it reported none."""
        upjob = self._upstream_job(job)
        rec = self.state.read()["jobs"].get(upjob.key) if upjob is not None else None
        value = (rec or {}).get("ran_as_of")
        return value if isinstance(value, str) else None
