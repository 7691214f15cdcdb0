"""Every failure is loud and kept: a kernel that dies (SIGKILL, as the out-of-memory killer sends)
and a cell past the pipeline's ``execution_timeout`` end the run FAILED in MLflow with the reason,
keep the partial notebook, exit non-zero and send a failed-run notice (a real SMTP server and a real
webhook on 127.0.0.1); a ``qpo pipeline run`` killed with SIGKILL leaves a RUNNING run that
``qpo pipeline runs --repair`` marks FAILED ("process disappeared"); and a read-only runs folder or a
disk with too little free space is refused before anything is written (exit 3)."""
from __future__ import annotations

import ctypes
import email
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from email import policy
from pathlib import Path

import nbformat
import psutil
import pytest

from tests.conftest import ROOT, database_urls
from tests.reliability.tiny_project import make_project, project_env, start_cli
from tests.servers import free_port, webhook_server
from tests.test_store.book_stores import fresh_store_url

DIE = """import os, signal
os.kill(os.getpid(), signal.SIGKILL)  # what the out-of-memory killer does"""
RECORD = """from IPython.display import display
display({"application/vnd.qpo.record+json": {"name": "%s", "value": 1}, "text/plain": "%s"}, raw=True)"""


def make_failing_project(root: Path) -> Path:
    """The tiny project plus ``die`` (its third cell kills its own kernel) and ``slow`` (the tiny
    notebook sleeping 120 s under ``execution_timeout = 3``)."""
    make_project(root)
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    params = nbformat.v4.new_code_cell('label: str = "a"\nrun_id: "Optional[str]" = None')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell(RECORD % ("started", "started")), nbformat.v4.new_code_cell(DIE),
                nbformat.v4.new_code_cell(RECORD % ("after", "after"))]
    nbformat.write(nb, str(root / "notebooks" / "die.ipynb"))
    (root / "pipelines" / "die.toml").write_text('notebook = "notebooks/die.ipynb"\nexperiment = "failures"\n')
    (root / "pipelines" / "slow.toml").write_text('notebook = "notebooks/tiny.ipynb"\nexperiment = "failures"\n'
                                                  'execution_timeout = 3\n\n[parameters]\nseconds = 120\n')
    return root


@pytest.fixture
def project(tmp_path, monkeypatch):
    root = make_failing_project(tmp_path / "project")
    monkeypatch.setenv("QPO_PROJECT_ROOT", str(root))
    for var in ("QPO_SMTP_HOST", "QPO_ALERT_WEBHOOK", "QPO_ALERT_RECIPIENTS", "QPO_MIN_FREE_MB"):
        monkeypatch.delenv(var, raising=False)
    return root


class Received:
    def __init__(self):
        self.posts: list[dict] = []
        self.mails: list = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        self.mails.append((list(envelope.rcpt_tos), email.message_from_bytes(envelope.content, policy=policy.default)))
        return "250 OK"


@pytest.fixture
def channels():
    """A real SMTP server (aiosmtpd) and a real webhook (http.server) on 127.0.0.1; yields what they
    received and the environment that points qpo's delivery at them."""
    pytest.importorskip("aiosmtpd", reason="aiosmtpd is in the test extra: pip install -e .[test]")
    from aiosmtpd.controller import Controller

    got = Received()
    smtp_port = free_port()
    controller = Controller(got, hostname="127.0.0.1", port=smtp_port, ready_timeout=30)
    controller.start()
    try:
        with webhook_server() as hook:
            got.posts = hook.bodies
            yield got, {"QPO_SMTP_HOST": "127.0.0.1", "QPO_SMTP_PORT": str(smtp_port),
                        "QPO_ALERT_RECIPIENTS": "ops@desk.test", "QPO_ALERT_WEBHOOK": hook.url}
    finally:
        controller.stop()


def _mlflow():
    import mlflow

    from qpo.tracking import configure

    configure()
    return mlflow


def _artifacts(run_id: str) -> set[str]:
    return {f.path for f in _mlflow().MlflowClient().list_artifacts(run_id)}


def _cli(env, *args, timeout=600):
    return subprocess.run([sys.executable, "-m", "qpo.cli", *args], env=env, cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout)


def _last_json(text: str) -> dict:
    return json.loads(text.strip().splitlines()[-1])


def test_a_dead_kernel_fails_the_run_keeps_the_notebook_and_sends_a_notice(project, qpo_home, channels):
    got, delivery = channels
    proc = _cli(project_env(project, **delivery), "pipeline", "run", "die", "--json")
    assert proc.returncode == 1, proc.stderr[-3000:]  # FAILED: non-zero
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    line = _last_json(proc.stdout)
    reason = "kernel died in cell 4 (killed by SIGKILL: out of memory, or killed)"  # 4: after papermill's parameters
    assert line["status"] == "FAILED" and line["failure"] == reason
    assert line["error"] == f"{reason}; the partial notebook is kept: {line['notebook']}"

    nb = nbformat.read(line["notebook"], as_version=4)  # kept, with what ran
    texts = ["".join(o.get("text", "") + o.get("data", {}).get("text/plain", "") for o in c.get("outputs", []))
             for c in nb.cells]
    assert texts[2] == "started" and texts[4] == ""  # the cell before ran; the one after never did
    (error,) = nb.cells[3].outputs
    assert error.output_type == "error" and error.ename == "DeadKernelError" and error.evalue == reason
    assert nb.cells[3].metadata.papermill.status == "failed" and nb.metadata.papermill.exception is True

    run = _mlflow().get_run(line["run_id"])
    assert run.info.status == "FAILED"
    assert run.data.tags["qpo.failure"] == reason and run.data.tags["error"] == line["error"]
    assert run.data.tags["qpo.pid"].isdigit() and run.data.tags["qpo.host"] == socket.gethostname()
    assert {"notebook.ipynb", "report.html", "error.txt"} <= _artifacts(line["run_id"])
    assert run.data.tags["qpo.notice"] == "sent: email, webhook"

    (post,) = got.posts
    assert post["event"] == "run_failed"
    assert post["run"]["id"] == line["run_id"] and post["run"]["kind"] == "pipeline die"
    assert post["run"]["status"] == "FAILED" and post["run"]["error"] == line["error"]
    ((rcpt, mail),) = got.mails
    assert rcpt == ["ops@desk.test"] and "FAILED" in mail["Subject"] and line["run_id"] in mail["Subject"]
    assert reason in mail.get_content()
    assert line["notice"]["errors"] == [] and [s["channel"] for s in line["notice"]["sent"]] == ["email", "webhook"]


def test_a_cell_past_its_execution_timeout_fails_the_run(project, qpo_home):
    from qpo.workbench.pipelines import run_pipeline

    t0 = time.perf_counter()
    run = run_pipeline("slow")
    seconds = time.perf_counter() - t0
    print(f"\nexecution_timeout 3 s on a 120 s cell: FAILED after {seconds:.1f} s")
    assert run.status == "FAILED" and run.failure == "cell timed out after 3 s in cell 3"
    assert seconds < 100  # it did not wait for the cell
    assert run.notice is None  # no delivery channel configured: nothing sent, nothing failed
    nb = nbformat.read(run.notebook, as_version=4)
    recorded = [o["data"]["application/vnd.qpo.record+json"]["name"] for o in nb.cells[2].outputs
                if "application/vnd.qpo.record+json" in o.get("data", {})]
    assert recorded == ["started"]  # what ran is kept; "slept" never came
    assert nb.cells[2].outputs[-1].ename == "CellTimeoutError"
    mlrun = _mlflow().get_run(run.run_id)
    assert mlrun.info.status == "FAILED" and mlrun.data.tags["qpo.failure"] == run.failure
    assert mlrun.data.params["seconds"] == "120"
    assert "notebook.ipynb" in _artifacts(run.run_id)
    time.sleep(0.5)
    kernels = [p for p in psutil.Process().children(recursive=True) if "ipykernel" in " ".join(p.cmdline())]
    assert kernels == [], "the timed-out kernel outlived the run"


@pytest.mark.parametrize(("value", "ok"), [(5, True), (0, False), (2.5, False), ("'10'", False), ("true", False)])
def test_execution_timeout_must_be_whole_seconds(project, value, ok):
    from qpo.errors import PipelineError
    from qpo.workbench.pipelines import load_spec

    (project / "pipelines" / "t.toml").write_text(f'notebook = "notebooks/tiny.ipynb"\nexecution_timeout = {value}\n')
    if ok:
        assert load_spec("t").execution_timeout == value
        assert load_spec("tiny").execution_timeout is None  # none by default: no limit
    else:
        with pytest.raises(PipelineError, match="execution_timeout must be a whole number of seconds, 1 or more"):
            load_spec("t")


def _wait_for_running_cell(proc, home, timeout=300) -> Path:
    deadline = time.time() + timeout
    while time.time() < deadline:
        assert proc.poll() is None, proc.communicate()
        notebooks = list((home / "runs").glob("tiny/*/notebook.ipynb"))
        if notebooks and '"running"' in notebooks[0].read_text():
            return notebooks[0]
        time.sleep(0.3)
    pytest.fail("the notebook did not start in time")


def test_a_sigkilled_run_is_repaired_to_failed(project, qpo_home, channels):
    got, delivery = channels
    env = project_env(project, QPO_ALERT_WEBHOOK=delivery["QPO_ALERT_WEBHOOK"])
    proc = start_cli(env, "pipeline", "run", "tiny", "-p", "seconds", "300", "--json")
    kernels: list[psutil.Process] = []
    try:
        notebook = _wait_for_running_cell(proc, qpo_home)
        kernels = psutil.Process(proc.pid).children(recursive=True)
        proc.kill()  # SIGKILL: no handler runs, the MLflow run stays RUNNING
        proc.communicate(timeout=60)
        deadline = time.time() + 60  # the orphaned kernel sees its parent gone and exits
        while time.time() < deadline and any(k.is_running() and k.status() != psutil.STATUS_ZOMBIE for k in kernels):
            time.sleep(0.5)
        assert not any(k.is_running() and k.status() != psutil.STATUS_ZOMBIE for k in kernels), "kernel outlived qpo"

        listed = _cli(env, "pipeline", "runs")
        assert listed.returncode == 0, listed.stderr[-3000:]
        assert "RUNNING (gone)" in listed.stdout and "qpo pipeline runs --repair" in listed.stdout
        proc2 = _cli(env, "pipeline", "runs", "--repair", "--json")
    finally:
        for k in kernels:
            if k.is_running():
                k.kill()
    assert proc2.returncode == 0, proc2.stderr[-3000:]
    out = _last_json(proc2.stdout)
    (repaired,) = out["repaired"]
    (row,) = out["runs"]
    assert row["run_id"] == repaired["run_id"] and row["status"] == "FAILED" and row["reason"] == "process disappeared"
    assert repaired["pid"] == proc.pid and repaired["host"] == socket.gethostname()

    run = _mlflow().get_run(row["run_id"])
    assert run.info.status == "FAILED" and run.info.end_time is not None
    assert run.data.tags["qpo.failure"] == "process disappeared"
    assert f"process {proc.pid} on {socket.gethostname()} ended without ending its run" in run.data.tags["error"]
    assert "notebook.ipynb" in _artifacts(row["run_id"]) and notebook.exists()  # the partial notebook is kept
    (post,) = got.posts
    assert post["run"]["id"] == row["run_id"] and post["run"]["error"].startswith("process disappeared")
    again = _cli(env, "pipeline", "runs", "--repair", "--json")  # nothing left to repair
    assert _last_json(again.stdout)["repaired"] == []


@pytest.mark.parametrize("kind", database_urls())
def test_repair_leaves_live_runs_other_hosts_and_unknown_owners_alone(project, qpo_home, tmp_path, monkeypatch, kind):
    """The owner check itself: a live process, a dead one, a reused pid, another host, no owner;
    with MLflow's metadata in SQLite and in the real PostgreSQL (a private schema)."""
    from qpo.workbench.run_control import owner_state, pipeline_runs, repair_orphaned_runs, run_owner_tags

    with fresh_store_url(kind, tmp_path) as url:
        monkeypatch.setenv("MLFLOW_TRACKING_URI", url)
        try:
            _check_repair(owner_state, pipeline_runs, repair_orphaned_runs, run_owner_tags)
        finally:
            import mlflow

            mlflow.set_tracking_uri(None)
            _dispose_mlflow_engines(url)


def _dispose_mlflow_engines(url: str) -> None:
    """MLflow keeps an engine per store URI: close the PostgreSQL one before its schema is dropped."""
    from mlflow.tracking._tracking_service.utils import _get_store

    from qpo.tracking import mlflow_run

    mlflow_run._READY.discard(url)
    engine = getattr(_get_store(url), "engine", None)  # the cached store of this URI
    if engine is not None:
        engine.dispose()


def _check_repair(owner_state, pipeline_runs, repair_orphaned_runs, run_owner_tags):
    mlflow = _mlflow()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    me = run_owner_tags()
    owners = {"live": me, "dead": {**me, "qpo.pid": str(dead.pid)},
              "reused": {**me, "qpo.pid_started": "1"},  # this pid, but a process started at another time
              "elsewhere": {**me, "qpo.pid": str(dead.pid), "qpo.host": "another-host.invalid"}, "unknown": {}}
    exp = mlflow.create_experiment("owners")
    client = mlflow.MlflowClient()
    ids = {}
    for name, tags in owners.items():
        ids[name] = client.create_run(exp, tags={"qpo.pipeline": name, **tags}).info.run_id
    client.create_run(exp, tags={"other": "not a pipeline run"})  # not ours: never listed nor touched
    states = {r["pipeline"]: r["process"] for r in pipeline_runs()}
    assert states == {"live": "alive", "dead": "gone", "reused": "gone", "elsewhere": "elsewhere", "unknown": "unknown"}
    assert owner_state(me) == "alive"
    repaired = repair_orphaned_runs(notify=False)
    assert sorted(r["pipeline"] for r in repaired) == ["dead", "reused"]
    status = {name: client.get_run(run_id).info.status for name, run_id in ids.items()}
    assert status == {"live": "RUNNING", "dead": "FAILED", "reused": "FAILED", "elsewhere": "RUNNING",
                      "unknown": "RUNNING"}


def _drop_root_override():
    """In the child, before exec: drop CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH from the bounding
    set, so that root, too, is refused a folder without write permission."""
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (1, 2):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH
        if libc.prctl(24, cap, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP) refused")


def test_a_read_only_runs_folder_is_refused_before_anything_is_written(project, qpo_home, tmp_path):
    runs = tmp_path / "runs"
    runs.mkdir()
    runs.chmod(0o555)
    env = project_env(project, QPO_RUNS_DIR=str(runs))
    try:
        cmd = [sys.executable, "-m", "qpo.cli", "pipeline", "run", "tiny", "--json"]
        try:
            proc = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=600,
                                  preexec_fn=_drop_root_override if os.geteuid() == 0 else None)
        except subprocess.SubprocessError as exc:
            pytest.skip(f"running as root without the right to drop CAP_DAC_OVERRIDE, which ignores chmod: {exc}")
        assert proc.returncode == 3, proc.stderr[-3000:]  # could not start
        assert "Traceback" not in proc.stderr
        line = _last_json(proc.stdout)
        assert line["status"] == "ERROR"
        assert line["error"].startswith(f"the runs folder {runs} is not writable (Permission denied)")
        assert "QPO_RUNS_DIR" in line["error"] and "nothing was written" in line["error"]
        assert f"qpo: error: the runs folder {runs} is not writable" in proc.stderr
        assert list(runs.iterdir()) == [] and sorted(p.name for p in qpo_home.iterdir()) == []  # no mlflow.db, no runs
    finally:
        runs.chmod(0o755)


def test_a_full_disk_or_a_file_in_the_way_is_refused(project, qpo_home, tmp_path, monkeypatch):
    from qpo.errors import InvalidValueError
    from qpo.workbench.pipelines import run_pipeline
    from qpo.workbench.run_control import RunsFolderError

    free_mb = shutil.disk_usage(qpo_home).free / 2**20
    need = int(free_mb) + 1000  # this disk, had it this much less space: "full" for a run
    monkeypatch.setenv("QPO_MIN_FREE_MB", str(need))
    with pytest.raises(RunsFolderError) as err:
        run_pipeline("tiny")
    text = str(err.value)
    assert text.startswith(f"the disk of the runs folder {qpo_home / 'runs'} has ")
    shown = float(text.split(" has ")[1].split(" MB free")[0])
    assert abs(shown - free_mb) < 200  # the real free space, in MB
    assert f"a run needs at least {need} MB (QPO_MIN_FREE_MB)" in text
    assert sorted(p.name for p in qpo_home.iterdir()) == []

    monkeypatch.setenv("QPO_MIN_FREE_MB", "lots")
    with pytest.raises(InvalidValueError, match="QPO_MIN_FREE_MB must be a whole number of megabytes"):
        run_pipeline("tiny")

    monkeypatch.delenv("QPO_MIN_FREE_MB")
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    monkeypatch.setenv("QPO_RUNS_DIR", str(blocker / "runs"))
    with pytest.raises(RunsFolderError, match=f"{blocker} is a file, not a folder.*QPO_RUNS_DIR"):
        run_pipeline("tiny")
    assert sorted(p.name for p in qpo_home.iterdir()) == [] and blocker.read_text() == "x"
