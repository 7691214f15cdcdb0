"""Sweeps when things go wrong, on real Dask clusters with real kernels and a real MLflow store:

* a worker killed (SIGKILL) while it runs a cell: Dask runs the cell again and that re-run counts;
  the dead attempt is marked FAILED, superseded, and the sweep FINISHES (cells counted, not runs);
* two users' sweeps sharing one team worker: stopping one (SIGINT) leaves the other's running cell
  alone, which FINISHES;
* a second SIGINT while the sweep waits for its cells to stop: it stops waiting, the cell KILLED;
* a sweep that cannot start (an unwritable runs folder, an unreachable scheduler) writes nothing:
  no tracking store, no parent run;
* fixed parameters from the command line (``--set NAME VALUE``) are not a grid dimension; the
  cells' kernels run on Unix sockets with one BLAS thread; a local sweep logs no dashboard link;
* ``QPO_WORKER_THREADS`` sets the BLAS/OpenMP/torch threads of the cells and of a local cluster's
  workers (default 1); a value that is not a positive whole number is refused before anything runs.
"""
from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.reliability.tiny_project import make_project, project_env
from tests.servers import free_port, team_dask_cluster

pytestmark = pytest.mark.xdist_group("sweep")


@pytest.fixture
def tiny(tmp_path, monkeypatch) -> Path:
    root = make_project(tmp_path / "project")
    monkeypatch.setenv("QPO_PROJECT_ROOT", str(root))
    monkeypatch.delenv("QPO_DASK_SCHEDULER", raising=False)
    return root


def _mlflow():
    from mlflow.tracking import MlflowClient

    from qpo.tracking import configure

    return MlflowClient(configure())


def _kernels(pid: int) -> list:
    import psutil

    try:
        children = psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []
    out = []
    for p in children:
        try:
            if any("ipykernel" in part for part in p.cmdline()):
                out.append(p)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return out


def _wait(predicate, what: str, timeout: float = 180.0, check=None):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if check is not None:
            check()
        value = predicate()
        if value:
            return value
        time.sleep(0.3)
    pytest.fail(f"timed out waiting for {what}")


def _running_cell_runs(client, index: int) -> list:
    exps = [e.experiment_id for e in client.search_experiments()]
    if not exps:
        return []
    return client.search_runs(exps, filter_string=f"tags.qpo.sweep_cell = '{index}' and attributes.status = 'RUNNING'")


# -- 1. a worker dies; Dask re-runs its cell; the re-run counts ------------------------------------
def test_a_cell_rerun_after_its_worker_was_killed_counts_and_the_dead_attempt_is_superseded(tiny, qpo_home):
    import psutil
    from distributed import Client, LocalCluster

    from qpo.operations.cluster import THREAD_VARS
    from qpo.workbench.sweep import SUPERSEDED_TAG, read_sweep, run_sweep

    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None,
                           silence_logs=logging.ERROR, env={v: "1" for v in THREAD_VARS})
    watcher = Client(cluster, set_as_default=False)
    lines: list[str] = []
    box: dict = {}

    def sweep():
        try:
            box["result"] = run_sweep("tiny", {"seconds": [0.2, 4.0]}, scheduler=cluster.scheduler_address,
                                      log=lines.append)
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            box["error"] = exc

    thread = threading.Thread(target=sweep, daemon=True)
    orphans: list = []
    try:
        thread.start()
        client = _mlflow()

        def alive():
            assert thread.is_alive() or "error" not in box, box.get("error")

        # cell 1 (the 4 s one) has its child run RUNNING and its kernel started: find its worker
        _wait(lambda: _running_cell_runs(client, 1), "cell 1's child run", check=alive)

        def worker_of_cell_1():
            for address, keys in watcher.processing().items():
                if any(str(k).endswith("-1") for k in keys):
                    pid = watcher.run(os.getpid, workers=[address])[address]
                    return pid if _kernels(pid) else None
            return None

        pid = _wait(worker_of_cell_1, "cell 1's kernel", check=alive)
        orphans = _kernels(pid)
        (dead,) = _running_cell_runs(client, 1)
        os.kill(pid, signal.SIGKILL)  # the worker dies mid-cell; its nanny starts a new one
        thread.join(timeout=240)
        assert not thread.is_alive(), "\n".join(lines)
    finally:
        watcher.close()
        cluster.close()
        for p in orphans:  # the dead worker's kernel, in a session of its own
            try:
                p.kill()
            except psutil.NoSuchProcess:
                pass
    assert "error" not in box, box.get("error")
    result, log = box["result"], "\n".join(lines)
    # the cell's re-run counts: the sweep FINISHED, both cells FINISHED, exit 0
    assert result.status == "FINISHED" and result.exit_code == 0, log
    assert [c.status for c in result.cells] == ["FINISHED", "FINISHED"], log
    rerun = result.cells[1].run_id
    assert rerun and rerun != dead.info.run_id
    assert result.superseded == [dead.info.run_id]
    assert "marked FAILED (the Dask worker running this cell disappeared)" not in log, log
    assert f"superseded by run {rerun}" in log, log
    # its scheduler runs an HTTP server (port 8787 unless taken) but no dashboard: no link in the log
    assert "Dask: 2 worker(s), 2 thread(s), on the scheduler at" in log and "dashboard" not in log, log

    children = client.search_runs([dead.info.experiment_id],
                                  filter_string=f"tags.mlflow.parentRunId = '{result.parent_run_id}'")
    assert len(children) == 3  # 2 cells, 3 runs: the dead attempt kept, as history
    by_id = {r.info.run_id: r for r in children}
    old = by_id[dead.info.run_id]
    assert old.info.status == "FAILED" and old.data.tags[SUPERSEDED_TAG] == rerun
    assert by_id[rerun].info.status == "FINISHED" and by_id[rerun].data.metrics["slept"] == 4.0
    parent = client.get_run(result.parent_run_id)
    assert parent.info.status == "FINISHED" and parent.data.tags["qpo.sweep_status"] == "FINISHED"
    assert parent.data.metrics["cells_finished"] == 2 and parent.data.metrics["cells_failed"] == 0
    assert parent.data.tags["qpo.failed_cells"] == "none"
    assert parent.data.tags["qpo.superseded_runs"] == dead.info.run_id
    record = read_sweep(result.parent_run_id)  # the comparison: 2 rows, the re-run's, not the dead attempt's
    assert list(record.table["status"]) == ["FINISHED", "FINISHED"]
    assert list(record.table["run_id"]) == [result.cells[0].run_id, rerun]
    assert list(record.table["slept"]) == [0.2, 4.0]


# -- 2. one user's Ctrl-C does not stop another user's cell on a shared worker ----------------------
def test_stopping_one_sweep_leaves_another_sweeps_cell_on_the_same_worker_running(tiny, qpo_home, tmp_path):
    from distributed import Client

    worker_home = tmp_path / "worker-home"
    worker_home.mkdir()
    plain = {k: v for k, v in os.environ.items() if not k.startswith(("QPO_", "MLFLOW_"))}
    worker_env = {**plain, "QPO_PROJECT_ROOT": str(tiny), "QPO_HOME": str(worker_home)}
    procs: list[subprocess.Popen] = []
    with team_dask_cluster(tmp_path, plain, worker_env) as (address, board, _scheduler, _worker):
        watcher = Client(address, timeout=60, set_as_default=False)
        try:
            watcher.wait_for_workers(1, timeout=120)
            ((_, worker_pid),) = watcher.run(os.getpid).items()
            env = project_env(tiny, QPO_DASK_SCHEDULER=address)

            def start(*args: str) -> subprocess.Popen:
                p = subprocess.Popen([sys.executable, "-m", "qpo.cli.sweep", "tiny", *args, "--json"], env=env,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                procs.append(p)
                return p

            other = start("-p", "label", "other", "-p", "seconds", "12")  # another user's sweep, running
            _wait(lambda: _kernels(worker_pid), "the other sweep's kernel",
                  check=lambda: None if other.poll() is None else pytest.fail(other.communicate()[1][-3000:]))
            mine = start("-p", "label", "mine", "-p", "seconds", "0.1")  # mine, queued behind it on the worker
            _wait(lambda: sum(len(k) for k in watcher.processing().values()) >= 2, "my sweep's cell submitted",
                  check=lambda: None if mine.poll() is None else pytest.fail(mine.communicate()[1][-3000:]))
            time.sleep(1.0)  # my sweep is in its wait loop, its signal handlers set
            kernel = _kernels(worker_pid)[0]
            assert kernel.is_running() and other.poll() is None, "the other sweep's cell ended before mine was stopped"
            mine.send_signal(signal.SIGINT)
            out_mine, err_mine = mine.communicate(timeout=180)
            out_other, err_other = other.communicate(timeout=180)
        finally:
            watcher.close()
            for p in procs:
                if p.poll() is None:
                    p.kill()
    assert mine.returncode == 130, err_mine[-3000:]
    stopped = json.loads(out_mine.strip().splitlines()[-1])
    assert stopped["status"] == "KILLED" and [c["status"] for c in stopped["cells"]] == ["NOT_STARTED"]
    assert other.returncode == 0, err_other[-3000:]
    assert f"on the scheduler at {address}; dashboard http://127.0.0.1:{board}/status" in err_other  # it has one
    finished = json.loads(out_other.strip().splitlines()[-1])
    assert finished["status"] == "FINISHED", err_other[-3000:]
    (cell,) = finished["cells"]
    assert cell["status"] == "FINISHED" and cell["metrics"]["slept"] == 12.0 and cell["pid"] == worker_pid
    assert not kernel.is_running() or kernel.status() == "zombie"  # it ended on its own, after its 12 s
    assert _mlflow().get_run(cell["run_id"]).info.status == "FINISHED"


# -- a second Ctrl-C while the sweep waits for its cells to stop: it stops waiting ------------------
def test_a_second_sigint_stops_waiting_for_a_kernel_that_ignores_sigterm(tiny, qpo_home):
    notebook = tiny / "notebooks" / "tiny.ipynb"  # a kernel that ignores SIGTERM: stopping it takes the grace
    notebook.write_text(notebook.read_text().replace("import time\\n",
                                                     "import time, signal\\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\\n"))
    proc = subprocess.Popen([sys.executable, "-m", "qpo.cli.sweep", "tiny", "-p", "seconds", "300", "--workers", "1",
                             "--json"], env=project_env(tiny), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait(lambda: [n for n in qpo_home.glob("runs/tiny/*/notebook.ipynb") if '"running"' in n.read_text()],
              "the cell to run", check=lambda: None if proc.poll() is None else pytest.fail(proc.communicate()[1]))
        proc.send_signal(signal.SIGINT)
        time.sleep(1.0)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=180)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err[-3000:]
    assert "press Ctrl-C again to stop waiting" in err and "second signal: not waiting for the running cells" in err
    result = json.loads(out.strip().splitlines()[-1])
    (cell,) = result["cells"]
    assert result["status"] == "KILLED" and cell["status"] == "KILLED" and cell["run_id"], err[-3000:]
    run = _mlflow().get_run(cell["run_id"])
    assert run.info.status == "KILLED" and run.data.tags["qpo.stop_reason"] == "interrupted by SIGINT"


# -- 3. a sweep that cannot start writes nothing ------------------------------------------------------
def test_an_unwritable_runs_folder_is_refused_before_the_tracking_store_is_created(tiny, qpo_home, tmp_path,
                                                                                      monkeypatch):
    from qpo.workbench.run_control import RunsFolderError
    from qpo.workbench.sweep import run_sweep

    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("QPO_RUNS_DIR", str(blocker / "runs"))
    with pytest.raises(RunsFolderError, match="nothing was written"):
        run_sweep("tiny", {"label": ["a", "b"]}, workers=1)
    assert sorted(p.name for p in qpo_home.iterdir()) == []  # no mlflow.db, no lock, no runs


def test_an_unreachable_scheduler_exits_3_and_leaves_no_parent_run(tiny, qpo_home, monkeypatch, capsys):
    from qpo.cli.sweep import main
    from qpo.operations import cluster

    monkeypatch.setattr(cluster, "CONNECT_TIMEOUT", 3.0)
    address = f"tcp://127.0.0.1:{free_port()}"  # nothing listens there
    monkeypatch.setenv("QPO_DASK_SCHEDULER", address)
    assert main(["tiny", "-p", "label", "a", "b", "--json"]) == 3
    out, err = capsys.readouterr()
    answer = json.loads(out.strip().splitlines()[-1])
    assert answer["status"] == "ERROR" and f"cannot reach the Dask scheduler at {address}" in answer["error"]
    assert "QPO_DASK_SCHEDULER" in err
    assert not (qpo_home / "mlflow.db").exists()  # no store, so no parent run, FAILED or other
    assert not (qpo_home / "runs").exists()


# -- 4. fixed parameters from the command line; a sweep's kernels: Unix sockets, one BLAS thread
PROBE = '''import json, os
import numpy
from ipykernel.kernelapp import IPKernelApp
from threadpoolctl import threadpool_info
from IPython.display import display
app = IPKernelApp.instance()
with open(app.connection_file) as fh:
    transport = json.load(fh)["transport"]
blas = [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]
for name, value in {"ipc": float(transport == "ipc" and app.transport == "ipc"), "blas_threads": max(blas),
                    "omp_threads": float(os.environ.get("OMP_NUM_THREADS", "0")),
                    "torch_threads": float(os.environ.get("QPO_TORCH_THREADS", "0"))}.items():
    display({"application/vnd.qpo.record+json": {"name": name, "value": value}, "text/plain": name}, raw=True)
display({"application/vnd.qpo.record+json": {"name": "slept", "value": seconds}, "text/plain": "slept"}, raw=True)'''


@pytest.fixture
def probe(tiny) -> Path:
    """A pipeline ``probe`` whose notebook records what its kernel sees (transport, BLAS threads)."""
    import nbformat

    (tiny / "pipelines" / "probe.toml").write_text('description = "what a sweep kernel sees"\n'
                                                   'notebook = "notebooks/probe.ipynb"\nexperiment = "tiny"\n')
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    params = nbformat.v4.new_code_cell('label: str = "a"\nseconds: float = 0.0\nrun_id: "Optional[str]" = None')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell(PROBE)]
    nbformat.write(nb, str(tiny / "notebooks" / "probe.ipynb"))
    return tiny


def test_set_gives_every_cell_a_fixed_value_that_is_not_a_grid_dimension(probe, qpo_home, capsys):
    from qpo.cli.sweep import fixed_from_args, main
    from qpo.errors import InvalidValueError

    assert fixed_from_args([["seconds", "0.25"], ["label", "x y"]]) == {"seconds": 0.25, "label": "x y"}
    with pytest.raises(InvalidValueError, match="--set seconds is given twice"):
        fixed_from_args([["seconds", "1"], ["seconds", "2"]])
    assert main(["tiny", "-p", "label", "a", "--set", "seconds", "1", "-p", "seconds", "2", "--json"]) == 3
    assert "seconds is both a grid parameter (-p) and a fixed one (--set)" in capsys.readouterr().err

    assert main(["probe", "-p", "label", "a", "b", "--set", "seconds", "0.3", "--workers", "1", "--json"]) == 0
    out, err = capsys.readouterr()
    result = json.loads(out.strip().splitlines()[-1])
    # a sweep's local cluster runs without a dashboard, and says none
    assert "Dask: 1 worker(s), 1 thread(s), on a local cluster\n" in err and "dashboard" not in err, err
    assert result["names"] == ["label"]  # one grid dimension: seconds is not one
    assert [c["parameters"] for c in result["cells"]] == [{"label": "a"}, {"label": "b"}]
    assert [c["metrics"]["slept"] for c in result["cells"]] == [0.3, 0.3]
    client = _mlflow()
    parent = client.get_run(result["parent_run_id"])
    assert json.loads(parent.data.params["fixed.seconds"]) == 0.3 and "grid.seconds" not in parent.data.params
    assert json.loads(parent.data.params["grid.label"]) == ["a", "b"]
    for cell in result["cells"]:
        assert float(client.get_run(cell["run_id"]).data.params["seconds"]) == 0.3
        # the kernel's connection file and its app say ipc (no TCP port to race for); BLAS runs one thread
        assert cell["metrics"]["ipc"] == 1.0 and cell["metrics"]["blas_threads"] == 1.0, cell["metrics"]
        assert cell["metrics"]["omp_threads"] == 1.0 and cell["metrics"]["torch_threads"] == 1.0


def test_a_single_pipeline_run_starts_its_kernel_on_unix_sockets(probe, qpo_home, tmp_path, monkeypatch):
    """Runs started at once by cron, the scheduler or a user do not race for a TCP port either."""
    from qpo.workbench.pipelines import run_pipeline

    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "runtime"))
    run = run_pipeline("probe", {"label": "one"})
    assert run.status == "FINISHED", run.error
    assert run.metrics["ipc"] == 1.0, run.metrics
    assert not list((tmp_path / "runtime").glob("kernel-qpo-*.json"))  # its connection file removed


# -- 5. QPO_WORKER_THREADS: the numerical threads of a sweep's cells and a cluster's workers ---------
def test_worker_threads_are_a_positive_whole_number_default_1(tiny, qpo_home, monkeypatch, capsys):
    from qpo.cli.sweep import main
    from qpo.errors import InvalidValueError
    from qpo.operations.cluster import THREAD_VARS, thread_env, worker_threads
    from qpo.workbench._sweep_worker import run_cell

    monkeypatch.delenv("QPO_WORKER_THREADS", raising=False)
    monkeypatch.delenv("QPO_TORCH_THREADS", raising=False)
    assert worker_threads() == 1 and thread_env() == {**{v: "1" for v in THREAD_VARS}, "QPO_TORCH_THREADS": "1"}
    for given, expected in (("3", 3), (" 2 ", 2), ("", 1)):
        monkeypatch.setenv("QPO_WORKER_THREADS", given)
        assert worker_threads() == expected
    monkeypatch.setenv("QPO_TORCH_THREADS", "4")  # qpo's own torch setting, when given, is kept
    assert thread_env(2) == {**{v: "2" for v in THREAD_VARS}, "QPO_TORCH_THREADS": "4"}
    monkeypatch.delenv("QPO_TORCH_THREADS")
    for bad in ("0", "-1", "1.5", "two", "2 threads"):
        monkeypatch.setenv("QPO_WORKER_THREADS", bad)
        with pytest.raises(InvalidValueError, match=r"QPO_WORKER_THREADS must be a whole number of at least 1 \(the "
                                                    r"BLAS/OpenMP/torch threads .*\), got " + repr(bad).replace(".", r"\.")):
            worker_threads()
    # a sweep: refused before a cluster, a tracking store or a run exists (exit 3, its reason on stdout)
    assert main(["tiny", "-p", "label", "a", "b", "--json"]) == 3
    answer = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert answer["status"] == "ERROR" and "QPO_WORKER_THREADS must be a whole number" in answer["error"]
    assert sorted(p.name for p in qpo_home.iterdir()) == []
    # a worker of a team's cluster with a bad value of its own: the cell fails, saying why, and starts nothing
    cell = run_cell("tiny", 0, {"label": "a"}, sweep_id="s", tags={}, tracking_uri="sqlite:///unused.db", run_name="x")
    assert cell["status"] == "FAILED" and "QPO_WORKER_THREADS must be a whole number" in cell["error"]
    assert cell["run_id"] is None and not (qpo_home / "runs").exists()


def test_worker_threads_reach_the_cells_kernels_and_the_clusters_workers(probe, qpo_home, monkeypatch, capsys):
    from qpo.cli.sweep import main
    from qpo.operations.cluster import dask_client, worker_threads_env

    monkeypatch.setenv("QPO_WORKER_THREADS", "2")
    monkeypatch.delenv("QPO_TORCH_THREADS", raising=False)
    with dask_client(1, dashboard=False) as client:  # the nightly runs' local cluster
        (env,) = worker_threads_env(client).values()
    assert set(env.values()) == {"2"}, env
    assert main(["probe", "-p", "label", "a", "--workers", "1", "--json"]) == 0
    (cell,) = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["cells"]
    # the kernel's BLAS runs 2 threads, its OpenMP and qpo's torch setting say 2
    assert cell["metrics"]["blas_threads"] == 2.0, cell["metrics"]
    assert cell["metrics"]["omp_threads"] == 2.0 and cell["metrics"]["torch_threads"] == 2.0
