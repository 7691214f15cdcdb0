"""The store's life: created only on purpose, migrated once however many processes arrive at once,
and a damaged file named as such (issue 16)."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import create_engine, inspect, text

from tests.conftest import ROOT

# each child imports the store, says it is ready, waits for the go file, then connects: the eight
# connections start within a few milliseconds of each other, on a store that does not exist yet
_CHILD = """
import logging, sys, time
from pathlib import Path
logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(name)s %(message)s")
from qpo.store import connect
from qpo.store.db import current_revision
ready, go, url = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
ready.touch()
while not go.exists():
    time.sleep(0.001)
engine = connect(url)
print(current_revision(engine))
"""


def _run_at_once(n: int, url: str, tmp_path: Path) -> tuple[list[subprocess.CompletedProcess], float]:
    """Run ``n`` children that connect to ``url`` at the same moment; their results and the
    seconds from that moment until the last one ended."""
    go = tmp_path / "go"
    procs = []
    for i in range(n):
        procs.append(subprocess.Popen([sys.executable, "-c", _CHILD, str(tmp_path / f"ready{i}"), str(go), url],
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
                                      env=dict(os.environ)))
    deadline = time.time() + 120
    while not all((tmp_path / f"ready{i}").exists() for i in range(n)):
        assert time.time() < deadline, "the children did not start"
        assert all(p.poll() is None for p in procs), [p.communicate() for p in procs if p.poll() is not None]
        time.sleep(0.05)
    go.touch()
    started = time.perf_counter()
    out = []
    for p in procs:
        stdout, stderr = p.communicate(timeout=120)
        out.append(subprocess.CompletedProcess(p.args, p.returncode, stdout, stderr))
    return out, time.perf_counter() - started


def test_eight_processes_create_a_fresh_sqlite_store_once(tmp_path):
    from qpo.store.db import head_revision

    db = tmp_path / "fresh.db"
    url = f"sqlite:///{db}"
    results, elapsed = _run_at_once(8, url, tmp_path)
    failures = [r.stderr[-2000:] for r in results if r.returncode != 0]
    assert not failures, failures
    # one process migrated; the seven others waited and found the schema at head (before the lock,
    # each ran the DDL, seven failed on "table exists" or "database is locked" and retried)
    assert sum(r.stderr.count("Running upgrade") for r in results) == 1, [r.stderr[-800:] for r in results]
    assert [r.stdout.strip() for r in results] == [head_revision()] * 8
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            assert conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all() == [head_revision()]
        assert {"advisors", "portfolios", "holdings", "transactions", "optimization_runs", "risk_metrics",
                "alembic_version"} == set(inspect(engine).get_table_names())
    finally:
        engine.dispose()
    print(f"8 processes connected to a fresh SQLite store at once: 8 succeeded, one schema, in {elapsed:.1f} s")
