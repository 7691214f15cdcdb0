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


@pytest.mark.parametrize("stop", ["SIGTERM", "ctrl-c"])
def test_an_interrupted_run_ends_killed_with_the_reason(qpo_home, stop):
    import signal

    import mlflow

    from qpo.errors import RunInterrupted

    exc = RunInterrupted("interrupted by SIGTERM", signal.SIGTERM) if stop == "SIGTERM" else KeyboardInterrupt()
    with pytest.raises(type(exc)):
        with tracked_run("unit", "stopped") as run:
            raise exc
    got = mlflow.get_run(run.run_id)
    reason = "interrupted by SIGTERM" if stop == "SIGTERM" else "interrupted by SIGINT (Ctrl-C)"
    assert got.info.status == "KILLED"
    assert got.data.tags["qpo.stop_reason"] == reason and got.data.tags["mlflow.note.content"] == reason


def test_a_damaged_tracking_file_is_refused_with_the_way_out(qpo_home, tmp_path):
    import sqlite3

    from qpo.errors import CorruptFileError
    from qpo.tracking.mlflow_run import check_sqlite_file

    check_sqlite_file(tmp_path / "absent.db")  # absent or empty: MLflow creates the store
    (tmp_path / "empty.db").write_bytes(b"")
    check_sqlite_file(tmp_path / "empty.db")
    good = tmp_path / "good.db"
    with sqlite3.connect(good) as con:
        con.execute("CREATE TABLE t (x TEXT)")
        con.executemany("INSERT INTO t VALUES (?)", [("x" * 500,)] * 200)
    check_sqlite_file(good)
    data = good.read_bytes()
    cases = {"text.db": (b"hello, not a database\n" * 10, "it is not an SQLite database"),
             "short.db": (data[:60], "it is truncated (60 bytes, shorter than an SQLite header)"),
             "half.db": (data[: len(data) // 2], "it is truncated"),
             "odd.db": (data[:-100], "it is truncated")}
    for name, (content, what) in cases.items():
        path = tmp_path / name
        path.write_bytes(content)
        with pytest.raises(CorruptFileError) as info:
            check_sqlite_file(path)
        message = str(info.value)
        assert message.startswith(f"the MLflow tracking store {path} is corrupt: {what}") and "\n" not in message
        assert f"mv '{path}' '{path}.corrupt'" in message and "restore it from a backup" in message


def test_the_store_and_an_experiment_are_created_once_under_a_lock(qpo_home):
    from concurrent.futures import ThreadPoolExecutor

    import mlflow

    from qpo.tracking import configure
    from qpo.tracking.mlflow_run import _experiment_id

    uri = configure()
    assert (qpo_home / "mlflow.db").exists() and (qpo_home / "mlflow.db.lock").exists()
    with ThreadPoolExecutor(4) as pool:
        ids = set(pool.map(lambda _: _experiment_id("once", uri), range(8)))
    assert len(ids) == 1 and mlflow.get_experiment_by_name("once").experiment_id == ids.pop()


def test_an_inherited_mlflow_run_id_does_not_merge_runs(qpo_home, monkeypatch):
    """MLFLOW_RUN_ID in the environment would make every start_run resume that one run."""
    import mlflow

    with tracked_run("unit", "first") as first:
        pass
    monkeypatch.setenv("MLFLOW_RUN_ID", first.run_id)
    with tracked_run("unit", "second") as second:
        pass
    assert second.run_id != first.run_id
    assert mlflow.get_run(second.run_id).info.run_name == "second"
    assert mlflow.get_run(first.run_id).info.run_name == "first"
