"""Failures of the nightly runs told to the ops desk (real SMTP and HTTP servers on 127.0.0.1)
when the database is gone mid-run (the notice is built from memory) and when a run is refused
before it is recorded; runs left RUNNING by a process that disappeared (SIGKILL) marked FAILED at
the next run's start, and the staleness rule for runs whose process cannot be checked."""
from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys

import pytest
from sqlalchemy import insert, select

import qpo
from qpo.book.synthetic import seed_book
from qpo.operations.cluster import dask_client
from qpo.operations.nightly import NotValuedError, run_risk, run_valuation
from qpo.store import OpsRun, connect, session_scope
from qpo.store.operations import ABANDONED_AFTER, fail_abandoned_runs, get_run
from tests.conftest import database_urls
from tests.test_operations.test_delivery import OPS, SECRET, smtp, webhook  # noqa: F401 - the fixtures
from tests.test_store.book_stores import fresh_store_url

D0 = dt.date(2022, 12, 28)

pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")


@pytest.fixture(scope="module")
def client():
    with dask_client(2) as c:
        yield c


# -- failures told, runs left RUNNING -----------------------------------------------------------------
def _deliver_to(monkeypatch, smtp, webhook):  # noqa: F811 - the fixtures
    monkeypatch.setenv("QPO_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("QPO_SMTP_PORT", str(smtp.port))
    monkeypatch.setenv("QPO_SMTP_USER", "qpo")
    monkeypatch.setenv("QPO_SMTP_PASSWORD", SECRET)
    monkeypatch.setenv("QPO_ALERT_RECIPIENTS", ",".join(OPS))
    monkeypatch.setenv("QPO_ALERT_WEBHOOK", webhook.url)


@pytest.fixture
def small_store(tmp_path):
    url = f"sqlite:///{tmp_path / 'store.db'}"
    engine = connect(url)
    seed_book(engine, 6, seed=3)
    return engine, tmp_path / "store.db"


def test_the_database_gone_mid_run_is_told_from_memory(small_store, client, smtp, webhook,  # noqa: F811
                                                       monkeypatch):
    engine, path = small_store
    _deliver_to(monkeypatch, smtp, webhook)
    saved = path.with_suffix(".saved")

    def log(message: str) -> None:
        if "chunk(s) done" in message and not saved.exists():  # the computing is over: the database goes away
            engine.dispose()
            shutil.copy(path, saved)
            path.write_bytes(b"this is not a database any more " * 200)

    with pytest.raises(qpo.errors.CorruptFileError, match="store.db is damaged"):
        run_valuation(D0, engine=engine, client=client, log=log)
    engine.dispose()
    # told all the same, from memory: the run's id, kind, date and error
    [(_, rcpt, msg)] = smtp.messages
    assert sorted(rcpt) == sorted(OPS) and msg["Subject"] == f"[qpo] FAILED: the valuation run of {D0} (run 1)"
    assert "CorruptFileError" in msg.get_content() and "store.db is damaged" in msg.get_content()
    assert SECRET not in msg.as_string()
    [(_, doc, _)] = webhook.posts
    assert doc["event"] == "run_failed" and doc["run"]["id"] == 1 and doc["run"]["status"] == "FAILED"
    assert doc["run"]["kind"] == "valuation" and doc["run"]["as_of"] == str(D0)
    # the database back (as it was when it went away): the run is RUNNING, by this (living) process: left alone
    shutil.copy(saved, path)
    assert get_run(engine, 1)["status"] == "RUNNING"
    assert get_run(engine, 1)["details"] == {"pid": os.getpid(), "host": __import__("socket").gethostname()}
    assert fail_abandoned_runs(engine) == []


def test_a_run_refused_before_it_was_recorded_is_told(small_store, client, smtp, webhook, monkeypatch):  # noqa: F811
    engine, _ = small_store
    _deliver_to(monkeypatch, smtp, webhook)
    with pytest.raises(NotValuedError):
        run_risk(D0, engine=engine, client=client)
    with pytest.raises(qpo.errors.DataError, match="outside the data"):
        run_valuation("2030-01-02", engine=engine, client=client)
    subjects = [m["Subject"] for _, _, m in smtp.messages]
    assert subjects == [f"[qpo] FAILED: the risk run of {D0} (not recorded)",
                        "[qpo] FAILED: the valuation run of 2030-01-02 (not recorded)"]
    docs = [doc["run"] for _, doc, _ in webhook.posts]
    assert [d["id"] for d in docs] == [None, None]
    assert docs[0]["error"].startswith("refused before the run was recorded: NotValuedError: the book has no "
                                       f"valuation of {D0}")
    assert "DataError: as_of 2030-01-02 is outside the data" in docs[1]["error"]
    with session_scope(engine) as s:
        assert s.scalars(select(OpsRun.id)).all() == []


def test_a_risk_run_whose_report_folder_cannot_be_written_writes_nothing(small_store, client, tmp_path):
    """The book report's folder is checked before the run is recorded: a file where the folder
    should be refuses the run, and no risk row, alert or delivery of the date is left behind (which
    would make the next run's breaches old ones, and --fail-on-breach silent)."""
    from qpo.errors import RunsFolderError
    from qpo.store.models import Alert, BookRisk

    engine, _ = small_store
    run_valuation(D0, engine=engine, client=client)
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    with pytest.raises(RunsFolderError, match=f"the book report's folder {blocker}.*is a file, not a folder"):
        run_risk(D0, engine=engine, client=client, report_dir=blocker / "book", deliver=False)
    with session_scope(engine) as s:
        assert s.scalars(select(OpsRun.kind)).all() == ["valuation"]
        assert s.scalars(select(BookRisk.portfolio_id)).all() == [] and s.scalars(select(Alert.id)).all() == []
    done = run_risk(D0, engine=engine, client=client, report_dir=tmp_path / "book", deliver=False)
    assert done.checked == 6 and (tmp_path / "book").is_dir()


def test_a_bar_stored_with_a_future_date_refuses_the_nightly_run(small_store, client):
    """A bar dated after today (stored before ingest refused such bars) would make every run of
    that day, with every other name stale and alerts last seen in the future: refused, naming it."""
    from sqlalchemy import insert

    from qpo.store.market_data import latest_today, seed_market_data
    from qpo.store.models import MarketBar

    engine, _ = small_store
    seed_market_data(engine)
    ahead = latest_today() + dt.timedelta(days=2)
    with engine.begin() as conn:
        conn.execute(insert(MarketBar), [{"ticker": "MSFT", "date": ahead, "adjusted_close": 241.0, "close": 241.0,
                                          "dividend": 0.0, "split": 1.0, "source": "file"}])
    with pytest.raises(qpo.errors.DataError, match=f"the run's date {ahead} is after today .*dated in the future "
                                                   f"\\(MSFT, up to {ahead}\\).*qpo data remove"):
        run_valuation(engine=engine, client=client)
    assert run_valuation(D0, engine=engine, client=client).as_of == D0  # a date given is still run


_KILLED = """
import os, signal, sys
from qpo.store import connect
from qpo.store.operations import recorded_run
engine = connect(sys.argv[1], migrate=False, create=False)
with recorded_run(engine, "valuation", "2022-12-27") as run:
    print(run.id, flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
"""


def test_a_run_whose_process_disappeared_is_failed_at_the_next_start(small_store, client, smtp, webhook,  # noqa: F811
                                                                     monkeypatch):
    engine, path = small_store
    url = f"sqlite:///{path}"
    proc = subprocess.run([sys.executable, "-c", _KILLED, url], capture_output=True, text=True, timeout=120)
    assert proc.returncode == -9, proc.stderr
    killed = int(proc.stdout.strip())
    assert get_run(engine, killed)["status"] == "RUNNING"
    _deliver_to(monkeypatch, smtp, webhook)
    val = run_valuation(D0, engine=engine, client=client)
    row = get_run(engine, killed)
    assert row["status"] == "FAILED" and row["error"].startswith("process disappeared: process ")
    assert row["finished_at"] is not None
    assert val.warnings == [f"ops run {killed} (valuation of 2022-12-27) was left RUNNING by a process that "
                            "disappeared: marked FAILED"]
    # and told: it never was
    [(_, doc, _)] = webhook.posts
    assert doc["run"]["id"] == killed and doc["run"]["error"].startswith("process disappeared")
    assert [m["Subject"] for _, _, m in smtp.messages] == ["[qpo] FAILED: the valuation run of 2022-12-27 "
                                                           f"(run {killed})"]


@pytest.mark.parametrize("kind", database_urls())
def test_the_staleness_rule_for_runs_that_cannot_be_checked(kind, tmp_path):
    with fresh_store_url(kind, tmp_path) as url:
        engine = connect(url)
        now = dt.datetime.now(dt.UTC)
        rows = [  # (details, started): another host's, long ago; no process recorded, long ago; recent ones
            ({"pid": 1, "host": "elsewhere"}, now - ABANDONED_AFTER - dt.timedelta(minutes=5)),
            (None, now - dt.timedelta(days=2)),
            ({"pid": 1, "host": "elsewhere"}, now - dt.timedelta(minutes=5)),
            (None, now - dt.timedelta(minutes=5)),
        ]
        with engine.begin() as conn:
            ids = [conn.execute(insert(OpsRun).values(kind="risk", as_of=D0, status="RUNNING", started_at=t,
                                                      details=d).returning(OpsRun.id)).scalar_one() for d, t in rows]
        failed = fail_abandoned_runs(engine)
        assert [r["id"] for r in failed] == ids[:2]
        assert "RUNNING for 6.1 h, longer than any nightly run (6 h), by process 1 on elsewhere" in failed[0]["error"]
        assert "RUNNING for 48.0 h" in failed[1]["error"] and "a process not recorded" in failed[1]["error"]
        assert [get_run(engine, i)["status"] for i in ids] == ["FAILED", "FAILED", "RUNNING", "RUNNING"]
        assert fail_abandoned_runs(engine) == []  # idempotent
        engine.dispose()


def test_no_new_data_message_in_json(tmp_path):
    """The warnings travel in --json (a scheduler reads them)."""
    from qpo.operations.nightly import NightlyResult

    r = NightlyResult(kind="valuation", as_of=D0, run_id=1, portfolios=0, price_source="store", workers=1,
                      dashboard=None, scheduler="local", chunks=0, valued=0, unpriced=0, stale=0, empty=0,
                      warnings=[f"no new market data since {D0}"])
    assert json.loads(r.to_json())["warnings"] == [f"no new market data since {D0}"]
    assert r.metrics()["warnings"] == 1
