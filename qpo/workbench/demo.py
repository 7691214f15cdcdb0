"""Demo client portfolios, seeded by ``qpo db seed`` (``make run`` calls it) so that the dashboard
shows something real. Nothing else seeds: the dashboard, the reports and the pipelines only read,
and refuse a missing store rather than create one with demo data in it. Seeding is idempotent: a
store that already holds any portfolio is left as it is.

It lives in the workbench, not the store: one demo portfolio is the optimizer's own answer, and
the store stores, it does not optimize.

Holdings are share counts bought (one recorded transaction each) at the real closing prices of
the bundled S&P 500 panel on the day the book opens: three years (756 trading days) before the
panel's last date, so that reports, risk history and rebalance proposals of the last three years
have a book to work on. One portfolio is the optimizer's own long-only min-variance answer from the
three years of returns before that day.
"""
from __future__ import annotations

from sqlalchemy import Engine, func, select

from qpo.store import Actor, ClientPortfolio, add_user, connect, create_portfolio, import_transactions, session_scope

#: the demo's people: two advisors and an admin (none has a password: ``qpo user passwd`` sets one)
DEMO_USERS = {
    "ana.silva@example.com": ("Ana Silva", "advisor"),
    "ben.okafor@example.com": ("Ben Okafor", "advisor"),
    "rita.chen@example.com": ("Rita Chen", "researcher"),
    "admin@example.com": ("Workbench Admin", "admin"),
}
DEMO_ADVISORS = {email: name for email, (name, role) in DEMO_USERS.items() if role == "advisor"}
#: the seeding actor, as the audit trail names it
SEED_ACTOR = Actor.system("seed")
#: how many periods before the panel's last date the demo book opens (three years of trading days)
DEMO_OPEN_PERIODS = 756
#: the fewest periods of history the demo wants before its opening day (for the min-variance weights)
DEMO_MIN_HISTORY = 252
#: per-trade commission and spread of the demo's opening buys
DEMO_COMMISSION, DEMO_SPREAD_BPS = 1.0, 5.0

#: name -> (client, advisor email, notional USD, target weights or None for min-variance, strategy changes)
DEMO_PORTFOLIOS = {
    "Balanced Growth": ("Harper Family Trust", "ana.silva@example.com", 1_000_000, {
        "AAPL": 0.12, "MSFT": 0.12, "JNJ": 0.10, "JPM": 0.10, "PG": 0.10,
        "XOM": 0.08, "HD": 0.08, "KO": 0.10, "UNH": 0.10, "WMT": 0.10},
        {"objective": "max_sharpe", "max_weight": 0.20, "sector_max": 0.40, "max_turnover": 0.30}),
    "Conservative Income": ("Dr. L. Moreau", "ana.silva@example.com", 750_000, {
        "JNJ": 0.18, "PG": 0.18, "KO": 0.16, "PEP": 0.16, "WMT": 0.12, "MRK": 0.10, "PFE": 0.10},
        {"objective": "min_variance", "max_weight": 0.20, "sector_max": 0.50}),
    "Tech Tilt": ("Nakamura Ventures LLC", "ben.okafor@example.com", 500_000, {
        "AAPL": 0.30, "MSFT": 0.30, "AMD": 0.20, "BBY": 0.10, "HD": 0.10},
        {"objective": "max_sharpe", "max_weight": 0.35, "sector_max": 0.70, "min_names": 4}),
    "Min-Variance Core": ("Okafor Endowment", "ben.okafor@example.com", 2_000_000, None,
                          {"objective": "min_variance", "max_weight": 0.15}),
}


def _min_variance_weights(prices):
    from qpo.data.returns import prices_to_returns
    from qpo.optimization import Constraints, PortfolioProblem, optimize

    rets = prices_to_returns(prices.iloc[-757:])  # three years of daily returns
    result = optimize(PortfolioProblem.from_returns(rets, constraints=Constraints(max_weight=0.15)),
                      "min_variance")
    w = result.weights[result.weights > 1e-4]
    return (w / w.sum()).to_dict()


def demo_strategy(changes: dict) -> dict:
    """The stored strategy of a demo portfolio: the default strategy with these changes. Where a
    demo's caps are looser than the house limits, its limits are its caps (a client mandate that
    allows 70 % in one sector is checked against 70 %), so the target a proposal builds complies."""
    from qpo.book import Strategy

    base = Strategy.default()
    limits = {k: max(float(changes[k]), float(getattr(base.limits, k))) for k in ("max_weight", "sector_max")
              if k in changes and getattr(base.limits, k) is not None}
    return base.with_overrides(commission=DEMO_COMMISSION, spread_bps=DEMO_SPREAD_BPS, limits=limits,
                               **changes).to_json()


def opening_day(prices):
    """The day the demo book opens on ``prices``: :data:`DEMO_OPEN_PERIODS` periods before the last
    date when at least :data:`DEMO_MIN_HISTORY` periods precede it, else the last date."""
    n = len(prices.index)
    i = n - 1 - DEMO_OPEN_PERIODS
    return prices.index[i if i >= DEMO_MIN_HISTORY else n - 1]


def seed_demo(engine: Engine | None = None, prices=None, opened=None) -> int:
    """Seed the demo people and portfolios if the store has no portfolio yet (creating the store
    when there is none: this is the command that writes the demo book).

    Each portfolio is built through its ledger: a cash deposit, then whole-share buys at the closes
    of ``opened`` (default :func:`opening_day`; the last date on or before it), with the demo's
    commission and spread as their cost. Returns the number of portfolios created (0 when the store
    was not empty). All or nothing.
    """
    engine = engine or connect()
    with session_scope(engine) as session:
        if session.scalar(select(func.count(ClientPortfolio.id))):
            return 0
    if prices is None:
        from qpo.data.loaders import load_prices

        prices = load_prices("sp500")
    import pandas as pd
    from sqlalchemy.exc import IntegrityError

    from qpo.errors import StoreError

    day = opening_day(prices) if opened is None else pd.Timestamp(opened)
    upto = prices.loc[:day]
    if upto.empty:
        from qpo.errors import DataError

        raise DataError(f"the demo book cannot open on {day.date()}: the prices start on {prices.index[0].date()}")
    try:
        return _seed(engine, upto)
    except (IntegrityError, StoreError):
        # another process (a second dashboard on a fresh install) seeded at the same moment:
        # this transaction was rolled back whole; theirs stands.
        with session_scope(engine) as session:
            if session.scalar(select(func.count(ClientPortfolio.id))):
                return 0
        raise


def _seed(engine: Engine, prices) -> int:
    import math

    from qpo.store import User

    last = prices.iloc[-1]
    day = prices.index[-1].date()
    targets = {name: spec[3] or _min_variance_weights(prices) for name, spec in DEMO_PORTFOLIOS.items()}
    created = 0
    with session_scope(engine) as session:
        for email, (name, role) in DEMO_USERS.items():
            if session.scalar(select(User.id).where(User.email == email)) is None:
                add_user(session, SEED_ACTOR, email, name, role)
        for name, (client, email, notional, _, changes) in DEMO_PORTFOLIOS.items():
            weights = targets[name]
            create_portfolio(session, SEED_ACTOR, name, client, email, cash=notional, benchmark="SP500",
                             strategy=demo_strategy(changes), trade_date=day, known_tickers=set(prices.columns),
                             description=f"demo portfolio, ${notional:,.0f} invested at the closes of {day}")
            buys = []
            for t, w in weights.items():
                price = float(last[t])
                budget = notional * w / (1 + DEMO_SPREAD_BPS / 1e4) - DEMO_COMMISSION
                shares = math.floor(budget / price)
                if shares > 0:
                    cost = DEMO_COMMISSION + shares * price * DEMO_SPREAD_BPS / 1e4
                    buys.append(dict(kind="buy", trade_date=day, ticker=t, quantity=shares, price=price,
                                     fees=round(cost, 2)))
            import_transactions(session, SEED_ACTOR, name, buys, known_tickers=set(prices.columns))
            created += 1
    return created
