"""Fuzzing the file loaders (hypothesis): random CSV and Parquet price files, written the ways
pandas and spreadsheets write them (the dates as the index or as a column, a byte-order mark,
``;`` with decimal commas), with missing values, all-NaN columns, text in price columns,
repeated, shuffled or reversed dates, one row or none; and decimal commas in a comma-separated file.

Every case ends in a frame (ascending unique ``DatetimeIndex``, float columns) equal to what was
written, or in a :class:`~qpo.errors.QpoError` whose message names the problem; never another
exception, never a frame of another shape. Cases run: 200 + 150 + 120 + 100 + 100 + 3 = 673
(see each ``settings``)."""
from __future__ import annotations

import re
import string
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

import qpo
from qpo.errors import DataError, QpoError

SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
RESERVED = {"DATE", "TIMESTAMP", "DATETIME", "INDEX", "OPEN", "HIGH", "LOW", "CLOSE"}
TEXT = ["n.a.", "ask", "—", "1.2.3", "price?", "12abc", "N/D"]

tickers = st.lists(
    st.text(string.ascii_uppercase, min_size=1, max_size=1).flatmap(
        lambda c: st.text(string.ascii_uppercase + string.digits + ".-", max_size=5).map(lambda t: c + t)),
    min_size=1, max_size=4, unique_by=str.upper).filter(lambda ts: not RESERVED & {t.upper() for t in ts})
prices = st.floats(min_value=1e-3, max_value=1e6, allow_nan=False, allow_infinity=False)


@st.composite
def panels(draw, min_rows: int = 0, max_rows: int = 12) -> pd.DataFrame:
    """A valid panel: ascending unique dates, positive float prices."""
    names = draw(tickers)
    n = draw(st.integers(min_rows, max_rows))
    offsets = sorted(draw(st.sets(st.integers(0, 4000), min_size=n, max_size=n)))
    dates = pd.DatetimeIndex(pd.Timestamp("2005-01-03") + pd.to_timedelta(offsets, unit="D"), name="date")
    values = draw(st.lists(prices, min_size=n * len(names), max_size=n * len(names)))
    return pd.DataFrame(np.array(values, dtype="float64").reshape(n, len(names)), index=dates, columns=names)


@st.composite
def layouts(draw) -> dict:
    fmt = draw(st.sampled_from(["csv", "parquet"]))
    return {"format": fmt,
            "index": draw(st.sampled_from(["index", "column"])),
            "index_name": draw(st.sampled_from(["date", "Date", None])),
            "bom": fmt == "csv" and draw(st.booleans()),
            "european": fmt == "csv" and draw(st.booleans())}


def write(frame: pd.DataFrame, layout: dict, folder: Path) -> Path:
    """``frame`` (a DatetimeIndex of dates x tickers) written as ``layout`` says."""
    frame = frame.rename_axis(layout["index_name"])
    if layout["index"] == "column":
        frame = frame.reset_index(names=layout["index_name"] or "date")
    keep_index = layout["index"] == "index"
    if layout["format"] == "parquet":
        path = folder / "prices.parquet"
        frame.to_parquet(path, index=keep_index)
        return path
    path = folder / "prices.csv"
    sep, decimal = (";", ",") if layout["european"] else (",", ".")
    for c in [c for c in frame.columns if frame[c].dtype == object]:  # pandas leaves object columns' decimal points alone
        frame[c] = [v if isinstance(v, str) or pd.isna(v) else repr(v).replace(".", decimal) for v in frame[c]]
    text = frame.to_csv(index=keep_index, sep=sep, decimal=decimal)
    path.write_bytes(text.encode("utf-8-sig" if layout["bom"] else "utf-8"))
    return path


def check_frame(loaded: pd.DataFrame) -> None:
    assert isinstance(loaded.index, pd.DatetimeIndex) and loaded.index.name == "date"
    assert loaded.index.is_monotonic_increasing and loaded.index.is_unique
    assert all(dt == np.float64 for dt in loaded.dtypes), loaded.dtypes


def assert_same(loaded: pd.DataFrame, expected: pd.DataFrame) -> None:
    check_frame(loaded)
    assert list(loaded.index) == list(expected.index)
    assert list(loaded.columns) == [str(c) for c in expected.columns]
    a, b = loaded.to_numpy(), expected.to_numpy(dtype="float64")
    assert (np.isnan(a) == np.isnan(b)).all()
    np.testing.assert_allclose(a[~np.isnan(a)], b[~np.isnan(b)], rtol=0, atol=1e-12)


def load_or_error(path: Path) -> pd.DataFrame | QpoError:
    try:
        return qpo.load_price_file(path)
    except QpoError as exc:
        msg = str(exc)
        assert 0 < len(msg) <= 300, msg
        assert "Traceback" not in msg
        return exc


# ------------------------------------------------------------------ defects with a known outcome
DEFECTS = ["none", "nan", "all_nan_column", "text", "duplicate", "shuffled", "reversed", "zero_rows", "one_row"]


@settings(max_examples=200, **SETTINGS)
@given(panel=panels(), layout=layouts(), defect=st.sampled_from(DEFECTS), data=st.data())
def test_each_defect_ends_in_the_right_frame_or_a_named_error(panel, layout, defect, data):
    truth, frame = panel, panel.copy()
    n, names = len(panel), list(panel.columns)
    if n == 0:
        defect = "zero_rows"
    if defect == "zero_rows":
        truth = frame = panel.iloc[:0]
    elif defect == "one_row":
        assume(n >= 1)
        truth = frame = panel.iloc[:1]
    elif defect == "nan":
        assume(n >= 1)
        cells = data.draw(st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, len(names) - 1)), min_size=1))
        for i, j in cells:
            frame.iloc[i, j] = np.nan
        truth = frame
    elif defect == "all_nan_column":
        assume(n >= 1)
        frame[data.draw(st.sampled_from(names))] = np.nan
        truth = frame
    elif defect == "text":
        assume(n >= 1)
        i, col, word = data.draw(st.integers(0, n - 1)), data.draw(st.sampled_from(names)), data.draw(st.sampled_from(TEXT))
        frame[col] = frame[col].astype(object)
        frame.loc[frame.index[i], col] = word
        if layout["format"] == "parquet":  # a Parquet column holds one type: the prices become text
            frame[col] = [None if pd.isna(v) else (v if isinstance(v, str) else repr(v)) for v in frame[col]]
    elif defect == "duplicate":
        assume(n >= 1)
        i = data.draw(st.integers(0, n - 1))
        frame = pd.concat([frame.iloc[: i + 1], frame.iloc[i: i + 1], frame.iloc[i + 1:]])
    elif defect == "shuffled":
        assume(n >= 3)
        order = data.draw(st.permutations(range(n)))
        assume(order != sorted(order) and order != sorted(order, reverse=True))
        frame = frame.iloc[order]
    elif defect == "reversed":
        frame = frame.iloc[::-1]
    with tempfile.TemporaryDirectory() as folder:
        outcome = load_or_error(write(frame, layout, Path(folder)))
    if defect in ("none", "nan", "all_nan_column", "one_row", "reversed"):
        assert not isinstance(outcome, Exception), f"{defect}: {outcome}"
        assert_same(outcome, truth)
        return
    assert isinstance(outcome, DataError), f"{defect} was loaded: {outcome}"
    msg = str(outcome)
    expected = {"zero_rows": "has no rows", "duplicate": "appear more than once", "shuffled": "dates out of order",
                "text": "text where numbers belong"}[defect]
    assert expected in msg, msg
    if defect == "text":
        assert repr(col) in msg and f"row {i + 1} " in msg, msg


# ------------------------------------------------------------------ anything at all
HEADER = ["date", "Date", "timestamp", "", "Unnamed: 0", "A", "B", "AAPL", "open", "close", "A"]
CELLS = ["2020-01-02", "2020-01-03", "01/03/2020", "13/01/2020", "2020-01-02 00:00:00+01:00", "1577923200", "20200102",
         "1.5", "1,5", "-2", "0", "inf", "1e400", "nan", "", "n.a.", '"1,234"', "True", "—", " 3.25 ", "1.234,5"]


@st.composite
def csv_texts(draw) -> bytes:
    sep = draw(st.sampled_from([",", ";", "\t"]))
    header = draw(st.lists(st.sampled_from(HEADER), min_size=1, max_size=5))
    rows = draw(st.lists(st.lists(st.sampled_from(CELLS), min_size=len(header), max_size=len(header)), max_size=8))
    if draw(st.booleans()) and rows:  # a ragged row
        rows[-1] = rows[-1] + ["9"]
    text = "\n".join(sep.join(r) for r in [header, *rows]) + draw(st.sampled_from(["", "\n", "\n\n"]))
    return text.encode(draw(st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "latin-1"])), errors="replace")


@settings(max_examples=150, **SETTINGS)
@given(content=csv_texts())
@example(content=b"\xef\xbb\xbf")  # a byte-order mark and nothing else (an IndexError once)
@example(content=b"\xef\xbb\xbf\n \n")
def test_any_csv_ends_in_a_frame_or_a_qpo_error(content):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "any.csv"
        path.write_bytes(content)
        outcome = load_or_error(path)
        if not isinstance(outcome, Exception):
            check_frame(outcome)
        try:
            qpo.data.loaders.file_kind(path)
            bars = qpo.load_ohlcv(path, ticker="X")
        except QpoError as exc:
            assert len(str(exc)) <= 300, str(exc)
        else:
            assert pd.api.types.is_datetime64_any_dtype(bars["date"])
            assert all(pd.api.types.is_numeric_dtype(bars[c]) for c in ("open", "high", "low", "close"))


COLUMN_KINDS = st.sampled_from(["float", "int", "text", "dates", "bool", "numbers_as_text", "empty"])


@st.composite
def parquet_frames(draw) -> pd.DataFrame:
    n = draw(st.integers(0, 6))
    kinds = draw(st.lists(COLUMN_KINDS, min_size=1, max_size=4))
    names = draw(st.lists(st.sampled_from(["date", "Date", "A", "B", "C", "when", "x"]), min_size=len(kinds),
                          max_size=len(kinds), unique=True))
    make = {"float": lambda: np.linspace(1, 2, n), "int": lambda: np.arange(n) + 1_600_000_000,
            "text": lambda: [draw(st.sampled_from(TEXT)) for _ in range(n)],
            "dates": lambda: pd.date_range("2020-01-01", periods=n), "bool": lambda: np.arange(n) % 2 == 0,
            "numbers_as_text": lambda: [str(1.5 + i) for i in range(n)], "empty": lambda: [None] * n}
    frame = pd.DataFrame({name: make[kind]() for name, kind in zip(names, kinds)})
    index = draw(st.sampled_from(["range", "dates", "named_dates", "ints", "text"]))
    if index == "dates" and n:
        frame.index = pd.date_range("2021-01-01", periods=n)
    elif index == "named_dates" and n:
        frame.index = pd.DatetimeIndex(pd.date_range("2021-01-01", periods=n), name=draw(st.sampled_from(["date", "d"])))
    elif index == "ints":
        frame.index = np.arange(n) * 3
    elif index == "text":
        frame.index = [f"r{i}" for i in range(n)]
    return frame


@settings(max_examples=120, **SETTINGS)
@given(frame=parquet_frames())
def test_any_parquet_ends_in_a_frame_or_a_qpo_error(frame):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "any.parquet"
        frame.to_parquet(path)
        outcome = load_or_error(path)
    if not isinstance(outcome, Exception):
        check_frame(outcome)
        assert len(outcome) == len(frame)


# ------------------------------------------------------------------ round trip
@settings(max_examples=100, **SETTINGS)
@given(panel=panels(min_rows=1), layout=layouts())
def test_valid_panels_load_back_equal(panel, layout):
    with tempfile.TemporaryDirectory() as folder:
        loaded = qpo.load_price_file(write(panel, layout, Path(folder)))
    assert_same(loaded, panel)
    assert loaded.index.equals(panel.index)


# ------------------------------------------------------------------ decimal commas, comma-separated
@settings(max_examples=100, **SETTINGS)
@given(panel=panels(min_rows=1, max_rows=6), date_header=st.sampled_from(["date", "Date", "", None]),
       fmt=st.sampled_from(["fixed", "general"]), trailing=st.booleans(), bom=st.booleans(), data=st.data())
def test_decimal_commas_in_a_comma_separated_file_are_refused_never_misread(panel, date_header, fmt, trailing, bom,
                                                                           data):
    """A spreadsheet's export with decimal commas and ',' between the fields, nothing quoted (a number
    with a fraction is two fields), maybe a separator ending each row; the dates under a header name,
    an empty one, or none (as ``to_csv(index_label=False)`` writes). Refused, naming a row wider than
    the header with its field count, the header's and the decimal commas; or, when no row is wider
    than the header, read as written. Never a panel of other numbers (pandas made the extra first
    fields an index: "column 'Date' holds numbers", or prices shifted by a column)."""
    values = panel.to_numpy().copy()
    whole = np.array(data.draw(st.lists(st.booleans(), min_size=values.size, max_size=values.size))).reshape(values.shape)
    values[whole] = np.maximum(np.round(values[whole]), 1.0)
    holes = np.array(data.draw(st.lists(st.booleans(), min_size=values.size, max_size=values.size))).reshape(values.shape)
    values[holes & data.draw(st.booleans())] = np.nan

    def cell(v: float) -> str:
        if np.isnan(v):
            return ""
        return (f"{v:.2f}" if fmt == "fixed" else str(int(v)) if v.is_integer() else repr(v)).replace(".", ",")

    cells = [[cell(v) for v in row] for row in values]
    rows = [",".join([f"{d:%Y-%m-%d}", *r]) + ("," if trailing else "") for d, r in zip(panel.index, cells)]
    header = ([] if date_header is None else [date_header]) + list(panel.columns)
    text = "\n".join([",".join(header), *rows]) + "\n"
    wide = [k for k, r in enumerate(rows) if len(r.split(",")) > len(header)]
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "prices.csv"
        path.write_bytes(text.encode("utf-8-sig" if bom else "utf-8"))
        outcome = load_or_error(path)
    if not wide:  # no decimal comma, no separator ending the rows: an ordinary file
        assert not isinstance(outcome, Exception), outcome
        expected = pd.DataFrame(values, index=panel.index, columns=panel.columns)
        assert_same(outcome, expected)
        return
    assert isinstance(outcome, DataError), f"read as {outcome}"
    msg = str(outcome)
    named = re.search(r"row (\d+) \(line (\d+)\) has (\d+) fields but the header (\d+): likely ", msg)
    assert named and "decimal commas in a comma-separated file (use ';' as the separator" in msg, msg
    row, line, n, width = map(int, named.groups())
    assert row - 1 in wide and line == row + 1 and width == len(header), msg
    assert n == len(rows[row - 1].split(",")), msg


# ------------------------------------------------------------------ what loads, validates
@settings(max_examples=3, **SETTINGS)
@given(panel=panels(min_rows=3, max_rows=8), layout=layouts(), hole=st.booleans(), data=st.data())
def test_loaded_files_go_through_validation(panel, layout, hole, data):
    """What the pipelines do with a file (qpo.validation.validate_source): a report, never a crash;
    a missing price in the middle of a ticker's history fails it, naming the ticker."""
    col = data.draw(st.sampled_from(list(panel.columns)))
    if hole:
        panel.loc[panel.index[1], col] = np.nan
    with tempfile.TemporaryDirectory() as folder:
        report, prices = qpo.validate_source(str(write(panel, layout, Path(folder))))
    if hole:
        assert not report.success and prices is None
        assert any(f.check.startswith("missing values") and any(e.get("ticker") == col for e in f.examples)
                   for f in report.failures), str(report)
    elif report.success:
        assert_same(prices, panel)
