"""The Dask cluster the nightly runs compute on.

:func:`dask_client` connects to the scheduler at ``QPO_DASK_SCHEDULER`` (e.g. ``tcp://host:8786``,
a team's cluster started with ``dask scheduler`` and ``dask worker tcp://host:8786``) when it is
set, else starts a :class:`~distributed.LocalCluster` of worker *processes* on this machine, one
task thread each, the numerical libraries' own threads set in every worker (``OMP_NUM_THREADS``,
``OPENBLAS_NUM_THREADS``, ``MKL_NUM_THREADS``, ... and qpo's torch setting ``QPO_TORCH_THREADS``) to
``QPO_WORKER_THREADS`` (:func:`worker_threads`; default 1, so that N workers use N cores and no
more). Either way the same code runs; the dashboard's address is logged. The workers inherit qpo's
MLflow settings (:data:`~qpo.tracking.mlflow_run.MLFLOW_QUIET_ENV`: no run links printed on stdout).

Workers of a remote cluster must import ``qpo`` (the same version) and reach the store's database.
"""
from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from qpo.errors import InvalidValueError, QpoError

#: the environment variable naming a running scheduler (``tcp://host:8786``)
SCHEDULER_ENV = "QPO_DASK_SCHEDULER"
#: the environment variable giving the number of local workers (default: the usable CPUs)
WORKERS_ENV = "QPO_DASK_WORKERS"
#: the numerical libraries' thread variables, set to :func:`worker_threads` (default 1) in every worker process
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "VECLIB_MAXIMUM_THREADS",
               "NUMEXPR_NUM_THREADS")
#: the environment variable giving the numerical threads of each worker (and of a sweep cell's kernel): default 1
WORKER_THREADS_ENV = "QPO_WORKER_THREADS"
#: qpo's torch threads (:mod:`qpo.forecasting`), set with the others unless given explicitly
TORCH_THREADS_ENV = "QPO_TORCH_THREADS"
#: seconds to wait for a remote scheduler to answer and for its first worker
CONNECT_TIMEOUT = 30.0
#: seconds to wait for the dashboard's page, asked once on connecting (no answer: no link shown)
DASHBOARD_PROBE_S = 5.0


class ClusterError(QpoError):
    """The Dask cluster could not be reached or started."""


@dataclass(frozen=True)
class ClusterInfo:
    """Where the work runs: ``kind`` ``local`` or ``remote``, the scheduler's address, the
    dashboard's link (None without bokeh), and the number of workers and threads."""

    kind: str
    scheduler: str
    dashboard: str | None
    workers: int
    threads: int

    def describe(self) -> str:
        where = "a local cluster" if self.kind == "local" else f"the scheduler at {self.scheduler}"
        board = f"; dashboard {self.dashboard}" if self.dashboard else ""
        return f"Dask: {self.workers} worker(s), {self.threads} thread(s), on {where}{board}"


def usable_cpus() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def default_workers(workers: int | None = None) -> int:
    """``workers`` when given, else ``QPO_DASK_WORKERS``, else the usable CPUs; a positive whole number."""
    value: Any = workers
    if value is None:
        env = os.environ.get(WORKERS_ENV)
        value = int(env) if env and env.strip().isdigit() else usable_cpus()
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidValueError(f"workers must be a whole number of at least 1, got {value!r}")
    return value


def worker_threads(value: str | None = None) -> int:
    """The numerical threads of a worker: ``value``, else ``QPO_WORKER_THREADS``, else 1; a positive whole number
    (an :class:`~qpo.errors.InvalidValueError` saying so otherwise)."""
    text = (os.environ.get(WORKER_THREADS_ENV) if value is None else value) or ""
    if not text.strip():
        return 1
    if not text.strip().isdigit() or int(text) < 1:
        raise InvalidValueError(f"{WORKER_THREADS_ENV} must be a whole number of at least 1 (the BLAS/OpenMP/torch "
                                f"threads of each Dask worker and sweep cell; default 1), got {text!r}")
    return int(text)


def thread_env(threads: int | None = None) -> dict[str, str]:
    """The environment of a worker's numerical threads: every :data:`THREAD_VARS` at ``threads`` (default
    :func:`worker_threads`), and ``QPO_TORCH_THREADS`` too unless this process sets it."""
    n = str(worker_threads() if threads is None else threads)
    return {**{var: n for var in THREAD_VARS}, TORCH_THREADS_ENV: os.environ.get(TORCH_THREADS_ENV) or n}


def _dashboard(client) -> str | None:
    """The dashboard's link when the scheduler serves one: a scheduler always runs an HTTP server
    (named ``dashboard`` in its services, 8787 by default) but serves the dashboard's pages only
    when started with one and bokeh is installed, so the page itself is asked."""
    import urllib.error
    import urllib.request

    try:
        link = client.dashboard_link
    except Exception:  # noqa: BLE001 - no HTTP server at all: no dashboard
        return None
    if not link:
        return None
    try:
        with urllib.request.urlopen(link, timeout=DASHBOARD_PROBE_S) as answer:  # noqa: S310 - the scheduler's link
            page = answer.read(4096).decode("utf-8", "replace")
            ok = answer.status == 200
    except (urllib.error.URLError, OSError, ValueError):
        return None
    return link if ok and "needs bokeh" not in page.lower() else None  # without bokeh: a page saying so


def _info(client, kind: str, dashboard: bool = True) -> ClusterInfo:
    info = client.scheduler_info()
    workers = info.get("workers", {})
    threads = sum(int(w.get("nthreads", 1)) for w in workers.values())
    return ClusterInfo(kind, str(info.get("address", "")), _dashboard(client) if dashboard else None, len(workers),
                       threads)


def cluster_info(client, kind: str | None = None) -> ClusterInfo:
    """The :class:`ClusterInfo` of a connected ``client`` (its dashboard's link only when it serves one)."""
    return _info(client, str(kind or getattr(client, "_qpo_kind", "remote")))


@contextlib.contextmanager
def dask_client(workers: int | None = None, *, scheduler: str | None = None, log: Callable[[str], None] | None = None,
                memory_limit: str | float | None = "auto", dashboard: bool = True) -> Iterator[Any]:
    """A :class:`distributed.Client` for the duration of the block (see the module).

    ``scheduler`` (default ``QPO_DASK_SCHEDULER``) is the address of a running scheduler; without
    one a local cluster of ``workers`` processes (default: ``QPO_DASK_WORKERS`` or the usable CPUs),
    one task thread each (:func:`thread_env`: ``QPO_WORKER_THREADS`` numerical threads, default 1), is
    started on 127.0.0.1 and stopped at the end (with its dashboard unless
    ``dashboard=False``). ``log`` receives one line naming the workers and the dashboard's link, when
    the cluster serves a dashboard. The client carries ``qpo_info`` (a
    :class:`ClusterInfo`). An unreachable scheduler is a :class:`ClusterError` naming it; a bad
    ``QPO_WORKER_THREADS`` an :class:`~qpo.errors.InvalidValueError`, before any cluster is reached.
    """
    from distributed import Client, LocalCluster

    from qpo.tracking.mlflow_run import MLFLOW_QUIET_ENV

    log = log or (lambda msg: None)
    threads = thread_env()  # a bad QPO_WORKER_THREADS: refused before any cluster is reached
    address = scheduler if scheduler is not None else os.environ.get(SCHEDULER_ENV, "").strip()
    if address:
        if workers is not None:
            log(f"workers={workers} is ignored: the cluster at {address} has its own workers")
        try:
            client = Client(address, timeout=CONNECT_TIMEOUT, set_as_default=False)
        except (OSError, TimeoutError) as exc:
            raise ClusterError(f"cannot reach the Dask scheduler at {address} ({SCHEDULER_ENV}): {exc}. Start one "
                               f"with `dask scheduler` and `dask worker {address}`, or unset {SCHEDULER_ENV} to run "
                               "on a local cluster") from exc
        try:
            try:
                client.wait_for_workers(1, timeout=CONNECT_TIMEOUT)
            except (OSError, TimeoutError) as exc:
                raise ClusterError(f"the Dask scheduler at {address} has no worker after {CONNECT_TIMEOUT:g} s; "
                                   f"start one with `dask worker {address}`") from exc
            client._qpo_kind = "remote"  # type: ignore[attr-defined]
            client.qpo_info = _info(client, "remote")  # type: ignore[attr-defined]
            log(client.qpo_info.describe())  # type: ignore[attr-defined]
            yield client
        finally:
            client.close()
        return

    n = default_workers(workers)
    cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True, host="127.0.0.1",
                           dashboard_address="127.0.0.1:0" if dashboard else None, memory_limit=memory_limit,
                           silence_logs=logging.ERROR, env={**threads, **MLFLOW_QUIET_ENV})
    try:
        client = Client(cluster, set_as_default=False)
        try:
            client._qpo_kind = "local"  # type: ignore[attr-defined]
            client.qpo_info = _info(client, "local", dashboard)  # type: ignore[attr-defined]
            log(client.qpo_info.describe())  # type: ignore[attr-defined]
            yield client
        finally:
            client.close()
    finally:
        cluster.close()


def worker_threads_env(client) -> dict[str, dict[str, str | None]]:
    """Each worker's thread variables (a check that the numerical libraries use the threads they were given)."""
    def read() -> dict[str, str | None]:
        return {var: os.environ.get(var) for var in (*THREAD_VARS, TORCH_THREADS_ENV)}

    return client.run(read)


__all__ = ["CONNECT_TIMEOUT", "SCHEDULER_ENV", "THREAD_VARS", "WORKERS_ENV", "WORKER_THREADS_ENV", "ClusterError",
           "ClusterInfo", "cluster_info", "dask_client", "default_workers", "thread_env", "usable_cpus", "worker_threads",
           "worker_threads_env"]
