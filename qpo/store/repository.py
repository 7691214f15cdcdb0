"""Reads and writes of the store. Every write runs inside the caller's transaction
(:func:`qpo.store.session_scope`), is checked before it is sent (the rules of
:mod:`qpo.store._inputs`, which the models' ``@validates`` apply too), and is rolled back whole
when anything fails: a refusal is a :class:`~qpo.errors.StoreError` under 300 characters that
names the field and says what is valid."""
from __future__ import annotations

from collections.abc import Iterable, Mapping

import pandas as pd
from sqlalchemy import delete, select
from sqlalchemy.orm import Session, selectinload

from qpo._checks import quote
from qpo.errors import StoreError
from qpo.store import _inputs as check
from qpo.store.models import (
    Advisor,
    ClientPortfolio,
    Holding,
    OptimizationRun,
    RiskMetric,
    Transaction,
)


def get_or_create_advisor(session: Session, email: str, name: str, role: str = "advisor") -> Advisor:
    """The advisor with this e-mail address, created with ``name`` and ``role`` when the store has
    none. All three are checked first, whether the advisor exists or not."""
    address = check.email(email)
    name = check.label(name, "advisor name")
    role = check.role(role)
    advisor = session.scalar(select(Advisor).where(Advisor.email == address))
    if advisor is None:
        advisor = Advisor(email=address, name=name, role=role)
        session.add(advisor)
        session.flush()
    return advisor


def _collect(problems: list[str], fn, *args):
    try:
        return fn(*args)
    except StoreError as exc:
        problems.append(str(exc))
        return None


def store_tickers(session: Session) -> set[str]:
    """The universe a portfolio's tickers are checked against when the caller gives none: the
    bundled S&P 500 panel's tickers and every ticker the store already holds or traded."""
    from qpo.data import BUNDLED_SECTORS

    held = session.scalars(select(Holding.ticker).distinct()).all()
    traded = session.scalars(select(Transaction.ticker).distinct()).all()
    return set(BUNDLED_SECTORS) | set(held) | set(traded)


def _universe(session: Session, known_tickers) -> tuple[set[str], str]:
    if known_tickers is None:
        return store_tickers(session), "not a ticker of the bundled panel or the store (pass known_tickers=your prices' columns)"
    if isinstance(known_tickers, str) or not isinstance(known_tickers, Iterable):
        raise check.fail(f"known_tickers must be a collection of tickers (the price data's columns), got {quote(known_tickers)}")
    return {str(t) for t in known_tickers}, "not in the price data"


def create_portfolio(session: Session, name: str, client_name: str, advisor: Advisor,
                     holdings: Mapping[str, float], *, benchmark: str | None = None,
                     description: str | None = None, known_tickers: Iterable[str] | None = None) -> ClientPortfolio:
    """Create a portfolio with its holdings (ticker -> share quantity > 0), all or nothing.

    Every input is checked before anything is written, and every problem is reported at once:
    names (1 to 200 characters, no control characters; surrounding spaces are stripped), the
    tickers (symbols of the universe: ``known_tickers``, the price data's columns, or by default
    the bundled panel's tickers and those the store already holds), the quantities (finite, > 0).
    """
    problems: list[str] = []
    pname = _collect(problems, check.label, name, "portfolio name")
    client = _collect(problems, check.label, client_name, "client name")
    bench = _collect(problems, check.optional_label, benchmark, "benchmark", check.LABEL64)
    _collect(problems, check.optional_text, description, "description")
    if not isinstance(advisor, Advisor):
        problems.append(f"advisor must be an Advisor (from get_or_create_advisor), got {quote(advisor)}")
    if pname is not None and session.scalar(select(ClientPortfolio.id).where(ClientPortfolio.name == pname)) is not None:
        problems.append(f"a portfolio named {quote(pname)} exists already")
    shares: dict[str, float] = {}
    if not isinstance(holdings, Mapping | pd.Series):
        problems.append(f"holdings must be a dict of ticker -> shares, got {quote(holdings)}")
    elif len(holdings) == 0:
        problems.append("no holdings given")
    else:
        universe, unknown = _universe(session, known_tickers)
        for key, qty in holdings.items():
            ticker = _collect(problems, check.ticker, key)
            shown = ticker if ticker is not None else quote(key, 20)
            if not _amount_ok(qty, "positive"):
                problems.append(f"{shown}: quantity {quote(qty, 20)} must be a positive finite number of shares")
            if ticker is None:
                continue
            if ticker not in universe:
                hint = f" (did you mean {ticker.upper()!r}?)" if ticker.upper() in universe else ""
                problems.append(f"{ticker}: {unknown}{hint}")
            elif _amount_ok(qty, "positive"):
                shares[ticker] = float(qty)
    if problems:
        raise check.report(f"portfolio {quote(pname)}" if pname is not None else "portfolio", problems)
    portfolio = ClientPortfolio(name=pname, client_name=client, advisor=advisor, benchmark=bench,
                                description=description, base_currency="USD")
    portfolio.holdings = [Holding(ticker=t, quantity=q) for t, q in shares.items()]
    session.add(portfolio)
    session.flush()
    return portfolio


def _amount_ok(value: object, sign: str) -> bool:
    try:
        check.amount(value, "amount", sign)
    except StoreError:
        return False
    return True


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
    name = check.label(name, "portfolio name")
    portfolio = session.scalar(select(ClientPortfolio).options(selectinload(ClientPortfolio.holdings))
                               .where(ClientPortfolio.name == name))
    if portfolio is None:
        names = session.scalars(select(ClientPortfolio.name).order_by(ClientPortfolio.name)).all()
        raise check.fail(f"no portfolio named {quote(name)}; the store has: {check.names_list(names)}")
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
        raise check.fail(f"portfolio {quote(name)} holds {check.names_list(missing)}, which the price data lacks")
    px = prices[qty.index]
    if as_of is not None:
        px = px.loc[:pd.Timestamp(as_of)]
    px = px.dropna(how="any")
    if px.empty:
        raise check.fail(f"no prices for all of {check.names_list(qty.index)} on or before {quote(as_of)}")
    value = qty * px.iloc[-1]
    return (value / value.sum()).rename("weight")


_RESULT_FIELDS = ("weights", "objective", "method", "solver", "status", "expected_return", "volatility", "sharpe",
                  "fallback_reason")


def record_optimization_run(session: Session, result, *, portfolio: str | None = None,
                            parameters: dict | None = None, mlflow_run_id: str | None = None) -> OptimizationRun:
    """Persist an :class:`~qpo.OptimizationResult`. Its labels, weights (finite), parameters (JSON:
    text, finite numbers, bools, None, lists, dicts) and run id are checked first; a statistic that is
    not finite (the Sharpe ratio of a zero volatility) is stored as NULL, undefined."""
    missing = [f for f in _RESULT_FIELDS if not hasattr(result, f)]
    if missing:
        raise check.fail(f"result must be an OptimizationResult (qpo.optimize's answer); {quote(result)} has no "
                         f"{', '.join(missing)}")
    pid = get_portfolio(session, portfolio).id if portfolio is not None else None
    run = OptimizationRun(
        portfolio_id=pid, objective=result.objective, method=result.method, solver=result.solver,
        status=result.status, expected_return=result.expected_return, volatility=result.volatility,
        sharpe=result.sharpe, weights=result.weights, parameters=parameters or {},
        fallback_reason=result.fallback_reason, mlflow_run_id=mlflow_run_id)
    session.add(run)
    session.flush()
    return run


def record_risk_metrics(session: Session, portfolio: str, as_of, metrics: Mapping[str, float], *,
                        mlflow_run_id: str | None = None) -> list[RiskMetric]:
    """Persist named risk numbers of a portfolio as of a date. Names are labels of at most 64
    characters; values that are not finite numbers are refused, and nothing is written.

    Numbers of a tracked run are kept per run; recording the same metric of the same portfolio, date
    and run again (or again without a run: a notebook run by hand) replaces the earlier number.
    """
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
    pid = get_portfolio(session, portfolio).id
    if values:
        same_run = RiskMetric.mlflow_run_id.is_(None) if run_id is None else RiskMetric.mlflow_run_id == run_id
        session.execute(delete(RiskMetric).where(
            RiskMetric.portfolio_id == pid, RiskMetric.as_of == day, same_run, RiskMetric.metric.in_(list(values))))
    rows = [RiskMetric(portfolio_id=pid, as_of=day, metric=k, value=v, mlflow_run_id=run_id) for k, v in values.items()]
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
