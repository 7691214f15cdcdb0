"""`qpo audit [--portfolio NAME] [--since DATE]`: the trail, as each actor may read it."""
from __future__ import annotations

import datetime as dt

from tests.test_cli.conftest import ADMIN, ANA, BEN, RITA


def _trail(cli, actor, *args):
    return cli.ok("audit", *args, "--json", actor=actor).json["audit"]


def test_every_write_appends_one_row_and_each_actor_reads_their_share(book, tmp_path):
    ledger = tmp_path / "l.csv"
    ledger.write_text("kind,trade_date,amount\ndeposit,2022-12-05,100\n", encoding="utf-8")
    book.ok("portfolio", "transactions", "Tech", "--import", ledger, actor=BEN)
    book.ok("portfolio", "update", "Harper", "--description", "watched", actor=ANA)
    every = _trail(book, ADMIN)
    # the four people (the admin's bootstrap, three added by the admin), two portfolios created, the
    # deposit into Harper, Ben's deposit, Ana's update
    assert [(e["actor"], e["action"], e["portfolio"]) for e in every] == [
        ("system:bootstrap", "user_add", None), (ADMIN, "user_add", None), (ADMIN, "user_add", None),
        (ADMIN, "user_add", None), (ANA, "create", "Harper"), (BEN, "create", "Tech"),
        (ANA, "transaction", "Harper"), (BEN, "transaction", "Tech"), (ANA, "update", "Harper")]
    assert every[-1]["before"]["description"] is None and every[-1]["after"]["description"] == "watched"
    assert [e["action"] for e in _trail(book, ANA)] == ["create", "transaction", "update"]
    assert [e["action"] for e in _trail(book, BEN)] == ["create", "transaction"]
    assert [e["portfolio"] for e in _trail(book, RITA)] == ["Harper", "Tech", "Harper", "Tech", "Harper"]
    assert [e["action"] for e in _trail(book, ADMIN, "--portfolio", "Tech")] == ["create", "transaction"]
    human = book.ok("audit", "--portfolio", "Harper", actor=ANA).out.splitlines()
    assert human[0].split() == ["at", "actor", "role", "action", "entity", "entity_id", "portfolio", "change"]
    assert len(human) == 4 and human[-1].split()[4:] == ["update", "portfolio", "1", "Harper", "description:", "-", "->",
                                                         "watched"]


def test_audit_filters_and_refusals(book):
    today = dt.datetime.now(dt.UTC).date()
    assert len(_trail(book, ADMIN, "--since", str(today - dt.timedelta(days=1)))) == 7
    assert _trail(book, ADMIN, "--since", str(today + dt.timedelta(days=2))) == []
    r = book.refused("audit", "--since", "yesterday", actor=ADMIN)
    assert r.json["error"] == "since must be written YYYY-MM-DD (e.g. 2022-12-28), got 'yesterday'"
    r = book.refused("audit", "--portfolio", "Tech", actor=ANA, code=4)
    assert r.json["error"] == f"{ANA} (advisor) may not see portfolio 'Tech': it belongs to another advisor's client"
    r = book.refused("audit", "--portfolio", "P" * 201, actor=ADMIN)
    assert "portfolio name must be text of 1 to 200 characters" in r.json["error"] and "P" * 100 not in r.json["error"]
    book.refused("audit", code=4)
    r = book.refused("audit", "--portfolio", "Never existed", actor=ADMIN)  # a name the trail never held
    assert r.json["error"] == "no portfolio named 'Never existed', now or deleted; the portfolios you may see: Harper, Tech"


def test_a_deleted_portfolios_trail_stays_readable_when_its_name_is_reused(book):
    """Ana deleted 'Smith'; Ben then created another 'Smith': Ana was refused her own trail (exit 4)
    and even an admin saw only the new portfolio's rows."""
    book.ok("portfolio", "create", "Smith", "--client", "Smith family", "--advisor", ANA, "--cash", "1000", actor=ANA)
    book.ok("portfolio", "delete", "Smith", actor=ANA)
    book.ok("portfolio", "create", "Smith", "--client", "Another Smith", "--advisor", BEN, "--cash", "5", actor=BEN)
    mine = book.ok("audit", "--portfolio", "Smith", "--json", actor=ANA).json["audit"]
    assert [(r["actor"], r["action"]) for r in mine] == [(ANA, "create"), (ANA, "delete")]
    everything = book.ok("audit", "--portfolio", "Smith", "--json", actor=ADMIN).json["audit"]
    assert [(r["actor"], r["action"]) for r in everything] == [(ANA, "create"), (ANA, "delete"), (BEN, "create")]
    bens = book.ok("audit", "--portfolio", "Smith", "--json", actor=BEN).json["audit"]
    assert [(r["actor"], r["action"]) for r in bens] == [(BEN, "create")]  # not Ana's client's rows


def test_a_live_portfolio_renamed_keeps_its_rows_out_of_the_new_holder_of_its_name(book):
    book.ok("portfolio", "update", "Harper", "--name", "Harper old", actor=ANA)
    book.ok("portfolio", "create", "Harper", "--client", "New Harper", "--advisor", ANA, "--cash", "5", actor=ANA)
    rows = book.ok("audit", "--portfolio", "Harper", "--json", actor=ADMIN).json["audit"]
    assert [(r["action"], r["after"]["client"]) for r in rows] == [("create", "New Harper")], rows
