"""The whole book valued at once: every portfolio's market value, cash and time-weighted returns on
one date (the 17:00 valuation), and every portfolio's weights for the risk run (the 18:00 run).

Both read the ledgers of all the portfolios asked for in one query (a few, for very long id
lists), derive positions with pandas and numpy, and never loop over portfolios in Python for the
heavy parts.

**Valuation** (:func:`value_book`). A portfolio's shares and cash on ``as_of`` are its ledger up to
that date; each name is priced at its last price on or before ``as_of`` (``prices`` is a
date x ticker panel of actual closes, the price a share traded at: the nightly valuation passes the
store's, after booking the splits into the ledgers, :mod:`qpo.book.corporate_actions`; adjusted
closes would count a booked dividend twice and show a split as a loss). A held name with no price at all up to ``as_of`` makes the
portfolio ``unpriced``: its market value is None (never zero) and the names are listed; a held
name whose last price is older than ``as_of`` is listed in ``stale`` (the portfolio is still
valued, at that older price). A portfolio whose ledger holds nothing on ``as_of`` (no entry yet, or
no shares and no cash left) is ``empty``: value 0, no returns.

**Returns** are time-weighted over the ledger's external flows. Deposits and withdrawals are flows
(their amounts), and so are shares delivered in kind (``transfer_in`` / ``transfer_out``, valued at
the name's previous close, or that day's close when it has none before); dividends, fees and
trading costs are returns. Convention: **money in arrives at the start of its day, money out
leaves at its end** (a deposit is invested that day; a withdrawal is paid from that day's sales at
that day's prices): the return of a date t is ``(V_t + O_t) / (V_{t-1} + I_t) - 1``, where ``V`` is
the market value (shares at the last prices on or before the date, plus cash), ``t-1`` the previous
date of the price panel, and ``I_t`` and ``O_t`` the inflows (deposits, shares in) and outflows
(withdrawals, shares out) dated after ``t-1`` and up to ``t`` (an entry dated on a day without
prices counts on the next date of the panel). Shares delivered in are valued at the previous close,
shares delivered out at the day's close. So a client who sells everything at a 5 % loss and
withdraws the proceeds the same day lost 5 %, not the 83 % that ``V_t / (V_{t-1} + F_t)`` would
say. With nothing invested (``V_{t-1} + I_t`` = 0) the day's return is 0.
MTD, YTD and since-inception returns chain the daily returns (``prod(1 + r) - 1``) over the
panel's dates from the first date of the month / year (or the portfolio's first ledger entry, if
later) to ``as_of``; the first day's return is that of the opening flows (a deposit spent on
shares at the day's closes returns minus the trading costs). When ``as_of`` is not a date of the
panel it is added as a date of its own, priced at the last prices before it (every held name is
then stale).

**Weights** (:func:`book_weights`): exactly what the daily report gives one portfolio
(``qpo.reporting.daily.ledger_weights``): the ledger's shares on ``as_of`` at the prices of the last
date on or before it on which every held name has a price, as fractions of the value *cash
included*.
"""
from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Engine

from qpo._checks import quote
from qpo.book._basis import adjusted_basis
from qpo.book._book_reads import ledgers as _ledgers
from qpo.book._book_reads import names_list as _names_list
from qpo.book._book_reads import portfolios as _portfolios
from qpo.book._weights import weights_at as _weights
from qpo.errors import DataError
from qpo.store import Actor, actor_for, session_scope
from qpo.store import ledger as _ledger
from qpo.store.portfolios import benchmark_of

#: the columns of :func:`value_book`'s frame: exactly those of the ``valuations`` table a run writes
VALUATION_COLUMNS = ["portfolio_id", "market_value", "cash", "holdings_value", "daily_return", "mtd_return",
                     "ytd_return", "inception_return", "status", "unpriced", "stale"]
STATUSES = ("valued", "unpriced", "empty")
#: how many (portfolio, date) cells one block of the valuation computes at once (8 bytes each, a few arrays of it)
CELL_BUDGET = 8_000_000
#: ids per IN (...) of one query (SQLite binds at most 32,766 parameters)
_IDS_PER_QUERY = 10_000
_LEDGER_COLUMNS = ["id", "portfolio_id", "trade_date", "kind", "ticker", "quantity", "price", "fees", "amount"]


# -- reading -----------------------------------------------------------------------------------------
def _day(as_of) -> pd.Timestamp:
    try:
        when = pd.Timestamp(as_of)
    except (TypeError, ValueError) as exc:
        raise DataError(f"as_of {quote(as_of)} is not a date (use YYYY-MM-DD)") from exc
    if pd.isna(when):
        raise DataError(f"as_of {quote(as_of)} is not a date (use YYYY-MM-DD)")
    if when.tzinfo is not None:
        when = when.tz_localize(None)
    return when.normalize()


def _check_prices(prices, as_of: pd.Timestamp) -> pd.DataFrame:
    if not isinstance(prices, pd.DataFrame):
        raise DataError(f"prices must be a DataFrame of closes (dates x tickers), got {type(prices).__name__}")
    if not isinstance(prices.index, pd.DatetimeIndex):
        raise DataError("prices must be indexed by date (a DatetimeIndex); got a "
                        f"{type(prices.index).__name__}")
    if prices.index.has_duplicates:
        raise DataError(f"prices hold the date {prices.index[prices.index.duplicated()][0].date()} twice")
    if not prices.index.is_monotonic_increasing:
        prices = prices.sort_index()
    if prices.index.tz is not None:
        prices = prices.tz_localize(None)
    if len(prices.index) == 0 or prices.index[0] > as_of:
        first = f" (they start on {prices.index[0].date()})" if len(prices.index) else " (they are empty)"
        raise DataError(f"no prices on or before {as_of.date()}{first}: nothing to value the book at")
    prices = prices.loc[:as_of]
    prices.columns = [str(c) for c in prices.columns]
    return prices


def value_book(engine: Engine, as_of, prices: pd.DataFrame, *, actor: Actor | str,
               portfolio_ids: Iterable[int] | None = None, adjusted: pd.DataFrame | None = None,
               carry_until: dict[str, pd.Timestamp] | None = None) -> pd.DataFrame:
    """One row per portfolio (those of ``portfolio_ids``, default every portfolio ``actor`` may
    read), columns :data:`VALUATION_COLUMNS`: market value (None when a held name has no price),
    cash, holdings value, the daily, month-to-date, year-to-date and since-inception time-weighted
    returns (fractions: 0.01 = 1 %; None where undefined), status (``valued``, ``unpriced``,
    ``empty``), and the lists of unpriced and stale tickers. See the module for the conventions.

    ``adjusted``: the same names' adjusted closes, when ``prices`` are actual closes that differ
    from them: a position whose ledger traded at the adjusted prices (nearer the adjusted closes of
    its trade days than the actual ones, and more than 5 % from these: shares bought from the
    bundled panel's prices, a demo book) counts split-adjusted shares, and is valued at the adjusted closes (at the actual
    ones, a split before the date would multiply its value).

    ``carry_until``: ``{ticker: its last bar}`` for names no longer carried at their last price
    (stale past the nightly run's cap): unpriced after that date, priced before it, so that a
    portfolio that sold the name before keeps its returns.

    Missing numbers are None (not NaN), so that the frame is written as it is (NULL)."""
    day = _day(as_of)
    px = _check_prices(prices, day)
    with session_scope(engine, write=False) as session:
        who = actor_for(session, actor)
        book = _portfolios(session, who, portfolio_ids)
        entries = _ledgers(session, who, None if portfolio_ids is None else book["portfolio_id"].tolist(), day)
    # a portfolio created between the two reads is valued next time
    entries = entries[entries["portfolio_id"].isin(book["portfolio_id"])].reset_index(drop=True)
    adj = None if adjusted is None else _check_prices(adjusted, day)
    table = _valuation_table(book["portfolio_id"].to_numpy(dtype=np.int64), entries, px, day, adj, carry_until)
    return _as_records(table)


def book_totals(valuations: pd.DataFrame) -> dict[str, Any]:
    """The book's totals on a date from its valuation rows (``market_value``, ``cash``, ``status``):
    the market value and cash of the portfolios that have a value, how many do not (unpriced), and
    ``market_value_complete``: the book's market value, or None when a portfolio is unpriced (a
    total that leaves some out is not the book's; an unpriced portfolio is never counted as 0)."""
    status = valuations["status"] if len(valuations) else pd.Series(dtype=object)
    priced = valuations[status != "unpriced"]
    value = float(pd.to_numeric(priced["market_value"], errors="coerce").sum()) if len(priced) else 0.0
    unpriced = int((status == "unpriced").sum())
    return {"portfolios": int(len(valuations)), "priced": int(len(priced)), "unpriced": unpriced,
            "market_value_priced": value,
            "cash_priced": float(pd.to_numeric(priced["cash"], errors="coerce").sum()) if len(priced) else 0.0,
            "market_value_complete": value if unpriced == 0 else None}


def _grid(px: pd.DataFrame, day: pd.Timestamp, first: pd.Timestamp) -> pd.DatetimeIndex:
    """The dates returns are computed on: the panel's dates from the one before the first ledger
    entry's (the first panel date on or after it; the panel's first date if it is earlier) to
    ``as_of``, and ``as_of`` itself when the panel has no prices that day. The date before is there
    so that shares delivered in on the first day are valued at their previous close whichever
    portfolios are valued together (a grid starting on that day had no previous close, and a
    portfolio valued alone gained its first day's move)."""
    dates = px.index
    start = max(min(int(dates.searchsorted(first, side="left")), len(dates) - 1) - 1, 0)
    grid = dates[start:]
    if grid[-1] != day:
        grid = grid.append(pd.DatetimeIndex([day]))
    return grid


def _valuation_table(ids: np.ndarray, entries: pd.DataFrame, px: pd.DataFrame, day: pd.Timestamp,
                     adj: pd.DataFrame | None = None, carry_until: dict | None = None) -> pd.DataFrame:
    n = len(ids)
    out = pd.DataFrame({"portfolio_id": ids, "market_value": np.zeros(n), "cash": np.zeros(n),
                        "holdings_value": np.zeros(n), "daily_return": np.nan, "mtd_return": np.nan,
                        "ytd_return": np.nan, "inception_return": np.nan, "status": "empty"})
    out["unpriced"] = [[] for _ in range(n)]
    out["stale"] = [[] for _ in range(n)]
    if entries.empty or n == 0:
        return out
    grid = _grid(px, day, entries["trade_date"].min())
    T = len(grid)
    # prices on the grid: each name's last price on or before each date (NaN before its first)
    tickers = sorted(entries["ticker"].dropna().unique().tolist())
    on_adjusted = adjusted_basis(entries, px, adj) if adj is not None and tickers else set()
    panel = px.reindex(columns=tickers).ffill()
    P = panel.reindex(grid, method="ffill").to_numpy(dtype=float) if tickers else np.zeros((T, 0))
    last_seen = px.reindex(columns=tickers).apply(pd.Series.last_valid_index) if tickers else pd.Series(dtype=object)
    stale_names = {t for t, d in last_seen.items() if d is not None and not pd.isna(d) and pd.Timestamp(d) < day}
    n_names = len(tickers)
    if on_adjusted:  # a second block of columns: the adjusted closes, for the positions counted on their basis
        assert adj is not None
        P_adj = adj.reindex(columns=tickers).ffill().reindex(grid, method="ffill").to_numpy(dtype=float)
        P = np.hstack([P, np.where(np.isnan(P_adj), P, P_adj)])
        tickers = tickers + tickers
    cut = {j: grid > pd.Timestamp(carry_until[t]) for j, t in enumerate(tickers) if carry_until and t in carry_until}
    if cut:  # not carried past their last bar: unpriced from then on (either block)
        P = P.copy()  # a view of the frame's data may be read-only
        for j, after in cut.items():
            P[after, j] = np.nan
        stale_names -= {tickers[j] for j in cut}

    pos = {int(p): i for i, p in enumerate(ids)}
    e_port = entries["portfolio_id"].map(pos).to_numpy()
    e_day = grid.searchsorted(entries["trade_date"].to_numpy(), side="left")  # the first grid date on or after
    e_day = np.minimum(e_day, T - 1)
    first_day = np.full(n, T, dtype=np.int64)
    np.minimum.at(first_day, e_port, e_day)

    # shares: one row per (portfolio, name) ever held, in portfolio order
    shares = entries[entries["ticker"].notna() & (entries["dq"] != 0)]
    flows = entries["flow"].to_numpy().copy()
    pair_port = np.zeros(0, dtype=np.int64)
    pair_tick = np.zeros(0, dtype=np.int64)
    pair_tol = np.zeros(0)
    s_pair = s_day = s_dq = np.zeros(0)
    if len(shares):
        tick_idx = {t: j for j, t in enumerate(tickers[:n_names])}
        s_port = shares["portfolio_id"].map(pos).to_numpy()
        s_tick = shares["ticker"].map(tick_idx).to_numpy()
        if on_adjusted:
            moved = np.array([(int(p), str(t)) in on_adjusted
                              for p, t in zip(shares["portfolio_id"], shares["ticker"], strict=True)])
            s_tick = np.where(moved, s_tick + n_names, s_tick)
        uniq, s_pair = np.unique(  # type: ignore[assignment]
            s_port.astype(np.int64) * len(tickers) + s_tick, return_inverse=True)
        pair_port, pair_tick = uniq // len(tickers), uniq % len(tickers)
        s_day = e_day[shares.index.to_numpy()]
        s_dq = shares["dq"].to_numpy()
        gross = np.bincount(s_pair, weights=np.abs(s_dq), minlength=len(pair_port))
        pair_tol = _ledger.SHARE_TOLERANCE * np.maximum(1.0, gross)
        # shares delivered in kind are flows too: in at the start of the day, so at the name's previous
        # close (that day's when none before); out at its end, so at that day's close (else the previous)
        kinds = shares["kind"].to_numpy()
        transfer = np.isin(kinds, ("transfer_in", "transfer_out"))
        if transfer.any():
            d, j, q = s_day[transfer], s_tick[transfer], s_dq[transfer]
            before = np.where(d > 0, P[np.maximum(d - 1, 0), j], np.nan)
            that_day = P[d, j]
            first, second = np.where(q > 0, before, that_day), np.where(q > 0, that_day, before)
            price = np.where(np.isnan(first), second, first)
            flows[shares.index.to_numpy()[transfer]] += np.nan_to_num(q * price)

    # the calendar of each month and year of as_of
    month_start = int(grid.searchsorted(day.replace(day=1), "left"))
    year_start = int(grid.searchsorted(day.replace(month=1, day=1), "left"))

    # blocks of portfolios (in order of their first entry) whose (portfolios x dates) fit CELL_BUDGET
    order = np.argsort(first_day, kind="stable")
    order = order[first_day[order] < T]  # portfolios with entries
    n_pairs = np.bincount(pair_port, minlength=n)
    pair_start = np.concatenate([[0], np.cumsum(n_pairs)]).astype(np.int64)
    s_port_of = pair_port[s_pair] if len(s_pair) else np.zeros(0, dtype=np.int64)
    results = {k: np.full(n, np.nan) for k in ("hv", "cash", "daily", "mtd", "ytd", "inc")}
    held_at_end = np.zeros(len(pair_port), dtype=bool)
    i = 0
    while i < len(order):
        t0 = int(first_day[order[i]])
        rows = max(1, CELL_BUDGET // (T - t0))
        block = np.sort(order[i:i + rows])
        _value_block(block, n, t0, P, pair_start, pair_tick, pair_tol, s_pair, s_port_of, s_day, s_dq,
                     e_port, e_day, entries["dcash"].to_numpy(), flows, month_start, year_start, results,
                     held_at_end)
        i += rows

    has = first_day < T
    hv, cash = results["hv"], results["cash"]
    cash = np.where(np.abs(cash) < _ledger.CASH_TOLERANCE, 0.0, cash)
    # names held on as_of, unpriced (no price at all) and stale (an older price)
    held_pairs = np.flatnonzero(held_at_end)
    held_port = pair_port[held_pairs]
    n_held = np.bincount(held_port, minlength=n)
    names = np.array(tickers, dtype=object)
    unpriced_pair = held_pairs[np.isnan(P[-1, pair_tick[held_pairs]])] if len(held_pairs) else held_pairs
    unpriced = _lists(pair_port[unpriced_pair], names[pair_tick[unpriced_pair]], n)
    stale_mask = np.array([t in stale_names for t in tickers], dtype=bool)[pair_tick[held_pairs]]
    stale_pair = held_pairs[stale_mask] if len(held_pairs) else held_pairs
    stale = _lists(pair_port[stale_pair], names[pair_tick[stale_pair]], n)
    is_unpriced = np.array([bool(u) for u in unpriced])
    is_empty = ~has | ((n_held == 0) & (np.nan_to_num(cash) == 0.0))
    status = np.where(is_empty, "empty", np.where(is_unpriced, "unpriced", "valued"))
    valued = status == "valued"
    out["cash"] = np.where(has, cash, 0.0)
    out["holdings_value"] = np.where(valued, hv, np.where(is_empty, 0.0, np.nan))
    out["market_value"] = np.where(valued, hv + cash, np.where(is_empty, 0.0, np.nan))
    for col, key in (("daily_return", "daily"), ("mtd_return", "mtd"), ("ytd_return", "ytd"),
                     ("inception_return", "inc")):
        out[col] = np.where(valued, results[key], np.nan)
    out["status"] = status
    out["unpriced"] = unpriced
    out["stale"] = stale
    return out


def _lists(port: np.ndarray, names: np.ndarray, n: int) -> list[list[str]]:
    out: list[list[str]] = [[] for _ in range(n)]
    for p, t in sorted(zip(port.tolist(), names.tolist(), strict=True)):
        out[p].append(str(t))
    return out


def _value_block(block, n, t0, P, pair_start, pair_tick, pair_tol, s_pair, s_port_of, s_day, s_dq, e_port, e_day,
                 dcash, flows, month_start, year_start, results, held_at_end) -> None:
    """Values and returns of the portfolios ``block`` (positions in the book, ascending) over the
    grid dates ``t0`` on.

    Shares are the cumulative sums of the ledger's share entries by date: a sparse portfolios x
    names matrix that changes only on the dates of those entries, and between two such dates the
    value of every portfolio on every date is one sparse-dense product with the prices of those
    dates. Cash and flows are cumulative sums (and sums) of the entries by date."""
    from scipy import sparse

    m, width = len(block), P.shape[0] - t0
    local = np.full(n, -1, dtype=np.int64)
    local[block] = np.arange(m)
    counts = pair_start[block + 1] - pair_start[block]
    pairs = (np.repeat(pair_start[block] - np.concatenate([[0], np.cumsum(counts)[:-1]]), counts)
             + np.arange(int(counts.sum()))).astype(np.int64)  # the block's pairs, grouped by portfolio
    hv = np.zeros((m, width))
    if len(pairs):
        pair_local = np.full(len(pair_tick), -1, dtype=np.int64)
        pair_local[pairs] = np.arange(len(pairs))
        mine = local[s_port_of] >= 0
        ev_pair, ev_day, ev_dq = pair_local[s_pair[mine]], s_day[mine] - t0, s_dq[mine]
        by_day = np.argsort(ev_day, kind="stable")
        ev_pair, ev_day, ev_dq = ev_pair[by_day], ev_day[by_day], ev_dq[by_day]
        change = np.unique(ev_day)
        bounds = np.append(change, width)
        ev_start = np.searchsorted(ev_day, change, side="left")
        ev_end = np.searchsorted(ev_day, change, side="right")
        indptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        shares = sparse.csr_matrix((np.zeros(len(pairs)), pair_tick[pairs], indptr), shape=(m, P.shape[1]))
        tol = pair_tol[pairs]
        prices = P[t0:]
        missing = np.isnan(prices)
        gaps = bool(missing.any())
        filled = np.where(missing, 0.0, prices) if gaps else prices
        for k, day in enumerate(change):
            sel = slice(ev_start[k], ev_end[k])
            np.add.at(shares.data, ev_pair[sel], ev_dq[sel])
            touched = ev_pair[sel]
            small = np.abs(shares.data[touched]) <= tol[touched]
            shares.data[touched[small]] = 0.0
            span = slice(day, bounds[k + 1])
            hv[:, span] = shares @ filled[span].T
            if gaps:  # a held name without a price that day: the portfolio's value is unknown then
                held = sparse.csr_matrix(((shares.data != 0).astype(float), shares.indices, shares.indptr),
                                         shape=shares.shape)
                unknown = held @ missing[span].T.astype(float)
                hv[:, span][unknown > 0] = np.nan
        held_at_end[pairs] = shares.data != 0.0
    mine = local[e_port] >= 0
    cells = local[e_port[mine]] * width + (e_day[mine] - t0)
    cash = np.bincount(cells, weights=dcash[mine], minlength=m * width).reshape(m, width)
    np.cumsum(cash, axis=1, out=cash)
    results["hv"][block] = hv[:, -1]
    results["cash"][block] = cash[:, -1]
    value = hv
    value += cash  # market value: shares and cash
    del cash
    # money in counts from the start of its day, money out from its end
    day_flows = flows[mine]
    base = np.bincount(cells, weights=np.maximum(day_flows, 0.0), minlength=m * width).reshape(m, width)
    base[:, 1:] += value[:, :-1]  # the value before the day (nothing held before t0), plus the day's inflows
    value += np.bincount(cells, weights=np.maximum(-day_flows, 0.0), minlength=m * width).reshape(m, width)
    tol_cash = _ledger.CASH_TOLERANCE
    with np.errstate(divide="ignore", invalid="ignore"):
        growth = np.divide(value, base)  # NaN where a value is unknown
    idle = base <= tol_cash  # nothing invested: no return (unless something appeared from nothing)
    if idle.any():
        growth[idle] = np.where(np.abs(value[idle]) <= tol_cash, 1.0, np.nan)
    results["daily"][block] = growth[:, -1] - 1.0
    results["mtd"][block] = np.prod(growth[:, max(month_start - t0, 0):], axis=1) - 1.0
    results["ytd"][block] = np.prod(growth[:, max(year_start - t0, 0):], axis=1) - 1.0
    results["inc"][block] = np.prod(growth, axis=1) - 1.0


def _as_records(table: pd.DataFrame) -> pd.DataFrame:
    """Float columns as Python floats with None where undefined (NULL when written)."""
    out = table.copy()
    for col in ("market_value", "cash", "holdings_value", "daily_return", "mtd_return", "ytd_return",
                "inception_return"):
        values = out[col].to_numpy(dtype=float)
        out[col] = pd.Series([None if np.isnan(v) else float(v) for v in values], index=out.index, dtype=object)
    out["portfolio_id"] = out["portfolio_id"].astype(np.int64)
    return out[VALUATION_COLUMNS].reset_index(drop=True)


# -- weights for the risk run -----------------------------------------------------------------------
def book_weights(engine: Engine, as_of, prices: pd.DataFrame, *, actor: Actor | str,
                 portfolio_ids: Iterable[int] | None = None,
                 actual: pd.DataFrame | None = None) -> tuple[pd.DataFrame, dict]:
    """The weights of every portfolio asked for (default: every one ``actor`` may read) on
    ``as_of``: a frame indexed by portfolio id (``portfolio_id``), one column per ticker held by any
    of them (0 where not held), each row exactly the daily report's weights of that portfolio
    (``qpo.reporting.daily.ledger_weights``: the ledger's shares at the last prices on or before
    ``as_of`` on which all its names are priced, over its value cash included).

    And a dict portfolio_id -> {``name``, ``client``, ``advisor_email``, ``advisor_name``,
    ``benchmark``, ``limits`` (its strategy's :class:`~qpo.risk.Limits`, the default strategy's when it
    stores none), ``objective``, ``confidence``, ``cash``, ``invested`` (value of its shares),
    ``prices_as_of`` (the date its prices are from), ``skipped`` (None, or why it has no row: no
    shares held, a name the prices lack, no date with every name priced)} for every portfolio
    asked for.

    ``actual``: the actual closes, when ``prices`` are adjusted closes that differ from them (a split
    or dividend in the store's bars): the ledger's shares are then valued as the valuation values
    them, each position at the closes of its own basis (:func:`~qpo.book._basis.adjusted_basis`):
    a ledger of actual shares at the actual closes, so that a date before a later split is not
    priced at closes that split has since halved."""
    from qpo.book.strategy import Strategy, StrategyError

    day = _day(as_of)
    px = _check_prices(prices, day)
    act = None if actual is None else _check_prices(actual, day).reindex(index=px.index)
    with session_scope(engine, write=False) as session:
        who = actor_for(session, actor)
        book = _portfolios(session, who, portfolio_ids, strategy=True)
        entries = _ledgers(session, who, None if portfolio_ids is None else book["portfolio_id"].tolist(), day)
    entries = entries[entries["portfolio_id"].isin(book["portfolio_id"])]
    # positions on as_of: shares by (portfolio, name), cash by portfolio
    cash = entries.groupby("portfolio_id")["dcash"].sum()
    share_rows = entries[entries["ticker"].notna() & (entries["dq"] != 0)]
    grouped = share_rows.assign(gross=share_rows["dq"].abs()).groupby(["portfolio_id", "ticker"])
    q, gross = grouped["dq"].sum(), grouped["gross"].sum()
    q = q[q > _ledger.SHARE_TOLERANCE * np.maximum(1.0, gross)]

    info: dict[int, dict] = {}
    strategies: dict[str, Strategy | StrategyError] = {}
    unread: set[int] = set()
    for row in book.itertuples(index=False):
        raw = row.strategy
        key = "" if raw is None else json.dumps(raw, sort_keys=True)
        if key not in strategies:
            # stored strategies were checked whole when stored (None: the default strategy); one stored
            # by an older qpo that this one refuses leaves its portfolio unchecked, not the whole run
            try:
                strategies[key] = Strategy.from_json(raw if raw is not None else {"schema_version": 1},
                                                     check_builds=False)
            except StrategyError as exc:
                strategies[key] = exc
        strat = strategies[key]
        if isinstance(strat, StrategyError):
            unread.add(int(row.portfolio_id))
            strat = Strategy.default()
        c = float(cash.get(row.portfolio_id, 0.0))
        info[int(row.portfolio_id)] = {
            "name": row.name, "client": row.client, "advisor_email": row.advisor_email,
            # the portfolio's own benchmark, else its strategy's (qpo.store.portfolio_benchmark's rule)
            "advisor_name": row.advisor_name, "benchmark": benchmark_of(row.benchmark, row.strategy),
            "limits": strat.limits,
            "objective": strat.objective, "confidence": strat.confidence,
            "cash": 0.0 if abs(c) < _ledger.CASH_TOLERANCE else c, "invested": None, "prices_as_of": None,
            "skipped": None}

    held = q.reset_index()
    held.columns = ["portfolio_id", "ticker", "shares"]
    with_shares = set(held["portfolio_id"].tolist())
    for pid, item in info.items():
        if pid not in with_shares:
            item["skipped"] = f"holds no shares on {day.date()}"
    for pid in unread & with_shares:
        why = strategies["" if (raw := book.set_index("portfolio_id").at[pid, "strategy"]) is None
                         else json.dumps(raw, sort_keys=True)]
        info[pid]["skipped"] = (f"its stored strategy does not read ({why}): store a valid one (`qpo portfolio update "
                                f"{info[pid]['name']} --strategy FILE`)")
    held = held[~held["portfolio_id"].isin(unread)]
    missing = held[~held["ticker"].isin(px.columns)]
    for pid, names in missing.groupby("portfolio_id")["ticker"]:
        info[int(pid)]["skipped"] = f"holds {_names_list(sorted(names))}, which the price data lacks"
    held = held[~held["portfolio_id"].isin(missing["portfolio_id"])]
    if act is not None and len(held):  # the closes each position's shares are counted at
        on_adjusted = adjusted_basis(share_rows, act, px)
        at_adjusted = np.array([(int(p), str(t)) in on_adjusted for p, t in zip(held["portfolio_id"], held["ticker"],
                                                                                strict=True)], dtype=bool)
        held = held.assign(adjusted=at_adjusted)
    weights = _weights(held, px, info, day, act)
    weights.index.name = "portfolio_id"
    weights.columns.name = "ticker"
    return weights, info


__all__ = ["STATUSES", "VALUATION_COLUMNS", "book_weights", "value_book"]
