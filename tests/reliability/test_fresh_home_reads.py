"""Reading commands on a fresh home create nothing: ``qpo pipeline runs`` and ``qpo models list``
with no tracking store say there is nothing yet, and where the store would be, without making
``mlflow.db`` (they used to create it and print MLflow's "Updating database tables")."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from qpo.tracking.mlflow_run import missing_store
from tests.conftest import ROOT

EXE = ROOT / ".venv" / "bin" / "qpo"


def qpo(home, *args):
    cmd = [str(EXE)] if EXE.exists() else [sys.executable, "-m", "qpo.cli"]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("QPO_", "MLFLOW_"))} | {"QPO_HOME": str(home)}
    return subprocess.run(cmd + list(args), env=env, capture_output=True, text=True, timeout=300, cwd=home)


@pytest.fixture
def home(tmp_path):
    (tmp_path / "fresh").mkdir()
    return tmp_path / "fresh"


def test_read_only_commands_on_a_fresh_home_create_nothing(home):
    db = home / "mlflow.db"
    r = qpo(home, "pipeline", "runs")
    assert (r.returncode, r.stdout) == (0, f"no runs yet (no tracking store at {db})\n"), r.stderr
    r = qpo(home, "pipeline", "runs", "--json")
    assert r.returncode == 0 and json.loads(r.stdout) == {"runs": [], "repaired": [], "no_tracking_store": str(db)}
    r = qpo(home, "models", "list")
    assert r.returncode == 0 and r.stdout.startswith(f"no models yet (no tracking store at {db})")
    r = qpo(home, "models", "list", "--json")
    assert r.returncode == 0 and json.loads(r.stdout) == []
    r = qpo(home, "pipeline", "runs", "--repair")
    assert r.returncode == 0 and "no runs yet" in r.stdout
    assert list(home.iterdir()) == []  # no mlflow.db, no lock file, no mlruns
    assert "Updating database tables" not in r.stderr


def test_an_existing_store_is_read_as_before(home):
    from qpo.tracking import configure

    uri = f"sqlite:///{home / 'mlflow.db'}"
    assert missing_store(uri) == home / "mlflow.db"
    configure(uri)  # what a first run does: creates the store
    assert missing_store(uri) is None
    r = qpo(home, "pipeline", "runs")
    assert (r.returncode, r.stdout) == (0, "no pipeline runs recorded yet\n"), r.stderr


def test_missing_store_by_kind_of_uri(tmp_path):
    (tmp_path / "empty.db").write_bytes(b"")
    assert missing_store(f"sqlite:///{tmp_path / 'empty.db'}") == tmp_path / "empty.db"  # MLflow would fill it
    assert missing_store(f"file://{tmp_path / 'mlruns'}") == tmp_path / "mlruns"
    assert missing_store(str(tmp_path)) is None and missing_store(f"file://{tmp_path}") is None
    assert missing_store("http://127.0.0.1:5000") is None
    assert missing_store("postgresql://u@127.0.0.1/mlflow") is None


@pytest.mark.parametrize("pipeline", ["valuation", "risk"])
def test_the_book_pipelines_refuse_a_missing_store_before_a_run(home, pipeline):
    """They read the client book: with no store, refused at once (no kernel, no MLflow run, no
    notice), like the daily report's portfolio check; and no file is created."""
    r = qpo(home, "pipeline", "run", pipeline, "--json")
    assert r.returncode != 0 and "Traceback" not in r.stderr
    doc = json.loads(r.stdout.strip().splitlines()[-1])
    assert doc.get("run_id") in (None, "") and "qpo db" in json.dumps(doc), doc
    assert not (home / "qpo.db").exists() and not (home / "mlflow.db").exists() and not (home / "runs").exists()


def test_a_huge_parameter_is_not_echoed_whole(home):
    assert qpo(home, "db", "seed").returncode == 0
    r = qpo(home, "pipeline", "run", "daily-report", "-p", "as_of", "x" * 10_000, "--json")
    line = r.stdout.strip().splitlines()[-1]
    assert r.returncode != 0 and len(line) < 3_000, len(line)  # 11,251 bytes before
    assert "...(10,000 characters)" in json.loads(line)["parameters"]["as_of"]
