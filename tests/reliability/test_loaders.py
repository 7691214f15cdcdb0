"""Files in, nothing wrong out: the faults a user's price file can carry, tried through the paths
the workbench takes (qpo.validate_source, as the pipelines do; ``qpo pipeline run``; ``qpo validate``).

| fault                                         | what the workbench does                              |
|-----------------------------------------------|------------------------------------------------------|
| Parquet/CSV written by pandas (dates = index) | reads the index pandas wrote: the real dates         |
| no dates anywhere / dates as numbers          | refused, naming the columns seen / the numbers       |
| byte-order mark, ``;`` + decimal commas       | read as such (``frame.attrs["qpo_read"]`` says how)  |
| decimal point in a decimal-comma file         | refused, naming column, row and text                 |
| mixed or unreadable date formats              | refused, naming two example rows                     |
| repeated / shuffled dates                     | refused, naming the rows (newest-first is reversed)  |
| text in a price column                        | refused, naming column, row and text                 |
| missing values, all-NaN column, one row       | loaded as NaN; validation judges them                |
| zero rows, empty file, corrupt Parquet        | refused, saying which                                |
| rows wider than the header (decimal commas in | refused, naming the row, its fields against the      |
| a comma-separated file, a trailing separator) | header's and the likely cause                        |
| CSV written by ``to_csv(index_label=False)``  | read: the extra first field of each row is the date  |
"""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

import qpo
from qpo.data import check_as_of
from qpo.errors import DataError


def _with_text(px: pd.DataFrame, row: int, text: str) -> pd.DataFrame:
    out = px.astype(object)
    out.iloc[row, :] = text
    return out


def _decimal_commas(p, px: pd.DataFrame, date: str = "Date", sep: str = ",") -> None:
    """A spreadsheet's export: decimal commas, the separator not quoted around them."""
    rows = [sep.join([f"{d:%Y-%m-%d}", *(f"{v:.4f}".replace(".", ",") for v in r)]) for d, r in zip(px.index, px.to_numpy())]
    p.write_text("\n".join([sep.join([date, *px.columns]), *rows]) + "\n")


def _trailing_separator(p, px: pd.DataFrame) -> None:
    header, *rows = px.to_csv().splitlines()
    p.write_text("\n".join([header, *(r + "," for r in rows)]) + "\n")


FAULTS = {
    "pandas parquet": (lambda p, px: px.to_parquet(p), ".parquet", None),
    "pandas csv, unnamed index": (lambda p, px: px.rename_axis(None).to_csv(p), ".csv", None),
    "BOM + ; + decimal commas": (lambda p, px: p.write_bytes(px.to_csv(sep=";", decimal=",").encode("utf-8-sig")), ".csv",
                                 None),
    "newest first": (lambda p, px: px.iloc[::-1].to_csv(p), ".csv", None),
    "no dates": (lambda p, px: px.to_parquet(p, index=False), ".parquet", r"no dates found; columns seen: KO, PEP"),
    "epoch dates": (lambda p, px: px.set_axis(px.index.astype("int64") // 10**9).rename_axis("date").to_csv(p), ".csv",
                    r"column 'date' holds numbers \(e.g. \d+\), not dates"),
    "mixed date formats": (lambda p, px: px.set_axis([d.strftime("%Y-%m-%d" if i % 7 else "%m/%d/%Y")
                                                      for i, d in enumerate(px.index)]).rename_axis("date").to_csv(p),
                           ".csv", r"mixes date formats: row 1 '01/04/2019' and row 2 '2019-01-07'"),
    "repeated date": (lambda p, px: pd.concat([px.iloc[:5], px.iloc[4:]]).to_parquet(p), ".parquet",
                      r"1 date\(s\) appear more than once, e.g. 2019-01-10 in rows 5, 6"),
    "text in prices": (lambda p, px: _with_text(px, 3, "n.a.").to_csv(p), ".csv",
                       r"text where numbers belong in KO, PEP: 'KO' row 4 'n.a.', 'PEP' row 4 'n.a.'"),
    "zero rows": (lambda p, px: px.iloc[:0].to_parquet(p), ".parquet", "has no rows"),
    "decimal commas, comma-separated": (_decimal_commas, ".csv",
                                        r"row 1 \(line 2\) has 5 fields but the header 3: .*decimal commas in a "
                                        r"comma-separated file \(use ';' as the separator.* or quote the numbers"),
    "trailing separator": (_trailing_separator, ".csv", r"row 1 \(line 2\) has 4 fields but the header 3: .*separator "
                                                        r"at the end of each row"),
    "decimal commas, one ticker, header 'When'": (lambda p, px: _decimal_commas(p, px[["KO"]], date="When"), ".csv",
                                                  r"row 1 \(line 2\) has 3 fields but the header 2: .*decimal commas"),
    "pandas csv, index_label=False": (lambda p, px: px.to_csv(p, index_label=False), ".csv", None),
    "pandas csv, index_label=False, ; + decimal commas": (lambda p, px: px.to_csv(p, index_label=False, sep=";",
                                                                                    decimal=","), ".csv", None),
}


@pytest.fixture(scope="module")
def panel(sp500_clean) -> pd.DataFrame:
    return sp500_clean.loc["2019-01-04":"2019-03-29", ["KO", "PEP"]]


@pytest.mark.parametrize("fault", list(FAULTS))
def test_a_file_fault_gives_the_right_panel_or_a_named_refusal(tmp_path, panel, fault):
    write, suffix, refusal = FAULTS[fault]
    path = tmp_path / f"prices{suffix}"
    write(path, panel)
    if refusal is None:
        loaded = qpo.load_price_file(path)
        pd.testing.assert_frame_equal(loaded, panel, check_freq=False, check_index_type=False, rtol=0, atol=1e-12)
        assert check_as_of(loaded.index) == pd.Timestamp("2019-03-29")  # the report's date: never 1970-01-01
    else:
        with pytest.raises(DataError, match=refusal) as err:
            qpo.load_price_file(path)
        assert len(str(err.value)) <= 300


def test_the_pipelines_path_reads_a_pandas_parquet_file(tmp_path, panel):
    """validate_source (what every pipeline runs first) on ``prices.to_parquet(path)``: before, the
    KO column became the dates (nanoseconds since 1970) and PEP the only ticker."""
    path = tmp_path / "prices.parquet"
    panel.to_parquet(path)
    report, prices = qpo.validate_source(str(path))
    assert report.success, str(report)
    assert list(prices.columns) == ["KO", "PEP"] and prices.index[0] == pd.Timestamp("2019-01-04")
    np.testing.assert_allclose(prices.to_numpy(), panel.to_numpy(), rtol=0, atol=1e-12)


def test_a_pipeline_refuses_an_undated_file_before_anything_is_written(qpo_home, tmp_path, panel):
    from qpo.cli import main
    from qpo.workbench.pipelines import run_pipeline

    assert main(["db", "seed"]) == 0  # the store a pipeline reads (``make run`` seeds it the same way)
    path = tmp_path / "undated.parquet"
    panel.to_parquet(path, index=False)
    run = run_pipeline("daily-report", {"prices_source": str(path)})
    assert run.status == "INVALID_DATA" and run.run_id is None
    assert "no dates found; columns seen: KO, PEP" in run.error
    assert not (qpo_home / "runs").exists() and not (qpo_home / "mlflow.db").exists()


def test_cli_validate_names_two_rows_of_mixed_dates(tmp_path):
    path = tmp_path / "mixed.csv"
    path.write_text("date;KO;PEP\n2019-01-04;1,5;2,5\n07/01/2019;1,6;2,4\n", encoding="utf-8-sig")
    proc = subprocess.run([sys.executable, "-m", "qpo.cli", "validate", str(path)], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    (line,) = proc.stderr.strip().splitlines()
    assert line == ("qpo: error: mixed.csv (read as UTF-8 with a byte-order mark, semicolon-separated, with decimal "
                    "commas): column 'date' mixes date formats: row 1 '2019-01-04' and row 2 '07/01/2019' (1 row(s) "
                    "differ from the first); write every date one way, e.g. YYYY-MM-DD")


@pytest.mark.parametrize("zone", ["Europe/Berlin", "America/New_York", "UTC"])
def test_a_zoned_index_written_by_to_csv_keeps_its_dates_across_daylight_saving(tmp_path, zone):
    """A year of dates in a zone with daylight saving is written with two UTC offsets; converting
    them to UTC moved every winter midnight to the day before (weekend dates: 365 a year)."""
    px = qpo.load_prices("sp500").loc["2019"].iloc[:, :3]
    zoned = px.copy()
    zoned.index = zoned.index.tz_localize(zone)
    zoned.to_csv(tmp_path / "z.csv")
    got = qpo.load_prices(tmp_path / "z.csv")
    pd.testing.assert_index_equal(got.index, px.index, check_names=False, exact=False)
    assert qpo.data.infer_frequency(got.index).periods_per_year == 252


def test_dotted_dates_are_day_first(tmp_path):
    """01.02.2020 is 1 February where dates are written with dots (and ; and decimal commas)."""
    months = pd.date_range("2020-01-01", periods=36, freq="MS")
    (tmp_path / "eu.csv").write_text("Datum;AAA\n" + "".join(f"{d:%d.%m.%Y};{100 + i},5\n"
                                                            for i, d in enumerate(months)))
    got = qpo.load_prices(tmp_path / "eu.csv")
    assert list(got.index) == list(months) and got["AAA"].iloc[0] == 100.5
    assert qpo.data.infer_frequency(got.index).periods_per_year == 12


def test_an_integer_of_hundreds_of_digits_is_an_infinite_price_not_a_traceback(tmp_path):
    (tmp_path / "m.csv").write_text(f"date,AAA,BBB\n2020-01-01,1,2\n2020-01-02,{'9' * 401},3\n2020-01-03,2,4\n")
    got = qpo.load_prices(tmp_path / "m.csv")
    assert np.isinf(got.loc["2020-01-02", "AAA"]) and got.loc["2020-01-02", "BBB"] == 3.0
    report = qpo.validation.validate_prices(got)
    assert not report.success and any("AAA" in str(f.examples) and "2020-01-02" in str(f.examples)
                                      for f in report.failures)


def test_month_start_dates_written_day_first_with_slashes_are_read_day_first(tmp_path):
    """01/02/2010 is 1 February in a file whose dates, read month-first, would be 1 to 12 January of
    each year; month-first files and short daily ones keep the month-first reading."""
    idx = pd.date_range("2010-01-01", "2020-12-01", freq="MS")
    frame = pd.DataFrame({"A": np.linspace(10, 20, len(idx)), "B": np.linspace(5, 9, len(idx))}, index=idx)
    frame.index.name = "Date"
    frame.to_csv(tmp_path / "dmy.csv", date_format="%d/%m/%Y")
    frame.to_csv(tmp_path / "mdy.csv", date_format="%m/%d/%Y")
    for name in ("dmy.csv", "mdy.csv"):
        got = qpo.load_prices(tmp_path / name)
        assert list(got.index) == list(idx) and np.array_equal(got.to_numpy(), frame.to_numpy()), name
        assert qpo.data.infer_frequency(got.index).periods_per_year == 12
    days = pd.bdate_range("2020-03-02", "2020-03-12")
    pd.DataFrame({"A": np.arange(1.0, len(days) + 1)}, index=days).to_csv(tmp_path / "d.csv", date_format="%m/%d/%Y")
    assert list(qpo.load_prices(tmp_path / "d.csv").index) == list(days)


def test_an_end_date_keeps_its_close_whatever_time_the_close_is_stamped(tmp_path):
    """``end`` is inclusive: a file of closes stamped 16:00 lost the end date's bar (and
    ``start=end`` gave no row); a backtest's ``end`` lost it too."""
    prices = qpo.load_prices("sp500")[["AAPL", "MSFT", "JNJ"]].loc["2020"]
    stamped = prices.set_axis(prices.index + pd.Timedelta(hours=16))
    stamped.to_csv(tmp_path / "closes.csv")
    got = qpo.load_prices(tmp_path / "closes.csv", end="2020-12-31")
    assert got.index[-1] == pd.Timestamp("2020-12-31 16:00") and len(got) == len(prices)
    assert len(qpo.load_prices(tmp_path / "closes.csv", start="2020-12-31", end="2020-12-31")) == 1
    assert qpo.load_prices(tmp_path / "closes.csv", end="2020-12-31 12:00").index[-1] == pd.Timestamp("2020-12-30 16:00")
    result = qpo.backtest(stamped, "min_variance", window=60, end="2020-06-30")
    assert result.equity.index[-1] == pd.Timestamp("2020-06-30 16:00")


@pytest.mark.parametrize("suffix", ["csv", "parquet"])
def test_a_long_file_of_date_ticker_price_is_pivoted(tmp_path, suffix):
    """`Date,Symbol,Close` (one row per date and ticker, the shape databases export) was refused
    with "text where numbers belong in ticker"."""
    wide = qpo.load_prices("sp500")[["AAPL", "MSFT", "JNJ"]].loc["2020"]
    long = wide.stack().rename("Close").reset_index()
    long.columns = ["Date", "Symbol", "Close"]
    path = tmp_path / f"long.{suffix}"
    long.sample(frac=1.0, random_state=1).to_csv(path, index=False) if suffix == "csv" else \
        long.sample(frac=1.0, random_state=1).to_parquet(path)  # in any row order
    got = qpo.load_prices(path)
    pd.testing.assert_frame_equal(got, wide[sorted(wide.columns)].astype("float64"), check_names=False,
                                  check_freq=False)
    assert len(qpo.load_prices(path, start="2020-06-01", end="2020-06-30")) == 22
    pd.concat([long, long.iloc[[0]]]).to_csv(tmp_path / "twice.csv", index=False)
    with pytest.raises(qpo.errors.DataError, match=r"AAPL on 2020-01-02 is given 2 times \(rows 1, 760"):
        qpo.load_prices(tmp_path / "twice.csv")
