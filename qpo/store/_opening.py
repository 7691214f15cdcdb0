"""The opening entries of a new portfolio (its holdings delivered in, its cash deposited), each
checked, every problem at once: for :func:`qpo.store.portfolios.create_portfolio`."""
from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping

import pandas as pd
from sqlalchemy.orm import Session

from qpo._checks import quote
from qpo.store import _inputs as check
from qpo.store import ledger
from qpo.store._repo import _amount_ok, _collect
from qpo.store._tickers import _universe


def opening_entries(session: Session, holdings, cash, trade_date, known_tickers, problems) -> list[ledger.Entry]:
    entries: list[ledger.Entry] = []
    day = _collect(problems, check.trade_day, trade_date if trade_date is not None else dt.date.today(), "trade date")
    if holdings is not None:
        if isinstance(holdings, pd.DataFrame):
            rows = holdings.to_dict("records")
        elif isinstance(holdings, Mapping | pd.Series):
            rows = [{"ticker": t, "shares": q} for t, q in holdings.items()]
        else:
            problems.append(f"holdings must be a dict of ticker -> shares or a DataFrame (ticker, shares[, price, "
                            f"date]), got {quote(holdings)}")
            rows = []
        if holdings is not None and len(rows) == 0 and not problems:
            problems.append("no holdings given")
        universe, unknown = _universe(session, known_tickers)
        seen: set[str] = set()
        for row in rows:
            key, qty = row.get("ticker"), row.get("shares")
            ticker = _collect(problems, check.ticker, key)
            shown = ticker if ticker is not None else quote(key, 20)
            if not _amount_ok(qty, "positive", money=True):
                problems.append(f"{shown}: shares {quote(qty, 20)} must be a positive finite number of at most 1e12")
            elif float(qty) < ledger.MIN_QUANTITY:
                problems.append(f"{shown}: shares {float(qty):.3g} are below {ledger.MIN_QUANTITY:g}, the smallest a "
                                "ledger records")
            if ticker is None:
                continue
            if ticker in seen:
                problems.append(f"{ticker}: given twice")
                continue
            seen.add(ticker)
            if ticker not in universe:
                hint = f" (did you mean {ticker.upper()!r}?)" if ticker.upper() in universe else ""
                problems.append(f"{ticker}: {unknown}{hint}")
                continue
            price = row.get("price")
            price = None if price is None or (isinstance(price, float) and math.isnan(price)) else price
            if price is not None and not _amount_ok(price, "positive", money=True):
                problems.append(f"{ticker}: price {quote(price, 20)} must be a positive finite number of at most 1e12")
                continue
            when = row.get("date")
            when = day if when is None or pd.isna(when) else _collect(problems, check.trade_day, when, f"{ticker} date")
            if _amount_ok(qty, "positive", money=True) and float(qty) >= ledger.MIN_QUANTITY and when is not None:
                entries.append(ledger.Entry("transfer_in", when, ticker, float(qty),
                                            None if price is None else float(price)))
    if cash is not None:
        if not _amount_ok(cash, "positive", money=True):
            problems.append(f"cash {quote(cash, 20)} must be a positive finite amount of at most 1e12")
        elif day is not None:
            entries.append(ledger.Entry("deposit", day, amount=float(cash)))
    if holdings is None and cash is None:
        problems.append("give the opening holdings or an opening cash deposit (or both)")
    return entries
