"""Small helpers of :mod:`qpo.store.operations`: dates, numbers, JSON and failures of the nightly writes."""
from __future__ import annotations

import datetime as dt
import math
import os
import socket
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from qpo._checks import finite_or_none, quote
from qpo.errors import StoreError
from qpo.store import _inputs as check

#: the longest error text kept on a failed run
ERROR_MAX = 4000


# -- small helpers --------------------------------------------------------------------------------
def day(value: object, field_name: str = "as_of") -> dt.date:
    return check.day(value, field_name)


def num(value: object) -> float | None:
    """A float for the database: None for a missing or non-finite value."""
    try:
        return finite_or_none(value)
    except (TypeError, ValueError):
        raise check.fail(f"expected a number, got {quote(value)}") from None


def names(value: object) -> list[str] | None:
    """A JSON list of tickers (None, a list, a tuple, a set, a numpy array or a comma text)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    if isinstance(value, np.ndarray | list | tuple | set | pd.Index | pd.Series):
        return [str(v) for v in value]
    raise check.fail(f"unpriced/stale must be a list of tickers, got {quote(value)}")


def jsonable(value: Any) -> Any:
    """``value`` as plain JSON for a JSON column (numpy numbers, NaN as null, dates as ISO)."""
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | np.ndarray | pd.Index):
        return [jsonable(v) for v in value]
    if isinstance(value, pd.Series):
        return {str(k): jsonable(v) for k, v in value.items()}
    if value is None or value is pd.NaT or value is pd.NA:
        return None
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return float(value) if math.isfinite(float(value)) else None
    if isinstance(value, dt.datetime | dt.date | pd.Timestamp):
        return value.isoformat()
    if isinstance(value, str):
        return value
    return str(value)


def json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray | pd.Index | set | tuple):
        return list(value)
    if isinstance(value, pd.Series):
        return {str(k): v for k, v in value.items()}
    if isinstance(value, dt.datetime | dt.date | pd.Timestamp):
        return value.isoformat()
    if value is pd.NA or value is pd.NaT:
        return None
    return str(value)


def json_fast(value: Any) -> Any:
    """:func:`jsonable` through the C JSON encoder and decoder (NaN and infinities become null);
    the slow path for what the encoder refuses (keys that are not text or numbers)."""
    import json

    try:
        return json.loads(json.dumps(value, default=json_default), parse_constant=lambda _c: None)
    except (TypeError, ValueError):
        return jsonable(value)


def store_failure(what: str, as_of: dt.date, exc: Exception) -> StoreError:
    """A database error during a date's write, said plainly (the transaction was rolled back)."""
    orig = getattr(exc, "orig", None) or exc
    detail = str(orig).strip().splitlines()[0] if str(orig).strip() else type(orig).__name__
    return check.fail(f"{what} of {as_of} not written: the transaction was rolled back, so {as_of} keeps its "
                      f"previous results and nothing was half-written; the database refused the write or went "
                      f"away: {type(orig).__name__}: {detail[:120]}")


def portfolio_ids(frame: pd.DataFrame) -> list[int]:
    """The portfolio ids of a frame: its ``portfolio_id`` column, else its index."""
    values = frame["portfolio_id"] if "portfolio_id" in frame.columns else frame.index
    ids = []
    for v in values:
        try:
            iv = int(v)
        except (TypeError, ValueError):
            raise check.fail(f"portfolio ids must be whole numbers (the store's portfolio ids), got {quote(v)}") \
                from None
        if iv != v:
            raise check.fail(f"portfolio ids must be whole numbers, got {quote(v)}")
        ids.append(iv)
    if len(set(ids)) != len(ids):
        dup = sorted({i for i in ids if ids.count(i) > 1})[:5]
        raise check.fail(f"each portfolio once per date: portfolio id(s) {dup} appear more than once")
    return ids


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


#: this machine's name, recorded with a RUNNING run (with the process id)
HOST = socket.gethostname()


def pid_alive(pid: object, host: object) -> bool | None:
    """Whether process ``pid`` of this host is alive; None when it cannot be told (no pid
    recorded, or a process of another host)."""
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0 or host != HOST:
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    except OSError:
        return None
    return True


def utc(value: dt.datetime) -> dt.datetime:
    """A stored timestamp as an aware UTC datetime (SQLite gives it back naive, in UTC)."""
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


# -- runs -----------------------------------------------------------------------------------------
