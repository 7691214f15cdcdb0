"""The Dask cluster of the nightly runs: a LocalCluster of one-thread worker processes by default,
a separately started ``dask scheduler`` + ``dask worker`` on 127.0.0.1 when QPO_DASK_SCHEDULER
names it; the same code either way."""
from __future__ import annotations

import os
import time

import numpy as np
import pytest

from qpo.errors import InvalidValueError
from qpo.operations.cluster import SCHEDULER_ENV, ClusterError, dask_client, default_workers, worker_threads_env
from tests.servers import free_port, team_dask_cluster


def _square_sum(chunk: np.ndarray, panel: np.ndarray) -> float:
    return float((panel[chunk] ** 2).sum())


def _pid() -> int:
    return os.getpid()


def test_local_cluster_of_processes_one_thread_each():
    lines: list[str] = []
    with dask_client(2, log=lines.append) as client:
        info = client.qpo_info
        assert (info.kind, info.workers, info.threads) == ("local", 2, 2)
        assert info.scheduler.startswith("tcp://127.0.0.1:")
        assert info.dashboard and info.dashboard.startswith("http://127.0.0.1:")
        assert lines == [f"Dask: 2 worker(s), 2 thread(s), on a local cluster; dashboard {info.dashboard}"]
        # processes, not threads: each worker is its own process, not this one
        pids = set(client.run(_pid).values())
        assert len(pids) == 2 and os.getpid() not in pids
        # the numerical libraries run one thread in every worker
        for env in worker_threads_env(client).values():
            assert env["OMP_NUM_THREADS"] == env["OPENBLAS_NUM_THREADS"] == env["MKL_NUM_THREADS"] == "1"
        # work on a scattered panel: the answer is the one computed here
        panel = np.arange(40.0).reshape(8, 5)
        shared = client.scatter(panel, broadcast=True)
        chunks = [np.arange(0, 4), np.arange(4, 8)]
        got = client.gather([client.submit(_square_sum, c, shared, pure=False) for c in chunks])
        assert sum(got) == pytest.approx(float((panel ** 2).sum()))
        import urllib.request

        with urllib.request.urlopen(info.dashboard, timeout=30) as resp:  # the dashboard answers
            assert resp.status == 200


def test_workers_are_checked(monkeypatch):
    monkeypatch.delenv("QPO_DASK_WORKERS", raising=False)
    assert default_workers(3) == 3 and default_workers() >= 1
    monkeypatch.setenv("QPO_DASK_WORKERS", "5")
    assert default_workers() == 5
    for bad in (0, -1, 1.5, True, "2"):
        with pytest.raises(InvalidValueError, match="workers must be a whole number of at least 1"):
            default_workers(bad)


def test_an_unreachable_scheduler_is_a_clear_error(monkeypatch):
    port = free_port()  # nothing listens there
    monkeypatch.setenv(SCHEDULER_ENV, f"tcp://127.0.0.1:{port}")
    monkeypatch.setattr("qpo.operations.cluster.CONNECT_TIMEOUT", 3.0)
    with pytest.raises(ClusterError, match=rf"cannot reach the Dask scheduler at tcp://127.0.0.1:{port} "
                                           rf"\(QPO_DASK_SCHEDULER\).*dask worker"):
        with dask_client():
            pass


def test_a_separately_started_scheduler_and_worker(monkeypatch, tmp_path):
    """`dask scheduler` and `dask worker` started as a team would, on 127.0.0.1 at free ports:
    QPO_DASK_SCHEDULER sends the work there, and closing the client leaves the cluster running."""
    with team_dask_cluster(tmp_path) as (address, board, scheduler, worker):
        monkeypatch.setenv(SCHEDULER_ENV, address)
        lines: list[str] = []
        with dask_client(4, log=lines.append) as client:  # workers= is the local cluster's: said and ignored
            info = client.qpo_info
            assert (info.kind, info.scheduler, info.workers, info.threads) == ("remote", address, 1, 1)
            assert info.dashboard == f"http://127.0.0.1:{board}/status"
            assert lines[0] == f"workers=4 is ignored: the cluster at {address} has its own workers"
            assert lines[1] == f"Dask: 1 worker(s), 1 thread(s), on the scheduler at {address}; dashboard {info.dashboard}"
            [worker_pid] = client.run(os.getpid).values()  # functions of installed modules: the worker has no tests/
            assert worker_pid not in (os.getpid(), worker.pid)  # the worker's process, under its nanny
            panel = np.arange(12.0).reshape(4, 3)
            shared = client.scatter(panel, broadcast=True)
            assert client.submit(np.vdot, shared, shared, pure=False).result() == float((panel ** 2).sum())
        time.sleep(0.5)
        assert scheduler.poll() is None and worker.poll() is None  # the team's cluster keeps running
