"""An ``mlflow.db`` that is SQLite but not this MLflow's (a copy of ``qpo.db``, a newer MLflow's
store, another application's database) is refused in one line with exit 2, through the CLI, and
left untouched; a store of this MLflow keeps working."""
from __future__ import annotations

import hashlib
import json
import sqlite3
import subprocess
import sys

import pytest

from qpo.store.db import head_revision


def _cli(*args, timeout=600):
    return subprocess.run([sys.executable, "-m", "qpo.cli", *args], capture_output=True, text=True, timeout=timeout)


def _digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _error_line(proc):
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    (line,) = [x for x in proc.stderr.splitlines() if x.startswith("qpo: error:")]
    return line


@pytest.fixture
def seeded(qpo_home, sp500):
    from qpo.store import connect
    from qpo.workbench.demo import seed_demo

    seed_demo(connect(), prices=sp500)
    return qpo_home


def test_a_copy_of_the_store_as_mlflow_db_is_refused_by_every_command(seeded):
    import mlflow

    db = seeded / "mlflow.db"
    db.write_bytes((seeded / "qpo.db").read_bytes())
    before = _digest(db)
    for args in (("pipeline", "runs"), ("models", "list")):
        proc = _cli(*args)
        assert proc.returncode == 2, (args, proc.stderr[-3000:])
        line = _error_line(proc)
        assert f"{db} is not an MLflow tracking store of this version" in line
        assert f"its schema revision '{head_revision()}' is unknown to MLflow {mlflow.__version__}" in line
        assert "Move it aside" in line and "MLFLOW_TRACKING_URI" in line
        assert len(line) < 400 + 3 * len(str(db))
    proc = _cli("pipeline", "run", "daily-report", "--json")
    assert proc.returncode == 2, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["status"] == "ERROR" and f"its schema revision '{head_revision()}' is unknown" in out["error"]
    assert _digest(db) == before  # refused before MLflow touched it
    assert not (seeded / "runs").exists()


def test_a_newer_mlflow_schema_is_refused(qpo_home):
    from qpo.tracking import configure

    configure()  # a real store of this MLflow
    db = qpo_home / "mlflow.db"
    with sqlite3.connect(db) as con:
        con.execute("UPDATE alembic_version SET version_num = 'ffffeeee0001'")
    con.close()
    proc = _cli("pipeline", "runs")
    assert proc.returncode == 2
    line = _error_line(proc)
    assert "its schema revision 'ffffeeee0001' is unknown to MLflow" in line and "a newer MLflow's store" in line


def test_another_applications_tables_without_a_revision_are_refused(qpo_home):
    db = qpo_home / "mlflow.db"
    with sqlite3.connect(db) as con:
        con.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY, amount REAL)")
    con.close()
    before = _digest(db)
    proc = _cli("models", "list")
    assert proc.returncode == 2
    assert "it holds tables that are not MLflow's (invoices)" in _error_line(proc)
    assert _digest(db) == before


def test_a_store_of_this_mlflow_still_opens(qpo_home):
    from qpo.tracking import configure, tracked_run
    from qpo.tracking.mlflow_run import check_mlflow_schema

    configure()
    with tracked_run("unit", "r") as run:
        run.log_metrics({"x": 1.0})
    check_mlflow_schema(qpo_home / "mlflow.db")  # no error
