"""Stock splits booked into the ledgers: the nightly valuation values shares at the actual closes
(the price a share traded at that day), so a 2-for-1 split must double the shares held the same
day, or the portfolio would seem to lose half its value (and a proposal would trade the wrong
number of shares). Dividends are not booked here: a dividend enters a portfolio's return when its
ledger records it (the broker's statement), and only then, so it is never counted twice.

:func:`book_splits` reads the split coefficients of the store's market data (``split`` of a bar:
2.0 for a 2-for-1 split, 0.25 for a 1-for-4 reverse split, on the date it takes effect) up to a
date, and for every portfolio holding the name the day before, appends one ``split`` entry to its
ledger: ``quantity`` = shares held x (coefficient - 1), dated on the split's date (after that day's
other entries, which are at post-split prices). Idempotent: a portfolio whose ledger already has a
split of that name on that date (booked before, or imported from a statement) is left as it is.
The entries are written through the repository as ``actor`` (one audit row per portfolio).

A ledger may already be on the split's far side: shares bought at a vendor's split-adjusted prices
(the bundled panel's, a demo book's) count post-split shares from the start, and booking the split
would multiply them again. So the prices a position was traded at before the split are compared
with the name's actual and adjusted closes on those days: a position whose trade prices are
nearer the adjusted closes, and more than 5 % from the actual ones, is on the adjusted basis and is not split
again (it is reported in :func:`book_splits`' ``skipped`` answer); any other is booked, as is a
position with no traded price (shares delivered without one).
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

import pandas as pd
from sqlalchemy import Engine, select
from sqlalchemy.exc import IntegrityError

from qpo.book._basis import adjusted_basis
from qpo.book._book_reads import ledgers as _ledgers
from qpo.book._book_reads import portfolios as _portfolios
from qpo.book.valuation import _day
from qpo.store import Actor, Transaction, actor_for, import_transactions, session_scope
from qpo.store import ledger as _ledger
from qpo.store.market_data import prices_panel
from qpo.store.models import MarketBar

#: the columns of :func:`book_splits`' answer
BOOKED_COLUMNS = ["portfolio_id", "portfolio", "ticker", "trade_date", "ratio", "held", "quantity"]


def split_events(engine: Engine, end: dt.date, tickers: Iterable[str] | None = None) -> pd.DataFrame:
    """The splits of the store's market data up to ``end`` (inclusive): ``ticker``, ``date``
    (a ``Timestamp``), ``ratio`` (the bar's split coefficient), in date order."""
    q = select(MarketBar.ticker, MarketBar.date, MarketBar.split).where(MarketBar.split != 1.0,
                                                                        MarketBar.date <= end)
    if tickers is not None:
        q = q.where(MarketBar.ticker.in_(list(tickers)))
    with engine.connect() as conn:
        rows = [tuple(r) for r in conn.execute(q).all()]
    frame = pd.DataFrame(rows, columns=["ticker", "date", "ratio"])
    frame["date"] = pd.to_datetime(frame["date"])
    frame["ratio"] = frame["ratio"].astype(float)
    return frame.sort_values(["date", "ticker"], ignore_index=True)


def book_splits(engine: Engine, as_of, *, actor: Actor | str,
                portfolio_ids: Iterable[int] | None = None) -> pd.DataFrame:
    """Book every split up to ``as_of`` into the ledgers of the portfolios (``portfolio_ids``,
    default every one ``actor`` may read) that held the name before it and have no split entry of
    it that day; one row per entry written (:data:`BOOKED_COLUMNS`; none when nothing was due).
    ``answer.attrs["skipped"]``: the positions not booked because their ledger's prices are already
    split-adjusted (same columns, quantity 0)."""
    out = pending_splits(engine, as_of, actor=actor, portfolio_ids=portfolio_ids)
    if out.empty:
        return out
    unsplit = out.attrs.pop("skipped")  # (a frame in attrs would travel into the groups and their concat)
    written = []
    for name, rows in out.groupby("portfolio", sort=False):  # one transaction each: a portfolio's splits or none
        try:
            with session_scope(engine) as session:
                pid = int(rows["portfolio_id"].iloc[0])
                there = {(str(t), pd.Timestamp(d)) for t, d in session.execute(
                    select(Transaction.ticker, Transaction.trade_date).where(
                        Transaction.portfolio_id == pid, Transaction.kind == "split"))}
                rows = rows[[(str(r.ticker), pd.Timestamp(r.trade_date)) not in there
                             for r in rows.itertuples(index=False)]]
                if rows.empty:
                    continue
                import_transactions(session, actor, str(name), [
                    {"kind": "split", "trade_date": r.trade_date.date(), "ticker": r.ticker, "quantity": r.quantity,
                     "note": f"{r.ratio:g}-for-1 split of {r.ticker} ({r.held:,.6g} shares held): booked from the "
                             "market data"}
                    for r in rows.itertuples(index=False)], known_tickers=[str(t) for t in rows["ticker"].unique()])
        except IntegrityError:  # another run booked the same split at the same moment (the unique index)
            continue
        written.append(rows)
    result = pd.concat(written, ignore_index=True) if written else out.iloc[0:0]
    result.attrs["skipped"] = unsplit
    return result


def pending_splits(engine: Engine, as_of, *, actor: Actor | str,
                   portfolio_ids: Iterable[int] | None = None) -> pd.DataFrame:
    """The split entries :func:`book_splits` would write up to ``as_of``, without writing them
    (same columns and ``attrs["skipped"]``): a ledger that holds pre-split shares of a name whose
    actual close is already post-split would be valued at half (a 2-for-1) until they are booked."""
    day = _day(as_of)
    events = split_events(engine, day.date())
    if events.empty:
        out = pd.DataFrame(columns=BOOKED_COLUMNS)
        out.attrs["skipped"] = pd.DataFrame(columns=BOOKED_COLUMNS)
        return out
    with session_scope(engine, write=False) as session:
        who = actor_for(session, actor)
        book = _portfolios(session, who, portfolio_ids)
        ids = None if portfolio_ids is None else book["portfolio_id"].tolist()
        entries = _ledgers(session, who, ids, day)
    entries = entries[entries["ticker"].isin(set(events["ticker"])) & entries["portfolio_id"].isin(book["portfolio_id"])]
    work = entries[["portfolio_id", "ticker", "trade_date", "dq"]].copy()
    done = set(zip(entries.loc[entries["kind"] == "split", "portfolio_id"],
                   entries.loc[entries["kind"] == "split", "ticker"],
                   entries.loc[entries["kind"] == "split", "trade_date"], strict=True))
    names = dict(zip(book["portfolio_id"], book["name"], strict=True))
    closes = prices_panel(engine, sorted(set(events["ticker"])), end=day, actual=True)
    on_adjusted = adjusted_basis(entries, closes, prices_panel(engine, sorted(set(events["ticker"])), end=day))
    booked: list[dict] = []
    skipped: list[dict] = []
    for ticker, when, ratio in events.itertuples(index=False):
        before = work[(work["ticker"] == ticker) & (work["trade_date"] < when)]
        if before.empty:
            continue
        held = before.groupby("portfolio_id")["dq"].sum()
        gross = before["dq"].abs().groupby(before["portfolio_id"]).sum()
        held = held[held > _ledger.SHARE_TOLERANCE * gross.clip(lower=1.0)]
        held = held[[(pid, ticker, when) not in done for pid in held.index]]
        actual = {pid: (int(pid), ticker) not in on_adjusted for pid in held.index}
        skipped += [{"portfolio_id": int(pid), "portfolio": names[int(pid)], "ticker": ticker, "trade_date": when,
                     "ratio": float(ratio), "held": float(h), "quantity": 0.0}
                    for pid, h in held.items() if not actual[pid]]
        new = [{"portfolio_id": int(pid), "portfolio": names[int(pid)], "ticker": ticker, "trade_date": when,
                "ratio": float(ratio), "held": float(h), "quantity": float(h) * (float(ratio) - 1.0)}
               for pid, h in held.items() if actual[pid]]
        new = [r for r in new if abs(r["quantity"]) > _ledger.SHARE_TOLERANCE * max(1.0, r["held"])]
        booked += new
        if new:
            work = pd.concat([work, pd.DataFrame({"portfolio_id": [r["portfolio_id"] for r in new], "ticker": ticker,
                                                  "trade_date": when, "dq": [r["quantity"] for r in new]})],
                             ignore_index=True)
    out = pd.DataFrame(booked, columns=BOOKED_COLUMNS)
    out.attrs["skipped"] = pd.DataFrame(skipped, columns=BOOKED_COLUMNS)  # positions already on the adjusted basis
    return out


def describe_pending(pending: pd.DataFrame) -> str:
    """The pending splits of :func:`pending_splits` as one clause: ``a 2-for-1 split of AAA on
    2024-03-15 (+50 shares)``, joined."""
    return "; ".join(f"a {r.ratio:g}-for-1 split of {r.ticker} on {pd.Timestamp(r.trade_date).date()} "
                     f"({r.quantity:+,.6g} shares)" for r in pending.itertuples(index=False))
