"""Rebalance proposals (saved, listed, accepted into the ledger, rejected), the audit trail as the
actor may read it, and the optimization runs and risk numbers recorded for portfolios."""
from __future__ import annotations

import datetime as dt
import numbers
import shlex
from collections.abc import Mapping

import pandas as pd
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from qpo._checks import quote
from qpo.store import _inputs as check
from qpo.store import audit
from qpo.store._repo import ActorLike, _amount_ok, _collect
from qpo.store.access import actor_for
from qpo.store.models import (
    AuditEntry,
    ClientPortfolio,
    OptimizationRun,
    Proposal,
    RiskMetric,
    Transaction,
)
from qpo.store.portfolios import _append, _find, _lock, _position, get_portfolio

# -- proposals ------------------------------------------------------------------------------------
#: the largest id a row may have (PostgreSQL's integer column)
MAX_ID = 2**31 - 1
_TRADE_KEYS = ("side", "ticker", "shares", "price")
_RESULT_KEYS = ("objective", "method", "solver", "status", "weights")
_RECORD_KEYS = ("as_of", "prices_as_of", "strategy", "trades", "target", "summary", "result", "parameters",
                "ledger_version")


def save_proposal(session: Session, actor: ActorLike, name: str, record: Mapping) -> Proposal:
    """Store a rebalance proposal (``RebalanceProposal.to_record()``) as open."""
    who = actor_for(session, actor)
    portfolio = _find(session, name)
    who.require_change(portfolio, "propose a rebalance of")
    missing = [k for k in _RECORD_KEYS if k not in record]
    if missing:
        raise check.fail(f"a proposal record needs {', '.join(missing)} (RebalanceProposal.to_record())")
    _check_record(record)
    proposal = Proposal(portfolio_id=portfolio.id, created_by=who.email, status="open", as_of=record["as_of"],
                        prices_as_of=record["prices_as_of"], ledger_version=int(record["ledger_version"]),
                        strategy=record["strategy"], trades=list(record["trades"]), target=record["target"],
                        summary=record["summary"], result=record["result"], parameters=record["parameters"] or {})
    session.add(proposal)
    session.flush()
    audit.record(session, who, "propose", "proposal", entity_id=proposal.id, portfolio=portfolio,
                 after={"id": proposal.id, "as_of": str(proposal.as_of), "trades": proposal.trades,
                        "summary": proposal.summary})
    return proposal


def _check_record(record: Mapping) -> None:
    """What :func:`accept_proposal` reads of a record, checked before it is stored."""
    problems: list[str] = []
    version = record["ledger_version"]
    if isinstance(version, bool) or not isinstance(version, numbers.Integral) or not 0 <= int(version) <= MAX_ID:
        problems.append(f"ledger_version must be a whole number from 0 to {MAX_ID} (the ledger's last entry id), "
                        f"got {quote(version)}")
    result = record["result"]
    if not isinstance(result, Mapping):
        problems.append("result must be a mapping (RebalanceProposal.to_record())")
    else:
        absent = [k for k in _RESULT_KEYS if k not in result]
        if absent:
            problems.append(f"result lacks {', '.join(absent)}")
        elif not isinstance(result["weights"], Mapping) or not all(
                _amount_ok(v, "any") for v in result["weights"].values()):
            problems.append("result weights must map tickers to finite numbers")
    trades = record["trades"]
    if not isinstance(trades, (list, tuple)):
        problems.append("trades must be a list of trades")
        trades = []
    for i, t in enumerate(trades, start=1):
        if not isinstance(t, Mapping) or any(k not in t for k in _TRADE_KEYS):
            problems.append(f"trade {i}: needs {', '.join(_TRADE_KEYS)}")
            continue
        if t["side"] not in ("buy", "sell"):
            problems.append(f"trade {i}: side must be buy or sell, got {quote(t['side'], 20)}")
        for k, sign in (("shares", "positive"), ("price", "positive")):
            if not _amount_ok(t[k], sign):
                problems.append(f"trade {i}: {k} must be a finite {sign} number, got {quote(t[k], 20)}")
        if "cost" in t and t["cost"] is not None and not _amount_ok(t["cost"], "nonnegative"):
            problems.append(f"trade {i}: cost must be a finite number >= 0, got {quote(t['cost'], 20)}")
        if not isinstance(t["ticker"], str) or not t["ticker"].strip():
            problems.append(f"trade {i}: ticker must be text, got {quote(t['ticker'], 20)}")
    if not isinstance(record["target"], Mapping):
        problems.append("target must map tickers to weights")
    if problems:
        raise check.report("proposal", problems)


def get_proposal(session: Session, actor: ActorLike, proposal_id: int) -> Proposal:
    who = actor_for(session, actor)
    if isinstance(proposal_id, bool) or not isinstance(proposal_id, numbers.Integral) or proposal_id < 1:
        raise check.fail(f"a proposal id is a whole number >= 1, got {quote(proposal_id)}")
    proposal_id = int(proposal_id)
    if proposal_id > MAX_ID:
        raise check.fail(f"no proposal {quote(proposal_id, 30)}: proposal ids go up to {MAX_ID:,}")
    proposal = session.get(Proposal, proposal_id)
    if proposal is None:
        raise check.fail(f"no proposal {proposal_id}; `qpo rebalance list` shows the ones you may see")
    who.require_read(proposal.portfolio)
    return proposal


def list_proposals(session: Session, actor: ActorLike, name: str | None = None,
                   status: str | None = None) -> pd.DataFrame:
    who = actor_for(session, actor)
    q = select(Proposal).join(ClientPortfolio).order_by(Proposal.id)
    if name is not None:
        q = q.where(Proposal.portfolio_id == get_portfolio(session, who, name).id)
    elif who.role == "advisor":
        q = q.where(ClientPortfolio.advisor_id == who.user_id)
    if status is not None:
        if status not in ("open", "accepted", "rejected"):
            raise check.fail(f"status must be open, accepted or rejected, got {quote(status)}")
        q = q.where(Proposal.status == status)
    rows = session.scalars(q).all()
    return pd.DataFrame([{"id": p.id, "portfolio": p.portfolio.name, "status": p.status, "as_of": p.as_of,
                          "prices_as_of": p.prices_as_of, "n_trades": len(p.trades),
                          "turnover": (p.summary or {}).get("turnover"), "total_cost": (p.summary or {}).get("total_cost"),
                          "created_by": p.created_by, "created_at": p.created_at, "decided_by": p.decided_by,
                          "reason": p.reason} for p in rows],
                        columns=["id", "portfolio", "status", "as_of", "prices_as_of", "n_trades", "turnover",
                                 "total_cost", "created_by", "created_at", "decided_by", "reason"])


def _decidable(proposal: Proposal) -> None:
    if proposal.status != "open":
        when = proposal.decided_at.date() if proposal.decided_at is not None else "earlier"
        raise check.fail(f"proposal {proposal.id} was {proposal.status} on {when} by {proposal.decided_by}: it cannot "
                         "be accepted or rejected again (propose anew)")


def accept_proposal(session: Session, actor: ActorLike, proposal_id: int, *, latest_price_date,
                    trade_date=None, changed_closes=()) -> Proposal:
    """Accept an open proposal: its trades become ledger entries (sells first, dated ``trade_date``,
    default the proposal's date, whose holdings it was built on), the optimization run is recorded,
    and the audit row written, all in the caller's transaction. Refused when the proposal is not
    open, when newer prices exist (``latest_price_date`` after the prices it was built on) or closes
    it was built on changed (``changed_closes``, ``TICKER was -> now``), when the
    ledger changed since it was built or holds entries dated after the trade date: rebuild it then."""
    who = actor_for(session, actor)
    proposal = get_proposal(session, who, proposal_id)
    portfolio = proposal.portfolio
    who.require_change(portfolio, "accept a proposal for")
    _lock(session, portfolio)
    session.refresh(proposal)
    _decidable(proposal)
    latest = check.day(latest_price_date, "latest price date")
    if latest > proposal.prices_as_of:
        raise check.fail(f"proposal {proposal.id} was built on prices of {proposal.prices_as_of}; prices up to {latest} "
                         f"exist: rebuild it (`qpo rebalance propose {shlex.quote(portfolio.name)}`) before accepting")
    if changed_closes:
        raise check.fail(f"proposal {proposal.id} was built on closes of {proposal.prices_as_of} that have changed since "
                         f"({check.names_list(list(changed_closes))}): rebuild it (`qpo rebalance propose "
                         f"{shlex.quote(portfolio.name)}`) before accepting")
    now = _position(session, portfolio)
    if now.last_transaction_id != proposal.ledger_version:
        raise check.fail(f"the ledger of {quote(portfolio.name)} changed since proposal {proposal.id} was built (it "
                         f"was at entry {proposal.ledger_version}, it is at {now.last_transaction_id}): rebuild it")
    day = check.day(trade_date if trade_date is not None else proposal.as_of, "trade date")
    later = session.scalar(select(func.max(Transaction.trade_date)).where(Transaction.portfolio_id == portfolio.id))
    if later is not None and later > day:
        raise check.fail(f"the ledger of {quote(portfolio.name)} has entries up to {later}, after the trade date {day}: "
                         f"trades dated {day} would change what those entries found; rebuild the proposal as of "
                         f"{later} or later")
    trades = sorted(proposal.trades, key=lambda t: t["side"] != "sell")
    rows = [dict(kind=t["side"], trade_date=day, ticker=t["ticker"], quantity=t["shares"], price=t["price"],
                 fees=t.get("cost", 0.0), note=f"rebalance proposal {proposal.id}") for t in trades]
    written: list[Transaction] = []
    change: dict = {"before": {"holdings": now.shares.to_dict(), "cash": now.cash}, "after": {"entries": []}}
    if rows:
        written, change = _append(session, who, portfolio, rows, None, proposal_id=proposal.id)
    result = proposal.result
    run = OptimizationRun(portfolio_id=portfolio.id, objective=result["objective"], method=result["method"],
                          solver=result["solver"], status=result["status"],
                          expected_return=result.get("expected_return"), volatility=result.get("volatility"),
                          sharpe=result.get("sharpe"), weights=result["weights"],
                          parameters=(proposal.parameters or {}) | {"proposal_id": proposal.id},
                          fallback_reason=result.get("fallback_reason"), mlflow_run_id=result.get("mlflow_run_id"))
    session.add(run)
    session.flush()
    proposal.status = "accepted"
    proposal.decided_by = who.email
    proposal.decided_at = dt.datetime.now(dt.UTC)
    proposal.optimization_run_id = run.id
    session.flush()
    audit.record(session, who, "accept", "proposal", entity_id=proposal.id, portfolio=portfolio,
                 before={"status": "open"},
                 after={"status": "accepted", "optimization_run_id": run.id, "n_trades": len(rows),
                        "transactions": [t.id for t in written], "holdings_before": change["before"]["holdings"],
                        "cash_before": change["before"]["cash"]} | change["after"])
    return proposal


def reject_proposal(session: Session, actor: ActorLike, proposal_id: int, reason: str) -> Proposal:
    """Reject an open proposal, with the reason (required: text of at most 100,000 characters)."""
    who = actor_for(session, actor)
    proposal = get_proposal(session, who, proposal_id)
    who.require_change(proposal.portfolio, "reject a proposal for")
    _lock(session, proposal.portfolio)
    session.refresh(proposal)
    _decidable(proposal)
    text = check.text(reason, "reason")
    if not text.strip():
        raise check.fail("a rejection needs a reason (--reason TEXT)")
    proposal.status = "rejected"
    proposal.reason = text
    proposal.decided_by = who.email
    proposal.decided_at = dt.datetime.now(dt.UTC)
    session.flush()
    audit.record(session, who, "reject", "proposal", entity_id=proposal.id, portfolio=proposal.portfolio,
                 before={"status": "open"}, after={"status": "rejected", "reason": text})
    return proposal


def last_accepted_target(session: Session, actor: ActorLike, name: str) -> pd.Series | None:
    """The target weights of the portfolio's last accepted proposal (what drift is measured against),
    or None when none was accepted."""
    portfolio = get_portfolio(session, actor, name)
    proposal = session.scalar(select(Proposal).where(Proposal.portfolio_id == portfolio.id,
                                                     Proposal.status == "accepted").order_by(Proposal.id.desc()).limit(1))
    return None if proposal is None else pd.Series(proposal.target, dtype=float, name="target")


# -- the trail --------------------------------------------------------------------------------------
def audit_trail(session: Session, actor: ActorLike, portfolio: str | None = None, since=None,
                limit: int | None = None) -> pd.DataFrame:
    """The audit rows ``actor`` may read (see :func:`qpo.store.audit.trail`), for one portfolio
    (by its name; a deleted portfolio's rows keep its name) and from a date when given."""
    who = actor_for(session, actor)
    target: ClientPortfolio | str | None = None
    if portfolio is not None:
        pname = check.label(portfolio, "portfolio name")
        found = session.scalar(select(ClientPortfolio).where(ClientPortfolio.name == pname))
        if found is not None and who.may_read(found):
            target = found  # its rows, and those of deleted portfolios that had its name
        elif found is not None:
            earlier = session.scalar(select(AuditEntry.id).where(AuditEntry.portfolio == pname,
                                                                 AuditEntry.portfolio_id != found.id).limit(1))
            if earlier is None:
                who.require_read(found)  # another advisor's client, and no deleted portfolio of that name
            target = pname  # the deleted portfolios' rows this actor may read (audit.trail's rules)
        else:
            target = pname
    day = None if since is None else check.day(since, "since")
    return audit.trail(session, who, portfolio=target, since=day, limit=limit)


# -- runs and risk numbers --------------------------------------------------------------------------
_RESULT_FIELDS = ("weights", "objective", "method", "solver", "status", "expected_return", "volatility", "sharpe",
                  "fallback_reason")


def record_optimization_run(session: Session, actor: ActorLike, result, *, portfolio: str | None = None,
                            parameters: dict | None = None, mlflow_run_id: str | None = None) -> OptimizationRun:
    """Persist an :class:`~qpo.OptimizationResult`. Its labels, weights (finite), parameters (JSON:
    text, finite numbers, bools, None, lists, dicts) and run id are checked first; a statistic that is
    not finite (the Sharpe ratio of a zero volatility) is stored as NULL, undefined. A run of a
    portfolio needs the right to change it. The audit trail gets a ``record`` row naming the actor
    (entity ``optimization_run``)."""
    who = actor_for(session, actor)
    missing = [f for f in _RESULT_FIELDS if not hasattr(result, f)]
    if missing:
        raise check.fail(f"result must be an OptimizationResult (qpo.optimize's answer); {quote(result)} has no "
                         f"{', '.join(missing)}")
    pid, p = None, None
    if portfolio is not None:
        p = _find(session, portfolio)
        who.require_change(p, "record an optimization run for")
        pid = p.id
    run = OptimizationRun(
        portfolio_id=pid, objective=result.objective, method=result.method, solver=result.solver,
        status=result.status, expected_return=result.expected_return, volatility=result.volatility,
        sharpe=result.sharpe, weights=result.weights, parameters=parameters or {},
        fallback_reason=result.fallback_reason, mlflow_run_id=mlflow_run_id)
    session.add(run)
    session.flush()
    audit.record(session, who, "record", "optimization_run", entity_id=run.id, portfolio=p,
                 after={"objective": run.objective, "method": run.method, "solver": run.solver, "status": run.status,
                        "n_weights": len(run.weights or {}), "mlflow_run_id": mlflow_run_id})
    return run


def record_risk_metrics(session: Session, actor: ActorLike, portfolio: str, as_of, metrics: Mapping[str, float], *,
                        mlflow_run_id: str | None = None) -> list[RiskMetric]:
    """Persist named risk numbers of a portfolio as of a date (a system actor's job: the daily
    report; or anyone who may change the portfolio). Names are labels of at most 64 characters;
    values that are not finite numbers are refused, and nothing is written.

    Numbers of a tracked run are kept per run; recording the same metric of the same portfolio, date
    and run again (or again without a run: a notebook run by hand) replaces the earlier number. The
    audit trail gets a ``record`` row naming the actor (entity ``risk_metrics``, the numbers after).
    """
    who = actor_for(session, actor)
    problems: list[str] = []
    day = _collect(problems, check.day, as_of, "as_of")
    run_id = _collect(problems, check.optional_label, mlflow_run_id, "mlflow_run_id", check.LABEL64)
    values: dict[str, float] = {}
    bad: list[str] = []
    items = _collect(problems, check.mapping_items, metrics, "metrics")
    for key, value in items or []:
        metric = _collect(problems, check.label, key, "metric name", check.LABEL64)
        if metric is not None and metric in values:
            problems.append(f"metric {quote(metric)} given twice")
        elif not _amount_ok(value, "any"):
            bad.append(f"{quote(metric if metric is not None else key, 20)}={quote(value, 20)}")
        elif metric is not None:
            values[metric] = float(value)
    if bad:
        problems.append(f"values that are not finite numbers: {', '.join(bad)}")
    if problems:
        raise check.report("risk metrics", problems)
    p = _find(session, portfolio)
    who.require_change(p, "record risk numbers of")
    if values:
        same_run = RiskMetric.mlflow_run_id.is_(None) if run_id is None else RiskMetric.mlflow_run_id == run_id
        session.execute(delete(RiskMetric).where(
            RiskMetric.portfolio_id == p.id, RiskMetric.as_of == day, same_run, RiskMetric.metric.in_(list(values))))
    rows = [RiskMetric(portfolio_id=p.id, as_of=day, metric=k, value=v, mlflow_run_id=run_id) for k, v in values.items()]
    session.add_all(rows)
    session.flush()
    if rows:
        audit.record(session, who, "record", "risk_metrics", entity_id=str(day), portfolio=p,
                     after={"as_of": str(day), "metrics": values, "mlflow_run_id": run_id})
    return rows


def risk_history(session: Session, actor: ActorLike, portfolio: str) -> pd.DataFrame:
    pid = get_portfolio(session, actor, portfolio).id
    rows = session.scalars(select(RiskMetric).where(RiskMetric.portfolio_id == pid)
                           .order_by(RiskMetric.as_of, RiskMetric.metric)).all()
    return pd.DataFrame([{"as_of": r.as_of, "metric": r.metric, "value": r.value,
                          "mlflow_run_id": r.mlflow_run_id} for r in rows],
                        columns=["as_of", "metric", "value", "mlflow_run_id"])
