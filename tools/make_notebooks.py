"""Writes the workbench's notebooks from the cell sources below (run after editing them:
``python tools/make_notebooks.py``; ``--check`` only reports notebooks that differ from their
source here). Notebooks are committed without outputs."""
import sys
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

ROOT = Path(__file__).resolve().parents[1]
KERNEL = {"kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"},
          "language_info": {"name": "python"}}


STALE = []


def write(path, cells):
    nb = new_notebook(cells=cells, metadata=KERNEL)
    for i, c in enumerate(nb.cells):
        c["id"] = f"cell-{i:02d}"
    if "--check" in sys.argv:
        if not (ROOT / path).exists() or nbformat.read(str(ROOT / path), as_version=4) != nb:
            STALE.append(path)
        return
    nbformat.write(nb, str(ROOT / path))


daily = [
    new_markdown_cell("# Daily risk report\n\nRisk of one client portfolio as of a date: compliance status first, "
                      "then the numbers, VaR by method, risk contributions, stress tests and a what-if "
                      "min-variance rebalance of the same names. Run by `qpo pipeline run daily-report` on "
                      "weekdays at 18:00; every number recorded below is logged to MLflow and written to the store."),
    new_code_cell(
        'portfolio: str = "Balanced Growth"  # client portfolio name in the store\n'
        'as_of: "Optional[str]" = None  # report date YYYY-MM-DD, or None for the last date of the data\n'
        'lookback_days: int = 756  # trading days of returns behind the risk numbers, 756 is 3 years\n'
        'confidence: float = 0.95  # VaR / CVaR confidence level, in (0, 1)\n'
        'horizon: int = 1  # VaR / CVaR horizon in trading days (the table of VaR by method)\n'
        'risk_free_rate: float = 0.0  # annual risk-free rate for the Sharpe ratio\n'
        'max_weight: float = 0.25  # per-name cap of the what-if min-variance rebalance\n'
        'limit_max_weight: "Optional[float]" = 0.30  # compliance: largest single name, or None\n'
        'limit_sector_max: "Optional[float]" = 0.40  # compliance: largest GICS sector, or None\n'
        'limit_min_names: "Optional[int]" = 5  # compliance: fewest holdings, or None\n'
        'limit_var: "Optional[float]" = 0.03  # compliance: largest VaR at the confidence and horizon, or None\n'
        'limit_var_method: str = "historical"  # the VaR method the limit applies to\n'
        'prices_source: str = "sp500"  # bundled source name, or the path of a CSV/Parquet price file\n'
        'history_start: str = "2000-01-01"  # first date of price history loaded (and validated)\n'
        'write_store: bool = True  # write the risk numbers to the store\n'
        'forecaster_name: str = "qpo-return-forecaster"  # registered model whose champion forecasts the held names\n'
        'run_id: "Optional[str]" = None  # MLflow run id; the pipeline runner sets it\n',
        metadata={"tags": ["parameters"]}),
    new_code_cell(
        "import pandas as pd\n"
        "from IPython.display import HTML\n\n"
        "import qpo\n"
        "from qpo.reporting.daily import daily_report\n"
        "from qpo.store import connect, seed_demo\n"
        "from qpo.workbench import record, show_figure\n\n"
        "prices = qpo.load_prices(prices_source, start=history_start)\n"
        "benchmark = qpo.load_prices(\"sp500_index\", start=history_start)[\"SP500\"] if prices_source == \"sp500\" else None\n"
        "engine = connect()\n"
        "seed_demo(engine, prices=qpo.load_prices(\"sp500\"))  # demo portfolios on first run; no-op afterwards\n"
        "limits = qpo.Limits(max_weight=limit_max_weight, sector_max=limit_sector_max, min_names=limit_min_names,\n"
        "                    var_limit=limit_var, var_method=limit_var_method)\n"
        "report = daily_report(portfolio, prices, as_of=as_of, lookback_days=lookback_days, confidence=confidence,\n"
        "                      horizon=horizon, risk_free_rate=risk_free_rate, max_weight=max_weight,\n"
        "                      benchmark=benchmark, engine=engine, limits=limits, sectors=qpo.load_sectors())\n"
        "print(f\"{portfolio}: {report.risk.n_periods} daily returns, {report.risk.start.date()} to {report.as_of.date()}\")"),
    new_code_cell(
        "display(HTML(report.status_html()))  # compliance breaches first\n"
        "record(\"compliance_breaches\", len(report.breaches), show=False)\n"
        "record(\"breaches\", report.breaches, show=False)"),
    new_markdown_cell("## Risk numbers\n\nSimple daily returns, 252 periods a year; VaR and CVaR are positive "
                      "losses; kurtosis is excess kurtosis. Benchmark statistics against the S&P 500 index."),
    new_code_cell(
        "display(report.risk_table().style.format(\"{:.4f}\"))\n"
        "# machine-readable copies of the numbers (logged to MLflow as metrics), not shown in the report\n"
        "for name, value in report.metrics().items():\n"
        "    record(name, value, show=False)\n"
        "record(\"as_of\", str(report.as_of.date()), show=False)\n"
        "record(\"n_holdings\", int(len(report.weights)), show=False)"),
    new_markdown_cell("## VaR and CVaR by method\n\nHistorical, parametric (normal and Cornish-Fisher) and Monte "
                      "Carlo (multivariate normal and bootstrap, 100,000 seeded scenarios), at the report's "
                      "confidence and horizon."),
    new_code_cell("report.risk.var_table.style.format(\"{:.4%}\")"),
    new_markdown_cell("## Risk contributions\n\nEuler components: they add up to the portfolio's volatility "
                      "(annualized) and to its one-day historical CVaR."),
    new_code_cell(
        "display(report.risk.contributions.style.format(\"{:.4f}\"))\n"
        "report.risk.sector_contributions.style.format(\"{:.4f}\")"),
    new_markdown_cell("## Stress tests\n\nHistorical windows replayed on today's weights (bought at the window's "
                      "first close, held to its last), and hypothetical shocks propagated by betas."),
    new_code_cell(
        "report.risk.stress.style.format({\"portfolio_return\": \"{:.2%}\", \"loss\": \"{:.2%}\", "
        "\"coverage\": \"{:.0%}\"}, na_rep=\"–\")"),
    new_markdown_cell("## Compliance"),
    new_code_cell("report.risk.compliance"),
    new_markdown_cell("## Figures"),
    new_code_cell("for name, fig in report.figures().items():\n    show_figure(fig, name)"),
    new_markdown_cell("## Holdings and the what-if rebalance"),
    new_code_cell(
        "pd.DataFrame({\"current\": report.weights, \"what-if min-variance\": report.what_if.weights})"
        ".fillna(0).style.format(\"{:.2%}\")"),
    new_markdown_cell("## Return forecasts\n\nThe registered champion forecaster's return forecasts for the held "
                      "names next to their historical mean over the report's lookback, when a champion exists "
                      "(`qpo pipeline run weekly-retrain` trains one every Monday and promotes it only when it beats "
                      "the historical mean out of sample)."),
    new_code_cell(
        "forecasts = report.forecast_section(prices, model_name=forecaster_name)  # never fails the report\n"
        "display(HTML(forecasts.html()))\n"
        "for name, value in forecasts.metrics().items():\n"
        "    record(name, value, show=False)"),
    new_code_cell(
        "if write_store:\n"
        "    from qpo.store import record_risk_metrics, session_scope\n"
        "    with session_scope(engine) as session:\n"
        "        record_risk_metrics(session, portfolio, report.as_of, report.risk.metrics(), mlflow_run_id=run_id)\n"
        "    print(f\"{len(report.risk.metrics())} risk metrics written to the store\")"),
]

advisor = [
    new_markdown_cell("# Client portfolios\n\nPick a client portfolio: its holdings, its risk over the last "
                      "three years and how it grew against the S&P 500."),
    new_code_cell('portfolio: str = "Balanced Growth"  # portfolio shown first\n'
                  'lookback_days: int = 756  # trading days behind the risk numbers\n',
                  metadata={"tags": ["parameters"]}),
    new_code_cell(
        "import ipywidgets as widgets\n"
        "from IPython.display import display\n\n"
        "from qpo.workbench.advisor import AdvisorDashboard\n\n"
        "dashboard = AdvisorDashboard(initial=portfolio, lookback_days=lookback_days)\n"
        "display(dashboard.widget)"),
    new_code_cell(
        "from qpo.workbench import record\n\n"
        "# kept in the executed notebook for tests and tracking, not shown on the dashboard\n"
        "record(\"portfolio\", dashboard.selected, show=False)\n"
        "record(\"volatility\", dashboard.report.volatility, show=False)\n"
        "record(\"n_portfolios\", len(dashboard.portfolios), show=False)"),
]

frontier = [
    new_markdown_cell("# Classical efficient frontier\n\nEstimate the moments, trace the efficient frontier under "
                      "the constraints, and place each objective's portfolio on it. Run it here, or with "
                      "`qpo pipeline run classical-frontier`; either way the run is logged to MLflow."),
    new_code_cell(
        'prices_source: str = "sp500"  # bundled source name, or the path of a CSV/Parquet price file\n'
        'history_start: str = "2018-01-01"  # first date of the returns\n'
        'history_end: "Optional[str]" = "2022-12-31"  # last date, or None for the end of the data\n'
        'tickers: "Optional[str]" = None  # comma-separated subset of the columns, or None for all\n'
        'mean: str = "historical"  # mean estimator: historical or ewma\n'
        'covariance: str = "ledoit_wolf"  # sample, ewma, ledoit_wolf, oas or factor\n'
        'max_weight: float = 0.25  # cap on each asset\n'
        'sector_max: "Optional[float]" = 0.35  # cap on each GICS sector, or None for no sector caps\n'
        'sectors_file: "Optional[str]" = None  # CSV with ticker and sector columns; None uses the bundled map\n'
        'objectives: str = "min_variance,max_sharpe,max_diversification,min_cvar"  # portfolios placed on the chart\n'
        'n_points: int = 50  # points on the frontier\n'
        'risk_free_rate: float = 0.02  # annual, for the Sharpe ratio\n'
        'run_id: "Optional[str]" = None  # set by the pipeline runner, which then logs the run itself\n',
        metadata={"tags": ["parameters"]}),
    new_code_cell(
        "import qpo\n"
        "from qpo.workbench import record, show_figure\n\n"
        "prices = qpo.load_prices(prices_source, start=history_start, end=history_end)\n"
        "if tickers:\n"
        "    prices = prices[[t.strip() for t in tickers.split(\",\")]]\n"
        "returns = qpo.prices_to_returns(prices)\n"
        "groups = {t: s for t, s in qpo.load_sectors(sectors_file).items() if t in returns.columns}\n"
        "constraints = qpo.Constraints(max_weight=max_weight, groups=groups or None,\n"
        "                              group_max={g: sector_max for g in set(groups.values())} if sector_max and groups else None)\n"
        "study = qpo.frontier_study(returns, mean=mean, covariance=covariance, constraints=constraints,\n"
        "                           objectives=[o.strip() for o in objectives.split(\",\")], n_points=n_points,\n"
        "                           risk_free_rate=risk_free_rate)\n"
        "print(f\"{returns.shape[1]} assets, {len(returns)} daily returns {returns.index[0].date()} to \"\n"
        "      f\"{returns.index[-1].date()}; frontier by the {study.frontier.attrs['path']} path in \"\n"
        "      f\"{study.frontier.attrs['total_s'] * 1e3:.1f} ms\")"),
    new_markdown_cell("## The portfolios\n\nAnnualized: expected return = 252 x mean daily return, volatility "
                      "= sqrt(252) x daily standard deviation."),
    new_code_cell(
        "display(study.table())\n"
        "for name, why in study.skipped.items():\n"
        "    print(f\"{name} skipped: {why}\")"),
    new_code_cell(
        "show_figure(study.frontier_figure(), \"frontier\")\n"
        "show_figure(study.weights_figure(), \"weights\")\n"
        "show_figure(study.frontier_weights_figure(), \"frontier_weights\")"),
    new_code_cell("study.weights().style.format(\"{:.2%}\")"),
    new_code_cell(
        "for name, value in study.metrics().items():\n"
        "    record(name, value, show=False)\n"
        "if run_id is None:  # run by hand: log to MLflow here (the pipeline runner logs its own runs)\n"
        "    with qpo.tracked_run(\"classical-frontier\", params={\"prices_source\": prices_source, \"mean\": mean,\n"
        "                         \"covariance\": covariance, \"max_weight\": max_weight, \"sector_max\": sector_max,\n"
        "                         \"objectives\": objectives, \"n_points\": n_points},\n"
        "                         data_hash=qpo.data_hash(prices)) as run:\n"
        "        run.log_metrics(study.metrics())\n"
        "        run.log_figure(study.frontier_figure(), \"frontier.html\")\n"
        "        run.log_dict({\"frontier\": study.frontier.to_dict(orient=\"list\")}, \"frontier.json\")\n"
        "    record(\"mlflow_run_id\", run.run_id, show=False)\n"
        "    print(f\"logged to MLflow: run {run.run_id}\")"),
]

backtest = [
    new_markdown_cell("# Walk-forward backtest\n\nSeveral strategies rebalanced over the same history with transaction "
                      "costs and no look-ahead (each decision sees returns up to its own close and trades at it), "
                      "against the S&P 500 index. Run it here, or with `qpo pipeline run backtest`; either way the "
                      "run is logged to MLflow."),
    new_code_cell(
        'prices_source: str = "sp500"  # bundled source name, or the path of a CSV/Parquet price file\n'
        'history_start: str = "2005-01-01"  # first date of prices (the first estimation window starts here)\n'
        'history_end: "Optional[str]" = "2022-12-31"  # last date, or None for the end of the data\n'
        'strategies: str = "min_variance,max_sharpe,risk_parity,equal_weight,buy_and_hold"  # comma-separated objectives or baselines\n'
        'rebalance: "Union[str, int]" = "M"  # D, W, M, Q or A (last trading day of each period), or a number of trading days\n'
        'window: int = 252  # daily returns behind each decision, 252 is one year\n'
        'costs: float = 0.001  # cost per unit of traded weight, 0.001 is 10 bp\n'
        'max_weight: float = 0.25  # cap on each asset for the optimizer strategies (hrp and the baselines take none)\n'
        'risk_free_rate: float = 0.02  # annual, for the Sharpe ratio and max_sharpe\n'
        'run_id: "Optional[str]" = None  # set by the pipeline runner, which then logs the run itself\n',
        metadata={"tags": ["parameters"]}),
    new_code_cell(
        "import qpo\n"
        "from qpo.backtesting import BASELINES\n"
        "from qpo.workbench import record, show_figure\n\n"
        "prices = qpo.load_prices(prices_source, start=history_start, end=history_end)\n"
        "benchmark = (qpo.load_prices(\"sp500_index\", start=history_start, end=history_end)[\"SP500\"]\n"
        "             if prices_source == \"sp500\" else None)\n"
        "caps = qpo.Constraints(max_weight=max_weight)\n"
        "chosen = [s if s in BASELINES or s == \"hrp\" else qpo.Strategy(s, constraints=caps)\n"
        "          for s in (x.strip() for x in strategies.split(\",\")) if s]\n"
        "comparison = qpo.compare_strategies(prices, chosen, rebalance=int(rebalance) if str(rebalance).isdigit() else rebalance,\n"
        "                                    window=window, costs=costs, benchmark=benchmark, risk_free_rate=risk_free_rate)\n"
        "first = next(iter(comparison.results.values()))\n"
        "print(f\"{prices.shape[1]} assets; first rebalance {first.equity.index[0].date()}, {len(first.returns)} \"\n"
        "      f\"out-of-sample days to {first.returns.index[-1].date()}; costs {costs:.2%} of each trade\")"),
    new_markdown_cell("## Summary\n\nNet of costs; annualized with 252 days. Turnover is the sum of |trade| over "
                      "all rebalances (the first, from cash, counts 1); costs paid sum each rebalance's cost as a "
                      "fraction of the wealth then."),
    new_code_cell(
        "display(comparison.summary().style.format(\"{:.4f}\", na_rep=\"\"))\n"
        "for name, result in comparison.results.items():\n"
        "    for failure in result.failures:\n"
        "        print(f\"{name}: no trade on {failure['date'].date()}: {failure['reason']}\")"),
    new_code_cell(
        "figures = comparison.figures()\n"
        "show_figure(figures[\"equity\"], \"equity\")\n"
        "show_figure(figures[\"drawdown\"], \"drawdown\")\n"
        "for name, result in comparison.results.items():\n"
        "    if name != \"buy_and_hold\":\n"
        "        show_figure(result.weights_figure(), f\"weights_{name}\")"),
    new_code_cell(
        "for name, value in comparison.metrics().items():\n"
        "    record(name, value, show=False)\n"
        "record(\"first_rebalance\", str(first.equity.index[0].date()), show=False)\n"
        "record(\"out_of_sample_days\", len(first.returns), show=False)\n"
        "if run_id is None:  # run by hand: log to MLflow here (the pipeline runner logs its own runs)\n"
        "    with qpo.tracked_run(\"backtest\", params={\"prices_source\": prices_source, \"strategies\": strategies,\n"
        "                         \"rebalance\": rebalance, \"window\": window, \"costs\": costs, \"max_weight\": max_weight,\n"
        "                         \"history_start\": history_start, \"history_end\": history_end},\n"
        "                         data_hash=qpo.data_hash(prices)) as run:\n"
        "        run.log_metrics(comparison.metrics())\n"
        "        run.log_figure(figures[\"equity\"], \"equity.html\")\n"
        "        run.log_dict({\"summary\": comparison.summary().to_dict(orient=\"index\")}, \"summary.json\")\n"
        "    record(\"mlflow_run_id\", run.run_id, show=False)\n"
        "    print(f\"logged to MLflow: run {run.run_id}\")"),
]

quantum = [
    new_markdown_cell("# Quantum vs classical asset selection\n\nChoose `k` of `n` real S&P 500 names (each at 1/k) to "
                      "minimize the annual mean-variance objective `risk_aversion/2 w'Sigma w - mu'w`, with QAOA (qpo's "
                      "statevector simulation, checked against Qiskit) or annealing (dwave-samplers, local), and next "
                      "to it the exact optimum (brute force, or SCIP above 20 assets). Every quantum number below is "
                      "reported against that optimum. Run it here, or with `qpo pipeline run quantum-vs-classical`; "
                      "either way the run and its diagnostics are logged to MLflow."),
    new_code_cell(
        'prices_source: str = "sp500"  # bundled source name, or the path of a CSV/Parquet price file\n'
        'history_start: str = "2015-01-01"  # first date of the returns\n'
        'history_end: "Optional[str]" = "2020-12-31"  # last date, or None for the end of the data\n'
        'n: int = 10  # assets: the first n columns with full history in the window\n'
        'k: int = 5  # assets to choose\n'
        'method: str = "qaoa"  # qaoa, annealing, exact or auto\n'
        'depth: int = 3  # QAOA layers p\n'
        'mixer: str = "auto"  # QAOA mixer: x (penalties), xy (ring, Dicke start, stays feasible) or auto\n'
        'cvar_alpha: float = 1.0  # QAOA CVaR aggregation: 1 is the mean energy\n'
        'shots: int = 1024  # QAOA samples drawn from the final state\n'
        'sampler: str = "simulated_annealing"  # annealing sampler: simulated_annealing, tabu or steepest_descent\n'
        'risk_aversion: float = 10.0  # weight of the variance against the return\n'
        'seed: int = 7  # seeds every random choice\n'
        'run_id: "Optional[str]" = None  # set by the pipeline runner, which then logs the run itself\n',
        metadata={"tags": ["parameters"]}),
    new_code_cell(
        "import qpo\n"
        "from qpo.workbench import record, show_figure\n\n"
        "prices = qpo.load_prices(prices_source, start=history_start, end=history_end).dropna(axis=1)\n"
        "returns = qpo.prices_to_returns(prices).iloc[:, :n]\n"
        "problem = qpo.PortfolioProblem.from_returns(returns, covariance=\"ledoit_wolf\")\n"
        "options = {\"k\": k, \"risk_aversion\": risk_aversion}\n"
        "if method in (\"qaoa\", \"auto\"):\n"
        "    options.update(reps=depth, mixer=mixer, cvar_alpha=cvar_alpha, shots=shots)\n"
        "if method in (\"annealing\", \"auto\"):\n"
        "    options.update(sampler=sampler)\n"
        "study = qpo.quantum_study(problem, \"asset_selection\", method=method, seed=seed, **options)\n"
        "result = study.result\n"
        "print(f\"{returns.shape[1]} assets, {len(returns)} daily returns {returns.index[0].date()} to \"\n"
        "      f\"{returns.index[-1].date()}; choose {k}\")\n"
        "if result.fallback_reason:\n"
        "    print(f\"fallback: {result.fallback_reason}\")"),
    new_markdown_cell("## The answer next to the exact optimum\n\n`gap` = (f - f*) / |f*|; the approximation ratio "
                      "(f_max - f) / (f_max - f*) runs from 0 (the worst feasible choice) to 1 (the optimum); "
                      "P(optimum) is against the uniform baseline 1/C(n,k); TTS99 is the time to see the optimum "
                      "with 99 % probability."),
    new_code_cell("display(study.comparison())\ndisplay(study.diagnostics().to_frame(\"value\"))"),
    new_code_cell(
        "show_figure(study.selection_figure(), \"selection\")\n"
        "show_figure(study.distribution_figure(), \"distribution\")\n"
        "show_figure(study.landscape_figure(), \"landscape\")"),
    new_code_cell(
        "for name, value in study.metrics().items():\n"
        "    record(name, value, show=False)\n"
        "record(\"selected\", \",\".join(result.diagnostics[\"selected\"]), show=False)\n"
        "record(\"exact_selected\", \",\".join(result.diagnostics[\"exact_selected\"]), show=False)\n"
        "if run_id is None:  # run by hand: log to MLflow here (the pipeline runner logs its own runs)\n"
        "    with qpo.tracked_run(\"quantum-vs-classical\", params={\"prices_source\": prices_source, \"n\": n, \"k\": k,\n"
        "                         \"method\": method, \"depth\": depth, \"mixer\": mixer, \"sampler\": sampler,\n"
        "                         \"risk_aversion\": risk_aversion, \"seed\": seed, \"shots\": shots,\n"
        "                         \"cvar_alpha\": cvar_alpha}, data_hash=qpo.data_hash(prices)) as run:\n"
        "        run.log_metrics(study.metrics())\n"
        "        run.log_figure(study.distribution_figure(), \"distribution.html\")\n"
        "        run.log_dict({\"diagnostics\": study.diagnostics().astype(str).to_dict()}, \"diagnostics.json\")\n"
        "    record(\"mlflow_run_id\", run.run_id, show=False)\n"
        "    print(f\"logged to MLflow: run {run.run_id}\")"),
]

train = [
    new_markdown_cell("# Train the return forecaster\n\nWalk-forward evaluation of a PyTorch return forecaster against "
                      "the historical mean and zero, out of sample; then the final model, trained on all the data, is "
                      "logged to MLflow and registered as `qpo-return-forecaster`. It becomes `@champion` only when its "
                      "out-of-sample mean rank IC beats the historical mean's and the current champion's; otherwise it "
                      "is kept as `@challenger`. Run by `qpo pipeline run weekly-retrain` on Mondays at 02:00."),
    new_code_cell(
        'model: str = "mlp"  # forecaster: mlp, lstm or gru\n'
        'horizon: int = 21  # forecast horizon in trading days\n'
        'feature_window: "Optional[int]" = None  # days of features per sample; None: 1 for mlp, 21 for lstm and gru\n'
        'hidden: int = 32  # hidden units per layer\n'
        'layers: int = 2  # hidden layers\n'
        'max_epochs: int = 40  # most training epochs per fold\n'
        'patience: int = 5  # epochs without a better validation loss before training stops\n'
        'seed: int = 0  # seeds the weights and the minibatches\n'
        'retrain_months: int = 12  # the walk-forward retrains every this many months\n'
        'walk_window: str = "expanding"  # training window: expanding (from the first date) or rolling\n'
        'train_years: "Optional[float]" = None  # years of a rolling training window; None for expanding\n'
        'prices_source: str = "sp500"  # bundled source name, or the path of a CSV/Parquet price file\n'
        'history_start: str = "2005-01-01"  # first date of prices (validated before the run)\n'
        'history_end: "Optional[str]" = None  # last date, or None for the end of the data\n'
        'tickers: "Optional[str]" = None  # comma-separated subset of the columns, or None for all\n'
        'model_name: str = "qpo-return-forecaster"  # registered model name in the MLflow registry\n'
        'threads: int = 1  # torch CPU threads: 1 is fastest on a shared machine\n'
        'run_id: "Optional[str]" = None  # set by the pipeline runner: the model and metrics go into its run\n',
        metadata={"tags": ["parameters"]}),
    new_code_cell(
        "import contextlib\n"
        "import io\n\n"
        "from IPython.display import HTML, display\n\n"
        "import qpo\n"
        "from qpo.forecasting import ForecasterConfig, registry_table, train_and_register\n"
        "from qpo.reporting.forecast import baseline_table, folds_figure, folds_table, ic_figure, promotion_html\n"
        "from qpo.workbench import record, show_figure\n\n"
        "prices = qpo.load_prices(prices_source, start=history_start, end=history_end,\n"
        "                         tickers=[t.strip() for t in tickers.split(\",\")] if tickers else None)\n"
        "config = ForecasterConfig(model=model, horizon=horizon, window=feature_window, hidden=hidden, layers=layers,\n"
        "                          max_epochs=max_epochs, patience=patience, seed=seed)\n"
        "training_log = io.StringIO()  # fold by fold progress and MLflow's messages, shown under Folds\n\n\n"
        "def progress(fold, folds, row):\n"
        "    print(f\"fold {fold}/{folds}: trained to {row['train_end'].date()}, {row['epochs']} epochs in \"\n"
        "          f\"{row['fit_seconds']:.1f} s; IC {row['mean_ic']:.4f} vs historical mean {row['baseline_mean_ic']:.4f}\",\n"
        "          file=training_log)\n\n\n"
        "# with run_id (the pipeline's run) the model and metrics go into that run; without, into a new one\n"
        "with contextlib.redirect_stderr(training_log):\n"
        "    result, forecaster, registration = train_and_register(\n"
        "        prices, config, retrain_months=retrain_months, window=walk_window, train_years=train_years,\n"
        "        run_id=run_id, model_name=model_name, threads=threads, progress=progress)"),
    new_code_cell(
        "display(HTML(promotion_html(registration, result)))  # the decision first\n"
        "print(f\"{prices.shape[1]} tickers, {len(prices)} days {prices.index[0].date()} to {prices.index[-1].date()}; \"\n"
        "      f\"{len(result.folds)} folds in {result.seconds:.1f} s; the final model, trained to \"\n"
        "      f\"{forecaster.train_end.date()} in {len(forecaster.history)} epochs, is {registration.model_uri}\")"),
    new_markdown_cell("## Against the baselines\n\nOut of sample, on the same (date, ticker) pairs: the mean Spearman "
                      "rank IC across tickers per forecast date (forecast dates every `horizon` days, so the realized "
                      "returns do not overlap), its t-stat, the share of dates with IC > 0, the hit rate (sign "
                      "right) and the mean squared error of the forecast return. Zero is a constant: no rank IC."),
    new_code_cell("baseline_table(result)"),
    new_code_cell("show_figure(ic_figure(result), \"ic\")"),
    new_markdown_cell("## Folds\n\nEach fold's model is trained on the labels known at its first forecast date and "
                      "early-stopped on the last dates of its training period."),
    new_code_cell(
        "show_figure(folds_figure(result), \"folds\")\n"
        "display(folds_table(result).style.format({\"fit seconds\": \"{:.1f}\", \"model IC\": \"{:.4f}\",\n"
        "                                          \"historical mean IC\": \"{:.4f}\"}, na_rep=\"–\"))\n"
        "print(training_log.getvalue())"),
    new_markdown_cell("## The registry\n\nEvery version of the model, its aliases, its out-of-sample IC and the "
                      "promotion decision with its reason."),
    new_code_cell(
        "registry_table(model_name).style.format({\"oos_mean_ic\": \"{:.4f}\", \"baseline_mean_ic\": \"{:.4f}\"},\n"
        "                                        na_rep=\"–\").hide(axis=\"index\")"),
    new_code_cell(
        "# machine-readable copies of the numbers (the pipeline logs them to its MLflow run)\n"
        "record(\"oos_mean_ic\", registration.oos_mean_ic, show=False)\n"
        "record(\"baseline_mean_ic\", registration.baseline_mean_ic, show=False)\n"
        "record(\"promoted\", int(registration.promoted), show=False)\n"
        "record(\"model_version\", int(registration.version), show=False)\n"
        "record(\"alias\", registration.alias, show=False)\n"
        "record(\"promotion_reason\", registration.reason, show=False)\n"
        "record(\"previous_champion\", registration.previous_champion, show=False)\n"
        "record(\"mlflow_run_id\", registration.run_id, show=False)\n"
        "record(\"folds\", len(result.folds), show=False)\n"
        "record(\"walk_forward_seconds\", result.seconds, show=False)\n"
        "for name, value in result.summary_metrics().items():\n"
        "    record(name, value, show=False)"),
]

write("notebooks/01_daily_risk_report.ipynb", daily)
write("notebooks/02_classical_frontier.ipynb", frontier)
write("notebooks/03_backtest.ipynb", backtest)
write("notebooks/04_quantum_vs_classical.ipynb", quantum)
write("notebooks/05_train_forecaster.ipynb", train)
write("voila_apps/advisor.ipynb", advisor)

if STALE:
    sys.exit(f"notebooks differ from tools/make_notebooks.py: {STALE}; run python tools/make_notebooks.py")
