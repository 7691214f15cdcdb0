"""Ctrl-C (SIGINT) and SIGTERM on ``qpo nightly risk`` while its Dask cluster computes: the ops run
is marked FAILED with the signal (before: SIGTERM left it RUNNING until the next run found its
process gone, and printed nothing; Ctrl-C printed "qpo: interrupted" and no JSON line), the
cluster's worker processes are gone, one JSON line is printed, the exit status is the shell's
(130 / 143), and no traceback."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import psutil
import pytest
from sqlalchemy import create_engine, text

pytestmark = pytest.mark.xdist_group("nightly-signals")


@pytest.fixture(scope="module")
def valued_home(tmp_path_factory):
    home = tmp_path_factory.mktemp("nightly_signals") / "home"
    env = {**os.environ, "QPO_HOME": str(home), "PYTHONUNBUFFERED": "1"}
    env.pop("QPO_DATABASE_URL", None)
    for args in (["db", "seed", "--book", "3000"], ["nightly", "value", "--workers", "1"]):
        done = subprocess.run([sys.executable, "-m", "qpo.cli", *args], env=env, capture_output=True, text=True,
                              timeout=600)
        assert done.returncode == 0, done.stderr[-2000:]
    return home, env


def _ops_runs(home) -> list[tuple]:
    engine = create_engine(f"sqlite:///{home / 'qpo.db'}")
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(text("SELECT id, kind, status, error FROM ops_runs ORDER BY id"))]
    finally:
        engine.dispose()


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["SIGINT", "SIGTERM"])
def test_a_signal_fails_the_ops_run_closes_the_cluster_and_prints_one_line(valued_home, sig, code):
    home, env = valued_home
    proc = subprocess.Popen([sys.executable, "-m", "qpo.cli", "nightly", "risk", "--workers", "1", "--chunk-size",
                             "200", "--json"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    err_lines: list[str] = []
    try:
        while True:  # until the cluster has computed a first chunk: the run is recorded and its workers busy
            line = proc.stderr.readline()
            assert line or proc.poll() is None, "".join(err_lines)[-3000:]
            err_lines.append(line)
            if "chunk(s) done" in line:
                break
        workers = psutil.Process(proc.pid).children(recursive=True)
        assert workers, "no Dask worker process under qpo"
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    err = "".join(err_lines) + err
    assert proc.returncode == code, err[-3000:]
    assert "Traceback" not in err, err[-3000:]
    (line,) = out.strip().splitlines()
    doc = json.loads(line)
    assert doc["status"] == "KILLED" and doc["kind"] == "risk" and doc["signal"] == sig.name
    run_id, kind, status, error = _ops_runs(home)[-1]
    assert (run_id, kind, status) == (doc["run_id"], "risk", "FAILED") and sig.name in error
    deadline = time.time() + 30
    while time.time() < deadline and any(w.is_running() and w.status() != psutil.STATUS_ZOMBIE for w in workers):
        time.sleep(0.2)
    assert not [w.pid for w in workers if w.is_running() and w.status() != psutil.STATUS_ZOMBIE]
