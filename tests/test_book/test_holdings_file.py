"""read_holdings_file: a client's holdings CSV read whole, or refused with every bad row named."""
from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from qpo.book.holdings_file import read_holdings_file
from qpo.errors import DataError

KNOWN = {"AAPL", "MSFT", "KO", "XOM", "JPM", "BRK.B"}


def write(tmp_path, text: str | bytes, name: str = "holdings.csv"):
    p = tmp_path / name
    if isinstance(text, bytes):
        p.write_bytes(text)
    else:
        p.write_text(text, encoding="utf-8")
    return p


def refused(tmp_path, text, known=KNOWN) -> str:
    with pytest.raises(DataError) as info:
        read_holdings_file(write(tmp_path, text), known)
    message = str(info.value)
    assert len(message) < 300, message
    assert "holdings.csv" in message  # the file is named
    return message


def test_a_full_file_reads_to_typed_columns_in_file_order(tmp_path):
    frame = read_holdings_file(write(tmp_path, "ticker,shares,price,date\nMSFT,12.5,250.10,2021-06-30\n"
                                               "AAPL,100,,\nBRK.B,3,310,\n"), KNOWN)
    assert frame.columns.tolist() == ["ticker", "shares", "price", "date"]
    assert frame["ticker"].tolist() == ["MSFT", "AAPL", "BRK.B"]
    np.testing.assert_array_equal(frame["shares"].to_numpy(), [12.5, 100.0, 3.0])
    assert frame["shares"].dtype == float and frame["price"].dtype == float
    assert frame["price"].iloc[0] == 250.10 and np.isnan(frame["price"].iloc[1]) and frame["price"].iloc[2] == 310.0
    assert pd.api.types.is_datetime64_any_dtype(frame["date"])
    assert frame["date"].iloc[0] == pd.Timestamp("2021-06-30") and frame["date"].iloc[1:].isna().all()


def test_only_ticker_and_shares_are_required_and_the_optional_columns_come_back_empty(tmp_path):
    frame = read_holdings_file(write(tmp_path, "shares,ticker\n7,KO\n"), KNOWN)
    assert frame.to_dict("list")["ticker"] == ["KO"] and frame["shares"].tolist() == [7.0]
    assert frame["price"].isna().all() and frame["date"].isna().all()
    assert frame.columns.tolist() == ["ticker", "shares", "price", "date"]


def test_bom_case_spaces_blank_lines_and_crlf_are_tolerated(tmp_path):
    text = "\ufeff Ticker , SHARES ,Price\r\n  AAPL , 10 , 150 \r\n\r\nKO,5,\r\n\r\n"
    frame = read_holdings_file(write(tmp_path, text), KNOWN)
    assert frame["ticker"].tolist() == ["AAPL", "KO"] and frame["shares"].tolist() == [10.0, 5.0]
    assert frame["price"].iloc[0] == 150.0


def test_utf16_and_semicolon_files_with_decimal_commas(tmp_path):
    p = tmp_path / "holdings.csv"
    p.write_bytes("ticker;shares;price\nAAPL;10,5;1,25\n".encode("utf-16"))
    frame = read_holdings_file(p, KNOWN)
    assert frame["shares"].tolist() == [10.5] and frame["price"].tolist() == [1.25]
    tab = read_holdings_file(write(tmp_path, "ticker\tshares\nXOM\t4\n", "tab.csv"), KNOWN)
    assert tab["ticker"].tolist() == ["XOM"] and tab["shares"].tolist() == [4.0]


def test_unknown_tickers_are_named_with_their_rows_and_a_did_you_mean(tmp_path):
    msg = refused(tmp_path, "ticker,shares\nAAPL,1\naapl2,3\nmsft,2\nZZZZ,4\n")
    assert "unknown ticker" in msg
    assert "rows 2 (aapl2, did you mean AAPL?), 3 (msft, did you mean MSFT?), 4 (ZZZZ)" in msg
    assert "did you mean AAPL2" not in msg


def test_known_tickers_none_leaves_the_check_to_the_store(tmp_path):
    frame = read_holdings_file(write(tmp_path, "ticker,shares\nNOT_IN_PANEL,1\n"), None)
    assert frame["ticker"].tolist() == ["NOT_IN_PANEL"]


@pytest.mark.parametrize("cell", ["-5", "0", "abc", "nan", "inf", "-inf", "1e400", "", "1_000", "1,000", "0x10", "10 shares"])
def test_shares_that_are_not_a_positive_finite_number_are_refused(tmp_path, cell):
    quoted = f'"{cell}"' if "," in cell else cell
    msg = refused(tmp_path, f"ticker,shares\nAAPL,10\nKO,{quoted}\n")
    assert "shares must be a positive number: row 2" in msg
    assert "row 1" not in msg.split("header): ")[1]  # the good row is not blamed


def test_every_row_problem_is_reported_together(tmp_path):
    text = ("ticker,shares,price,date\n"
            "AAPL,10,100,2022-01-03\n"    # 1 fine
            "KO,-1,,\n"                    # 2 shares
            "XOM,3,-2,\n"                  # 3 price
            "JPM,4,,2022-13-45\n"          # 4 date
            "AAPL,5,,\n")                  # 5 duplicate of row 1
    msg = refused(tmp_path, text)
    assert "5 problems" in msg and "... and" not in msg  # the duplicate names both its rows
    assert "shares must be a positive number: row 2 ('-1')" in msg
    assert "price must be a positive number or blank: row 3 ('-2')" in msg
    assert "date must be YYYY-MM-DD or blank: row 4 ('2022-13-45')" in msg
    assert "AAPL given more than once: rows 1, 5" in msg


def test_rows_with_too_many_cells_are_refused_and_missing_trailing_cells_are_blank(tmp_path):
    msg = refused(tmp_path, "ticker,shares,price\nAAPL,1\nKO,1,2,3\nXOM,1,2\nJPM,1,2,x\n")
    assert "more than 3 cells: rows 2 (4), 4 (4)" in msg and "row 1" not in msg.split("header): ")[1]
    frame = read_holdings_file(write(tmp_path, "ticker,shares,price,date,,\nAAPL,1,,,,\nKO,2\nXOM,3,4,,\n", "s.csv"),
                               KNOWN)
    assert frame["shares"].tolist() == [1.0, 2.0, 3.0] and frame["price"].iloc[2] == 4.0 and frame["price"].iloc[:2].isna().all()


def test_blank_lines_count_as_rows_as_a_spreadsheet_shows_them(tmp_path):
    msg = refused(tmp_path, "ticker,shares\nAAPL,1\n\n\nKO,0\n")
    assert "row 4 ('0')" in msg


def test_many_bad_rows_make_a_short_message_with_the_rest_counted(tmp_path):
    body = "".join(f"T{i},-{i + 1}\n" for i in range(500))
    msg = refused(tmp_path, "ticker,shares\n" + body, known=None)
    assert "500 problems" in msg
    rest = int(re.search(r"\.\.\. and (\d+) more$", msg).group(1))
    shown = len(re.findall(r"\('-\d+'\)", msg))
    assert shown >= 5 and shown + rest == 500


def test_price_zero_and_non_numeric_and_date_forms(tmp_path):
    msg = refused(tmp_path, "ticker,shares,price,date\nAAPL,1,0,03/01/2022\nKO,1,abc,yesterday\n")
    assert "price must be a positive number or blank: rows 1 ('0'), 2 ('abc')" in msg
    assert "date must be YYYY-MM-DD or blank: rows 1 ('03/01/2022'), 2 ('yesterday')" in msg


@pytest.mark.parametrize("cell", ["", "AA PL", "A" * 17, "KO\x07"])
def test_malformed_tickers(tmp_path, cell):
    msg = refused(tmp_path, f"ticker,shares\n{cell},1\n", known=None)
    assert "row 1" in msg and ("no ticker" in msg or "tickers are 1 to 16 characters" in msg)


@pytest.mark.parametrize("text, expected", [
    ("", "is empty"),
    ("\n\n  \n", "is empty"),
    ("ticker,shares\n", "has a header and no holdings"),
    ("ticker,shares\n\n,\n", "has a header and no holdings"),
    ("ticker\nAAPL\n", "no shares column"),
    ("symbol,quantity\nAAPL,1\n", "unknown columns 'symbol' (did you mean ticker?), 'quantity' (did you mean shares?)"),
    ("ticker,shares,broker\nAAPL,1,x\n", "unknown column 'broker'"),
    ("ticker,shares,Shares\nAAPL,1,2\n", "column 'shares' given twice"),
])
def test_file_level_problems(tmp_path, text, expected):
    msg = refused(tmp_path, text)
    assert expected in msg


@pytest.mark.parametrize("data, expected", [
    (b"PK\x03\x04\x14\x00\x06\x00rest of a workbook", "zip archive (an Excel .xlsx workbook?)"),
    (b"ticker,shares\nAAPL,1\x00\x00\x01\n", "not a text file"),
    (b"ticker,shares\n\xff\xfe\xfaAAPL,1\n", "not UTF-8 text"),
    (bytes(range(256)) * 4, "not a text file"),
])
def test_binary_files_are_refused(tmp_path, data, expected):
    msg = refused(tmp_path, data)
    assert expected in msg


def test_a_missing_file_and_a_directory(tmp_path):
    with pytest.raises(DataError, match="not found"):
        read_holdings_file(tmp_path / "nope.csv", KNOWN)
    with pytest.raises(DataError, match="is not a file"):
        read_holdings_file(tmp_path, KNOWN)


def test_the_frame_is_what_create_portfolio_takes(tmp_path):
    """The reader's frame opens a portfolio's ledger: one transfer_in per row at its price and date."""
    from qpo.store import Actor, add_user, connect, create_portfolio, list_transactions, session_scope

    frame = read_holdings_file(write(tmp_path, "ticker,shares,price,date\nAAPL,10,150,2021-06-30\nKO,5,,\n"), KNOWN)
    engine = connect(f"sqlite:///{tmp_path / 'qpo.db'}")
    system = Actor.system("test")
    with session_scope(engine) as s:
        add_user(s, system, "a@example.com", "Ann", "advisor")
        create_portfolio(s, system, "P", "Client", "a@example.com", holdings=frame, trade_date="2022-01-03",
                         known_tickers=KNOWN)
        ledger = list_transactions(s, system, "P")
    rows = ledger.set_index("ticker")
    assert set(rows["kind"]) == {"transfer_in"} and rows.loc["AAPL", "quantity"] == 10 and rows.loc["KO", "quantity"] == 5
    assert rows.loc["AAPL", "price"] == 150 and pd.isna(rows.loc["KO", "price"])
    assert str(pd.Timestamp(rows.loc["AAPL", "trade_date"]).date()) == "2021-06-30"
    assert str(pd.Timestamp(rows.loc["KO", "trade_date"]).date()) == "2022-01-03"


def test_every_problem_of_a_holdings_file_is_named_at_once_by_row(tmp_path):
    """Unknown tickers came first; shares beyond a trillion, a date in 2099 and a price beyond a
    trillion only on the next try, and by ticker, not by row."""
    path = tmp_path / "h.csv"
    path.write_text("ticker,shares,price,date\nAAPL,1e13,,\nZZZ,1,,\nKO,5,,2099-01-01\nMSFT,5,2e12,\nPG,1e-9,,\n")
    with pytest.raises(DataError) as info:
        read_holdings_file(path, known_tickers={"AAPL", "KO", "MSFT", "PG"})
    text = str(info.value)
    assert "5 problems" in text and "shares must lie from 1e-06 to 1e+12" in text  # rows 1 and 5
    assert "row 2 (ZZZ)" in text and "date must lie from 1900-01-01 to today: row 3 ('2099-01-01')" in text, text
