"""A sweep on a team's cluster: a ``dask scheduler`` and one ``dask worker`` started separately on
127.0.0.1, ``QPO_DASK_SCHEDULER`` pointing at the scheduler. ``qpo.run_sweep`` sends a 2-cell grid of
the tiny pipeline there: both cells FINISHED, run by the team's worker process (not the sweep's),
each one Papermill run with its own output notebook, logged as a child of the one parent run in the
sweep's MLflow store; the parent holds both cells."""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

import nbformat
import pytest

from tests.reliability.tiny_project import make_project
from tests.servers import team_dask_cluster

pytestmark = pytest.mark.xdist_group("sweep")


def test_a_sweep_on_a_separately_started_scheduler_and_worker(tmp_path, qpo_home, monkeypatch):
    from distributed import Client
    from mlflow.tracking import MlflowClient

    import qpo
    from qpo.operations.cluster import SCHEDULER_ENV
    from qpo.tracking import configure

    project = make_project(tmp_path / "project")
    monkeypatch.setenv("QPO_PROJECT_ROOT", str(project))
    # the team's worker has the project (the pipelines) and a home of its own; nothing else of qpo's
    worker_home = tmp_path / "worker-home"
    worker_home.mkdir()
    plain = {k: v for k, v in os.environ.items() if not k.startswith(("QPO_", "MLFLOW_"))}
    worker_env = {**plain, "QPO_PROJECT_ROOT": str(project), "QPO_HOME": str(worker_home)}
    with team_dask_cluster(tmp_path, plain, worker_env) as (address, _, scheduler, worker):
        watcher = Client(address, timeout=60, set_as_default=False)
        try:
            watcher.wait_for_workers(1, timeout=120)
            (worker_pid,) = watcher.run(os.getpid).values()
            monkeypatch.setenv(SCHEDULER_ENV, address)
            lines: list[str] = []
            t0 = time.perf_counter()
            result = qpo.run_sweep("tiny", {"label": ["a", "b"]}, parameters={"seconds": 0.5}, log=lines.append)
            seconds = time.perf_counter() - t0
            assert scheduler.poll() is None and worker.poll() is None  # the team's cluster keeps running
        finally:
            watcher.close()
    log = "\n".join(lines)
    assert f"Dask: 1 worker(s), 1 thread(s), on the scheduler at {address}" in log, log
    assert result.status == "FINISHED" and result.exit_code == 0 and result.workers == 1, log
    assert [c.status for c in result.cells] == ["FINISHED", "FINISHED"], [c.error for c in result.cells]
    assert [c.parameters["label"] for c in result.cells] == ["a", "b"]
    assert {c.pid for c in result.cells} == {worker_pid} and worker_pid != os.getpid()  # the team's worker ran them

    client = MlflowClient(configure())  # the sweep's store: where the worker logged
    parent = client.get_run(result.parent_run_id)
    assert parent.info.status == "FINISHED" and parent.data.tags["qpo.sweep"] == "parent"
    assert parent.data.metrics["cells_finished"] == 2 and parent.data.metrics["cells_failed"] == 0
    assert json.loads(parent.data.params["grid.label"]) == ["a", "b"]
    children = client.search_runs([parent.info.experiment_id],
                                  filter_string=f"tags.mlflow.parentRunId = '{result.parent_run_id}'")
    assert sorted(r.info.run_id for r in children) == sorted(c.run_id for c in result.cells)
    notebooks = [Path(c.notebook) for c in result.cells]
    assert len(set(notebooks)) == 2 and all(n.exists() for n in notebooks)  # one output notebook each
    # written on the worker's disk (its QPO_HOME), kept for the team in the sweep's MLflow store
    assert all(n.parent.parent == worker_home / "runs" / "tiny" for n in notebooks)
    assert not (qpo_home / "runs").exists()
    for cell in result.cells:
        child = client.get_run(cell.run_id)
        assert child.info.status == "FINISHED" and child.data.tags["qpo.sweep_cell"] == str(cell.index)
        assert child.data.params["label"] == cell.parameters["label"] and float(child.data.params["seconds"]) == 0.5
        assert child.data.metrics == {"started": 1.0, "slept": 0.5}
        assert {"notebook.ipynb", "report.html"} <= {f.path for f in client.list_artifacts(cell.run_id)}
        nb = nbformat.read(cell.notebook, as_version=4)
        assert nb.metadata.papermill.parameters["label"] == cell.parameters["label"]
        assert nb.metadata.papermill.exception is not True
        logged = client.download_artifacts(cell.run_id, "notebook.ipynb", str(tmp_path / "dl" / str(cell.index)))
        assert Path(logged).read_bytes() == Path(cell.notebook).read_bytes()
    table = {f.path for f in client.list_artifacts(result.parent_run_id, "sweep")}
    assert {"sweep/comparison.csv", "sweep/cells.json"} <= table
    print(f"\n2-cell sweep on the team's scheduler {address}: both FINISHED on worker pid {worker_pid} in "
          f"{seconds:.1f} s; notebooks {', '.join(str(n.parent.name) for n in notebooks)}")
