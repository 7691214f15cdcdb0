"""Reading a client's holdings file: CSV with a header line ``ticker,shares[,price,date]``.

Column names are matched without regard to case or surrounding spaces; a UTF-8 byte-order mark,
UTF-16 (as spreadsheets save "Unicode text"), semicolon, tab or pipe separators and blank lines are
fine. ``price`` is an optional cost basis per share and ``date`` (YYYY-MM-DD) the optional date it
was acquired; blank cells mean "not known".

Nothing is returned unless every row is good: the problems of every row are collected and reported
together in one :class:`~qpo.errors.DataError` (under 300 characters, the rest counted), each naming
its rows. Rows are numbered from 1, the first line after the header, blank lines included.
"""
from __future__ import annotations

import csv
import datetime as dt
import io
import math
import re
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from qpo._checks import quote
from qpo.errors import DataError
from qpo.store.ledger import FIRST_TRADE_DATE, MAX_MONEY, MIN_QUANTITY

COLUMNS = ("ticker", "shares", "price", "date")
REQUIRED_COLUMNS = ("ticker", "shares")
TICKER_MAX = 16
MAX_MESSAGE = 300
#: names a spreadsheet may give a column, and the column they mean
ALIASES = {"symbol": "ticker", "quantity": "shares", "qty": "shares", "units": "shares", "cost": "price",
           "cost_basis": "price", "price_paid": "price", "trade_date": "date", "acquired": "date"}
_SEPARATORS = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}
_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
_DECIMAL_COMMA = re.compile(r"^[+-]?\d+,\d+$")
_NON_FINITE = re.compile(r"^[+-]?(nan|inf|infinity)$", re.I)
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}([ T]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?$")
#: what a few binary files start with, and what they are
_MAGIC = {b"PK\x03\x04": "a zip archive (an Excel .xlsx workbook?)", b"\xd0\xcf\x11\xe0": "an old Excel .xls workbook",
          b"%PDF": "a PDF document", b"\x89PNG": "a PNG image", b"\x1f\x8b": "gzip-compressed"}


def read_holdings_file(path, known_tickers: Iterable[str] | None, *,
                       source: str = "the price data") -> pd.DataFrame:
    """The holdings of a CSV file as a DataFrame with columns ``ticker`` (text), ``shares``
    (float > 0), ``price`` (float > 0, NaN when not given) and ``date`` (Timestamp, NaT when not
    given), one row per holding in the file's order: what
    :func:`qpo.store.create_portfolio` takes as ``holdings``.

    ``known_tickers`` are the tickers the price data has (a ticker outside them is refused, with a
    "did you mean" when its upper case is known); None leaves that check to the store. ``source``
    names those prices in the message that refuses a ticker ("unknown ticker (not in SOURCE)").

    Raises
    ------
    DataError
        a missing file, a file that is not text, an empty file or one with a header only, missing,
        unknown or repeated columns; and, all together with their row numbers: unknown or malformed
        tickers, tickers given twice, shares that are not a positive finite number, prices that
        are not positive, dates that are not YYYY-MM-DD, rows with too many or too few cells.
    """
    p = Path(path)
    label = f"holdings file {quote(str(path) if len(str(path)) <= 60 else p.name, 60)}"
    known = _known(known_tickers)
    text = _text(p, label)
    sep = _separator(text)
    rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=sep, strict=False))
    while rows and not any(c.strip() for c in rows[-1]):
        rows.pop()
    while rows and not any(c.strip() for c in rows[0]):  # blank lines before the header
        rows.pop(0)
    if not rows or not any(c.strip() for c in rows[0]):
        raise DataError(f"{label} is empty: it needs a header line (ticker,shares[,price,date]) and one line per holding")
    header = [h.strip().lower() for h in rows[0]]
    while header and not header[-1]:  # the trailing separators spreadsheets write
        header.pop()
    _check_header(header, label)
    body = rows[1:]
    if not any(any(c.strip() for c in r) for r in body):
        raise DataError(f"{label} has a header and no holdings: add one line per holding (ticker,shares[,price,date])")
    col = {name: header.index(name) for name in COLUMNS if name in header}
    decimal_comma = sep != ","
    problems: dict[str, list[str]] = defaultdict(list)  # problem -> "row n (value)" items, in file order
    seen: dict[str, int] = {}
    out = []
    for n, cells in enumerate(body, start=1):
        if not any(c.strip() for c in cells):
            continue
        if len(cells) > len(header) and any(c.strip() for c in cells[len(header):]):
            problems[f"more than {len(header)} cells"].append(f"{n} ({len(cells)})")
            continue
        cells = cells[:len(header)] + [""] * (len(header) - len(cells))  # missing trailing cells are blank
        raw = {name: cells[i].strip() for name, i in col.items()}
        ticker = _ticker(raw["ticker"], n, known, problems, source)
        shares = _shares(raw["shares"], n, decimal_comma, problems)
        price = _price(raw.get("price", ""), n, decimal_comma, problems)
        date = _date(raw.get("date", ""), n, problems)
        if ticker is not None:
            if ticker in seen:
                key = f"{ticker} given more than once"
                if key not in problems:
                    problems[key].append(str(seen[ticker]))
                problems[key].append(str(n))
            else:
                seen[ticker] = n
        out.append((ticker, shares, price, date))
    if problems:
        raise DataError(_report(label, problems))
    frame = pd.DataFrame(out, columns=list(COLUMNS))
    frame["ticker"] = frame["ticker"].astype(object)
    frame["shares"] = frame["shares"].astype(float)
    frame["price"] = frame["price"].astype(float)
    frame["date"] = pd.to_datetime(frame["date"]).astype("datetime64[ns]")
    return frame


# -- the file ---------------------------------------------------------------------------------------
def _known(known_tickers) -> set[str] | None:
    if known_tickers is None:
        return None
    if isinstance(known_tickers, str) or not isinstance(known_tickers, Iterable):
        raise DataError(f"known_tickers must be a collection of tickers (the price data's columns), got {quote(known_tickers)}")
    return {str(t) for t in known_tickers}


def _text(p: Path, label: str) -> str:
    if not p.exists():
        raise DataError(f"{label} not found")
    if not p.is_file():
        raise DataError(f"{label} is not a file")
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise DataError(f"{label} cannot be read: {exc.strerror}") from None
    for magic, what in _MAGIC.items():
        if raw.startswith(magic):
            raise DataError(f"{label} is {what}, not a CSV text file: save it as CSV (ticker,shares[,price,date])")
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        encoding = "utf-16"
    else:
        encoding = "utf-8-sig"
        if b"\x00" in raw:
            raise DataError(f"{label} is not a text file (it holds NUL bytes, from byte {raw.index(0)}): save it as CSV")
    try:
        text = raw.decode(encoding)
    except UnicodeDecodeError as exc:
        raise DataError(f"{label} is not UTF-8 text (byte {exc.start}: {exc.reason}): save it as CSV UTF-8") from None
    if "\x00" in text:
        raise DataError(f"{label} is not a text file (it holds NUL characters): save it as CSV")
    return text


def _separator(text: str) -> str:
    header = next((ln for ln in text.splitlines() if ln.strip()), "")
    counts = {sep: header.count(sep) for sep in _SEPARATORS}
    best = max(counts.values())
    return next((s for s, k in counts.items() if k == best), ",") if best else ","


def _check_header(header: list[str], label: str) -> None:
    valid = f"the columns are {','.join(COLUMNS)} (ticker and shares required)"
    twice = sorted({h for h in header if h and header.count(h) > 1})
    if twice:
        raise DataError(f"{label}: column {quote(twice[0], 20)} given twice; {valid}")
    unknown = [h for h in header if h not in COLUMNS]
    missing = [h for h in REQUIRED_COLUMNS if h not in header]
    parts = []
    if unknown:
        named = [f"{quote(h, 20)}{f' (did you mean {ALIASES[h]}?)' if h in ALIASES else ''}" if h else "a blank one"
                 for h in unknown[:3]]
        parts.append(f"unknown column{'s' if len(unknown) > 1 else ''} {', '.join(named)}"
                     + (f" and {len(unknown) - 3} more" if len(unknown) > 3 else ""))
    if missing:
        parts.append(f"no {' or '.join(missing)} column")
    if parts:
        raise DataError(_cut(f"{label}: {'; '.join(parts)}; {valid}"))


# -- the cells --------------------------------------------------------------------------------------
def _ticker(text: str, n: int, known: set[str] | None, problems, source: str = "the price data") -> str | None:
    if not text:
        problems["no ticker"].append(str(n))
        return None
    if len(text) > TICKER_MAX or any(ch.isspace() or not ch.isprintable() for ch in text):
        problems[f"tickers are 1 to {TICKER_MAX} characters without spaces"].append(f"{n} ({quote(text, 12)})")
        return None
    if known is not None and text not in known:
        import difflib

        key = f"unknown ticker (not in {source})"
        close = [text.upper()] if text.upper() in known else (  # a hint for the rows a message can show
            difflib.get_close_matches(text.upper(), known, n=1) if len(problems[key]) < 5 else [])
        hint = f", did you mean {close[0]}?" if close else ""
        problems[f"unknown ticker (not in {source})"].append(f"{n} ({text}{hint})")
        return None
    return text


def _number(text: str, decimal_comma: bool) -> float | str:
    """The number of a cell, or why it is none: "blank", "not a number", "not finite"."""
    if not text:
        return "blank"
    if decimal_comma and _DECIMAL_COMMA.match(text):
        text = text.replace(",", ".")
    if _NON_FINITE.match(text):
        return "not finite"
    if not _NUMBER.match(text):
        return "not a number"
    x = float(text)
    return x if math.isfinite(x) else "not finite"


def _shares(text: str, n: int, decimal_comma: bool, problems) -> float | None:
    x = _number(text, decimal_comma)
    if isinstance(x, str) or x <= 0:
        problems["shares must be a positive number"].append(f"{n} ({quote(text, 12) if text else 'blank'})")
        return None
    if not MIN_QUANTITY <= x <= MAX_MONEY:  # the ledger's bounds, said with the file's other problems
        problems[f"shares must lie from {MIN_QUANTITY:g} to {MAX_MONEY:.0e}"].append(f"{n} ({quote(text, 12)})")
        return None
    return x


def _price(text: str, n: int, decimal_comma: bool, problems) -> float:
    if not text:
        return float("nan")
    x = _number(text, decimal_comma)
    if isinstance(x, str) or x <= 0:
        problems["price must be a positive number or blank"].append(f"{n} ({quote(text, 12)})")
        return float("nan")
    if x > MAX_MONEY:
        problems[f"price must be at most {MAX_MONEY:.0e}"].append(f"{n} ({quote(text, 12)})")
        return float("nan")
    return x


def _date(text: str, n: int, problems) -> pd.Timestamp:
    if not text:
        return pd.NaT
    stamp = pd.NaT
    if _ISO_DATE.match(text):
        try:
            stamp = pd.Timestamp(text)
        except (ValueError, OverflowError):
            stamp = pd.NaT
    if pd.isna(stamp):
        problems["date must be YYYY-MM-DD or blank"].append(f"{n} ({quote(text, 12)})")
        return pd.NaT
    if not FIRST_TRADE_DATE <= stamp.date() <= dt.date.today() + dt.timedelta(days=1):
        problems[f"date must lie from {FIRST_TRADE_DATE} to today"].append(f"{n} ({quote(text, 12)})")
        return pd.NaT
    return stamp.normalize() if stamp == stamp.normalize() else stamp


# -- the report -------------------------------------------------------------------------------------
def _report(label: str, problems: dict[str, list[str]]) -> str:
    """One message: each problem with its rows (``rows 3, 7 (...)``), every kind of problem named
    first (its first row), then more rows of each while the message fits, the rest counted."""
    groups = list(problems.items())
    total = sum(len(items) for _, items in groups)
    head = f"{label}: {total} problem{'s' if total > 1 else ''} (row 1 is the first line after the header): "
    taken: list[list[str]] = [[] for _ in groups]

    def text(extra: int = 0) -> str:
        parts = [_group(what, rows) for (what, _), rows in zip(groups, taken, strict=True) if rows]
        rest = total - sum(len(rows) for rows in taken) - extra
        return head + "; ".join(parts) + (f" ... and {rest} more" if rest else "")

    for depth in range(max((len(items) for _, items in groups), default=0)):  # a row of every kind, then more
        for k, (_, items) in enumerate(groups):
            if depth < len(items):
                taken[k].append(items[depth])
                if len(text()) > MAX_MESSAGE and sum(map(len, taken)) > 1:
                    taken[k].pop()
    return _cut(text())


def _group(what: str, items: list[str]) -> str:
    return f"{what}: row{'s' if len(items) > 1 else ''} {', '.join(items)}"


def _cut(message: str) -> str:
    return message if len(message) <= MAX_MESSAGE else message[: MAX_MESSAGE - 3] + "..."


__all__ = ["COLUMNS", "read_holdings_file"]
