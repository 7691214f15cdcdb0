# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.7
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Rebalance a client portfolio
#
# One client portfolio from its holdings to an accepted rebalance proposal: what it holds (its ledger) and the strategy it keeps, the proposal its advisor makes (the trade list, before and after, compliance), what transaction costs and the turnover cap changed in it, and its acceptance: the trades written to the ledger and the audit trail in one transaction. The same steps as `qpo rebalance propose NAME` and `qpo rebalance accept ID`.
#
# By default it works on a scratch copy of the demo book, seeded in a temporary folder, so that accepting changes nothing of your own book; `store="configured"` works on the store qpo is configured with (`QPO_HOME`, `QPO_DATABASE_URL`).

# %% tags=["parameters"]
from typing import Optional

portfolio: str = "Balanced Growth"  # client portfolio name in the store
actor: "Optional[str]" = None  # e-mail of who proposes and accepts (its advisor, or an admin); None: the portfolio's advisor
as_of: "Optional[str]" = None  # date YYYY-MM-DD of the holdings and prices; None for the last date of the data
max_turnover: "Optional[float]" = None  # turnover cap, sum |after - before| (0.2 for 20 %), for this proposal; None: the strategy's own
spread_bps: "Optional[float]" = None  # estimated spread cost in basis points of each trade's notional; None: the strategy's own
store: str = "scratch"  # "scratch" (the demo book in a temporary folder), "configured" (qpo's own store) or a SQLAlchemy URL

# %% tags=["nbval-check-output"]
import json
import tempfile
from pathlib import Path

import pandas as pd
from IPython.display import HTML

import qpo
from qpo.book import Strategy, accept_rebalance, propose_rebalance
from qpo.reporting.rebalance import compare_proposals, order_ticket, proposal_figures, style_comparison
from qpo.store import Actor, audit_trail, connect, get_portfolio, position, session_scope
from qpo.workbench import record, show_figure

prices = qpo.load_prices("sp500", end=as_of)  # up to as_of: the proposal's prices are the newest, so it may be accepted
when = prices.index[-1]
if store == "scratch":
    from qpo.workbench.demo import seed_demo

    engine = connect(f"sqlite:///{Path(tempfile.mkdtemp(prefix='qpo-rebalance-')) / 'qpo.db'}")
    seed_demo(engine, prices)
else:
    engine = connect(None if store == "configured" else store, create=False)  # a missing store is refused
with session_scope(engine) as session:
    row = get_portfolio(session, Actor.system("notebook"), portfolio)
    client, advisor = row.client_name, row.advisor.email
    strategy = Strategy.from_json(row.strategy) if row.strategy else Strategy.default()
actor = actor or advisor
with session_scope(engine) as session:
    held = position(session, actor, portfolio, when.date())
print(f"{portfolio} ({client}), advised by {advisor}: {len(held.shares)} names and {held.cash:,.2f} cash "
      f"on {when.date()}")

# %% [markdown]
# ## Holdings and strategy
#
# The ledger's shares and cash on the date, valued at that day's closes; weights are fractions of the value including cash.

# %%
last = prices.loc[when, held.shares.index]
value = float(held.cash + held.shares @ last)
holdings = pd.DataFrame({"shares": held.shares, "close": last, "value": held.shares * last,
                         "weight": held.shares * last / value})
display(holdings.style.format({"shares": "{:,.6g}", "close": "{:,.2f}", "value": "{:,.2f}", "weight": "{:.2%}"}))
print(f"cash {held.cash:,.2f} ({held.cash / value:.2%}); total value {value:,.2f}")
print(strategy)
print(f"costs: {strategy.commission:,.2f} a trade plus {strategy.spread_bps:g} bp of its notional; turnover cap "
      f"{'none' if strategy.constraints.max_turnover is None else f'{strategy.constraints.max_turnover:.0%}'}; "
      f"rebalance band {strategy.rebalance_band:.0%}")
record("value_before", value, show=False)
record("holdings_before", held.shares.to_dict(), show=False)
record("cash_before", held.cash, show=False)

# %% [markdown]
# ## The proposal
#
# The target is the strategy's optimizer answer with the holdings as current weights (so the turnover cap and the costs act on the real trade); trades are whole shares priced at the day's close, each costing the commission plus the spread. Stored as an open proposal.

# %%
overrides = {k: v for k, v in (("max_turnover", max_turnover), ("spread_bps", spread_bps)) if v is not None}
proposal = propose_rebalance(portfolio, as_of=when, actor=actor, prices=prices, engine=engine, **overrides)
print(proposal)
record("proposal_id", proposal.id, show=False)
record("turnover", proposal.turnover, show=False)
record("total_cost", proposal.total_cost, show=False)
record("cash_after", proposal.cash_after, show=False)
record("value_after", proposal.value_after, show=False)
record("violations", proposal.violations, show=False)
record("effective_max_turnover", proposal.strategy.constraints.max_turnover, show=False)
record("effective_spread_bps", proposal.strategy.spread_bps, show=False)

# %% [markdown]
# ### The order ticket
#
# What `qpo rebalance export ID --csv FILE` writes: sells first, limit prices are the estimated prices rounded to cents.

# %%
ticket = order_ticket(proposal)
record("ticket", json.loads(ticket.to_json(orient="records")), show=False)
display(ticket)
proposal.trades.style.format({"shares": "{:,.6g}", "price": "{:,.3f}", "notional": "{:,.2f}", "cost": "{:,.2f}"})

# %% [markdown]
# ### Before and after
#
# Volatility and expected return annualized; VaR and CVaR one period at the strategy's confidence; tracking error to the target. Then every compliance check of the strategy's limits.

# %%
display(style_comparison(proposal.comparison))
record("tracking_error_before", proposal.comparison.loc["tracking_error", "before"], show=False)
record("tracking_error_after", proposal.comparison.loc["tracking_error", "after"], show=False)
proposal.compliance.style.format({"limit": "{:.4g}", "before": "{:.4g}", "after": "{:.4g}"})

# %%
for name, fig in proposal_figures(proposal).items():
    show_figure(fig, name)

# %% [markdown]
# ## What costs and the turnover cap changed
#
# The same proposal computed again (nothing stored) without costs (no spread, no commission), without the turnover cap, and without either: the trades the costs hold back and the ones the cap forbids.

# %%
variants = {"proposed": proposal}
for label, changes in (("no costs", dict(spread_bps=0.0, commission=0.0)), ("no turnover cap", dict(max_turnover=None)),
                       ("neither", dict(spread_bps=0.0, commission=0.0, max_turnover=None))):
    variants[label] = propose_rebalance(portfolio, as_of=when, actor=actor, prices=prices, engine=engine, save=False,
                                        **(overrides | changes))
changed = compare_proposals(variants)
for label in variants:
    for metric in ("n_trades", "turnover", "total_cost", "tracking_error"):
        record(f"{label}.{metric}", changed.loc[metric, label], show=False)
print(f"The turnover cap holds the trade to {changed.loc['turnover', 'proposed']:.1%} of the value "
      f"({changed.loc['turnover', 'no turnover cap']:.1%} without it); without the costs "
      f"({changed.loc['total_cost', 'proposed']:,.2f}) turnover would change by "
      f"{changed.loc['turnover', 'no costs'] - changed.loc['turnover', 'proposed']:+.2%} of the value.")
style_comparison(changed)

# %% [markdown]
# ## Accept
#
# The trades become ledger entries, the optimization run is recorded and the audit row written, all in one database transaction. A proposal built on prices older than the newest would be refused (rebuild it first).

# %%
accepted = accept_rebalance(proposal.id, actor=actor, prices=prices, engine=engine)
with session_scope(engine) as session:
    now = position(session, actor, portfolio)
    trail = audit_trail(session, actor, portfolio=portfolio)
print(f"proposal {accepted.id} is {accepted.status}; cash {held.cash:,.2f} -> {now.cash:,.2f}")
names = sorted(set(held.shares.index) | set(now.shares.index))
ledger = pd.DataFrame({"before": held.shares.reindex(names), "after": now.shares.reindex(names)}).fillna(0.0)
ledger["traded"] = ledger["after"] - ledger["before"]
record("status", accepted.status, show=False)
record("holdings_after", now.shares.to_dict(), show=False)
record("ledger_cash_after", now.cash, show=False)
ledger.style.format("{:,.6g}")

# %%
record("audit_actions", trail["action"].tolist(), show=False)
record("audit_actors", trail["actor"].tolist(), show=False)
display(HTML("<p>The audit trail's newest rows for the portfolio (oldest first): the proposal, then its acceptance.</p>"))
trail.tail(4)[["id", "at", "actor", "role", "action", "entity", "entity_id"]]
