"""Stores for the client book's tests (issue 17): a fresh store on SQLite and, when
QPO_TEST_DATABASE_URL is set (as CI does), on the real PostgreSQL, with a small book in it.

The test modules import the fixtures they use from here (pytest finds fixtures in a module's
namespace): ``store_url``, ``engine`` and ``book``.

The book: an admin, two advisors (Ana, Ben), a researcher (Rita), and one portfolio for each
advisor, both opened on 2024-01-02 with shares delivered in kind and a cash deposit.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, func, inspect, select, text

import qpo.book  # noqa: F401  (registers the strategy check the store applies; a test file alone needs it)
from qpo.store import Actor, AuditEntry, add_user, connect, create_portfolio, position, session_scope
from tests.conftest import database_urls

ADMIN = "root@qpo.test"
ANA = "ana@qpo.test"
BEN = "ben@qpo.test"
RITA = "rita@qpo.test"
ANA_PF = "Ana Growth"
BEN_PF = "Ben Income"
OPENED = dt.date(2024, 1, 2)
ANA_SHARES = {"AAPL": 100.0, "MSFT": 50.0}
ANA_CASH = 10_000.0
BEN_SHARES = {"KO": 200.0, "JNJ": 30.0}
BEN_CASH = 5_000.0


@contextlib.contextmanager
def fresh_store_url(kind: str, tmp_path):
    """The URL of a store that does not exist yet: a SQLite file not yet created, or, on the shared
    PostgreSQL database, a private empty schema (tests never see each other's rows). The same
    pattern as tests/test_store/test_store.py's helper of the same name."""
    if kind == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.db'}"
        return
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


_TEMPLATE: dict[str, Path] = {}


def _sqlite_template(tmp_path_factory) -> Path:
    """A SQLite store migrated to the newest revision once per session, copied for each test (a
    migration costs a fifth of a second; a copy nothing)."""
    if "path" not in _TEMPLATE:
        path = tmp_path_factory.mktemp("book_template") / "store.db"
        connect(f"sqlite:///{path}").dispose()
        _TEMPLATE["path"] = path
    return _TEMPLATE["path"]


@pytest.fixture(params=database_urls())
def store_url(request, tmp_path):
    """A fresh, empty store at the newest revision: a copy of the migrated SQLite template, or a
    private PostgreSQL schema (migrated by the first ``connect``)."""
    if request.param == "sqlite":
        shutil.copy(_sqlite_template(request.getfixturevalue("tmp_path_factory")), tmp_path / "store.db")
    with fresh_store_url(request.param, tmp_path) as url:
        yield url


@pytest.fixture
def engine(store_url) -> Engine:
    return connect(store_url)


@dataclass(frozen=True)
class Book:
    engine: Engine
    admin: str = ADMIN
    ana: str = ANA
    ben: str = BEN
    rita: str = RITA
    ana_pf: str = ANA_PF
    ben_pf: str = BEN_PF

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name


def make_book(engine: Engine) -> Book:
    """The people and the two portfolios (written by a system actor: seeding)."""
    seed = Actor.system("test")
    with session_scope(engine) as s:
        add_user(s, seed, ADMIN, "Root Admin", "admin")
        add_user(s, seed, ANA, "Ana Advisor", "advisor")
        add_user(s, seed, BEN, "Ben Advisor", "advisor")
        add_user(s, seed, RITA, "Rita Researcher", "researcher")
        create_portfolio(s, seed, ANA_PF, "Client A", ANA, holdings=ANA_SHARES, cash=ANA_CASH, trade_date=OPENED,
                         benchmark="SP500")
        create_portfolio(s, seed, BEN_PF, "Client B", BEN, holdings=BEN_SHARES, cash=BEN_CASH, trade_date=OPENED)
    return Book(engine)


@pytest.fixture
def book(engine) -> Book:
    return make_book(engine)


def table_counts(engine: Engine) -> dict[str, int]:
    """Rows of every table of the store (alembic's included)."""
    with engine.connect() as conn:
        names = sorted(inspect(conn).get_table_names())
        return {t: conn.execute(text(f'SELECT COUNT(*) FROM "{t}"')).scalar_one() for t in names}


def table_dump(engine: Engine) -> dict[str, list[str]]:
    """Every row of every table, as text, sorted: two dumps are equal when nothing was inserted,
    updated or deleted anywhere."""
    with engine.connect() as conn:
        names = sorted(inspect(conn).get_table_names())
        return {t: sorted(repr(tuple(r)) for r in conn.execute(text(f'SELECT * FROM "{t}"')).all()) for t in names}


def audit_count(engine: Engine) -> int:
    with session_scope(engine, write=False) as s:
        return s.scalar(select(func.count(AuditEntry.id)))


def audit_rows_after(engine: Engine, last_id: int) -> list[AuditEntry]:
    with session_scope(engine, write=False) as s:
        return list(s.scalars(select(AuditEntry).where(AuditEntry.id > last_id).order_by(AuditEntry.id)).all())


def last_audit_id(engine: Engine) -> int:
    with session_scope(engine, write=False) as s:
        return s.scalar(select(func.coalesce(func.max(AuditEntry.id), 0)))


def minimal_record(engine: Engine, name: str, trades: list[dict], *, prices_as_of=dt.date(2024, 3, 28),
                   as_of=None, weights: dict | None = None) -> dict:
    """A hand-made proposal record (what ``RebalanceProposal.to_record()`` gives the store), built on
    the portfolio's ledger as it stands now."""
    with session_scope(engine, write=False) as s:
        version = position(s, Actor.system("test"), name).last_transaction_id
    weights = weights if weights is not None else {t["ticker"]: 0.1 for t in trades} or {"AAPL": 1.0}
    return {
        "as_of": as_of or prices_as_of, "prices_as_of": prices_as_of,
        "strategy": {"schema_version": 1, "objective": "min_variance"},
        "trades": trades, "target": dict(weights),
        "summary": {"turnover": 0.1, "total_cost": sum(t.get("cost", 0.0) for t in trades)},
        "result": {"objective": "min_variance", "method": "convex", "solver": "CLARABEL", "status": "optimal",
                   "expected_return": 0.08, "volatility": 0.15, "sharpe": 0.53, "weights": dict(weights),
                   "fallback_reason": None},
        "parameters": {"lookback": 756}, "ledger_version": version,
    }


def trade(side: str, ticker: str, shares: float, price: float, cost: float = 1.0) -> dict:
    return {"side": side, "ticker": ticker, "shares": shares, "price": price, "notional": shares * price,
            "cost": cost}
