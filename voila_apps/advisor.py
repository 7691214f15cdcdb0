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
# # Client portfolios
#
# Pick a client portfolio: the Overview (holdings and cash from its ledger — a client holding only cash shows its cash —, its risk checked against its own limits, its growth against its benchmark, the S&P 500 unless it names another with prices), then the Risk, Rebalance, Frontier, History and Report tabs (each drawn for the portfolio shown when it is opened).

# %% tags=["parameters"]
portfolio: str = "Balanced Growth"  # portfolio shown first
lookback_days: int = 756  # trading days behind the risk numbers

# %%
# Served by `qpo dashboard advisor`, the page reads as the person signed in (an advisor sees their own
# clients' portfolios); run by hand, as the user named by QPO_USER, else as system:dashboard.
from IPython.display import display

from qpo.workbench.advisor import open_dashboard

dashboard = open_dashboard(initial=portfolio, lookback_days=lookback_days)
display(dashboard.widget)

# %% tags=["nbval-check-output"]
from qpo.workbench import record

# kept in the executed notebook for tests and tracking, not shown on the dashboard
record("portfolio", dashboard.selected, show=False)
record("volatility", dashboard.report.volatility, show=False)
record("n_portfolios", len(dashboard.portfolios), show=False)
