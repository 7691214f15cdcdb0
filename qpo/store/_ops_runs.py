"""The ``ops_runs`` records of :mod:`qpo.store.operations`: one row per nightly run, RUNNING while
it runs, FINISHED or FAILED when it ends (:func:`recorded_run`); the runs whose process
disappeared marked FAILED (:func:`fail_abandoned_runs`); the runs read back."""
from __future__ import annotations

import contextlib
import datetime as dt
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from sqlalchemy import Engine, func, insert, select, update
from sqlalchemy.exc import SQLAlchemyError

from qpo._checks import quote
from qpo.store import _inputs as check
from qpo.store._ops_common import ERROR_MAX
from qpo.store._ops_common import HOST as _HOST
from qpo.store._ops_common import day as _day
from qpo.store._ops_common import jsonable as _jsonable
from qpo.store._ops_common import now as _now
from qpo.store._ops_common import pid_alive as _pid_alive
from qpo.store._ops_common import utc as _utc
from qpo.store.models import OpsRun

#: the run states of ``ops_runs``
RUN_STATES = ("RUNNING", "FINISHED", "FAILED")
#: a RUNNING run whose process cannot be checked is taken as gone after this long (fail_abandoned_runs)
ABANDONED_AFTER = dt.timedelta(hours=6)


@dataclass
class OpsRunHandle:
    """The run being recorded: set ``portfolios`` and ``details`` before the block ends."""

    id: int
    kind: str
    as_of: dt.date
    started_at: dt.datetime
    portfolios: int | None = None
    details: dict | None = field(default=None)


@contextlib.contextmanager
def recorded_run(engine: Engine, kind: str, as_of) -> Iterator[OpsRunHandle]:
    """Record one operations run (``kind`` e.g. ``valuation`` or ``risk``, of date ``as_of``): a
    RUNNING row is committed at once; when the block ends it becomes FINISHED (with the handle's
    ``portfolios`` and ``details``); when the block raises, FAILED with the error's text, and the
    error is re-raised. The row is written in its own transactions, so it survives a rolled-back
    write of the results. While RUNNING, its ``details`` hold the process id and host that run it
    (``{"pid": ..., "host": ...}``), so that :func:`fail_abandoned_runs` can tell a run whose
    process disappeared (SIGKILL, a crash, the database gone when it ended) from one still going."""
    kind = check.label(kind, "run kind", 32)
    day = _day(as_of)
    started = _now()
    with engine.begin() as conn:
        run_id = conn.execute(insert(OpsRun).values(kind=kind, as_of=day, status="RUNNING", started_at=started,
                                                    details={"pid": os.getpid(), "host": _HOST})
                              .returning(OpsRun.id)).scalar_one()
    handle = OpsRunHandle(id=run_id, kind=kind, as_of=day, started_at=started)
    try:
        yield handle
    except BaseException as exc:
        text = f"{type(exc).__name__}: {exc}".strip()
        if len(text) > ERROR_MAX:
            text = text[:ERROR_MAX - 6] + " [...]"
        try:
            with engine.begin() as conn:
                conn.execute(update(OpsRun).where(OpsRun.id == run_id).values(
                    status="FAILED", finished_at=_now(), error=text, portfolios=handle.portfolios,
                    details=_jsonable(handle.details) if handle.details is not None else None))
        except SQLAlchemyError:  # the database itself went away: the run stays RUNNING; the error counts
            pass
        raise
    with engine.begin() as conn:
        conn.execute(update(OpsRun).where(OpsRun.id == run_id).values(
            status="FINISHED", finished_at=_now(), portfolios=handle.portfolios,
            details=_jsonable(handle.details) if handle.details is not None else None))


def fail_abandoned_runs(engine: Engine, *, kinds: Sequence[str] | None = None,
                        older_than: dt.timedelta = ABANDONED_AFTER) -> list[dict]:
    """Mark FAILED ("process disappeared: ...") the RUNNING runs (of ``kinds``, default all) whose
    process is gone, and return them (as :func:`last_runs` gives them). A run is gone when it
    recorded a process of this host that no longer exists, or, when that cannot be told (no
    process recorded, or another host's), when it has been RUNNING for longer than
    ``older_than`` (default :data:`ABANDONED_AFTER`, 6 hours: a nightly run of 10,000 portfolios
    takes about a minute). A run still going is left alone. Called at the start of each nightly run."""
    q = select(OpsRun).where(OpsRun.status == "RUNNING").order_by(OpsRun.id)
    if kinds is not None:
        q = q.where(OpsRun.kind.in_([check.label(k, "run kind", 32) for k in kinds]))
    from sqlalchemy.orm import Session

    stamp = _now()
    gone: list[tuple[int, str]] = []
    with Session(engine) as s:
        for r in s.scalars(q).all():
            d = r.details if isinstance(r.details, dict) else {}
            pid, host = d.get("pid"), d.get("host")
            alive = _pid_alive(pid, host)
            age = stamp - _utc(r.started_at) if r.started_at is not None else older_than
            if alive is False:
                gone.append((r.id, f"process disappeared: process {pid} on {host} that ran it is gone and the run "
                                   f"never ended (killed, crashed, or the database went away when it ended); marked "
                                   f"FAILED at {stamp:%Y-%m-%d %H:%M:%S} UTC"))
            elif alive is None and age >= older_than:
                who = f"process {pid} on {host}" if pid else "a process not recorded"
                gone.append((r.id, f"process disappeared: RUNNING for {age.total_seconds() / 3600:.1f} h, longer "
                                   f"than any nightly run ({older_than.total_seconds() / 3600:g} h), by {who} this "
                                   f"host cannot check; marked FAILED at {stamp:%Y-%m-%d %H:%M:%S} UTC"))
    if not gone:
        return []
    with engine.begin() as conn:
        for run_id, text in gone:
            conn.execute(update(OpsRun).where(OpsRun.id == run_id, OpsRun.status == "RUNNING")
                         .values(status="FAILED", finished_at=stamp, error=text))
    return [get_run(engine, run_id) for run_id, _ in gone]


def last_finished_date(engine: Engine, kind: str) -> dt.date | None:
    """The latest ``as_of`` of a FINISHED run of ``kind`` (None when none finished)."""
    kind = check.label(kind, "run kind", 32)
    with engine.connect() as conn:
        return conn.execute(select(func.max(OpsRun.as_of)).where(OpsRun.kind == kind,
                                                                  OpsRun.status == "FINISHED")).scalar()


def finished_run(engine: Engine, kind: str, as_of) -> bool:
    """Whether a run of ``kind`` of the date ``as_of`` FINISHED (a valuation of an empty book
    finishes with no row: this, not the rows, says the date was valued)."""
    kind = check.label(kind, "run kind", 32)
    day = _day(as_of)
    with engine.connect() as conn:
        return conn.execute(select(OpsRun.id).where(OpsRun.kind == kind, OpsRun.as_of == day,
                                                    OpsRun.status == "FINISHED").limit(1)).first() is not None


def _run_dict(r: OpsRun) -> dict:
    seconds = (r.finished_at - r.started_at).total_seconds() if r.finished_at and r.started_at else None
    return {"id": r.id, "kind": r.kind, "as_of": r.as_of, "status": r.status, "started_at": r.started_at,
            "finished_at": r.finished_at, "seconds": seconds, "portfolios": r.portfolios, "error": r.error,
            "details": r.details}


def last_runs(engine: Engine, kind: str | None = None, n: int = 20) -> list[dict]:
    """The newest ``n`` runs (of ``kind`` when given), newest first: id, kind, as_of, status,
    started_at, finished_at, seconds, portfolios, error, details."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise check.fail(f"n must be a whole number >= 1, got {quote(n)}")
    q = select(OpsRun).order_by(OpsRun.id.desc()).limit(n)
    if kind is not None:
        q = q.where(OpsRun.kind == check.label(kind, "run kind", 32))
    from sqlalchemy.orm import Session

    with Session(engine) as s:
        return [_run_dict(r) for r in s.scalars(q).all()]


def get_run(engine: Engine, run_id: int) -> dict:
    """One run as :func:`last_runs` gives it."""
    from sqlalchemy.orm import Session

    with Session(engine) as s:
        r = s.get(OpsRun, int(run_id))
        if r is None:
            raise check.fail(f"no operations run {quote(run_id)}")
        return _run_dict(r)
