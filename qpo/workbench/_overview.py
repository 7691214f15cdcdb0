"""Helpers of the advisor dashboard (:mod:`qpo.workbench.advisor`) kept out of its module: the
holdings table and the day's change (used from there), whether the store's market data moved on
since the page read its prices, what the Overview shows of a portfolio that holds only cash, the
portfolio picker and figures updated in place."""
from __future__ import annotations

import functools
import html

import pandas as pd

#: what the Overview says of a portfolio whose ledger holds only cash
CASH_ONLY_NOTE = "holds only cash: propose its first investment in the Rebalance tab"
#: what the Risk and History tabs say of it
NO_RISK_YET = "holds only cash: there is no risk to report yet (propose its first investment in the Rebalance tab)"
#: what a page says when the store cannot be read in the middle of a session
STORE_DOWN = "the store cannot be read just now (it may be restarting); try again in a moment, or ask the administrator"


def failure_text(exc: BaseException, what: str) -> str:
    """What a tab says when ``what`` failed with an error that is not qpo's own: the store out of
    reach in plain words (a driver's text may hold the store's URL, so it is never shown), anything
    else by its kind only."""
    from sqlalchemy.exc import DisconnectionError, InterfaceError, OperationalError

    if isinstance(exc, (OperationalError, InterfaceError, DisconnectionError, ConnectionError, TimeoutError)):
        return f"{what}: {STORE_DOWN}"
    return f"{what} ({type(exc).__name__})"


def prices_moved(engine, prices: pd.DataFrame, index: pd.Series | None, tickers=None, start=None) -> bool:
    """Whether the store holds a newer bar than ``prices`` (the page's closes) of a ticker (of
    ``tickers``, default every one the store holds), or a newer S&P 500 level than ``index`` (its
    series as the page holds it): one grouped query of the last bar dates, no panel read. A ticker
    whose last bar is before ``start`` (the page's first date) is not one the page shows."""
    from qpo.store.market_data import BENCHMARK_TICKER, INDEX_TICKERS, last_bar_dates

    asked = None if tickers is None else sorted({*map(str, tickers), BENCHMARK_TICKER})
    first = pd.Timestamp(start) if start is not None else None
    for ticker, day in last_bar_dates(engine, asked).items():
        last = pd.Timestamp(day)
        if first is not None and last < first:
            continue
        if ticker == BENCHMARK_TICKER:
            shown = index.last_valid_index() if index is not None else None
        elif ticker in INDEX_TICKERS:
            continue
        else:
            shown = prices[ticker].last_valid_index() if ticker in prices.columns else None
        if shown is None or last > pd.Timestamp(shown):
            return True
    return False


def holds_only_cash(session, actor, name: str, day) -> float | None:
    """The cash of portfolio ``name`` when on ``day`` its ledger holds no shares and none are bought
    after (only cash: nothing invested yet, or all sold), else None (it holds shares, or buys them
    only later: a date before its first holding)."""
    from qpo.store import list_transactions, position

    pos = position(session, actor, name, pd.Timestamp(day).date())
    if not pos.shares.empty:
        return None
    ledger = list_transactions(session, actor, name)
    bought = pd.to_datetime(ledger.loc[ledger["kind"].isin(["buy", "transfer_in"]), "trade_date"])
    return None if (bought > pd.Timestamp(day)).any() else float(pos.cash)


def cash_only_html(name: str, row, cash: float, day, change: tuple[float, float] = (0.0, 0.0)) -> tuple[str, str, str]:
    """The Overview's header, holdings and risk boxes of portfolio ``name`` holding only ``cash`` on
    ``day`` (``row``: its line of the portfolio list, client and advisor; ``change``: the day's
    change in dollars and as a return, :func:`day_change`)."""
    dollars, pct = change
    sign = "-" if round(dollars) < 0 else "+" if round(dollars) > 0 else ""
    header = (f"<h3>{html.escape(name)}</h3><p>Client: {html.escape(str(row['client']))} · "
              f"Advisor: {html.escape(str(row['advisor']))} · Market value ${cash:,.0f} (cash ${cash:,.0f}) on "
              f"{day} · <span class='qpo-day-change'>Day change {sign}${abs(dollars):,.0f} ({pct:+.2%})</span></p>")
    holdings = (f"<h4>Holdings</h4><p class='qpo-cash-only'>{html.escape(name)} {CASH_ONLY_NOTE}: "
                f"${cash:,.2f} in cash, no holdings.</p>")
    risk = f"<h4>Risk</h4><p class='qpo-no-risk'>{html.escape(name)} {NO_RISK_YET}.</p>"
    return header, holdings, risk


def holdings_table(shares: pd.Series, prices: pd.DataFrame, cash: float = 0.0,
                   day_pnl: pd.Series | None = None) -> pd.DataFrame:
    """Per holding (``shares`` by ticker, the ledger's position): its shares, last close and the
    close before (``prices``' last two dates, a missing close carried forward), market value,
    weight in the whole value (cash included), the day's change in dollars and the change of the
    close in percent (of the close before). The dollar change is ``day_pnl``'s (:func:`day_change`:
    what the day's trades did counts) where given, else shares x the change of the close (a
    position held all day). Largest value first."""
    from qpo.errors import DataError

    if shares.empty:
        raise DataError("the portfolio holds no shares: no holdings to show")
    missing = sorted(set(shares.index) - set(prices.columns))
    if missing:
        raise DataError(f"no prices for the held {', '.join(map(str, missing))}")
    if len(prices) < 2:
        raise DataError("the day's change needs two dates of prices; the prices have "
                        f"{len(prices)}")
    px = prices[list(shares.index)].ffill()
    last, prev = px.iloc[-1], px.iloc[-2]
    unpriced = last.index[last.isna() | prev.isna()].tolist()
    if unpriced:
        raise DataError(f"no close on {px.index[-2].date()} or before for {', '.join(map(str, unpriced))}")
    q = shares.astype(float)
    value = q * last
    total = float(value.sum()) + float(cash)
    change = q * (last - prev) if day_pnl is None else day_pnl.reindex(q.index).fillna(0.0)
    table = pd.DataFrame({"shares": q, "price": last, "previous close": prev, "market value": value,
                          "weight": value / total if total else value * float("nan"),
                          "day change": change, "day change %": last / prev - 1.0})
    table.index.name = "ticker"
    return table.sort_values("market value", ascending=False)


def actual_closes(engine, prices: pd.DataFrame, origin: str) -> pd.DataFrame:
    """The closes shares traded at, beside ``prices`` (the adjusted ones): the store's actual closes
    of the same names and dates when they differ from the adjusted ones (a vendor's bars), else
    ``prices``. The day's change is in actual closes, as the ledger's trades, splits and dividends
    are: on a split or ex-dividend day the adjusted close before already holds the event."""
    from qpo.store.market_data import closes_differ, prices_panel

    if origin != "store" or not closes_differ(engine):
        return prices
    actual = prices_panel(engine, list(prices.columns), prices.index[0], prices.index[-1], actual=True)
    return actual.reindex(index=prices.index, columns=prices.columns).fillna(prices)


def day_positions(session, actor, name: str, dates: pd.DatetimeIndex):
    """Portfolio ``name``'s position at the close of the date before the last of ``dates`` and at
    the last, and its ledger entries dated after the one and up to the other (what
    :func:`day_change` takes)."""
    from qpo.store import list_transactions, position

    day = dates[-1].date()
    before_day = dates[-2].date() if len(dates) > 1 else day
    ledger = list_transactions(session, actor, name)
    dated = pd.to_datetime(ledger["trade_date"]).dt.date
    return (position(session, actor, name, before_day), position(session, actor, name, day),
            ledger[(dated > before_day) & (dated <= day)])


def day_change(prices: pd.DataFrame, before, now, entries: pd.DataFrame | None = None) -> tuple[pd.Series, float, float]:
    """The portfolio's change over the last day of ``prices``: ``before`` and ``now`` are its
    positions (``.shares``, ``.cash``) at the close of the date before and of the last date, and
    ``entries`` the ledger entries dated after the one and up to the other (columns of
    :func:`qpo.store.list_transactions`). Returns the change in dollars per name (held on either
    day or traded), the portfolio's change in dollars and its return, the nightly valuation's:
    ``(V_t + O_t) / (V_{t-1} + I_t) - 1`` with deposits and shares delivered in as inflows (at the
    close before), withdrawals and shares delivered out as outflows (at the day's close). Shares
    bought during the day change by what they cost against the close, not by the whole day's move;
    dividends count to their name, fees to the trade or the account."""
    px = prices.ffill()
    last, prev = px.iloc[-1], px.iloc[-2]
    q0, q1 = before.shares.astype(float), now.shares.astype(float)
    traded = [] if entries is None else entries["ticker"].dropna().astype(str).tolist()
    names = sorted(set(q0.index) | set(q1.index) | set(traded))
    a, b = q0.reindex(names).fillna(0.0), q1.reindex(names).fillna(0.0)
    p0, p1 = prev.reindex(names), last.reindex(names)
    pnl = (b * p1).where(b != 0, 0.0) - (a * p0).where(a != 0, 0.0)
    inflow = outflow = account = 0.0
    for e in ([] if entries is None else entries.itertuples(index=False)):
        q, p, fees, amount = (float(v) if v is not None and pd.notna(v) else 0.0
                              for v in (e.quantity, e.price, e.fees, e.amount))
        t = e.ticker if isinstance(e.ticker, str) else None
        if e.kind == "buy":
            pnl[t] -= q * p + fees
        elif e.kind == "sell":
            pnl[t] += q * p - fees
        elif e.kind == "transfer_in":
            at = p0[t] if pd.notna(p0[t]) else p1[t]
            pnl[t] -= q * at + fees
            inflow += q * at
        elif e.kind == "transfer_out":
            pnl[t] += q * p1[t] - fees
            outflow += q * p1[t]
        elif e.kind == "dividend":
            pnl[t] += amount - fees
        elif e.kind == "deposit":
            inflow += amount
            account -= fees
        elif e.kind == "withdrawal":
            outflow += amount
            account -= fees
        elif e.kind == "fee":
            account -= amount + fees
        else:  # a split: the shares changed, the closes (actual) with them
            pnl[t] -= fees
    v0 = float((a * p0).where(a != 0, 0.0).sum()) + float(before.cash)
    v1 = float((b * p1).where(b != 0, 0.0).sum()) + float(now.cash)
    total = v1 + outflow - v0 - inflow
    base = v0 + inflow
    return pnl, total, (total / base if base > 0 else 0.0)


@functools.cache
def portfolio_choice() -> type:
    """A Dropdown whose page may only pick one of its options: a message from the page sets its
    ``index`` (checked against the options) and nothing else, so a forged message cannot add an
    option (its labels) either. What is then shown is still read as the person signed in."""
    import ipywidgets as widgets

    class PortfolioChoice(widgets.Dropdown):
        def set_state(self, sync_data):
            picked = {k: v for k, v in sync_data.items() if k == "index"}
            if picked:
                super().set_state(picked)

    return PortfolioChoice


def replace_figure(widget, figure) -> None:
    """Give a FigureWidget the traces and title of ``figure`` in one message to the browser: the
    traces' data in place when their number and kinds agree, else the traces replaced."""
    same = len(widget.data) == len(figure.data) and all(a.type == b.type for a, b in zip(widget.data, figure.data))
    with widget.batch_update():
        if same:
            for old, new in zip(widget.data, figure.data):
                old.update(new.to_plotly_json(), overwrite=True)
        else:
            widget.data = ()
            widget.add_traces(list(figure.data))
        widget.layout.update(figure.layout.to_plotly_json(), overwrite=True)
