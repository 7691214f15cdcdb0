"""The one tracking helper: metadata in SQLite, artifacts under mlruns/, failures marked FAILED."""
import plotly.graph_objects as go
import pytest

from qpo.tracking import code_version, tracked_run


def test_run_logs_params_metrics_figures_tags(qpo_home, tmp_path):
    import mlflow

    note = tmp_path / "note.txt"
    note.write_text("hello")
    with tracked_run("unit", "r1", params={"lookback": 756, "tickers": ["A", "B"]}, data_hash="abc123",
                     tags={"qpo.pipeline": "unit"}) as run:
        run.log_metrics({"var": 0.021, "bad": float("nan"), "flag": True, "name": "x"})
        run.log_figure(go.Figure(go.Scatter(x=[1, 2], y=[3, 4])), "line")
        run.log_artifact(note)
    assert run.tracking_uri == f"sqlite:///{qpo_home / 'mlflow.db'}"
    got = mlflow.get_run(run.run_id)
    assert got.info.status == "FINISHED"
    assert got.data.params == {"lookback": "756", "tickers": '["A", "B"]'}
    assert got.data.metrics == {"var": 0.021}  # NaN, booleans and strings are not metrics
    assert got.data.tags["qpo.data_hash"] == "abc123" and got.data.tags["qpo.pipeline"] == "unit"
    assert got.data.tags["qpo.code_version"] == code_version()
    root = qpo_home / "mlruns" / "unit"
    files = {p.relative_to(root).as_posix().split("/", 2)[-1] for p in root.rglob("*") if p.is_file()}
    assert {"figures/line.html", "figures/line.json", "note.txt"} <= files


def test_failed_run_is_marked_failed_with_the_error(qpo_home):
    import mlflow

    with pytest.raises(ZeroDivisionError):
        with tracked_run("unit", "boom") as run:
            raise ZeroDivisionError("division by zero")
    got = mlflow.get_run(run.run_id)
    assert got.info.status == "FAILED"
    assert got.data.tags["error_type"] == "ZeroDivisionError"
    assert "division by zero" in got.data.tags["error"]


def test_tracking_uri_follows_the_environment(qpo_home, monkeypatch, tmp_path):
    import mlflow

    uri = f"sqlite:///{tmp_path / 'other.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("QPO_MLFLOW_ARTIFACTS", str(tmp_path / "art"))
    with tracked_run("env", "r") as run:
        run.log_metrics({"x": 1.0})
    assert run.tracking_uri == uri
    assert mlflow.get_run(run.run_id).info.artifact_uri.startswith((tmp_path / "art").as_uri())
    assert (tmp_path / "other.db").exists() and not (qpo_home / "mlflow.db").exists()


def test_code_version_is_the_git_commit():
    import subprocess

    from tests.conftest import ROOT

    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    if head.returncode != 0:
        import qpo

        assert code_version() == f"qpo-{qpo.__version__}"  # not a checkout: the package version
    else:
        assert code_version().split("+")[0] == head.stdout.strip()
