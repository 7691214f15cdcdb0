"""Bad paths and long values give short, clear DataErrors; a ';' file's hint says what is wrong."""
from __future__ import annotations

import subprocess
import sys

import pandas as pd
import pytest

import qpo
from qpo.data import check_as_of
from qpo.errors import DataError, InvalidValueError

LONG = "x" * 10_000


@pytest.mark.parametrize("name", ["a" * 10_000 + ".csv", "a/" * 3_000 + "x.csv", "b" * 300 + ".parquet"])
def test_a_path_the_system_cannot_look_up_is_a_short_data_error(tmp_path, name):
    path = tmp_path / name
    for call in (qpo.load_prices, qpo.load_ohlcv):
        with pytest.raises(DataError) as err:
            call(path)
        text = str(err.value)
        assert text.startswith("cannot open the file ") and "File name too long" in text, text
        assert f"({len(str(path))} characters)" in text and len(text) <= 300


def test_a_too_long_path_through_the_cli_is_one_line(tmp_path, qpo_home):
    path = tmp_path / ("a" * 10_000 + ".csv")
    proc = subprocess.run([sys.executable, "-m", "qpo.cli", "validate", str(path)], capture_output=True, text=True,
                          timeout=300)
    assert "Traceback" not in proc.stderr and proc.returncode == 2, proc.stderr[-2000:]
    (line,) = [x for x in proc.stderr.splitlines() if x.startswith("qpo: error:")]
    assert "cannot open the file" in line and "File name too long" in line and len(line) < 320


def test_a_missing_file_is_still_file_not_found(tmp_path):
    with pytest.raises(DataError, match=r"^file not found: .*nope\.csv$"):
        qpo.load_prices(tmp_path / "nope.csv")


def test_a_long_as_of_is_not_echoed_whole():
    index = pd.date_range("2024-01-01", periods=10, freq="B")
    with pytest.raises(DataError) as err:
        check_as_of(index, LONG)
    text = str(err.value)
    assert text.startswith("as_of 'xxxx") and "(10000 characters) is not a date (use YYYY-MM-DD)" in text
    assert len(text) < 200


def test_other_long_values_are_not_echoed_whole():
    from qpo.data.alphavantage import AlphaVantageClient
    from qpo.data.calendar import infer_frequency
    from qpo.data.loaders import as_date

    with pytest.raises(DataError) as err:
        as_date(LONG, "start")
    assert len(str(err.value)) < 200
    with pytest.raises(DataError) as err:
        infer_frequency(pd.date_range("2024-01-01", periods=10, freq="B"), LONG)
    assert len(str(err.value)) < 300
    client = AlphaVantageClient(api_key="demo", base_url="http://127.0.0.1:9")
    with pytest.raises(InvalidValueError) as err:
        client.daily_adjusted(LONG)
    assert len(str(err.value)) < 200
    with pytest.raises(InvalidValueError) as err:
        client.daily_adjusted("IBM", outputsize=LONG)
    assert len(str(err.value)) < 200


def test_a_semicolon_file_with_thousands_separators_says_so(tmp_path):
    path = tmp_path / "eu.csv"
    path.write_text("date;AAA;BBB\n2024-01-02;1.234,5;10\n2024-01-03;1.240,0;11\n")
    with pytest.raises(DataError) as err:
        qpo.load_prices(path)
    text = str(err.value)
    assert "(read as semicolon-separated)" in text and "'AAA' row 1 '1.234,5'" in text
    assert "a thousands separator is not read (write 1234,5 or 1234.5, not 1.234,5)" in text
    assert "read only in semicolon-separated files" not in text and len(text) <= 300
    path.write_text("date;AAA;BBB\n2024-01-02;1234,5;10\n2024-01-03;1240,0;11\n")  # the way that is read
    assert qpo.load_prices(path)["AAA"].tolist() == [1234.5, 1240.0]


def test_a_comma_file_with_decimal_commas_keeps_its_hint(tmp_path):
    path = tmp_path / "c.csv"
    path.write_text('date,AAA\n2024-01-02,"1,5"\n2024-01-03,"2,5"\n')
    with pytest.raises(DataError, match="decimal commas are read only in semicolon-separated files"):
        qpo.load_prices(path)
