"""The book's people and trail at their edges (issue 17 audit): a person who manages portfolios is
not demoted to researcher while they do; a deleted portfolio's advisor keeps reading its whole
trail, and nobody else gains it; an unknown portfolio is named, with the ones the actor may see."""
from __future__ import annotations

from tests.test_cli.conftest import ADMIN, ANA, BEN, RITA


def _actions(cli, actor, *args) -> list[tuple[str, str]]:
    rows = cli.ok("audit", *args, "--json", actor=actor).json["audit"]
    return [(r["action"], r["actor"]) for r in rows if r["portfolio"] is not None]


def test_an_advisor_who_manages_portfolios_is_not_demoted_to_researcher(book):
    r = book.refused("user", "update", BEN, "--role", "researcher", actor=ADMIN)
    assert r.json["error"] == ("'ben@example.com' manages 1 portfolio(s) (Tech); a researcher manages none: move them "
                               "to another advisor first (`qpo portfolio update NAME --advisor OTHER`)")
    assert book.ok("user", "update", BEN, "--role", "admin", actor=ADMIN).code == 0  # an admin may manage them
    r = book.refused("user", "update", BEN, "--role", "researcher", actor=ADMIN)
    assert "manages 1 portfolio(s) (Tech)" in r.json["error"]
    book.ok("portfolio", "update", "Tech", "--advisor", ANA, actor=ADMIN)
    doc = book.ok("user", "update", BEN, "--role", "researcher", "--json", actor=ADMIN).json
    assert doc["user"]["role"] == "researcher"
    shown = book.ok("portfolio", "show", "Tech", "--json", actor=ADMIN).json["portfolio"]
    assert shown["advisor_email"] == ANA


def test_a_deleted_portfolios_advisor_keeps_its_whole_trail(people, tmp_path):
    cli = people
    cli.ok("portfolio", "create", "Tech Tilt", "--client", "T", "--advisor", BEN, "--cash", "5000", actor=ADMIN)
    ledger = tmp_path / "l.csv"
    ledger.write_text("kind,trade_date,ticker,quantity,price\nbuy,2022-12-28,AAPL,10,120\n")
    cli.ok("portfolio", "transactions", "Tech Tilt", "--import", str(ledger), actor=ADMIN)
    cli.ok("portfolio", "update", "Tech Tilt", "--description", "growth", actor=BEN)
    before = _actions(cli, BEN, "--portfolio", "Tech Tilt")
    assert before == [("create", ADMIN), ("transaction", ADMIN), ("update", BEN)]
    cli.ok("portfolio", "delete", "Tech Tilt", actor=ADMIN)
    after = _actions(cli, BEN, "--portfolio", "Tech Tilt")
    assert after == before + [("delete", ADMIN)]
    assert _actions(cli, BEN) == after  # the whole trail too
    assert _actions(cli, RITA, "--portfolio", "Tech Tilt") == after  # a researcher reads every portfolio's
    assert _actions(cli, ANA, "--portfolio", "Tech Tilt") == []  # not hers, then or now

    # a new portfolio of Ana's (on SQLite it may get the deleted one's id): its rows are hers only,
    # and the deleted portfolio's rows stay Ben's
    cli.ok("portfolio", "create", "Fresh", "--client", "F", "--advisor", ANA, "--cash", "100", actor=ADMIN)
    assert _actions(cli, ANA) == [("create", ADMIN)]
    assert _actions(cli, BEN) == after


def test_an_unknown_portfolio_is_named_with_the_ones_the_actor_may_see(book):
    r = book.refused("audit", "--portfolio", "nope", actor=ANA)
    assert r.json["error"] == "no portfolio named 'nope', now or deleted; the portfolios you may see: Harper"
    book.ok("portfolio", "delete", "Tech", actor=BEN)
    r = book.refused("audit", "--portfolio", "nope", actor=BEN)
    assert r.json["error"] == "no portfolio named 'nope', now or deleted; you may see no portfolio; deleted: Tech"
    r = book.refused("audit", "--portfolio", "nope", actor=RITA)
    assert r.json["error"].endswith("the portfolios you may see: Harper; deleted: Tech")
