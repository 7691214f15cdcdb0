"""`qpo pipeline run risk --fail-on-breach`: the risk pipeline (notebook 09 under Papermill) exits 1
when it recorded new breach alerts, so that a scheduler paging on exit codes pages; a rerun of the
same date has no new alert and exits 0."""
from __future__ import annotations

import json
import subprocess
import sys

from tests.test_workbench import seed_demo_book


def _qpo(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "qpo.cli", *args], capture_output=True, text=True, timeout=900)


def test_the_risk_pipeline_fails_on_new_breaches_only(qpo_home):
    seed_demo_book()  # the demo book: some portfolios breach their own limits on the panel's last date
    value = _qpo("pipeline", "run", "valuation", "-p", "workers", "1", "--json")
    assert value.returncode == 0, value.stdout[-2000:] + value.stderr[-3000:]
    assert json.loads(value.stdout.strip().splitlines()[-1])["status"] == "FINISHED"

    first = _qpo("pipeline", "run", "risk", "-p", "workers", "1", "--fail-on-breach", "--json")
    run = json.loads(first.stdout.strip().splitlines()[-1])
    assert run["status"] == "FINISHED" and run["metrics"]["new_alerts"] > 0, first.stderr[-3000:]
    n = run["metrics"]["new_alerts"]
    assert first.returncode == 1 and f"breaches   new_alerts {n:g}, unchecked 0: exit 1 (--fail-on-breach)" in first.stderr

    again = _qpo("pipeline", "run", "risk", "-p", "workers", "1", "--fail-on-breach", "--json")
    rerun = json.loads(again.stdout.strip().splitlines()[-1])
    assert rerun["status"] == "FINISHED" and rerun["metrics"]["new_alerts"] == 0
    assert rerun["metrics"]["persisting_alerts"] == run["metrics"]["new_alerts"]  # the same breaches: no new alert
    assert again.returncode == 0, again.stderr[-3000:]

    plain = _qpo("pipeline", "run", "risk", "-p", "workers", "1", "--json")  # without the flag: 0 either way
    assert plain.returncode == 0


def test_a_book_pipeline_refuses_an_as_of_outside_the_books_prices_before_a_run(qpo_home):
    """`-p as_of 2030-01-01` (or 1980, or 'notadate') created an MLflow run that failed in its third
    cell, exit 1; `-p as_of 2021-02-30` ended in YAML's 'day is out of range for month' traceback."""
    seed_demo_book()
    for value, says in (("2030-01-01", "as_of 2030-01-01 is outside the data, which runs from 1990-01-02 to "
                                       "2022-12-28 (the book's prices)"),
                        ("2021-02-30", "as_of '2021-02-30' is not a date"),
                        ("notadate", "'notadate' is not a date written YYYY-MM-DD")):
        for pipeline in ("valuation", "risk"):
            r = _qpo("pipeline", "run", pipeline, "-p", "as_of", value, "--json")
            doc = json.loads(r.stdout.strip().splitlines()[-1])
            assert r.returncode == 2 and doc["status"] == "INVALID_DATA" and doc["run_id"] is None, r.stdout[-800:]
            assert says in doc["error"] and "Traceback" not in r.stderr, (pipeline, value, doc["error"])
    assert not (qpo_home / "runs").exists()  # no run was created


def test_the_daily_report_fails_on_a_breach_and_a_pipeline_without_breaches_refuses_the_flag(qpo_home):
    """The daily report counts its portfolio's breaches (its definition's breach_metrics); the
    valuation counts none, so `--fail-on-breach` on it is refused before a run, naming the
    pipelines that count breaches, instead of being accepted and meaning nothing."""
    seed_demo_book()
    r = _qpo("pipeline", "run", "valuation", "--fail-on-breach", "--json")
    doc = json.loads(r.stdout.strip().splitlines()[-1])
    assert r.returncode == 3 and doc["status"] == "ERROR", r.stderr[-2000:]
    assert "pipeline 'valuation' records no breach count" in doc["error"]
    assert "the pipelines that do: daily-report, risk" in doc["error"]
    assert not (qpo_home / "runs").exists()

    params = ("-p", "portfolio", "Tech Tilt", "-p", "lookback_days", "250", "-p", "history_start", "2019-01-01")
    # a 5 % weight limit the portfolio breaches (the exit 0 of a run without breaches: the risk test above)
    r = _qpo("pipeline", "run", "daily-report", *params, "-p", "limit_max_weight", "0.05", "--fail-on-breach", "--json")
    run = json.loads(r.stdout.strip().splitlines()[-1])
    assert run["status"] == "FINISHED" and run["metrics"]["compliance_breaches"] > 0, r.stderr[-3000:]
    assert r.returncode == 1, r.stderr[-2000:]
    assert f"breaches   compliance_breaches {run['metrics']['compliance_breaches']:g}" in r.stderr


def test_a_breach_metric_the_run_did_not_record_as_a_number_is_not_a_pass():
    """A renamed record, or a breach_metrics entry naming a list, must not read as "no breach"."""
    from qpo.cli import _breach_counts

    counted, unread = _breach_counts({"a": 2.0, "b": 0, "c": [1], "d": True, "e": float("nan")},
                                     ("a", "b", "c", "d", "e", "f"))
    assert counted == {"a": 2.0, "b": 0.0} and unread == ["c", "d", "e", "f"]
