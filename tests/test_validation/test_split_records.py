"""Split and dividend records that make no sense are errors of their own, and a split that cannot be
judged is said to be so.

Before: the split checks took ``log(r)`` only where ``r > 0``, so a split coefficient of 0, -2, NaN or
inf read as "no split" and passed, as did a missing dividend amount; a file with a split of 0 went
through ``qpo data ingest``. A split recorded on a ticker's first bar (no previous close) passed
silently: nothing could judge it."""
import json
import re
from html import unescape
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import qpo
from qpo.validation import Severity

SPLIT = "invalid split coefficients (valid: finite and > 0; 1 = no split)"
DIVIDEND = "invalid dividend amounts (valid: finite and >= 0; 0 = no dividend)"
FIRST = "split on a ticker's first bar not judged (no previous close to show it)"
I, J = 40, 120  # two bars in the middle of the slice


@pytest.fixture(scope="module")
def bars(goog_bars):
    return goog_bars.iloc[:250].copy()


def _date(bars, i):
    return str(bars.loc[i, "date"].date())


def _page_text(path):
    text = Path(path).read_text(encoding="utf-8")
    text = re.sub(r"<(script|style).*?</\1>", " ", text, flags=re.S)
    return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", text)))


def test_the_data_docs_list_the_offending_rows(bars):
    """GX's null checks leave ``unexpected_index_column_names`` out of their result, and its Data Docs
    then fail to render their rows (a RenderingError logged, no rows on the page): qpo fills it in."""
    bad = bars.copy()
    bad.loc[I, "split_coefficient"] = 0.0
    report = qpo.validate_ohlcv(bad)
    page = _page_text(report.data_docs)
    assert "invalid split coefficients" in page
    assert _date(bars, I) in page and "GX ran into an issue" not in page


@pytest.mark.parametrize(("value", "shown"), [(0.0, "0"), (-2.0, "-2"), (np.nan, "missing"), (np.inf, "inf"),
                                              (-np.inf, "-inf")], ids=["zero", "negative", "nan", "inf", "-inf"])
def test_nonsense_split_coefficients_are_errors(bars, value, shown):
    bad = bars.copy()
    bad.loc[[I, J], "split_coefficient"] = value
    report = qpo.validate_ohlcv(bad)
    assert not report.success
    assert report.failed_checks == [SPLIT], str(report)  # nothing else looks at them
    f = report.failures[0]
    assert f.severity is Severity.ERROR and report.checks[SPLIT] is Severity.ERROR
    assert f.columns == ["invalid_split"] and f.unexpected_count == 2
    assert f.examples == [{"invalid_split": shown, "ticker": "GOOG", "date": _date(bars, I)},
                          {"invalid_split": shown, "ticker": "GOOG", "date": _date(bars, J)}]
    with pytest.raises(qpo.errors.DataValidationError) as info:
        report.raise_if_failed()
    assert f"invalid_split={shown}, ticker=GOOG, date={_date(bars, I)}" in str(info.value)
    assert "finite and > 0" in str(info.value)


@pytest.mark.parametrize(("value", "shown"), [(np.nan, "missing"), (-0.5, "-0.5"), (np.inf, "inf")],
                         ids=["nan", "negative", "inf"])
def test_nonsense_dividend_amounts_are_errors(bars, value, shown):
    bad = bars.copy()
    bad.loc[J, "dividend_amount"] = value
    report = qpo.validate_ohlcv(bad)
    assert report.failed_checks == [DIVIDEND], str(report)
    f = report.failures[0]
    assert f.unexpected_count == 1 and f.severity is Severity.ERROR
    assert f.examples == [{"invalid_dividend": shown, "ticker": "GOOG", "date": _date(bars, J)}]


def test_valid_records_pass_and_absent_columns_are_not_checked(bars):
    """Ordinary records (split 1, dividend 0) pass; a file without split or dividend columns (the
    loader fills them with NaN: unknown) is checked as before, not failed."""
    report = qpo.validate_ohlcv(bars)
    assert report.success and report.failures == [] and report.warnings == [], str(report)
    assert report.checks[SPLIT] is Severity.ERROR and report.checks[DIVIDEND] is Severity.ERROR
    assert report.checks[FIRST] is Severity.WARNING
    absent = bars.assign(split_coefficient=np.nan, dividend_amount=np.nan)
    report = qpo.validate_ohlcv(absent)
    assert report.success and report.failures == [] and report.warnings == [], str(report)


def test_a_split_on_a_tickers_first_bar_is_a_warning_not_a_silent_pass(bars):
    """No previous close: whether the close showed the split cannot be told. The report says so (a
    warning: the data may well be right), naming the ticker and the date; the run goes on."""
    two = bars.copy()
    other = bars.iloc[:100].assign(ticker="GOOGL")
    other.loc[0, "split_coefficient"] = 0.5  # a 1-for-2 reverse split on GOOGL's first bar
    two.loc[0, "split_coefficient"] = 1.1  # too small to be judged anywhere: not flagged
    both = pd.concat([two, other], ignore_index=True)
    report = qpo.validate_ohlcv(both)
    assert report.success and report.failures == [], str(report)
    (w,) = report.warnings
    assert w.check == FIRST and w.severity is Severity.WARNING and w.columns == ["first_bar_split"]
    assert w.examples == [{"first_bar_split": 0.5, "ticker": "GOOGL", "date": _date(bars, 0)}]
    assert FIRST in report.summary() and "WARNING (reported, does not stop the run)" in str(report)
    doc = json.loads(report.to_json())
    assert [(x["check"], x["severity"]) for x in doc["warnings"]] == [(FIRST, "warning")]

    alone = bars.copy()
    alone.loc[0, "split_coefficient"] = 2.0
    report = qpo.validate_ohlcv(alone)
    assert report.success and report.warning_checks == [FIRST], str(report)
    assert report.warnings[0].examples[0]["ticker"] == "GOOG"


def test_ingest_refuses_a_file_with_a_zero_split(tmp_path, qpo_home, monkeypatch, capsys, bars):
    from qpo.cli import main

    monkeypatch.delenv("QPO_DATABASE_URL", raising=False)
    bad = bars.copy()
    bad.loc[I, "split_coefficient"] = 0.0
    bad.to_csv(tmp_path / "zero_split.csv", index=False)
    status = main(["data", "ingest", str(tmp_path / "zero_split.csv"), "--json"])
    out, err = capsys.readouterr()
    assert status == 2, (out, err)
    assert "nothing was written" in out + err
    assert SPLIT in out and _date(bars, I) in out


def test_text_in_the_split_column_is_reported_once_as_a_wrong_type(bars):
    bad = bars.copy()
    bad["split_coefficient"] = bad["split_coefficient"].astype(object)
    bad.loc[I, "split_coefficient"] = "2:1"
    bad.loc[J, "split_coefficient"] = 0.0
    report = qpo.validate_ohlcv(bad)
    assert [f.check for f in report.failures] == ["wrong type (text where a number belongs)", SPLIT], str(report)
    wrong, split = report.failures
    assert wrong.examples == [{"ticker": "GOOG", "date": _date(bars, I), "not_a_number": "split_coefficient: 2:1"}]
    assert split.unexpected_count == 1 and split.examples[0]["date"] == _date(bars, J)
