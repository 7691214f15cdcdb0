"""The store's input rules: every value written to the store passes one of these checks, through the
repository functions and through the models' ``@validates`` alike, so no ORM path can bypass them.

Each check returns the value as stored (labels stripped of surrounding spaces, numbers as floats,
dates as ``datetime.date``) or raises :class:`~qpo.errors.StoreError` with a message under 300
characters that names the field and says what is valid. Widths follow the schema's columns, so
PostgreSQL never has to refuse a value SQLite would have taken.
"""
from __future__ import annotations

import datetime as dt
import json
import math
import numbers
import re
from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd

from qpo._checks import JOINERS, check_amount, check_label, check_text, quote
from qpo.errors import StoreError

#: names and labels (portfolio, client and advisor names)
NAME_MAX = 200
#: the ``String(n)`` widths of the schema's columns
TICKER_MAX, LABEL64, LABEL32, EMAIL_MAX = 16, 64, 32, 254
ROLES = ("advisor", "researcher", "admin")
#: the kinds of a ledger entry (see :class:`qpo.store.models.Transaction`)
TRANSACTION_KINDS = ("buy", "sell", "deposit", "withdrawal", "dividend", "fee", "transfer_in", "transfer_out",
                     "split")
#: the strategy JSON schema versions this store reads
STRATEGY_SCHEMA_VERSIONS = (1,)
MESSAGE_MAX = 299
_EMAIL = re.compile(r"[^@\s]+@[^@\s.]+(\.[^@\s.]+)+")
_CURRENCY = re.compile(r"[A-Z]{3}")
_JSON_MAX_DEPTH = 20
_JSON_MAX_CHARS = 1_000_000
_INT_LIMIT = 2 ** 63


def fail(message: str) -> StoreError:
    """A StoreError whose message is cut to :data:`MESSAGE_MAX` characters."""
    if len(message) > MESSAGE_MAX:
        message = message[:MESSAGE_MAX - 6] + " [...]"
    return StoreError(message)


def label(value: object, field: str, max_len: int = NAME_MAX) -> str:
    try:
        return check_label(value, field, max_len, error=StoreError)
    except StoreError as exc:
        raise fail(str(exc)) from None


def optional_label(value: object, field: str, max_len: int = NAME_MAX) -> str | None:
    return None if value is None else label(value, field, max_len)


def text(value: object, field: str) -> str:
    try:
        return check_text(value, field, error=StoreError)
    except StoreError as exc:
        raise fail(str(exc)) from None


def optional_text(value: object, field: str) -> str | None:
    return None if value is None else text(value, field)


def amount(value: object, field: str, sign: str = "any") -> float:
    try:
        return check_amount(value, field, sign, error=StoreError)
    except StoreError as exc:
        raise fail(str(exc)) from None


#: the largest quantity, price or amount of money a ledger keeps: beyond it, sums of cents are no
#: longer exact in a float, and a deposit of 1e308 would overflow the cash to infinity
MAX_MONEY = 1e12


def money(value: object, field: str, sign: str = "any") -> float:
    """A ledger's shares, price or money (:func:`amount`), at most :data:`MAX_MONEY` in size."""
    x = amount(value, field, sign)
    if abs(x) > MAX_MONEY:
        raise fail(f"{field} {x:.6g} is beyond {MAX_MONEY:,.0f}, the largest a ledger entry may carry")
    return x


def ticker(value: object, field: str = "ticker") -> str:
    """A symbol: 1 to 16 characters, no spaces or control characters (``KO``, ``BRK.B``, ``BTC-USD``)."""
    if isinstance(value, str) and (not value or len(value) > TICKER_MAX or value != "".join(value.split())
                                   or any(ch in JOINERS for ch in value)):
        raise fail(f"{field} {quote(value)} is not a symbol of 1 to {TICKER_MAX} characters without spaces")
    try:
        return check_label(value, field, TICKER_MAX, error=StoreError)
    except StoreError:
        raise fail(f"{field} {quote(value)} is not a symbol of 1 to {TICKER_MAX} characters without spaces "
                   "or control characters") from None


def email(value: object, field: str = "advisor email") -> str:
    address = label(value, field, EMAIL_MAX)
    if any(ch in JOINERS for ch in address):
        raise fail(f"{field} {quote(address)} holds a zero-width joiner: an e-mail address is plain characters")
    if not _EMAIL.fullmatch(address):
        raise fail(f"{field} must look like an e-mail address (name@example.com), got {quote(value)}")
    return address


def role(value: object) -> str:
    if not isinstance(value, str) or value not in ROLES:
        raise fail(f"role must be one of {', '.join(ROLES)}, got {quote(value)}")
    return value


def transaction_kind(value: object) -> str:
    if not isinstance(value, str) or value not in TRANSACTION_KINDS:
        raise fail(f"transaction kind must be one of {', '.join(TRANSACTION_KINDS)}, got {quote(value)}")
    return value


#: the check every strategy passes before it is stored (what it means: objective, estimators,
#: constraints, limits, and that its problem builds). The store runs no optimizer, so the book
#: registers it (:func:`register_strategy_check`; :mod:`qpo.book.strategy` does on import).
_STRATEGY_CHECK: list = []
#: strategies already checked, by their JSON text (a book stores the same few strategies many times)
_CHECKED: dict[str, None] = {}
_CHECKED_MAX = 1_000


def register_strategy_check(check) -> None:
    """Set the check a strategy passes before it is stored: a function of the strategy's JSON object
    that raises a :class:`~qpo.errors.QpoError` naming the field and what is valid when the strategy
    is refused. :mod:`qpo.book.strategy` registers :meth:`qpo.book.Strategy.from_json` on import."""
    _STRATEGY_CHECK[:] = [check]
    _CHECKED.clear()


def strategy_json(value: object) -> dict | None:
    """A portfolio's strategy as stored: None (the default strategy) or a JSON object with a
    supported ``schema_version`` that passes the registered strategy check
    (:func:`register_strategy_check`: :class:`qpo.book.Strategy`), so that a stored strategy always
    builds. Refused, naming the field, when it does not; refused too when no check is registered
    (``import qpo.book`` registers it) rather than stored unchecked."""
    if value is None:
        return None
    if hasattr(value, "to_json") and callable(value.to_json):
        value = value.to_json()
    if not isinstance(value, Mapping):
        raise fail(f"strategy must be a JSON object (qpo.book.Strategy(...).to_json()), got {quote(value)}")
    version = value.get("schema_version")
    if isinstance(version, bool) or version not in STRATEGY_SCHEMA_VERSIONS:
        raise fail(f"strategy schema_version must be one of {list(STRATEGY_SCHEMA_VERSIONS)}, got {quote(version)}")
    stored = parameters(value, "strategy")
    key = json.dumps(stored, sort_keys=True)
    if key not in _CHECKED:
        if not _STRATEGY_CHECK:
            raise fail("a strategy is checked by qpo.book.Strategy before it is stored, and qpo.book is not loaded: "
                       "`import qpo.book` first (or give a qpo.book.Strategy)")
        from qpo.errors import QpoError

        try:
            _STRATEGY_CHECK[0](stored)
        except QpoError as exc:
            text = str(exc)
            raise fail(text if text.startswith("strategy") else f"strategy: {text}") from None
        if len(_CHECKED) >= _CHECKED_MAX:
            _CHECKED.clear()
        _CHECKED[key] = None
    return stored


def currency(value: object) -> str:
    if not isinstance(value, str) or not _CURRENCY.fullmatch(value):
        raise fail(f"base currency must be a three-letter ISO code in capitals (USD, EUR), got {quote(value)}")
    return value


_ISO_DAY = re.compile(r"\d{4}-\d{2}-\d{2}([ T]\d{2}:\d{2}(:\d{2}(\.\d+)?)?([+-]\d{2}:?\d{2}|Z)?)?")


def day(value: object, field: str = "as_of") -> dt.date:
    """A date: a ``datetime.date`` (or datetime, Timestamp, numpy datetime64) or an ISO text (2022-12-28)."""
    valid = f"{field} must be a date (YYYY-MM-DD, a datetime.date or a Timestamp)"
    if isinstance(value, dt.datetime):
        if pd.isna(value):
            raise fail(f"{valid}, got {quote(value)}")
        return value.date()
    if isinstance(value, dt.date):
        return value
    if not isinstance(value, str | np.datetime64):
        raise fail(f"{valid}, got {quote(value)} (a {type(value).__name__})")
    if isinstance(value, str):
        try:
            label(value, field, 40)  # no NUL, surrogates or pages of text for pandas to parse
        except StoreError:
            raise fail(f"{valid}, got {quote(value)}") from None
        if not _ISO_DAY.fullmatch(value.strip()):  # 01/02/2022 is 2 January or 1 February; 'today' moves
            raise fail(f"{field} must be written YYYY-MM-DD (e.g. 2022-12-28), got {quote(value)}")
    try:
        stamp = pd.Timestamp(value)
    except (ValueError, TypeError, OverflowError):
        raise fail(f"{valid}, got {quote(value)}") from None
    if pd.isna(stamp):
        raise fail(f"{valid}, got {quote(value)}")
    return stamp.date()


#: the earliest date a ledger entry may carry
FIRST_TRADE_DATE = dt.date(1900, 1, 1)


def trade_day(value: object, field: str = "trade date") -> dt.date:
    """A ledger entry's date (:func:`day`): from 1900 to tomorrow (a time zone ahead), never a
    future day: a typo such as 2099 would count cash and shares today that do not exist yet."""
    when = day(value, field)
    latest = dt.date.today() + dt.timedelta(days=1)
    if when < FIRST_TRADE_DATE or when > latest:
        raise fail(f"{field} {when.isoformat()} is outside {FIRST_TRADE_DATE.isoformat()} to today "
                   f"({latest - dt.timedelta(days=1)}): an entry records what happened, not what will")
    return when


def statistic(value: object, field: str) -> float | None:
    """A derived statistic of a run (expected return, volatility, Sharpe ratio): a number, stored as
    NULL (undefined) when it is None or not finite (the Sharpe ratio of a zero volatility)."""
    if value is None:
        return None
    if not isinstance(value, numbers.Real) or isinstance(value, bool):
        raise fail(f"{field} must be a number (or None when undefined), got {quote(value)} (a {type(value).__name__})")
    try:
        x = float(value)
    except (OverflowError, ValueError):
        return None
    return x if math.isfinite(x) else None


def weights(value: object, field: str = "weights") -> dict[str, float]:
    """``{ticker: weight}``, finite weights of any sign (short positions are negative)."""
    items = mapping_items(value, field)
    out: dict[str, float] = {}
    for key, w in items:
        t = ticker(key, f"{field} ticker")
        if t in out:
            raise fail(f"{field}: ticker {quote(t)} given twice")
        out[t] = amount(w, f"{field}[{quote(t)}]")
    return out


def mapping_items(value: object, field: str) -> list[tuple[object, object]]:
    if isinstance(value, pd.Series):
        return list(value.items())
    if isinstance(value, Mapping):
        return list(value.items())
    raise fail(f"{field} must be a mapping of names to numbers (a dict or a pandas Series), got {quote(value)}")


def parameters(value: object, field: str = "parameters") -> dict:
    """Parameters of a run as JSON: text keys; values None, bool, finite numbers, text, lists and
    dicts of these (tuples are stored as lists; numpy numbers as Python numbers)."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise fail(f"{field} must be a dict of names to JSON values, got {quote(value)} (a {type(value).__name__})")
    out = _json(value, field, 0)
    if len(json.dumps(out)) > _JSON_MAX_CHARS:
        raise fail(f"{field} must take at most {_JSON_MAX_CHARS} characters as JSON")
    return out


def _json(value, field: str, depth: int):
    if depth > _JSON_MAX_DEPTH:
        raise fail(f"{field} nests deeper than {_JSON_MAX_DEPTH} levels")
    if value is None or isinstance(value, bool | np.bool_):
        return None if value is None else bool(value)
    if isinstance(value, numbers.Integral):
        if not -_INT_LIMIT <= int(value) < _INT_LIMIT:
            raise fail(f"{field} must hold whole numbers within +-2**63, got {quote(value)}")
        return int(value)
    if isinstance(value, numbers.Real):
        return amount(value, field)
    if isinstance(value, str):
        return text(value, field)
    if isinstance(value, Mapping):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise fail(f"{field} keys must be text, got {quote(k)} (a {type(k).__name__})")
            label(k, f"{field} key")
            out[k] = _json(v, f"{field}[{quote(k, 20)}]", depth + 1)
        return out
    if isinstance(value, list | tuple):
        return [_json(v, f"{field}[{i}]", depth + 1) for i, v in enumerate(value)]
    raise fail(f"{field} must be None, a bool, a finite number, text, a list or a dict, got {quote(value)} "
               f"(a {type(value).__name__})")


def report(subject: str, problems: list[str], shown: int = 3) -> StoreError:
    """One StoreError for several problems: the first ``shown`` of them and how many more."""
    more = f"; and {len(problems) - shown} more" if len(problems) > shown else ""
    return fail(f"{subject} not written: " + "; ".join(problems[:shown]) + more)


def names_list(names: Iterable[str], shown: int = 5) -> str:
    """Names for a message: the first ``shown`` (each cut to 24 characters) and how many in all."""
    names = [str(n) for n in names]
    cut = [r if len(r) <= 24 else r[:21] + "..." for r in (repr(n)[1:-1] for n in names[:shown])]
    return (", ".join(cut) + (f", ... ({len(names)} in all)" if len(names) > shown else "")) or "(none)"
