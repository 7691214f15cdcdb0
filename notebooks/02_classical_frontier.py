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
# # Classical efficient frontier
#
# Estimate the moments, trace the efficient frontier under the constraints, and place each objective's portfolio on it. Run it here, or with `qpo pipeline run classical-frontier`; either way the run is logged to MLflow.

# %% tags=["parameters"]
from typing import Optional

prices_source: str = "store"  # "store" (its market data, else the bundled panel), a bundled source name, or a CSV/Parquet file
history_start: str = "2018-01-01"  # first date of the returns
history_end: "Optional[str]" = None  # last date, or None for the end of the data
tickers: "Optional[str]" = None  # comma-separated subset of the columns, or None for all
mean: str = "historical"  # mean estimator: historical or ewma
covariance: str = "ledoit_wolf"  # sample, ewma, ledoit_wolf, oas or factor
max_weight: float = 0.25  # cap on each asset
sector_max: "Optional[float]" = 0.35  # cap on each GICS sector, or None for no sector caps
sectors_file: "Optional[str]" = None  # CSV with ticker and sector columns; None uses the bundled map
objectives: str = "min_variance,max_sharpe,max_diversification,min_cvar"  # portfolios placed on the chart
n_points: int = 50  # points on the frontier
risk_free_rate: float = 0.02  # annual, for the Sharpe ratio
periods_per_year: "Optional[int]" = None  # periods a year that annualize; None reads them from the prices' dates
run_id: "Optional[str]" = None  # set by the pipeline runner, which then logs the run itself

# %% tags=["nbval-check-output"]
import qpo
from qpo.risk import period_adjective
from qpo.workbench import record, show_figure
from qpo.workbench.prices import notebook_prices

prices = notebook_prices(prices_source, start=history_start, end=history_end).prices
if tickers:
    prices = prices[[t.strip() for t in tickers.split(",")]]
returns = qpo.prices_to_returns(prices)
groups = {t: s for t, s in qpo.load_sectors(sectors_file).items() if t in returns.columns}
constraints = qpo.Constraints(max_weight=max_weight, groups=groups or None,
                              group_max={g: sector_max for g in set(groups.values())} if sector_max and groups else None)
study = qpo.frontier_study(returns, mean=mean, covariance=covariance, constraints=constraints,
                           objectives=[o.strip() for o in objectives.split(",")], n_points=n_points,
                           risk_free_rate=risk_free_rate, periods_per_year=periods_per_year)
ppy = study.problem.periods_per_year
print(f"{returns.shape[1]} assets, {len(returns)} {period_adjective(ppy)} returns {returns.index[0].date()} to "
      f"{returns.index[-1].date()}; frontier by the {study.frontier.attrs['path']} path in "
      f"{study.frontier.attrs['total_s'] * 1e3:.1f} ms")

# %% [markdown]
# ## The portfolios
#
# Annualized at the prices' own frequency, P periods a year (read from their dates: 252 for the bundled business-day panel): expected return = P x mean period return, volatility = sqrt(P) x the period standard deviation.

# %%
print(f"Annualized with {ppy} periods a year")
display(study.table())
for name, why in study.skipped.items():
    print(f"{name} skipped: {why}")

# %%
show_figure(study.frontier_figure(), "frontier")
show_figure(study.weights_figure(), "weights")
show_figure(study.frontier_weights_figure(), "frontier_weights")

# %%
study.weights().style.format("{:.2%}")

# %%
for name, value in study.metrics().items():
    record(name, value, show=False)
if run_id is None:  # run by hand: log to MLflow here (the pipeline runner logs its own runs)
    with qpo.tracked_run("classical-frontier", params={"prices_source": prices_source, "mean": mean,
                         "covariance": covariance, "max_weight": max_weight, "sector_max": sector_max,
                         "objectives": objectives, "n_points": n_points},
                         data_hash=qpo.data_hash(prices)) as run:
        run.log_metrics(study.metrics())
        run.log_figure(study.frontier_figure(), "frontier.html")
        run.log_dict({"frontier": study.frontier.to_dict(orient="list")}, "frontier.json")
    record("mlflow_run_id", run.run_id, show=False)
    print(f"logged to MLflow: run {run.run_id}")
