"""What the client book's commands share: the actor, the store, the prices, JSON and tables.

Every book command prints, with ``--json``, exactly one JSON document on stdout (an error too:
``{"error": ..., "kind": ..., "exit": ...}``, with the message on stderr as well). Exit status of
the book commands (``user``, ``portfolio``, ``rebalance``, ``audit``):

- 0 done;
- 2 refused input: an unknown portfolio, user or proposal, a bad value or file (nothing written);
- 3 no store where one is looked for (reading commands never create one: ``qpo db upgrade``);
- 4 access refused: no actor named, an unknown actor, or a request the actor may not make.

Imports of pandas, SQLAlchemy and the store stay inside the functions, so ``qpo --help`` is instant.
"""
from __future__ import annotations

import datetime as dt
import json
import math
import os
import sys
from pathlib import Path

#: exit statuses of the book commands
EXIT_REFUSED, EXIT_NO_STORE, EXIT_ACCESS = 2, 3, 4
#: the price panel the book's commands value holdings with
PRICE_SOURCE = "sp500"
#: characters of a long text cell shown in a table (the JSON output has all of it)
CELL_MAX = 48


def add_actor_option(parser, *, top: bool = False) -> None:
    """``--as EMAIL``: the actor of the request (default ``QPO_USER``). On the top-level parser it
    has a default; on a subcommand it is set only when given, so ``qpo --as X portfolio list`` and
    ``qpo portfolio list --as X`` both work."""
    import argparse

    parser.add_argument("--as", dest="actor", metavar="EMAIL", default=None if top else argparse.SUPPRESS,
                        help="who makes the request (a user's e-mail; default: $QPO_USER)")


def add_json_option(parser) -> None:
    parser.add_argument("--json", action="store_true",
                        help="print one JSON document on stdout (errors too: {\"error\": ...})")


def actor(args) -> str | None:
    """The actor's e-mail: ``--as``, else ``QPO_USER``, else None (the store then refuses, saying how
    to name one)."""
    from qpo.store import USER_ENV

    return getattr(args, "actor", None) or os.environ.get(USER_ENV) or None


def writer():
    """The store for a command that writes (created and migrated when there is none)."""
    from qpo.store import connect

    return connect()


def updater():
    """The store for a command that changes what must already be in it (a person, a portfolio, a
    proposal, an alert): a missing store is refused (exit 3, saying how to create one), never
    created only for the command to find nothing to change."""
    from qpo.store import connect

    return connect(create=False)


def reader():
    """The store for a command that only reads: a missing store is refused, never created."""
    from qpo.store import connect

    return connect(create=False)


_PRICES: dict = {}


def book_prices(engine):
    """The price panel the book's commands value, propose, check and accept with, and where it came
    from (``"store"`` or ``"bundled"``): :func:`qpo.store.market_data.book_prices`, the store's market
    data when it holds any bar, else the bundled panel; what the dashboard and the nightly run read.
    Read afresh each call (a command may follow an ingest in the same process)."""
    from qpo.store.market_data import book_prices as read

    return read(engine)


def price_origin(origin: str) -> str:
    """Where :func:`book_prices` found the prices, in words."""
    return "the store's market data" if origin == "store" else f"the bundled {PRICE_SOURCE} price panel"


def prices():
    """The bundled price panel (read once per process): the tickers a file may name besides the
    store's. Valuing, proposing, checking and accepting use :func:`book_prices`."""
    if PRICE_SOURCE not in _PRICES:
        from qpo.data import load_prices

        _PRICES[PRICE_SOURCE] = load_prices(PRICE_SOURCE)
    return _PRICES[PRICE_SOURCE]


# -- output ---------------------------------------------------------------------------------------
def jsonable(value):
    """``value`` as plain JSON: dates as ISO text, numpy numbers as Python numbers, NaN and
    infinities as null, DataFrames as lists of records, Series as objects."""
    import numpy as np
    import pandas as pd

    if isinstance(value, pd.DataFrame):
        return [jsonable(r) for r in value.astype(object).where(value.notna(), None).to_dict("records")]
    if isinstance(value, pd.Series):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [jsonable(v) for v in value]
    if value is None or value is pd.NaT:
        return None
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return float(value) if math.isfinite(float(value)) else None
    if isinstance(value, pd.Timestamp):
        return value.date().isoformat() if value == value.normalize() and value.tzinfo is None else value.isoformat()
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    return value if isinstance(value, str) else str(value)


#: keys whose numbers are amounts of money in the book's JSON: rounded to cents
MONEY_KEYS = frozenset({"cash", "cash_before", "cash_after", "value", "value_before", "value_after", "total_value",
                        "invested_value", "notional", "cost", "total_cost", "amount", "fees", "commission"})
#: decimals of the book's other numbers (weights, shares, prices, risk): float noise goes, 1e-8 stays
DECIMALS = 8


def rounded(value, key: str | None = None):
    """Plain JSON data (:func:`jsonable`'s) with float noise gone: numbers under a key of
    :data:`MONEY_KEYS` rounded to cents, the others to :data:`DECIMALS` decimals (``377.8309999999401``
    is ``377.83``; ``0.30000000000000004`` is ``0.3``)."""
    if isinstance(value, dict):
        return {k: rounded(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [rounded(v, key) for v in value]
    if isinstance(value, float):
        out = round(value, 2 if key in MONEY_KEYS else DECIMALS)
        return 0.0 if out == 0 else out  # no -0.0
    return value


def emit_json(document, *, rounded_numbers: bool = False) -> None:
    """Print ``document`` as one line of JSON; ``rounded_numbers``: through :func:`rounded` (the
    book's commands: money to cents, other numbers to 1e-8)."""
    data = jsonable(document)
    print(json.dumps(rounded(data) if rounded_numbers else data, allow_nan=False), flush=True)


def money(x) -> str:
    """An amount with thousands separators and cents; '' for a missing one."""
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return ""
    x = float(x)
    return f"{0.0 if abs(x) < 0.005 else x:,.2f}"  # no "-0.00"


def shares(x) -> str:
    """A share count: whole numbers with separators, fractions with up to six decimals."""
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return ""
    x = float(x)
    return f"{x:,.0f}" if x.is_integer() else f"{x:,.6f}".rstrip("0")


def pct(x) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return ""
    v = 100 * float(x)
    return f"{0.0 if abs(v) < 0.005 else v:.2f}%"  # no "-0.00%"


def cell(x, width: int = CELL_MAX) -> str:
    """A text cell on one line and at most ``width`` characters (the JSON output has it whole)."""
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return ""
    if isinstance(x, dict | list):
        x = json.dumps(jsonable(x), ensure_ascii=False)
    text = str(x).replace("\r\n", " ").replace("\n", " ").replace("\r", " ").replace("\t", " ")
    return text if len(text) <= width else text[:width - 3] + "..."


def table(frame, formatters: dict | None = None, *, empty: str = "(none)", index: bool = False) -> str:
    """An aligned table (pandas ``to_string``) of the cells formatted by ``formatters`` (column ->
    function of the value; missing values are blank); other text is cut to one line of
    :data:`CELL_MAX` characters."""
    import pandas as pd

    if frame is None or len(frame) == 0:
        return empty
    formatters = formatters or {}
    shown = pd.DataFrame(index=frame.index if index else range(len(frame)))
    for col in frame.columns:
        fmt = formatters.get(col)
        values = []
        for v in frame[col].tolist():
            missing = v is None or v is pd.NaT or (isinstance(v, float) and math.isnan(v))
            values.append("" if missing else (fmt(v) if fmt is not None else cell(v)))
        shown[col] = values
    return shown.to_string(index=index)


def say(text: str = "") -> None:
    print(text, flush=True)


def fail_output(args, exc: Exception, code: int) -> int:
    """Report an error: on stderr always; with ``--json`` also as one JSON document on stdout."""
    message = str(exc)
    if getattr(args, "json", False):
        emit_json({"error": message, "kind": type(exc).__name__, "exit": code})
    print(f"qpo: error: {message}", file=sys.stderr, flush=True)
    return code


def exit_status(exc: Exception) -> int:
    from qpo.errors import AccessDenied, MissingStoreError

    if isinstance(exc, AccessDenied):
        return EXIT_ACCESS
    if isinstance(exc, MissingStoreError):
        return EXIT_NO_STORE
    return EXIT_REFUSED


def positive_whole(text: str) -> int:
    """An argparse ``type``: a whole number of at least 1 (``--workers``, ``--chunk-size``)."""
    import argparse

    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of at least 1, got {text!r}")
    return value


def port_number(text: str) -> int:
    """An argparse ``type``: a TCP port, 1-65535 (``qpo dashboard --port``)."""
    import argparse

    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be a port number from 1 to 65535, got {text!r}")
    return value


def listen_address(text: str) -> str:
    """An argparse ``type``: an IP address of this machine's to listen on, or a host name that
    resolves to one (``qpo dashboard --ip``)."""
    import argparse
    import ipaddress
    import socket

    try:
        ipaddress.ip_address(text)
        return text
    except ValueError:
        pass
    try:
        if text and len(text) <= 253 and socket.getaddrinfo(text, None, type=socket.SOCK_STREAM):
            return text
    except (OSError, UnicodeError):
        pass
    raise argparse.ArgumentTypeError(f"must be an IP address (127.0.0.1, 0.0.0.0, ::1) or a host name that resolves "
                                     f"on this machine, got {text!r}")


def a_path_refused(exc: BaseException) -> bool:
    """An error the system gave about a path: a file name too long, not a folder, no permission, no
    such file, a read-only or full disk, a name that is not UTF-8."""
    import errno

    if isinstance(exc, UnicodeEncodeError):
        return True
    codes = {errno.ENAMETOOLONG, errno.ENOTDIR, errno.EISDIR, errno.EACCES, errno.EPERM, errno.ENOENT, errno.EEXIST,
             errno.EROFS, errno.ENOSPC, errno.ELOOP}
    return isinstance(exc, OSError) and (exc.filename is not None or exc.filename2 is not None) and exc.errno in codes


def system_refused(exc: BaseException) -> str:
    """One bounded line for an error the system gave about a file (the path cut, never a traceback)."""
    from qpo._checks import quote

    if isinstance(exc, UnicodeError):
        return ("a file name or text cannot be written as UTF-8 (it holds bytes that are not text, e.g. a name made "
                "with \\xff); give names in UTF-8")
    assert isinstance(exc, OSError)
    name = exc.filename if exc.filename is not None else exc.filename2
    what = exc.strerror or type(exc).__name__
    where = f" {quote(str(name), 60)}" if name is not None else ""
    return f"the system refused the file{where}: {what}; give another path"


def parse_value(text: str):
    """A ``-p``/``--set`` value as YAML reads it (``0.001``, ``126``, ``null``, ``true``); dates stay
    ISO text, and so does text YAML cannot make into a date (``2021-02-30``: checked later)."""
    import yaml

    try:
        value = yaml.safe_load(text)
    except (yaml.YAMLError, ValueError, OverflowError):
        return text
    return text if isinstance(value, (dt.date, dt.datetime)) else value
