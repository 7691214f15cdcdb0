"""How a nightly run of :mod:`qpo.operations.nightly` is recorded and how its failures are told:
the ``ops_runs`` row kept in memory, any error told to the ops desk from memory (it reaches them
with the database gone), and what every run does at its start (runs left RUNNING by a process
that disappeared marked FAILED and told; the "no new market data" warning)."""
from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import pandas as pd

from qpo.operations._nightly_result import NightlyResult


@contextmanager
def recorded(engine, kind: str, day: dt.date, state: dict) -> Iterator[Any]:
    """:func:`qpo.store.operations.recorded_run`, its handle kept in ``state`` so that a failure
    can be told from memory (:func:`tell_failure`) even when the database is gone."""
    from qpo.store.operations import recorded_run

    with recorded_run(engine, kind, day) as run:
        state["run"] = run
        yield run


def told(kind: str, as_of, log, body: Callable[[dict], NightlyResult]) -> NightlyResult:
    """``body(state)``, and any error it raises told to the ops desk (:func:`tell_failure`):
    a failed run, and a run refused before it was recorded (no store, a date outside the prices,
    a risk run before the valuation)."""
    state: dict = {}
    try:
        return body(state)
    except BaseException as exc:  # a signal too (the command line raises one in the run): the date was not done
        tell_failure(kind, state.get("day") or as_of, state.get("run"), exc, log)
        if state.get("run") is not None:
            exc.ops_run_id = state["run"].id  # type: ignore[attr-defined]  # for the command's status line
        raise


def start_run(engine, kind: str, day: pd.Timestamp, as_of, log) -> list[str]:
    """What every nightly run does before it is recorded: the runs left RUNNING by a process
    that disappeared marked FAILED (and told), and the warning when no new market data arrived
    since the last finished run of the kind (the run goes on: a rerun of a date is legitimate,
    and the valuation of a stale day is still the book's value; it is said, not silent)."""
    from qpo.store.operations import fail_abandoned_runs, last_finished_date

    warnings = []
    for r in fail_abandoned_runs(engine):
        text = (f"ops run {r['id']} ({r['kind']} of {r['as_of']}) was left RUNNING by a process that disappeared: "
                "marked FAILED")
        log(f"WARNING: {text}: {r['error']}")
        warnings.append(text)
        notify(r, log)
    prev = last_finished_date(engine, kind)
    if prev is not None and day.date() <= prev:
        text = (f"no new market data since {prev}: the prices' last date is {day.date()}, which the last finished "
                f"{kind} run already covered" if as_of is None else
                f"no new market data since {prev} for this run: {day.date()} is not after the last finished {kind} "
                f"run's date {prev} (a rerun of a date replaces its results)")
        log(f"WARNING: {text}")
        warnings.append(text)
    return warnings


def tell_failure(kind: str, as_of, handle, exc: BaseException, log) -> None:
    """Tell the ops recipients and the webhook that a run failed (when configured). The notice is
    built from memory (the run's handle, or the kind and date of a run refused before it was
    recorded, and the exception): it does not read the store, which may be what failed."""
    from qpo.store.operations import ERROR_MAX

    text = f"{type(exc).__name__}: {exc}".strip()
    if handle is None:
        text = f"refused before the run was recorded: {text}"
    if len(text) > ERROR_MAX:
        text = text[:ERROR_MAX - 6] + " [...]"
    try:
        day = pd.Timestamp(as_of).date() if as_of is not None else None
    except (TypeError, ValueError):
        day = None
    now = dt.datetime.now(dt.UTC)
    run = {"id": handle.id if handle is not None else None, "kind": kind,
           "as_of": handle.as_of if handle is not None else (day or as_of), "status": "FAILED", "error": text,
           "started_at": handle.started_at if handle is not None else now, "finished_at": now,
           "portfolios": handle.portfolios if handle is not None else None}
    notify(run, log)


def notify(run: Mapping, log) -> None:
    try:
        from qpo.operations.delivery import DeliverySettings, deliver_failed_run

        settings = DeliverySettings.from_env()
        if settings.configured:
            report = deliver_failed_run(run, settings)
            for error in report.errors:
                log(f"the failed run could not be reported: {error}")
            if report.sent:
                log(f"the failed {run.get('kind')} run of {run.get('as_of')} was reported by "
                    + " and ".join(sorted({m['channel'] for m in report.sent})))
    except Exception as exc:  # noqa: BLE001 - the run's own error is the one to raise
        log(f"the failed run could not be reported: {type(exc).__name__}: {exc}")

