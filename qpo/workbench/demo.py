"""Demo client portfolios, seeded by ``qpo db seed`` (``make run`` calls it) so that the dashboard
shows something real. Nothing else seeds: the dashboard, the reports and the pipelines only read,
and refuse a missing store rather than create one with demo data in it. Seeding is idempotent: a
store that already holds any portfolio is left as it is.

It lives in the workbench, not the store: one demo portfolio is the optimizer's own answer, and
the store stores, it does not optimize.

Holdings are share counts bought (one recorded transaction each) at the real closing prices of
the bundled S&P 500 panel on its last date; one portfolio is the optimizer's own long-only min-variance answer.
"""
from __future__ import annotations

from sqlalchemy import Engine, func, select

from qpo.store import ClientPortfolio, Transaction, connect, create_portfolio, get_or_create_advisor, session_scope

DEMO_ADVISORS = {
    "ana.silva@example.com": "Ana Silva",
    "ben.okafor@example.com": "Ben Okafor",
}

#: name -> (client, advisor email, notional USD, target weights or None for min-variance)
DEMO_PORTFOLIOS = {
    "Balanced Growth": ("Harper Family Trust", "ana.silva@example.com", 1_000_000, {
        "AAPL": 0.12, "MSFT": 0.12, "JNJ": 0.10, "JPM": 0.10, "PG": 0.10,
        "XOM": 0.08, "HD": 0.08, "KO": 0.10, "UNH": 0.10, "WMT": 0.10}),
    "Conservative Income": ("Dr. L. Moreau", "ana.silva@example.com", 750_000, {
        "JNJ": 0.18, "PG": 0.18, "KO": 0.16, "PEP": 0.16, "WMT": 0.12, "MRK": 0.10, "PFE": 0.10}),
    "Tech Tilt": ("Nakamura Ventures LLC", "ben.okafor@example.com", 500_000, {
        "AAPL": 0.30, "MSFT": 0.30, "AMD": 0.20, "BBY": 0.10, "HD": 0.10}),
    "Min-Variance Core": ("Okafor Endowment", "ben.okafor@example.com", 2_000_000, None),
}


def _min_variance_weights(prices):
    from qpo.data.returns import prices_to_returns
    from qpo.optimization import Constraints, PortfolioProblem, optimize

    rets = prices_to_returns(prices.iloc[-757:])  # three years of daily returns
    result = optimize(PortfolioProblem.from_returns(rets, constraints=Constraints(max_weight=0.15)),
                      "min_variance")
    w = result.weights[result.weights > 1e-4]
    return (w / w.sum()).to_dict()


def seed_demo(engine: Engine | None = None, prices=None) -> int:
    """Seed the demo advisors and portfolios if the store has no portfolio yet (creating the store
    when there is none: this is the command that writes the demo book).

    Returns the number of portfolios created (0 when the store was not empty). All or nothing.
    """
    engine = engine or connect()
    with session_scope(engine) as session:
        if session.scalar(select(func.count(ClientPortfolio.id))):
            return 0
    if prices is None:
        from qpo.data.loaders import load_prices

        prices = load_prices("sp500")
    from sqlalchemy.exc import IntegrityError

    from qpo.errors import StoreError

    try:
        return _seed(engine, prices)
    except (IntegrityError, StoreError):
        # another process (a second dashboard on a fresh install) seeded at the same moment:
        # this transaction was rolled back whole; theirs stands.
        with session_scope(engine) as session:
            if session.scalar(select(func.count(ClientPortfolio.id))):
                return 0
        raise


def _seed(engine: Engine, prices) -> int:
    last = prices.iloc[-1]
    targets = {name: spec[3] or _min_variance_weights(prices) for name, spec in DEMO_PORTFOLIOS.items()}
    created = 0
    with session_scope(engine) as session:
        advisors = {email: get_or_create_advisor(session, email, name) for email, name in DEMO_ADVISORS.items()}
        for name, (client, email, notional, _) in DEMO_PORTFOLIOS.items():
            weights = targets[name]
            shares = {t: round(notional * w / float(last[t]), 4) for t, w in weights.items()}
            day = prices.index[-1].date()
            portfolio = create_portfolio(session, name, client, advisors[email], shares, benchmark="SP500",
                                         description=f"demo portfolio, ${notional:,.0f} at the closes of {day}",
                                         known_tickers=set(prices.columns))
            session.add_all([Transaction(portfolio_id=portfolio.id, trade_date=day, ticker=t, quantity=q,
                                         price=float(last[t]), fees=0.0) for t, q in shares.items()])
            created += 1
    return created
