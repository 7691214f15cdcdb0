"""Alpha Vantage's daily adjusted bars (``TIME_SERIES_DAILY_ADJUSTED``) over HTTP, with the
standard library only.

- The API key is read from ``ALPHAVANTAGE_API_KEY`` (or given); it never appears in an error, a log
  line or a repr: every text that could hold the request URL is masked.
- The base URL is ``https://www.alphavantage.co/query``, or ``QPO_ALPHAVANTAGE_URL`` (a proxy, a
  test server).
- Rate limit: calls are spaced at least ``60 / calls_per_minute`` seconds apart (default 5 a
  minute, Alpha Vantage's free tier; ``QPO_ALPHAVANTAGE_CALLS_PER_MINUTE``), across processes: the
  start of the last call with a key is kept in ``alphavantage-calls.json`` in the workbench's home
  (under a file lock; the key's SHA-256, never the key), so two ``qpo data fetch`` started a few
  seconds apart, or a fetch right after another, keep the key's limit together.
- A timeout, a dropped or refused connection, an HTTP 429 or 5xx is retried ``retries`` times with
  exponential backoff (``backoff``, ``2 * backoff``, ...); then :class:`AlphaVantageUnavailable`.
- Alpha Vantage answers its own errors with HTTP 200 and a JSON object: ``"Note"`` (the call
  frequency was exceeded) becomes :class:`AlphaVantageRateLimited`, ``"Information"`` (a premium
  endpoint, the daily quota) :class:`AlphaVantageInformation`, ``"Error Message"`` (an unknown
  symbol, a bad call) :class:`AlphaVantageRequestError`; each message quotes Alpha Vantage's text.

Which output size to ask for is :func:`output_size`'s choice: ``compact`` (the last 100 trading
days) when fewer than 100 trading days are missing since the last bar held, ``full`` otherwise.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import http.client
import json
import os
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from qpo import config
from qpo._checks import check_symbol
from qpo.data.loaders import OHLCV_COLUMNS
from qpo.errors import InvalidValueError, QpoError, quoted

API_KEY_ENV = "ALPHAVANTAGE_API_KEY"
URL_ENV = "QPO_ALPHAVANTAGE_URL"
RATE_ENV = "QPO_ALPHAVANTAGE_CALLS_PER_MINUTE"
#: the file, in the workbench's home, that keeps the last call's start per key (its SHA-256)
CALLS_FILE = "alphavantage-calls.json"
DEFAULT_URL = "https://www.alphavantage.co/query"
DEFAULT_CALLS_PER_MINUTE = 5.0
FUNCTION = "TIME_SERIES_DAILY_ADJUSTED"
#: trading days a compact answer holds
COMPACT_DAYS = 100
_FIELDS = {"1. open": "open", "2. high": "high", "3. low": "low", "4. close": "close",
           "5. adjusted close": "adjusted_close", "6. volume": "volume", "7. dividend amount": "dividend_amount",
           "8. split coefficient": "split_coefficient"}
_SERIES_KEY = "Time Series (Daily)"


class AlphaVantageError(QpoError):
    """A fetch from Alpha Vantage that did not give bars; the message says why (never the key)."""


class MissingApiKey(AlphaVantageError):
    """No API key given and none in ``ALPHAVANTAGE_API_KEY``."""


class AlphaVantageRateLimited(AlphaVantageError):
    """Alpha Vantage's ``"Note"`` answer: the call frequency of the key was exceeded."""


class AlphaVantageInformation(AlphaVantageError):
    """Alpha Vantage's ``"Information"`` answer: a premium endpoint, the daily quota, a notice."""


class AlphaVantageRequestError(AlphaVantageError):
    """Alpha Vantage's ``"Error Message"`` answer (an unknown symbol, a malformed call), an HTTP
    4xx, or an answer that is not the daily series."""


class AlphaVantageUnavailable(AlphaVantageError):
    """The server could not be reached or kept failing (timeouts, dropped connections, 5xx) after
    every retry."""


def output_size(last: dt.date | None, today: dt.date | None = None) -> str:
    """``"compact"`` when fewer than :data:`COMPACT_DAYS` trading days (weekdays) came after
    ``last``, the last bar held, up to ``today``; ``"full"`` when nothing is held or more are
    missing (a compact answer would leave a gap)."""
    if last is None:
        return "full"
    today = today or dt.date.today()
    missing = int(np.busday_count(np.datetime64(last, "D") + 1, np.datetime64(today, "D") + 1)) if today > last else 0
    return "compact" if missing < COMPACT_DAYS else "full"


def _env_float(name: str, default: float) -> float:
    text = os.environ.get(name)
    if text is None or not text.strip():
        return default
    try:
        return float(text)
    except ValueError as exc:
        raise InvalidValueError(f"{name} must be a number, got {quoted(text)}") from exc


class AlphaVantageClient:
    """A client of ``TIME_SERIES_DAILY_ADJUSTED``.

    Parameters
    ----------
    api_key
        The key; default ``ALPHAVANTAGE_API_KEY`` (:class:`MissingApiKey` when neither is set).
    base_url
        Default ``QPO_ALPHAVANTAGE_URL`` or Alpha Vantage's own.
    calls_per_minute
        The most calls started in any minute (default ``QPO_ALPHAVANTAGE_CALLS_PER_MINUTE`` or 5).
    retries, backoff, timeout
        Retries after a timeout, a dropped connection, a 429 or a 5xx; the first wait in seconds
        (doubled each time); the timeout of one request in seconds.
    log
        Called with one line per request and retry (the key masked).
    calls_file
        Where the last call's start is shared with other processes using the same key (default
        ``alphavantage-calls.json`` in the workbench's home; ``False``: this client's own calls only).
    """

    def __init__(self, api_key: str | None = None, *, base_url: str | None = None,
                 calls_per_minute: float | None = None, retries: int = 3, backoff: float = 2.0,
                 timeout: float = 30.0, log: Callable[[str], None] | None = None,
                 sleep: Callable[[float], None] = time.sleep, calls_file: str | os.PathLike | bool | None = None):
        key = api_key if api_key is not None else os.environ.get(API_KEY_ENV, "")
        if not key or not key.strip():
            raise MissingApiKey(f"no Alpha Vantage API key: set {API_KEY_ENV} (a free key: "
                                "https://www.alphavantage.co/support/#api-key)")
        self._key = key.strip()
        self.base_url = base_url or os.environ.get(URL_ENV) or DEFAULT_URL
        if not self.base_url.startswith(("http://", "https://")):
            raise InvalidValueError(f"the Alpha Vantage URL must start with http:// or https://, got "
                                    f"{self.mask(self.base_url)!r}")
        rate = calls_per_minute if calls_per_minute is not None else _env_float(RATE_ENV, DEFAULT_CALLS_PER_MINUTE)
        if not rate > 0:
            raise InvalidValueError(f"calls_per_minute ({RATE_ENV}) must be a number > 0, got {quoted(rate)}")
        if int(retries) < 0 or not backoff >= 0 or not timeout > 0:
            raise InvalidValueError(f"retries must be >= 0, backoff >= 0 and timeout > 0 seconds; got retries={retries}, "
                                    f"backoff={backoff}, timeout={timeout}")
        self.calls_per_minute, self.retries, self.backoff, self.timeout = float(rate), int(retries), backoff, timeout
        self._log, self._sleep = log or (lambda m: None), sleep
        self._lock = threading.Lock()
        self._last_call: float | None = None
        self.calls = 0
        self._calls_file: Path | None = None
        if calls_file is None or calls_file is True:
            self._calls_file = config.home() / CALLS_FILE
        elif calls_file is not False:
            self._calls_file = Path(calls_file)
        self._key_id = hashlib.sha256(self._key.encode()).hexdigest()[:16]

    def __repr__(self) -> str:
        return f"AlphaVantageClient(base_url={self.base_url!r}, calls_per_minute={self.calls_per_minute}, key=***)"

    def mask(self, text: str) -> str:
        """``text`` with the API key (raw or URL-encoded) replaced by ``***``."""
        text = str(text)
        for form in {self._key, urllib.parse.quote(self._key, safe=""), urllib.parse.quote_plus(self._key)}:
            if form:
                text = text.replace(form, "***")
        return text

    # -- one request ------------------------------------------------------------------------------
    def _wait_turn(self) -> None:
        """Space calls at least 60 / calls_per_minute seconds apart (start to start), this client's
        and, through the calls file, every other process's with the same key."""
        with self._lock:
            gap = 60.0 / self.calls_per_minute
            if self._calls_file is None or not self._wait_turn_shared(gap):
                now = time.monotonic()
                if self._last_call is not None and now - self._last_call < gap:
                    self._sleep(gap - (now - self._last_call))
            self._last_call = time.monotonic()
            self.calls += 1

    def _wait_turn_shared(self, gap: float) -> bool:
        """Wait for the key's turn through the calls file; False when it cannot be used (then only
        this client's own calls are paced, from here on)."""
        from filelock import FileLock

        path = self._calls_file
        assert path is not None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            lock = FileLock(str(path) + ".lock")
            lock.acquire()
        except OSError as exc:  # a read-only home: pace this client's own calls, and say so
            self._log(f"cannot share the call pacing through {path} ({type(exc).__name__}); pacing this "
                      "process's calls only")
            self._calls_file = None
            return False
        try:  # held while waiting: the other processes queue behind this call
            try:
                starts = json.loads(path.read_text())
                starts = starts if isinstance(starts, dict) else {}
            except (OSError, ValueError):
                starts = {}  # no file yet, or a torn one: no call to wait for
            last = starts.get(self._key_id)
            now = time.time()
            if isinstance(last, (int, float)) and 0 <= now - last < gap:
                self._sleep(gap - (now - last))
            starts[self._key_id] = time.time()
            horizon = time.time() - 86400  # a day's keys are kept; older ones cannot hold anyone back
            starts = {k: v for k, v in starts.items() if isinstance(v, (int, float)) and v > horizon}
            tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps(starts))
            os.replace(tmp, path)
        except OSError as exc:
            self._log(f"cannot record the call in {path} ({type(exc).__name__})")
        finally:
            lock.release()
        return True

    def _get(self, params: dict[str, str]) -> bytes:
        query = urllib.parse.urlencode({**params, "apikey": self._key})
        url = f"{self.base_url}{'&' if '?' in self.base_url else '?'}{query}"
        shown = self.mask(url)
        attempt = 0
        while True:
            self._wait_turn()
            self._log(f"GET {shown}" + (f" (retry {attempt})" if attempt else ""))
            try:
                req = urllib.request.Request(url, headers={"User-Agent": "qpo", "Accept": "application/json"})
                with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                    return resp.read()
            except urllib.error.HTTPError as exc:
                status, reason = exc.code, self.mask(exc.reason)
                if status != 429 and status < 500:
                    raise AlphaVantageRequestError(f"Alpha Vantage refused {shown}: HTTP {status} {reason}") from None
                problem = f"HTTP {status} {reason}"
            except TimeoutError as exc:
                problem = f"no answer within {self.timeout:g} s ({self.mask(str(exc))})"
            except (urllib.error.URLError, http.client.HTTPException, ConnectionError, OSError) as exc:
                reason = getattr(exc, "reason", exc)  # type: ignore[arg-type]
                if isinstance(reason, TimeoutError):
                    problem = f"no answer within {self.timeout:g} s"
                else:
                    problem = f"connection failed ({type(reason).__name__}: {self.mask(reason)})"
            if attempt >= self.retries:
                raise AlphaVantageUnavailable(f"Alpha Vantage did not answer {shown} after {attempt + 1} attempt(s): "
                                              f"{problem}; try again later, or check the network and "
                                              f"{URL_ENV}") from None
            wait = self.backoff * (2 ** attempt)
            self._log(f"{problem}: retrying in {wait:g} s")
            self._sleep(wait)
            attempt += 1

    # -- the endpoint -----------------------------------------------------------------------------
    def daily_adjusted(self, symbol: str, outputsize: str = "compact") -> pd.DataFrame:
        """The symbol's daily adjusted bars in :data:`qpo.data.OHLCV_COLUMNS` (dates ascending,
        ``ticker`` the symbol as asked). ``outputsize``: ``"compact"`` (the last 100 trading days)
        or ``"full"`` (20+ years)."""
        if outputsize not in ("compact", "full"):
            raise InvalidValueError(f"outputsize must be 'compact' or 'full', got {quoted(outputsize)}")
        symbol = check_symbol(symbol)
        body = self._get({"function": FUNCTION, "symbol": symbol, "outputsize": outputsize, "datatype": "json"})
        return parse_daily_adjusted(body, symbol, mask=self.mask)


def _answer_error(doc: dict, symbol: str, mask: Callable[[str], str]) -> AlphaVantageError | None:
    if "Note" in doc:
        return AlphaVantageRateLimited(f"Alpha Vantage refused {symbol}: the key's call frequency was exceeded "
                                       f"(its note: {mask(doc['Note'])!r}); lower {RATE_ENV} or wait a minute")
    if "Information" in doc:
        return AlphaVantageInformation(f"Alpha Vantage gave no bars for {symbol}, only information: "
                                       f"{mask(doc['Information'])!r} (a premium endpoint or the daily quota of "
                                       "the key; see https://www.alphavantage.co/premium/)")
    if "Error Message" in doc:
        return AlphaVantageRequestError(f"Alpha Vantage refused {symbol}: {mask(doc['Error Message'])!r} (an unknown "
                                        "symbol, or a call it does not accept)")
    return None


def parse_daily_adjusted(body: bytes | str, symbol: str, *, mask: Callable[[str], str] = str) -> pd.DataFrame:
    """Bars from a ``TIME_SERIES_DAILY_ADJUSTED`` JSON answer (or the error it carries, raised)."""
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        text = body[:120] if isinstance(body, str) else body[:120].decode("utf-8", "replace")
        raise AlphaVantageRequestError(f"Alpha Vantage's answer for {symbol} is not JSON ({exc}): "
                                       f"{mask(text)!r}") from None
    if not isinstance(doc, dict):
        raise AlphaVantageRequestError(f"Alpha Vantage's answer for {symbol} is not a JSON object")
    error = _answer_error(doc, symbol, mask)
    if error is not None:
        raise error
    series = doc.get(_SERIES_KEY)
    if not isinstance(series, dict):
        raise AlphaVantageRequestError(f"Alpha Vantage's answer for {symbol} holds no {_SERIES_KEY!r}; it holds "
                                       f"{sorted(doc)}")
    if not series:
        raise AlphaVantageRequestError(f"Alpha Vantage's answer for {symbol} holds no bars")
    frame = pd.DataFrame.from_dict(series, orient="index")
    missing = [k for k in _FIELDS if k not in frame.columns]
    if missing:
        raise AlphaVantageRequestError(f"Alpha Vantage's bars for {symbol} lack {missing}; got {list(frame.columns)}")
    frame = frame[list(_FIELDS)].rename(columns=_FIELDS)
    try:
        dates = pd.to_datetime(frame.index, format="%Y-%m-%d")
        frame = frame.apply(pd.to_numeric, errors="raise").astype("float64")
    except (ValueError, TypeError) as exc:
        raise AlphaVantageRequestError(f"Alpha Vantage's bars for {symbol} hold a value that is not a number or a "
                                       f"date: {exc}") from None
    frame.insert(0, "date", dates)
    frame.insert(1, "ticker", symbol)
    return frame.sort_values("date").reset_index(drop=True)[OHLCV_COLUMNS]
