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
# # Walk-forward backtest
#
# Several strategies rebalanced over the same history with transaction costs and no look-ahead (each decision sees returns up to its own close and trades at it), against the S&P 500 index. Run it here, or with `qpo pipeline run backtest`; either way the run is logged to MLflow.

# %% tags=["parameters"]
from typing import Optional, Union

prices_source: str = "store"  # "store" (its market data, else the bundled panel), a bundled source name, or a CSV/Parquet file
history_start: str = "2005-01-01"  # first date of prices (the first estimation window starts here)
history_end: "Optional[str]" = None  # last date, or None for the end of the data
strategies: str = "min_variance,max_sharpe,risk_parity,equal_weight,buy_and_hold"  # comma-separated objectives or baselines
rebalance: "Union[str, int]" = "M"  # D, W, M, Q or A (last date of each period in the data), or a number of periods
window: "Optional[int]" = None  # returns behind each decision, in periods of the prices; None is one year of them (252 trading days)
costs: float = 0.001  # cost per unit of traded weight, 0.001 is 10 bp
max_weight: float = 0.25  # cap on each asset for the optimizer strategies (hrp and the baselines take none)
risk_free_rate: float = 0.02  # annual, for the Sharpe ratio and max_sharpe
periods_per_year: "Optional[int]" = None  # periods a year that annualize; None reads them from the prices' dates
run_id: "Optional[str]" = None  # set by the pipeline runner, which then logs the run itself

# %% tags=["nbval-check-output"]
import qpo
from qpo.backtesting import BASELINES
from qpo.workbench import record, show_figure
from qpo.workbench.prices import notebook_prices

prices, prices_origin, benchmark = notebook_prices(prices_source, start=history_start, end=history_end)
caps = qpo.Constraints(max_weight=max_weight)
chosen = [s if s in BASELINES or s == "hrp" else qpo.Strategy(s, constraints=caps)
          for s in (x.strip() for x in strategies.split(",")) if s]
comparison = qpo.compare_strategies(prices, chosen, rebalance=int(rebalance) if str(rebalance).isdigit() else rebalance,
                                    window=window, costs=costs, benchmark=benchmark, risk_free_rate=risk_free_rate,
                                    periods_per_year=periods_per_year)
first = next(iter(comparison.results.values()))
print(f"{prices.shape[1]} assets; first rebalance {first.equity.index[0].date()}, {len(first.returns)} "
      f"out-of-sample {first.risk.period}s to {first.returns.index[-1].date()}; costs {costs:.2%} of each trade")

# %% [markdown]
# ## Summary
#
# Net of costs; annualized at the prices' own frequency (read from their dates: 252 periods a year for the bundled business-day panel; the line below says which). Turnover is the sum of |trade| over all rebalances (the first, from cash, counts 1); costs paid sum each rebalance's cost as a fraction of the wealth then.

# %%
print(f"Annualized as {first.parameters['frequency']}; estimation window {first.parameters['window']} periods")
display(comparison.summary().style.format(na_rep="", formatter={
    "CAGR": "{:.2%}", "volatility": "{:.2%}", "Sharpe": "{:.2f}", "max drawdown": "{:.2%}",
    "total turnover": "{:.2f}", "costs paid": "{:.3%}", "n rebalances": "{:.0f}", "n failures": "{:.0f}"}))
for name, result in comparison.results.items():
    for failure in result.failures:
        print(f"{name}: no trade on {failure['date'].date()}: {failure['reason']}")

# %%
figures = comparison.figures()
show_figure(figures["equity"], "equity")
show_figure(figures["drawdown"], "drawdown")
for name, result in comparison.results.items():
    if name != "buy_and_hold":
        show_figure(result.weights_figure(), f"weights_{name}")

# %%
for name, value in comparison.metrics().items():
    record(name, value, show=False)
record("first_rebalance", str(first.equity.index[0].date()), show=False)
record("out_of_sample_days", len(first.returns), show=False)
if run_id is None:  # run by hand: log to MLflow here (the pipeline runner logs its own runs)
    with qpo.tracked_run("backtest", params={"prices_source": prices_source, "strategies": strategies,
                         "rebalance": rebalance, "window": window, "costs": costs, "max_weight": max_weight,
                         "history_start": history_start, "history_end": history_end},
                         data_hash=qpo.data_hash(prices)) as run:
        run.log_metrics(comparison.metrics())
        run.log_figure(figures["equity"], "equity.html")
        run.log_dict({"summary": comparison.summary().to_dict(orient="index")}, "summary.json")
    record("mlflow_run_id", run.run_id, show=False)
    print(f"logged to MLflow: run {run.run_id}")
