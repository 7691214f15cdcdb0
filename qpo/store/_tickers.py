"""The tickers a portfolio may hold: those of the prices the book uses and those its ledgers already
hold (:func:`store_tickers`), read through a session (:mod:`qpo.store.portfolios` checks against them)."""
from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from qpo._checks import quote
from qpo.store import _inputs as check
from qpo.store.models import Transaction


def book_price_tickers(session: Session) -> tuple[set[str], str]:
    """The tickers of the prices the book values and proposes with
    (:func:`qpo.store.market_data.book_prices`: the store's market data when it holds any bar, the
    index series left out; else the bundled panel), and where they come from (``"store"`` or
    ``"bundled"``), read through ``session``."""
    from qpo.data import BUNDLED_SECTORS
    from qpo.store.market_data import BUNDLED, INDEX_TICKERS, STORE
    from qpo.store.models import MarketBar

    held = set(session.scalars(select(MarketBar.ticker).distinct()).all())
    if held:
        return {t for t in held if t not in INDEX_TICKERS}, STORE
    return set(BUNDLED_SECTORS), BUNDLED


def _book_universe(session: Session) -> tuple[set[str], str]:
    """:func:`store_tickers` and what a ticker outside them is not, for a message."""
    priced, origin = book_price_tickers(session)
    traded = session.scalars(select(Transaction.ticker).where(Transaction.ticker.is_not(None)).distinct()).all()
    universe = priced | {t for t in traded if t is not None}
    if origin == "store":
        return universe, "not in the book's price data (the store's market data: `qpo data ingest`)"
    return universe, "not a ticker of the bundled panel or the store (`qpo data ingest` adds prices)"


def store_tickers(session: Session) -> set[str]:
    """The universe a portfolio's tickers are checked against when the caller gives none: the
    tickers of the prices the book uses (:func:`book_price_tickers`: the store's market data when
    it holds any, else the bundled S&P 500 panel) and every ticker the store's ledgers already hold."""
    return _book_universe(session)[0]


def _universe(session: Session, known_tickers) -> tuple[set[str], str]:
    if known_tickers is None:
        return _book_universe(session)
    if isinstance(known_tickers, str) or not isinstance(known_tickers, Iterable):
        raise check.fail(f"known_tickers must be a collection of tickers (the price data's columns), got {quote(known_tickers)}")
    return {str(t) for t in known_tickers}, "not in the price data"
