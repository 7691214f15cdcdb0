"""`qpo rebalance propose / list / show / accept / reject / check / export` on the real bundled
prices and a real solver, on SQLite and PostgreSQL: the numbers checked against the prices, the
ledger after an accept against the trades, and every refusal writes nothing."""
from __future__ import annotations

import pytest

# the services the commands call, imported directly: a missing one fails this module (never a skip)
from qpo.book import accept_rebalance, check_rebalance, propose_rebalance, reject_rebalance  # noqa: F401
from tests.test_cli.conftest import ADMIN, ANA, BEN, RITA

LONG_REASON = "client said 'no' 🙅 — \"wait\"; DROP TABLE proposals;--\n" + "because " * 1250


def _propose(cli, *args, actor=ANA):
    return cli.ok("rebalance", "propose", "Harper", *args, "--json", actor=actor).json


def _holdings(cli, name="Harper", actor=ADMIN):
    doc = cli.ok("portfolio", "transactions", name, "--json", actor=actor).json
    return doc["holdings"], doc["cash"]


def test_propose_show_accept_writes_the_trades_to_the_ledger(book, sp500):
    doc = _propose(book)
    p = doc["proposal"]
    assert doc["stored"] is True and p["status"] == "open" and isinstance(p["id"], int)
    assert p["prices_as_of"] == str(sp500.index[-1].date()) and p["portfolio"] == "Harper"
    last = sp500.iloc[-1]
    trades = p["trades"]
    assert trades, "a portfolio with 10,000 cash and two names gets trades"
    strategy = p["strategy"]
    buys = sells = 0.0
    for t in trades:
        # --json rounds money to cents and other numbers (prices) to 1e-8
        assert t["price"] == pytest.approx(last[t["ticker"]], abs=5e-9)
        assert t["notional"] == pytest.approx(t["shares"] * t["price"], abs=0.01)
        assert t["cost"] == pytest.approx(strategy["commission"] + t["notional"] * strategy["spread_bps"] / 1e4, abs=0.01)
        assert float(t["shares"]).is_integer() and t["shares"] > 0
        buys += t["notional"] if t["side"] == "buy" else 0.0
        sells += t["notional"] if t["side"] == "sell" else 0.0
    summary = p["summary"]
    assert summary["cash_before"] == pytest.approx(10_000)
    assert summary["cash_after"] == pytest.approx(10_000 - buys + sells - summary["total_cost"], abs=0.005 * (len(trades) + 2))
    assert summary["cash_after"] >= 0
    # show gives the stored proposal back, the same numbers
    shown = book.ok("rebalance", "show", p["id"], "--json", actor=RITA).json["proposal"]
    assert (shown["id"], shown["status"], shown["trades"]) == (p["id"], "open", trades)
    assert shown["summary"]["turnover"] == pytest.approx(summary["turnover"])
    human = book.ok("rebalance", "show", p["id"], actor=ANA).out
    assert f"proposal {p['id']} for 'Harper': open" in human and f"qpo rebalance accept {p['id']}" in human
    assert f"{summary['cash_before']:,.2f} -> {summary['cash_after']:,.2f}" in human
    listed = book.ok("rebalance", "list", "Harper", "--json", actor=ANA).json["proposals"]
    assert [(x["id"], x["status"], x["n_trades"]) for x in listed] == [(p["id"], "open", len(trades))]
    assert book.ok("rebalance", "list", "--json", actor=BEN).json["proposals"] == []
    opened = book.ok("portfolio", "show", "Harper", "--json", actor=ANA).json["portfolio"]["open_proposals"]
    assert [x["id"] for x in opened] == [p["id"]]
    # the open proposal keeps the portfolio from a plain delete
    r = book.refused("portfolio", "delete", "Harper", actor=ANA)
    assert f"has open proposals ({p['id']})" in r.json["error"] and "--force" in r.json["error"]
    # only its advisor (or an admin) decides
    r = book.refused("rebalance", "accept", p["id"], actor=BEN, code=4)
    assert r.json["error"].startswith(f"{BEN} (advisor) may not see portfolio 'Harper'")
    r = book.refused("rebalance", "accept", p["id"], actor=RITA, code=4)
    assert "researcher" in r.json["error"]
    before, cash = _holdings(book)
    acc = book.ok("rebalance", "accept", p["id"], "--json", actor=ANA).json
    assert acc["accepted"] == p["id"] and acc["n_trades"] == len(trades) and acc["optimization_run_id"] is not None
    expected = dict(before)
    for t in trades:
        expected[t["ticker"]] = expected.get(t["ticker"], 0.0) + (t["shares"] if t["side"] == "buy" else -t["shares"])
    after, cash_after = _holdings(book)
    assert after == {k: v for k, v in expected.items() if v} and acc["holdings"] == after
    assert cash_after == pytest.approx(summary["cash_after"], abs=0.005)  # --json: cents
    txs = book.ok("portfolio", "transactions", "Harper", "--json", actor=ANA).json["transactions"]
    assert [t["proposal_id"] for t in txs[-len(trades):]] == [p["id"]] * len(trades)
    # decided once
    r = book.refused("rebalance", "accept", p["id"], actor=ANA)
    assert f"proposal {p['id']} was accepted on" in r.json["error"] and "cannot be accepted or rejected again" in r.json["error"]
    r = book.refused("rebalance", "reject", p["id"], "--reason", "too late", actor=ADMIN)
    assert "cannot be accepted or rejected again" in r.json["error"]
    trail = book.ok("audit", "--portfolio", "Harper", "--json", actor=ANA).json["audit"]
    assert [(e["actor"], e["action"]) for e in trail[-2:]] == [(ANA, "propose"), (ANA, "accept")]
    assert book.ok("rebalance", "list", "--status", "accepted", "--json", actor=ADMIN).json["proposals"][0]["id"] == p["id"]


def test_a_researcher_proposes_only_as_a_dry_run_and_nothing_is_stored(book):
    r = book.refused("rebalance", "propose", "Harper", actor=RITA, code=4)
    assert "researcher" in r.json["error"] and "--dry-run" in r.json["error"]
    before = book.dump()
    doc = book.ok("rebalance", "propose", "Harper", "--dry-run", "--json", actor=RITA).json
    assert doc["stored"] is False and doc["proposal"]["id"] is None and doc["proposal"]["status"] == "draft"
    assert doc["proposal"]["trades"]
    human = book.ok("rebalance", "propose", "Harper", "--dry-run", actor=ANA).out
    assert "draft proposal (not stored)" in human and human.rstrip().endswith("dry run: nothing stored")
    assert book.dump() == before
    book.refused("rebalance", "propose", "Harper", "--dry-run", actor=BEN, code=4)
    book.refused("rebalance", "propose", "Harper", code=4)
    r = book.refused("rebalance", "propose", "Nope", actor=ADMIN)
    assert "no portfolio named 'Nope'" in r.json["error"]


def test_reject_needs_a_reason_and_keeps_it_verbatim(book):
    pid = _propose(book)["proposal"]["id"]
    for reason in ([], ["--reason", ""], ["--reason", "   "]):
        r = book.refused("rebalance", "reject", pid, *reason, actor=ANA)
        assert "needs a reason" in r.json["error"]
    r = book.refused("rebalance", "reject", pid, "--reason", "bad\x00reason", actor=ANA)
    assert "reason must be text" in r.json["error"] and "U+0000" in r.json["error"]
    book.refused("rebalance", "reject", pid, "--reason", "not mine", actor=BEN, code=4)
    book.refused("rebalance", "reject", pid, "--reason", "read only", actor=RITA, code=4)
    assert book.ok("rebalance", "reject", pid, "--reason", LONG_REASON, "--json", actor=ANA).json == {
        "rejected": pid, "reason": LONG_REASON}
    listed = book.ok("rebalance", "list", "Harper", "--status", "rejected", "--json", actor=RITA).json["proposals"]
    assert [(x["id"], x["reason"], x["decided_by"]) for x in listed] == [(pid, LONG_REASON, ANA)]
    r = book.refused("rebalance", "accept", pid, actor=ANA)
    assert f"proposal {pid} was rejected on" in r.json["error"]
    book.refused("rebalance", "reject", pid, "--reason", "again", actor=ANA)
    trail = book.ok("audit", "--portfolio", "Harper", "--json", actor=ADMIN).json["audit"]
    assert trail[-1]["action"] == "reject" and trail[-1]["after"]["reason"] == LONG_REASON


def test_command_line_options_change_this_proposal_only(book):
    capped = _propose(book, "--max-turnover", "0.02", "--dry-run")["proposal"]
    assert capped["summary"]["turnover"] <= 0.02 + 1e-9
    free = _propose(book, "--dry-run")["proposal"]
    assert free["summary"]["turnover"] > 0.02
    costless = _propose(book, "--spread-bps", "0", "--commission", "0", "--dry-run")["proposal"]
    assert costless["summary"]["total_cost"] == 0 and all(t["cost"] == 0 for t in costless["trades"])
    pricey = _propose(book, "--commission", "25", "--dry-run")["proposal"]
    assert all(t["cost"] >= 25 for t in pricey["trades"])
    sharpe = _propose(book, "--objective", "max_sharpe", "--max-weight", "0.7", "--dry-run")["proposal"]
    assert sharpe["result"]["objective"] == "max_sharpe"
    assert max(sharpe["target"].values()) <= 0.7 + 1e-6
    frac = _propose(book, "--fractional", "--dry-run")["proposal"]
    assert frac["strategy"]["fractional"] is True
    # the stored strategy is unchanged
    stored = book.ok("portfolio", "show", "Harper", "--json", actor=ANA).json["portfolio"]
    assert stored["strategy_is_default"] is True
    r = book.refused("rebalance", "propose", "Harper", "--objective", "to_the_moon", actor=ANA)
    assert "to_the_moon" in r.json["error"]
    r = book.refused("rebalance", "propose", "Harper", "--max-weight", "-0.5", actor=ANA)
    assert "max_weight" in r.json["error"]
    r = book("rebalance", "propose", "Harper", "--max-weight", "lots", "--json", actor=ANA)
    assert r.code == 2 and r.json["kind"] == "UsageError"


def test_stale_prices_and_a_moved_ledger_must_be_rebuilt(book, tmp_path, sp500):
    old = _propose(book, "--as-of", "2022-12-01")["proposal"]
    assert old["prices_as_of"] == "2022-12-01"
    r = book.refused("rebalance", "accept", old["id"], actor=ANA)
    assert r.json["error"] == (f"proposal {old['id']} was built on prices of 2022-12-01; prices up to "
                               f"{sp500.index[-1].date()} exist: rebuild it (`qpo rebalance propose Harper`) before accepting")
    fresh = _propose(book)["proposal"]
    ledger = tmp_path / "l.csv"
    ledger.write_text("kind,trade_date,amount\ndeposit,2022-12-05,100\n", encoding="utf-8")
    book.ok("portfolio", "transactions", "Harper", "--import", ledger, actor=ANA)
    r = book.refused("rebalance", "accept", fresh["id"], actor=ANA)
    assert "the ledger of 'Harper' changed since proposal" in r.json["error"] and "rebuild it" in r.json["error"]
    r = book.refused("rebalance", "propose", "Harper", "--as-of", "1900-01-01", actor=ANA)
    assert "1900-01-01" in r.json["error"]


@pytest.mark.parametrize("given, message", [
    ("abc", "a proposal id is a whole number >= 1 (`qpo rebalance list` shows them), got 'abc'"),
    ("0", "got '0'"), ("1.5", "got '1.5'"), ("٣", "got '٣'"), ("9" * 40, "got '9999"),
    ("999", "no proposal 999; `qpo rebalance list` shows the ones you may see"),
])
def test_a_bad_or_unknown_proposal_id_is_refused(book, given, message):
    for argv in (["show", given], ["accept", given], ["reject", given, "--reason", "x"], ["export", given, "--csv", "t.csv"]):
        r = book.refused("rebalance", *argv, actor=ADMIN)
        assert message in r.json["error"], (argv, r.json["error"])


def test_the_ticket_and_the_page_may_not_share_a_file(book, tmp_path):
    pid = _propose(book)["proposal"]["id"]
    same = tmp_path / "same.out"
    r = book.refused("rebalance", "export", str(pid), "--csv", str(same), "--html", str(same), actor=ANA)
    assert "name the same file" in r.json["error"] and not same.exists()


def test_delete_with_force_takes_the_open_proposals_with_it(book):
    pid = _propose(book)["proposal"]["id"]
    out = book.ok("portfolio", "delete", "Harper", "--force", actor=ANA).out
    assert f"open proposals [{pid}] went with it" in out
    book.refused("rebalance", "show", pid, actor=ADMIN)


def test_no_trade_says_whether_the_portfolio_is_at_its_target(book):
    """Ten of cash buys no whole share of any name: the proposal has no trade, and says it is as near
    its target as whole shares allow, not that it is at its target."""
    from qpo.store import connect, create_portfolio, session_scope

    with session_scope(connect()) as s:
        create_portfolio(s, ANA, "Penny", "Penny Client", ANA, cash=10, trade_date="2022-12-01")
    doc = book.ok("rebalance", "propose", "Penny", "--dry-run", "--json", actor=ANA).json["proposal"]
    assert doc["trades"] == [] and doc["summary"]["distance_to_target"]["max_abs"] > 0.05
    human = book.ok("rebalance", "propose", "Penny", "--dry-run", actor=ANA).out
    assert "at its target" not in human
    assert "(none: no trade brings it nearer its target: weights stay up to" in human
