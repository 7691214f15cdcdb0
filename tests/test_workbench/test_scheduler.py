"""The unattended scheduler (``qpo schedule``), driven by a fake clock and a fake runner, plus one
end-to-end run of a real tiny pipeline and a race of two scheduler processes on one state file."""
from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from qpo.errors import CorruptFileError, PipelineError, UnknownOptionError
from qpo.workbench.pipelines import PipelineSpec
from qpo.workbench.scheduler import InvalidScheduleError, RunResult, ScheduleOptions, Scheduler, crontab_text, schedule_table
from tests.conftest import ROOT

UTC = dt.UTC
ZURICH = ZoneInfo("Europe/Zurich")
FRI = dt.datetime(2026, 3, 27, tzinfo=UTC)  # a Friday


def at(day: dt.datetime, hh: int, mm: int = 0, ss: int = 0) -> dt.datetime:
    return day.replace(hour=hh, minute=mm, second=ss)


class FakeClock:
    def __init__(self, start: dt.datetime):
        self.t = start
        self.sleeps: list[float] = []

    def now(self) -> dt.datetime:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.advance(dt.timedelta(seconds=max(seconds, 0.001)))

    def advance(self, delta: dt.timedelta) -> None:  # in real time: through a change of the clocks too
        self.t = (self.t.astimezone(UTC) + delta).astimezone(self.t.tzinfo)


class FakeRunner:
    """Records (pipeline, time) of each call; ``plan[name]`` is a list of what each call does:
    a status, an exception to raise, or (status, error); ``minutes[name]`` how long a run takes."""

    def __init__(self, clock: FakeClock, plan=None, minutes=None):
        self.clock, self.plan, self.minutes = clock, dict(plan or {}), dict(minutes or {})
        self.calls: list[tuple[str, dt.datetime]] = []

    def __call__(self, name: str) -> RunResult:
        self.calls.append((name, self.clock.now()))
        todo = self.plan.get(name) or ["FINISHED"]
        what = todo.pop(0) if len(todo) > 1 else todo[0]
        self.clock.advance(dt.timedelta(minutes=self.minutes.get(name, 1)))
        if isinstance(what, Exception):
            raise what
        status, error = what if isinstance(what, tuple) else (what, None)
        return RunResult(status, run_id=f"run-{len(self.calls)}", error=error)


def spec(name: str, schedule: str, after: str | None = None, missed: str | None = None) -> PipelineSpec:
    return PipelineSpec(name=name, notebook=Path(f"{name}.ipynb"), experiment=name, schedule=schedule, description="",
                        data_source_parameter=None, data_start_parameter=None, after=after, missed=missed)


BOOK = {"valuation": spec("valuation", "0 17 * * 1-5"), "risk": spec("risk", "0 18 * * 1-5", after="valuation")}


def make(specs, start, *, plan=None, minutes=None, state=None, tmp, **options):
    clock = FakeClock(start)
    runner = FakeRunner(clock, plan, minutes)
    lines: list[str] = []
    sched = Scheduler(specs, clock=clock, runner=runner, state_path=state or tmp / "state.json", log=lines.append,
                      options=ScheduleOptions(**{"poll": 3600.0, **options}))
    return sched, runner, lines


def seed_state(path: Path, checked_until: dt.datetime, jobs: dict | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"version": 1, "checked_until": checked_until.isoformat(), "schedulers": {},
                                "jobs": jobs or {}}))


def state_jobs(path: Path) -> dict:
    return json.loads(path.read_text())["jobs"]


# -- the definitions ------------------------------------------------------------------------------

@pytest.mark.parametrize(("expression", "reason"), [
    ("61 18 * * 1-5", "the minute field '61' is not acceptable, out of range (valid: 0-59)"),
    ("0 18 * *", "it has 4 field(s), not 5"),
    ("0 18 * * 1-5 2026", "it has 6 field(s), not 5"),
    ("0 0 31 2 *", "no date ever matches it"),
    ("0 0 * * 8", "the day of week field '8'"),
    ("0 0 L * *", "names 'l'"),
    ("0 0 * * sat#1", "holds '#'"),
    ("5-1 * * * *", "the range 5-1, which runs backwards"),
    ("0 17 * * fri-mon", "the day of week field 'fri-mon' has the range 5-1, which runs backwards"),
    ("@reboot", "unknown macro '@reboot'"),
])
def test_a_bad_cron_expression_is_refused_when_the_definition_is_loaded(tmp_path, monkeypatch, expression, reason):
    from qpo.workbench.pipelines import load_spec
    from tests.reliability.tiny_project import PIPELINE, make_project

    root = make_project(tmp_path / "project")
    (root / "pipelines" / "tiny.toml").write_text(PIPELINE.replace('"0 0 * * *"', json.dumps(expression)))
    monkeypatch.setenv("QPO_PROJECT_ROOT", str(root))
    with pytest.raises(InvalidScheduleError) as info:
        load_spec("tiny")
    message = str(info.value)
    assert f"pipelines/tiny.toml: schedule {expression!r} is not a valid cron expression" in message
    assert reason in message and "e.g. '0 18 * * 1-5'" in message


@pytest.mark.parametrize(("expression", "runs"), [
    ("0 17-17 * * 1-5", ["Mon 17:00", "Tue 17:00", "Wed 17:00"]),
    ("5-5 17 * * 1-5", ["Mon 17:05", "Tue 17:05", "Wed 17:05"]),
    ("0 17 * * mon-mon", ["Mon 17:00", "Mon 17:00", "Mon 17:00"]),
    ("0 17 * * 7-7", ["Sun 17:00", "Sun 17:00", "Sun 17:00"]),
    ("0 17 1-1 * *", ["Fri 17:00", "Mon 17:00", "Mon 17:00"]),  # the 1st of Jan, Feb and Mar 2027
])
def test_a_range_of_one_value_is_that_value(expression, runs):
    """croniter 7 reads '17-17' as '*': a job meant for 17:00 on weekdays ran every hour (120 runs a
    week for 5), '5-5' every minute of the hour, 'mon-mon' every day."""
    from qpo.workbench._cron import check_cron, next_after

    tz = ZoneInfo("UTC")
    expr = check_cron(expression)
    t = dt.datetime(2026, 12, 6, 23, 0, tzinfo=tz)  # a Sunday night
    got = []
    for _ in range(3):
        t = next_after(expr, t, tz)
        got.append(t.strftime("%a %H:%M"))
    assert got == runs, (expression, expr, got)


def test_after_and_missed_are_checked_when_the_definition_is_loaded(tmp_path, monkeypatch):
    from qpo.workbench.pipelines import load_spec
    from tests.reliability.tiny_project import PIPELINE, make_project

    root = make_project(tmp_path / "project")
    monkeypatch.setenv("QPO_PROJECT_ROOT", str(root))
    toml = root / "pipelines" / "tiny.toml"
    (root / "pipelines" / "other.toml").write_text(PIPELINE)
    toml.write_text(PIPELINE + 'after = "other"\nmissed = "skip"\n')
    loaded = load_spec("tiny")
    assert (loaded.after, loaded.missed, loaded.schedule) == ("other", "skip", "0 0 * * *")
    toml.write_text(PIPELINE + 'after = "valuaton"\n')
    with pytest.raises(UnknownOptionError, match=r"unknown pipeline in pipelines/tiny.toml \(after =\) 'valuaton'; "
                                                 r"valid: other"):
        load_spec("tiny")
    toml.write_text(PIPELINE + 'after = "tiny"\n')
    with pytest.raises(PipelineError, match="names the pipeline itself"):
        load_spec("tiny")
    toml.write_text(PIPELINE + 'missed = "sometimes"\n')
    with pytest.raises(UnknownOptionError, match="'sometimes'; valid: run_once, skip"):
        load_spec("tiny")


def test_the_projects_book_pipelines_load_with_risk_after_valuation():
    from qpo.workbench.pipelines import available_pipelines, load_spec

    if "valuation" not in available_pipelines():
        pytest.skip("pipelines/valuation.toml is not there yet")
    assert load_spec("risk").after == "valuation"
    Scheduler(clock=FakeClock(FRI), runner=lambda n: RunResult("FINISHED"))  # every definition: no cycle, all valid


def test_a_cycle_of_after_lines_is_refused(tmp_path):
    specs = {"a": spec("a", "0 1 * * *", after="b"), "b": spec("b", "0 2 * * *", after="a")}
    with pytest.raises(PipelineError, match="form a cycle: a -> b -> a"):
        make(specs, FRI, tmp=tmp_path)


def test_a_cycle_or_an_after_without_a_schedule_refuses_those_definitions_only(tmp_path, monkeypatch):
    """One cycle (or an after line naming an unscheduled pipeline) stopped `schedule show` and
    `schedule run` for every pipeline, exit 2, with no JSON."""
    from qpo.workbench.scheduler import schedule_table, scheduled_specs
    from tests.reliability.tiny_project import PIPELINE, make_project

    root = make_project(tmp_path / "project")
    monkeypatch.setenv("QPO_PROJECT_ROOT", str(root))
    pipes = root / "pipelines"
    (pipes / "a.toml").write_text(PIPELINE + 'after = "b"\n')
    (pipes / "b.toml").write_text(PIPELINE + 'after = "a"\n')
    (pipes / "lone.toml").write_text(PIPELINE.replace('schedule = "0 0 * * *"\n', ""))
    (pipes / "c.toml").write_text(PIPELINE + 'after = "lone"\n')
    (pipes / "d.toml").write_text(PIPELINE + 'after = "c"\n')
    refused: dict[str, str] = {}
    specs = scheduled_specs(refused)
    assert sorted(specs) == ["tiny"]  # the others still run
    assert "form a cycle: a -> b -> a" in refused["a"] and "form a cycle: b -> a -> b" in refused["b"]
    assert "after = 'lone' names a pipeline with no schedule" in refused["c"]
    assert "whose definition was refused" in refused["d"]
    rows = schedule_table(refused={}, state_path=tmp_path / "state.json")
    assert [r["pipeline"] for r in rows] == ["tiny"]


# -- when jobs are due: croniter, with cron's conventions --------------------------------------

def test_weekday_schedules_run_friday_then_monday_in_order_with_the_dependency(tmp_path):
    sched, runner, lines = make(BOOK, at(FRI, 16, 59), tmp=tmp_path)
    assert sched.run(until=at(FRI + dt.timedelta(days=3), 18, 30)) == 0
    mon = FRI + dt.timedelta(days=3)
    assert runner.calls == [("valuation", at(FRI, 17)), ("risk", at(FRI, 18)),
                            ("valuation", at(mon, 17)), ("risk", at(mon, 18))]
    jobs = state_jobs(tmp_path / "state.json")
    assert sorted(jobs) == ["risk@2026-03-27T18:00Z", "risk@2026-03-30T18:00Z",
                            "valuation@2026-03-27T17:00Z", "valuation@2026-03-30T17:00Z"]
    assert {r["status"] for r in jobs.values()} == {"FINISHED"}
    assert jobs["risk@2026-03-27T18:00Z"]["reason"] == "after valuation of 2026-03-27 (due 17:00): FINISHED"
    assert any(" started  risk 2026-03-27 18:00 attempt 1/4" in line for line in lines), lines
    assert any("finished valuation 2026-03-27 17:00 FINISHED in 60.0 s, mlflow run run-1" in line for line in lines)


def test_day_of_week_numbers_follow_cron_sunday_is_0_and_7(tmp_path):
    specs = {"sun0": spec("sun0", "0 9 * * 0"), "sun7": spec("sun7", "0 9 * * 7"), "mon": spec("mon", "0 9 * * mon")}
    sched, runner, _ = make(specs, at(FRI, 10), tmp=tmp_path)
    sched.run(until=at(FRI + dt.timedelta(days=3), 10))
    assert sorted((n, f"{t:%a %H}") for n, t in runner.calls) == [("mon", "Mon 09"), ("sun0", "Sun 09"),
                                                                    ("sun7", "Sun 09")]


def test_a_fixed_time_job_runs_once_when_the_clocks_go_back(tmp_path, monkeypatch):
    specs = {"night": spec("night", "30 2 * * *"), "half": spec("half", "*/30 2 * * *")}  # half: a wildcard minute
    start = dt.datetime(2026, 10, 24, 12, 0, tzinfo=ZURICH)
    sched, runner, _ = make(specs, start, tmp=tmp_path)
    sched.run(until=dt.datetime(2026, 10, 25, 12, 0, tzinfo=ZURICH))
    dues = sorted(state_jobs(tmp_path / "state.json"))
    assert [d for d in dues if d.startswith("night")] == ["night@2026-10-25T00:30Z"]  # 02:30 +02:00, once
    assert [d for d in dues if d.startswith("half")] == ["half@2026-10-25T00:00Z", "half@2026-10-25T00:30Z",
                                                         "half@2026-10-25T01:00Z", "half@2026-10-25T01:30Z"]


def test_a_dependency_due_later_is_waited_for(tmp_path):
    specs = {"prices": spec("prices", "0 19 * * *"), "report": spec("report", "0 18 * * *", after="prices")}
    sched, runner, lines = make(specs, at(FRI, 17, 59), tmp=tmp_path)
    sched.run(until=at(FRI, 19, 30))
    assert runner.calls == [("prices", at(FRI, 19)), ("report", at(FRI, 19, 1))]
    waiting = [line for line in lines if " waiting " in line]
    assert len(waiting) == 1 and "report 2026-03-27 18:00 prices of 2026-03-27 (due 19:00): not run yet" in waiting[0]


# -- dependencies, retries ---------------------------------------------------------------------

def test_a_failed_upstream_skips_the_dependent_with_the_reason(tmp_path):
    plan = {"valuation": [("FAILED", "cell 3: ValueError: no prices on 2026-03-27")]}
    sched, runner, lines = make(BOOK, at(FRI, 17), plan=plan, tmp=tmp_path)
    seed_state(tmp_path / "state.json", at(FRI, 16, 59))
    assert sched.run(once=True) == 1
    assert runner.calls == [("valuation", at(FRI, 17))]
    sched2, runner2, lines2 = make(BOOK, at(FRI, 18, 0, 5), tmp=tmp_path)
    assert sched2.run(once=True) == 0  # the skip is not a failure of its own
    assert runner2.calls == []
    risk = state_jobs(tmp_path / "state.json")["risk@2026-03-27T18:00Z"]
    reason = "valuation of 2026-03-27 (due 17:00) ended FAILED: cell 3: ValueError: no prices on 2026-03-27"
    assert risk["status"] == "SKIPPED" and risk["reason"] == reason
    assert any(line.endswith(f"skipped  risk 2026-03-27 18:00 {reason}") for line in lines2), lines2


def test_a_run_that_could_not_start_is_retried_with_backoff(tmp_path):
    plan = {"valuation": [PipelineError("no store at sqlite:///x.db"), PipelineError("no store at sqlite:///x.db"),
                          "FINISHED"]}
    sched, runner, lines = make(BOOK, at(FRI, 16, 59), plan=plan, minutes={"valuation": 0}, tmp=tmp_path,
                                backoff=60, backoff_factor=2)
    sched.run(until=at(FRI, 18, 30))
    assert runner.calls == [("valuation", at(FRI, 17)), ("valuation", at(FRI, 17, 1)), ("valuation", at(FRI, 17, 3)),
                            ("risk", at(FRI, 18))]
    rec = state_jobs(tmp_path / "state.json")["valuation@2026-03-27T17:00Z"]
    assert (rec["status"], rec["attempts"]) == ("FINISHED", 3)
    retries = [line for line in lines if " retry " in line]
    assert len(retries) == 2
    assert "could not start (attempt 1/4): no store at sqlite:///x.db; next attempt at 2026-03-27 17:01:00 (in 60 s)" \
        in retries[0]
    assert "(attempt 2/4)" in retries[1] and "(in 120 s)" in retries[1]


def test_retries_spent_end_the_job_error_and_skip_its_dependents(tmp_path):
    plan = {"valuation": [PipelineError("the store is locked")]}
    sched, runner, lines = make(BOOK, at(FRI, 17), plan=plan, minutes={"valuation": 0}, tmp=tmp_path, retries=2,
                                backoff=30, backoff_factor=3)
    seed_state(tmp_path / "state.json", at(FRI, 16, 59))
    assert sched.run(once=True) == 1
    assert [t for _, t in runner.calls] == [at(FRI, 17), at(FRI, 17, 0, 30), at(FRI, 17, 2)]
    rec = state_jobs(tmp_path / "state.json")["valuation@2026-03-27T17:00Z"]
    assert rec["status"] == "ERROR" and rec["error"] == "could not start in 3 attempt(s): the store is locked"
    assert any("gave-up  valuation 2026-03-27 17:00 could not start in 3 attempt(s)" in line for line in lines)
    sched2, runner2, _ = make(BOOK, at(FRI, 18), tmp=tmp_path)
    sched2.run(once=True)
    risk = state_jobs(tmp_path / "state.json")["risk@2026-03-27T18:00Z"]
    assert risk["status"] == "SKIPPED" and "ended ERROR: could not start in 3 attempt(s)" in risk["reason"]


def test_a_run_that_started_and_failed_is_not_retried(tmp_path):
    sched, runner, _ = make({"v": spec("v", "0 17 * * *")}, at(FRI, 17), plan={"v": ["FAILED"]}, tmp=tmp_path)
    seed_state(tmp_path / "state.json", at(FRI, 16, 59))
    assert sched.run(once=True) == 1
    assert len(runner.calls) == 1


# -- missed runs -------------------------------------------------------------------------------

DAILY = {"daily": spec("daily", "0 8 * * *")}
MON = FRI + dt.timedelta(days=3)


def test_runs_missed_while_down_run_once_on_start(tmp_path):
    seed_state(tmp_path / "state.json", at(FRI, 12))  # down from Friday noon to Monday 09:00
    sched, runner, lines = make(DAILY, at(MON, 9), tmp=tmp_path)
    assert sched.run(once=True) == 0
    assert runner.calls == [("daily", at(MON, 9))]  # once, for the latest (Monday 08:00)
    rec = state_jobs(tmp_path / "state.json")["daily@2026-03-30T08:00Z"]
    assert rec["status"] == "FINISHED" and rec["missed"] is True
    assert any("missed   daily 2026-03-30 08:00 3 run(s) due from 2026-03-28 08:00 missed while no scheduler ran; "
               "running the latest once (missed = run_once)" in line for line in lines), lines


@pytest.mark.parametrize("where", ["definition", "flag"])
def test_runs_missed_while_down_are_skipped_by_the_policy(tmp_path, where):
    specs = {"daily": spec("daily", "0 8 * * *", missed="skip" if where == "definition" else None)}
    seed_state(tmp_path / "state.json", at(FRI, 12))
    options = {"missed": "skip"} if where == "flag" else {}
    sched, runner, lines = make(specs, at(MON, 9), tmp=tmp_path, **options)
    assert sched.run(once=True) == 0
    assert runner.calls == []
    rec = state_jobs(tmp_path / "state.json")["daily@2026-03-30T08:00Z"]
    assert rec["status"] == "SKIPPED" and rec["reason"].startswith("missed while no scheduler ran (missed = skip)")


def test_a_run_due_within_the_grace_is_late_not_missed(tmp_path):
    seed_state(tmp_path / "state.json", at(FRI, 12))
    sched, runner, _ = make(DAILY, at(MON, 8, 4), tmp=tmp_path, missed="skip", grace=300)
    sched.run(once=True)
    assert runner.calls == [("daily", at(MON, 8, 4))]  # Monday 08:00 runs; Saturday and Sunday were skipped
    assert state_jobs(tmp_path / "state.json")["daily@2026-03-29T08:00Z"]["status"] == "SKIPPED"


def test_the_first_start_looks_for_nothing_before_it(tmp_path):
    sched, runner, lines = make(DAILY, at(MON, 9), tmp=tmp_path)
    assert sched.run(once=True) == 0
    assert runner.calls == [] and any("first start" in line for line in lines)
    assert any("idle     nothing is due now" in line for line in lines)


def test_a_job_whose_scheduler_disappeared_is_marked_failed_and_its_dependent_skipped(tmp_path):
    dead = subprocess.Popen(["true"])
    dead.wait()
    running = {"pipeline": "valuation", "due": at(FRI, 17).isoformat(), "date": "2026-03-27", "status": "RUNNING",
               "attempts": 1, "owner": "gone", "pid": dead.pid, "host": os.uname().nodename}
    seed_state(tmp_path / "state.json", at(FRI, 17, 0, 1), {"valuation@2026-03-27T17:00Z": running})
    sched, runner, lines = make(BOOK, at(FRI, 18), tmp=tmp_path)
    sched.run(once=True)
    jobs = state_jobs(tmp_path / "state.json")
    assert jobs["valuation@2026-03-27T17:00Z"]["status"] == "FAILED"
    assert jobs["valuation@2026-03-27T17:00Z"]["error"].startswith(f"process disappeared: scheduler process {dead.pid}")
    assert jobs["risk@2026-03-27T18:00Z"]["status"] == "SKIPPED" and runner.calls == []
    assert any(" stale " in line for line in lines)


def test_a_claim_whose_pid_now_belongs_to_another_process_is_dead(tmp_path):
    """A restarted container's PID 1, or a reboot, gives a dead scheduler's pid to a live process:
    the claim's recorded start time tells them apart (the job is not waited for forever)."""
    running = {"pipeline": "valuation", "due": at(FRI, 17).isoformat(), "date": "2026-03-27", "status": "RUNNING",
               "attempts": 1, "owner": "gone", "pid": os.getpid(), "pstart": 12345.0, "host": os.uname().nodename}
    seed_state(tmp_path / "state.json", at(FRI, 17, 0, 1), {"valuation@2026-03-27T17:00Z": running})
    sched, runner, lines = make(BOOK, at(FRI, 18), tmp=tmp_path)
    assert sched.run(once=True) == 0  # returns: nothing waits on the dead claim
    jobs = state_jobs(tmp_path / "state.json")
    assert jobs["valuation@2026-03-27T17:00Z"]["status"] == "FAILED"
    assert jobs["risk@2026-03-27T18:00Z"]["status"] == "SKIPPED" and runner.calls == []
    # this process's own claims, with its real start time, hold
    from qpo.workbench._schedule_state import my_start, pid_alive
    assert pid_alive(os.getpid(), os.uname().nodename, my_start())
    assert not pid_alive(os.getpid(), os.uname().nodename, 12345.0)


def test_a_job_waiting_to_retry_when_its_scheduler_stopped_is_retried_by_the_next(tmp_path):
    plan = {"valuation": [PipelineError("the store is locked"), "FINISHED"]}
    first, runner, _ = make(BOOK, at(FRI, 17), plan=plan, minutes={"valuation": 0}, tmp=tmp_path, backoff=60)
    seed_state(tmp_path / "state.json", at(FRI, 16, 59))
    first.run(until=at(FRI, 17, 0, 30))  # stopped during the backoff
    assert state_jobs(tmp_path / "state.json")["valuation@2026-03-27T17:00Z"]["status"] == "RETRY"
    second, runner2, lines = make(BOOK, at(FRI, 17, 5), plan=plan, minutes={"valuation": 0}, tmp=tmp_path)
    second.runner.plan = {"valuation": ["FINISHED"]}
    second.run(until=at(FRI, 18, 30))
    assert [c[0] for c in runner2.calls] == ["valuation", "risk"]
    jobs = state_jobs(tmp_path / "state.json")
    assert (jobs["valuation@2026-03-27T17:00Z"]["status"], jobs["valuation@2026-03-27T17:00Z"]["attempts"]) == \
        ("FINISHED", 2)
    assert jobs["risk@2026-03-27T18:00Z"]["status"] == "FINISHED"
    assert any("resumed  valuation 2026-03-27 17:00" in line for line in lines), lines


# -- the state file and the lock ---------------------------------------------------------------

def test_a_corrupt_state_file_is_named_with_how_to_recover(tmp_path):
    (tmp_path / "state.json").write_text("{not json")
    sched, _, _ = make(DAILY, at(MON, 9), tmp=tmp_path)
    with pytest.raises(CorruptFileError, match=r"state\.json cannot be read .*move it aside"):
        sched.run(once=True)


def test_two_schedulers_in_threads_run_each_job_exactly_once(tmp_path):
    specs = {f"p{i}": spec(f"p{i}", "0 18 * * *") for i in range(6)}
    calls: list[str] = []
    lock = threading.Lock()

    def runner(name):
        with lock:
            calls.append(name)
        time.sleep(0.05)
        return RunResult("FINISHED")

    seed_state(tmp_path / "state.json", at(FRI, 17, 59))
    scheds = [Scheduler(specs, clock=FakeClock(at(FRI, 17, 59, 30)), runner=runner, state_path=tmp_path / "state.json",
                        log=lambda line: None) for _ in range(2)]
    threads = [threading.Thread(target=s.run, kwargs={"until": at(FRI, 18, 5)}) for s in scheds]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert sorted(calls) == sorted(specs)
    assert {r["status"] for r in state_jobs(tmp_path / "state.json").values()} == {"FINISHED"}


RACER = """
import datetime as dt, os, sys, time
from pathlib import Path
from qpo.workbench.pipelines import PipelineSpec
from qpo.workbench.scheduler import RunResult, Scheduler
from tests.test_workbench.test_scheduler import FakeClock
out, state, go = Path(sys.argv[1]), Path(sys.argv[2]), float(sys.argv[3])
specs = {f"p{i}": PipelineSpec(name=f"p{i}", notebook=Path("x"), experiment="x", schedule="0 18 * * *",
         description="", data_source_parameter=None, data_start_parameter=None) for i in range(8)}
def runner(name):
    fd = os.open(out, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    os.write(fd, f"{name} {os.getpid()}\\n".encode())
    os.close(fd)
    time.sleep(0.02)
    return RunResult("FINISHED")
time.sleep(max(0.0, go - time.time()))
start = dt.datetime(2026, 3, 27, 17, 59, 50, tzinfo=dt.UTC)
s = Scheduler(specs, clock=FakeClock(start), runner=runner, state_path=state, log=lambda line: None)
sys.exit(s.run(until=start + dt.timedelta(minutes=2)))
"""


def test_two_scheduler_processes_racing_run_each_job_exactly_once(tmp_path):
    out, state = tmp_path / "calls.txt", tmp_path / "state.json"
    seed_state(state, dt.datetime(2026, 3, 27, 17, 59, 40, tzinfo=UTC))
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    go = time.time() + 8  # both import first, then start together
    procs = [subprocess.Popen([sys.executable, "-c", RACER, str(out), str(state), str(go)], env=env, cwd=ROOT,
                              stderr=subprocess.PIPE, text=True) for _ in range(3)]
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err[-2000:]
    lines = out.read_text().splitlines()
    names = [line.split()[0] for line in lines]
    assert sorted(names) == [f"p{i}" for i in range(8)], lines  # each job once, whoever ran it
    assert {r["status"] for r in state_jobs(state).values()} == {"FINISHED"}
    assert not list(tmp_path.glob(".state-*"))  # atomic writes leave no temporary file


# -- show and crontab --------------------------------------------------------------------------

def test_show_gives_each_pipelines_next_run_and_last_run(tmp_path):
    sched, _, _ = make(BOOK, at(FRI, 16, 59), tmp=tmp_path)
    sched.run(until=at(FRI, 18, 30))
    rows = schedule_table(BOOK, now=at(FRI, 18, 30), state_path=tmp_path / "state.json")
    by = {r["pipeline"]: r for r in rows}
    assert by["valuation"]["next_run"] == "2026-03-30T17:00:00+00:00"  # Monday: weekdays only
    assert by["risk"]["next_run"] == "2026-03-30T18:00:00+00:00"
    assert (by["risk"]["after"], by["risk"]["last_status"]) == ("valuation", "FINISHED")
    assert by["risk"]["last_due"] == at(FRI, 18).isoformat()


def test_crontab_prints_each_schedule_and_says_what_cron_does_not_do(monkeypatch):
    monkeypatch.setenv("QPO_SCHEDULE_TZ", "Europe/Zurich")
    text = crontab_text(BOOK, tz_name="Europe/Zurich")
    lines = text.splitlines()
    assert "CRON_TZ=Europe/Zurich" in lines
    val = [line for line in lines if line.startswith("0 17 * * 1-5  ")]
    risk = [line for line in lines if line.startswith("0 18 * * 1-5  ")]
    assert len(val) == 1 and "pipeline run valuation --json >> " in val[0] and val[0].endswith("cron.log 2>&1")
    assert len(risk) == 1 and "pipeline run risk --json" in risk[0]
    assert "# risk runs after valuation under `qpo schedule run`" in text


# -- the command, end to end -------------------------------------------------------------------

DRIVER = ("import argparse, sys\nfrom qpo.cli import schedule\np = argparse.ArgumentParser(prog='qpo')\n"
          "schedule.register(p.add_subparsers(dest='command'))\na = p.parse_args(sys.argv[1:])\nsys.exit(a.func(a))\n")


def test_schedule_run_once_runs_a_real_missed_pipeline(qpo_home, tmp_path):
    from tests.reliability.tiny_project import make_project, project_env

    root = make_project(tmp_path / "project")
    env = project_env(root, QPO_SCHEDULE_TZ="UTC")
    state = qpo_home / "schedule" / "state.json"
    seed_state(state, dt.datetime.now(UTC) - dt.timedelta(days=2))  # the scheduler was down: tiny (00:00) missed
    proc = subprocess.run([sys.executable, "-c", DRIVER, "schedule", "run", "--once"], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    jobs = state_jobs(state)
    assert len(jobs) == 1
    (rec,) = jobs.values()
    assert rec["status"] == "FINISHED" and rec["missed"] and len(rec["run_id"]) == 32
    due = dt.datetime.fromisoformat(rec["due"])
    assert due.strftime("%H:%M") == "00:00" and dt.datetime.now(UTC) - due < dt.timedelta(days=1)
    assert "running the latest once (missed = run_once)" in proc.stderr or due > dt.datetime.now(UTC) - dt.timedelta(minutes=6)
    assert f"finished tiny {due:%Y-%m-%d} 00:00 FINISHED in " in proc.stderr, proc.stderr[-3000:]
    assert list((qpo_home / "runs" / "tiny").glob("*/report.html"))
    show = subprocess.run([sys.executable, "-c", DRIVER, "schedule", "show", "--json"], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    (row,) = json.loads(show.stdout)["pipelines"]
    assert row["pipeline"] == "tiny" and row["last_status"] == "FINISHED"
    assert row["next_run"].endswith("T00:00:00+00:00")


def test_sigterm_stops_the_running_pipeline_records_it_killed_and_exits_143(qpo_home, tmp_path):
    import signal

    from tests.reliability.tiny_project import PIPELINE, make_project, project_env

    root = make_project(tmp_path / "project")
    (root / "pipelines" / "tiny.toml").write_text(PIPELINE + "\n[parameters]\nseconds = 300\n")
    env = project_env(root, QPO_SCHEDULE_TZ="UTC")
    state = qpo_home / "schedule" / "state.json"
    seed_state(state, dt.datetime.now(UTC) - dt.timedelta(days=2))
    proc = subprocess.Popen([sys.executable, "-c", DRIVER, "schedule", "run", "--once"], env=env, cwd=ROOT,
                            stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 240
        while time.time() < deadline:  # until the notebook's work cell runs
            assert proc.poll() is None, proc.communicate()[1][-3000:]
            notebooks = list((qpo_home / "runs").glob("tiny/*/notebook.ipynb"))
            if notebooks and '"running"' in notebooks[0].read_text():
                break
            time.sleep(0.3)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 143, err[-3000:]
    (rec,) = state_jobs(state).values()
    assert (rec["status"], rec["error"]) == ("KILLED", "interrupted by SIGTERM") and rec["run_id"]
    assert "SIGTERM received: stopping" in err and " KILLED in " in err and "Traceback" not in err


def test_a_dependent_runs_as_of_the_date_its_upstream_ran_as_of(tmp_path):
    """The 17:00 valuation on its own day values the newest priced date (Thursday's, Friday's bars not
    in yet); a risk run after midnight was given Friday's date and failed, "no valuation of" Friday."""
    clock = FakeClock(at(FRI, 16, 59))
    calls: list[tuple[str, dict]] = []

    def runner(name: str, params: dict | None = None) -> RunResult:
        calls.append((name, dict(params or {})))
        clock.advance(dt.timedelta(hours=8) if name == "valuation" else dt.timedelta(minutes=1))  # past midnight
        return RunResult("FINISHED", run_id=f"run-{len(calls)}", as_of="2026-03-26" if name == "valuation" else None)

    sched = Scheduler(BOOK, clock=clock, runner=runner, state_path=tmp_path / "state.json", log=lambda m: None,
                      options=ScheduleOptions(poll=3600.0))
    sched._as_of = {"valuation": "as_of", "risk": "as_of"}  # both notebooks declare as_of
    sched.run(until=at(FRI + dt.timedelta(days=1), 1, 30))
    assert calls == [("valuation", {}), ("risk", {"as_of": "2026-03-26"})]
    assert state_jobs(tmp_path / "state.json")["valuation@2026-03-27T17:00Z"]["ran_as_of"] == "2026-03-26"


def test_a_dependent_whose_scheduler_died_is_decided_on_the_next_start(tmp_path):
    """Killed while Friday's valuation ran (after it had looked past Friday 18:00), the scheduler
    left the valuation FAILED ("process disappeared") and no trace of Friday's risk run: it was
    neither run nor skipped, and no one was told."""
    failed = {"pipeline": "valuation", "due": "2026-03-27T17:00:00+00:00", "date": "2026-03-27", "status": "FAILED",
              "attempts": 1, "owner": "gone", "pid": 1, "host": "h", "started": "2026-03-27T17:00:00+00:00",
              "ended": "2026-03-27T19:00:00+00:00", "next_attempt": None, "run_id": None,
              "error": "process disappeared", "reason": None, "missed": False}
    seed_state(tmp_path / "state.json", at(FRI, 19), {"valuation@2026-03-27T17:00Z": failed})
    state = json.loads((tmp_path / "state.json").read_text())
    state["pending"] = {"gone": [{"pipeline": "risk", "due": "2026-03-27T18:00:00+00:00", "missed": True}]}
    (tmp_path / "state.json").write_text(json.dumps(state))  # what the dead scheduler had not decided yet
    sched, runner, lines = make(BOOK, at(FRI, 19, 30), tmp=tmp_path)
    assert sched.run(once=True) == 0
    assert runner.calls == []  # nothing to run: the risk run it waited for failed
    risk = state_jobs(tmp_path / "state.json")["risk@2026-03-27T18:00Z"]
    assert risk["status"] == "SKIPPED", risk
    assert "valuation of 2026-03-27 (due 17:00) ended FAILED: process disappeared" in risk["reason"], risk
    assert any("resumed  risk 2026-03-27 18:00 was not decided yet when its scheduler stopped" in line
               for line in lines), lines
    assert "gone" not in json.loads((tmp_path / "state.json").read_text()).get("pending", {})


def test_a_scheduler_keeps_its_undecided_jobs_in_the_state(tmp_path):
    """So that a scheduler killed while Friday's valuation runs leaves Friday's risk run to the next."""
    seed_state(tmp_path / "state.json", at(FRI, 16, 59))
    sched, runner, _ = make(BOOK, at(FRI, 18, 30), tmp=tmp_path)
    sched.start()  # both missed (no scheduler ran since 16:59): valuation and risk pending, none run yet
    saved = json.loads((tmp_path / "state.json").read_text())["pending"][sched.id]
    assert sorted(i["pipeline"] for i in saved) == ["risk", "valuation"]


def test_a_first_start_runs_what_fell_due_within_the_grace(tmp_path):
    """With no state yet (a first start, or a damaged state moved aside), a run due 30 s before the
    start was neither run nor recorded, though a run due within the grace is late, not missed."""
    sched, runner, lines = make(BOOK, at(FRI, 17, 0, 30), tmp=tmp_path)
    assert sched.run(once=True) == 0
    assert runner.calls == [("valuation", at(FRI, 17, 0, 30))]
    sched, runner, _ = make(BOOK, at(FRI + dt.timedelta(days=3), 17, 10), tmp=tmp_path / "other")
    assert sched.run(once=True) == 0 and runner.calls == []  # 10 minutes: past the 5-minute grace, not looked for


@pytest.mark.parametrize(("expression", "days"), [("0 10 * * sat-sun", ["Sat", "Sun", "Sat"]),
                                                  ("0 10 * * 6-0", ["Sat", "Sun", "Sat"]),
                                                  ("0 10 * * mon-sun", ["Mon", "Tue", "Wed"])])
def test_sunday_closing_a_day_range_is_day_7(expression, days):
    from qpo.workbench._cron import check_cron, next_after

    tz, t, got = ZoneInfo("UTC"), dt.datetime(2026, 12, 7, tzinfo=ZoneInfo("UTC")), []
    expr = check_cron(expression)
    for _ in range(3):
        t = next_after(expr, t, tz)
        got.append(t.strftime("%a"))
    assert got == days
