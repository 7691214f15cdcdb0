"""GICS sectors of the bundled S&P 500 panel's 20 tickers (public facts), for sector constraints
on the bundled data. Other universes pass their own ``{ticker: sector}`` mapping."""
from __future__ import annotations

import pandas as pd

from qpo.errors import DataError, named, quoted

BUNDLED_SECTORS: dict[str, str] = {
    "AAPL": "Information Technology", "AMD": "Information Technology", "MSFT": "Information Technology",
    "BAC": "Financials", "JPM": "Financials",
    "BBY": "Consumer Discretionary", "HD": "Consumer Discretionary",
    "CVX": "Energy", "RRC": "Energy", "XOM": "Energy",
    "GE": "Industrials",
    "JNJ": "Health Care", "LLY": "Health Care", "MRK": "Health Care", "PFE": "Health Care", "UNH": "Health Care",
    "KO": "Consumer Staples", "PEP": "Consumer Staples", "PG": "Consumer Staples", "WMT": "Consumer Staples",
}


def load_sectors(source: str | None = None) -> dict[str, str]:
    """``{ticker: sector}``: the bundled panel's map (``source=None``), or a CSV with ``ticker`` and
    ``sector`` columns."""
    if source is None:
        return dict(BUNDLED_SECTORS)
    try:
        frame = pd.read_csv(source)
    except (OSError, ValueError) as exc:
        raise DataError(f"cannot read sectors from {quoted(source, 200)}: {str(exc)[:200]}") from exc
    missing = {"ticker", "sector"} - set(frame.columns)
    if missing:
        raise DataError(f"{quoted(source, 200)} has no column(s) {sorted(missing)}; a sector file needs ticker and sector "
                        f"columns (it has {named([str(c) for c in frame.columns], 10)})")
    return dict(zip(frame["ticker"].astype(str), frame["sector"].astype(str)))
