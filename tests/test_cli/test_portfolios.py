"""`qpo portfolio create / list / show / update / delete`: the book's portfolios through the command
line, with the access rules and hostile input, on SQLite and PostgreSQL."""
from __future__ import annotations

import json

import pytest

from tests.test_cli.conftest import ADMIN, ANA, BEN, RITA

NASTY = "Smith & \"Sons\" 🦄 O'Neil'); DROP TABLE portfolios;--"


def _names(cli, actor):
    return [p["name"] for p in cli.ok("portfolio", "list", "--json", actor=actor).json["portfolios"]]


def test_create_with_cash_dates_it_at_the_panel_and_says_so(people, sp500):
    r = people.ok("portfolio", "create", "Fresh", "--client", "Client A", "--advisor", ANA, "--cash", "50000",
                  "--benchmark", "SP500", "--json", actor=ANA)
    doc = r.json
    last = str(sp500.index[-1].date())
    assert doc["created"] == "Fresh" and doc["trade_date"] == last and doc["trade_date_default"] is True
    p = doc["portfolio"]
    assert p["cash"] == 50_000 and p["total_value"] == 50_000 and p["holdings"] == [] and p["cash_weight"] == 1
    assert p["advisor_email"] == ANA and p["benchmark"] == "SP500" and p["strategy_is_default"] is True
    human = people.ok("portfolio", "create", "Fresh 2", "--client", "Client A", "--advisor", ANA, "--cash", "1234567.5",
                      actor=ADMIN).out
    assert f"dated {last} (the last date of the bundled sp500 price panel; --date to change)" in human
    assert "1,234,567.50" in human
    txs = people.ok("portfolio", "transactions", "Fresh 2", "--json", actor=ANA).json["transactions"]
    assert [(t["kind"], t["trade_date"], t["amount"]) for t in txs] == [("deposit", last, 1_234_567.5)]


def test_who_may_create_for_whom(people):
    r = people.refused("portfolio", "create", "X", "--client", "C", "--advisor", ANA, "--cash", "1", actor=BEN, code=4)
    assert r.json["error"] == f"{BEN} (advisor) may not create or move a portfolio for another advisor ('{ANA}')"
    r = people.refused("portfolio", "create", "X", "--client", "C", "--advisor", RITA, "--cash", "1", actor=ADMIN)
    assert "is a researcher; a portfolio is managed by an advisor" in r.json["error"]
    r = people.refused("portfolio", "create", "X", "--client", "C", "--advisor", ANA, "--cash", "1", actor=RITA, code=4)
    assert "researcher" in r.json["error"]
    r = people.refused("portfolio", "create", "X", "--client", "C", "--advisor", "ghost@example.com", "--cash", "1",
                       actor=ADMIN)
    assert "no user 'ghost@example.com' to manage the portfolio" in r.json["error"]
    r = people.refused("portfolio", "create", "X", "--client", "C", "--advisor", "not an email", "--cash", "1",
                       actor=ADMIN)
    assert "advisor e-mail must look like an e-mail address" in r.json["error"]


@pytest.mark.parametrize("args, message", [
    (["N" * 201, "--client", "C"], "portfolio name must be text of 1 to 200 characters without control characters, got"),
    (["Tab\tName", "--client", "C"], "with a control character"),
    (["Nul\x00Name" + "q" * 300, "--client", "C"], "(308 characters)"),
    (["Good", "--client", "C\x1b[31m"], "client name must be text"),
    (["Good", "--client", "C", "--description", "d\x00" + "q" * 300], "description must be text"),
    (["Good", "--client", "C", "--cash", "-5"], "cash -5.0 must be a positive finite amount"),
    (["Good", "--client", "C", "--cash", "nan"], "must be a positive finite amount"),
    (["Good", "--client", "C", "--date", "2022-02-30"], "trade date must be a date (YYYY-MM-DD"),
    (["Good", "--client", "C", "--benchmark", "B" * 65], "benchmark must be text of 1 to 64 characters"),
])
def test_hostile_fields_are_refused_quoting_only_their_start(people, args, message):
    argv = ["portfolio", "create", *args, "--advisor", ANA]
    if "--cash" not in args:
        argv += ["--cash", "100"]
    r = people.refused(*argv, actor=ANA)
    assert message in r.json["error"], r.json["error"]
    assert "q" * 80 not in r.json["error"] and "N" * 80 not in r.json["error"]


def test_names_round_trip_verbatim(people):
    description = NASTY + "\n" + "long text " * 1000
    people.ok("portfolio", "create", NASTY, "--client", NASTY, "--advisor", ANA, "--cash", "10",
              "--description", description, "--account", "ACC-'1'", actor=ANA)
    assert _names(people, ANA) == [NASTY]
    p = people.ok("portfolio", "show", NASTY, "--json", actor=RITA).json["portfolio"]
    assert (p["name"], p["client"], p["description"], p["account"]) == (NASTY, NASTY, description, "ACC-'1'")
    human = people.ok("portfolio", "show", NASTY, actor=ANA).out
    assert human.splitlines()[0] == f"name         {NASTY}"
    assert "long text long text" in human and "long text " * 20 not in human  # cut to a line in the table view


def test_list_shows_each_actor_what_they_may_see(book):
    assert _names(book, ANA) == ["Harper"]
    assert _names(book, BEN) == ["Tech"]
    assert _names(book, RITA) == _names(book, ADMIN) == ["Harper", "Tech"]
    rows = {p["name"]: p for p in book.ok("portfolio", "list", "--json", actor=ADMIN).json["portfolios"]}
    assert rows["Harper"]["n_holdings"] == 2 and rows["Harper"]["cash"] == 10_000 and rows["Tech"]["cash"] == 25_000
    human = book.ok("portfolio", "list", actor=ADMIN).out.splitlines()
    assert human[0].split() == ["name", "client", "advisor_email", "benchmark", "n_holdings", "cash", "description"]
    assert "25,000.00" in human[2] and "Nakamura Ventures" in human[2]
    book.refused("portfolio", "list", code=4)
    book.refused("portfolio", "list", actor="who@example.com", code=4)


def test_show_values_the_holdings_at_the_panels_last_closes(book, sp500):
    doc = book.ok("portfolio", "show", "Harper", "--json", actor=ANA).json["portfolio"]
    last = sp500.iloc[-1]
    value = {"AAPL": 100 * last["AAPL"], "KO": 50 * last["KO"]}
    total = sum(value.values()) + 10_000
    rows = {h["ticker"]: h for h in doc["holdings"]}
    for t in ("AAPL", "KO"):
        # --json rounds money to cents and other numbers to 1e-8
        assert rows[t]["last_price"] == pytest.approx(last[t], abs=5e-9)
        assert rows[t]["value"] == pytest.approx(value[t], abs=0.005)
        assert rows[t]["weight"] == pytest.approx(value[t] / total, abs=5e-9)
    assert doc["total_value"] == pytest.approx(total) and doc["cash_weight"] == pytest.approx(10_000 / total)
    assert doc["prices_as_of"] == str(sp500.index[-1].date()) and doc["open_proposals"] == []
    assert doc["ledger"]["n_transactions"] == 3 and doc["strategy"]["schema_version"] == 1
    human = book.ok("portfolio", "show", "Harper", actor=RITA).out
    assert f"{value['AAPL']:,.2f}" in human and f"total value  {total:,.2f}" in human
    assert f"{100 * value['KO'] / total:.2f}%" in human and "open proposals: none" in human
    r = book.refused("portfolio", "show", "Harper", actor=BEN, code=4)
    assert r.json["error"] == f"{BEN} (advisor) may not see portfolio 'Harper': it belongs to another advisor's client"
    r = book.refused("portfolio", "show", "harper", actor=ANA)
    assert r.json["error"] == "no portfolio named 'harper'; `qpo portfolio list` shows the ones you may see"


def test_rename_keeps_the_ledger_and_the_trail(book):
    doc = book.ok("portfolio", "update", "Harper", "--name", "Harper II", "--json", actor=ANA).json
    assert doc["portfolio"]["name"] == "Harper II" and doc["changed"] == ["name"]
    assert book.ok("portfolio", "transactions", "Harper II", "--json", actor=ANA).json["cash"] == 10_000
    trail = book.ok("audit", "--portfolio", "Harper II", "--json", actor=ANA).json["audit"]
    assert trail[-1]["action"] == "update" and (trail[-1]["before"]["name"], trail[-1]["after"]["name"]) == (
        "Harper", "Harper II")
    r = book.refused("portfolio", "update", "Harper II", "--name", "Tech", actor=ADMIN)
    assert "a portfolio named 'Tech' exists already" in r.json["error"]
    r = book.refused("portfolio", "update", "Harper II", "--name", "x" * 201, actor=ADMIN)
    assert "(201 characters)" in r.json["error"]


def test_update_changes_fields_and_the_trail_keeps_before_and_after(book):
    doc = book.ok("portfolio", "update", "Harper", "--client", NASTY, "--description", "new", "--benchmark", "SP500",
                  "--json", actor=ANA).json
    assert doc["portfolio"]["client"] == NASTY and doc["portfolio"]["benchmark"] == "SP500"
    assert doc["changed"] == ["benchmark", "client_name", "description"]
    trail = book.ok("audit", "--portfolio", "Harper", "--json", actor=ANA).json["audit"]
    assert trail[-1]["action"] == "update" and trail[-1]["before"]["client"] == "Harper Family Trust"
    assert trail[-1]["after"]["client"] == NASTY and trail[-1]["after"]["description"] == "new"
    assert book.ok("portfolio", "transactions", "Harper", "--json", actor=ANA).json["cash"] == 10_000
    r = book.refused("portfolio", "update", "Harper", "--advisor", BEN, actor=ANA, code=4)
    assert "may not create or move a portfolio for another advisor" in r.json["error"]
    r = book.refused("portfolio", "update", "Tech", "--description", "mine now", actor=ANA, code=4)
    assert r.json["error"] == f"{ANA} (advisor) may not update portfolio 'Tech': it belongs to another advisor's client"
    r = book.refused("portfolio", "update", "Tech", "--description", "x", actor=RITA, code=4)
    assert "a researcher reads portfolios and changes none" in r.json["error"]
    r = book.refused("portfolio", "update", "Harper", "--client", "x" * 201, actor=ADMIN)
    assert "(201 characters)" in r.json["error"]
    r = book.refused("portfolio", "update", "Harper", "--account", "bad\x00acct", actor=ADMIN)
    assert "account must be text" in r.json["error"]
    r = book.refused("portfolio", "update", "Harper", actor=ANA)
    assert r.json["error"].startswith("nothing to update: give --name, --client")
    r = book.refused("portfolio", "update", "Nope", "--client", "c", actor=ADMIN)
    assert r.json["error"].startswith("no portfolio named 'Nope'")
    book.ok("portfolio", "update", "Tech", "--advisor", ANA, actor=ADMIN)  # an admin moves it
    assert _names(book, ANA) == ["Harper", "Tech"] and _names(book, BEN) == []


def test_delete_is_the_owners_and_the_trail_keeps_what_was_deleted(book):
    r = book.refused("portfolio", "delete", "Harper", actor=BEN, code=4)
    assert r.json["error"] == f"{BEN} (advisor) may not delete portfolio 'Harper': it belongs to another advisor's client"
    book.refused("portfolio", "delete", "Harper", actor=RITA, code=4)
    book.refused("portfolio", "delete", "Ghost", actor=ADMIN)
    out = book.ok("portfolio", "delete", "Harper", actor=ANA).out
    assert out.strip() == ("deleted portfolio 'Harper' (3 transaction(s); it held 100 AAPL, 50 KO and 10,000.00 cash); "
                           "the audit trail keeps it")
    assert _names(book, ADMIN) == ["Tech"]
    trail = book.ok("audit", "--portfolio", "Harper", "--json", actor=ADMIN).json["audit"]
    assert trail[-1]["action"] == "delete" and trail[-1]["before"]["holdings"] == {"AAPL": 100.0, "KO": 50.0}
    doc = book.ok("portfolio", "delete", "Tech", "--json", actor=ADMIN).json
    assert doc["deleted"] == "Tech" and doc["portfolio"]["cash"] == 25_000


def test_json_output_is_one_document_even_for_text_with_line_breaks(book):
    book.ok("portfolio", "update", "Harper", "--description", "line 1\nline 2\t\"quoted\"", actor=ANA)
    r = book.ok("portfolio", "show", "Harper", "--json", actor=ANA)
    assert r.out.count("\n") == 1 and json.loads(r.out)["portfolio"]["description"] == "line 1\nline 2\t\"quoted\""


# -- holdings and strategy files --------------------------------------------------------------------
def test_create_from_a_holdings_file_opens_the_ledger_with_transfers(people, tmp_path, sp500):
    path = tmp_path / "holdings.csv"
    path.write_text("ticker,shares,price,date\nAAPL,10,120.5,2022-06-01\nKO,25.5,,\n", encoding="utf-8")
    doc = people.ok("portfolio", "create", "From file", "--client", "C", "--advisor", ANA, "--holdings", path,
                    "--json", actor=ANA).json
    last = str(sp500.index[-1].date())
    txs = people.ok("portfolio", "transactions", "From file", "--json", actor=ANA).json["transactions"]
    assert [(t["kind"], t["ticker"], t["quantity"], t["price"], t["trade_date"]) for t in txs] == [
        ("transfer_in", "AAPL", 10.0, 120.5, "2022-06-01"), ("transfer_in", "KO", 25.5, None, last)]
    rows = {h["ticker"]: h for h in doc["portfolio"]["holdings"]}
    assert rows["KO"]["value"] == pytest.approx(25.5 * sp500["KO"].iloc[-1]) and doc["portfolio"]["cash"] == 0


@pytest.mark.parametrize("content, fragments", [
    ("ticker,shares\nAAPL,10\nZZZZ,5\nQQQQ,1\n", [
        "2 problems", "unknown ticker (not in the book's price data (the bundled sp500 panel; `qpo data ingest` adds "
                      "others)): rows 2 (ZZZZ), 3 (QQQQ)"]),
    ("ticker,shares\nAAPL,10\nKO,-5\n", ["shares must be a positive number: row 2 ('-5')"]),
    ("ticker,shares\nAAPL,ten\nKO,1e999\n", ["rows 1 ('ten'), 2"]),
    ("ticker,shares\nAAPL,10\nKO,1\nAAPL,3\n", ["AAPL given more than once: rows 1, 3"]),
    ("", ["is empty"]),
    ("ticker,shares\n", ["has a header and no holdings"]),
    ("ticker,qty\nAAPL,1\n", ["qty"]),
])
def test_a_bad_holdings_file_names_its_rows_and_writes_nothing(people, tmp_path, content, fragments):
    path = tmp_path / "holdings.csv"
    path.write_text(content, encoding="utf-8")
    r = people.refused("portfolio", "create", "Bad file", "--client", "C", "--advisor", ANA, "--holdings", path,
                       actor=ANA)
    for fragment in fragments:
        assert fragment in r.json["error"], r.json["error"]
    assert _names(people, ADMIN) == []


def test_a_strategy_file_is_checked_whole_before_anything_is_written(people, tmp_path):
    from qpo.book.strategy import Strategy

    good = tmp_path / "good.json"
    spec = {"schema_version": 1, "objective": "max_sharpe", "constraints": {"max_weight": 0.3}, "rebalance_band": 0.1}
    good.write_text(json.dumps(spec), encoding="utf-8")
    doc = people.ok("portfolio", "create", "Strat", "--client", "C", "--advisor", ANA, "--cash", "100",
                    "--strategy", good, "--json", actor=ANA).json
    expected = Strategy.from_json(spec).to_json()
    assert doc["portfolio"]["strategy"] == expected and doc["portfolio"]["strategy_is_default"] is False
    assert expected["objective"] == "max_sharpe" and expected["rebalance_band"] == 0.1
    bad = tmp_path / "bad.json"
    for text, fragment in (("{objective: max_sharpe", "is not JSON: Expecting property name enclosed in double quotes "
                                                      "at line 1, column 2"),
                           (json.dumps({"schema_version": 1, "objective": "to_the_moon"}), "to_the_moon"),
                           (json.dumps({"schema_version": 1, "colour": "red"}), "colour"),
                           (json.dumps({"schema_version": 99}), "schema_version"),
                           (json.dumps({"schema_version": 1, "constraints": {"max_weight": -1}}), "max_weight"),
                           (json.dumps([1, 2]), "bad.json"),
                           ("", "is not JSON")):
        bad.write_text(text, encoding="utf-8")
        r = people.refused("portfolio", "create", "Strat 2", "--client", "C", "--advisor", ANA, "--cash", "100",
                           "--strategy", bad, actor=ANA)
        assert fragment in r.json["error"] and "bad.json" in r.json["error"], (text, r.json["error"])
        r = people.refused("portfolio", "update", "Strat", "--strategy", bad, "--client", "New", actor=ANA)
        assert fragment in r.json["error"], (text, r.json["error"])
    r = people.refused("portfolio", "create", "Strat 2", "--client", "C", "--advisor", ANA, "--cash", "100",
                       "--strategy", tmp_path / "missing.json", actor=ANA)
    assert "missing.json" in r.json["error"] and "is not a file" in r.json["error"]
    spec2 = {"schema_version": 1, "objective": "min_variance", "sector_max": 0.4}
    good.write_text(json.dumps(spec2), encoding="utf-8")
    people.ok("portfolio", "update", "Strat", "--strategy", good, actor=ANA)
    shown = people.ok("portfolio", "show", "Strat", "--json", actor=ANA).json["portfolio"]["strategy"]
    assert shown == Strategy.from_json(spec2).to_json()
    assert "sector_max" in people.ok("portfolio", "show", "Strat", actor=ANA).out


def test_show_marks_a_holding_whose_last_close_is_older_than_the_panels_date(book, sp500):
    """After a day's bars came in for AAPL only, 'Harper' shows 'holdings at the closes of
    2022-12-29' while KO's close is the 28th's, carried: the line says so, and --json gives each
    holding's price_date (before: nothing marked the older close)."""
    import pandas as pd

    from qpo.store import connect
    from qpo.store.market_data import seed_market_data, upsert_panel

    engine = connect()
    seed_market_data(engine)
    upsert_panel(engine, pd.DataFrame({"AAPL": [130.0]}, index=pd.DatetimeIndex(["2022-12-29"], name="date")))
    doc = book.ok("portfolio", "show", "Harper", "--json", actor=ANA).json["portfolio"]
    rows = {h["ticker"]: h for h in doc["holdings"]}
    assert rows["AAPL"]["price_date"] == "2022-12-29" and rows["KO"]["price_date"] == str(sp500.index[-1].date())
    assert rows["KO"]["last_price"] == pytest.approx(sp500["KO"].iloc[-1], abs=5e-9)
    human = book.ok("portfolio", "show", "Harper", actor=ANA).out
    assert f"stale: no close on 2022-12-29 for KO {sp500.index[-1].date()} (the last close carried forward" in human
