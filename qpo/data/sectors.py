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


#: the eleven GICS sectors (since 2018)
GICS_SECTORS: tuple[str, ...] = (
    "Communication Services", "Consumer Discretionary", "Consumer Staples", "Energy", "Financials", "Health Care",
    "Industrials", "Information Technology", "Materials", "Real Estate", "Utilities")
#: the sector of a ticker that a sector map does not name
UNCLASSIFIED = "Unclassified"


def unknown_sectors(names, sectors: dict[str, str] | None = None) -> list[tuple[str, str | None]]:
    """The names among ``names`` that are no sector, each with the sector it most likely means
    (None when none is close). Known: the GICS sectors, ``Unclassified`` and, with ``sectors``
    (ticker -> sector) given, that map's sectors. Without a map, only near misses of a known name
    ("Information technology", "Helth Care") are returned: a taxonomy of one's own is allowed
    until it meets the map it is used with."""
    import difflib

    known = set(GICS_SECTORS) | {UNCLASSIFIED} | set(BUNDLED_SECTORS.values())
    if sectors is not None:
        known |= {str(v) for v in sectors.values()}
    folded = {k.casefold(): k for k in known}
    out: list[tuple[str, str | None]] = []
    for name in names:
        name = str(name)
        if name in known:
            continue
        guess = folded.get(name.casefold().strip()) or next(iter(difflib.get_close_matches(name, sorted(known), 1, 0.9)),
                                                             None)
        if guess is not None or sectors is not None:
            out.append((name, guess))
    return out


def sector_names_error(where: str, unknown: list[tuple[str, str | None]], sectors: dict[str, str] | None) -> str:
    """The message for :func:`unknown_sectors`' findings."""
    name, guess = unknown[0]
    hint = f"did you mean {guess!r}?" if guess else ""
    pool = sorted({str(v) for v in sectors.values()}) if sectors is not None else list(GICS_SECTORS)
    more = f" (and {len(unknown) - 1} more)" if len(unknown) > 1 else ""
    return (f"{where} names the sector {quoted(name, 40)}{more}, which no ticker has (a cap on it caps nothing); "
            + (hint or f"sectors: {', '.join(pool[:6])}{' ...' if len(pool) > 6 else ''}"))


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
    tickers = frame["ticker"].astype(str).str.strip()
    twice = sorted(set(tickers[tickers.duplicated()]))
    if twice:  # a dict would keep the last row's sector, unseen
        raise DataError(f"{quoted(source, 200)} gives {named(twice, 5)} more than once; give each ticker one sector")
    return dict(zip(tickers, frame["sector"].astype(str).str.strip()))
