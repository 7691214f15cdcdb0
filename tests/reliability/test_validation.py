"""Validation under fault: non-finite and non-positive prices are errors that name the ticker, the
first bad date and how many; a panel defective in every row gives a small report, quickly, in
little memory (the full-size figures: ``python -m benchmarks.validation_scale``)."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import qpo
from qpo.validation import Severity

ROOT = Path(__file__).resolve().parents[2]
NON_POSITIVE = "non-positive prices"


def _panel(n_tickers: int, n_days: int, seed: int = 0) -> pd.DataFrame:
    """A clean random-walk panel (1 % daily volatility), tickers T0000, T0001, ..."""
    rng = np.random.default_rng(seed)
    steps = rng.normal(0.0, 0.01, size=(n_days, n_tickers))
    prices = 50.0 * np.exp(np.cumsum(steps, axis=0))
    return pd.DataFrame(prices, index=pd.bdate_range("2000-01-03", periods=n_days),
                        columns=[f"T{j:04d}" for j in range(n_tickers)])


def _failure(report, prefix):
    found = [f for f in report.failures if f.check.startswith(prefix)]
    assert found, str(report)
    return found[0]


@pytest.mark.parametrize("bad", [np.inf, -np.inf, 0.0, -3.5], ids=["inf", "-inf", "zero", "negative"])
def test_each_bad_price_is_an_error_naming_ticker_first_date_and_count(bad):
    prices = _panel(6, 120)
    prices.iloc[40:55, 3] = bad  # T0003 from 2000-02-28, 15 days
    prices.iloc[90, 5] = bad  # T0005 once
    report = qpo.validate_prices(prices)
    assert not report.success
    f = _failure(report, NON_POSITIVE)
    assert f.severity is Severity.ERROR and f.unexpected_count == 16
    assert f.tickers == [{"ticker": "T0003", "count": 15, "first_date": "2000-02-28"},
                         {"ticker": "T0005", "count": 1, "first_date": str(prices.index[90].date())}]
    shown = {np.inf: "inf", -np.inf: "-inf"}.get(bad, bad)  # JSON has no infinity: written as text
    assert f.examples[0] == {"ticker": "T0003", "date": "2000-02-28", "price": shown}
    # reported once: the returns and runs around a bad price are not blamed again
    assert [x.check.split(" (")[0] for x in report.failures] == [NON_POSITIVE], str(report)
    text = str(report)
    assert "in 2 ticker(s) (T0003 15 from 2000-02-28, T0005 1 from" in text
    json.loads(report.to_json())  # strict JSON: infinities are written as text, never as Infinity
    assert "Infinity" not in report.to_json()


def test_a_ticker_all_inf_does_not_validate():
    """The defect as found: every price of one ticker inf, and the panel passed."""
    prices = _panel(4, 60)
    prices["T0002"] = np.inf
    report = qpo.validate_prices(prices)
    assert not report.success
    f = _failure(report, NON_POSITIVE)
    assert f.tickers == [{"ticker": "T0002", "count": 60, "first_date": "2000-01-03"}]


def test_inf_in_ohlcv_bars_is_an_error(goog_bars):
    bad = goog_bars.copy()
    bad.loc[500:, "close"] = np.inf
    report = qpo.validate_ohlcv(bad)
    f = _failure(report, f"{NON_POSITIVE} (close")
    assert f.unexpected_count == len(bad) - 500 and len(f.examples) == 20
    assert f.examples[0]["date"] == str(bad.loc[500, "date"].date()) and f.examples[0]["close"] == "inf"


def _every_row_defective(n_tickers: int, n_days: int) -> pd.DataFrame:
    """One bad cell in every row, a different ticker each day: NaN, inf, a negative price and a
    tenfold jump in turn."""
    prices = _panel(n_tickers, n_days)
    values = prices.to_numpy(copy=True)
    for t in range(1, n_days - 1):
        j = t % n_tickers
        values[t, j] = [np.nan, np.inf, -1.0, values[t, j] * 10][t % 4]
    return pd.DataFrame(values, index=prices.index, columns=prices.columns)


def test_every_row_defective_gives_a_small_report_naming_the_first_tickers(tmp_path):
    prices = _every_row_defective(300, 1500)
    path = tmp_path / "defective.csv"
    prices.to_csv(path)
    report = qpo.validate_file(path)
    assert not report.success
    size = len(report.to_json().encode())
    assert size < 100_000, size
    by_check = {f.check.split(" (")[0]: f for f in report.failures}
    assert set(by_check) == {"missing values", NON_POSITIVE, "implausible one-day jumps"}
    days_index = prices.index
    for name, kinds in (("missing values", (0,)), (NON_POSITIVE, (1, 2))):
        days = [t for t in range(1, 1499) if t % 4 in kinds]
        per_ticker = pd.Series([t % 300 for t in days]).value_counts().sort_index()
        first = {j: min(t for t in days if t % 300 == j) for j in per_ticker.index}
        f = by_check[name]
        assert f.unexpected_count == len(days) and f.n_tickers == len(per_ticker), name
        assert f.tickers == [{"ticker": f"T{j:04d}", "count": int(n), "first_date": str(days_index[first[j]].date())}
                             for j, n in per_ticker.iloc[:20].items()], name
        assert len(f.examples) == 20 and f.examples[0]["ticker"] == f"T{per_ticker.index[0]:04d}", name
    assert by_check["implausible one-day jumps"].unexpected_count == 2 * len(range(3, 1499, 4))  # up, then down
    assert all(len(f.examples) <= 20 and len(f.tickers) <= 20 for f in report.failures + report.warnings)
    # in memory (a file that repeats a date is refused by the loader): every ticker on a repeated date
    twice = qpo.validate_prices(pd.concat([prices.iloc[[0]], prices]))
    dup = _failure(twice, "duplicate dates")
    assert dup.unexpected_count == 2 * 300 and dup.n_tickers == 300 and dup.tickers[0]["count"] == 2
    assert size < 100_000 and len(twice.to_json().encode()) < 100_000


def test_the_report_stays_small_with_long_names_and_text(tmp_path):
    """Bounded whatever the input: 2,000 expected tickers with long names and a 1 MB text cell."""
    prices = _panel(3, 50)
    prices = prices.astype(object)
    prices.iloc[10, 1] = "x" * 1_000_000
    expected = [f"A very long vendor instrument name number {i:05d} (XNYS, common stock, class A)" for i in range(2000)]
    report = qpo.validate_prices(prices, expected_tickers=expected)
    assert not report.success
    size = len(report.to_json().encode())
    assert size < 100_000, size
    wrong = _failure(report, "wrong type")
    assert wrong.examples[0]["ticker"] == "T0001" and wrong.examples[0]["not_a_number"].startswith("price: xxx")
    missing = _failure(report, "missing tickers")
    assert missing.unexpected_count == 2000 and len(missing.examples) == 20
    assert report.parameters["expected_tickers"].startswith("2000 tickers")


@pytest.mark.slow
def test_a_wide_defective_panel_validates_in_little_memory(tmp_path):
    """400 tickers x 5,000 days (2 M prices), every row defective, through the pipelines' path
    (validate_source on a CSV) in a fresh process: peak RSS under 1.2 GB (Great Expectations and
    pandas alone take ~0.4 GB; the long-frame path this replaced took several GB here)."""
    path = tmp_path / "wide.csv"
    _every_row_defective(400, 5000).to_csv(path)
    code = textwrap.dedent(f"""
        import json, resource
        from qpo.validation import validate_source
        report, prices = validate_source({str(path)!r})
        print(json.dumps({{"success": report.success, "bytes": len(report.to_json()),
                           "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}}))
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["success"] is False and out["bytes"] < 100_000
    assert out["peak_mib"] < 1200, out
