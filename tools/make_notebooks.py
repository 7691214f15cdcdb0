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
    new_markdown_cell("# Daily risk report\n\nRisk of one client portfolio as of a date: the numbers, "
                      "the figures and a what-if min-variance rebalance of the same names. Run by "
                      "`qpo pipeline run daily-report` on weekdays at 18:00; every number recorded "
                      "below is logged to MLflow and written to the store."),
    new_code_cell(
        'portfolio: str = "Balanced Growth"  # client portfolio name in the store\n'
        'as_of: "Optional[str]" = None  # report date YYYY-MM-DD, or None for the last date of the data\n'
        'lookback_days: int = 756  # trading days of returns behind the risk numbers, 756 is 3 years\n'
        'confidence: float = 0.95  # VaR / CVaR confidence level, in (0, 1)\n'
        'risk_free_rate: float = 0.0  # annual risk-free rate for the Sharpe ratio\n'
        'max_weight: float = 0.25  # per-name cap of the what-if min-variance rebalance\n'
        'prices_source: str = "sp500"  # bundled source name, or the path of a CSV/Parquet price file\n'
        'history_start: str = "2000-01-01"  # first date of price history loaded (and validated)\n'
        'write_store: bool = True  # write the risk numbers to the store\n'
        'run_id: "Optional[str]" = None  # MLflow run id; the pipeline runner sets it\n',
        metadata={"tags": ["parameters"]}),
    new_code_cell(
        "import pandas as pd\n\n"
        "import qpo\n"
        "from qpo.reporting.daily import daily_report\n"
        "from qpo.store import connect, seed_demo\n"
        "from qpo.workbench import record, show_figure\n\n"
        "prices = qpo.load_prices(prices_source, start=history_start)\n"
        "benchmark = qpo.load_prices(\"sp500_index\", start=history_start)[\"SP500\"] if prices_source == \"sp500\" else None\n"
        "engine = connect()\n"
        "seed_demo(engine, prices=qpo.load_prices(\"sp500\"))  # demo portfolios on first run; no-op afterwards\n"
        "report = daily_report(portfolio, prices, as_of=as_of, lookback_days=lookback_days, confidence=confidence,\n"
        "                      risk_free_rate=risk_free_rate, max_weight=max_weight, benchmark=benchmark, engine=engine)\n"
        "print(f\"{portfolio}: {report.risk.n_periods} daily returns, {report.risk.start.date()} to {report.as_of.date()}\")"),
    new_markdown_cell("## Risk numbers\n\nSimple daily returns, 252 periods a year; VaR and CVaR are one-day "
                      "historical losses (positive numbers)."),
    new_code_cell(
        "display(report.risk_table().style.format(\"{:.4f}\"))\n"
        "# machine-readable copies of the table (logged to MLflow as metrics), not shown in the report\n"
        "for name, value in report.metrics().items():\n"
        "    record(name, value, show=False)\n"
        "record(\"as_of\", str(report.as_of.date()), show=False)\n"
        "record(\"n_holdings\", int(len(report.weights)), show=False)"),
    new_markdown_cell("## Figures"),
    new_code_cell("for name, fig in report.figures().items():\n    show_figure(fig, name)"),
    new_markdown_cell("## Holdings and the what-if rebalance"),
    new_code_cell(
        "pd.DataFrame({\"current\": report.weights, \"what-if min-variance\": report.what_if.weights})"
        ".fillna(0).style.format(\"{:.2%}\")"),
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

write("notebooks/01_daily_risk_report.ipynb", daily)
write("voila_apps/advisor.ipynb", advisor)

if STALE:
    sys.exit(f"notebooks differ from tools/make_notebooks.py: {STALE}; run python tools/make_notebooks.py")
