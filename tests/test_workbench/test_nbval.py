"""nbval, as the design card asks: each notebook of notebooks/ and voila_apps/ runs under
``pytest --nbval-lax`` (in a subprocess, so this suite's own collection is untouched) with small
parameters, and nbval compares at least one cell's output per notebook with a reference.

How the pieces fit, given that the committed .ipynb carry no outputs:

* The cell whose output is checked is marked in the notebook itself with nbval's cell tag
  ``nbval-check-output`` (``# %% tags=["nbval-check-output"]`` in the .py): a reader sees which
  output the suite holds. Run by hand on the committed notebooks (``pytest --nbval-lax notebooks``,
  full-size defaults), nbval executes every cell and compares none: an unrun cell has no reference.
* Here each notebook is copied to a temporary folder, its small parameters injected after the
  ``parameters`` cell exactly as Papermill injects a pipeline's (``parameterize_notebook``; the
  notebooks hold no test-only switch, and the defaults the pipelines use stay as they are), and the
  expected outputs of its checked cells written into the copy as their reference outputs. nbval then
  executes every cell (any error fails) and compares the checked ones, whole: every stream and
  display, so stray noise in them (a solver banner, a warning) fails as well.
* The expected outputs are computed here from the bundled data (dates, counts), not recorded from a
  previous run. ``nbval_sanitize.cfg`` masks what varies from run to run: wall-clock durations and
  the training notebook's promotion banner (its verdict follows the trained model's IC).

Every notebook gets a fresh QPO_HOME (store, MLflow) from tests/conftest.py, which the nbval
subprocess and its kernels inherit. These runs come in addition to the Papermill checks of
test_notebooks.py, which check many numbers of the same notebooks against independent computations.
"""
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook, new_output

from tests.conftest import ROOT
from tests.test_store.test_store import SYSTEM
from tests.test_workbench import seed_demo_book, weights_with_cash

SANITIZE = Path(__file__).with_name("nbval_sanitize.cfg")
CHECK_TAG = "nbval-check-output"
NOTEBOOKS = sorted(p.relative_to(ROOT).as_posix() for d in ("notebooks", "voila_apps")
                   for p in (ROOT / d).glob("*.ipynb"))


def _stdout(text: str):
    return new_output("stream", name="stdout", text=text)


def _record(name: str, value):
    """What ``qpo.workbench.record(name, value, show=False)`` displays."""
    return new_output("display_data", data={"application/vnd.qpo.record+json": {"name": name, "value": value},
                                            "text/plain": ""})


def expect_daily_report(p):
    import qpo

    returns = qpo.prices_to_returns(qpo.load_prices("sp500", start="2000-01-01", end=p["as_of"]))
    start = returns.index[-p["lookback_days"]].date()
    return [[_stdout(f"{p['portfolio']}: {p['lookback_days']} daily returns, {start} to {p['as_of']}\n")]]


def expect_classical_frontier(p):
    import qpo

    names = p["tickers"].split(",")
    prices = qpo.load_prices("sp500", start=p["history_start"], end=p["history_end"])[names]
    r = qpo.prices_to_returns(prices)
    # sector caps make the frontier a path of the active-set method; its time is masked
    return [[_stdout(f"{len(names)} assets, {len(r)} daily returns {r.index[0].date()} to {r.index[-1].date()}; "
                     "frontier by the active-set path in <duration> ms\n")]]


def expect_backtest(p):
    import numpy as np

    import qpo

    prices = qpo.load_prices("sp500", start=p["history_start"], end=p["history_end"])
    idx = prices.index
    # the first decision is at the first quarter end with a full window of returns behind it
    quarter_ends = np.flatnonzero(idx.to_period("Q")[1:] != idx.to_period("Q")[:-1])
    first = int(quarter_ends[quarter_ends >= p["window"]][0])
    return [[_stdout(f"{prices.shape[1]} assets; first rebalance {idx[first].date()}, {len(idx) - 1 - first} "
                     f"out-of-sample days to {idx[-1].date()}; costs {p['costs']:.2%} of each trade\n")]]


def expect_quantum(p):
    import qpo

    prices = qpo.load_prices("sp500", start="2015-01-01", end="2020-12-31").dropna(axis=1)
    r = qpo.prices_to_returns(prices).iloc[:, :p["n"]]
    return [[_stdout(f"{p['n']} assets, {len(r)} daily returns {r.index[0].date()} to {r.index[-1].date()}; "
                     f"choose {p['k']}\n")]]


def expect_train_forecaster(p):
    import qpo

    prices = qpo.load_prices("sp500", start=p["history_start"], end=p["history_end"], tickers=p["tickers"].split(","))
    banner = new_output("display_data", data={"text/html": "<promotion banner>",
                                              "text/plain": "<IPython.core.display.HTML object>"})
    # two 24-month folds after the first three years; the final model trains to the last date for
    # max_epochs (patience is longer); a fresh registry makes it version 1
    return [[banner, _stdout(
        f"{prices.shape[1]} tickers, {len(prices)} days {prices.index[0].date()} to {prices.index[-1].date()}; "
        f"2 folds in <duration> s; the final model, trained to {prices.index[-1].date()} in {p['max_epochs']} "
        "epochs, is models:/qpo-return-forecaster/1\n")]]


def expect_advisor(p):
    import qpo
    from qpo.risk import annualized_volatility, portfolio_returns
    from qpo.store import connect, list_portfolios, session_scope

    prices = qpo.load_prices("sp500")
    engine = connect()
    seed_demo_book(engine, prices)  # as the test did first: it finds the store seeded
    with session_scope(engine) as session:  # the ledger's shares at the last close, as the app reads them
        weights = weights_with_cash(session, p["portfolio"], prices.loc["2000-01-01":])
        n = len(list_portfolios(session, SYSTEM))
    returns = qpo.prices_to_returns(prices.loc["2000-01-01":, list(weights.index)]).iloc[-p["lookback_days"]:]
    # the library's own volatility of the held portfolio over the lookback (bit for bit what the app
    # records; test_notebooks.py checks the same number against plain numpy)
    vol = annualized_volatility(portfolio_returns(weights, returns))
    return [[_record("portfolio", p["portfolio"]), _record("volatility", vol), _record("n_portfolios", n)]]


def expect_rebalance(p):
    import qpo
    from qpo.store import connect, get_portfolio, position, session_scope

    day = qpo.load_prices("sp500", end=p["as_of"]).index[-1].date()
    engine = connect()
    seed_demo_book(engine)  # as the test did first: it finds the store seeded
    with session_scope(engine) as session:  # the ledger on the day, as the notebook reads it before proposing
        row = get_portfolio(session, SYSTEM, p["portfolio"])
        client, advisor = row.client_name, row.advisor.email
        held = position(session, SYSTEM, p["portfolio"], day)
    return [[_stdout(f"{p['portfolio']} ({client}), advised by {advisor}: {len(held.shares)} names and "
                     f"{held.cash:,.2f} cash on {day}\n")]]


def expect_sweep(p):
    """A finished sweep of the tiny pipeline, 3 cells on one worker, one failing, recorded first."""
    from tests.test_workbench.test_sweep import recorded_tiny_sweep

    home = Path(os.environ["QPO_HOME"])
    recorded_tiny_sweep(home.parent / "sweep_project", seconds=[0.0, 0.25, -1.0], label=["a"])
    return [[_stdout("sweep of tiny: 3 cells over seconds, label; 1 FAILED, 2 FINISHED; parent run FAILED\n")]]


#: notebook -> (small parameters, the expected outputs of its checked cells, in order)
def expect_book_valuation(p):
    import qpo

    day = qpo.load_prices("sp500").index[-1].date()
    return [[_stdout(f"valuation of {day}: 4 portfolios, 4 valued, 0 unpriced, 0 with stale prices, 0 empty; "
                     "prices from the bundled panel\n")]]


def expect_book_risk(p):
    import qpo
    from qpo.operations.nightly import run_valuation
    from qpo.reporting.daily import daily_report
    from qpo.store import connect, list_portfolios, session_scope

    seed_demo_book()
    run_valuation(workers=1)  # the risk run needs the date's valuation
    prices, index = qpo.load_prices("sp500"), qpo.load_prices("sp500_index")["SP500"]
    with session_scope(connect()) as s:
        names = list(list_portfolios(s, SYSTEM)["name"])
    counts = [len(daily_report(n, prices, benchmark=index, engine=connect(), sectors=qpo.load_sectors(),
                               n_scenarios=2000, actor=SYSTEM).breaches) for n in names]
    b, k = sum(counts), sum(c > 0 for c in counts)
    assert b > 0  # the demo book breaches some of its own limits: the case checks the counts, not zero
    return [[_stdout(f"risk of {prices.index[-1].date()}: 4 portfolios risk-checked; {b} failed check(s) in {k} "
                     f"portfolio(s); alerts: {b} new, 0 persisting, 0 resolved\n")]]


CASES = {
    "notebooks/01_daily_risk_report.ipynb": (
        dict(portfolio="Tech Tilt", as_of="2020-03-31", lookback_days=60, confidence=0.9), expect_daily_report),
    "notebooks/02_classical_frontier.ipynb": (
        dict(tickers="AAPL,AMD,MSFT,JPM,BAC,XOM,CVX,KO,PG,JNJ", covariance="sample", history_start="2019-01-01",
             history_end="2021-12-31", n_points=10, objectives="min_variance,max_sharpe,hrp"), expect_classical_frontier),
    "notebooks/03_backtest.ipynb": (
        dict(history_start="2015-01-01", history_end="2018-12-31", strategies="min_variance,equal_weight",
             rebalance="Q", window=126, costs=0.002), expect_backtest),
    "notebooks/04_quantum_vs_classical.ipynb": (
        dict(n=6, k=3, method="qaoa", depth=1, shots=128, seed=3), expect_quantum),
    "notebooks/05_train_forecaster.ipynb": (
        dict(tickers="AAPL,JNJ,JPM,KO,MSFT,XOM", hidden=8, layers=1, max_epochs=2, retrain_months=24,
             history_start="2008-01-01", history_end="2014-12-31"), expect_train_forecaster),
    "notebooks/06_rebalance.ipynb": (
        dict(portfolio="Tech Tilt", as_of="2021-06-30", max_turnover=0.4, store="configured"), expect_rebalance),
    "notebooks/07_sweep.ipynb": (dict(metric="slept"), expect_sweep),
    "notebooks/08_book_valuation.ipynb": (dict(workers=1), expect_book_valuation),
    "notebooks/09_book_risk.ipynb": (dict(workers=1), expect_book_risk),
    "voila_apps/advisor.ipynb": (dict(portfolio="Conservative Income", lookback_days=250), expect_advisor),
}


def run_nbval(notebooks: list[Path], folder: Path) -> tuple[subprocess.CompletedProcess, dict[str, str]]:
    """``pytest --nbval-lax`` on ``notebooks`` in a subprocess (kernels in this environment, the
    sanitizers above): the process and each cell's outcome, ``"<notebook>::Cell <i>" -> passed |
    failed | skipped``."""
    (folder / "pytest.ini").write_text("[pytest]\n")  # its own rootdir: none of this suite's configuration
    report = folder / "nbval.xml"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "--nbval-lax", "--nbval-current-env", f"--nbval-sanitize-with={SANITIZE}",
         "--nbval-kernel-startup-timeout=300", "--nbval-cell-timeout=900", "-p", "no:cacheprovider",
         "-p", "no:randomly", "-q", "-rfE", f"--junitxml={report}", *(str(n) for n in notebooks)],
        cwd=folder, env=env, capture_output=True, text=True, timeout=1800)
    outcomes = {}
    if report.exists():
        for case in ET.parse(report).iter("testcase"):
            failed = case.find("failure") is not None or case.find("error") is not None
            outcome = "failed" if failed else "skipped" if case.find("skipped") is not None else "passed"
            outcomes[f"{Path(case.get('file') or case.get('classname', '')).name}::{case.get('name')}"] = outcome
    return proc, outcomes


def nbval_copy(rel: str, params: dict, expected: list[list], dest: Path) -> Path:
    """A copy of notebook ``rel`` with ``params`` injected (as Papermill injects them) and
    ``expected`` as the reference outputs of its ``nbval-check-output`` cells."""
    from papermill.iorw import load_notebook_node
    from papermill.parameterize import parameterize_notebook

    nb = parameterize_notebook(load_notebook_node(str(ROOT / rel)), params)
    checked = [c for c in nb.cells if CHECK_TAG in c.metadata.get("tags", [])]
    assert len(checked) == len(expected) >= 1, f"{rel}: {len(checked)} {CHECK_TAG} cells, {len(expected)} expected"
    for i, (cell, outputs) in enumerate(zip(checked, expected, strict=True), start=1):
        cell.outputs, cell.execution_count = outputs, i  # nbval compares only a reference that has run
    dest.mkdir(parents=True, exist_ok=True)
    path = dest / Path(rel).name
    nbformat.write(nb, str(path))
    return path


def test_every_notebook_has_a_case_and_a_checked_cell():
    assert sorted(CASES) == NOTEBOOKS
    for rel in NOTEBOOKS:
        nb = nbformat.read(str(ROOT / rel), as_version=4)
        assert any(CHECK_TAG in c.metadata.get("tags", []) for c in nb.cells if c.cell_type == "code"), rel


@pytest.mark.slow
@pytest.mark.parametrize("notebook", NOTEBOOKS)
def test_notebook_under_nbval(notebook, tmp_path):
    seed_demo_book()  # as `qpo db seed` does (bought on DEMO_BOOK_OPENED); the notebooks only read
    params, expect = CASES[notebook]
    path = nbval_copy(notebook, params, expect(params), tmp_path / "nbval")
    proc, outcomes = run_nbval([path], tmp_path / "nbval")
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
    assert outcomes and set(outcomes.values()) == {"passed"}, outcomes


@pytest.mark.slow
def test_nbval_compares_the_reference_and_masks_durations(tmp_path):
    """The harness above has teeth: a checked cell whose output differs from its reference fails
    (nbval skips the comparison silently when a reference has no execution count); a duration is
    masked; an unchecked cell's output is not compared under --nbval-lax."""
    code = "import time\nprint(f'2 + 2 = {2 + 2}, in {time.perf_counter() % 10 + 0.05:.2f} s')"
    folder = tmp_path / "nbval"
    folder.mkdir()
    cells = [new_code_cell(code, metadata={"tags": [CHECK_TAG]}, execution_count=i + 1,
                           outputs=[_stdout(f"2 + 2 = {said}, in <duration> s\n")]) for i, said in enumerate("45")]
    cells.append(new_code_cell("print('anything')", execution_count=3, outputs=[_stdout("something else\n")]))
    nbformat.write(new_notebook(cells=cells), str(folder / "teeth.ipynb"))
    proc, outcomes = run_nbval([folder / "teeth.ipynb"], folder)
    assert outcomes == {"teeth.ipynb::Cell 0": "passed", "teeth.ipynb::Cell 1": "failed",
                        "teeth.ipynb::Cell 2": "passed"}, proc.stdout[-4000:]
    assert "Cell outputs differ" in proc.stdout and "2 + 2 = 5" in proc.stdout and proc.returncode == 1
