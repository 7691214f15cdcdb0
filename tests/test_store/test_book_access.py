"""Who may see and change what (issue 17), on SQLite and on the real PostgreSQL.

An advisor reads and changes only their own clients' portfolios; a researcher reads every portfolio
and changes none; an admin (and a system actor) does everything, people included. A refused request
is an AccessDenied that says who was refused what, and writes nothing: every table of the store is
dumped before and after, and the session the refused call ran in is *committed*, so anything it had
added before refusing would show.
"""
from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from qpo.errors import AccessDenied, StoreError
from qpo.store import (
    Actor,
    accept_proposal,
    actor_for,
    add_transaction,
    add_user,
    audit_trail,
    create_portfolio,
    delete_portfolio,
    get_portfolio,
    get_proposal,
    import_transactions,
    last_accepted_target,
    list_portfolios,
    list_proposals,
    list_transactions,
    list_users,
    portfolio_cash,
    portfolio_holdings,
    portfolio_weights,
    position,
    record_optimization_run,
    record_risk_metrics,
    reject_proposal,
    risk_history,
    save_proposal,
    session_scope,
    set_password,
    update_portfolio,
)
from tests.test_store import book_stores
from tests.test_store.book_stores import (
    ADMIN,
    ANA,
    ANA_PF,
    ANA_SHARES,
    BEN,
    BEN_PF,
    BEN_SHARES,
    RITA,
    minimal_record,
    table_counts,
    table_dump,
    trade,
)

# the fixtures: a fresh store on SQLite and on PostgreSQL, with the small book in it
store_url, engine, book = book_stores.store_url, book_stores.engine, book_stores.book
SYSTEM = Actor.system("test")
PRICES = pd.DataFrame({"AAPL": [180.0, 190.0], "MSFT": [370.0, 400.0], "KO": [58.0, 60.0], "JNJ": [155.0, 160.0]},
                      index=pd.to_datetime(["2024-03-27", "2024-03-28"]))


class Result:
    """What a run of a tiny optimizer would give (the fields record_optimization_run reads)."""

    weights = {"AAPL": 0.5, "MSFT": 0.5}
    objective, method, solver, status = "min_variance", "convex", "CLARABEL", "optimal"
    expected_return, volatility, sharpe, fallback_reason = 0.08, 0.15, 0.5, None


def _proposal(book, name: str) -> int:
    """An open proposal for ``name`` (a sell of one share of its first holding), saved by a system actor."""
    ticker = "AAPL" if name == ANA_PF else "KO"
    record = minimal_record(book.engine, name, [trade("sell", ticker, 1.0, 100.0)])
    with session_scope(book.engine) as s:
        return save_proposal(s, SYSTEM, name, record).id


def refused(engine, call, *needles: str) -> str:
    """Run ``call(session)``, expect an AccessDenied naming ``needles``, commit the session all the
    same, and prove that no row of any table was inserted, updated or deleted."""
    before = table_dump(engine)
    counts = table_counts(engine)
    with session_scope(engine) as s:
        with pytest.raises(AccessDenied) as info:
            call(s)
    message = str(info.value)
    assert len(message) < 300, message
    for needle in needles:
        assert needle in message, (needle, message)
    assert table_counts(engine) == counts
    assert table_dump(engine) == before
    return message


# -- an advisor ------------------------------------------------------------------------------------
def _foreign_calls(book, pid: int):
    """Every function of the repository, aimed by ``ana`` at Ben's portfolio (or his proposal)."""
    day = dt.date(2024, 3, 28)
    return {
        "get_portfolio": lambda s: get_portfolio(s, ANA, BEN_PF),
        "position": lambda s: position(s, ANA, BEN_PF),
        "portfolio_holdings": lambda s: portfolio_holdings(s, ANA, BEN_PF),
        "portfolio_cash": lambda s: portfolio_cash(s, ANA, BEN_PF),
        "portfolio_weights": lambda s: portfolio_weights(s, ANA, BEN_PF, PRICES),
        "list_transactions": lambda s: list_transactions(s, ANA, BEN_PF),
        "list_proposals": lambda s: list_proposals(s, ANA, BEN_PF),
        "get_proposal": lambda s: get_proposal(s, ANA, pid),
        "last_accepted_target": lambda s: last_accepted_target(s, ANA, BEN_PF),
        "audit_trail": lambda s: audit_trail(s, ANA, portfolio=BEN_PF),
        "risk_history": lambda s: risk_history(s, ANA, BEN_PF),
        "update_portfolio": lambda s: update_portfolio(s, ANA, BEN_PF, description="mine now"),
        "update_portfolio_owner": lambda s: update_portfolio(s, ANA, BEN_PF, advisor_email=ANA),
        "delete_portfolio": lambda s: delete_portfolio(s, ANA, BEN_PF, force=True),
        "add_transaction": lambda s: add_transaction(s, ANA, BEN_PF, "deposit", trade_date=day, amount=100.0),
        "import_transactions": lambda s: import_transactions(
            s, ANA, BEN_PF, [dict(kind="deposit", trade_date=day, amount=1.0)]),
        "save_proposal": lambda s: save_proposal(s, ANA, BEN_PF, minimal_record(book.engine, BEN_PF, [])),
        "accept_proposal": lambda s: accept_proposal(s, ANA, pid, latest_price_date=day),
        "reject_proposal": lambda s: reject_proposal(s, ANA, pid, "not mine to reject"),
        "record_optimization_run": lambda s: record_optimization_run(s, ANA, Result(), portfolio=BEN_PF),
        "record_risk_metrics": lambda s: record_risk_metrics(s, ANA, BEN_PF, day, {"volatility": 0.2}),
    }


FOREIGN_NAMES = ["get_portfolio", "position", "portfolio_holdings", "portfolio_cash", "portfolio_weights",
                 "list_transactions", "list_proposals", "get_proposal", "last_accepted_target", "audit_trail",
                 "risk_history", "update_portfolio", "update_portfolio_owner", "delete_portfolio", "add_transaction",
                 "import_transactions", "save_proposal", "accept_proposal", "reject_proposal",
                 "record_optimization_run", "record_risk_metrics"]


def test_an_advisor_is_refused_every_function_on_another_advisors_portfolio(book):
    pid = _proposal(book, BEN_PF)
    calls = _foreign_calls(book, pid)
    assert sorted(calls) == sorted(FOREIGN_NAMES)
    for name, call in calls.items():
        message = refused(book.engine, call, ANA, "(advisor)")
        # who was refused what: the portfolio's name (a proposal is refused as its portfolio)
        assert "'Ben Income'" in message or "Ben Income" in message, (name, message)
        assert "may not" in message, (name, message)
    with session_scope(book.engine) as s:  # and Ben's portfolio and proposal are as they were
        assert get_proposal(s, BEN, pid).status == "open"
        assert position(s, BEN, BEN_PF).shares.to_dict() == BEN_SHARES


def test_an_advisor_lists_only_their_own_clients(book):
    _proposal(book, BEN_PF)
    own = _proposal(book, ANA_PF)
    with session_scope(book.engine) as s:
        assert list(list_portfolios(s, ANA)["name"]) == [ANA_PF]
        assert list(list_portfolios(s, BEN)["name"]) == [BEN_PF]
        assert list(list_proposals(s, ANA)["id"]) == [own]
        trail = audit_trail(s, ANA)
        assert not trail.empty and set(trail["portfolio"].dropna()) == {ANA_PF}
        assert BEN_PF not in set(trail["portfolio"].dropna())


def test_an_advisor_reads_changes_proposes_and_decides_for_their_own_clients(book):
    day = dt.date(2024, 3, 28)
    with session_scope(book.engine) as s:
        assert get_portfolio(s, ANA, ANA_PF).client_name == "Client A"
        assert position(s, ANA, ANA_PF).shares.to_dict() == ANA_SHARES
        assert len(list_transactions(s, ANA, ANA_PF)) == 3
        assert portfolio_weights(s, ANA, ANA_PF, PRICES).sum() == pytest.approx(1.0)
        update_portfolio(s, ANA, ANA_PF, description="long-term growth", account="ACC-1")
        add_transaction(s, ANA, ANA_PF, "deposit", trade_date=day, amount=500.0)
        record_risk_metrics(s, ANA, ANA_PF, day, {"volatility": 0.2})
        record_optimization_run(s, ANA, Result(), portfolio=ANA_PF)
    record = minimal_record(book.engine, ANA_PF, [trade("sell", "AAPL", 10.0, 190.0)])
    with session_scope(book.engine) as s:
        accepted = save_proposal(s, ANA, ANA_PF, record).id
    with session_scope(book.engine) as s:
        accept_proposal(s, ANA, accepted, latest_price_date=day)
    record = minimal_record(book.engine, ANA_PF, [trade("buy", "MSFT", 1.0, 400.0)])
    with session_scope(book.engine) as s:
        rejected = save_proposal(s, ANA, ANA_PF, record).id
        reject_proposal(s, ANA, rejected, "waiting for the client's call")
    with session_scope(book.engine) as s:
        assert get_proposal(s, ANA, accepted).status == "accepted"
        assert get_proposal(s, ANA, rejected).status == "rejected"
        assert position(s, ANA, ANA_PF).shares["AAPL"] == 90.0
        assert get_portfolio(s, ANA, ANA_PF).account == "ACC-1"
        delete_portfolio(s, ANA, ANA_PF)
    with session_scope(book.engine) as s:
        assert list(list_portfolios(s, ADMIN)["name"]) == [BEN_PF]


def test_an_advisor_may_not_create_for_another_advisor_nor_hand_a_portfolio_over(book):
    refused(book.engine, lambda s: create_portfolio(s, ANA, "Poached", "Client C", BEN, cash=1000.0),
            ANA, "(advisor)", BEN)
    refused(book.engine, lambda s: update_portfolio(s, ANA, ANA_PF, advisor_email=BEN), ANA, BEN)
    with session_scope(book.engine) as s:  # their own client: fine
        create_portfolio(s, ANA, "Ana Second", "Client C", ANA, cash=1000.0)
        assert set(list_portfolios(s, ANA)["name"]) == {ANA_PF, "Ana Second"}


def test_an_advisor_may_not_manage_people(book):
    refused(book.engine, lambda s: add_user(s, ANA, "eve@qpo.test", "Eve", "admin"), ANA, "(advisor)", "eve@qpo.test")
    refused(book.engine, lambda s: add_user(s, ANA, "eve@qpo.test", "Eve", "advisor"), ANA, "eve@qpo.test")
    refused(book.engine, lambda s: set_password(s, ANA, BEN, "a-new-password"), ANA, BEN)
    with session_scope(book.engine) as s:  # any user may see who the users are
        assert set(list_users(s, ANA)["email"]) == {ADMIN, ANA, BEN, RITA}


# -- a researcher ----------------------------------------------------------------------------------
def test_a_researcher_reads_every_portfolio(book):
    pid = _proposal(book, BEN_PF)
    with session_scope(book.engine) as s:
        assert list(list_portfolios(s, RITA)["name"]) == [ANA_PF, BEN_PF]
        assert position(s, RITA, ANA_PF).shares.to_dict() == ANA_SHARES
        assert position(s, RITA, BEN_PF).shares.to_dict() == BEN_SHARES
        assert len(list_transactions(s, RITA, BEN_PF)) == 3
        assert get_proposal(s, RITA, pid).status == "open"
        assert list(list_proposals(s, RITA)["id"]) == [pid]
        assert portfolio_weights(s, RITA, BEN_PF, PRICES).sum() == pytest.approx(1.0)
        assert set(audit_trail(s, RITA)["portfolio"].dropna()) == {ANA_PF, BEN_PF}
        assert not audit_trail(s, RITA, portfolio=BEN_PF).empty
        risk_history(s, RITA, BEN_PF)
        last_accepted_target(s, RITA, ANA_PF)


def test_a_researcher_changes_nothing(book):
    pid = _proposal(book, BEN_PF)
    day = dt.date(2024, 3, 28)
    calls = {
        "create_portfolio": lambda s: create_portfolio(s, RITA, "Rita's", "Client R", ANA, cash=10.0),
        "update_portfolio": lambda s: update_portfolio(s, RITA, ANA_PF, description="x"),
        "delete_portfolio": lambda s: delete_portfolio(s, RITA, ANA_PF, force=True),
        "add_transaction": lambda s: add_transaction(s, RITA, ANA_PF, "deposit", trade_date=day, amount=1.0),
        "import_transactions": lambda s: import_transactions(
            s, RITA, ANA_PF, [dict(kind="deposit", trade_date=day, amount=1.0)]),
        "save_proposal": lambda s: save_proposal(s, RITA, BEN_PF, minimal_record(book.engine, BEN_PF, [])),
        "accept_proposal": lambda s: accept_proposal(s, RITA, pid, latest_price_date=day),
        "reject_proposal": lambda s: reject_proposal(s, RITA, pid, "no"),
        "record_optimization_run": lambda s: record_optimization_run(s, RITA, Result(), portfolio=ANA_PF),
        "record_risk_metrics": lambda s: record_risk_metrics(s, RITA, ANA_PF, day, {"volatility": 0.2}),
        "add_user": lambda s: add_user(s, RITA, "eve@qpo.test", "Eve", "researcher"),
        "set_password": lambda s: set_password(s, RITA, ANA, "a-new-password"),
    }
    for name, call in calls.items():
        message = refused(book.engine, call, RITA, "(researcher)")
        assert "may not" in message, (name, message)
    assert "changes none" in refused(book.engine, calls["update_portfolio"], ANA_PF)


# -- an admin, a system actor ----------------------------------------------------------------------
@pytest.mark.parametrize("who", [ADMIN, SYSTEM], ids=["admin", "system"])
def test_an_admin_and_a_system_actor_do_everything(book, who):
    day = dt.date(2024, 3, 28)
    pid = _proposal(book, BEN_PF)
    with session_scope(book.engine) as s:
        add_user(s, who, "carl@qpo.test", "Carl Advisor", "advisor")
        set_password(s, who, "carl@qpo.test", "carl's password")
        assert set(list_users(s, who)["email"]) == {ADMIN, ANA, BEN, RITA, "carl@qpo.test"}
        create_portfolio(s, who, "Carl One", "Client C", "carl@qpo.test", holdings={"PG": 10.0}, cash=100.0)
        update_portfolio(s, who, BEN_PF, advisor_email="carl@qpo.test", description="moved to Carl")
        add_transaction(s, who, ANA_PF, "withdrawal", trade_date=day, amount=100.0)
        record_risk_metrics(s, who, ANA_PF, day, {"volatility": 0.2})
        assert position(s, who, BEN_PF).shares.to_dict() == BEN_SHARES
    with session_scope(book.engine) as s:
        accept_proposal(s, who, pid, latest_price_date=day)
    with session_scope(book.engine) as s:
        assert get_proposal(s, who, pid).status == "accepted"
        delete_portfolio(s, who, "Carl One")
        assert list(list_portfolios(s, who)["name"]) == [ANA_PF, BEN_PF]
        assert list(list_portfolios(s, "carl@qpo.test")["name"]) == [BEN_PF]  # Carl manages it now
        assert list(list_portfolios(s, BEN)["name"]) == []  # and Ben no longer sees it
        assert len(audit_trail(s, who)) > 0
    refused(book.engine, lambda s: get_portfolio(s, BEN, BEN_PF), BEN, "(advisor)")


def test_the_system_actor_is_named_in_the_trail(book):
    with session_scope(book.engine) as s:
        trail = audit_trail(s, ADMIN)
    assert set(trail["actor"]) == {"system:test"}
    assert set(trail["role"]) == {"system"}


# -- who is asking ---------------------------------------------------------------------------------
def test_an_unknown_email_or_no_actor_is_refused(book, monkeypatch):
    monkeypatch.delenv("QPO_USER", raising=False)
    for actor, needle in (("nobody@qpo.test", "nobody@qpo.test"), (None, "no actor named")):
        for call in (lambda s, a=actor: list_portfolios(s, a), lambda s, a=actor: get_portfolio(s, a, ANA_PF),
                     lambda s, a=actor: update_portfolio(s, a, ANA_PF, description="x"),
                     lambda s, a=actor: add_transaction(s, a, ANA_PF, "deposit", trade_date="2024-03-28", amount=1.0),
                     lambda s, a=actor: audit_trail(s, a),
                     lambda s, a=actor: create_portfolio(s, a, "Nobody's", "Client N", ANA, cash=1.0)):
            refused(book.engine, call, needle)
    message = refused(book.engine, lambda s: list_portfolios(s, "nobody@qpo.test"), "not a user")
    assert "qpo user add" in message
    # QPO_USER names the actor when none is given
    monkeypatch.setenv("QPO_USER", ANA)
    with session_scope(book.engine) as s:
        assert list(list_portfolios(s, None)["name"]) == [ANA_PF]
    monkeypatch.setenv("QPO_USER", "nobody@qpo.test")
    refused(book.engine, lambda s: list_portfolios(s, None), "nobody@qpo.test")


def test_an_actor_is_read_afresh_from_the_store(book):
    """An Actor object claiming a role is not taken at its word: the store's row decides, so a
    changed role counts at once."""
    forged = Actor(email=ANA, role="admin", name="Ana", user_id=None)
    with session_scope(book.engine) as s:
        assert actor_for(s, forged).role == "advisor"
        assert list(list_portfolios(s, forged)["name"]) == [ANA_PF]
    refused(book.engine, lambda s: update_portfolio(s, forged, BEN_PF, description="x"), ANA, "(advisor)")
    refused(book.engine, lambda s: get_portfolio(s, Actor(email="ghost@qpo.test", role="admin"), ANA_PF),
            "ghost@qpo.test")


def test_an_actor_that_is_neither_an_email_nor_an_actor_is_refused(book):
    for bad in (42, ["ana@qpo.test"], "not an address", "ana@qpo.test\x00"):
        with session_scope(book.engine) as s:
            with pytest.raises(StoreError) as info:
                list_portfolios(s, bad)
        assert len(str(info.value)) < 300
