"""The store's life: created only on purpose, migrated once however many processes arrive at once,
and a damaged file named as such (issue 16)."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, text

from tests.conftest import ROOT, database_urls
from tests.test_store.test_store import SYSTEM, fresh_store_url

# each child imports the store, says it is ready, waits for the go file, then connects: the eight
# connections start within a few milliseconds of each other, on a store that does not exist yet
_CHILD = """
import logging, sys, time
from pathlib import Path

import pytest
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


@pytest.mark.parametrize("kind", database_urls())
def test_eight_processes_create_a_fresh_store_once(kind, tmp_path):
    """8 processes connect at the same moment to a store that does not exist yet: all succeed, one
    of them migrates (a file lock beside a SQLite file, an advisory lock on PostgreSQL), the
    others find the schema at head."""
    from qpo.store.db import head_revision

    with fresh_store_url(kind, tmp_path) as url:
        results, elapsed = _run_at_once(8, url, tmp_path)
        failures = [r.stderr[-2000:] for r in results if r.returncode != 0]
        assert not failures, failures
        assert [r.stdout.strip() for r in results] == [head_revision()] * 8
        # before the lock each process ran the DDL; all but one failed ("table exists", "database is
        # locked") and retried
        migrators = [r for r in results if "Running upgrade" in r.stderr]
        assert len(migrators) == 1, [r.stderr[-800:] for r in results]
        # and that one ran each revision once (0001, then 0002, ...)
        revisions = sorted(p.name[:4] for p in (ROOT / "qpo" / "store" / "migrations" / "versions").glob("0*.py"))
        assert migrators[0].stderr.count("Running upgrade") == len(revisions) and revisions[-1] == head_revision()
        engine = create_engine(url)
        try:
            with engine.connect() as conn:
                assert conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all() == [head_revision()]
            assert {"advisors", "portfolios", "transactions", "proposals", "audit_log", "optimization_runs",
                    "risk_metrics", "market_data", "ops_runs", "valuations", "book_risk", "alerts", "sectors",
                    "alembic_version"} == set(inspect(engine).get_table_names())
        finally:
            engine.dispose()
    print(f"8 processes connected to a fresh {engine.dialect.name} store at once: 8 succeeded, one migrated, "
          f"{elapsed:.1f} s from the start signal to the last exit")


# --- a missing store is refused by readers, and nothing is created -----------------------------

def test_a_reader_refuses_a_missing_sqlite_store_and_creates_nothing(tmp_path):
    from qpo.errors import MissingStoreError
    from qpo.store import connect, store_exists

    db = tmp_path / "not" / "yet" / "qpo.db"
    url = f"sqlite:///{db}"
    with pytest.raises(MissingStoreError) as info:
        connect(url, create=False)
    message = str(info.value)
    assert f"no store at {url}: the file {db} does not exist, and nothing was created" in message
    assert "`qpo db seed`" in message and "`qpo db upgrade`" in message and "\n" not in message
    assert not store_exists(url)
    assert not (tmp_path / "not").exists()  # not even the folder
    # a writer creates it, empty, at head; then the reader opens it
    connect(url)
    assert db.is_file() and store_exists(url)
    from qpo.store.db import current_revision, head_revision

    assert current_revision(connect(url, create=False)) == head_revision()


def test_a_store_deleted_while_open_is_not_recreated_by_a_reader(tmp_path):
    from qpo.errors import MissingStoreError
    from qpo.store import connect, create_portfolio, get_or_create_user, list_portfolios, session_scope

    db = tmp_path / "qpo.db"
    url = f"sqlite:///{db}"
    with session_scope(connect(url)) as s:
        get_or_create_user(s, SYSTEM, "a@example.com", "A")
        create_portfolio(s, SYSTEM, "Old", "C", "a@example.com", holdings={"KO": 1.0})
    reader = connect(url, create=False)
    with session_scope(reader) as s:
        assert list_portfolios(s, SYSTEM)["name"].tolist() == ["Old"]
    db.unlink()
    with pytest.raises(MissingStoreError, match="does not exist, and nothing was created"):
        connect(url, create=False)
    assert not db.exists()
    # a writer then makes a new, empty store, and the reader reads that one, not the deleted file its
    # pooled connections still held
    with session_scope(connect(url)) as s:
        assert list_portfolios(s, SYSTEM).empty
    with session_scope(connect(url, create=False)) as s:
        assert list_portfolios(s, SYSTEM).empty
    # an engine a reader kept cannot bring a deleted file back either: SQLite opens it mode=rw
    db.unlink()
    reader.dispose()
    with pytest.raises(Exception, match="unable to open database file"):
        with reader.connect():
            pass
    assert not db.exists()


def test_an_empty_file_or_database_is_a_missing_store_for_readers(tmp_path):
    from qpo.errors import MissingStoreError
    from qpo.store import connect

    db = tmp_path / "empty.db"
    db.touch()
    with pytest.raises(MissingStoreError, match=r"holds no qpo schema \(no alembic_version table\)"):
        connect(f"sqlite:///{db}", create=False)
    assert db.stat().st_size == 0  # nothing written


def test_a_database_of_something_else_is_named(tmp_path):
    """An MLflow database has an alembic_version table too, at a revision qpo does not know."""
    from qpo.errors import StoreError
    from qpo.store import connect

    db = tmp_path / "other.db"
    engine = create_engine(f"sqlite:///{db}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE alembic_version (version_num VARCHAR(32) PRIMARY KEY)"))
        conn.execute(text("INSERT INTO alembic_version VALUES ('cbc13b556ace')"))
    engine.dispose()
    for create in (False, True):
        with pytest.raises(StoreError, match="at revision 'cbc13b556ace', which qpo's migrations do not know"):
            connect(f"sqlite:///{db}", create=create)


# --- a damaged store file ----------------------------------------------------------------------

def _store_file(tmp_path: Path, name: str = "qpo.db") -> Path:
    """A real store with the demo portfolios' tables filled a little (several pages)."""
    from qpo.store import connect, create_portfolio, get_or_create_user, record_risk_metrics, session_scope

    db = tmp_path / name
    engine = connect(f"sqlite:///{db}")
    with session_scope(engine) as s:
        get_or_create_user(s, SYSTEM, "a@example.com", "A")
        for i in range(40):
            create_portfolio(s, SYSTEM, f"P{i}", "Client " * 20, "a@example.com",
                             holdings={"KO": 1.0 + i, "PEP": 2.0, "JNJ": 3.0})
        record_risk_metrics(s, SYSTEM, "P1", "2022-12-28", {f"m{i}": float(i) for i in range(200)})
    engine.dispose()
    from qpo.store import db as store_db

    store_db._ENGINES.pop(f"sqlite:///{db}").dispose()
    return db


def _assert_corrupt(db: Path, what: str) -> None:
    from qpo.errors import CorruptFileError
    from qpo.store import connect

    for create in (False, True):
        with pytest.raises(CorruptFileError) as info:
            connect(f"sqlite:///{db}", create=create)
        message = str(info.value)
        assert message.startswith(f"the store file {db} is damaged: ") and what in message, message
        assert f"mv '{db}' '{db}.damaged'" in message and "restore it from a backup" in message
        assert "\n" not in message and "Traceback" not in message and "SELECT" not in message


def test_random_bytes_are_a_corrupt_file(tmp_path):
    import random

    db = tmp_path / "qpo.db"
    db.write_bytes(random.Random(0).randbytes(8192))
    _assert_corrupt(db, "it is not a SQLite database (it begins b'")
    assert db.stat().st_size == 8192  # left as it was


def test_a_truncated_store_is_a_corrupt_file(tmp_path):
    db = _store_file(tmp_path)
    data = db.read_bytes()
    assert len(data) >= 4 * 4096
    db.write_bytes(data[: len(data) // 2])
    _assert_corrupt(db, f"it is truncated: its header counts {len(data) // 4096} pages of 4096 bytes")
    db.write_bytes(data[:60])
    _assert_corrupt(db, "it is truncated to 60 bytes, shorter than SQLite's 100-byte header")


def test_damaged_pages_behind_a_sound_header_are_a_corrupt_file(tmp_path):
    """The header is whole, the pages after the first are noise: SQLite's own 'malformed' or 'not a
    database' comes back as the same one-line CorruptFileError, at connect or at the first query."""
    import random

    from qpo.errors import CorruptFileError
    from qpo.store import connect, list_portfolios, session_scope

    db = _store_file(tmp_path)
    data = bytearray(db.read_bytes())
    data[4096:] = random.Random(1).randbytes(len(data) - 4096)
    db.write_bytes(bytes(data))
    with pytest.raises(CorruptFileError, match=r"is damaged: SQLite says (database disk image is malformed|file is "
                                               r"not a database); move it aside"):
        engine = connect(f"sqlite:///{db}", create=False)
        with session_scope(engine) as s:
            list_portfolios(s, SYSTEM)
