"""Ctrl-C (SIGINT) and SIGTERM on ``qpo pipeline run``: the kernel is stopped, the MLflow run is
KILLED with the reason, the partial notebook is kept, the kernel's connection file is removed, one
JSON line is printed and the exit status is the shell's (130 / 143), with no traceback."""
from __future__ import annotations

import json
import signal
import time

import psutil
import pytest

from tests.reliability.tiny_project import make_project, project_env, start_cli


def _wait_for_the_kernel(proc, runtime, home, timeout=300):
    """Until the work cell runs: a connection file in the runtime dir and the output notebook
    saying a cell is running."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        assert proc.poll() is None, proc.communicate()
        notebooks = list((home / "runs").glob("tiny/*/notebook.ipynb"))
        if list(runtime.glob("kernel-*.json")) and notebooks and '"running"' in notebooks[0].read_text():
            return notebooks[0]
        time.sleep(0.3)
    pytest.fail("the kernel did not start in time")


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["SIGINT", "SIGTERM"])
def test_a_signal_ends_the_run_killed_and_leaves_nothing_running(qpo_home, tmp_path, sig, code):
    root = make_project(tmp_path / "project")
    runtime = tmp_path / "runtime"
    runtime.mkdir()
    env = project_env(root, JUPYTER_RUNTIME_DIR=str(runtime), TMPDIR=str(tmp_path))
    proc = start_cli(env, "pipeline", "run", "tiny", "-p", "seconds", "300", "--json")
    try:
        notebook = _wait_for_the_kernel(proc, runtime, qpo_home)
        kernels = psutil.Process(proc.pid).children(recursive=True)
        assert kernels, "no kernel process under qpo"
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == code, err[-3000:]
    assert "Traceback" not in err, err[-3000:]
    lines = out.strip().splitlines()
    assert len(lines) == 1
    line = json.loads(lines[0])
    name = sig.name
    assert line["status"] == "KILLED" and line["signal"] == name and line["error"] == f"interrupted by {name}"
    assert line["notebook"] == str(notebook) and notebook.exists()  # the partial notebook is kept

    import mlflow

    from qpo.tracking import configure

    configure()
    run = mlflow.get_run(line["run_id"])
    assert run.info.status == "KILLED"
    assert run.data.tags["qpo.stop_reason"] == f"interrupted by {name}"
    assert "notebook.ipynb" in {f.path for f in mlflow.MlflowClient().list_artifacts(line["run_id"])}

    assert list(runtime.iterdir()) == []  # the kernel's connection file is gone
    assert list(tmp_path.glob("tmp*.json")) == []
    assert list(tmp_path.glob("qpo-k*")) == []  # nor the kernel's Unix sockets (ipc transport)
    time.sleep(0.5)
    alive = [p.pid for p in kernels if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert alive == [], "the kernel outlived the run"
