"""The Alpha Vantage client against a real HTTP server on 127.0.0.1 that answers as Alpha Vantage
does (TIME_SERIES_DAILY_ADJUSTED's JSON, and its "Note", "Information" and "Error Message"
answers), drops a connection or stalls; then ``qpo data fetch alphavantage`` end to end into a
store. Nothing here touches the internet."""
from __future__ import annotations

import datetime as dt
import json
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pandas as pd
import pytest

from qpo.data.alphavantage import (
    AlphaVantageClient,
    AlphaVantageInformation,
    AlphaVantageRateLimited,
    AlphaVantageRequestError,
    AlphaVantageUnavailable,
    MissingApiKey,
    output_size,
)
from tests.servers import free_port

KEY = "SECRETKEY123"
NOTE = ("Thank you for using Alpha Vantage! Our standard API call frequency is 5 calls per minute and 500 calls "
        "per day.")
INFO = "Thank you for using Alpha Vantage! This is a premium endpoint."
ERROR = "Invalid API call. Please retry or visit the documentation (https://www.alphavantage.co/documentation/) "


def series(symbol: str, days: int, end="2023-03-31", seed=0) -> dict:
    """An answer in Alpha Vantage's format: ``days`` weekdays up to ``end``, newest first."""
    rng = np.random.default_rng(seed)
    dates = pd.bdate_range(end=end, periods=days)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, days)))
    bars = {}
    for d, c in zip(dates[::-1], close[::-1], strict=True):
        bars[d.strftime("%Y-%m-%d")] = {"1. open": f"{c * 0.995:.4f}", "2. high": f"{c * 1.01:.4f}",
                                        "3. low": f"{c * 0.99:.4f}", "4. close": f"{c:.4f}",
                                        "5. adjusted close": f"{c:.4f}", "6. volume": "123456",
                                        "7. dividend amount": "0.0000", "8. split coefficient": "1.0"}
    return {"Meta Data": {"1. Information": "Daily Time Series with Splits and Dividend Events", "2. Symbol": symbol,
                          "3. Last Refreshed": dates[-1].strftime("%Y-%m-%d"), "4. Output Size": "Full size",
                          "5. Time Zone": "US/Eastern"},
            "Time Series (Daily)": bars}


class AlphaVantage:
    """The fake server: ``script`` is a list of actions taken in turn (then ``default``): "ok",
    "note", "info", "error", "drop" (close the connection without an answer), "stall" (answer
    after ``stall`` seconds). Every request is kept (path, query, monotonic time)."""

    def __init__(self, full_days=300, compact_days=100, end="2023-03-31"):
        self.script: list[str] = []
        self.default = "ok"
        self.requests: list[dict] = []
        self.full_days, self.compact_days, self.end, self.stall = full_days, compact_days, end, 3.0
        self.seed = 0  # another seed: the history re-adjusted (as after a dividend or a split)
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def do_GET(self):
                q = dict(urllib.parse.parse_qsl(urllib.parse.urlparse(self.path).query))
                owner.requests.append({"query": q, "at": time.monotonic()})
                action = owner.script.pop(0) if owner.script else owner.default
                if action == "drop":
                    self.close_connection = True
                    self.connection.close()
                    return
                if action == "stall":
                    time.sleep(owner.stall)
                if q.get("apikey") != KEY:
                    doc = {"Error Message": "the parameter apikey is invalid or missing."}
                elif action == "note":
                    doc = {"Note": NOTE}
                elif action == "info":
                    doc = {"Information": INFO}
                elif action == "error" or q.get("symbol") == "NOPE":
                    doc = {"Error Message": ERROR}
                else:
                    doc = series(q["symbol"], owner.full_days, owner.end, owner.seed)
                    if q.get("outputsize") != "full":  # the newest 100 bars of the same history
                        bars = doc["Time Series (Daily)"]
                        doc["Time Series (Daily)"] = dict(list(bars.items())[:owner.compact_days])
                body = json.dumps(doc).encode()
                try:
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:  # the client gave up (a stall longer than its timeout)
                    pass

        self.port = free_port()
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.port}/query"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def av(monkeypatch):
    monkeypatch.setenv("ALPHAVANTAGE_API_KEY", KEY)
    with AlphaVantage() as server:
        monkeypatch.setenv("QPO_ALPHAVANTAGE_URL", server.url)
        yield server


def client(**kw) -> AlphaVantageClient:
    kw = {"calls_per_minute": 6000, "retries": 3, "backoff": 0.05, "timeout": 10.0} | kw
    return AlphaVantageClient(**kw)


def test_bars_parsed_in_the_loaders_columns(av):
    bars = client().daily_adjusted("IBM", "full")
    from qpo.data import OHLCV_COLUMNS

    assert list(bars.columns) == OHLCV_COLUMNS and len(bars) == 300
    assert bars["date"].is_monotonic_increasing and bars["date"].iloc[-1] == pd.Timestamp("2023-03-31")
    expected = series("IBM", 300)["Time Series (Daily)"]["2023-03-31"]
    last = bars.iloc[-1]
    assert last["adjusted_close"] == float(expected["5. adjusted close"]) and last["ticker"] == "IBM"
    assert last["volume"] == 123456.0 and last["split_coefficient"] == 1.0
    (req,) = av.requests
    assert req["query"] == {"function": "TIME_SERIES_DAILY_ADJUSTED", "symbol": "IBM", "outputsize": "full",
                            "datatype": "json", "apikey": KEY}


def test_output_size_follows_the_missing_trading_days():
    assert output_size(None) == "full"
    assert output_size(dt.date(2023, 3, 30), dt.date(2023, 3, 31)) == "compact"
    friday = dt.date(2023, 3, 31)
    # 99 weekdays after the last bar: compact (its 100 days cover them); 100: full
    last99 = (pd.Timestamp(friday) - pd.offsets.BDay(99)).date()
    last100 = (pd.Timestamp(friday) - pd.offsets.BDay(100)).date()
    assert output_size(last99, friday) == "compact" and output_size(last100, friday) == "full"
    assert output_size(friday, friday) == "compact"


@pytest.mark.parametrize("action, error, words", [
    ("note", AlphaVantageRateLimited, "call frequency was exceeded"),
    ("info", AlphaVantageInformation, "premium endpoint"),
    ("error", AlphaVantageRequestError, "Invalid API call"),
])
def test_error_answers_are_clear_errors_and_never_show_the_key(av, action, error, words):
    av.default = action
    with pytest.raises(error) as info:
        client(retries=0).daily_adjusted("IBM")
    message = str(info.value)
    assert words in message and "IBM" in message and KEY not in message
    assert len(av.requests) == 1  # an answer is not retried


def test_a_dropped_connection_and_a_stall_are_retried(av):
    logged = []
    av.script = ["drop", "stall", "ok"]
    av.stall = 2.0
    bars = client(timeout=0.5, backoff=0.1, log=logged.append).daily_adjusted("MSFT")
    assert len(bars) == 100 and len(av.requests) == 3
    assert any("connection failed" in m for m in logged) and any("no answer within 0.5 s" in m for m in logged)
    assert all(KEY not in m for m in logged) and any("apikey=***" in m for m in logged)
    # backoff 0.1 s then 0.2 s: the third request came at least 0.1 + 0.5 (timeout) + 0.2 s after the first
    assert av.requests[2]["at"] - av.requests[0]["at"] >= 0.75

    av.script, av.default = [], "drop"
    with pytest.raises(AlphaVantageUnavailable) as info:
        client(retries=2, backoff=0.01).daily_adjusted("MSFT")
    assert "after 3 attempt(s)" in str(info.value) and KEY not in str(info.value)
    assert "apikey=***" in str(info.value)


def test_the_rate_limit_spaces_the_calls(av):
    c = client(calls_per_minute=120)  # one call every 0.5 s
    for symbol in ("A", "B", "C", "D"):
        c.daily_adjusted(symbol)
    at = [r["at"] for r in av.requests]
    gaps = np.diff(at)
    assert len(at) == 4 and gaps.min() >= 0.45, gaps  # never faster; slower is allowed (a loaded machine)


def test_the_rate_limit_holds_across_processes_using_one_key(av, qpo_home):
    """Two fetches started at once in two processes (two cron lines, a user and the scheduler) keep
    the key's pace together; a third process with another key is not held back by them."""
    import os
    import subprocess
    import sys

    script = ("import sys; from qpo.data.alphavantage import AlphaVantageClient\n"
              "c = AlphaVantageClient(sys.argv[1], calls_per_minute=120, retries=0)\n"
              "for s in sys.argv[2:]: c.daily_adjusted(s)\n")
    env = dict(os.environ)
    procs = [subprocess.Popen([sys.executable, "-c", script, KEY, f"{p}1", f"{p}2"], env=env) for p in "AB"]
    assert [p.wait(60) for p in procs] == [0, 0]
    at = sorted(r["at"] for r in av.requests)
    assert len(at) == 4 and np.diff(at).min() >= 0.45, np.diff(at)  # one key: every call 0.5 s after the last
    kept = (qpo_home / "alphavantage-calls.json").read_text()
    assert KEY not in kept and len(json.loads(kept)) == 1  # the key's hash, never the key

    other = AlphaVantageClient("OTHERKEY456", calls_per_minute=0.5, retries=0)  # one call every 2 minutes
    t0 = time.monotonic()
    with pytest.raises(AlphaVantageRequestError, match="apikey is invalid"):  # the test server knows one key
        other.daily_adjusted("C")
    assert time.monotonic() - t0 < 30  # another key's pace does not hold it back
    assert len(json.loads((qpo_home / "alphavantage-calls.json").read_text())) == 2
    again = AlphaVantageClient(KEY, calls_per_minute=0.5, retries=0, sleep=lambda s: waits.append(s))
    waits: list[float] = []
    again.daily_adjusted("D")  # a new process's first call waits for the key's last call, not only its own
    assert len(waits) == 1 and 100 < waits[0] <= 120, waits


def test_the_key_and_the_url_come_from_the_environment(av, monkeypatch):
    monkeypatch.delenv("ALPHAVANTAGE_API_KEY")
    with pytest.raises(MissingApiKey, match="ALPHAVANTAGE_API_KEY"):
        AlphaVantageClient()
    c = AlphaVantageClient("WRONGKEY99", calls_per_minute=6000)
    assert c.base_url == av.url and "WRONGKEY99" not in repr(c)
    with pytest.raises(AlphaVantageRequestError) as info:
        c.daily_adjusted("IBM")
    assert "WRONGKEY99" not in str(info.value) and "apikey" in str(info.value)


# -- the command line, end to end -----------------------------------------------------------------
def _qpo(capsys, *argv):
    from qpo.cli import main

    capsys.readouterr()
    code = main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_cli_fetch_full_then_compact_into_the_store(av, capsys, monkeypatch, tmp_path):
    from qpo.store import connect
    from qpo.store.market_data import book_prices, last_bar_dates

    monkeypatch.setenv("QPO_ALPHAVANTAGE_CALLS_PER_MINUTE", "6000")
    # the vendor's last day is today's (the last weekday); the first fetch sees the data of two weeks ago
    latest = pd.offsets.BDay().rollback(pd.Timestamp(dt.date.today()))
    earlier = latest - pd.offsets.BDay(10)
    av.end = earlier.strftime("%Y-%m-%d")
    code, out, err = _qpo(capsys, "data", "fetch", "alphavantage", "--symbols", "IBM", "MSFT", "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert [r["outputsize"] for r in doc["results"]] == ["full", "full"]  # nothing held
    assert [r["written"] for r in doc["results"]] == [300, 300] and doc["failed"] == 0
    engine = connect()
    assert last_bar_dates(engine) == {"IBM": earlier.date(), "MSFT": earlier.date()}
    prices, origin = book_prices(engine)
    assert origin == "store" and list(prices.columns) == ["IBM", "MSFT"] and len(prices) == 300

    # two weeks on (10 more trading days, the same history): a compact answer covers them
    av.requests.clear()
    av.end, av.full_days = latest.strftime("%Y-%m-%d"), 310
    code, out, err = _qpo(capsys, "data", "fetch", "alphavantage", "--symbols", "IBM", "--json")
    assert code == 0, err
    (res,) = json.loads(out)["results"]
    assert [r["query"]["outputsize"] for r in av.requests] == ["compact"]
    assert res["outputsize"] == "compact" and res["received"] == 100 and res["written"] == 10
    assert last_bar_dates(engine)["IBM"] == latest.date()

    # a dividend re-adjusted the whole history: the compact answer disagrees with the store, so the full one comes
    av.requests.clear()
    av.seed = 1
    code, out, err = _qpo(capsys, "data", "fetch", "alphavantage", "--symbols", "IBM", "--json")
    (res,) = json.loads(out)["results"]
    assert code == 0 and [r["query"]["outputsize"] for r in av.requests] == ["compact", "full"]
    assert res["outputsize"] == "full" and "re-adjusted" in res["note"] and res["written"] == 310
    stored = book_prices(engine, ["IBM"])[0]["IBM"]
    fresh = series("IBM", 310, av.end, 1)["Time Series (Daily)"]
    day = earlier - pd.offsets.BDay(200)
    assert stored.loc[day] == float(fresh[day.strftime("%Y-%m-%d")]["5. adjusted close"])

    code, out, err = _qpo(capsys, "data", "fetch", "alphavantage", "--symbols", "IBM", "--full")
    assert code == 0 and "IBM      full" in out

    code, out, err = _qpo(capsys, "data", "show", "--json")
    shown = {t["ticker"]: t for t in json.loads(out)["tickers"]}
    assert shown["IBM"]["rows"] == 310 and shown["IBM"]["last"] == latest.date().isoformat()
    assert shown["MSFT"]["rows"] == 300


def test_cli_fetch_errors_exit_non_zero_without_the_key(av, capsys, monkeypatch):
    from qpo.store import connect
    from qpo.store.market_data import has_market_data

    monkeypatch.setenv("QPO_ALPHAVANTAGE_CALLS_PER_MINUTE", "6000")
    code, out, err = _qpo(capsys, "data", "fetch", "alphavantage", "--symbols", "NOPE", "IBM")
    assert code == 2 and "NOPE     FAILED" in out and "Invalid API call" in out and KEY not in out + err
    assert "IBM      full" in out  # an unknown symbol does not stop the others
    av.default = "note"
    code, out, err = _qpo(capsys, "data", "fetch", "alphavantage", "--symbols", "AAA", "BBB")
    assert code == 2 and "call frequency was exceeded" in out and "BBB      FAILED   not fetched" in out
    assert KEY not in out + err and len([r for r in av.requests if r["query"]["symbol"] == "BBB"]) == 0
    assert has_market_data(connect())
    monkeypatch.delenv("ALPHAVANTAGE_API_KEY")
    code, out, err = _qpo(capsys, "data", "fetch", "alphavantage", "--symbols", "IBM")
    assert code == 2 and "ALPHAVANTAGE_API_KEY" in err


def test_cli_seed_ingest_show_in_a_subprocess(tmp_path, goog_bars):
    import subprocess
    import sys

    from tests.conftest import ROOT

    def run(*argv):
        return subprocess.run([sys.executable, "-m", "qpo.cli", *argv], capture_output=True, text=True, cwd=ROOT,
                              timeout=300)

    proc = run("data", "show")
    assert proc.returncode == 3 and "no store" in proc.stderr  # a reader never creates the store
    bad = goog_bars.iloc[:200].copy()
    bad.loc[20, "adjusted_close"] = -1.0
    bad.to_csv(tmp_path / "bad.csv", index=False)
    proc = run("data", "ingest", str(tmp_path / "bad.csv"))
    assert proc.returncode == 2 and "FAILED" in proc.stdout and "nothing was written" in proc.stderr
    goog_bars.iloc[:200].to_csv(tmp_path / "good.csv", index=False)
    proc = run("data", "ingest", str(tmp_path / "good.csv"), "--json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["written"] == 200 and doc["tickers"] == ["GOOG"] and "qpo data seed" in doc["hint"]
    proc = run("data", "show")
    assert proc.returncode == 0 and "GOOG" in proc.stdout and "200" in proc.stdout
