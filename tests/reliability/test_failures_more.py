"""A kernel killed from outside, as an operator or the out-of-memory killer of another cgroup would:
the test starts ``qpo pipeline run`` on a notebook that sleeps in a cell, finds the kernel process
(a descendant whose command line names ipykernel) and SIGKILLs it. The run ends FAILED in MLflow
(tag ``qpo.failure`` naming the kernel's death and the cell), the partial notebook is kept, the
process exits 1 and a failed-run notice reaches a real webhook on 127.0.0.1. Then the same kernel
death and a cell past its ``execution_timeout``, with ``MLFLOW_TRACKING_URI`` pointing at
``qpo ui mlflow`` whose metadata live in the real PostgreSQL: the runs are FAILED in that server, with
the reason, in its database."""
from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import psutil
import pytest

from tests.reliability.test_failures import make_failing_project
from tests.reliability.test_team_tracking import mlflow_database  # noqa: F401 - the fixture
from tests.reliability.tiny_project import project_env, start_cli
from tests.servers import free_port, serving, webhook_server

KILLED = "kernel died in cell 3 (killed by SIGKILL: out of memory, or killed)"  # 3: after papermill's parameters
TIMED_OUT = "cell timed out after 3 s in cell 3"


@pytest.fixture
def project(tmp_path, monkeypatch):
    root = make_failing_project(tmp_path / "project")
    monkeypatch.setenv("QPO_PROJECT_ROOT", str(root))
    for var in ("QPO_SMTP_HOST", "QPO_ALERT_WEBHOOK", "QPO_ALERT_RECIPIENTS", "QPO_MIN_FREE_MB",
                "QPO_MLFLOW_BACKEND_URI", "QPO_DASK_SCHEDULER"):
        monkeypatch.delenv(var, raising=False)
    return root


@pytest.fixture
def webhook():
    """A real webhook (http.server) on 127.0.0.1: the JSON bodies it received, and its URL."""
    with webhook_server() as hook:
        yield hook.bodies, hook.url


def _kernels(proc: subprocess.Popen) -> list[psutil.Process]:
    return [p for p in psutil.Process(proc.pid).children(recursive=True)
            if any("ipykernel" in part for part in p.cmdline())]


def _work_cell_running(proc: subprocess.Popen, home: Path, pipeline: str = "tiny", timeout: float = 300) -> Path:
    """The output notebook of the run, once Papermill has saved its work cell (index 2) as running."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"the run ended before its work cell ran: {out[-2000:]} {err[-3000:]}")
        for path in (home / "runs").glob(f"{pipeline}/*/notebook.ipynb"):
            try:
                cells = json.loads(path.read_text())["cells"]
            except (OSError, ValueError, KeyError):  # being written
                continue
            if len(cells) > 2 and cells[2].get("metadata", {}).get("papermill", {}).get("status") == "running":
                return path
        time.sleep(0.3)
    pytest.fail("the work cell did not start in time")


def _kill_the_kernel(env: dict[str, str], home: Path) -> tuple[subprocess.Popen, dict, int, str]:
    """``qpo pipeline run tiny -p seconds 300 --json``; its kernel SIGKILLed mid-cell by the test.
    The process (ended), its JSON line, the killed kernel's pid and stderr."""
    proc = start_cli(env, "pipeline", "run", "tiny", "-p", "seconds", "300", "--json")
    try:
        _work_cell_running(proc, home)
        time.sleep(1.0)  # the cell's first output ("started") is on its way before the sleep
        (kernel,) = _kernels(proc)
        kernel.send_signal(signal.SIGKILL)
        out, err = proc.communicate(timeout=240)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=60)
    assert out.strip(), err[-3000:]
    return proc, json.loads(out.strip().splitlines()[-1]), kernel.pid, err


def _check_partial_notebook(path: str, reason: str, ename: str) -> None:
    nb = nbformat.read(path, as_version=4)
    assert len(nb.cells) == 3  # parameters, papermill's injected parameters, the work cell
    work = nb.cells[2]
    assert work.metadata.papermill.status == "failed" and nb.metadata.papermill.exception is True
    error = work.outputs[-1]
    assert error.output_type == "error" and error.ename == ename and error.evalue == reason
    recorded = [o["data"]["application/vnd.qpo.record+json"]["name"] for o in work.outputs
                if "application/vnd.qpo.record+json" in o.get("data", {})]
    assert recorded in (["started"], [])  # "slept" never came
    assert all("slept" not in json.dumps(o) for o in work.outputs if o.output_type != "error")


def test_a_kernel_killed_from_outside_fails_the_run_keeps_the_notebook_and_notifies(project, qpo_home, webhook):
    import mlflow

    from qpo.tracking import configure

    posts, url = webhook
    t0 = time.perf_counter()
    sockets = qpo_home.parent / "sockets"  # the kernel's Unix sockets (ipc transport) go under TMPDIR
    sockets.mkdir()
    proc, line, kernel_pid, err = _kill_the_kernel(project_env(project, QPO_ALERT_WEBHOOK=url, TMPDIR=str(sockets)),
                                                   qpo_home)
    seconds = time.perf_counter() - t0
    print(f"\nkernel {kernel_pid} SIGKILLed by the test: run FAILED, qpo exited {proc.returncode}, {seconds:.1f} s")
    assert proc.returncode == 1, err[-3000:]
    assert "Traceback" not in err, err[-3000:]
    assert line["status"] == "FAILED" and line["failure"] == KILLED
    assert line["error"] == f"{KILLED}; the partial notebook is kept: {line['notebook']}"
    assert Path(line["notebook"]).parent.parent == qpo_home / "runs" / "tiny"
    _check_partial_notebook(line["notebook"], KILLED, "DeadKernelError")
    assert not psutil.pid_exists(kernel_pid) or psutil.Process(kernel_pid).status() == psutil.STATUS_ZOMBIE
    assert list(sockets.glob("qpo-k*")) == []  # a SIGKILLed kernel cannot unlink its sockets: the run does

    configure()
    run = mlflow.get_run(line["run_id"])
    assert run.info.status == "FAILED" and run.info.end_time is not None
    assert run.data.tags["qpo.failure"] == KILLED and run.data.tags["error"] == line["error"]
    assert run.data.tags["qpo.pid"] == str(proc.pid) and run.data.tags["qpo.host"] == socket.gethostname()
    assert run.data.params["seconds"] == "300"
    assert run.data.metrics.get("slept") is None
    arts = {f.path for f in mlflow.MlflowClient().list_artifacts(line["run_id"])}
    assert {"notebook.ipynb", "error.txt"} <= arts
    logged = Path(mlflow.artifacts.download_artifacts(run_id=line["run_id"], artifact_path="notebook.ipynb",
                                                      dst_path=str(qpo_home.parent / "dl")))
    assert nbformat.read(str(logged), as_version=4).cells[2].outputs[-1].evalue == KILLED  # the partial one, logged

    (post,) = posts  # one notice, to the real webhook
    assert post["event"] == "run_failed"
    assert post["run"]["id"] == line["run_id"] and post["run"]["kind"] == "pipeline tiny"
    assert post["run"]["status"] == "FAILED" and post["run"]["error"] == line["error"]
    assert run.data.tags["qpo.notice"] == "sent: webhook"
    assert line["notice"]["errors"] == [] and [s["channel"] for s in line["notice"]["sent"]] == ["webhook"]
    assert "T0KEN" not in err + json.dumps(line)  # the webhook's secret path is never printed


@pytest.mark.postgres
def test_kernel_death_and_timeout_are_failed_in_a_tracking_server_on_postgresql(project, qpo_home, tmp_path,
                                                                                monkeypatch, mlflow_database):  # noqa: F811
    from mlflow.tracking import MlflowClient
    from sqlalchemy import create_engine, text

    server_home = tmp_path / "server"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    monkeypatch.setenv("QPO_HOME", str(server_home))  # the server's environment (serving() passes ours)
    monkeypatch.setenv("QPO_MLFLOW_BACKEND_URI", mlflow_database)
    monkeypatch.setenv("QPO_MLFLOW_ARTIFACTS", str(server_home / "artifacts"))
    cmd = [sys.executable, "-m", "qpo.cli", "ui", "mlflow", "--port", str(port)]
    t0 = time.perf_counter()
    with serving(cmd, f"{url}/health", tmp_path / "server.log", timeout=240):
        # the clients know only the server's address
        env = project_env(project, QPO_HOME=str(qpo_home), MLFLOW_TRACKING_URI=url)
        for var in ("QPO_MLFLOW_BACKEND_URI", "QPO_MLFLOW_ARTIFACTS"):
            env.pop(var)
        slow = start_cli(env, "pipeline", "run", "slow", "--json")  # alongside the killed one
        try:
            proc, killed, _, err = _kill_the_kernel(env, qpo_home)
            out, slow_err = slow.communicate(timeout=300)
        finally:
            if slow.poll() is None:
                slow.kill()
                slow.communicate(timeout=60)
        assert proc.returncode == 1, err[-3000:]
        assert slow.returncode == 1, slow_err[-3000:]
        timed_out = json.loads(out.strip().splitlines()[-1])
        assert killed["tracking_uri"] == timed_out["tracking_uri"] == url
        assert (killed["failure"], timed_out["failure"]) == (KILLED, TIMED_OUT)
        _check_partial_notebook(killed["notebook"], KILLED, "DeadKernelError")
        _check_partial_notebook(timed_out["notebook"], TIMED_OUT, "CellTimeoutError")

        client = MlflowClient(url)  # what the server says
        for line, reason in ((killed, KILLED), (timed_out, TIMED_OUT)):
            run = client.get_run(line["run_id"])
            assert run.info.status == "FAILED" and run.info.end_time is not None
            assert run.data.tags["qpo.failure"] == reason and run.data.tags["error"] == line["error"]
            assert run.info.artifact_uri.startswith("mlflow-artifacts:/")
            assert "notebook.ipynb" in {f.path for f in client.list_artifacts(line["run_id"])}
        engine = create_engine(mlflow_database)  # and what its PostgreSQL holds
        try:
            with engine.connect() as conn:
                rows = conn.execute(text(
                    "SELECT r.run_uuid, r.status, t.value FROM runs r JOIN tags t ON t.run_uuid = r.run_uuid "
                    "WHERE t.key = 'qpo.failure'")).all()
        finally:
            engine.dispose()
        assert sorted(rows) == sorted([(killed["run_id"], "FAILED", KILLED), (timed_out["run_id"], "FAILED", TIMED_OUT)])
    assert not (qpo_home / "mlflow.db").exists()  # the clients kept nothing of their own
    print(f"\nkernel death + cell timeout against qpo ui mlflow on PostgreSQL: both FAILED with the reason, "
          f"{time.perf_counter() - t0:.1f} s")
