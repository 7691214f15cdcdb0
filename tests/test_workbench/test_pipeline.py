"""The daily-report pipeline end to end: Papermill, HTML, MLflow, the store; bad data and a
failing notebook."""
import json
import subprocess
import sys

import numpy as np
import pytest

import qpo
from qpo.errors import PipelineError, UnknownOptionError
from qpo.workbench.notebook import read_figures, read_records
from qpo.workbench.pipelines import run_pipeline
from tests.test_store.test_store import SYSTEM
from tests.test_workbench import seed_demo_book, weights_with_cash


def _cli(*args, timeout=600):
    return subprocess.run([sys.executable, "-m", "qpo.cli", *args], capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def seeded(qpo_home, sp500):
    """A store with the demo portfolios (``qpo db seed``, bought on DEMO_BOOK_OPENED): pipelines
    read the store, never create it."""
    seed_demo_book(prices=sp500)
    return qpo_home


@pytest.fixture
def mlflow(qpo_home):
    import mlflow

    from qpo.tracking import configure

    configure()  # this test's QPO_HOME, as the pipeline's subprocess saw it
    return mlflow


def test_daily_report_from_the_shell(qpo_home, seeded, sp500_clean, mlflow):
    proc = _cli("pipeline", "run", "daily-report", "-p", "portfolio", "Conservative Income",
                "-p", "as_of", "2021-06-30", "-p", "lookback_days", "500", "--json")
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["status"] == "FINISHED" and out["parameters"]["as_of"] == "2021-06-30"
    assert out["tracking_uri"] == f"sqlite:///{qpo_home / 'mlflow.db'}"
    nb, html = out["notebook"], out["html"]
    assert nb.startswith(str(qpo_home / "runs" / "daily-report")) and html.endswith("report.html")

    # the numbers, recomputed here from the store's weights with plain numpy
    records = read_records(nb)
    from qpo.book.strategy import Strategy
    from qpo.store import audit_trail, connect, get_portfolio, risk_history, session_scope

    with session_scope(connect()) as s:
        w = weights_with_cash(s, "Conservative Income", sp500_clean, "2021-06-30")  # the ledger then, cash included
        stored = risk_history(s, SYSTEM, "Conservative Income")
        own = Strategy.from_json(get_portfolio(s, SYSTEM, "Conservative Income").strategy).limits
        trail = audit_trail(s, SYSTEM, "Conservative Income")
    px = sp500_clean.loc[:"2021-06-30", w.index].iloc[-501:].to_numpy()
    r = (px[1:] / px[:-1] - 1) @ w.to_numpy()
    assert records["volatility"] == pytest.approx(np.std(r, ddof=1) * np.sqrt(252), rel=1e-9)
    assert records["var"] == pytest.approx(-np.sort(r)[int(np.ceil(0.05 * 500)) - 1], rel=1e-9)
    assert records["as_of"] == "2021-06-30" and records["n_holdings"] == 7
    # the what-if is the portfolio's own proposal that day (a dry run, not stored): its numbers recorded
    from qpo.book import propose_rebalance

    direct = propose_rebalance("Conservative Income", as_of="2021-06-30", actor=SYSTEM, prices=sp500_clean,
                               engine=connect(), save=False)
    assert records["what_if_turnover"] == pytest.approx(direct.turnover)
    assert records["what_if_n_trades"] == len(direct.trades) and records["what_if_status"] == "proposal"

    # MLflow: finished, metrics = the records, params, tags, artifacts
    run = mlflow.get_run(out["run_id"])
    assert run.info.status == "FINISHED"
    assert run.data.metrics["var"] == pytest.approx(records["var"])
    assert run.data.params["portfolio"] == "Conservative Income"
    assert run.data.tags["qpo.data_hash"] == out["data_hash"] and "qpo.code_version" in run.data.tags
    art = {f.path for f in mlflow.MlflowClient().list_artifacts(out["run_id"])}
    assert {"notebook.ipynb", "report.html", "records.json", "figures"} <= art
    assert (qpo_home / "mlruns").is_dir()

    # the store got the risk numbers, tagged with the run
    assert set(qpo.RiskReport.METRICS) | {"confidence", "var_normal", "cvar_monte_carlo_bootstrap",
                                           "stress_loss_covid_crash_2020", "compliance_breaches"} <= set(stored["metric"])
    assert set(stored["metric"]) <= set(records)  # the store keeps what the notebook recorded
    assert (stored["mlflow_run_id"] == out["run_id"]).all()

    # the HTML report: no code, figures drawn offline (plotly.js inlined, no CDN)
    text = open(html, encoding="utf-8").read()
    assert "import qpo" not in text and "daily_report(" not in text
    import re

    assert re.findall(r'<script[^>]+src="https?://', text) == []  # nothing fetched from the network
    assert text.count("Plotly.newPlot") >= 3
    assert set(read_figures(nb)) == {"wealth", "drawdown", "weights", "distribution", "contributions", "sectors",
                                     "stress"}
    # the compliance status opens the report: Conservative Income was bought 62 % Consumer Staples (PG 18,
    # KO 16, PEP 16, WMT 12), over its own sector limit (its stored strategy's); the breach is an MLflow
    # metric too
    staples = sum(w[t] for t in ("PG", "KO", "PEP", "WMT"))
    assert records["limits"] == own.to_dict() and staples > own.sector_max
    # the report changed nothing of the book: besides the seeding, the trail holds only its record of the
    # risk numbers it stored (every write names its actor), no change of the portfolio or its ledger
    assert set(trail["actor"]) == {"system:seed", "system:daily-report"}
    ours = trail[trail["actor"] == "system:daily-report"]
    assert set(ours["action"]) == {"record"} and set(ours["entity"]) == {"risk_metrics"}
    assert records["breach_sector_consumer_staples"] == 1 and records["compliance_breaches"] >= 1
    assert any(f"Consumer Staples {staples:.1%}" in b for b in records["breaches"])
    assert text.index("COMPLIANCE BREACH") < text.index("Risk numbers")
    assert run.data.metrics["compliance_breaches"] == records["compliance_breaches"]
    assert run.data.metrics["breach_sector_consumer_staples"] == 1
    # no forecaster is registered here: the report says so plainly (and is not failed by it)
    assert records["forecast_available"] == 0 and records["forecast_status"] == "no_champion"
    assert ("No champion return forecaster is registered (models:/qpo-return-forecaster@champion); train one "
            "with `qpo pipeline run weekly-retrain`.") in text


def test_invalid_data_stops_before_anything_is_written(qpo_home, seeded, tmp_path, sp500_clean):
    bad = sp500_clean.loc["2019-01-01":, ["KO", "PEP"]].copy()
    bad.loc["2020-05-05", "KO"] = -1.0
    path = tmp_path / "bad.csv"
    bad.reset_index().to_csv(path, index=False)
    run = run_pipeline("daily-report", {"prices_source": str(path)})
    assert run.status == "INVALID_DATA" and not run.ok
    assert "non-positive prices" in run.error
    assert run.notebook is None and run.run_id is None
    assert not (qpo_home / "runs").exists() and not (qpo_home / "mlflow.db").exists()
    assert run.data_docs and run.data_docs.endswith(".html")
    proc = _cli("pipeline", "run", "daily-report", "-p", "prices_source", str(path))
    assert proc.returncode == 2 and "INVALID_DATA" in proc.stdout and "KO" in proc.stderr


def test_bars_are_checked_as_bars_and_relative_paths_resolve(qpo_home, seeded, tmp_path, goog_bars, sp500_clean,
                                                             monkeypatch):
    monkeypatch.chdir(tmp_path)  # the caller's folder, not the notebook's
    bad = goog_bars.copy()
    bad.loc[500, "high"] = bad.loc[500, "low"] * 0.5  # one bar with high < low
    bad.to_csv(tmp_path / "DA-GOOG-T-2013-03-01.csv", index=False)
    run = run_pipeline("daily-report", {"prices_source": "DA-GOOG-T-2013-03-01.csv"})
    assert run.status == "INVALID_DATA" and "high < low" in run.error
    assert not (qpo_home / "runs").exists()

    names = ["JNJ", "PG", "KO", "PEP", "WMT", "MRK", "PFE"]  # Conservative Income's holdings
    sp500_clean.loc["2016-01-01":, names].reset_index().to_csv(tmp_path / "mine.csv", index=False)
    run = run_pipeline("daily-report", {"prices_source": "mine.csv", "portfolio": "Conservative Income",
                                        "lookback_days": 250})
    assert run.status == "FINISHED", run.error
    assert run.parameters["prices_source"] == str(tmp_path / "mine.csv")
    assert run.metrics["n_holdings"] == 7 and "benchmark_var" not in run.metrics  # no index for a user file


def test_json_line_even_when_the_run_cannot_start(qpo_home, seeded):
    proc = _cli("pipeline", "run", "daily-report", "-p", "lookback", "10", "--json")
    assert proc.returncode == 3
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["status"] == "ERROR" and "lookback_days" in out["error"]
    proc = _cli("pipeline", "run", "daily-report", "-p", "prices_source", "sp50", "--json")
    assert proc.returncode == 3 and "Traceback" not in proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert "unknown price source 'sp50'" in out["error"] and "sp500_index" in out["error"]


def test_a_start_that_is_not_a_date_is_invalid_data(qpo_home, seeded):
    run = run_pipeline("daily-report", {"history_start": "notadate"})
    assert run.status == "INVALID_DATA" and "start 'notadate' is not a date" in run.error
    assert not (qpo_home / "runs").exists()


def test_failing_notebook_is_kept_and_marked_failed(qpo_home, seeded, mlflow):
    proc = _cli("pipeline", "run", "daily-report", "-p", "confidence", "1.5", "-p", "lookback_days", "250", "--json")
    assert proc.returncode == 1
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["status"] == "FAILED"
    assert "InvalidValueError" in out["error"] and "confidence must lie strictly between 0 and 1" in out["error"]
    nb = out["notebook"]
    assert nb and open(nb, encoding="utf-8").read().count("InvalidValueError") >= 1  # the executed notebook stays
    run = mlflow.get_run(out["run_id"])
    assert run.info.status == "FAILED"
    assert "got 1.5" in run.data.tags["error"]
    art = {f.path for f in mlflow.MlflowClient().list_artifacts(out["run_id"])}
    assert "notebook.ipynb" in art and "error.txt" in art


def test_unknown_pipeline_and_parameters_are_clear():
    with pytest.raises(UnknownOptionError, match="daily-report"):
        run_pipeline("nightly")
    with pytest.raises(UnknownOptionError, match="lookback_days"):
        run_pipeline("daily-report", {"lookback": 10})
    with pytest.raises(PipelineError, match="lookback_days must be int"):
        run_pipeline("daily-report", {"lookback_days": "many"})


def test_weekly_retrain_pipeline(qpo_home, mlflow):
    """The weekly retrain on six names, 2008-2014, a tiny MLP: its report opens with the promotion
    decision, then the baseline table and the IC figure; the model, its metrics and the version tag
    are in the pipeline's own MLflow run, and the registered version points back to it."""
    from qpo.workbench.pipelines import load_spec

    spec = load_spec("weekly-retrain")
    assert spec.schedule == "0 2 * * 1" and spec.experiment == "weekly-retrain"  # Mondays 02:00
    run = run_pipeline("weekly-retrain", {"tickers": "AAPL,JNJ,JPM,KO,MSFT,XOM", "history_start": "2008-01-01",
                                          "history_end": "2014-12-31", "hidden": 8, "layers": 1, "max_epochs": 2,
                                          "retrain_months": 24})
    assert run.status == "FINISHED", run.error
    rec = run.metrics
    assert rec["mlflow_run_id"] == run.run_id  # train_and_register logged into the pipeline's run
    assert rec["model_version"] == 1 and rec["folds"] == 2
    assert rec["alias"] == ("champion" if rec["oos_mean_ic"] > rec["baseline_mean_ic"] else "challenger")

    logged = mlflow.get_run(run.run_id)
    assert logged.info.status == "FINISHED" and logged.data.tags["qpo.pipeline"] == "weekly-retrain"
    assert logged.data.tags["qpo.model_version"] == "1" and logged.data.tags["qpo.promotion"] == rec["alias"]
    assert logged.data.tags["qpo.promotion_reason"] == rec["promotion_reason"]
    assert logged.data.params["hidden"] == "8" and logged.data.params["walk_forward.folds"] == "2"
    assert logged.data.metrics["oos_mean_ic"] == pytest.approx(rec["oos_mean_ic"], abs=1e-12)
    client = mlflow.MlflowClient()
    version = client.get_model_version("qpo-return-forecaster", "1")
    assert version.run_id == run.run_id and version.tags["qpo.promotion"] == rec["alias"]
    assert client.get_registered_model("qpo-return-forecaster").aliases[rec["alias"]] == 1
    art = {f.path for f in client.list_artifacts(run.run_id)}
    assert {"walk_forward", "features.json", "report.html", "notebook.ipynb", "figures"} <= art
    assert set(read_figures(run.notebook)) == {"ic", "folds"}

    # the report: the decision first, then the baselines (zero has no rank IC) and the IC figure
    text = open(run.html, encoding="utf-8").read()
    decision = "PROMOTED TO CHAMPION" if rec["promoted"] else "KEPT AS CHALLENGER"
    assert decision in text and text.index(decision) < text.index("Against the baselines") < text.index("Folds")
    assert ("PROMOTED TO CHAMPION" in text) + ("KEPT AS CHALLENGER" in text) == 1
    import html

    assert rec["promotion_reason"][1:] in html.unescape(text)  # the registry's reason, capitalized in the banner
    table = text[text.index("Against the baselines"):text.index("Folds")]
    assert f"{rec['oos_mean_ic']:.4f}" in table and f"{rec['baseline_mean_ic']:.4f}" in table
    assert table.count("n/a (constant)") == 4  # zero's mean IC, t-stat, IC > 0 share and hit rate
    assert f"Out-of-sample rank IC: MLP mean {rec['oos_mean_ic']:.4f}" in text
    assert "import qpo" not in text and text.count("Plotly.newPlot") == 2
