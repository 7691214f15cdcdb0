"""A team's tracking: eight ``qpo pipeline run`` started at once, against the SQLite default and
against ``qpo ui mlflow`` (a real ``mlflow server``) whose metadata live in the real PostgreSQL:
eight runs tracked each time, all FINISHED, no "database is locked", one experiment of the name,
and the artifacts (notebook, HTML report) reachable through the server. A bad backend URI is
refused in one line without its password. Against a server, MLflow prints the run's and the
experiment's links on stdout unless told not to: ``--json`` stays exactly one line, for a run and
for a sweep (whose cells run in Dask workers), and the sweep's nested runs read back."""
from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
import time
import uuid

import psutil
import pytest

from tests.reliability.tiny_project import make_project, project_env, start_cli
from tests.servers import free_port, serving

RUNS = 8
SECRET = "s3cret-Pw"


def _run_at_once(env: dict[str, str]) -> tuple[list[dict], float]:
    """``RUNS`` tiny pipeline runs started together; their JSON lines, once all are done."""
    env = _as_a_user_has_it(env)
    t0 = time.perf_counter()
    procs = [start_cli(env, "pipeline", "run", "tiny", "-p", "label", f"run{i}", "--json") for i in range(RUNS)]
    results = [p.communicate(timeout=600) for p in procs]
    seconds = time.perf_counter() - t0
    errors = [err for _, err in results]
    # what this test guards against: the tracking store locked, migrated or written twice; a run that
    # FINISHED may still carry pyzmq's teardown noise under load ("Socket operation on non-socket" from
    # a kernel stream closed while polled), shown here, not a failure of the tracking
    signs = ("database is locked", "OperationalError", "IntegrityError", "MlflowException", "alembic")
    bad = [err[err.find("Traceback"):][-3000:] if "Traceback" in err else err[-3000:] for err in errors
           if any(sign in err for sign in signs)]
    assert not bad, bad  # each failing run's traceback itself, not the kernel's TCP warning before it
    for err in errors:
        if "Traceback" in err:
            print("a run's stderr holds a traceback outside the tracking:", err[err.find("Traceback"):][-1500:])
    outs = [out.splitlines() for out, _ in results]  # --json: exactly one line (no "View run ..." from MLflow)
    assert [len(out) for out in outs] == [1] * RUNS, [out[:4] for out in outs if len(out) != 1][:2]
    lines = [json.loads(out[0]) for out in outs]
    assert [p.returncode for p in procs] == [0] * RUNS, [line.get("error") for line in lines]
    assert [line["status"] for line in lines] == ["FINISHED"] * RUNS
    return lines, seconds


def _as_a_user_has_it(env: dict[str, str]) -> dict[str, str]:
    """``env`` without MLflow's switch for its stdout links, which this test process may hold (qpo's
    ``configure`` sets it): the command must set it itself."""
    return {k: v for k, v in env.items() if k != "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"}


def _check_tracked(client, lines: list[dict]) -> list:
    """Exactly one experiment ``tiny`` holding the runs of ``lines``, all FINISHED, with their numbers."""
    experiments = [e for e in client.search_experiments() if e.name == "tiny"]
    assert len(experiments) == 1  # created once, not once per process
    runs = client.search_runs([experiments[0].experiment_id])
    assert sorted(r.info.run_id for r in runs) == sorted(line["run_id"] for line in lines)
    assert {r.info.status for r in runs} == {"FINISHED"}
    assert sorted(r.data.params["label"] for r in runs) == sorted(f"run{i}" for i in range(RUNS))
    assert all(r.data.metrics == {"started": 1.0, "slept": 0.0} for r in runs)
    return runs


def test_eight_runs_at_once_on_the_sqlite_default(qpo_home, tmp_path):
    from mlflow.tracking import MlflowClient

    from qpo.tracking import configure

    env = project_env(make_project(tmp_path / "project"))
    lines, seconds = _run_at_once(env)
    assert {line["tracking_uri"] for line in lines} == {configure()}
    assert configure().startswith("sqlite:") and (qpo_home / "mlflow.db").exists()
    _check_tracked(MlflowClient(configure()), lines)
    print(f"\n{RUNS} runs at once on SQLite: {RUNS} FINISHED and tracked in {seconds:.1f} s")


@pytest.fixture
def mlflow_database():
    """A private PostgreSQL database for MLflow's schema (created as the test role, dropped after)."""
    base = os.environ.get("QPO_TEST_DATABASE_URL")
    if not base:
        pytest.skip("QPO_TEST_DATABASE_URL is not set (CI sets it to a real PostgreSQL)")
    with _private_database(base) as url:
        yield url


@contextlib.contextmanager
def _private_database(base: str):
    """A database of its own on the PostgreSQL server ``base`` names; its URL (dropped after)."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    name = f"mlflow_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(base).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.mark.postgres
def test_eight_runs_at_once_on_a_tracking_server_on_postgresql(qpo_home, tmp_path, monkeypatch, mlflow_database):
    from mlflow.artifacts import download_artifacts
    from mlflow.tracking import MlflowClient
    from sqlalchemy import create_engine, text

    from qpo.tracking import configure
    from qpo.tracking.mlflow_run import _experiment_id

    server_home, artifacts = tmp_path / "server", tmp_path / "server" / "artifacts"
    monkeypatch.setenv("QPO_HOME", str(server_home))
    monkeypatch.setenv("QPO_MLFLOW_BACKEND_URI", mlflow_database)
    monkeypatch.setenv("QPO_MLFLOW_ARTIFACTS", str(artifacts))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    cmd = [sys.executable, "-m", "qpo.cli", "ui", "mlflow", "--port", str(port)]
    t0 = time.perf_counter()
    with serving(cmd, f"{url}/health", tmp_path / "server.log", timeout=240):
        started = time.perf_counter() - t0
        cmdlines = [" ".join(p.info["cmdline"] or []) for p in psutil.process_iter(["cmdline"])]
        assert any(f"--port {port}" in c and "mlflow" in c for c in cmdlines)
        assert not any(mlflow_database in c for c in cmdlines)  # the password is not in `ps`
        engine = create_engine(mlflow_database)
        try:
            with engine.connect() as conn:  # migrated by `mlflow db upgrade` before the server started
                from mlflow.store.db.utils import _get_latest_schema_revision

                version = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
                assert version == _get_latest_schema_revision()
            # the clients know only the server's address: no backend URI, no artifacts folder of their own
            env = project_env(make_project(tmp_path / "project"), QPO_HOME=str(qpo_home), MLFLOW_TRACKING_URI=url)
            for var in ("QPO_MLFLOW_BACKEND_URI", "QPO_MLFLOW_ARTIFACTS"):
                env.pop(var, None)
            lines, seconds = _run_at_once(env)
            assert {line["tracking_uri"] for line in lines} == {url}
            client = MlflowClient(url)
            runs = _check_tracked(client, lines)
            with engine.connect() as conn:  # the metadata are in PostgreSQL
                assert conn.execute(text("SELECT count(*) FROM experiments WHERE name = 'tiny'")).scalar() == 1
                assert conn.execute(text("SELECT count(*) FROM runs r JOIN experiments e USING (experiment_id) "
                                         "WHERE e.name = 'tiny' AND r.status = 'FINISHED'")).scalar() == RUNS
        finally:
            engine.dispose()
        # a client never made a local store, a lock or an artifacts folder
        assert not any(p.name.startswith(("mlflow.db", ".mlflow-tracking")) or p.name == "mlruns"
                       for p in qpo_home.iterdir()), sorted(p.name for p in qpo_home.iterdir())
        by_id = {line["run_id"]: line for line in lines}
        for run in runs:  # the notebook and the report, through the server
            assert run.info.artifact_uri.startswith("mlflow-artifacts:/")
            names = {f.path for f in client.list_artifacts(run.info.run_id)}
            assert {"notebook.ipynb", "report.html", "records.json"} <= names
        run_id = runs[0].info.run_id
        local = download_artifacts(run_id=run_id, artifact_path="report.html", tracking_uri=url,
                                   dst_path=str(tmp_path / "download"))
        with open(local, "rb") as got, open(by_id[run_id]["html"], "rb") as written:
            assert got.read() == written.read()
        assert list(artifacts.rglob(f"{run_id}/artifacts/report.html"))  # kept under QPO_MLFLOW_ARTIFACTS

        # the create-experiment race, head on: 8 threads, one experiment, the same id for all
        configure(url)
        ids, errors = [], []

        def make():
            try:
                ids.append(_experiment_id("race", url))
            except Exception as exc:  # noqa: BLE001 - reported by the assert below
                errors.append(exc)

        threads = [threading.Thread(target=make) for _ in range(RUNS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        assert not errors and len(ids) == RUNS and len(set(ids)) == 1
        assert [e.name for e in client.search_experiments() if e.name == "race"] == ["race"]
    log = (tmp_path / "server.log").read_text()
    assert "database is locked" not in log and mlflow_database not in log
    print(f"\nqpo ui mlflow on PostgreSQL up in {started:.1f} s; {RUNS} runs at once: {RUNS} FINISHED and tracked "
          f"in {seconds:.1f} s")


def test_a_sweep_on_a_tracking_server_prints_one_json_line_and_its_nested_runs_read_back(qpo_home, tmp_path,
                                                                                        monkeypatch):
    """``qpo pipeline sweep tiny -p label a b --json``: 2 cells in 2 Dask worker processes, tracking to
    ``qpo ui mlflow`` (its metadata in a private database of the real PostgreSQL when
    QPO_TEST_DATABASE_URL is set, else in SQLite). Neither the sweep's process nor its workers print
    MLflow's links: stdout is the one JSON line; the cells are child runs of the parent, and
    ``read_sweep`` (the reader of ``qpo.run_sweep``'s sweeps) reads it back through the server."""
    from mlflow.tracking import MlflowClient

    from qpo.workbench.sweep import read_sweep

    base = os.environ.get("QPO_TEST_DATABASE_URL")
    server_home = tmp_path / "server"
    monkeypatch.setenv("QPO_HOME", str(server_home))
    monkeypatch.setenv("QPO_MLFLOW_ARTIFACTS", str(server_home / "artifacts"))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with contextlib.ExitStack() as stack:  # the server stops before its database is dropped
        if base:
            monkeypatch.setenv("QPO_MLFLOW_BACKEND_URI", stack.enter_context(_private_database(base)))
        else:
            monkeypatch.delenv("QPO_MLFLOW_BACKEND_URI", raising=False)  # the server's own SQLite mlflow.db
        stack.enter_context(serving([sys.executable, "-m", "qpo.cli", "ui", "mlflow", "--port", str(port)],
                                    f"{url}/health", tmp_path / "server.log", timeout=240))
        env = _as_a_user_has_it(project_env(make_project(tmp_path / "project"), QPO_HOME=str(qpo_home),
                                            MLFLOW_TRACKING_URI=url))
        for var in ("QPO_MLFLOW_BACKEND_URI", "QPO_MLFLOW_ARTIFACTS", "QPO_DASK_SCHEDULER"):
            env.pop(var, None)
        proc = start_cli(env, "pipeline", "sweep", "tiny", "-p", "label", "a", "b", "--workers", "2", "--json")
        out, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err[-3000:]
        assert len(out.splitlines()) == 1, out[:2000]  # no "🏃 View run ..." from the parent or a worker
        result = json.loads(out)
        assert result["status"] == "FINISHED" and result["tracking_uri"] == url
        assert [c["status"] for c in result["cells"]] == ["FINISHED", "FINISHED"]
        assert len({c["pid"] for c in result["cells"]} - {proc.pid}) >= 1  # the cells ran in worker processes

        client = MlflowClient(url)
        parent = client.get_run(result["parent_run_id"])
        children = client.search_runs([parent.info.experiment_id],
                                      filter_string=f"tags.mlflow.parentRunId = '{parent.info.run_id}'")
        assert parent.info.status == "FINISHED" and parent.data.tags["qpo.sweep_status"] == "FINISHED"
        assert sorted(r.info.run_id for r in children) == sorted(c["run_id"] for c in result["cells"])
        assert {r.info.status for r in children} == {"FINISHED"}
        assert sorted(r.data.params["label"] for r in children) == ["a", "b"]

        monkeypatch.setenv("QPO_HOME", str(qpo_home))
        monkeypatch.setenv("MLFLOW_TRACKING_URI", url)
        record = read_sweep(parent.info.run_id)
        assert record.parent_run_id == parent.info.run_id and record.pipeline == "tiny"
        assert record.status == "FINISHED" and record.names == ["label"]
        assert list(record.table["label"]) == ["a", "b"] and list(record.table["status"]) == ["FINISHED"] * 2
        assert list(record.table["run_id"]) == [c["run_id"] for c in result["cells"]]
        assert list(record.table["started"]) == [1.0, 1.0]
    assert not (qpo_home / "mlflow.db").exists()  # the client made no store of its own
    print(f"\nsweep of 2 cells on a tracking server ({'PostgreSQL' if base else 'SQLite'}): one JSON line, "
          f"{len(children)} nested runs read back")


def _ui(env_uri: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, QPO_MLFLOW_BACKEND_URI=env_uri)
    return subprocess.run([sys.executable, "-m", "qpo.cli", "ui", "mlflow", "--port", str(free_port())],
                          capture_output=True, text=True, timeout=120, env=env)


def test_a_bad_backend_uri_is_one_line_without_the_password(qpo_home):
    from sqlalchemy.engine import make_url

    cases = {f"postgresql+psycopg://qpo:{SECRET}@127.0.0.1:{free_port()}/mlflow": "Connection refused",
             f"mongodb://qpo:{SECRET}@127.0.0.1/mlflow": "valid: postgresql, mysql, mssql, sqlite",
             "just some text": "is not a database URL; valid: postgresql+psycopg://"}
    pg = os.environ.get("QPO_TEST_DATABASE_URL")
    if pg:  # the real server, the wrong password
        cases[make_url(pg).set(password=SECRET).render_as_string(hide_password=False)] = "password authentication failed"
    for uri, reason in cases.items():
        proc = _ui(uri)
        assert proc.returncode == 2, proc.stderr[-2000:]
        assert "Traceback" not in proc.stderr and SECRET not in proc.stderr + proc.stdout
        (line,) = [x for x in proc.stderr.splitlines() if x.startswith("qpo: error:")]
        assert reason in line, line
        if "://" in uri:
            assert "qpo:***@127.0.0.1" in line
    assert not (qpo_home / "mlartifacts").exists() and not (qpo_home / "mlruns").exists()


def test_a_tracking_server_that_does_not_answer_is_refused(qpo_home, monkeypatch):
    from qpo.errors import PipelineError
    from qpo.tracking import mlflow_run

    monkeypatch.setattr(mlflow_run, "SERVER_WAIT_S", 1.0)
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(PipelineError, match=r"the MLflow tracking server http://127\.0\.0\.1:\d+ \(MLFLOW_TRACKING_URI\) "
                                            r"does not answer .*start it with `qpo ui mlflow`"):
        mlflow_run.configure(url)
    assert not (qpo_home / "mlflow.db").exists() and not (qpo_home / ".mlflow-tracking.lock").exists()
