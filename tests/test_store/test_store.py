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
    Actor,
    ClientPortfolio,
    RiskMetric,
    Transaction,
    User,
    add_user,
    connect,
    create_portfolio,
    list_portfolios,
    portfolio_weights,
    position,
    record_optimization_run,
    record_risk_metrics,
    session_scope,
)
from qpo.store.db import current_revision
from qpo.store.repository import risk_history
from qpo.workbench import demo as seed_module
from qpo.workbench.demo import opening_day, seed_demo
from tests.conftest import database_urls

TABLES = {"advisors", "portfolios", "transactions", "proposals", "audit_log", "optimization_runs", "risk_metrics",
          "market_data", "ops_runs", "valuations", "book_risk", "alerts", "sectors",
          "alembic_version"}
#: the actor of these tests' writes and reads (a system job: everything is allowed)
SYSTEM = Actor.system("tests")
HEAD = "0005"


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
    tables = set(inspect(engine).get_table_names())
    assert TABLES <= tables and "holdings" not in tables  # holdings are derived from the ledger
    assert current_revision(engine) == HEAD


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
    assert current_revision(connect(store_url, create=False)) == current_revision(writer) == HEAD


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
        table = list_portfolios(s, SYSTEM)
        assert table["name"].tolist() == ["Balanced Growth", "Conservative Income", "Min-Variance Core", "Tech Tilt"]
        opened = opening_day(sp500)
        w = portfolio_weights(s, SYSTEM, "Balanced Growth", sp500, as_of=opened)
        pos = position(s, SYSTEM, "Balanced Growth")
        assert pos.first_date == opened.date() and position(s, SYSTEM, "Balanced Growth", opened - pd.Timedelta(days=1)).n_transactions == 0
    # the book opens 756 trading days before the panel's last date, three years of history after it
    assert opened == sp500.index[-757]
    # seeded as whole shares bought for dollar weights at the opening close: the weights come back at
    # that date, off only by the rounding down to whole shares (one share of AAPL is 0.01 % of $1M)
    assert w.sum() == pytest.approx(1.0)
    assert w["AAPL"] == pytest.approx(0.12, abs=5e-4) and w["XOM"] == pytest.approx(0.08, abs=5e-4)
    # the ledger's cash is the deposit less every buy and its cost: what the rounding left, never negative
    last = sp500.loc[opened]
    invested = float((pos.shares * last[pos.shares.index]).sum())
    assert 0 <= pos.cash < 1_000_000 * 0.002 and invested + pos.cash < 1_000_000
    assert (pos.shares == pos.shares.round()).all() and table.set_index("name").loc["Balanced Growth", "cash"] == \
        pytest.approx(pos.cash)
    with session_scope(engine) as s:
        mv = portfolio_weights(s, SYSTEM, "Min-Variance Core", sp500, as_of=opened)
    assert mv.max() <= 0.15 + 1e-3 and len(mv) >= 7  # the optimizer's own capped answer (in whole shares)


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
        table = list_portfolios(s, SYSTEM)
        assert len(table) == 4
        # one opening deposit and one buy per name held, once: the second run wrote no entry
        assert s.scalar(select(func.count(Transaction.id))) == int((1 + table["n_holdings"]).sum())


def test_failed_write_leaves_nothing(engine):
    with session_scope(engine) as s:
        add_user(s, SYSTEM, "a@example.com", "A")
    # the database itself refuses a ledger entry past the models' checks: the whole transaction goes
    with pytest.raises(IntegrityError, match="ck_transaction_quantity_positive"):
        with session_scope(engine) as s:
            pid = create_portfolio(s, SYSTEM, "Half", "C", "a@example.com", holdings={"KO": 10.0}).id
            s.add(User(email="b@example.com", name="B", role="advisor"))
            s.flush()
            s.execute(insert(Transaction).values(portfolio_id=pid, kind="transfer_in", trade_date=pd.Timestamp(
                "2022-12-28").date(), ticker="PEP", quantity=-1, fees=0.0, created_by="system:tests"))
    with session_scope(engine) as s:
        assert s.scalar(select(func.count(ClientPortfolio.id))) == 0
        assert s.scalar(select(func.count(Transaction.id))) == 0
        assert s.scalar(select(func.count(User.id))) == 1
    # a check constraint of the schema (quantity > 0), not only qpo's own checks
    with session_scope(engine) as s:
        pid = create_portfolio(s, SYSTEM, "Real", "C", "a@example.com", holdings={"KO": 1.0}).id
    with pytest.raises(IntegrityError, match="ck_transaction_quantity_positive"):
        with session_scope(engine) as s:
            s.execute(insert(Transaction).values(portfolio_id=pid, kind="buy", trade_date=pd.Timestamp(
                "2022-12-28").date(), ticker="PEP", quantity=-1, price=1.0, fees=0.0, created_by="x"))
    with session_scope(engine) as s:
        assert s.scalar(select(func.count(Transaction.id))) == 1
        assert position(s, SYSTEM, "Real").shares.to_dict() == {"KO": 1.0}


def test_numpy_numbers_are_numbers(engine):
    import numpy as np

    with session_scope(engine) as s:
        add_user(s, SYSTEM, "a@example.com", "A")
        create_portfolio(s, SYSTEM, "Numpy", "C", "a@example.com", holdings={"KO": np.int64(10), "PEP": np.float32(2.5)},
                         cash=np.float64(100.5))
        record_risk_metrics(s, SYSTEM, "Numpy", "2022-12-28", {"var": np.float32(0.01), "n": np.int64(3)})
    with session_scope(engine) as s:
        assert risk_history(s, SYSTEM, "Numpy")["value"].tolist() == pytest.approx([3.0, 0.01])
        pos = position(s, SYSTEM, "Numpy")
        assert pos.shares.to_dict() == {"KO": 10.0, "PEP": 2.5} and pos.cash == 100.5
        with pytest.raises(StoreError, match=r"ticker 'WAY-TOO-LONG-A-SYMBOL' is not a symbol of 1 to 16"):
            create_portfolio(s, SYSTEM, "Long", "C", "a@example.com", holdings={"WAY-TOO-LONG-A-SYMBOL": 1})


def test_untracked_metrics_replace_untracked_ones(engine):
    with session_scope(engine) as s:
        add_user(s, SYSTEM, "a@example.com", "A")
        create_portfolio(s, SYSTEM, "P", "C", "a@example.com", holdings={"KO": 1})
    for value in (0.01, 0.02):  # the notebook run by hand, twice
        with session_scope(engine) as s:
            record_risk_metrics(s, SYSTEM, "P", "2022-12-28", {"var": value})
    with session_scope(engine) as s:
        record_risk_metrics(s, SYSTEM, "P", "2022-12-28", {"var": 0.03}, mlflow_run_id="run-1")
        hist = risk_history(s, SYSTEM, "P")
    assert sorted(hist["value"]) == [0.02, 0.03]


def test_create_portfolio_checks_before_writing(engine, sp500):
    with session_scope(engine) as s:
        add_user(s, SYSTEM, "a@example.com", "A")
    with pytest.raises(StoreError, match=r"NVDA: not in the price data; KO: shares -3 must be"):
        with session_scope(engine) as s:
            create_portfolio(s, SYSTEM, "Bad", "C", "a@example.com", holdings={"NVDA": 1.0, "KO": -3},
                             known_tickers=set(sp500.columns))
    with session_scope(engine) as s:
        assert list_portfolios(s, SYSTEM).empty
        assert s.scalar(select(func.count(Transaction.id))) == 0
    with session_scope(engine) as s:
        with pytest.raises(StoreError, match="no portfolio named 'Nope'; `qpo portfolio list` shows the ones"):
            portfolio_weights(s, SYSTEM, "Nope", sp500)


def test_optimization_runs_and_risk_metrics(engine, sp500_clean):
    seed_demo(engine, prices=sp500_clean)
    rets = qpo.prices_to_returns(sp500_clean.iloc[-500:])
    result = qpo.optimize(qpo.PortfolioProblem.from_returns(rets), "min_variance")
    with session_scope(engine) as s:
        run = record_optimization_run(s, SYSTEM, result, portfolio="Tech Tilt", parameters={"window": 500})
        record_risk_metrics(s, SYSTEM, "Tech Tilt", "2022-12-28", {"var": 0.031, "volatility": 0.34},
                            mlflow_run_id="abc")
    with session_scope(engine) as s:
        hist = risk_history(s, SYSTEM, "Tech Tilt")
        stored = s.get(type(run), run.id)
        assert stored.weights["KO"] == pytest.approx(result.weights["KO"])
        assert stored.status == "optimal"
    assert hist["metric"].tolist() == ["var", "volatility"]
    assert hist["as_of"].iloc[0] == pd.Timestamp("2022-12-28").date()
    with pytest.raises(StoreError, match="not finite numbers"):
        with session_scope(engine) as s:
            record_risk_metrics(s, SYSTEM, "Tech Tilt", "2022-12-29", {"var": float("nan")})
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


def test_a_store_at_head_is_opened_without_alembic(tmp_path):
    """A reader opening a store already at head (every dashboard kernel, every command) checks the
    revision with plain SQL against the migration files' own head, without importing alembic; the
    files' head is alembic's, and an older store is still migrated."""
    import subprocess
    import sys

    from qpo.store import connect
    from qpo.store.db import _head_from_files, current_revision, head_revision

    assert _head_from_files() == head_revision()
    url = f"sqlite:///{tmp_path / 'qpo.db'}"
    engine = connect(url)
    assert current_revision(engine) == head_revision()
    code = ("import sys\nfrom qpo.store import connect\n"
            f"engine = connect({url!r}, create=False)\n"
            "print('alembic' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.split() == ["False"], out.stderr[-2000:]
    from qpo.store.db import _at_head

    assert _at_head(engine)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '0002'"))
    assert not _at_head(engine)  # an older store: alembic decides (and migrates it)
