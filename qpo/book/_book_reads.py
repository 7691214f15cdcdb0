"""The store reads of :mod:`qpo.book.valuation`: the book's portfolios and their ledgers in a few bulk queries."""
from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd
from sqlalchemy import bindparam, select

from qpo._checks import quote
from qpo.errors import AccessDenied, StoreError
from qpo.store import Actor, ClientPortfolio, Transaction, User
from qpo.store import ledger as _ledger

#: ids per IN (...) of one query (SQLite binds at most 32,766 parameters)
IDS_PER_QUERY = 10_000
LEDGER_COLUMNS = ["id", "portfolio_id", "trade_date", "kind", "ticker", "quantity", "price", "fees", "amount"]


def portfolios(session, who: Actor, portfolio_ids, *, strategy: bool = False) -> pd.DataFrame:
    """The portfolios ``who`` asked for and may read (all they may read when ``portfolio_ids`` is
    None): id, name, client, advisor, benchmark (and the stored strategy)."""
    cols = [ClientPortfolio.id, ClientPortfolio.name, ClientPortfolio.client_name, ClientPortfolio.advisor_id,
            ClientPortfolio.benchmark, User.email, User.name]
    if strategy:
        cols.append(ClientPortfolio.strategy)
    q = select(*cols).join(User, User.id == ClientPortfolio.advisor_id)
    names = ["portfolio_id", "name", "client", "advisor_id", "benchmark", "advisor_email", "advisor_name"] + (
        ["strategy"] if strategy else [])
    if portfolio_ids is None:
        if who.role == "advisor":
            q = q.where(ClientPortfolio.advisor_id == who.user_id)
        rows = session.execute(q.order_by(ClientPortfolio.id)).all()
        return pd.DataFrame([tuple(r) for r in rows], columns=names)  # tuples: pandas probes a Row slowly
    ids = id_list(portfolio_ids)
    rows = []
    for part in id_parts(ids):
        rows += session.execute(q.where(ClientPortfolio.id.in_(bindparam("ids", expanding=True))),
                                {"ids": part}).all()
    frame = pd.DataFrame([tuple(r) for r in rows], columns=names).sort_values("portfolio_id", ignore_index=True)
    unknown = sorted(set(ids) - set(frame["portfolio_id"]))
    if unknown:
        raise StoreError(f"no portfolio with id {names_list(unknown)} in the store")
    if who.role == "advisor":
        theirs = frame.loc[frame["advisor_id"] != who.user_id, "name"].tolist()
        if theirs:
            raise AccessDenied(f"{who} may not see portfolio(s) {names_list(theirs)}: they belong to another "
                               "advisor's clients")
    return frame


def names_list(names, shown: int = 5) -> str:
    names = [str(n) for n in names]
    more = f" and {len(names) - shown} more" if len(names) > shown else ""
    return ", ".join(quote(n, 40) for n in names[:shown]) + more


def id_list(portfolio_ids) -> list[int]:
    if isinstance(portfolio_ids, (str, bytes)) or not isinstance(portfolio_ids, Iterable):
        raise StoreError(f"portfolio_ids must be a list of portfolio ids (whole numbers) or None (every portfolio), "
                         f"got {quote(portfolio_ids)}")
    out = []
    for p in portfolio_ids:
        if isinstance(p, (bool, np.bool_)) or not isinstance(p, (int, np.integer)):
            raise StoreError(f"portfolio ids are whole numbers, got {quote(p)}")
        out.append(int(p))
    return sorted(set(out))


def id_parts(ids: list[int]):
    for i in range(0, len(ids), IDS_PER_QUERY):
        yield ids[i:i + IDS_PER_QUERY]


def ledgers(session, who: Actor, portfolio_ids, as_of: pd.Timestamp) -> pd.DataFrame:
    """Every ledger entry up to ``as_of`` of the portfolios asked for, in replay order (portfolio,
    trade date, id): one query (one per 10,000 ids of a long id list)."""
    t = Transaction
    q = select(t.id, t.portfolio_id, t.trade_date, t.kind, t.ticker, t.quantity, t.price, t.fees, t.amount).where(
        t.trade_date <= as_of.date())
    if portfolio_ids is None:
        if who.role == "advisor":
            q = q.where(t.portfolio_id.in_(select(ClientPortfolio.id).where(ClientPortfolio.advisor_id == who.user_id)))
        rows = fetch(session, q)
    else:
        rows = []
        for part in id_parts(id_list(portfolio_ids)):
            rows += fetch(session, q.where(t.portfolio_id.in_(part)))
    columns = list(zip(*rows, strict=True)) if rows else [()] * len(LEDGER_COLUMNS)
    frame = pd.DataFrame({c: pd.Series(v, dtype=object) for c, v in zip(LEDGER_COLUMNS, columns, strict=True)})
    frame["id"] = frame["id"].astype(np.int64)
    frame["portfolio_id"] = frame["portfolio_id"].astype(np.int64)
    frame["trade_date"] = pd.to_datetime(frame["trade_date"].astype(str), format="%Y-%m-%d")
    for c in ("quantity", "price", "fees", "amount"):
        frame[c] = pd.to_numeric(frame[c], errors="coerce").astype(float)
    frame = frame.sort_values(["portfolio_id", "trade_date", "id"], kind="stable", ignore_index=True)
    kind = frame["kind"].to_numpy()
    q_, p_, f_, a_ = (frame[c].fillna(0.0).to_numpy() for c in ("quantity", "price", "fees", "amount"))
    share_in, share_out = np.isin(kind, _ledger.SHARE_KINDS_IN), np.isin(kind, _ledger.SHARE_KINDS_OUT)
    frame["dq"] = np.where(share_in | (kind == "split"), q_, np.where(share_out, -q_, 0.0))
    # the cash rules of ledger.Entry.cash_effect, on every row at once
    frame["dcash"] = np.select(
        [kind == "buy", kind == "sell", np.isin(kind, _ledger.CASH_IN), np.isin(kind, _ledger.CASH_OUT)],
        [-(q_ * p_ + f_), q_ * p_ - f_, a_ - f_, -(a_ + f_)], default=-f_)
    frame["flow"] = np.where(kind == "deposit", a_, np.where(kind == "withdrawal", -a_, 0.0))
    return frame


def fetch(session, query) -> list[tuple]:
    """The rows of ``query`` as plain tuples from the driver's own cursor (a few hundred thousand
    ledger rows: SQLAlchemy's per-row processing would cost more than the query). Its only
    parameters are whole numbers and a date, rendered by the dialect."""
    conn = session.connection()
    sql = str(query.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True}))
    cursor = conn.connection.driver_connection.cursor()
    try:
        cursor.execute(sql)
        return cursor.fetchall()
    finally:
        cursor.close()


# -- valuation ---------------------------------------------------------------------------------------
