"""Sweeps (qpo.workbench.sweep): a grid of a tiny pipeline on a local Dask cluster of 2 worker
processes, real kernels and a real MLflow store. Children nest under one parent run, each with its
own notebook and report; the parent's comparison table holds the children's numbers; a failing
cell is FAILED and the others run; SIGINT to a sweep's process KILLs the running children."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.reliability.tiny_project import make_project, project_env

pytestmark = pytest.mark.xdist_group("sweep")


@pytest.fixture
def tiny(tmp_path, monkeypatch) -> Path:
    root = make_project(tmp_path / "project")
    monkeypatch.setenv("QPO_PROJECT_ROOT", str(root))
    return root


def tiny_sweep(workers: int = 2, **grid):
    """A finished sweep of the tiny pipeline (``QPO_PROJECT_ROOT`` pointing at the tiny project)."""
    from qpo.workbench.sweep import run_sweep

    return run_sweep("tiny", grid or {"seconds": [0.0, 0.25], "label": ["a", "b"]}, workers=workers)


def recorded_tiny_sweep(folder: Path, workers: int = 1, **grid):
    """A finished sweep of the tiny pipeline (a project written under ``folder``), in the MLflow
    store of the test's QPO_HOME: for the notebook checks of notebooks/07_sweep.ipynb."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("QPO_PROJECT_ROOT", str(make_project(folder)))
        return tiny_sweep(workers, **grid)


def _client():
    from mlflow.tracking import MlflowClient

    from qpo.tracking import configure

    return MlflowClient(configure())


def _children(client, parent):
    run = client.get_run(parent)
    return client.search_runs([run.info.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{parent}'")


def test_grid_and_cells_are_checked_before_anything_is_written(tiny, qpo_home):
    from qpo.errors import InvalidValueError, UnknownOptionError
    from qpo.workbench.sweep import grid_cells, load_cells, run_sweep

    assert grid_cells({"a": [1, 2], "b": ["x", "y", "z"]})[:4] == [
        {"a": 1, "b": "x"}, {"a": 1, "b": "y"}, {"a": 1, "b": "z"}, {"a": 2, "b": "x"}]
    with pytest.raises(UnknownOptionError, match="window") as refused:
        run_sweep("tiny", {"window": [1, 2]})
    assert refused.value.valid == ["label", "seconds"]  # not run_id, which the sweep refuses
    assert "run_id" not in str(refused.value)
    with pytest.raises(Exception, match="seconds must be float"):
        run_sweep("tiny", {"seconds": ["soon"]})
    with pytest.raises(InvalidValueError, match="twice"):
        run_sweep("tiny", {"seconds": [1, 1]})
    with pytest.raises(InvalidValueError, match="either a grid"):
        run_sweep("tiny")
    (qpo_home.parent / "cells.csv").write_text("seconds,label\n0.5,a\n1,null\n")
    assert load_cells(qpo_home.parent / "cells.csv") == [{"seconds": 0.5, "label": "a"}, {"seconds": 1, "label": None}]
    (qpo_home.parent / "cells.yaml").write_text("cells:\n  - {seconds: 0.5}\n  - {seconds: 2, label: b}\n")
    assert load_cells(qpo_home.parent / "cells.yaml") == [{"seconds": 0.5}, {"seconds": 2, "label": "b"}]
    (qpo_home.parent / "cells.txt").write_text("seconds=1\n")
    with pytest.raises(InvalidValueError, match="valid: .json"):
        load_cells(qpo_home.parent / "cells.txt")
    assert not (qpo_home / "mlflow.db").exists() and not (qpo_home / "runs").exists()


def test_the_command_line_reads_a_grid(capsys):
    import argparse

    from qpo.cli.sweep import register_sweep

    ap = argparse.ArgumentParser(prog="qpo pipeline")
    register_sweep(ap.add_subparsers(dest="action", required=True))
    args = ap.parse_args(["sweep", "backtest", "-p", "costs", "0", "0.001", "-p", "window", "126", "null",
                          "--workers", "2", "--json"])
    from qpo.cli.sweep import grid_from_args

    assert grid_from_args(args.param) == {"costs": [0, 0.001], "window": [126, None]}
    assert args.workers == 2 and args.json and args.cells is None
    args = ap.parse_args(["sweep", "backtest", "-p", "costs"])
    assert args.func(args) == 3 and "-p costs needs at least one value" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        ap.parse_args(["sweep", "backtest", "--workers", "0"])


def test_a_grid_fans_out_as_nested_runs_with_a_comparison_table(tiny, qpo_home):
    import mlflow
    import pandas as pd

    from qpo.workbench.sweep import read_sweep

    result = tiny_sweep()
    assert result.status == "FINISHED" and result.exit_code == 0 and result.workers == 2
    assert [c.status for c in result.cells] == ["FINISHED"] * 4
    assert len({c.pid for c in result.cells}) == 2  # both worker processes ran cells
    client = _client()
    children = _children(client, result.parent_run_id)
    assert sorted(r.info.run_id for r in children) == sorted(c.run_id for c in result.cells)
    for cell in result.cells:  # each its own notebook and report, logged to its own child run
        assert Path(cell.notebook).exists() and Path(cell.html).exists()
        assert len({Path(c.notebook).parent for c in result.cells}) == 4
        child = client.get_run(cell.run_id)
        assert child.info.status == "FINISHED" and child.data.tags["qpo.sweep_cell"] == str(cell.index)
        assert float(child.data.params["seconds"]) == cell.parameters["seconds"]
        assert child.data.params["label"] == cell.parameters["label"]
        assert {"notebook.ipynb", "report.html"} <= {f.path for f in client.list_artifacts(cell.run_id)}
    parent = client.get_run(result.parent_run_id)
    assert parent.info.status == "FINISHED" and parent.data.tags["qpo.sweep"] == "parent"
    assert json.loads(parent.data.params["grid.seconds"]) == [0.0, 0.25]
    assert parent.data.metrics["cells_finished"] == 4 and parent.data.metrics["cells_failed"] == 0
    assert parent.data.tags["qpo.failed_cells"] == "none"
    table = pd.read_csv(mlflow.artifacts.download_artifacts(f"runs:/{result.parent_run_id}/sweep/comparison.csv"))
    assert list(table["cell"]) == [0, 1, 2, 3] and list(table["label"]) == ["a", "b", "a", "b"]
    for _, row in table.iterrows():  # the table's numbers are the children's metrics
        metrics = client.get_run(row["run_id"]).data.metrics
        assert row["slept"] == metrics["slept"] == row["seconds"] and row["started"] == metrics["started"] == 1
    arts = {f.path for f in client.list_artifacts(result.parent_run_id, "sweep")}
    assert {"sweep/comparison.csv", "sweep/comparison.html", "sweep/cells.json", "sweep/grid.json"} <= arts
    figure = json.loads(mlflow.artifacts.load_text(f"runs:/{result.parent_run_id}/figures/sweep_slept.json"))
    assert [t["name"] for t in figure["data"]] == ["label=a", "label=b"]  # one line per value of the second parameter
    record = read_sweep()  # the latest sweep, read back from MLflow
    assert record.parent_run_id == result.parent_run_id and record.names == ["seconds", "label"]
    assert list(record.table["slept"]) == [0.0, 0.0, 0.25, 0.25]


@pytest.fixture
def mailbox(monkeypatch):
    """A real SMTP server (aiosmtpd) on 127.0.0.1; the delivery settings of the environment point at it."""
    pytest.importorskip("aiosmtpd", reason="aiosmtpd is in the test extra: pip install -e .[test]")
    import email
    from email import policy

    from aiosmtpd.controller import Controller

    from tests.servers import free_port

    class Box:
        messages: list = []

        async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
            self.messages.append((list(envelope.rcpt_tos),
                                  email.message_from_bytes(envelope.content, policy=policy.default)))
            return "250 OK"

    box, port = Box(), free_port()
    box.messages = []
    controller = Controller(box, hostname="127.0.0.1", port=port, ready_timeout=30)
    controller.start()
    for var in ("QPO_ALERT_WEBHOOK", "QPO_SMTP_USER", "QPO_SMTP_PASSWORD", "QPO_SMTP_STARTTLS"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("QPO_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("QPO_SMTP_PORT", str(port))
    monkeypatch.setenv("QPO_ALERT_RECIPIENTS", "ops@desk.test")
    try:
        yield box.messages
    finally:
        controller.stop()


def test_a_failing_cell_is_failed_and_the_sweep_goes_on(tiny, qpo_home, mailbox):
    from qpo.workbench.sweep import run_sweep

    result = run_sweep("tiny", cells=[{"seconds": 0.1, "label": "x"}, {"seconds": -1.0}, {"seconds": 0.0}], workers=2)
    assert [c.status for c in result.cells] == ["FINISHED", "FAILED", "FINISHED"]
    assert result.status == "FAILED" and result.exit_code == 1 and [c.index for c in result.failed] == [1]
    assert "sleep length must be non-negative" in result.cells[1].error
    assert Path(result.cells[1].notebook).exists()  # the failed notebook is kept
    client = _client()
    assert {r.info.run_id: r.info.status for r in _children(client, result.parent_run_id)} == {
        c.run_id: c.status for c in result.cells}
    parent = client.get_run(result.parent_run_id)
    assert parent.info.status == "FAILED" and parent.data.metrics["cells_failed"] == 1
    assert parent.data.tags["qpo.failed_cells"].startswith("1 (seconds=-1.0): ")
    assert "1 of 3 cell(s) failed: seconds=-1.0" in parent.data.tags["error"]
    # ONE notice for the sweep (its cells send none), listing the failed cell
    ((to, msg),) = mailbox
    assert to == ["ops@desk.test"] and f"(run {result.parent_run_id})" in msg["Subject"]
    body = msg.get_content()
    assert "sweep tiny: 1 of 3 cell(s) failed" in body
    assert f"cell 1 (seconds=-1.0): FAILED, run {result.cells[1].run_id}: " in body
    assert "sleep length must be non-negative" in body and "cell 0 " not in body and "cell 2 " not in body
    assert result.notice["sent"][0]["channel"] == "email"
    assert parent.data.tags["qpo.notice"].startswith("sent: email")


def _wait_running(home: Path, count: int, proc, timeout=180):
    deadline = time.time() + timeout
    while time.time() < deadline:
        assert proc.poll() is None, proc.communicate()
        running = [n for n in home.glob("runs/tiny/*/notebook.ipynb") if '"running"' in n.read_text()]
        if len(running) >= count:
            return running
        time.sleep(0.3)
    pytest.fail("the cells did not start in time")


def test_sigint_kills_the_running_children_and_the_sweep(tiny, qpo_home, tmp_path):
    import psutil

    runtime = tmp_path / "runtime"
    runtime.mkdir()
    env = project_env(tiny, JUPYTER_RUNTIME_DIR=str(runtime))
    proc = subprocess.Popen([sys.executable, "-m", "qpo.cli.sweep", "tiny", "-p", "seconds", "300", "301", "302",
                             "--workers", "2", "--json"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        _wait_running(qpo_home, 2, proc)
        kernels = [p for p in psutil.Process(proc.pid).children(recursive=True)
                   if any("ipykernel" in part for part in p.cmdline())]
        assert len(kernels) == 2
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=180)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err[-3000:]
    result = json.loads(out.strip().splitlines()[-1])
    assert result["status"] == "KILLED" and result["signal"] == "SIGINT"
    assert [c["status"] for c in result["cells"]] == ["KILLED", "KILLED", "NOT_STARTED"]
    client = _client()
    children = _children(client, result["parent_run_id"])
    assert sorted(r.info.status for r in children) == ["KILLED", "KILLED"]
    for child in children:
        assert child.data.tags["qpo.stop_reason"] == "interrupted by SIGINT" and "qpo.failure" not in child.data.tags
        assert "notebook.ipynb" in {f.path for f in client.list_artifacts(child.info.run_id)}  # the partial notebook
    parent = client.get_run(result["parent_run_id"])
    assert parent.info.status == "KILLED" and parent.data.metrics["cells_killed"] == 2
    assert parent.data.metrics["cells_not_started"] == 1
    time.sleep(0.5)
    assert [k.pid for k in kernels if k.is_running() and k.status() != psutil.STATUS_ZOMBIE] == []
    assert list(runtime.glob("kernel-*.json")) == []
