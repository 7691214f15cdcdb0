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
# # Daily risk report
#
# Risk of one client portfolio as of a date: compliance status first, then the data warnings of the prices, the numbers, VaR by method, risk contributions, stress tests and a what-if rebalance: the proposal the portfolio's own strategy makes that day (current weights, turnover cap and costs included), as a dry run that is not stored. The holdings are the portfolio's ledger on the report's date; the compliance limits are the portfolio's own (its stored strategy), unless a `limit_*` parameter overrides one. Run by `qpo pipeline run daily-report` on weekdays at 18:00, as the system actor `system:daily-report`; every number recorded below is logged to MLflow and written to the store.

# %% tags=["parameters"]
from typing import Optional

portfolio: str = "Balanced Growth"  # client portfolio name in the store
as_of: "Optional[str]" = None  # report date YYYY-MM-DD, or None for the last date of the data
lookback_days: int = 756  # returns behind the risk numbers, in periods of the prices (756 trading days is 3 years)
confidence: float = 0.95  # VaR / CVaR confidence level, in (0, 1)
horizon: int = 1  # VaR / CVaR horizon in periods of the prices (trading days for daily prices)
risk_free_rate: float = 0.0  # annual risk-free rate for the Sharpe ratio
max_weight: "Optional[float]" = None  # what-if only: overrides the per-name cap of the portfolio's strategy; None: its own
limit_max_weight: "Optional[float]" = None  # compliance: largest single name; None: the portfolio's own limit
limit_sector_max: "Optional[float]" = None  # compliance: largest GICS sector; None: the portfolio's own limit
limit_min_names: "Optional[int]" = None  # compliance: fewest holdings; None: the portfolio's own limit
limit_var: "Optional[float]" = None  # compliance: largest VaR at the confidence and horizon; None: the portfolio's own
limit_var_method: "Optional[str]" = None  # the VaR method the limit applies to; None: the portfolio's own
prices_source: str = "store"  # "store" (its market data, else the bundled panel), a bundled source name, or a CSV/Parquet file
history_start: str = "2000-01-01"  # first date of price history loaded (and validated)
write_store: bool = True  # write the risk numbers to the store
forecaster_name: str = "qpo-return-forecaster"  # registered model whose champion forecasts the held names
periods_per_year: "Optional[int]" = None  # periods a year that annualize; None reads them from the prices' dates
run_id: "Optional[str]" = None  # MLflow run id; the pipeline runner sets it

# %% tags=["nbval-check-output"]
import pandas as pd
from IPython.display import HTML

import qpo
from qpo.reporting.daily import daily_report, report_actor, run_validation
from qpo.risk import period_adjective
from qpo.store import connect
from qpo.store.market_data import benchmark_for, book_benchmark, book_prices
from qpo.workbench import record, show_figure

engine = connect(create=False)  # a reader: a missing store is refused, never created (`qpo db seed` seeds)
if prices_source == "store":  # the store's bars (`qpo data ingest|fetch`), else the bundled panel
    prices, prices_origin = book_prices(engine, start=history_start)
    benchmark = benchmark_for(book_benchmark(engine, start=history_start), prices, as_of)
else:
    prices, prices_origin = qpo.load_prices(prices_source, start=history_start), prices_source
    benchmark = qpo.load_prices("sp500_index", start=history_start)["SP500"] if prices_source == "sp500" else None
actor = report_actor()  # system:daily-report, an operations job
# the validation of these prices: the pipeline's (its run's validation.json), else validated here
validation = run_validation(run_id) if run_id else None
if validation is None:
    from qpo.validation import validate_prices
    validation = validate_prices(prices)
# the portfolio's own limits (its stored strategy), with those given here in their place
overrides = dict(max_weight=limit_max_weight, sector_max=limit_sector_max, min_names=limit_min_names,
                 var_limit=limit_var, var_method=limit_var_method)
report = daily_report(portfolio, prices, as_of=as_of, lookback_days=lookback_days, confidence=confidence,
                      horizon=horizon, risk_free_rate=risk_free_rate, max_weight=max_weight,
                      benchmark=benchmark, engine=engine, limits=overrides, sectors=qpo.load_sectors(),
                      periods_per_year=periods_per_year, actor=actor, validation=validation)
print(f"{portfolio}: {report.risk.n_periods} {period_adjective(report.risk.periods_per_year)} returns, "
      f"{report.risk.start.date()} to {report.as_of.date()}")

# %%
display(HTML(report.status_html()))  # compliance breaches first
record("compliance_breaches", len(report.breaches), show=False)
record("breaches", report.breaches, show=False)
record("prices_origin", prices_origin, show=False)  # "store", "bundled" (a store without market data), or the source

# %% [markdown]
# ## Data warnings
#
# Checks of the prices that stop nothing but must be reviewed (one-day moves beyond 40 %, say): the rows the validation lists, the portfolio's names first, at most 20, with each warning's full count. The same warnings are in the run's JSON, its MLflow tags and the Data Docs.

# %%
display(HTML(report.data_warnings.html()))
for name, value in report.data_warnings.metrics().items():
    record(name, value, show=False)

# %% [markdown]
# ## Risk numbers
#
# Simple returns, annualized at the prices' own frequency (read from their dates: 252 periods a year for the bundled business-day panel, 365 for prices on every calendar day, 12 for monthly prices; the line below says which); VaR and CVaR are positive losses; kurtosis is excess kurtosis. Benchmark statistics against the S&P 500 index.

# %%
print(report.risk.notes[0])  # the frequency the numbers are annualized at, and whether it was inferred or given
display(report.styled_risk_table())  # percentages, whole-number durations, empty where undefined
# machine-readable copies of the numbers (logged to MLflow as metrics), not shown in the report
for name, value in report.metrics().items():
    record(name, value, show=False)
record("as_of", str(report.as_of.date()), show=False)
record("n_holdings", int(len(report.weights)), show=False)
record("cash", report.cash, show=False)  # the ledger's cash on the report's date (not in the weights)
record("limits", report.limits.to_dict() if report.limits is not None else None, show=False)
record("periods_per_year", report.risk.periods_per_year, show=False)

# %% [markdown]
# ## VaR and CVaR by method
#
# Historical, parametric (normal and Cornish-Fisher) and Monte Carlo (multivariate normal and bootstrap, 100,000 seeded scenarios), at the report's confidence and horizon.

# %%
report.styled_table("var")

# %% [markdown]
# ## Risk contributions
#
# Euler components: they add up to the portfolio's volatility (annualized) and to its one-day historical CVaR.

# %%
display(report.styled_table("contributions"))  # weights and shares in %
report.styled_table("sectors")

# %% [markdown]
# ## Stress tests
#
# Historical windows replayed on today's weights (bought at the window's first close, held to its last), and hypothetical shocks propagated by betas.

# %%
report.styled_table("stress")

# %% [markdown]
# ## Compliance

# %%
report.styled_table("compliance")

# %% [markdown]
# ## Figures

# %%
for name, fig in report.figures().items():
    show_figure(fig, name)

# %% [markdown]
# ## Holdings and the what-if rebalance
#
# The rebalance the portfolio's own strategy proposes on the report's date (`qpo.propose_rebalance(..., save=False)`): its objective and constraints, the current weights, the turnover cap and the trading costs, in whole shares. Its numbers before and after are over the strategy's lookback; the risk table's "what-if rebalance" column is the weights after its trades over the report's window. It is **not stored** as a proposal: the advisor stores one for review with `qpo rebalance propose NAME`.

# %%
display(HTML(report.what_if.html()))
record("what_if_status", report.what_if.status, show=False)
record("what_if_trades", report.what_if.trades_table().to_dict(orient="records"), show=False)
pd.DataFrame({"current": report.weights, "after the what-if": report.what_if.weights}).fillna(0).style.format("{:.2%}")

# %% [markdown]
# ## Return forecasts
#
# The registered champion forecaster's return forecasts for the held names next to their historical mean over the report's lookback, when a champion exists (`qpo pipeline run weekly-retrain` trains one every Monday and promotes it only when it beats the historical mean out of sample).

# %%
forecasts = report.forecast_section(prices, model_name=forecaster_name)  # never fails the report
display(HTML(forecasts.html()))
for name, value in forecasts.metrics().items():
    record(name, value, show=False)

# %%
if write_store:
    from qpo.store import record_risk_metrics, session_scope
    with session_scope(engine) as session:
        record_risk_metrics(session, actor, portfolio, report.as_of, report.risk.metrics(), mlflow_run_id=run_id)
    print(f"{len(report.risk.metrics())} risk metrics written to the store")
