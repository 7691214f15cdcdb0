"""What the book's commands print at their edges (issue 17 audit): an advisor's --fractional
override of a whole-share strategy is said; a portfolio whose stored strategy no longer reads has
its own status in `rebalance check`; --json carries no float noise."""
from __future__ import annotations

import pytest

from tests.test_cli.conftest import ANA

OVERRIDE = "fractional shares (overriding the strategy's whole shares)"


def test_fractional_overrides_a_whole_share_strategy_and_says_so(book, capsys):
    doc = book.ok("rebalance", "propose", "Harper", "--fractional", "--json", actor=ANA).json
    assert doc["share_override"] == OVERRIDE
    assert doc["proposal"]["parameters"]["share_override"] == OVERRIDE
    assert doc["proposal"]["strategy"]["fractional"] is True
    shown = book.ok("rebalance", "show", str(doc["proposal"]["id"]), actor=ANA).out
    assert f"shares: {OVERRIDE}" in shown
    text = book.ok("rebalance", "propose", "Harper", "--fractional", "--dry-run", actor=ANA).out
    assert f"shares: {OVERRIDE}" in text
    plain = book.ok("rebalance", "propose", "Harper", "--dry-run", "--json", actor=ANA).json
    assert plain["share_override"] is None and all(float(t["shares"]).is_integer() for t in plain["proposal"]["trades"])
    with pytest.raises(SystemExit):
        book("rebalance", "propose", "--help")
    assert "overriding the strategy's whole shares" in " ".join(capsys.readouterr().out.split())


def test_a_stored_strategy_that_no_longer_reads_has_its_own_check_status(book):
    from sqlalchemy import update

    from qpo.store import connect
    from qpo.store.models import ClientPortfolio

    table = ClientPortfolio.__table__
    with connect().begin() as conn:  # as an older qpo, or a hand edit, might have left it
        conn.execute(update(table).where(table.c.name == "Harper").values(strategy={"schema_version": 1,
                                                                                    "objective": "nope"}))
    rows = {r["portfolio"]: r for r in book.ok("rebalance", "check", "--json", actor=ANA).json["check"]}
    assert rows["Harper"]["status"] == "strategy_invalid" and rows["Harper"]["due"] is False
    assert "its stored strategy is refused: " in rows["Harper"]["reason"] and "objective" in rows["Harper"]["reason"]
    assert "`qpo portfolio update Harper --strategy FILE`" in rows["Harper"]["reason"]
    assert "strategy_invalid" in book.ok("rebalance", "check", actor=ANA).out


def test_json_money_has_no_float_noise(people):
    cli = people
    cli.ok("portfolio", "create", "Dust", "--client", "D", "--advisor", ANA, "--cash", "0.1", actor=ANA)
    assert 0.1 + 0.2 != 0.3  # what the ledger's sum is without rounding
    from qpo.store import add_transaction, connect, session_scope

    with session_scope(connect()) as s:
        add_transaction(s, ANA, "Dust", "deposit", trade_date="2022-12-28", amount=0.2)
    shown = cli.ok("portfolio", "show", "Dust", "--json", actor=ANA)
    assert '"cash": 0.3,' in shown.out and shown.json["portfolio"]["total_value"] == 0.3
    assert shown.json["portfolio"]["cash_weight"] == 1.0
    ledger = cli.ok("portfolio", "transactions", "Dust", "--json", actor=ANA).json
    assert ledger["cash"] == 0.3 and [t["cash_after"] for t in ledger["transactions"]] == [0.1, 0.3]
    assert [p["cash"] for p in cli.ok("portfolio", "list", "--json", actor=ANA).json["portfolios"]] == [0.3]
