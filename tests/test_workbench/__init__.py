"""Helpers of the workbench tests."""
from __future__ import annotations

#: the date whose closes the tests' demo book is bought at. A report reads the ledger as of its own
#: date, so a book bought at the panel's last close (what ``qpo db seed`` does) held nothing on the
#: earlier dates these tests report on; this one holds the same names from here on.
DEMO_BOOK_OPENED = "2019-12-31"


def seed_demo_book(engine=None, prices=None) -> int:
    """The demo people and portfolios (:func:`qpo.workbench.demo.seed_demo`), bought at the closes
    of :data:`DEMO_BOOK_OPENED` (the min-variance portfolio from the returns up to then)."""
    import qpo
    from qpo.store import connect
    from qpo.workbench.demo import seed_demo

    prices = qpo.load_prices("sp500") if prices is None else prices
    return seed_demo(engine or connect(), prices=prices, opened=DEMO_BOOK_OPENED)


def weights_with_cash(session, name, prices, as_of=None):
    """A portfolio's weights as the reports read them, recomputed from its ledger: the shares held on
    ``as_of`` (default: the prices' last date) at the last closes where every held name is priced,
    as fractions of the whole value, cash included."""
    import pandas as pd

    from qpo.store import Actor, position

    day = prices.index[-1] if as_of is None else pd.Timestamp(as_of)
    pos = position(session, Actor.system("tests"), name, day.date())
    px = prices.loc[:day, pos.shares.index].dropna(how="any").iloc[-1]
    value = pos.shares * px
    return (value / (value.sum() + pos.cash)).rename("weight")


def tab_board(engine, email, prices, **extra):
    """What a dashboard tab needs of its board (:mod:`qpo.workbench.tabs`), for ``email`` reading
    ``engine``: the resolved actor, the prices, the book's sector map, and ``extra`` (benchmark,
    lookback_days, tabs, ...)."""
    from types import SimpleNamespace

    from qpo.store import actor_for, session_scope
    from qpo.store.sectors import book_sectors

    with session_scope(engine) as s:
        actor = actor_for(s, email)
    fields = {"benchmark": None, "selected": None, "lookback_days": 756, "sectors": book_sectors(engine)} | extra
    return SimpleNamespace(engine=engine, actor=actor, prices=prices, **fields)
