"""Files as pandas and spreadsheets write them: the dates are found where they are (the index
pandas recorded, an unnamed first column, a BOM before the header), semicolons and decimal
commas are read or refused saying which, and every refusal names columns or rows."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import qpo
from qpo.errors import DataError

DATES = pd.DatetimeIndex(["2021-03-01", "2021-03-02", "2021-03-03", "2021-03-04"], name="date")
PANEL = pd.DataFrame({"AAPL": [120.5, 121.25, 119.0, 122.75], "MSFT": [230.0, 231.5, 229.25, 233.0]}, index=DATES)


def _write(path, text: str, encoding: str = "utf-8"):
    path.write_bytes(text.encode(encoding))
    return path


def _same(loaded: pd.DataFrame, expected: pd.DataFrame = PANEL) -> None:
    assert isinstance(loaded.index, pd.DatetimeIndex) and loaded.index.name == "date"
    assert list(loaded.index) == list(expected.index)
    assert list(loaded.columns) == list(expected.columns)
    assert all(dt == np.float64 for dt in loaded.dtypes)
    np.testing.assert_allclose(loaded.to_numpy(), expected.to_numpy(), rtol=0, atol=1e-12)


# ------------------------------------------------------------------ defect 1: the dates pandas wrote
@pytest.mark.parametrize("index_name", ["date", "Date", None, "when"])
def test_parquet_written_the_pandas_way_keeps_its_dates(tmp_path, index_name):
    """Before: the first ticker column (AAPL's prices) was read as nanoseconds since 1970."""
    path = tmp_path / "p.parquet"
    PANEL.rename_axis(index_name).to_parquet(path)
    loaded = qpo.load_price_file(path)
    _same(loaded, PANEL)
    assert loaded.index[0] == pd.Timestamp("2021-03-01")  # not 1970-01-01


@pytest.mark.parametrize("index_name", ["date", "Date", None])
def test_csv_written_by_to_csv_keeps_its_dates(tmp_path, index_name):
    path = tmp_path / "p.csv"
    PANEL.rename_axis(index_name).to_csv(path)
    _same(qpo.load_prices(str(path)))


def test_reset_index_written_with_row_numbers(tmp_path):
    """``frame.reset_index().to_csv(path)``: row numbers first, then a date column."""
    path = tmp_path / "p.csv"
    PANEL.reset_index().to_csv(path)
    _same(qpo.load_price_file(path))


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_no_dates_anywhere_is_refused_naming_the_columns(tmp_path, suffix):
    path = tmp_path / f"p{suffix}"
    PANEL.to_csv(path, index=False) if suffix == ".csv" else PANEL.to_parquet(path, index=False)
    with pytest.raises(DataError, match=r"no dates found; columns seen: AAPL, MSFT"):
        qpo.load_price_file(path)


def test_numbers_are_never_dates(tmp_path):
    epoch = _write(tmp_path / "epoch.csv", "date,A\n1614556800,1.5\n1614643200,1.6\n")
    with pytest.raises(DataError, match=r"column 'date' holds numbers \(e.g. 1614556800\), not dates"):
        qpo.load_price_file(epoch)
    floats = tmp_path / "floats.parquet"
    pd.DataFrame({"x": [1.5, 2.5], "A": [1.0, 2.0]}).to_parquet(floats, index=False)
    with pytest.raises(DataError, match="no dates found"):
        qpo.load_price_file(floats)


def test_bars_parquet_with_a_date_index(tmp_path, goog_bars):
    path = tmp_path / "bars.parquet"
    goog_bars.iloc[:50].set_index("date").to_parquet(path)
    bars = qpo.load_ohlcv(path)
    assert bars["date"].iloc[0] == goog_bars["date"].iloc[0] and len(bars) == 50
    assert list(bars.columns) == qpo.data.OHLCV_COLUMNS
    prices = qpo.load_prices(str(path))
    assert prices.index[0] == goog_bars["date"].iloc[0] and list(prices.columns) == ["GOOG"]


def test_bars_with_epoch_dates_are_refused(tmp_path, goog_bars):
    bars = goog_bars.iloc[:5].copy()
    bars["date"] = bars["date"].astype("int64") // 10**9
    path = tmp_path / "bars.csv"
    bars.to_csv(path, index=False)
    with pytest.raises(DataError, match="holds numbers"):
        qpo.load_ohlcv(path)


# ------------------------------------------------------------------ defect 2: BOM, ';', decimal commas
def test_byte_order_mark(tmp_path):
    path = _write(tmp_path / "bom.csv", PANEL.to_csv(), "utf-8-sig")
    loaded = qpo.load_price_file(path)
    _same(loaded)
    assert loaded.attrs["qpo_read"] == "read as UTF-8 with a byte-order mark"


def test_semicolons_with_decimal_commas_are_read_as_such(tmp_path):
    path = _write(tmp_path / "eu.csv", PANEL.to_csv(sep=";", decimal=","), "utf-8-sig")
    assert "120,5" in path.read_text(encoding="utf-8-sig")
    loaded = qpo.load_price_file(path)
    _same(loaded)
    assert loaded.attrs["qpo_read"] == "read as UTF-8 with a byte-order mark, semicolon-separated, with decimal commas"
    assert qpo.data.loaders.file_kind(path) == "prices"


def test_semicolons_with_decimal_points(tmp_path):
    _same(qpo.load_price_file(_write(tmp_path / "p.csv", PANEL.to_csv(sep=";"))))


def test_semicolon_bars_are_recognised_as_bars(tmp_path, goog_bars):
    path = tmp_path / "bars.csv"
    goog_bars.iloc[:30].to_csv(path, sep=";", decimal=",", index=False)
    assert qpo.data.loaders.file_kind(path) == "ohlcv"
    bars = qpo.load_ohlcv(path)
    np.testing.assert_allclose(bars["close"], goog_bars["close"].iloc[:30], rtol=0, atol=1e-9)


def test_decimal_point_in_a_decimal_comma_file_is_refused(tmp_path):
    path = _write(tmp_path / "p.csv", "date;A;B\n2021-03-01;1,5;2\n2021-03-02;1.5;3\n2021-03-03;1.234,5;3\n")
    with pytest.raises(DataError) as err:
        qpo.load_price_file(path)
    msg = str(err.value)
    assert "read as semicolon-separated, with decimal commas" in msg
    assert "'A' row 2 '1.5'" in msg and "'A' row 3 '1.234,5'" in msg and "decimal point" in msg


def test_decimal_comma_in_a_comma_separated_file_is_refused(tmp_path):
    path = _write(tmp_path / "p.csv", 'date,A\n2021-03-01,1.5\n2021-03-02,"27,33"\n')
    with pytest.raises(DataError, match=r"'A' row 2 '27,33'; decimal commas are read only in semicolon-separated"):
        qpo.load_price_file(path)


def test_header_mixing_separators_is_refused(tmp_path):
    path = _write(tmp_path / "p.csv", "date;A,B\n2021-03-01;1,2\n")
    with pytest.raises(DataError, match="mixes comma and semicolon separators"):
        qpo.load_price_file(path)


# ------------------------------------------------------------------ defect 3: date formats
def test_mixed_date_formats_name_two_rows(tmp_path):
    path = _write(tmp_path / "p.csv", "date,A\n2020-01-02,1\n2020-01-03,2\n01/06/2020,3\n")
    with pytest.raises(DataError) as err:
        qpo.load_price_file(path)
    assert "mixes date formats: row 1 '2020-01-02' and row 3 '01/06/2020'" in str(err.value)


def test_day_first_dates_are_read_when_unambiguous(tmp_path):
    path = _write(tmp_path / "p.csv", "date,A\n02/03/2021,1\n15/03/2021,2\n")
    assert list(qpo.load_price_file(path).index) == [pd.Timestamp("2021-03-02"), pd.Timestamp("2021-03-15")]


def test_unparseable_dates_name_examples(tmp_path):
    path = _write(tmp_path / "p.csv", "date,A\n2020-01-02,1\nsoon,2\n2020-01-06,3\nlater,4\n")
    with pytest.raises(DataError, match=r"holds text that is not a date: row 2 'soon', row 4 'later'"):
        qpo.load_price_file(path)
    missing = _write(tmp_path / "m.csv", "date,A\n2020-01-02,1\n,2\n")
    with pytest.raises(DataError, match=r"rows without a date: row 2"):
        qpo.load_price_file(missing)


# ------------------------------------------------------------------ defect 4: rows and cells
def test_newest_first_is_reversed_but_shuffled_and_repeated_dates_are_refused(tmp_path):
    path = tmp_path / "p.csv"
    PANEL.iloc[::-1].to_csv(path)
    _same(qpo.load_price_file(path))
    PANEL.iloc[[0, 2, 1, 3]].to_csv(path)
    with pytest.raises(DataError, match=r"dates out of order: row 3 \(2021-03-02\) comes after row 2 \(2021-03-03\)"):
        qpo.load_price_file(path)
    PANEL.iloc[[0, 1, 1, 2]].to_csv(path)
    with pytest.raises(DataError, match=r"1 date\(s\) appear more than once, e.g. 2021-03-02 in rows 2, 3"):
        qpo.load_price_file(path)


def test_text_in_price_columns_names_column_row_and_text(tmp_path):
    frame = PANEL.astype(object)
    frame.iloc[1, 0] = "n.a."
    frame.iloc[3, 1] = "ask"
    path = tmp_path / "p.csv"
    frame.to_csv(path)
    with pytest.raises(DataError) as err:
        qpo.load_price_file(path)
    assert "text where numbers belong in AAPL, MSFT: 'AAPL' row 2 'n.a.', 'MSFT' row 4 'ask'" in str(err.value)
    path = tmp_path / "p.parquet"
    frame.astype(str).to_parquet(path)  # string columns: numbers and text as text
    with pytest.raises(DataError, match="'AAPL' row 2 'n.a.'"):
        qpo.load_price_file(path)


def test_missing_values_and_empty_columns_load_as_nan(tmp_path):
    path = _write(tmp_path / "p.csv", "date,A,B,\n2021-03-01,1.5,,\n2021-03-02,,,\n")
    loaded = qpo.load_price_file(path)  # the trailing separator's empty column is dropped
    assert list(loaded.columns) == ["A", "B"] and (loaded.dtypes == np.float64).all()
    assert loaded["A"].isna().tolist() == [False, True] and loaded["B"].isna().all()


def test_one_row_loads_and_zero_rows_are_refused(tmp_path):
    one = tmp_path / "one.parquet"
    PANEL.iloc[:1].to_parquet(one)
    _same(qpo.load_price_file(one), PANEL.iloc[:1])
    zero = tmp_path / "zero.parquet"
    PANEL.iloc[:0].to_parquet(zero)
    with pytest.raises(DataError, match=r"zero.parquet has no rows, only the columns date, AAPL, MSFT"):
        qpo.load_price_file(zero)
    empty = _write(tmp_path / "empty.csv", "")
    with pytest.raises(DataError, match="empty.csv is empty"):
        qpo.load_price_file(empty)


def test_duplicate_and_unnamed_columns_are_refused(tmp_path):
    with pytest.raises(DataError, match="columns named twice: A"):
        qpo.load_price_file(_write(tmp_path / "d.csv", "date,A,A\n2021-03-01,1,2\n"))
    with pytest.raises(DataError, match="have no name in the header"):
        qpo.load_price_file(_write(tmp_path / "u.csv", "date,A,\n2021-03-01,1,2\n"))


def test_a_date_column_of_any_name_or_time_zone(tmp_path):
    path = _write(tmp_path / "p.csv", "Datum,A\n2021-03-01 00:00:00-05:00,1\n2021-03-02 00:00:00-05:00,2\n")
    loaded = qpo.load_price_file(path)
    assert list(loaded.index) == [pd.Timestamp("2021-03-01"), pd.Timestamp("2021-03-02")] and loaded.index.tz is None


def test_a_corrupt_parquet_file_is_a_data_error(tmp_path):
    path = _write(tmp_path / "p.parquet", "not parquet at all")
    with pytest.raises(DataError, match="could not read p.parquet as Parquet"):
        qpo.load_price_file(path)


# ------------------------------------------------------------------ defect 5: short messages
def test_long_lists_are_cut(tmp_path):
    wide = pd.DataFrame(np.ones((2, 80)), columns=[f"TICKER_WITH_A_LONG_NAME_{i}" for i in range(80)])
    path = tmp_path / "wide.parquet"
    wide.to_parquet(path, index=False)
    with pytest.raises(DataError) as err:
        qpo.load_price_file(path)
    assert len(str(err.value)) <= 300 and "... and 74 more" in str(err.value)
    bad = pd.DataFrame({"date": [f"x{i}" * 40 for i in range(50)], "A": 1.0})
    bad.to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(DataError) as err:
        qpo.load_price_file(tmp_path / "bad.csv")
    assert len(str(err.value)) <= 300
