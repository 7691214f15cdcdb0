"""Alerts (qpo.store.operations sync, qpo.store.alerts, ``qpo alerts``): one alert per (portfolio,
check) while the breach lasts, resolved when a later run passes, new again when it comes back;
severity by the documented rule; each person sees and acknowledges only what they may."""
from __future__ import annotations

import io
import json
import math
import sys

import numpy as np
import pytest
from sqlalchemy import func, select

from qpo.errors import AccessDenied, StoreError
from qpo.store import Actor, Alert, AuditEntry, session_scope
from qpo.store import operations as ops
from qpo.store.alerts import acknowledge_alert, list_alerts, mark_delivered, undelivered_alerts
from tests.test_operations.test_ops_store import D1, D2, D3, D4, details_for, portfolio_ids, risk_table
from tests.test_store import book_stores
from tests.test_store.book_stores import (
    ADMIN,
    ANA,
    ANA_PF,
    BEN,
    BEN_PF,
    RITA,
)

store_url, engine, book = book_stores.store_url, book_stores.engine, book_stores.book  # the fixtures

VAR = "VaR (historical)"
MAXW = "max single name"


def breach(pid: int, check: str, value: float, limit: float) -> dict:
    return {"portfolio_id": pid, "check": check, "value": value, "limit": limit,
            "message": f"{check} {value:.4f} against a limit of {limit:.4f}"}


def run(engine, day, ids, breaches, *, compliant=None):
    table = risk_table(ids, compliant=True)
    for pid, flag in (compliant or {}).items():
        table.loc[pid, "compliant"] = flag
    for b in breaches:
        table.loc[b["portfolio_id"], "compliant"] = False
    return ops.write_book_risk(engine, day, table, details_for(ids), breaches, run_id=None)


def alerts_table(engine) -> list[tuple]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(select(Alert.id, Alert.portfolio_id, Alert.check_name, Alert.state,
                                                      Alert.first_seen, Alert.last_seen, Alert.resolved_on,
                                                      Alert.value, Alert.severity).order_by(Alert.id))]


def test_severity_rule():
    # a ceiling: critical from 25 % of the limit past it
    assert ops.severity(0.025, 0.02) == "critical"
    assert ops.severity(0.0249, 0.02) == "warning"
    assert ops.severity(0.21, 0.20) == "warning"
    assert ops.severity(0.30, 0.20) == "critical"
    # a floor (min names): the shortfall counts the same way
    assert ops.severity(3.0, 4.0) == "critical"
    assert ops.severity(4.0, 5.0) == "warning"
    # undefined value, a zero cap
    assert ops.severity(math.nan, 0.02) == "critical" and ops.severity(None, 0.02) == "critical"
    assert ops.severity(0.01, 0.0) == "critical"


def test_one_alert_while_a_breach_lasts_resolved_when_it_passes_new_when_it_returns(book):
    ids = portfolio_ids(book.engine)
    ana, ben = ids[ANA_PF], ids[BEN_PF]
    both = [ana, ben]

    day1 = run(book.engine, D1, both, [breach(ana, VAR, 0.03, 0.02), breach(ben, MAXW, 0.21, 0.20)])
    assert [(a["portfolio"], a["check"], a["severity"], a["state"]) for a in day1.new] == [
        (ANA_PF, VAR, "critical", "new"), (BEN_PF, MAXW, "warning", "new")]
    assert day1.new[0]["advisor_email"] == ANA and day1.new[1]["advisor_email"] == BEN
    assert day1.new[0]["value"] == 0.03 and day1.new[0]["limit"] == 0.02 and day1.new[0]["first_seen"] == D1
    assert day1.resolved == [] and day1.persisting == []
    first_ids = [a["id"] for a in day1.new]

    # day 2: both persist (Ana's VaR eases to a warning): the same two alerts, updated
    day2 = run(book.engine, D2, both, [breach(ana, VAR, 0.022, 0.02), breach(ben, MAXW, 0.26, 0.20)])
    assert day2.new == [] and day2.resolved == []
    assert [a["id"] for a in day2.persisting] == first_ids
    assert [(a["value"], a["severity"], a["first_seen"], a["last_seen"]) for a in day2.persisting] == [
        (0.022, "warning", D1, D2), (0.26, "critical", D1, D2)]

    # rerunning day 2 duplicates nothing
    again = run(book.engine, D2, both, [breach(ana, VAR, 0.022, 0.02), breach(ben, MAXW, 0.26, 0.20)])
    assert again.new == [] and [a["id"] for a in again.persisting] == first_ids
    assert len(alerts_table(book.engine)) == 2

    # day 3: Ana passes -> resolved; Ben was not evaluated (no prices) -> his alert stays open
    day3 = run(book.engine, D3, both, [], compliant={ben: None})
    assert [(a["id"], a["state"], a["resolved_on"]) for a in day3.resolved] == [(first_ids[0], "resolved", D3)]
    assert day3.new == [] and day3.persisting == []
    assert [a["state"] for a in list_alerts(book.engine, actor=ADMIN)] == ["new", "resolved"]

    # day 4: Ana's breach is back: a new alert, not the resolved one reopened
    day4 = run(book.engine, D4, both, [breach(ana, VAR, 0.05, 0.02), breach(ben, MAXW, 0.26, 0.20)])
    assert len(day4.new) == 1 and day4.new[0]["id"] not in first_ids and day4.new[0]["first_seen"] == D4
    assert [a["id"] for a in day4.persisting] == [first_ids[1]]
    rows = alerts_table(book.engine)
    assert [(r[1], r[2], r[3], r[4], r[5], r[6]) for r in rows] == [
        (ana, VAR, "resolved", D1, D2, D3), (ben, MAXW, "new", D1, D4, None), (ana, VAR, "new", D4, D4, None)]

    # rerunning day 2 now (inside the resolved alert's span) raises nothing new
    old = run(book.engine, D2, both, [breach(ana, VAR, 0.022, 0.02), breach(ben, MAXW, 0.26, 0.20)])
    assert old.new == [] and len(alerts_table(book.engine)) == 3


def test_rerunning_the_date_that_resolved_an_alert_reopens_it(book):
    ids = portfolio_ids(book.engine)
    ana = ids[ANA_PF]
    first = run(book.engine, D1, [ana], [breach(ana, VAR, 0.03, 0.02)]).new[0]["id"]
    assert run(book.engine, D2, [ana], []).resolved[0]["id"] == first
    redo = run(book.engine, D2, [ana], [breach(ana, VAR, 0.031, 0.02)])  # D2 rerun with corrected data
    assert redo.new == [] and [(a["id"], a["state"], a["resolved_on"]) for a in redo.persisting] == [(first, "new", None)]
    assert len(alerts_table(book.engine)) == 1


def test_rerunning_an_older_date_keeps_the_alerts_latest_value_and_severity(book):
    """After the 27th (critical, 49 %), a rerun of the 20th (warning, 31 %) showed 31 % and 'warning'
    for a span ending on the 27th: a value and severity no date had."""
    ids = portfolio_ids(book.engine)
    ana = ids[ANA_PF]
    first = run(book.engine, D2, [ana], [breach(ana, MAXW, 0.4946, 0.30)]).new[0]["id"]
    older = run(book.engine, D1, [ana], [breach(ana, MAXW, 0.3120, 0.30)])
    [alert] = older.persisting
    assert (alert["id"], alert["value"], alert["severity"], alert["first_seen"], alert["last_seen"]) == (
        first, 0.4946, "critical", D1, D2)
    latest = run(book.engine, D2, [ana], [breach(ana, MAXW, 0.45, 0.30)]).persisting[0]  # the latest date rerun: updated
    assert (latest["value"], latest["first_seen"], latest["last_seen"]) == (0.45, D1, D2)


def test_each_person_sees_what_they_may_and_acknowledging_is_audited(book):
    ids = portfolio_ids(book.engine)
    ana, ben = ids[ANA_PF], ids[BEN_PF]
    sync = run(book.engine, D1, [ana, ben], [breach(ana, VAR, 0.03, 0.02), breach(ben, MAXW, 0.21, 0.20)])
    a_id, b_id = (a["id"] for a in sync.new)

    assert [a["id"] for a in list_alerts(book.engine, actor=ANA)] == [a_id]
    assert [a["id"] for a in list_alerts(book.engine, actor=BEN)] == [b_id]
    for who in (RITA, ADMIN, Actor.system("nightly")):
        assert [a["id"] for a in list_alerts(book.engine, actor=who)] == [b_id, a_id]  # newest first
    with pytest.raises(AccessDenied, match="no actor named"):
        list_alerts(book.engine, actor=None)
    with pytest.raises(StoreError, match="alert state must be one of new, acknowledged, resolved, open"):
        list_alerts(book.engine, actor=ANA, state="closed")

    with pytest.raises(AccessDenied, match=f"may not acknowledge alert {a_id}: it belongs to another advisor"):
        acknowledge_alert(book.engine, a_id, actor=BEN)
    with pytest.raises(AccessDenied, match="a researcher reads alerts and changes none"):
        acknowledge_alert(book.engine, a_id, actor=RITA)
    with pytest.raises(StoreError, match="no alert 987654; `qpo alerts` lists"):
        acknowledge_alert(book.engine, 987654, actor=ANA)
    with pytest.raises(StoreError, match="alert id is a whole number"):
        acknowledge_alert(book.engine, "seven", actor=ANA)
    with session_scope(book.engine) as s:
        audits_before = s.scalar(select(func.count(AuditEntry.id)))

    acked = acknowledge_alert(book.engine, a_id, actor=ANA)
    assert acked["state"] == "acknowledged" and acked["acknowledged_by"] == ANA and acked["acknowledged_at"]
    again = acknowledge_alert(book.engine, a_id, actor=ADMIN)  # already acknowledged: returned as it is
    assert again["acknowledged_by"] == ANA
    with session_scope(book.engine) as s:
        rows = s.scalars(select(AuditEntry).order_by(AuditEntry.id)).all()[audits_before:]
        assert [(r.actor, r.role, r.action, r.entity, r.entity_id, r.portfolio, r.after["state"]) for r in rows] == [
            (ANA, "advisor", "acknowledge", "alert", str(a_id), ANA_PF, "acknowledged")]
    assert [a["id"] for a in list_alerts(book.engine, actor=ANA, state="acknowledged")] == [a_id]
    assert [a["id"] for a in list_alerts(book.engine, actor=ADMIN, state="new")] == [b_id]
    assert len(list_alerts(book.engine, actor=ADMIN, state="open")) == 2

    # an acknowledged alert persists as acknowledged, then resolves
    day2 = run(book.engine, D2, [ana, ben], [breach(ana, VAR, 0.04, 0.02)])
    assert [(a["id"], a["state"]) for a in day2.persisting] == [(a_id, "acknowledged")]
    assert [a["id"] for a in day2.resolved] == [b_id]
    with pytest.raises(StoreError, match=f"alert {b_id} .* was resolved on {D2}"):
        acknowledge_alert(book.engine, b_id, actor=BEN)


def test_delivery_bookkeeping(book):
    ids = portfolio_ids(book.engine)
    ana, ben = ids[ANA_PF], ids[BEN_PF]
    sync = run(book.engine, D1, [ana, ben], [breach(ana, VAR, 0.03, 0.02), breach(ben, MAXW, 0.21, 0.20)])
    assert [a["id"] for a in undelivered_alerts(book.engine)] == [a["id"] for a in sync.new]
    assert mark_delivered(book.engine, [sync.new[0]["id"]]) == 1
    assert [a["id"] for a in undelivered_alerts(book.engine)] == [sync.new[1]["id"]]


# -- the command line ---------------------------------------------------------------------------------
def qpo(capsys, monkeypatch, *argv):
    from qpo.cli import main

    capsys.readouterr()
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    code = main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_cli_lists_and_acknowledges(book, store_url, capsys, monkeypatch):
    monkeypatch.setenv("QPO_DATABASE_URL", store_url)
    ids = portfolio_ids(book.engine)
    ana, ben = ids[ANA_PF], ids[BEN_PF]
    sync = run(book.engine, D1, [ana, ben], [breach(ana, VAR, 0.03, 0.02), breach(ben, "min names", 3.0, 5.0)])
    a_id, b_id = (a["id"] for a in sync.new)

    code, out, err = qpo(capsys, monkeypatch, "alerts", "--as", ANA)
    assert code == 0 and ANA_PF in out and BEN_PF not in out and "3.00%" in out and "2.00%" in out, (out, err)
    code, out, _ = qpo(capsys, monkeypatch, "alerts", "--json", "--as", RITA)
    doc = json.loads(out)
    assert code == 0 and doc["count"] == 2 and [a["id"] for a in doc["alerts"]] == [b_id, a_id]
    assert doc["alerts"][0]["check"] == "min names" and doc["alerts"][0]["value"] == 3.0
    assert doc["alerts"][0]["severity"] == "critical" and doc["alerts"][0]["first_seen"] == D1.isoformat()
    code, out, _ = qpo(capsys, monkeypatch, "alerts", "--as", RITA)
    assert " 3 " in out and " 5 " in out  # a count is shown as a count, not a percentage

    monkeypatch.setenv("QPO_USER", BEN)  # the actor from QPO_USER
    code, out, err = qpo(capsys, monkeypatch, "alerts", "ack", a_id, "--json")
    assert code == 4 and json.loads(out)["kind"] == "AccessDenied" and "another advisor" in err
    code, out, err = qpo(capsys, monkeypatch, "alerts", "ack", 424242)
    assert code == 2 and "no alert 424242" in err and out == ""
    code, out, err = qpo(capsys, monkeypatch, "alerts", "ack", b_id)
    assert code == 0 and f"alert {b_id} (min names of '{BEN_PF}') acknowledged by {BEN}" in out, (out, err)
    code, out, _ = qpo(capsys, monkeypatch, "alerts", "--state", "new", "--json", "--as", ADMIN)
    assert [a["id"] for a in json.loads(out)["alerts"]] == [a_id]
    code, out, _ = qpo(capsys, monkeypatch, "alerts", "--state", "resolved")
    assert code == 0 and "no resolved alerts you may see" in out
    monkeypatch.delenv("QPO_USER")
    code, out, err = qpo(capsys, monkeypatch, "alerts", "--json")
    assert code == 4 and "no actor named" in json.loads(out)["error"]
    code, out, err = qpo(capsys, monkeypatch, "alerts", "--as", "nobody@qpo.test")
    assert code == 4 and "not a user of this store" in err


def test_cli_refuses_a_missing_store(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("QPO_DATABASE_URL", f"sqlite:///{tmp_path / 'none.db'}")
    code, out, err = qpo(capsys, monkeypatch, "alerts", "--as", ANA)
    assert code == 3 and "no store" in err and not (tmp_path / "none.db").exists()


def test_values_missing_in_breaches_are_stored_as_null(book):
    ids = portfolio_ids(book.engine)
    ana = ids[ANA_PF]
    sync = run(book.engine, D1, [ana], [breach(ana, VAR, np.nan, 0.02) | {"value": np.float64(np.nan)}])
    assert sync.new[0]["value"] is None and sync.new[0]["severity"] == "critical"


def test_an_acknowledged_alert_is_not_delivered_and_a_warning_grown_critical_is_news_again(book):
    """An alert acknowledged before any delivery reached anyone was e-mailed later as 'new'; a
    delivered warning that grew critical (37.46 % -> 37.52 % of a 30 % cap) was never told. Now the
    acknowledged one is left out of delivery, and the escalation makes the alert new again,
    undelivered, unacknowledged: the next delivery carries it."""
    ids = portfolio_ids(book.engine)
    ana, ben = ids[ANA_PF], ids[BEN_PF]
    sync = run(book.engine, D1, [ana, ben], [breach(ana, MAXW, 0.3746, 0.30), breach(ben, MAXW, 0.31, 0.30)])
    warned, seen = sync.new[0]["id"], sync.new[1]["id"]
    assert [a["severity"] for a in sync.new] == ["warning", "warning"]
    acknowledge_alert(book.engine, seen, actor=BEN)  # before any delivery
    assert [a["id"] for a in undelivered_alerts(book.engine)] == [warned]
    mark_delivered(book.engine, [warned])
    acknowledge_alert(book.engine, warned, actor=ANA)
    assert undelivered_alerts(book.engine) == []
    day2 = run(book.engine, D2, [ana, ben], [breach(ana, MAXW, 0.3752, 0.30), breach(ben, MAXW, 0.312, 0.30)])
    by_id = {a["id"]: a for a in day2.persisting}
    assert by_id[warned]["severity"] == "critical" and by_id[warned]["state"] == "new"
    assert by_id[seen]["severity"] == "warning" and by_id[seen]["state"] == "acknowledged"
    assert [a["id"] for a in undelivered_alerts(book.engine)] == [warned]
    day3 = run(book.engine, D3, [ana, ben], [breach(ana, MAXW, 0.38, 0.30), breach(ben, MAXW, 0.312, 0.30)])
    assert {a["id"]: a["state"] for a in day3.persisting}[warned] == "new"  # critical still: not escalated again
    mark_delivered(book.engine, [warned])
    run(book.engine, D4, [ana, ben], [breach(ana, MAXW, 0.39, 0.30), breach(ben, MAXW, 0.312, 0.30)])
    assert undelivered_alerts(book.engine) == []


def test_a_delivery_does_not_stamp_an_alert_escalated_while_it_was_under_way(book):
    """A delivery read the alert as a warning and sent it; a concurrent run escalated it to critical
    (new again, undelivered) before the delivery stamped it: the stamp made the critical one
    'delivered', never sent. Only the severity sent is stamped now."""
    ids = portfolio_ids(book.engine)
    ana = ids[ANA_PF]
    alert = run(book.engine, D1, [ana], [breach(ana, MAXW, 0.31, 0.30)]).new[0]
    run(book.engine, D2, [ana], [breach(ana, MAXW, 0.40, 0.30)])  # escalated meanwhile
    assert mark_delivered(book.engine, [alert["id"]], severities={alert["id"]: "warning"}) == 0
    assert [a["id"] for a in undelivered_alerts(book.engine)] == [alert["id"]]
    assert mark_delivered(book.engine, [alert["id"]], severities={alert["id"]: "critical"}) == 1
