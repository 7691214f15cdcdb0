"""The one home of qpo's argument checks, the required-option marker and package versions.

Every package checks its arguments with these functions, so the same wrong value gets the same
message everywhere: what was wrong, and what is valid. They raise :class:`~qpo.errors.InvalidValueError`
unless told to raise another :class:`~qpo.errors.QpoError` (``error=ProblemError``).
This module imports nothing from qpo but :mod:`qpo.errors`.
"""
from __future__ import annotations

import math
import numbers
import re
import unicodedata
from collections.abc import Iterable
from importlib import metadata

import numpy as np

from qpo.errors import DataError, InvalidValueError, QpoError


class _Required:
    """The marker of an option that has no default: the caller must give it."""

    _instance: _Required | None = None

    def __new__(cls) -> _Required:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "REQUIRED"

    def __reduce__(self) -> str:
        return "REQUIRED"


#: the default of an option the caller must give (``{"target_return": REQUIRED}``)
REQUIRED = _Required()


def is_number(v: object) -> bool:
    """A finite real number that is not a bool."""
    if not isinstance(v, numbers.Real) or isinstance(v, bool):
        return False
    try:
        return bool(np.isfinite(float(v)))
    except OverflowError:  # an int beyond float's range (10**400)
        return False


def _bound(lo: float | None, hi: float | None, lo_open: bool, hi_open: bool) -> str:
    parts = []
    if lo is not None:
        parts.append(f"{'>' if lo_open else '>='} {lo:g}")
    if hi is not None:
        parts.append(f"{'<' if hi_open else '<='} {hi:g}")
    return " and ".join(parts)


def _hint(hint: str) -> str:
    return f" ({hint})" if hint else ""


def number(name: str, v: object, lo: float | None = None, hi: float | None = None, *, lo_open: bool = False,
           hi_open: bool = False, hint: str = "", error: type[QpoError] = InvalidValueError) -> float:
    """``v`` as a float, checked finite and within ``[lo, hi]`` (``lo_open``/``hi_open`` exclude the
    bound). ``hint`` (what is valid, e.g. "0.95 for 95 %") is added to the message."""
    if not is_number(v):
        bound = _bound(lo, hi, lo_open, hi_open)
        raise error(f"{name} must be a finite number{' ' + bound if bound else ''}{_hint(hint)}, got {quote(v)}")
    x = float(v)  # type: ignore[arg-type]
    if (lo is not None and (x <= lo if lo_open else x < lo)) or (hi is not None and (x >= hi if hi_open else x > hi)):
        raise error(f"{name} must be a finite number {_bound(lo, hi, lo_open, hi_open)}{_hint(hint)}, got {quote(v)}")
    return x


def positive(name: str, v: object, *, hint: str = "", error: type[QpoError] = InvalidValueError) -> float:
    """``v`` as a float, checked finite and > 0."""
    if not is_number(v) or float(v) <= 0:  # type: ignore[arg-type]
        raise error(f"{name} must be a positive finite number{_hint(hint)}, got {quote(v)}")
    return float(v)  # type: ignore[arg-type]


def whole(name: str, v: object, lo: int | None = None, hi: int | None = None, *, hint: str = "",
          error: type[QpoError] = InvalidValueError) -> int:
    """``v`` as an int, checked a whole number (not a bool, not a float) within ``[lo, hi]``."""
    ok = isinstance(v, numbers.Integral) and not isinstance(v, bool)
    if not ok or (lo is not None and v < lo) or (hi is not None and v > hi):  # type: ignore[operator]
        bound = f"from {lo} to {hi}" if lo is not None and hi is not None else _bound(lo, hi, False, False)
        raise error(f"{name} must be a whole number{' ' + bound if bound else ''}{_hint(hint)}, got {quote(v)}")
    return int(v)  # type: ignore[call-overload]


def finite_or_none(v: object) -> float | None:
    """``v`` as a float, or None when it is missing (None, pandas' NA) or not finite: what a table
    cell, a JSON field or a database column holds for "no value"."""
    if v is None:
        return None
    try:
        x = float(v)  # type: ignore[arg-type]
    except TypeError:
        if type(v).__name__ in ("NAType", "NaTType"):  # pandas' missing values (pandas not imported here)
            return None
        raise
    return x if math.isfinite(x) else None


def fraction(name: str, v: object, *, error: type[QpoError] = InvalidValueError) -> float:
    """``v`` as a float strictly between 0 and 1."""
    if not is_number(v) or not 0.0 < float(v) < 1.0:  # type: ignore[arg-type]
        raise error(f"{name} must lie strictly between 0 and 1, got {quote(v)}")
    return float(v)  # type: ignore[arg-type]


def check_confidence(confidence: object) -> float:
    """A confidence level strictly between 0 and 1 (0.95, not 95)."""
    if not is_number(confidence) or not 0.0 < float(confidence) < 1.0:  # type: ignore[arg-type]
        raise InvalidValueError(f"confidence must lie strictly between 0 and 1 (e.g. 0.95), got {confidence!r}")
    return float(confidence)  # type: ignore[arg-type]


def package_versions(packages: Iterable[str]) -> dict[str, str | None]:
    """Installed versions of ``packages`` (None when absent), for the record of a run."""
    out: dict[str, str | None] = {}
    for name in packages:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


#: the longest value a message quotes; longer values are cut and their length said
QUOTE_CHARS = 40
#: the longest long text (a note, a reason, a description) the checks accept
TEXT_MAX_CHARS = 100_000
_SIGNS = {"any": "", "positive": " > 0", "nonnegative": " >= 0", "nonzero": " other than 0"}
_TEXT_CONTROLS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")


def quote(value: object, n: int = QUOTE_CHARS) -> str:
    """``repr(value)`` for a message, cut to about ``n`` characters with the full length said
    (``'aaaa...'... (10000 characters)``), so a huge value never makes a huge message."""
    if isinstance(value, str):
        text = repr(value[:n])[:n + 2]
        return text if len(value) <= n and len(text) <= n + 2 else f"{text}... ({len(value)} characters)"
    if isinstance(value, np.generic) and not isinstance(value, (np.str_, np.bytes_, np.void)):
        value = value.item()  # 'inf', not 'np.float64(inf)'
    try:
        text = repr(value)
    except Exception:  # noqa: BLE001 - an int too large to print, a broken __repr__
        return f"a {type(value).__name__}"
    return text if len(text) <= n else f"{text[:n]}... ({len(text)} characters)"


def _long(value: str) -> str:
    """A quote of a text that is too long, with its length."""
    return quote(value) if len(value) > QUOTE_CHARS else f"{quote(value)} ({len(value)} characters)"


def _bad_character(text: str, allowed: str) -> tuple[int, str] | None:
    """Position and name of the first control character (category Cc or Cf) or lone surrogate (Cs)
    of ``text`` that is not in ``allowed``; None when there is none."""
    if text.isprintable():  # fast path: no Cc, Cf, Cs (nor Zs other than the space) anywhere
        return None
    for i, ch in enumerate(text):
        cat = unicodedata.category(ch)
        if cat in ("Cc", "Cf", "Cs") and ch not in allowed:
            kind = "a lone surrogate" if cat == "Cs" else "a control character"
            return i, f"{kind} (U+{ord(ch):04X})"
    return None


#: the zero-width non-joiner and joiner: format characters that are part of words (Persian, Indic
#: scripts) and of emoji sequences, so a name may hold them
JOINERS = "\u200c\u200d"


def check_label(value: object, field: str, max_len: int = 200, *, error: type[QpoError] = InvalidValueError) -> str:
    """A name or label (a portfolio or client name, a ticker, a metric): text that is not empty once
    surrounding spaces are stripped, at most ``max_len`` characters, with no control character
    (Unicode category Cc or Cf; the ordinary space and the zero-width (non-)joiner are fine) and no lone surrogate. Returns it stripped."""
    valid = f"text of 1 to {max_len} characters without control characters"
    if not isinstance(value, str):
        raise error(f"{field} must be {valid}, got {quote(value)} (a {type(value).__name__})")
    if len(value) > max_len:
        raise error(f"{field} must be {valid}, got {_long(value)}")
    bad = _bad_character(value, " " + JOINERS)
    if bad is None:  # a line or paragraph separator (U+2028, U+2029) breaks a one-line name too
        at = next((i for i, ch in enumerate(value) if ch in "\u2028\u2029"), None)
        bad = None if at is None else (at, f"a line break (U+{ord(value[at]):04X})")
    if bad is not None:
        raise error(f"{field} must be {valid}, got {quote(value)} with {bad[1]} at position {bad[0]}")
    stripped = value.strip()
    if not stripped:
        raise error(f"{field} must be {valid}, got {quote(value)} (empty once spaces are stripped)")
    return stripped


def check_text(value: object, field: str, max_len: int = TEXT_MAX_CHARS, *,
               error: type[QpoError] = InvalidValueError) -> str:
    """Long text (a note, a reason, a description): at most ``max_len`` characters; tabs and line
    breaks are fine, other control characters (NUL, escape, ...) and lone surrogates are not.
    Returns it unchanged (it may be empty)."""
    valid = f"text of at most {max_len} characters without NUL, lone surrogates or control characters other than tab and line breaks"
    if not isinstance(value, str):
        raise error(f"{field} must be {valid}, got {quote(value)} (a {type(value).__name__})")
    if len(value) > max_len:
        raise error(f"{field} must be {valid}, got {_long(value)}")
    found = _TEXT_CONTROLS.search(value)
    if found is not None:
        ch = found.group()
        kind = "a lone surrogate" if "\ud800" <= ch <= "\udfff" else "a control character"
        raise error(f"{field} must be {valid}, got {quote(value)} with {kind} (U+{ord(ch):04X}) at position {found.start()}")
    return value


def check_amount(value: object, field: str, sign: str = "any", *, error: type[QpoError] = InvalidValueError) -> float:
    """An amount (shares, a price, a weight, cash): a finite real number, not a bool nor text, with
    ``sign`` one of ``any``, ``positive`` (> 0), ``nonnegative`` (>= 0) or ``nonzero``. Returns a float."""
    if sign not in _SIGNS:
        raise InvalidValueError(f"sign must be one of {', '.join(_SIGNS)}, got {quote(sign)}")
    valid = f"a finite number{_SIGNS[sign]}"
    x = float("nan")
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        try:
            x = float(value)
        except (OverflowError, ValueError, TypeError):  # an int beyond a float's range
            x = float("inf")
    ok = math.isfinite(x) and {"any": True, "positive": x > 0, "nonnegative": x >= 0, "nonzero": x != 0}[sign]
    if not ok:
        raise error(f"{field} must be {valid}, got {quote(value)}")
    return x


#: the fewest periods on which a column can be told to be a level (prices) rather than returns
LEVEL_MIN_PERIODS = 20


def price_like(values: np.ndarray) -> np.ndarray:
    """Per column of ``values`` (periods x columns): whether it moves like a price level rather than
    returns, in any units: at least :data:`LEVEL_MIN_PERIODS` finite values, every one positive, a
    median above 0.5 and a lag-1 autocorrelation above 0.9 (a level stays close to its last value;
    returns move around their mean). A money-market fund's steady returns (median near 0) and a
    high-growth asset's annual returns (no level) are returns."""
    x = np.asarray(values, dtype=float)
    if x.ndim == 1:
        x = x[:, None]
    out = np.zeros(x.shape[1], dtype=bool)
    for j in range(x.shape[1]):
        col = x[:, j]
        col = col[np.isfinite(col)]
        if col.size < LEVEL_MIN_PERIODS or not (col > 0).all() or not np.median(col) > 0.5:
            continue
        dev = col - col.mean()
        den = float(dev @ dev)
        out[j] = den > 0 and float(dev[1:] @ dev[:-1]) / den > 0.9
    return out


def check_symbol(value: object, *, error: type[QpoError] = InvalidValueError) -> str:
    """A ticker symbol: 1 to 32 characters once surrounding spaces are stripped, no space or control
    character inside (``BRK.B``, ``^GSPC`` and ``RDS-A`` are symbols). Returns it stripped."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool) and int(value) >= 0:
        value = str(value)  # a numeric code (7203 on the Tokyo exchange) is a symbol
    text = value.strip() if isinstance(value, str) else value
    if not isinstance(text, str) or not text or len(text) > 32 or any(c.isspace() or not c.isprintable() for c in text):
        raise error(f"{quote(value)} is not a ticker symbol (1 to 32 characters, no spaces)")
    return text


__all__ = ["QUOTE_CHARS", "REQUIRED", "TEXT_MAX_CHARS", "check_amount", "check_confidence", "check_dated", "check_label",
           "check_symbol", "check_text", "fraction", "is_number", "number", "package_versions", "positive", "price_like",
           "quote", "whole"]


def check_dated(frame: object, name: str, *, error: type[QpoError] | None = None) -> None:
    """A panel (or series) indexed by date: its dates sorted and each once, its columns (tickers)
    each once. The message names the first repeated date or ticker, or the first date out of order
    (two downloads concatenated, rows shuffled, a file newest first). Default error:
    :class:`~qpo.errors.DataError`."""
    import pandas as pd

    def when(value: object) -> str:
        t = pd.Timestamp(value)  # type: ignore[arg-type]
        return str(t.date()) if t == t.normalize() else str(t)

    err = error or DataError
    index = getattr(frame, "index", None)
    if isinstance(index, pd.DatetimeIndex) and len(index):  # time-zone aware too
        if index.hasnans:
            raise err(f"{name} have {int(index.isna().sum())} row(s) without a date (NaT); every row needs one")
        if index.has_duplicates:
            first = index[index.duplicated()][0]
            raise err(f"{name} hold the date {when(first)} more than once ({int(index.duplicated().sum())} repeated "
                      "date(s)): two downloads concatenated? keep one row per date")
        if not index.is_monotonic_increasing:
            values = index.asi8
            at = int(np.flatnonzero(values[1:] < values[:-1])[0])
            raise err(f"{name} are not in date order: {when(index[at + 1])} comes after {when(index[at])}; "
                      "sort them by date (frame.sort_index())")
    columns = getattr(frame, "columns", None)
    if isinstance(columns, pd.MultiIndex):
        raise err(f"{name} have columns in {columns.nlevels} levels (e.g. {quote(columns[0], 40)}), not one "
                  "ticker each: a download of several fields? select one, e.g. frame['Adj Close']")
    if columns is not None and columns.has_duplicates:
        dup = sorted({str(c) for c in columns[columns.duplicated()]})[:10]
        raise err(f"{name} hold the ticker(s) {dup} more than once; keep one column per ticker")
