"""The store, on SQLite and (when QPO_TEST_DATABASE_URL is set, as CI does) on a real PostgreSQL."""
import contextlib
import uuid
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import func, insert, inspect, select, text
from sqlalchemy.exc import IntegrityError

import qpo
from qpo.errors import StoreError
from qpo.store import (
    Advisor,
    ClientPortfolio,
    Holding,
    RiskMetric,
    Transaction,
    connect,
    create_portfolio,
    list_portfolios,
    portfolio_weights,
    record_optimization_run,
    record_risk_metrics,
    session_scope,
)
from qpo.store.db import current_revision
from qpo.store.repository import get_or_create_advisor, risk_history
from qpo.workbench import demo as seed_module
from qpo.workbench.demo import seed_demo
from tests.conftest import database_urls

TABLES = {"advisors", "portfolios", "holdings", "transactions", "optimization_runs", "risk_metrics",
          "alembic_version"}


@contextlib.contextmanager
def fresh_store_url(kind: str, tmp_path):
    """The URL of a store that does not exist yet: a SQLite file not yet created, or, on the shared
    PostgreSQL database, a private empty schema (tests never see each other's rows)."""
    if kind == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.db'}"
        return
    from sqlalchemy import create_engine

    from qpo.store import db

    schema = f"t_{uuid.uuid4().hex[:10]}"
    admin = create_engine(kind)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in kind else "?"
    url = f"{kind}{sep}options=-csearch_path%3D{schema}"
    try:
        yield url
    finally:
        for cache in (db._ENGINES, db._READERS):
            eng = cache.pop(url, None)
            if eng is not None:
                eng.dispose()
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(params=database_urls())
def store_url(request, tmp_path):
    with fresh_store_url(request.param, tmp_path) as url:
        yield url


@pytest.fixture
def engine(store_url):
    return connect(store_url)


def test_migrations_create_the_schema(engine):
    assert TABLES <= set(inspect(engine).get_table_names())
    assert current_revision(engine) == "0001"


def test_readers_refuse_a_store_that_does_not_exist(store_url):
    """A reader (dashboard, report, pipeline) meets a store never created: no SQLite file, or a
    PostgreSQL database without qpo's schema. It is refused with the URL and the command that
    creates it, and nothing is created; a writer then creates it, and the reader opens it."""
    from qpo.errors import MissingStoreError
    from qpo.store import store_exists
    from qpo.store.db import safe_url

    with pytest.raises(MissingStoreError) as info:
        connect(store_url, create=False)
    assert str(info.value).startswith(f"no store at {safe_url(store_url)}: ")
    assert "`qpo db upgrade`" in str(info.value) and "`qpo db seed`" in str(info.value)
    assert not store_exists(store_url)
    if store_url.startswith("sqlite"):
        assert not Path(store_url.removeprefix("sqlite:///")).exists()
    else:
        from sqlalchemy import create_engine

        probe = create_engine(store_url)
        try:
            assert inspect(probe).get_table_names() == []  # not even alembic_version
        finally:
            probe.dispose()
    writer = connect(store_url)
    assert store_exists(store_url)
    assert current_revision(connect(store_url, create=False)) == current_revision(writer) == "0001"


def test_models_and_migrations_agree(engine):
    """The schema the migrations build is the one the models describe (nothing to autogenerate)."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from qpo.store import Base

    with engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []


def test_seed_demo_is_real_and_runs_once(engine, sp500):
    assert seed_demo(engine, prices=sp500) == 4
    assert seed_demo(engine, prices=sp500) == 0  # first run only
    with session_scope(engine) as s:
        table = list_portfolios(s)
        assert table["name"].tolist() == ["Balanced Growth", "Conservative Income", "Min-Variance Core", "Tech Tilt"]
        w = portfolio_weights(s, "Balanced Growth", sp500)
    # seeded as dollar weights at the last close: the weights come back at that date
    assert w.sum() == pytest.approx(1.0)
    assert w["AAPL"] == pytest.approx(0.12, abs=1e-6) and w["XOM"] == pytest.approx(0.08, abs=1e-6)
    with session_scope(engine) as s:
        mv = portfolio_weights(s, "Min-Variance Core", sp500)
    assert mv.max() <= 0.15 + 1e-6 and len(mv) >= 7  # the optimizer's own capped answer


def test_concurrent_first_runs_seed_once(engine, sp500, monkeypatch):
    """Two dashboards opened at once on a fresh install: the second finds the store empty, and
    while it prepares its own seed the first one commits. The second then writes nothing (its
    name check refuses; had both passed it, the unique constraints would, with the same outcome)."""
    original = seed_module._min_variance_weights
    competitor = {}

    def interleaved(prices):
        if not competitor:  # the first run's count check has passed: let another process seed now
            competitor["created"] = -1
            monkeypatch.setattr(seed_module, "_min_variance_weights", original)
            competitor["created"] = seed_demo(engine, prices=prices)
        return original(prices)

    monkeypatch.setattr(seed_module, "_min_variance_weights", interleaved)
    assert seed_demo(engine, prices=sp500) == 0
    assert competitor["created"] == 4
    with session_scope(engine) as s:
        assert len(list_portfolios(s)) == 4
        assert s.scalar(select(func.count(Transaction.id))) == sum(
            len(p.holdings) for p in s.scalars(select(ClientPortfolio)))


def test_failed_write_leaves_nothing(engine):
    with session_scope(engine) as s:
        advisor = get_or_create_advisor(s, "a@example.com", "A")
    # the database itself refuses the second holding of the same ticker: the whole transaction goes
    with pytest.raises(IntegrityError):
        with session_scope(engine) as s:
            p = ClientPortfolio(name="Half", client_name="C", advisor_id=advisor.id, base_currency="USD")
            p.holdings = [Holding(ticker="KO", quantity=10), Holding(ticker="KO", quantity=5)]
            s.add(p)
            s.add(Advisor(email="b@example.com", name="B", role="advisor"))
    with session_scope(engine) as s:
        assert s.scalar(select(func.count(ClientPortfolio.id))) == 0
        assert s.scalar(select(func.count(Holding.id))) == 0
        assert s.scalar(select(func.count(Advisor.id))) == 1
    # a check constraint of the schema (quantity > 0), not only qpo's own checks
    with session_scope(engine) as s:
        pid = create_portfolio(s, "Real", "C", s.merge(advisor), {"KO": 1.0}).id
    with pytest.raises(IntegrityError, match="ck_holding_quantity_positive"):
        with session_scope(engine) as s:
            s.execute(insert(Holding).values(portfolio_id=pid, ticker="PEP", quantity=-1))  # past the model checks
    with session_scope(engine) as s:
        assert s.scalar(select(func.count(Holding.id))) == 1


def test_numpy_numbers_are_numbers(engine):
    import numpy as np

    with session_scope(engine) as s:
        advisor = get_or_create_advisor(s, "a@example.com", "A")
        create_portfolio(s, "Numpy", "C", advisor, {"KO": np.int64(10), "PEP": np.float32(2.5)})
        record_risk_metrics(s, "Numpy", "2022-12-28", {"var": np.float32(0.01), "n": np.int64(3)})
    with session_scope(engine) as s:
        assert risk_history(s, "Numpy")["value"].tolist() == pytest.approx([3.0, 0.01])
        with pytest.raises(StoreError, match=r"ticker 'WAY-TOO-LONG-A-SYMBOL' is not a symbol of 1 to 16"):
            create_portfolio(s, "Long", "C", advisor, {"WAY-TOO-LONG-A-SYMBOL": 1})


def test_untracked_metrics_replace_untracked_ones(engine):
    with session_scope(engine) as s:
        create_portfolio(s, "P", "C", get_or_create_advisor(s, "a@example.com", "A"), {"KO": 1})
    for value in (0.01, 0.02):  # the notebook run by hand, twice
        with session_scope(engine) as s:
            record_risk_metrics(s, "P", "2022-12-28", {"var": value})
    with session_scope(engine) as s:
        record_risk_metrics(s, "P", "2022-12-28", {"var": 0.03}, mlflow_run_id="run-1")
        hist = risk_history(s, "P")
    assert sorted(hist["value"]) == [0.02, 0.03]


def test_create_portfolio_checks_before_writing(engine, sp500):
    with session_scope(engine) as s:
        advisor = get_or_create_advisor(s, "a@example.com", "A")
    with pytest.raises(StoreError, match=r"NVDA: not in the price data; KO: quantity -3 must be"):
        with session_scope(engine) as s:
            create_portfolio(s, "Bad", "C", s.merge(advisor), {"NVDA": 1.0, "KO": -3},
                             known_tickers=set(sp500.columns))
    with session_scope(engine) as s:
        assert list_portfolios(s).empty
    with session_scope(engine) as s:
        with pytest.raises(StoreError, match="no portfolio named 'Nope'; the store has: \\(none\\)"):
            portfolio_weights(s, "Nope", sp500)


def test_optimization_runs_and_risk_metrics(engine, sp500_clean):
    seed_demo(engine, prices=sp500_clean)
    rets = qpo.prices_to_returns(sp500_clean.iloc[-500:])
    result = qpo.optimize(qpo.PortfolioProblem.from_returns(rets), "min_variance")
    with session_scope(engine) as s:
        run = record_optimization_run(s, result, portfolio="Tech Tilt", parameters={"window": 500})
        record_risk_metrics(s, "Tech Tilt", "2022-12-28", {"var": 0.031, "volatility": 0.34}, mlflow_run_id="abc")
    with session_scope(engine) as s:
        hist = risk_history(s, "Tech Tilt")
        stored = s.get(type(run), run.id)
        assert stored.weights["KO"] == pytest.approx(result.weights["KO"])
        assert stored.status == "optimal"
    assert hist["metric"].tolist() == ["var", "volatility"]
    assert hist["as_of"].iloc[0] == pd.Timestamp("2022-12-28").date()
    with pytest.raises(StoreError, match="not finite numbers"):
        with session_scope(engine) as s:
            record_risk_metrics(s, "Tech Tilt", "2022-12-29", {"var": float("nan")})
    with session_scope(engine) as s:
        assert s.scalar(select(func.count(RiskMetric.id))) == 2


def test_default_url_is_a_sqlite_file_in_home(qpo_home, monkeypatch):
    from qpo import config

    assert config.database_url() == f"sqlite:///{qpo_home / 'qpo.db'}"
    monkeypatch.setenv("QPO_DATABASE_URL", "postgresql+psycopg://u:p@db.example:5432/x")
    assert config.database_url().startswith("postgresql+psycopg://")


def test_unreachable_store_is_a_clear_error():
    with pytest.raises(StoreError, match="cannot open the store at '127.0.0.1:1/none'"):
        connect("postgresql+psycopg://u:p@127.0.0.1:1/none")
