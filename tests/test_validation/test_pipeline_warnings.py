"""A validation warning never stops a pipeline, and never goes unrecorded: the daily report on the
bundled panel from 2000 (Apple's -52 % on 2000-09-29, AMD's +52 % on 2016-04-22) finishes, and the
warning is in the run's JSON, its MLflow tags and its ``validation.json`` artifact."""
import json

from qpo.workbench.pipelines import run_pipeline

WARNING = "large one-day moves to review (|return| > 40 %)"


def test_daily_report_finishes_with_the_warnings_recorded(qpo_home, sp500):
    from tests.test_workbench import seed_demo_book

    # `qpo db seed` (bought on 2019-12-31, so that the ledger holds the book on the report's date):
    # pipelines read the store, never create it
    seed_demo_book(prices=sp500)
    logged = []
    run = run_pipeline("daily-report", {"portfolio": "Conservative Income", "as_of": "2021-06-30",
                                        "lookback_days": 250}, log=logged.append)
    assert run.status == "FINISHED" and run.ok, run.error
    assert run.parameters["prices_source"] == "store" and run.parameters["history_start"] == "2000-01-01"

    (warning,) = run.data_warnings
    assert warning.startswith(f"{WARNING}: expect_column_values_to_be_between on simple_return flagged 2 row(s)")
    assert "ticker=AAPL, date=2000-09-29" in warning and "ticker=AMD, date=2016-04-22" in warning
    assert json.loads(run.to_json())["data_warnings"] == [warning]
    assert any(m.startswith(f"data warnings, to review (the run goes on): {WARNING}: 2 row(s)") for m in logged)

    import mlflow

    from qpo.tracking import configure

    configure()
    logged_run = mlflow.get_run(run.run_id)
    assert logged_run.info.status == "FINISHED"
    assert logged_run.data.tags["qpo.data_warnings"] == f"{WARNING}: 2 row(s)"
    client = mlflow.MlflowClient()
    assert "validation.json" in {f.path for f in client.list_artifacts(run.run_id)}
    path = client.download_artifacts(run.run_id, "validation.json", str(qpo_home))
    with open(path, encoding="utf-8") as fh:
        validation = json.load(fh)
    assert validation["success"] is True and validation["failures"] == []
    assert [(w["check"], w["severity"], w["unexpected_count"]) for w in validation["warnings"]] == [
        (WARNING, "warning", 2)]
    assert validation["data_docs"] == run.data_docs
