"""The audit trail (issue 17), on SQLite and on the real PostgreSQL: every write of the book appends
one row (when, who, what, the entity, before and after); the trail is append-only (a trigger on
PostgreSQL; on both, the repository never issues UPDATE or DELETE on it); it filters by portfolio
and date, shows each role what it may see, and outlives a deleted portfolio."""
from __future__ import annotations

import datetime as dt
import re

import pytest
from sqlalchemy import event, text
from sqlalchemy.exc import DBAPIError

from qpo.store import (
    Actor,
    accept_proposal,
    add_transaction,
    add_user,
    audit_trail,
    create_portfolio,
    delete_portfolio,
    get_portfolio,
    import_transactions,
    list_portfolios,
    list_transactions,
    position,
    reject_proposal,
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
    BEN,
    BEN_PF,
    RITA,
    audit_rows_after,
    last_audit_id,
    minimal_record,
    table_dump,
    trade,
)

store_url, engine, book = book_stores.store_url, book_stores.engine, book_stores.book
SYSTEM = Actor.system("test")
DAY = dt.date(2024, 3, 28)


def one_row(book, call, *, actor: str, role: str, action: str, entity: str, portfolio: str | None):
    """Run ``call(session)`` in its own transaction; exactly one audit row is appended, and it names
    the actor, the action, the entity and the portfolio. Returns the row."""
    last = last_audit_id(book.engine)
    with session_scope(book.engine) as s:
        out = call(s)
    rows = audit_rows_after(book.engine, last)
    assert [(r.action, r.entity) for r in rows] == [(action, entity)]
    row = rows[0]
    assert (row.actor, row.role, row.portfolio) == (actor, role, portfolio)
    assert row.at is not None and row.entity_id
    return row, out


def test_every_write_appends_one_row_with_who_what_before_and_after(book):
    row, _ = one_row(book, lambda s: create_portfolio(s, ANA, "Ana Two", "Client 2", ANA, holdings={"KO": 5.0},
                                                      cash=500.0, trade_date=DAY, description="new"),
                     actor=ANA, role="advisor", action="create", entity="portfolio", portfolio="Ana Two")
    assert row.before is None
    assert {k: row.after[k] for k in ("name", "client", "advisor", "description")} == {
        "name": "Ana Two", "client": "Client 2", "advisor": ANA, "description": "new"}
    assert sorted(e["kind"] for e in row.after["opening"]) == ["deposit", "transfer_in"]

    row, _ = one_row(book, lambda s: update_portfolio(s, ANA, "Ana Two", description="changed", benchmark="SP500"),
                     actor=ANA, role="advisor", action="update", entity="portfolio", portfolio="Ana Two")
    assert (row.before["description"], row.after["description"]) == ("new", "changed")
    assert (row.before["benchmark"], row.after["benchmark"]) == (None, "SP500")
    assert row.before["name"] == row.after["name"] == "Ana Two"

    row, _ = one_row(book, lambda s: add_transaction(s, ANA, "Ana Two", "buy", trade_date=DAY, ticker="KO",
                                                     quantity=2, price=60.0, fees=1.0),
                     actor=ANA, role="advisor", action="transaction", entity="transaction", portfolio="Ana Two")
    assert row.before == {"holdings": {"KO": 5.0}, "cash": 500.0}
    assert row.after["holdings"] == {"KO": 7.0} and row.after["cash"] == pytest.approx(379.0)
    assert row.after["entries"] == [{"kind": "buy", "trade_date": "2024-03-28", "ticker": "KO", "quantity": 2.0,
                                     "price": 60.0, "fees": 1.0}]

    row, written = one_row(book, lambda s: import_transactions(s, ANA, "Ana Two", [
        dict(kind="deposit", trade_date=DAY, amount=100.0), dict(kind="fee", trade_date=DAY, amount=10.0)]),
        actor=ANA, role="advisor", action="import", entity="transaction", portfolio="Ana Two")
    assert row.entity_id == ",".join(str(t.id) for t in written)
    assert [e["kind"] for e in row.after["entries"]] == ["deposit", "fee"]
    assert (row.before["cash"], row.after["cash"]) == (pytest.approx(379.0), pytest.approx(469.0))

    record = minimal_record(book.engine, "Ana Two", [trade("sell", "KO", 2.0, 61.0)])
    row, proposal = one_row(book, lambda s: save_proposal(s, ANA, "Ana Two", record),
                            actor=ANA, role="advisor", action="propose", entity="proposal", portfolio="Ana Two")
    assert row.entity_id == str(proposal.id) and row.after["id"] == proposal.id
    assert row.after["trades"][0]["ticker"] == "KO"

    record = minimal_record(book.engine, "Ana Two", [trade("buy", "KO", 1.0, 61.0)])
    with session_scope(book.engine) as s:
        other = save_proposal(s, ANA, "Ana Two", record).id
    row, _ = one_row(book, lambda s: reject_proposal(s, ANA, other, "the client is travelling"),
                     actor=ANA, role="advisor", action="reject", entity="proposal", portfolio="Ana Two")
    assert (row.before, row.after) == ({"status": "open"}, {"status": "rejected", "reason": "the client is travelling"})

    row, _ = one_row(book, lambda s: add_user(s, ADMIN, "carl@qpo.test", "Carl", "advisor", password="carl's secret"),
                     actor=ADMIN, role="admin", action="user_add", entity="user", portfolio=None)
    assert row.after == {"email": "carl@qpo.test", "name": "Carl", "role": "advisor", "has_password": True}

    row, _ = one_row(book, lambda s: set_password(s, "carl@qpo.test", "carl@qpo.test", "carl's new secret"),
                     actor="carl@qpo.test", role="advisor", action="password", entity="user", portfolio=None)
    assert row.entity_id == "carl@qpo.test"
    assert "secret" not in repr((row.before, row.after)) and "argon2" not in repr((row.before, row.after))

    row, _ = one_row(book, lambda s: delete_portfolio(s, ANA, "Ana Two", force=True),
                     actor=ANA, role="advisor", action="delete", entity="portfolio", portfolio="Ana Two")
    assert row.after is None
    assert row.before["name"] == "Ana Two" and row.before["holdings"] == {"KO": 7.0}
    assert row.before["cash"] == pytest.approx(469.0) and row.before["n_transactions"] == 5
    assert row.before["open_proposals"] == [proposal.id]


def test_reads_append_nothing(book):
    last = last_audit_id(book.engine)
    with session_scope(book.engine) as s:
        list_portfolios(s, ANA)
        get_portfolio(s, RITA, BEN_PF)
        position(s, ADMIN, ANA_PF)
        list_transactions(s, ANA, ANA_PF)
        audit_trail(s, ADMIN)
    assert audit_rows_after(book.engine, last) == []


def _accept(book) -> tuple[int, list]:
    record = minimal_record(book.engine, ANA_PF, [trade("buy", "KO", 10.0, 60.0), trade("sell", "AAPL", 5.0, 190.0)])
    with session_scope(book.engine) as s:
        pid = save_proposal(s, ANA, ANA_PF, record).id
    last = last_audit_id(book.engine)
    with session_scope(book.engine) as s:
        accept_proposal(s, ANA, pid, latest_price_date=DAY)
    return pid, audit_rows_after(book.engine, last)


def test_accepting_a_proposal_is_in_the_trail(book):
    """The accept row names the proposal, its status change and the optimization run; the ledger
    entries it wrote are in the trail with it, all by the one who accepted."""
    pid, rows = _accept(book)
    assert {r.action for r in rows} == {"accept"} and {r.actor for r in rows} == {ANA}
    proposal_rows = [r for r in rows if r.entity == "proposal"]
    assert len(proposal_rows) == 1
    row = proposal_rows[0]
    assert row.entity_id == str(pid) and row.portfolio == ANA_PF
    assert row.before == {"status": "open"}
    assert row.after["status"] == "accepted" and row.after["n_trades"] == 2 and row.after["optimization_run_id"]


def test_accepting_a_proposal_appends_exactly_one_row(book):
    _, rows = _accept(book)
    assert [(r.action, r.entity) for r in rows] == [("accept", "proposal")]
    assert rows[0].after["n_trades"] == 2


# -- append-only -------------------------------------------------------------------------------------
_TOUCHES_AUDIT = re.compile(r'^\s*(UPDATE\s+"?audit_log"?|DELETE\s+FROM\s+"?audit_log"?|TRUNCATE)', re.I)


def test_the_repository_never_updates_or_deletes_an_audit_row(book):
    """A listener on every statement the engine sends, over a whole workflow (people, portfolios,
    ledger, proposals accepted, rejected and force-deleted, portfolios moved and deleted)."""
    sent: list[str] = []

    def listen(conn, cursor, statement, parameters, context, executemany):
        sent.append(statement)

    event.listen(book.engine, "before_cursor_execute", listen)
    try:
        with session_scope(book.engine) as s:
            add_user(s, ADMIN, "carl@qpo.test", "Carl", "advisor", password="carl's secret")
            set_password(s, ADMIN, "carl@qpo.test", "another secret")
            create_portfolio(s, ADMIN, "Carl One", "Client C", "carl@qpo.test", holdings={"PG": 10.0}, cash=1000.0,
                             trade_date=DAY)
            update_portfolio(s, ADMIN, "Carl One", description="moved", advisor_email=ANA)
            add_transaction(s, ANA, "Carl One", "buy", trade_date=DAY, ticker="KO", quantity=1, price=60.0)
            import_transactions(s, ANA, "Carl One", [dict(kind="deposit", trade_date=DAY, amount=5.0),
                                                     dict(kind="withdrawal", trade_date=DAY, amount=5.0)])
        for name, decide in ((ANA_PF, "accept"), (ANA_PF, "reject"), ("Carl One", None)):
            record = minimal_record(book.engine, name, [trade("sell", "AAPL" if name == ANA_PF else "PG", 1.0, 100.0)])
            with session_scope(book.engine) as s:
                pid = save_proposal(s, ANA, name, record).id
            with session_scope(book.engine) as s:
                if decide == "accept":
                    accept_proposal(s, ANA, pid, latest_price_date=DAY)
                elif decide == "reject":
                    reject_proposal(s, ANA, pid, "no")
        with session_scope(book.engine) as s:
            delete_portfolio(s, ANA, "Carl One", force=True)
            delete_portfolio(s, BEN, BEN_PF)
            audit_trail(s, ADMIN)
    finally:
        event.remove(book.engine, "before_cursor_execute", listen)
    assert any(re.match(r'\s*INSERT INTO "?audit_log"?', q, re.I) for q in sent)  # the listener heard the trail
    assert any(re.match(r'\s*DELETE FROM "?portfolios"?', q, re.I) for q in sent)  # and the deletes
    assert [q for q in sent if _TOUCHES_AUDIT.match(q)] == []
    with session_scope(book.engine) as s:
        trail = audit_trail(s, ADMIN)
    assert {"Carl One", BEN_PF} <= set(trail.loc[trail["action"] == "delete", "portfolio"])


@pytest.mark.parametrize("statement", ["UPDATE audit_log SET actor = 'someone else'",
                                       "UPDATE audit_log SET after = NULL WHERE action = 'create'",
                                       "DELETE FROM audit_log",
                                       "DELETE FROM audit_log WHERE portfolio = 'Ben Income'",
                                       "TRUNCATE audit_log"])
def test_postgresql_refuses_update_and_delete_on_the_trail(book, statement):
    if book.dialect != "postgresql":
        pytest.skip("the trigger is PostgreSQL's; on SQLite the repository's statements are checked instead")
    before = table_dump(book.engine)
    with pytest.raises(DBAPIError) as info:
        with book.engine.begin() as conn:
            conn.execute(text(statement))
    assert "append-only" in str(info.value.orig)
    assert table_dump(book.engine) == before


def test_postgresql_still_takes_new_rows_and_has_the_triggers(book):
    if book.dialect != "postgresql":
        pytest.skip("PostgreSQL's triggers")
    with book.engine.connect() as conn:
        triggers = set(conn.execute(text("SELECT tgname FROM pg_trigger WHERE tgrelid = 'audit_log'::regclass "
                                         "AND NOT tgisinternal")).scalars())
    assert triggers == {"audit_log_append_only", "audit_log_no_truncate"}
    with session_scope(book.engine) as s:  # the trigger leaves inserts alone
        add_transaction(s, ANA, ANA_PF, "deposit", trade_date=DAY, amount=1.0)


# -- reading the trail ---------------------------------------------------------------------------------
def _raw_row(book, at: str, portfolio: str, actor: str = "system:test"):
    """An audit row written at ``at`` (an INSERT: the trail takes new rows; the repository writes
    today's, so older ones are written here as they would have been)."""
    with session_scope(book.engine) as s:
        pid = get_portfolio(s, SYSTEM, portfolio).id
    stamp = at if book.dialect == "sqlite" else f"{at}+00"
    with book.engine.begin() as conn:
        conn.execute(text("INSERT INTO audit_log (at, actor, role, action, entity, entity_id, portfolio_id, portfolio) "
                          "VALUES (:at, :actor, 'system', 'update', 'portfolio', :pid, :pid, :name)"),
                     {"at": stamp, "actor": actor, "pid": pid, "name": portfolio})


def test_the_trail_filters_by_portfolio_and_date(book):
    _raw_row(book, "2020-06-30 23:59:59", ANA_PF)
    _raw_row(book, "2021-01-01 00:00:01", ANA_PF)
    with session_scope(book.engine) as s:
        add_transaction(s, ANA, ANA_PF, "deposit", trade_date=DAY, amount=1.0)
        add_transaction(s, BEN, BEN_PF, "deposit", trade_date=DAY, amount=1.0)
        everything = audit_trail(s, ADMIN)
        ana = audit_trail(s, ADMIN, portfolio=ANA_PF)
        assert set(ana["portfolio"]) == {ANA_PF} and len(ana) == 4  # create, 2 old ones, the deposit
        assert set(audit_trail(s, ADMIN, portfolio=BEN_PF)["portfolio"]) == {BEN_PF}
        assert len(audit_trail(s, ADMIN, portfolio=ANA_PF, since="2021-01-01")) == 3
        assert len(audit_trail(s, ADMIN, portfolio=ANA_PF, since=dt.date(2020, 6, 30))) == 4
        assert len(audit_trail(s, ADMIN, portfolio=ANA_PF, since="2020-07-01")) == 3
        today = dt.datetime.now(dt.UTC).date()
        assert len(audit_trail(s, ADMIN, since=today)) == len(everything) - 2
        assert audit_trail(s, ADMIN, since=today + dt.timedelta(days=1)).empty
        assert list(everything["id"]) == sorted(everything["id"])  # oldest first
        assert list(everything.columns[:3]) == ["id", "at", "actor"]
        with pytest.raises(Exception) as info:
            audit_trail(s, ADMIN, since="last tuesday")
        assert "since" in str(info.value)


def test_since_includes_a_row_written_at_midnight(book, request):
    _raw_row(book, "2021-01-01 00:00:00", ANA_PF)
    with session_scope(book.engine) as s:
        assert len(audit_trail(s, ADMIN, portfolio=ANA_PF, since="2021-01-01")) == 2


def test_each_role_sees_its_own_part_of_the_trail(book):
    with session_scope(book.engine) as s:
        add_transaction(s, ANA, ANA_PF, "deposit", trade_date=DAY, amount=1.0)
        add_transaction(s, BEN, BEN_PF, "deposit", trade_date=DAY, amount=1.0)
        set_password(s, RITA, RITA, "rita's password")
        set_password(s, ANA, ANA, "ana's password")
        admin = audit_trail(s, ADMIN)
        system = audit_trail(s, SYSTEM)
        ana = audit_trail(s, ANA)
        rita = audit_trail(s, RITA)
    users = admin[admin["entity"] == "user"]
    assert len(users) == 4 + 2  # the four users added, two passwords set
    assert system.equals(admin)
    # an advisor: their clients' rows and their own actions, nothing of Ben's, nobody else's user rows
    assert set(ana["portfolio"].dropna()) == {ANA_PF}
    assert set(ana.loc[ana["entity"] == "user", "entity_id"]) == {ANA}
    assert len(ana) == len(admin[admin["portfolio"] == ANA_PF]) + 1
    # a researcher: every portfolio's rows and their own actions
    assert set(rita["portfolio"].dropna()) == {ANA_PF, BEN_PF}
    assert set(rita.loc[rita["entity"] == "user", "entity_id"]) == {RITA}
    assert len(rita) == admin["portfolio"].notna().sum() + 1


def test_a_deleted_portfolios_rows_stay_readable(book):
    with session_scope(book.engine) as s:
        add_transaction(s, BEN, BEN_PF, "deposit", trade_date=DAY, amount=1.0)
        update_portfolio(s, BEN, BEN_PF, description="closing")
    with session_scope(book.engine) as s:
        delete_portfolio(s, ADMIN, BEN_PF)
    with session_scope(book.engine) as s:
        trail = audit_trail(s, ADMIN, portfolio=BEN_PF)
        assert list(trail["action"]) == ["create", "transaction", "update", "delete"]
        assert list(trail["actor"]) == ["system:test", BEN, BEN, ADMIN]
        gone = trail.iloc[-1]["before"]
        assert gone["holdings"] == {"KO": 200.0, "JNJ": 30.0} and gone["cash"] == pytest.approx(5_001.0)
        assert gone["description"] == "closing" and gone["advisor"] == BEN
        # a researcher reads it too; Ana never does; Ben, its advisor when it was deleted, keeps its whole trail
        assert len(audit_trail(s, RITA, portfolio=BEN_PF)) == 4
        assert audit_trail(s, ANA, portfolio=BEN_PF).empty
        assert list(audit_trail(s, BEN, portfolio=BEN_PF)["action"]) == ["create", "transaction", "update", "delete"]


def test_a_new_portfolio_does_not_inherit_a_deleted_ones_trail(book, request):
    """The trail of a portfolio created after another was deleted is its own: the deleted one's rows
    (another advisor's client) do not show in it, whatever id the database gives the new one."""
    with session_scope(book.engine) as s:
        create_portfolio(s, ADMIN, "Ben Temp", "Secret Client", BEN, cash=1_000.0)
        add_transaction(s, BEN, "Ben Temp", "withdrawal", trade_date=dt.date.today(), amount=10.0)
    with session_scope(book.engine) as s:
        delete_portfolio(s, ADMIN, "Ben Temp")
    with session_scope(book.engine) as s:
        create_portfolio(s, ADMIN, "Ana New", "Client N", ANA, cash=1_000.0)
    with session_scope(book.engine) as s:
        mine = audit_trail(s, ANA, portfolio="Ana New")
        everything_of_ana = audit_trail(s, ANA)
    assert list(mine["portfolio"]) == ["Ana New"]
    assert "Ben Temp" not in set(everything_of_ana["portfolio"].dropna())


def test_recorded_runs_and_risk_numbers_are_in_the_trail(book):
    """record_optimization_run and record_risk_metrics write with an audit row naming the actor."""
    from types import SimpleNamespace

    from qpo.store import record_optimization_run, record_risk_metrics

    result = SimpleNamespace(weights={"AAPL": 0.6, "MSFT": 0.4}, objective="min_variance", method="convex",
                             solver="CLARABEL", status="optimal", expected_return=0.1, volatility=0.2, sharpe=0.5,
                             fallback_reason=None)
    row, run = one_row(book, lambda s: record_optimization_run(s, ANA, result, portfolio=ANA_PF, mlflow_run_id="abc"),
                       actor=ANA, role="advisor", action="record", entity="optimization_run", portfolio=ANA_PF)
    assert row.entity_id == str(run.id)
    assert row.after == {"objective": "min_variance", "method": "convex", "solver": "CLARABEL", "status": "optimal",
                         "n_weights": 2, "mlflow_run_id": "abc"}
    row, _ = one_row(book, lambda s: record_optimization_run(s, SYSTEM, result),
                     actor="system:test", role="system", action="record", entity="optimization_run", portfolio=None)
    row, written = one_row(book, lambda s: record_risk_metrics(s, SYSTEM, BEN_PF, DAY, {"volatility": 0.18,
                                                                                          "var_95": 0.021}),
                           actor="system:test", role="system", action="record", entity="risk_metrics",
                           portfolio=BEN_PF)
    assert len(written) == 2 and row.entity_id == "2024-03-28"
    assert row.after == {"as_of": "2024-03-28", "metrics": {"volatility": 0.18, "var_95": 0.021}, "mlflow_run_id": None}
    # a refused write appends no row
    last = last_audit_id(book.engine)
    with pytest.raises(Exception, match="may not"):
        with session_scope(book.engine) as s:
            record_risk_metrics(s, ANA, BEN_PF, DAY, {"volatility": 0.1})
    assert audit_rows_after(book.engine, last) == []
