"""The nightly book on a team's cluster: a ``dask scheduler`` and a ``dask worker`` started
separately on 127.0.0.1 (as a team would, the worker in a folder of its own with none of qpo's
settings), ``QPO_DASK_SCHEDULER`` pointing at the scheduler. A seeded book is valued and
risk-checked there; the stored valuations and risk rows equal those a ``LocalCluster`` run of the
same date stores for the same book (to 1e-12), on SQLite and on the real PostgreSQL (the worker
opens the store from its URL); the worker really ran every chunk (its own log of computed tasks),
and the runs name the scheduler they ran on."""
from __future__ import annotations

import json
import os
import time

import numpy as np
import pandas as pd
import pytest

import qpo
from qpo.book.synthetic import seed_book
from qpo.operations.cluster import SCHEDULER_ENV, dask_client
from qpo.operations.nightly import run_risk, run_valuation
from qpo.store import OpsRun, connect, session_scope
from qpo.store.operations import RISK_COLUMNS, book_risk_on, valuations_on
from tests.conftest import database_urls
from tests.servers import team_dask_cluster
from tests.test_store.book_stores import fresh_store_url

N, SEED, CHUNK = 30, 7, 8  # 4 chunks of the book: 8 + 8 + 8 + 6
CHUNKS = 4
TOL = 1e-12
VALUE_COLUMNS = ["market_value", "cash", "holdings_value", "daily_return", "mtd_return", "ytd_return",
                 "inception_return"]


@pytest.fixture(scope="module")
def team_cluster(tmp_path_factory):
    """``dask scheduler`` + one ``dask worker`` (one thread) on 127.0.0.1; yields the scheduler's
    address and a client of the test's own (to ask the worker what it ran)."""
    from distributed import Client

    folder = tmp_path_factory.mktemp("team-cluster")
    plain = {k: v for k, v in os.environ.items() if not k.startswith(("QPO_", "MLFLOW_"))}  # no qpo settings
    with team_dask_cluster(folder, plain, worker_name="team-worker-1") as (address, _, _, _):
        client = Client(address, timeout=60, set_as_default=False)
        try:
            client.wait_for_workers(1, timeout=120)
            yield address, client
        finally:
            client.close()


def _computed(client) -> list[str]:
    """The keys of every task the team's worker computed (its state machine's log)."""
    def keys(dask_worker):
        return [str(e[0]) for e in dask_worker.state.log if len(e) > 1 and e[1] == "compute-task"]

    (got,) = client.run(keys).values()
    return got


@pytest.fixture(scope="module")
def day():
    return qpo.load_prices("sp500").index[-1].date()


@pytest.fixture(scope="module")
def local_rows(tmp_path_factory, day):
    """The reference: the same book (seed, size) valued and risk-checked on a LocalCluster of two
    worker processes, in a SQLite store; its stored rows by portfolio name."""
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv(SCHEDULER_ENV, raising=False)
        home = tmp_path_factory.mktemp("local-home")
        mp.setenv("QPO_HOME", str(home))
        engine = connect(f"sqlite:///{home / 'store.db'}")
        seed_book(engine, N, seed=SEED)
        with dask_client(2) as client:
            assert client.qpo_info.kind == "local"
            val = run_valuation(day, engine=engine, client=client, chunk_size=CHUNK)
            risk = run_risk(day, engine=engine, client=client, chunk_size=CHUNK, deliver=False)
        assert (val.as_of, risk.as_of) == (day, day) and val.valued == N and risk.portfolios == N
        rows = (valuations_on(engine, day).set_index("portfolio"), book_risk_on(engine, day).set_index("portfolio"))
        engine.dispose()
        return rows


def _same(got: pd.DataFrame, want: pd.DataFrame, columns: list[str]) -> None:
    assert sorted(got.index) == sorted(want.index) and len(got) == N
    got = got.loc[want.index]
    for column in columns:
        a, b = got[column].to_numpy(float), want[column].to_numpy(float)
        assert np.array_equal(np.isnan(a), np.isnan(b)), column
        ok = ~np.isnan(a)
        worst = float(np.max(np.abs(a[ok] - b[ok]) / np.maximum(1.0, np.abs(b[ok])))) if ok.any() else 0.0
        assert worst <= TOL, (column, worst)


def _plain(details) -> dict:
    return json.loads(details) if isinstance(details, str) else json.loads(json.dumps(details, default=str))


@pytest.mark.parametrize("kind", database_urls())
def test_the_nightly_book_on_a_separately_started_scheduler_and_worker(kind, team_cluster, local_rows, day, tmp_path,
                                                                       monkeypatch):
    address, watcher = team_cluster
    want_val, want_risk = local_rows
    monkeypatch.setenv(SCHEDULER_ENV, address)
    before = _computed(watcher)
    with fresh_store_url(kind, tmp_path) as url:
        engine = connect(url)
        seed_book(engine, N, seed=SEED)
        lines: list[str] = []
        t0 = time.perf_counter()
        val = run_valuation(day, engine=engine, chunk_size=CHUNK, log=lines.append)  # no client: QPO_DASK_SCHEDULER
        risk = run_risk(day, engine=engine, chunk_size=CHUNK, deliver=False, log=lines.append)
        seconds = time.perf_counter() - t0
        # ran on the team's cluster, and said so
        for result in (val, risk):
            assert (result.scheduler, result.workers, result.chunks) == (address, 1, CHUNKS)
        assert f"Dask: 1 worker(s), 1 thread(s), on the scheduler at {address}; dashboard " in "\n".join(lines)
        with session_scope(engine) as s:
            details = [(r.kind, r.status, r.details["scheduler"]) for r in s.query(OpsRun).order_by(OpsRun.id)]
        assert details == [("valuation", "FINISHED", address), ("risk", "FINISHED", address)]
        # the worker computed every chunk of both runs (the test's process and the scheduler none)
        new = [k for k in _computed(watcher)[len(before):] if k.startswith(("valuation-", "risk-"))]
        assert sorted(k.split("-")[0] + "-" + k.split("-")[1] for k in new) == sorted(
            [f"valuation-{i}" for i in range(CHUNKS)] + [f"risk-{i}" for i in range(CHUNKS)])
        # the same rows as the LocalCluster's run of the same date
        got_val = valuations_on(engine, day).set_index("portfolio")
        got_risk = book_risk_on(engine, day).set_index("portfolio")
        engine.dispose()
    assert (got_val["status"] == "valued").all() and list(got_val.loc[want_val.index, "status"]) == list(
        want_val["status"])
    _same(got_val, want_val, VALUE_COLUMNS)
    _same(got_risk, want_risk, list(RISK_COLUMNS))
    assert list(got_risk.loc[want_risk.index, "breaches"]) == list(want_risk["breaches"])
    assert list(got_risk.loc[want_risk.index, "compliant"]) == list(want_risk["compliant"])
    assert int(got_risk["breaches"].sum()) == risk.breaches > 0  # the book's tight mandates: something to check
    details = [_plain(d) for d in got_risk.loc[want_risk.index, "details"]]
    assert details == [_plain(d) for d in want_risk["details"]]  # the checks, their values and limits
    assert any(d for d in details)
    where = "sqlite" if kind == "sqlite" else "postgresql"  # never the URL: it holds the password
    print(f"\n{where}: {N} portfolios valued + risk-checked on the team's scheduler {address} in {seconds:.1f} s; "
          f"{len(new)} chunks computed by its worker; equal to the LocalCluster's rows to {TOL:g}")
