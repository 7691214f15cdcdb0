"""The operations store (qpo.store.operations): runs recorded, a date's valuations and risk written
in one transaction that replaces the date's rows, bulk; on SQLite and PostgreSQL.

A failure in the middle of a write (a row the database refuses, the connection killed under it)
leaves the date's previous results whole and nothing half-written."""
from __future__ import annotations

import datetime as dt
import re
import time

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import event, func, insert, select, text

from qpo.errors import AccessDenied, StoreError
from qpo.store import Actor, Alert, BookRisk, ClientPortfolio, OpsRun, User, Valuation, session_scope
from qpo.store import operations as ops
from tests.test_store import book_stores
from tests.test_store.book_stores import (
    ANA,
    ANA_PF,
    BEN,
    BEN_PF,
    RITA,
    table_dump,
)

store_url, engine, book = book_stores.store_url, book_stores.engine, book_stores.book  # the fixtures

D1, D2, D3, D4 = dt.date(2024, 3, 25), dt.date(2024, 3, 26), dt.date(2024, 3, 27), dt.date(2024, 3, 28)


# -- helpers the other test modules share ------------------------------------------------------------
def portfolio_ids(engine) -> dict[str, int]:
    with session_scope(engine) as s:
        return {name: pid for pid, name in s.execute(select(ClientPortfolio.id, ClientPortfolio.name)).all()}


def valuation_frame(ids: list[int], *, scale: float = 1.0) -> pd.DataFrame:
    """value_book-shaped rows: the first valued, a second unpriced (market value NaN, never zero)."""
    rows = []
    for i, pid in enumerate(ids):
        unpriced = i % 2 == 1
        rows.append({"portfolio_id": pid, "market_value": np.nan if unpriced else 100_000.0 * scale + i,
                     "cash": 1_000.0 + i, "holdings_value": np.nan if unpriced else 99_000.0 * scale + i,
                     "daily_return": np.nan if unpriced else 0.001 * scale, "mtd_return": 0.01, "ytd_return": 0.05,
                     "inception_return": 0.2, "status": "unpriced" if unpriced else "valued",
                     "unpriced": ["ZZZ"] if unpriced else [], "stale": np.array(["AAPL"]) if i == 0 else []})
    return pd.DataFrame(rows)


def risk_table(ids: list[int], *, var: float = 0.015, compliant=True, breaches=0) -> pd.DataFrame:
    """BookRiskResult.table-shaped rows indexed by portfolio id."""
    n = len(ids)
    frame = pd.DataFrame({"volatility": np.full(n, 0.18), "var_historical": np.full(n, var),
                          "cvar_historical": np.full(n, var * 1.4), "var_parametric": np.full(n, var * 0.95),
                          "cvar_parametric": np.full(n, var * 1.2), "beta": np.full(n, 1.05),
                          "max_drawdown": np.full(n, -0.3), "worst_stress": np.full(n, -0.25)},
                         index=pd.Index(ids, name="portfolio_id"))
    frame["compliant"] = pd.Series([compliant] * n, index=frame.index, dtype=object)
    frame["breaches"] = breaches
    return frame


def details_for(ids: list[int]) -> dict:
    return {pid: {"stress": {"2008 crisis": -0.31, "covid": np.float64(-0.22)},
                  "compliance": [{"check": "VaR (historical)", "value": 0.015, "limit": 0.02, "passed": True}]}
            for pid in ids}


def add_portfolios(engine, n: int) -> list[int]:
    """``n`` bare portfolios of Ana, inserted in bulk (scaffolding for the bulk tests: the ledger is
    not what is measured)."""
    with engine.begin() as conn:
        advisor = conn.execute(select(User.id).where(User.email == ANA)).scalar_one()
        conn.execute(insert(ClientPortfolio), [{"name": f"Bulk {i:05d}", "client_name": f"Client {i}",
                                                "advisor_id": advisor, "base_currency": "USD"} for i in range(n)])
        return list(conn.execute(select(ClientPortfolio.id).where(ClientPortfolio.name.like("Bulk %"))
                                 .order_by(ClientPortfolio.id)).scalars())


def rows_of(engine, model, day) -> list[tuple]:
    cols = [c for c in model.__table__.columns if c.name not in ("id", "created_at")]
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(select(*cols).where(model.as_of == day).order_by(model.portfolio_id))]


@pytest.fixture
def killer(engine):
    """``kill(table)``: the next INSERT INTO ``table`` on ``engine`` finds its connection gone: on
    PostgreSQL the server terminates the backend (pg_terminate_backend from another connection),
    on SQLite the connection is closed under the statement."""
    armed: dict[str, str] = {}

    def _before(conn, cursor, statement, parameters, context, executemany):
        target = armed.get("table")
        if target is None or not statement.lstrip().upper().startswith(f"INSERT INTO {target.upper()}"):
            return
        armed.clear()
        raw = conn.connection.dbapi_connection
        if engine.dialect.name == "postgresql":
            pid = raw.info.backend_pid
            from sqlalchemy import create_engine

            admin = create_engine(engine.url)
            try:
                with admin.begin() as other:
                    other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            finally:
                admin.dispose()
            time.sleep(0.2)
        else:
            raw.close()

    event.listen(engine, "before_cursor_execute", _before)

    def kill(table: str) -> None:
        armed["table"] = table

    yield kill
    event.remove(engine, "before_cursor_execute", _before)
    engine.dispose()  # drop the killed connection from the pool


# -- runs --------------------------------------------------------------------------------------------
def test_recorded_run_finished_and_failed(book):
    with ops.recorded_run(book.engine, "valuation", "2024-03-25") as run:
        with book.engine.connect() as conn:
            assert conn.execute(select(OpsRun.status).where(OpsRun.id == run.id)).scalar_one() == "RUNNING"
        run.portfolios, run.details = 2, {"valued": 2, "took": np.float64(1.5)}
    with pytest.raises(ZeroDivisionError):
        with ops.recorded_run(book.engine, "risk", D1) as failed:
            failed.portfolios = 7
            1 / 0  # noqa: B018
    runs = ops.last_runs(book.engine)
    assert [r["id"] for r in runs] == [failed.id, run.id]
    assert runs[1]["status"] == "FINISHED" and runs[1]["portfolios"] == 2
    assert runs[1]["details"] == {"valued": 2, "took": 1.5} and runs[1]["as_of"] == D1
    assert runs[1]["finished_at"] is not None and runs[1]["seconds"] >= 0
    assert runs[0]["status"] == "FAILED" and runs[0]["error"] == "ZeroDivisionError: division by zero"
    assert runs[0]["portfolios"] == 7
    assert [r["id"] for r in ops.last_runs(book.engine, kind="risk")] == [failed.id]
    assert len(ops.last_runs(book.engine, n=1)) == 1
    with pytest.raises(StoreError, match="n must be a whole number"):
        ops.last_runs(book.engine, n=0)


# -- valuations --------------------------------------------------------------------------------------
def test_valuations_replace_the_date_and_keep_missing_values_missing(book):
    ids = portfolio_ids(book.engine)
    both = [ids[ANA_PF], ids[BEN_PF]]
    assert not ops.has_valuations(book.engine, D1)
    with ops.recorded_run(book.engine, "valuation", D1) as run:
        assert ops.write_valuations(book.engine, D1, valuation_frame(both), run_id=run.id) == 2
    assert ops.write_valuations(book.engine, D2, valuation_frame(both, scale=2.0), run_id=None) == 2
    assert ops.write_valuations(book.engine, D1, valuation_frame(both, scale=3.0), run_id=run.id) == 2  # a rerun
    assert ops.has_valuations(book.engine, D1) and not ops.has_valuations(book.engine, D3)
    with book.engine.connect() as conn:
        assert conn.execute(select(func.count(Valuation.id))).scalar_one() == 4  # replaced, not duplicated
    frame = ops.valuations_on(book.engine, D1)
    assert list(frame["portfolio"]) == [ANA_PF, BEN_PF] and list(frame["advisor_email"]) == [ANA, BEN]
    ana, ben = frame.iloc[0], frame.iloc[1]
    assert ana["market_value"] == 300_000.0 and ana["status"] == "valued" and ana["stale"] == ["AAPL"]
    assert ana["run_id"] == run.id and ana["daily_return"] == pytest.approx(0.003)
    assert np.isnan(ben["market_value"]) and ben["status"] == "unpriced" and ben["unpriced"] == ["ZZZ"]
    with book.engine.connect() as conn:  # NULL in the database, never zero
        assert conn.execute(select(Valuation.market_value).where(Valuation.portfolio_id == ids[BEN_PF],
                                                                 Valuation.as_of == D1)).scalar_one() is None
    # an advisor reads only their clients' rows; their history is theirs alone
    assert list(ops.valuations_on(book.engine, D1, actor=ANA)["portfolio"]) == [ANA_PF]
    assert list(ops.valuations_on(book.engine, D1, actor=RITA)["portfolio"]) == [ANA_PF, BEN_PF]
    hist = ops.valuation_history(book.engine, ids[ANA_PF], actor=ANA)
    assert list(hist["as_of"]) == [D1, D2] and list(hist["market_value"]) == [300_000.0, 200_000.0]
    with pytest.raises(AccessDenied, match="another advisor"):
        ops.valuation_history(book.engine, ids[ANA_PF], actor=BEN)
    with pytest.raises(StoreError, match="no portfolio with id"):
        ops.valuation_history(book.engine, 10_000_000, actor=ANA)


def test_bad_valuations_are_refused_before_anything_is_written(book):
    ids = portfolio_ids(book.engine)
    both = [ids[ANA_PF], ids[BEN_PF]]
    ops.write_valuations(book.engine, D1, valuation_frame(both), run_id=None)
    before = table_dump(book.engine)
    bad = valuation_frame(both).assign(status=["valued", "zero"])
    with pytest.raises(StoreError, match=r"status \['zero'\] is not one of valued, unpriced, empty"):
        ops.write_valuations(book.engine, D1, bad, run_id=None)
    with pytest.raises(StoreError, match=r"missing column\(s\) \['cash'\]"):
        ops.write_valuations(book.engine, D1, valuation_frame(both).drop(columns="cash"), run_id=None)
    twice = valuation_frame([ids[ANA_PF], ids[ANA_PF]])
    with pytest.raises(StoreError, match="more than once"):
        ops.write_valuations(book.engine, D1, twice, run_id=None)
    with pytest.raises(StoreError, match="as_of must be written YYYY-MM-DD"):
        ops.write_valuations(book.engine, "yesterday", valuation_frame(both), run_id=None)
    assert table_dump(book.engine) == before


def test_a_row_the_database_refuses_mid_write_leaves_the_date_as_it_was(book):
    """The second row names a portfolio that does not exist (a foreign key the database enforces,
    after the DELETE of the date ran): the whole write rolls back."""
    ids = portfolio_ids(book.engine)
    both = [ids[ANA_PF], ids[BEN_PF]]
    ops.write_valuations(book.engine, D1, valuation_frame(both), run_id=None)
    ops.write_book_risk(book.engine, D1, risk_table(both), details_for(both), [], run_id=None)
    previous_v, previous_r = rows_of(book.engine, Valuation, D1), rows_of(book.engine, BookRisk, D1)
    before = table_dump(book.engine)
    ghost = [ids[ANA_PF], 9_999_999]
    with pytest.raises(StoreError, match=f"{D1} keeps its previous results and nothing was half-written"):
        ops.write_valuations(book.engine, D1, valuation_frame(ghost, scale=5.0), run_id=None)
    with pytest.raises(StoreError, match="the book risk of 2024-03-25 not written"):
        ops.write_book_risk(book.engine, D1, risk_table(ghost, var=0.5), details_for(ghost), [], run_id=None)
    assert rows_of(book.engine, Valuation, D1) == previous_v and rows_of(book.engine, BookRisk, D1) == previous_r
    assert table_dump(book.engine) == before


def test_the_connection_killed_mid_write_leaves_the_date_as_it_was(book, killer):
    ids = portfolio_ids(book.engine)
    both = [ids[ANA_PF], ids[BEN_PF]]
    ops.write_valuations(book.engine, D1, valuation_frame(both), run_id=None)
    breach = [{"portfolio_id": ids[ANA_PF], "check": "VaR (historical)", "value": 0.03, "limit": 0.02,
               "message": "VaR 3.00% against 2.00%"}]
    first = ops.write_book_risk(book.engine, D1, risk_table(both, var=0.03), details_for(both), breach, run_id=None)
    assert len(first.new) == 1
    before = table_dump(book.engine)
    previous_v = rows_of(book.engine, Valuation, D1)

    gone = "terminat|closed|connection" if book.dialect == "postgresql" else "closed database"
    killer("valuations")  # after the DELETE of D1's rows, at the INSERT
    with pytest.raises(StoreError, match="went away") as err:
        ops.write_valuations(book.engine, D1, valuation_frame(both, scale=9.0), run_id=None)
    assert re.search(gone, str(err.value), re.I), str(err.value)
    killer("alerts")  # after the book_risk rows are replaced, while the alerts sync
    other = [{"portfolio_id": ids[BEN_PF], "check": "max single name", "value": 0.4, "limit": 0.2, "message": None}]
    with pytest.raises(StoreError, match="went away") as err:
        ops.write_book_risk(book.engine, D1, risk_table(both, var=0.01), details_for(both), other, run_id=None)
    assert re.search(gone, str(err.value), re.I), str(err.value)
    book.engine.dispose()
    assert rows_of(book.engine, Valuation, D1) == previous_v
    assert table_dump(book.engine) == before  # risk rows and alerts too: nothing half-written
    # and the store works on: the rerun succeeds
    assert ops.write_valuations(book.engine, D1, valuation_frame(both, scale=9.0), run_id=None) == 2
    assert ops.valuations_on(book.engine, D1)["market_value"].iloc[0] == 900_000.0


def test_book_risk_round_trip_and_previous_date(book):
    ids = portfolio_ids(book.engine)
    both = [ids[ANA_PF], ids[BEN_PF]]
    table = risk_table(both)
    table.loc[ids[BEN_PF], "beta"] = np.nan  # no benchmark: stays missing
    table.loc[ids[BEN_PF], "compliant"] = None  # not evaluated (no limits)
    ops.write_book_risk(book.engine, D1, table, details_for(both), [], run_id=None)
    ops.write_book_risk(book.engine, D3, risk_table(both, var=0.02), {str(k): v for k, v in details_for(both).items()},
                        [], run_id=None)
    ops.write_book_risk(book.engine, D3, risk_table(both, var=0.025), details_for(both), [], run_id=None)  # rerun
    got = ops.book_risk_on(book.engine, D1)
    assert list(got["portfolio"]) == [ANA_PF, BEN_PF] and got["var_historical"].tolist() == [0.015, 0.015]
    assert np.isnan(got["beta"].iloc[1]) and got["compliant"].tolist() == [True, None]
    assert got["details"].iloc[0]["stress"] == {"2008 crisis": -0.31, "covid": -0.22}
    assert ops.book_risk_on(book.engine, D3)["var_historical"].tolist() == [0.025, 0.025]
    assert ops.book_risk_on(book.engine, D3)["details"].iloc[1]["compliance"][0]["passed"] is True
    with book.engine.connect() as conn:
        assert conn.execute(select(func.count(BookRisk.id))).scalar_one() == 4
    assert list(ops.book_risk_on(book.engine, D3, actor=BEN)["portfolio"]) == [BEN_PF]
    assert ops.previous_risk_date(book.engine, D3) == D1
    assert ops.previous_risk_date(book.engine, D4) == D3
    assert ops.previous_risk_date(book.engine, D1) is None
    with pytest.raises(StoreError, match=r"missing column\(s\) \['beta'\]"):
        ops.write_book_risk(book.engine, D1, table.drop(columns="beta"), {}, [], run_id=None)
    with pytest.raises(StoreError, match="not in the risk table"):
        ops.write_book_risk(book.engine, D1, table, {}, [{"portfolio_id": 12345, "check": "x"}], run_id=None)


# -- bulk ----------------------------------------------------------------------------------------------
def test_ten_thousand_rows_are_written_in_bulk(book, capsys):
    """10,000 valuation rows and 10,000 risk rows (with their details JSON), each in one
    transaction; a rerun replaces them. Times are printed (well under a second or two here; the
    bound is generous for a loaded CI machine)."""
    ids = add_portfolios(book.engine, 10_000)
    assert len(ids) == 10_000
    vals = valuation_frame(ids)
    table, details = risk_table(ids), details_for(ids)
    breaches = [{"portfolio_id": pid, "check": "max single name", "value": 0.3, "limit": 0.2, "message": "over"}
                for pid in ids[:500]]
    timings = {}
    for attempt in ("first", "rerun"):
        t0 = time.perf_counter()
        assert ops.write_valuations(book.engine, D1, vals, run_id=None) == 10_000
        timings[f"valuations {attempt}"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        sync = ops.write_book_risk(book.engine, D1, table, details, breaches, run_id=None)
        timings[f"book_risk {attempt}"] = time.perf_counter() - t0
        assert len(sync.new if attempt == "first" else sync.persisting) == 500
    with book.engine.connect() as conn:
        assert conn.execute(select(func.count(Valuation.id))).scalar_one() == 10_000
        assert conn.execute(select(func.count(BookRisk.id))).scalar_one() == 10_000
        assert conn.execute(select(func.count(Alert.id))).scalar_one() == 500
    with capsys.disabled():
        print(f"\n[{book.dialect}] " + ", ".join(f"{k} {v:.2f} s" for k, v in timings.items()))
    assert max(timings.values()) < 30, timings


def test_system_actor_reads_everything(book):
    ids = portfolio_ids(book.engine)
    ops.write_valuations(book.engine, D1, valuation_frame([ids[ANA_PF], ids[BEN_PF]]), run_id=None)
    assert len(ops.valuations_on(book.engine, D1, actor=Actor.system("nightly"))) == 2
    assert len(ops.valuation_history(book.engine, ids[BEN_PF], actor=Actor.system("nightly"))) == 1


@pytest.fixture
def held_open(engine):
    """``hold(table)``: the next INSERT INTO ``table`` on ``engine``, on this thread, waits (its
    transaction open, its rows written and not committed) until ``release()``; ``waiting`` is set
    once it holds."""
    import threading

    state = {"table": None, "thread": None}
    waiting, release = threading.Event(), threading.Event()

    def _after(conn, cursor, statement, parameters, context, executemany):
        if state["table"] is None or threading.get_ident() != state["thread"]:
            return
        if statement.lstrip().upper().startswith(f"INSERT INTO {state['table'].upper()}"):
            state["table"] = None
            waiting.set()
            release.wait(30)

    event.listen(engine, "after_cursor_execute", _after)

    def hold(table: str) -> None:
        state["table"], state["thread"] = table, threading.get_ident()

    yield hold, waiting, release
    release.set()
    event.remove(engine, "after_cursor_execute", _after)


@pytest.mark.parametrize("what", ["valuations", "book_risk"])
def test_two_runs_writing_one_date_at_once_both_finish_and_the_last_one_stands(book, held_open, what):
    """A hand-run `qpo nightly value` while the scheduled one writes the same date: on PostgreSQL the
    second transaction's DELETE did not see the first's uncommitted rows, so its INSERT hit the
    unique (portfolio, date) key once the first committed and the second run FAILED."""
    import threading

    hold, waiting, release = held_open
    ids = portfolio_ids(book.engine)
    both = [ids[ANA_PF], ids[BEN_PF]]

    def write(scale: float):
        if what == "valuations":
            return ops.write_valuations(book.engine, D1, valuation_frame(both, scale=scale), run_id=None)
        return ops.write_book_risk(book.engine, D1, risk_table(both, var=0.01 * scale, compliant=False, breaches=1),
                                   details_for(both), [{"portfolio_id": ids[ANA_PF], "check": "VaR (historical)",
                                                        "value": 0.01 * scale, "limit": 0.005, "message": "over"}],
                                   run_id=None)

    outcome: dict[str, object] = {}

    def second():
        assert waiting.wait(30)  # the first writer's rows are in, not committed
        threading.Timer(1.0, release.set).start()  # the first commits while this one waits for it
        try:
            outcome["second"] = write(2.0)
        except Exception as exc:  # noqa: BLE001 (the failure is what the test reports)
            outcome["second"] = exc

    hold("valuations" if what == "valuations" else "book_risk")
    other = threading.Thread(target=second)
    other.start()
    write(1.0)
    other.join(60)
    assert not isinstance(outcome.get("second"), Exception), repr(outcome.get("second"))
    model = Valuation if what == "valuations" else BookRisk
    with book.engine.connect() as conn:
        assert conn.execute(select(func.count(model.id)).where(model.as_of == D1)).scalar_one() == 2
    if what == "valuations":
        assert ops.valuations_on(book.engine, D1)["market_value"].iloc[0] == 200_000.0  # the second run's
    else:
        assert ops.book_risk_on(book.engine, D1)["var_historical"].iloc[0] == pytest.approx(0.02)
        with book.engine.connect() as conn:  # one alert for the one breach, not one per writer
            assert conn.execute(select(func.count(Alert.id))).scalar_one() == 1
