"""Pipeline runs that are never lost, and refusals before a run starts: concurrent first runs on a
fresh home, unknown parameters and portfolios, an as-of date outside the data, a corrupt
``mlflow.db``, and an MLflow UI of a fixed, small size."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import psutil
import pytest

from qpo.errors import DataError
from tests.reliability.tiny_project import make_project, project_env, start_cli

FIRST_RUNS = 8


def test_concurrent_first_runs_all_finish_and_are_tracked(qpo_home, tmp_path):
    """Eight ``qpo pipeline run`` at once on a home with no ``mlflow.db``: each used to run MLflow's
    schema migration, and most ended FAILED with no record."""
    root = make_project(tmp_path / "project")
    env = project_env(root)
    assert not (qpo_home / "mlflow.db").exists()
    t0 = time.perf_counter()
    procs = [start_cli(env, "pipeline", "run", "tiny", "-p", "label", f"run{i}", "--json") for i in range(FIRST_RUNS)]
    results = [p.communicate(timeout=900) for p in procs]
    seconds = time.perf_counter() - t0
    lines = [json.loads(out.strip().splitlines()[-1]) for out, _ in results]
    errors = [err for _, err in results]
    assert [p.returncode for p in procs] == [0] * FIRST_RUNS, [line.get("error") for line in lines]
    assert [line["status"] for line in lines] == ["FINISHED"] * FIRST_RUNS
    # the failures this guards against: a store locked or migrated twice (the runs all FINISHED above)
    signs = ("database is locked", "OperationalError", "IntegrityError", "MlflowException", "alembic")
    bad = [err[-3000:] for err in errors if any(sign in err for sign in signs)]
    assert not bad, bad  # each offending run's stderr, to say what went wrong

    import mlflow

    from qpo.tracking import configure

    configure()
    (experiment,) = [e for e in mlflow.search_experiments() if e.name == "tiny"]  # created once
    runs = mlflow.search_runs([experiment.experiment_id], output_format="list")
    assert sorted(r.info.run_id for r in runs) == sorted(line["run_id"] for line in lines)
    assert {r.info.status for r in runs} == {"FINISHED"}
    assert sorted(r.data.params["label"] for r in runs) == sorted(f"run{i}" for i in range(FIRST_RUNS))
    assert all(r.data.metrics == {"started": 1.0, "slept": 0.0} for r in runs)
    print(f"\n{FIRST_RUNS} concurrent first runs: {FIRST_RUNS} FINISHED and tracked in {seconds:.1f} s")


def _cli(*args, env=None, timeout=600):
    return subprocess.run([sys.executable, "-m", "qpo.cli", *args], capture_output=True, text=True, timeout=timeout,
                          env=env)


def _nothing_written(home):
    return not (home / "runs").exists() and not (home / "mlflow.db").exists()


@pytest.fixture
def seeded(qpo_home, sp500):
    from qpo.store import connect
    from qpo.workbench.demo import seed_demo

    seed_demo(connect(), prices=sp500)
    return qpo_home


def test_unknown_portfolio_and_parameter_are_refused_before_a_run(seeded):
    proc = _cli("pipeline", "run", "daily-report", "-p", "portfolio", "No Such Client", "--json")
    assert proc.returncode == 3 and "Traceback" not in proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["status"] == "ERROR" and "'No Such Client'" in out["error"]
    assert "Balanced Growth" in out["error"] and "Conservative Income" in out["error"]  # the valid names
    proc = _cli("pipeline", "run", "daily-report", "-p", "lookback", "10", "--json")
    assert proc.returncode == 3
    error = json.loads(proc.stdout.strip().splitlines()[-1])["error"]
    assert "'lookback'" in error and "lookback_days" in error and "as_of" in error
    assert _nothing_written(seeded)


def test_a_missing_store_is_refused_not_created(qpo_home):
    proc = _cli("pipeline", "run", "daily-report", "--json")
    assert proc.returncode == 3 and "Traceback" not in proc.stderr
    error = json.loads(proc.stdout.strip().splitlines()[-1])["error"]
    assert str(qpo_home / "qpo.db") in error and "qpo db seed" in error
    assert not (qpo_home / "qpo.db").exists() and _nothing_written(qpo_home)


def test_an_as_of_outside_the_data_is_invalid_data(seeded, sp500_clean, tmp_path):
    from qpo.workbench.pipelines import run_pipeline

    path = tmp_path / "small.csv"
    sp500_clean.loc["2019-01-01":"2020-12-31", ["JNJ", "PG", "KO", "PEP", "WMT", "MRK", "PFE"]].to_csv(path)
    common = {"prices_source": str(path), "portfolio": "Conservative Income", "history_start": "2019-01-01"}
    for as_of in ("2021-06-30", "2018-12-31"):
        run = run_pipeline("daily-report", {**common, "as_of": as_of})
        assert run.status == "INVALID_DATA" and run.run_id is None
        assert f"as_of {as_of} is outside the data, which runs from 2019-01-02 to 2020-12-31" in run.error
    assert _nothing_written(seeded)
    with pytest.raises(DataError):  # the same rule the notebook would meet later
        from qpo.data import check_as_of

        check_as_of(sp500_clean.index, "1990-01-01")


@pytest.mark.parametrize("damage", ["random", "truncated"])
def test_a_corrupt_mlflow_db_is_one_clear_line(qpo_home, tmp_path, damage):
    db = qpo_home / "mlflow.db"
    if damage == "random":
        db.write_bytes(os.urandom(64 * 1024))
    else:
        from qpo.tracking import configure, tracked_run

        configure()
        with tracked_run("tiny", "r") as run:
            run.log_metrics({"x": 1.0})
        data = db.read_bytes()
        db.write_bytes(data[: len(data) // 2])
    root = make_project(tmp_path / "project")
    proc = _cli("pipeline", "run", "tiny", env=project_env(root))
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr and not (qpo_home / "runs").exists()
    (line,) = [x for x in proc.stderr.splitlines() if x.startswith("qpo: error:")]
    assert f"the MLflow tracking store {db} is corrupt" in line
    assert ("not an SQLite database" if damage == "random" else "truncated") in line
    assert "move it aside" in line and "restore it from a backup" in line


def test_the_mlflow_ui_starts_few_processes(qpo_home):
    from tests.servers import free_port, serving

    port = free_port()
    cmd = [sys.executable, "-m", "qpo.cli", "ui", "mlflow", "--port", str(port)]
    with serving(cmd, f"http://127.0.0.1:{port}/health", qpo_home / "ui.log", timeout=240):
        (server,) = [p for p in psutil.process_iter(["cmdline"]) if f"--port {port}" in " ".join(p.info["cmdline"] or [])
                     and "mlflow" in " ".join(p.info["cmdline"] or []) and "uvicorn" not in " ".join(p.info["cmdline"])]
        tree = [server, *server.children(recursive=True)]
        megabytes = sum(p.memory_info().rss for p in tree) / 2**20
    print(f"\nqpo ui mlflow: {len(tree)} processes, {megabytes:.0f} MB")
    assert len(tree) <= 3  # mlflow, uvicorn with one worker (was 15 processes and 2.2 GB)
    proc = _cli("ui", "mlflow", "--port", str(port), "--workers", "0")
    assert proc.returncode == 2 and "--workers must be a whole number of web workers from 1 to 16" in proc.stderr


def test_the_mlflow_ui_listens_on_this_machine_unless_told(qpo_home):
    from qpo.cli import build_parser
    from qpo.tracking.server import server_command

    assert build_parser().parse_args(["ui", "mlflow"]).host == "127.0.0.1"
    assert build_parser().parse_args(["ui", "mlflow", "--host", "0.0.0.0"]).host == "0.0.0.0"
    argv = server_command(5001, 1, host="0.0.0.0").argv
    assert argv[argv.index("--host") + 1] == "0.0.0.0"
