"""Reads and writes of the store. Every write runs inside the caller's transaction
(:func:`qpo.store.session_scope`), is checked before it is sent, and is rolled back whole
when anything fails."""
from __future__ import annotations

import datetime as dt
import math
import numbers
from collections.abc import Mapping

import pandas as pd
from sqlalchemy import delete, select
from sqlalchemy.orm import Session, selectinload

from qpo.errors import StoreError
from qpo.store.models import (
    Advisor,
    ClientPortfolio,
    Holding,
    OptimizationRun,
    RiskMetric,
)


def get_or_create_advisor(session: Session, email: str, name: str, role: str = "advisor") -> Advisor:
    advisor = session.scalar(select(Advisor).where(Advisor.email == email))
    if advisor is None:
        advisor = Advisor(email=email, name=name, role=role)
        session.add(advisor)
        session.flush()
    return advisor


def create_portfolio(session: Session, name: str, client_name: str, advisor: Advisor,
                     holdings: Mapping[str, float], *, benchmark: str | None = None,
                     description: str | None = None, known_tickers=None) -> ClientPortfolio:
    """Create a portfolio with its holdings (ticker -> share quantity > 0), all or nothing."""
    problems = []
    if not name or not name.strip():
        problems.append("name is empty")
    elif len(name) > 255 or len(client_name) > 255:
        problems.append("name and client name must be at most 255 characters")
    elif session.scalar(select(ClientPortfolio.id).where(ClientPortfolio.name == name)) is not None:
        problems.append(f"a portfolio named {name!r} exists already")
    if not holdings:
        problems.append("no holdings given")
    for ticker, qty in holdings.items():
        if not isinstance(ticker, str) or not ticker.strip() or len(ticker) > 16:
            problems.append(f"ticker {ticker!r} is not a symbol of 1 to 16 characters")
        if not _is_number(qty) or not math.isfinite(qty) or qty <= 0:
            problems.append(f"{ticker}: quantity {qty!r} must be a positive number of shares")
        if known_tickers is not None and ticker not in known_tickers:
            problems.append(f"{ticker}: not in the price data")
    if problems:
        raise StoreError(f"portfolio {name!r} not written: " + "; ".join(problems))
    portfolio = ClientPortfolio(name=name, client_name=client_name, advisor=advisor, benchmark=benchmark,
                                description=description, base_currency="USD")
    portfolio.holdings = [Holding(ticker=t, quantity=float(q)) for t, q in holdings.items()]
    session.add(portfolio)
    session.flush()
    return portfolio


def _is_number(v) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


def _finite_or_none(v):
    return float(v) if _is_number(v) and math.isfinite(v) else None


def list_portfolios(session: Session) -> pd.DataFrame:
    """One row per portfolio: name, client, advisor, number of holdings."""
    rows = session.scalars(select(ClientPortfolio).options(
        selectinload(ClientPortfolio.holdings), selectinload(ClientPortfolio.advisor))
        .order_by(ClientPortfolio.name)).all()
    return pd.DataFrame([{"name": p.name, "client": p.client_name, "advisor": p.advisor.name,
                          "benchmark": p.benchmark, "n_holdings": len(p.holdings),
                          "description": p.description} for p in rows],
                        columns=["name", "client", "advisor", "benchmark", "n_holdings", "description"])


def get_portfolio(session: Session, name: str) -> ClientPortfolio:
    portfolio = session.scalar(select(ClientPortfolio).options(selectinload(ClientPortfolio.holdings))
                               .where(ClientPortfolio.name == name))
    if portfolio is None:
        names = session.scalars(select(ClientPortfolio.name).order_by(ClientPortfolio.name)).all()
        raise StoreError(f"no portfolio named {name!r}; the store has: {', '.join(names) or '(none)'}")
    return portfolio


def portfolio_holdings(session: Session, name: str) -> pd.Series:
    """Share quantities by ticker."""
    p = get_portfolio(session, name)
    return pd.Series({h.ticker: h.quantity for h in p.holdings}, name="quantity", dtype=float)


def portfolio_weights(session: Session, name: str, prices: pd.DataFrame,
                      as_of: str | pd.Timestamp | None = None) -> pd.Series:
    """Market-value weights of a portfolio at the last price on or before ``as_of``."""
    qty = portfolio_holdings(session, name)
    missing = [t for t in qty.index if t not in prices.columns]
    if missing:
        raise StoreError(f"portfolio {name!r} holds {missing}, which the price data lacks")
    px = prices[qty.index]
    if as_of is not None:
        px = px.loc[:pd.Timestamp(as_of)]
    px = px.dropna(how="any")
    if px.empty:
        raise StoreError(f"no prices for all of {list(qty.index)} on or before {as_of}")
    value = qty * px.iloc[-1]
    return (value / value.sum()).rename("weight")


def record_optimization_run(session: Session, result, *, portfolio: str | None = None,
                            parameters: dict | None = None, mlflow_run_id: str | None = None) -> OptimizationRun:
    """Persist an :class:`~qpo.OptimizationResult`."""
    pid = get_portfolio(session, portfolio).id if portfolio else None
    run = OptimizationRun(
        portfolio_id=pid, objective=result.objective, method=result.method, solver=result.solver,
        status=result.status, expected_return=_finite_or_none(result.expected_return),
        volatility=_finite_or_none(result.volatility), sharpe=_finite_or_none(result.sharpe),
        weights={k: float(v) for k, v in result.weights.items()},
        parameters=parameters or {}, fallback_reason=result.fallback_reason, mlflow_run_id=mlflow_run_id)
    session.add(run)
    session.flush()
    return run


def record_risk_metrics(session: Session, portfolio: str, as_of, metrics: Mapping[str, float], *,
                        mlflow_run_id: str | None = None) -> list[RiskMetric]:
    """Persist named risk numbers of a portfolio as of a date. Non-finite values are refused.

    Numbers of a tracked run are kept per run; numbers without a run (a notebook run by hand)
    replace the earlier untracked numbers of the same portfolio, date and metric.
    """
    bad = {k: v for k, v in metrics.items() if not _is_number(v) or not math.isfinite(v)}
    if bad:
        raise StoreError(f"risk metrics not written: values that are not finite numbers {bad}")
    pid = get_portfolio(session, portfolio).id
    day = pd.Timestamp(as_of).date() if not isinstance(as_of, dt.date) else as_of
    if mlflow_run_id is None:
        session.execute(delete(RiskMetric).where(
            RiskMetric.portfolio_id == pid, RiskMetric.as_of == day, RiskMetric.mlflow_run_id.is_(None),
            RiskMetric.metric.in_(list(metrics))))
    rows = [RiskMetric(portfolio_id=pid, as_of=day, metric=k, value=float(v), mlflow_run_id=mlflow_run_id)
            for k, v in metrics.items()]
    session.add_all(rows)
    session.flush()
    return rows


def risk_history(session: Session, portfolio: str) -> pd.DataFrame:
    pid = get_portfolio(session, portfolio).id
    rows = session.scalars(select(RiskMetric).where(RiskMetric.portfolio_id == pid)
                           .order_by(RiskMetric.as_of, RiskMetric.metric)).all()
    return pd.DataFrame([{"as_of": r.as_of, "metric": r.metric, "value": r.value,
                          "mlflow_run_id": r.mlflow_run_id} for r in rows],
                        columns=["as_of", "metric", "value", "mlflow_run_id"])
