"""The scheduler's operational duties (qpo.workbench.scheduler, qpo.workbench._schedule_runner):
a job's date reaches the notebook, a job that gives up sends a notice, a claim from another host
expires after its lease, a run killed by SIGKILL or past its whole-run limit is recorded FAILED at
once (real child processes, a real MLflow store, a real webhook server on 127.0.0.1), and
``qpo schedule run`` repairs runs left RUNNING by dead processes on start."""
from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import nbformat
import pytest

from qpo.errors import PipelineError
from qpo.workbench.pipelines import PipelineSpec
from qpo.workbench.scheduler import RunResult, ScheduleOptions, SubprocessRunner
from tests.conftest import ROOT
from tests.servers import webhook_server
from tests.test_workbench.test_scheduler import BOOK, DRIVER, FRI, FakeClock, at, make, seed_state, state_jobs

MON = FRI + dt.timedelta(days=3)


@pytest.fixture
def webhook(monkeypatch):
    """A real HTTP server on 127.0.0.1 recording each POST's JSON; QPO_ALERT_WEBHOOK points at it."""
    with webhook_server("/hook") as hook:
        for var in ("QPO_SMTP_HOST", "QPO_ALERT_RECIPIENTS"):
            monkeypatch.delenv(var, raising=False)
        monkeypatch.setenv("QPO_ALERT_WEBHOOK", hook.url)
        yield hook.bodies


def notebook_with(path: Path, parameters: str) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    cell = nbformat.v4.new_code_cell(parameters)
    cell.metadata["tags"] = ["parameters"]
    nb.cells = [cell, nbformat.v4.new_code_cell("print(1)")]
    nbformat.write(nb, str(path))
    return path


# -- the job's date ---------------------------------------------------------------------------------

class ParamRunner:
    def __init__(self, clock):
        self.clock, self.calls = clock, []

    def __call__(self, name, parameters=None):
        self.calls.append((name, dict(parameters or {}), self.clock.now()))
        return RunResult("FINISHED", run_id=f"r{len(self.calls)}")


def test_a_missed_job_gives_its_own_date_to_the_notebooks_as_of_parameter(tmp_path):
    from qpo.workbench.scheduler import Scheduler

    dated = notebook_with(tmp_path / "valuation.ipynb", 'as_of: "Optional[str]" = None  # the date valued')
    undated = notebook_with(tmp_path / "report.ipynb", "x: int = 1")
    specs = {"valuation": PipelineSpec(name="valuation", notebook=dated, experiment="v", schedule="0 17 * * 1-5",
                                       description="", data_source_parameter=None, data_start_parameter=None),
             "report": PipelineSpec(name="report", notebook=undated, experiment="r", schedule="0 17 * * 1-5",
                                    description="", data_source_parameter=None, data_start_parameter=None)}
    seed_state(tmp_path / "state.json", at(FRI, 16))  # down from Friday 16:00 to Monday 09:00
    clock = FakeClock(at(MON, 9))
    runner = ParamRunner(clock)
    sched = Scheduler(specs, clock=clock, runner=runner, state_path=tmp_path / "state.json", log=lambda line: None,
                      options=ScheduleOptions(poll=3600.0))
    assert sched.run(once=True) == 0
    calls = {name: params for name, params, _ in runner.calls}
    assert calls == {"valuation": {"as_of": "2026-03-27"}, "report": {}}  # Friday's run values Friday, not Monday
    assert all(when.date() == MON.date() for *_, when in runner.calls)
    # Monday's own 17:00 run is given no date: the newest prices (a holiday re-runs the last priced day)
    clock.t = at(MON, 17)
    runner.calls.clear()
    assert sched.run(once=True) == 0
    assert sorted((name, params) for name, params, _ in runner.calls) == [("report", {}), ("valuation", {})]


def test_the_subprocess_runner_passes_parameters_on_the_command_line(tmp_path):
    argv = tmp_path / "argv.json"
    script = tmp_path / "fake_qpo.py"
    script.write_text(f"import json, sys\njson.dump(sys.argv[1:], open({str(argv)!r}, 'w'))\n"
                      "print(json.dumps({'status': 'FINISHED', 'run_id': 'abc'}))\n")
    result = SubprocessRunner([sys.executable, str(script)], repair=False)("valuation", {"as_of": "2026-03-27"})
    assert (result.status, result.run_id) == ("FINISHED", "abc")
    assert json.loads(argv.read_text()) == ["pipeline", "run", "valuation", "-p", "as_of", "2026-03-27", "--json"]


# -- a job that gives up ------------------------------------------------------------------------------

def test_a_job_that_gives_up_sends_one_failed_run_notice(tmp_path, webhook):
    gone = PipelineError("the database is unreachable")
    sched, runner, lines = make(BOOK, at(FRI, 17), tmp=tmp_path, retries=1, backoff=60,
                                plan={"valuation": [gone, gone]})
    seed_state(tmp_path / "state.json", at(FRI, 16, 59))
    assert sched.run(until=at(FRI, 17, 30)) == 1
    assert [c[0] for c in runner.calls] == ["valuation", "valuation"]
    (post,) = webhook
    assert post["event"] == "run_failed"
    run = post["run"]
    assert (run["kind"], run["status"], run["as_of"]) == ("pipeline valuation", "ERROR", "2026-03-27")
    assert "could not start in 2 attempt(s): the database is unreachable" in run["error"]
    assert any(" notice " in line and "sent: webhook" in line for line in lines)


def test_refused_data_and_the_dependent_it_skips_each_send_a_notice(tmp_path, webhook):
    """Unattended, an INVALID_DATA valuation (no MLflow run, nobody else tells) and the risk run it
    skips reach the ops desk."""
    sched, runner, lines = make(BOOK, at(FRI, 16, 59), tmp=tmp_path,
                                plan={"valuation": [("INVALID_DATA", "prices: AAPL has a price of 0 on 2026-03-27")]})
    assert sched.run(until=at(FRI, 18, 30)) == 1
    assert [c[0] for c in runner.calls] == ["valuation"]
    assert [(p["run"]["kind"], p["run"]["status"]) for p in webhook] == [("pipeline valuation", "INVALID_DATA"),
                                                                          ("pipeline risk", "SKIPPED")]
    assert "AAPL has a price of 0" in webhook[0]["run"]["error"]
    assert "valuation of 2026-03-27 (due 17:00) ended INVALID_DATA" in webhook[1]["run"]["error"]


# -- claims from another host ---------------------------------------------------------------------------

def _claimed_elsewhere(started: dt.datetime) -> dict:
    return {"pipeline": "valuation", "due": at(FRI, 17).isoformat(), "date": "2026-03-27", "status": "RUNNING",
            "attempts": 1, "owner": "elsewhere", "pid": 4242, "host": "another-host.example",
            "started": started.isoformat()}


def test_a_claim_from_another_host_expires_after_its_lease(tmp_path):
    key = "valuation@2026-03-27T17:00Z"
    seed_state(tmp_path / "state.json", at(FRI, 17, 0, 1), {key: _claimed_elsewhere(at(FRI, 17))})
    sched, runner, lines = make(BOOK, at(FRI, 18, 10), tmp=tmp_path, run_timeout=3600, lease_margin=900, poll=60)
    assert sched.lease() == dt.timedelta(seconds=4500)
    sched.run(until=at(FRI, 18, 14))  # 1 h 14 min after the claim: within the lease, left to its owner
    jobs = state_jobs(tmp_path / "state.json")
    assert jobs[key]["status"] == "RUNNING" and runner.calls == []
    assert "risk@2026-03-27T18:00Z" not in jobs  # the dependent waits
    assert any("waiting  risk 2026-03-27 18:00 valuation of 2026-03-27" in line for line in lines)

    sched.run(until=at(FRI, 18, 20))  # the lease (1 h 15 min) runs out at 18:15
    jobs = state_jobs(tmp_path / "state.json")
    assert jobs[key]["status"] == "FAILED"
    assert jobs[key]["error"].startswith("claim expired: scheduler process 4242 on host another-host.example")
    assert "4500 s" in jobs[key]["error"]
    assert jobs["risk@2026-03-27T18:00Z"]["status"] == "SKIPPED" and runner.calls == []
    (stale,) = [line for line in lines if " stale " in line]
    assert stale.startswith("2026-03-27 18:15:") or stale.startswith("2026-03-27 18:16:")


def test_without_a_run_limit_a_claim_from_another_host_holds(tmp_path):
    key = "valuation@2026-03-27T17:00Z"
    seed_state(tmp_path / "state.json", at(FRI, 17, 0, 1), {key: _claimed_elsewhere(at(FRI, 17) - dt.timedelta(days=2))})
    sched, runner, _ = make(BOOK, at(FRI, 18, 30), tmp=tmp_path, run_timeout=None)
    assert sched.lease() is None
    sched.run(until=at(FRI, 18, 40))
    assert state_jobs(tmp_path / "state.json")[key]["status"] == "RUNNING"


# -- runs killed or hung: real child processes and a real MLflow store -----------------------------------

FAKE_RUN = """
import os, signal, subprocess, sys, time
from mlflow.tracking import MlflowClient
from qpo.tracking import configure
from qpo.workbench.run_control import run_owner_tags
client = MlflowClient(configure())
experiment = client.get_experiment_by_name("fake") or None
eid = experiment.experiment_id if experiment else client.create_experiment("fake")
run = client.create_run(eid, tags={"qpo.pipeline": sys.argv[3], **run_owner_tags()})
open(os.environ["FAKE_RUN_ID"], "w").write(run.info.run_id)
if os.environ.get("FAKE_MODE") == "oom":
    os.kill(os.getpid(), signal.SIGKILL)
child = subprocess.Popen(["sleep", "600"])
open(os.environ["FAKE_RUN_ID"] + ".child", "w").write(str(child.pid))
signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a hung run that ignores SIGTERM: killed after the grace
time.sleep(600)
"""


def _fake(tmp_path, mode: str) -> tuple[list[str], Path]:
    script = tmp_path / "fake_run.py"
    script.write_text(textwrap.dedent(FAKE_RUN))
    os.environ["FAKE_MODE"], os.environ["FAKE_RUN_ID"] = mode, str(tmp_path / "run_id")
    os.environ["PYTHONPATH"] = str(ROOT)
    return [sys.executable, str(script)], tmp_path / "run_id"


@pytest.fixture
def fake_env(monkeypatch):
    for var in ("FAKE_MODE", "FAKE_RUN_ID", "PYTHONPATH"):
        monkeypatch.setenv(var, os.environ.get(var, ""))


def _run(run_id: str):
    from mlflow.tracking import MlflowClient

    from qpo.tracking import configure

    return MlflowClient(configure()).get_run(run_id)


def test_a_run_killed_by_sigkill_is_repaired_at_once_with_a_notice(tmp_path, qpo_home, fake_env, webhook):
    command, id_file = _fake(tmp_path, "oom")
    result = SubprocessRunner(command)("valuation")
    run_id = id_file.read_text()
    assert (result.status, result.run_id) == ("FAILED", run_id)
    assert result.error == "the run's process was killed by SIGKILL (out of memory?)"
    run = _run(run_id)
    assert run.info.status == "FAILED" and run.data.tags["qpo.failure"] == "process disappeared"
    (post,) = webhook
    assert post["run"]["id"] == run_id and post["run"]["kind"] == "pipeline valuation"


def test_a_run_past_its_whole_run_limit_is_killed_and_failed(tmp_path, qpo_home, fake_env, webhook):
    command, id_file = _fake(tmp_path, "hang")
    runner = SubprocessRunner(command, timeout=20, stop_grace=2)  # time for the fake to import mlflow, loaded
    t0 = time.monotonic()
    result = runner("valuation")
    took = time.monotonic() - t0
    run_id = id_file.read_text()
    assert result.status == "FAILED" and result.run_id == run_id
    assert result.error.startswith("timed out: the run took longer than 20 s")
    assert 20 <= took < 150
    run = _run(run_id)
    assert run.info.status == "FAILED" and run.data.tags["qpo.failure"] == "timed out"
    assert run.data.tags["error"] == result.error
    grandchild = int(Path(str(id_file) + ".child").read_text())
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and Path(f"/proc/{grandchild}").exists() and "Z" not in \
            Path(f"/proc/{grandchild}/stat").read_text().split(")")[1][:3]:
        time.sleep(0.2)
    stat = Path(f"/proc/{grandchild}/stat")
    assert not stat.exists() or stat.read_text().split(")")[1].split()[0] == "Z"  # the process group was killed
    (post,) = webhook
    assert post["run"]["id"] == run_id and post["run"]["error"] == result.error


def test_schedule_run_repairs_runs_of_dead_processes_on_start(tmp_path, qpo_home):
    from mlflow.tracking import MlflowClient

    from qpo.tracking import configure
    from tests.reliability.tiny_project import make_project, project_env

    dead = subprocess.Popen(["true"])
    dead.wait()
    client = MlflowClient(configure())
    eid = client.create_experiment("tiny")
    orphan = client.create_run(eid, tags={"qpo.pipeline": "tiny", "qpo.pid": str(dead.pid),
                                          "qpo.host": os.uname().nodename}).info.run_id
    alive = client.create_run(eid, tags={"qpo.pipeline": "tiny", "qpo.pid": str(os.getpid()),
                                         "qpo.host": os.uname().nodename}).info.run_id
    env = project_env(make_project(tmp_path / "project"), QPO_SCHEDULE_TZ="UTC")
    proc = subprocess.run([sys.executable, "-c", DRIVER, "schedule", "run", "--once"], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=300)  # first start: nothing due, only the repair
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert client.get_run(orphan).info.status == "FAILED"
    assert client.get_run(orphan).data.tags["qpo.failure"] == "process disappeared"
    assert client.get_run(alive).info.status == "RUNNING"
    assert f"run {orphan} of pipeline tiny marked FAILED" in proc.stderr
    assert "1 run(s) whose process disappeared marked FAILED" in proc.stderr


# -- the crontab and the shipped definitions -----------------------------------------------------------

def test_crontab_lines_carry_where_runs_go_and_never_a_password(monkeypatch, tmp_path):
    from qpo.workbench.scheduler import crontab_text

    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow.internal:5000")
    monkeypatch.setenv("QPO_RUNS_DIR", str(tmp_path / "runs dir"))
    monkeypatch.setenv("QPO_DASK_SCHEDULER", "tcp://10.0.0.5:8786")
    monkeypatch.setenv("QPO_DATABASE_URL", "postgresql+psycopg://qpo:Sup3r-s3cret@db.internal:5432/qpo")
    text = crontab_text(BOOK)
    (val,) = [line for line in text.splitlines() if line.startswith("0 17 * * 1-5  ")]
    assert "MLFLOW_TRACKING_URI=http://mlflow.internal:5000 " in val
    assert f"QPO_RUNS_DIR='{tmp_path / 'runs dir'}' " in val and "QPO_DASK_SCHEDULER=tcp://10.0.0.5:8786 " in val
    assert "Sup3r-s3cret" not in text and "QPO_DATABASE_URL=postgresql" not in text
    assert "# QPO_DATABASE_URL is set here but holds a password: not written" in text
    assert "two schedulers sharing one QPO_HOME" in text and "two machines" not in text

    monkeypatch.setenv("QPO_DATABASE_URL", "postgresql+psycopg://qpo@db.internal:5432/qpo")  # no password: carried
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "postgresql://ml:T0ken-pw@db.internal/mlflow")
    text = crontab_text(BOOK)
    assert "QPO_DATABASE_URL=postgresql+psycopg://qpo@db.internal:5432/qpo " in text
    assert "T0ken-pw" not in text and "# MLFLOW_TRACKING_URI is set here but holds a password" in text

    # a password with a bare "/", "?" or "#" (SQLAlchemy reads it as the password; urllib as the path)
    for password in ("ab/cd", "x?y=1", "p#q"):
        monkeypatch.setenv("QPO_DATABASE_URL", f"postgresql+psycopg://qpo:{password}@db.internal:5432/qpo")
        text = crontab_text(BOOK)
        assert password not in text and "QPO_DATABASE_URL=postgresql" not in text, password


def test_the_shipped_pipelines_limit_a_cell_and_a_run():
    from qpo.workbench.pipelines import available_pipelines, load_spec

    limits = {name: load_spec(name).execution_timeout for name in available_pipelines()}
    assert limits and all(v is not None and 600 <= v <= 3600 for v in limits.values()), limits
    assert limits["valuation"] == limits["risk"] == 1800
    assert ScheduleOptions().run_timeout >= max(limits.values())


def test_a_bad_definition_is_refused_loudly_and_the_others_still_run(tmp_path, monkeypatch, webhook):
    from qpo.workbench.scheduler import Scheduler
    from tests.reliability.tiny_project import PIPELINE, make_project

    root = make_project(tmp_path / "project")
    (root / "pipelines" / "bad.toml").write_text(PIPELINE.replace('"0 0 * * *"', '"61 18 * * 1-5"'))
    (root / "pipelines" / "waits.toml").write_text(PIPELINE + 'after = "bad"\n')
    # a broken definition that is never scheduled (an ad-hoc pipeline) is not the scheduler's to report
    (root / "pipelines" / "adhoc.toml").write_text("\n".join(
        line for line in PIPELINE.replace("tiny.ipynb", "missing.ipynb").splitlines() if not line.startswith("schedule")))
    monkeypatch.setenv("QPO_PROJECT_ROOT", str(root))
    seed_state(tmp_path / "state.json", at(FRI, 23, 59))
    clock = FakeClock(at(FRI + dt.timedelta(days=1), 0, 1))
    runner = ParamRunner(clock)
    lines: list[str] = []
    sched = Scheduler(clock=clock, runner=runner, state_path=tmp_path / "state.json", log=lines.append,
                      options=ScheduleOptions(poll=3600.0))
    assert sorted(sched.specs) == ["tiny"] and sorted(sched.refused) == ["bad", "waits"]
    assert sched.run(once=True) == 1  # tiny ran; the refusal makes the exit status 1
    assert [name for name, *_ in runner.calls] == ["tiny"]
    (bad,) = [line for line in lines if "REFUSED" in line and "pipeline bad " in line]
    assert "pipelines/bad.toml: schedule '61 18 * * 1-5' is not a valid cron expression" in bad
    assert "out of range (valid: 0-59)" in bad
    (waits,) = [line for line in lines if "REFUSED" in line and "pipeline waits " in line]
    assert "after = 'bad', whose definition was refused" in waits
    assert sorted(p["run"]["kind"] for p in webhook) == ["pipeline bad", "pipeline waits"]
    assert all(p["run"]["status"] == "ERROR" and p["run"]["error"].startswith("not scheduled: ") for p in webhook)
