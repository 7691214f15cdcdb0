"""`qpo portfolio transactions NAME [--import FILE]`: the ledger listed, and CSV imports that are all
or nothing, refuse overselling and overdrawing with the numbers, and name bad rows."""
from __future__ import annotations

import csv

import pytest

from tests.test_cli.conftest import ADMIN, ANA, BEN, RITA

HEADER = ["kind", "trade_date", "ticker", "quantity", "price", "fees", "amount", "note"]


def write_csv(path, rows, header=HEADER):
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


def test_the_ledger_lists_what_the_portfolio_was_opened_with(book):
    doc = book.ok("portfolio", "transactions", "Harper", "--json", actor=ANA).json
    assert [(t["kind"], t["ticker"], t["quantity"], t["amount"]) for t in doc["transactions"]] == [
        ("transfer_in", "AAPL", 100.0, None), ("transfer_in", "KO", 50.0, None), ("deposit", None, None, 10_000.0)]
    assert doc["holdings"] == {"AAPL": 100.0, "KO": 50.0} and doc["cash"] == 10_000.0 and doc["imported"] is None
    human = book.ok("portfolio", "transactions", "Harper", actor=RITA).out
    assert "10,000.00" in human and human.rstrip().endswith("holds 100 AAPL, 50 KO; cash 10,000.00")


def test_an_import_appends_every_row_and_the_cash_follows_the_rules(book, tmp_path):
    note = "rebalance per 'client' call 🙂; DROP TABLE transactions;--" + "x" * 10_000
    path = write_csv(tmp_path / "l.csv", [
        ["buy", "2022-12-05", "MSFT", "10", "250.5", "1.25", "", note],
        ["sell", "2022-12-06", "AAPL", "20", "130", "0.5", "", ""],
        ["dividend", "2022-12-07", "KO", "", "", "", "22.75", ""],
        ["fee", "2022-12-08", "", "", "", "", "5", "custody"],
        ["withdrawal", "2022-12-09", "", "", "", "", "1000", ""],
    ])
    doc = book.ok("portfolio", "transactions", "Harper", "--import", path, "--json", actor=ANA).json
    cash = 10_000 - (10 * 250.5 + 1.25) + (20 * 130 - 0.5) + 22.75 - 5 - 1000
    assert doc["cash"] == pytest.approx(cash, abs=1e-9)
    assert doc["holdings"] == {"AAPL": 80.0, "KO": 50.0, "MSFT": 10.0}
    assert len(doc["imported"]) == 5 and len(doc["transactions"]) == 8
    assert doc["transactions"][3]["note"] == note  # verbatim, 10,000+ characters, quotes, emoji and SQL
    assert doc["transactions"][-1]["cash_after"] == pytest.approx(cash, abs=1e-6)
    assert {t["created_by"] for t in doc["transactions"][3:]} == {ANA}
    trail = book.ok("audit", "--portfolio", "Harper", "--json", actor=ANA).json["audit"]
    assert trail[-1]["action"] == "import" and trail[-1]["actor"] == ANA
    assert trail[-1]["after"]["cash"] == pytest.approx(cash) and trail[-1]["before"]["cash"] == 10_000.0
    human = book.ok("portfolio", "transactions", "Harper", actor=ADMIN).out
    assert f"cash {cash:,.2f}" in human and "250.50" in human  # amounts with separators
    assert "10 MSFT" in human.splitlines()[-1]


def test_selling_more_than_held_is_refused_with_the_numbers(book, tmp_path):
    path = write_csv(tmp_path / "l.csv", [["deposit", "2022-12-05", "", "", "", "", "500", ""],
                                          ["sell", "2022-12-28", "AAPL", "120", "130", "", "", ""]])
    r = book.refused("portfolio", "transactions", "Harper", "--import", path, actor=ANA)
    assert r.json["error"] == "sell 120 AAPL at 130.00 on 2022-12-28: the portfolio holds 100 AAPL then; nothing written"
    # a sale dated before the shares came in breaks the past
    path = write_csv(tmp_path / "p.csv", [["sell", "2022-11-30", "KO", "10", "60", "", "", ""]])
    r = book.refused("portfolio", "transactions", "Harper", "--import", path, actor=ANA)
    assert "sell 10 KO at 60.00 on 2022-11-30: the portfolio holds 0 KO then" in r.json["error"]


def test_spending_cash_the_portfolio_lacks_is_refused_with_the_numbers(book, tmp_path):
    path = write_csv(tmp_path / "l.csv", [["buy", "2022-12-05", "MSFT", "100", "250", "2", "", ""]])
    r = book.refused("portfolio", "transactions", "Tech", "--import", path, actor=BEN)
    assert r.json["error"] == ("buy 100 MSFT at 250.00 plus 2.00 cost on 2022-12-05 needs 25,002.00 cash: the portfolio "
                               "has 25,000.00 then; nothing written (deposit cash first, or sell)")


def test_bad_rows_are_named_by_row_and_nothing_is_written(book, tmp_path):
    path = write_csv(tmp_path / "l.csv", [
        ["deposit", "2022-12-05", "", "", "", "", "100", ""],
        ["buy", "2022-12-05", "ZZZZ", "1", "10", "", "", ""],
        ["buy", "2022-12-05", "KO", "abc", "10", "", "", ""],
        ["steal", "2022-12-05", "KO", "1", "10", "", "", ""],
        ["buy", "2022-13-45", "KO", "-3", "10", "", "", ""],
    ])
    r = book.refused("portfolio", "transactions", "Harper", "--import", path, actor=ANA)
    e = r.json["error"]
    assert e.startswith("5 transaction(s) for 'Harper' not written: unknown ticker (not a ticker of the bundled "
                        "panel or the store (`qpo data ingest` adds prices)): row 2 (ZZZZ)")
    assert "row 3: quantity (shares) must be a finite number > 0, got 'abc'" in e
    assert "row 4: transaction kind must be one of buy, sell" in e and e.endswith(" [...]")  # cut at 300 characters


@pytest.mark.parametrize("cells, message", [
    (["deposit", "01/02/2022", "", "", "", "", "100", ""], "trade date must be written YYYY-MM-DD (e.g. 2022-12-28), "
                                                          "got '01/02/2022'"),
    (["deposit", "01.02.2022", "", "", "", "", "100", ""], "trade date must be written YYYY-MM-DD (e.g. 2022-12-28), got '01.02.2022'"),
    (["deposit", "today", "", "", "", "", "100", ""], "trade date must be written YYYY-MM-DD (e.g. 2022-12-28), got 'today'"),
    (["deposit", "2022", "", "", "", "", "100", ""], "trade date must be written YYYY-MM-DD (e.g. 2022-12-28), got '2022'"),
    (["deposit", "Dec 5 2022", "", "", "", "", "100", ""], "trade date must be written YYYY-MM-DD (e.g. 2022-12-28), got 'Dec 5 2022'"),
    (["buy", "2022-12-05", "KO", "1_0", "50", "", "", ""], "quantity (shares) must be a finite number > 0, got '1_0'"),
    (["buy", "2022-12-05", "KO", "1", "50", "nan", "", ""], "cost (fees) must be a finite number >= 0, got 'nan'"),
    (["buy", "2022-12-05", "KO", "1", "NaN", "", "", ""], "price must be a finite number > 0, got 'NaN'"),
    (["buy", "2022-12-05", "KO", "1e-300", "50", "", "", ""], "quantity (shares) 1e-300 is below 1e-06"),
])
def test_dates_not_written_iso_and_numbers_python_alone_reads_are_refused(book, tmp_path, cells, message):
    """01/02/2022 was stored as 2 January (1 February to most of the world), 'today' as whichever day
    the import ran, '2022' as 1 January; '1_0' became 10 shares, a 'nan' fee 0, 1e-300 shares a holding
    worth nothing that `portfolio show` listed at 100 %."""
    path = write_csv(tmp_path / "l.csv", [["deposit", "2022-12-01", "", "", "", "", "1000", ""], cells])
    r = book.refused("portfolio", "transactions", "Harper", "--import", path, actor=ANA)
    assert f"row 2: {message}" in r.json["error"], r.json["error"]


def test_opening_holdings_below_a_millionth_of_a_share_are_refused(book, tmp_path):
    (tmp_path / "h.csv").write_text("ticker,shares\nAAPL,1e-300\n")
    r = book.refused("portfolio", "create", "Tiny", "--client", "c", "--advisor", ANA, "--holdings", tmp_path / "h.csv",
                     actor=ADMIN)
    assert "shares must lie from 1e-06 to 1e+12: row 1 ('1e-300')" in r.json["error"]
    r = book.refused("portfolio", "create", "Day", "--client", "c", "--advisor", ANA, "--cash", "5", "--date", "01/02/2020",
                     actor=ADMIN)
    assert "trade date must be written YYYY-MM-DD" in r.json["error"]


@pytest.mark.parametrize("content, message", [
    (None, "is not a file"),
    ("", "is empty: it needs a header line (kind,trade_date,ticker,quantity,price,fees,amount,note)"),
    ("kind,trade_date,ticker,quantity,price\n", "has a header and no transactions"),
    ("kind,trade_date,shares\nbuy,2022-12-05,3\n", "unknown column(s) 'shares'"),
    ("trade_date,ticker\n2022-12-05,KO\n", "missing kind"),
    ("kind,kind,trade_date\nbuy,buy,2022-12-05\n", "kind given twice"),
    ("kind,trade_date,amount\ndeposit,2022-12-05\n", "row 1 (line 2): 2 field(s) for 3 column(s)"),
    (b"kind,trade_date,note\ndeposit,2022-12-05,caf\xe9\n", "is not UTF-8 text"),
    ("kind,trade_date,amount\ndeposit,2022-12-05,1\x00\n", "holds a NUL character (line 2)"),
])
def test_a_broken_ledger_file_is_refused_before_the_store_is_touched(book, tmp_path, content, message):
    path = tmp_path / "ledger.csv"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content, encoding="utf-8")
    r = book.refused("portfolio", "transactions", "Harper", "--import", path, actor=ANA)
    assert message in r.json["error"] and r.json["kind"] == "DataError"


def test_only_the_portfolios_advisor_or_an_admin_touches_its_ledger(book, tmp_path):
    path = write_csv(tmp_path / "l.csv", [["deposit", "2022-12-05", "", "", "", "", "100", ""]])
    r = book.refused("portfolio", "transactions", "Harper", "--import", path, actor=BEN, code=4)
    assert r.json["error"] == ("ben@example.com (advisor) may not add transactions to portfolio 'Harper': it belongs "
                               "to another advisor's client")
    r = book.refused("portfolio", "transactions", "Harper", "--import", path, actor=RITA, code=4)
    assert "a researcher reads portfolios and changes none" in r.json["error"]
    r = book.refused("portfolio", "transactions", "Harper", actor=BEN, code=4)
    assert r.json["error"].startswith("ben@example.com (advisor) may not see portfolio 'Harper'")
    book.refused("portfolio", "transactions", "Harper", code=4)  # no actor at all
    r = book.refused("portfolio", "transactions", "Nope", actor=ADMIN)
    assert r.json["error"] == "no portfolio named 'Nope'; `qpo portfolio list` shows the ones you may see"
    assert book.ok("portfolio", "transactions", "Harper", "--import", path, "--json", actor=ADMIN).json["cash"] == 10_100


def test_an_import_that_breaks_the_ledger_twice_names_every_broken_row(book, tmp_path):
    """Harper holds 100 AAPL, 50 KO and 10,000 cash: row 2 oversells KO, row 3 overspends (after
    row 1's purchase), row 4 oversells AAPL; row 1 alone is fine. Each is named, nothing written."""
    path = write_csv(tmp_path / "l.csv", [
        ["buy", "2022-12-05", "KO", "100", "60", "", "", ""],
        ["sell", "2022-12-06", "KO", "500", "60", "", "", ""],
        ["buy", "2022-12-07", "AAPL", "100", "130", "", "", ""],
        ["sell", "2022-12-08", "AAPL", "150", "130", "", "", ""],
    ])
    r = book.refused("portfolio", "transactions", "Harper", "--import", path, actor=ANA)
    assert r.json["error"] == (
        "3 entries break the ledger, nothing written: row 2: sell 500 KO at 60.00 on 2022-12-06: the portfolio "
        "holds 150 KO then; row 3: buy 100 AAPL at 130.00 on 2022-12-07 needs 13,000.00 cash: the portfolio has "
        "4,000.00 then; row 4: sell 150 AAPL at 130.00 on 2022-12-08: the portfolio holds 100 AAPL then")


def test_a_refused_row_after_blank_lines_names_its_line_in_the_file(book, tmp_path):
    """Blank lines are skipped: the 2nd transaction on line 5 was called "row 2" with nothing to find it by."""
    path = tmp_path / "l.csv"
    path.write_text("kind,trade_date,amount\ndeposit,2022-12-28,5\n\n\ndeposit,2022-12-28,-5\n")
    r = book.refused("portfolio", "transactions", "Harper", "--import", path, actor=ANA)
    assert "row 2 (line 5): amount must be a finite number > 0" in r.json["error"], r.json["error"]
