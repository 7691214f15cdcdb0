"""The nightly book: every portfolio valued (17:00) and risk-checked (18:00) on a Dask cluster.

:func:`run_valuation` values the book on a date: the prices are the store's
(:func:`qpo.store.market_data.book_prices`, the bundled panel on a fresh install), the date
defaults to their last one; the book is split into chunks of portfolio ids, the price panel is
scattered to the workers once, and each task values its chunk
(:func:`qpo.book.valuation.value_book`); the rows are gathered and written in one transaction
(:func:`qpo.store.operations.write_valuations`: a rerun replaces the date), inside a recorded
operations run (RUNNING, then FINISHED, or FAILED with the error).

:func:`run_risk` risk-checks the portfolios valued on the date (it refuses a date the valuation has
not run for): each task takes the weights of its chunk (:func:`qpo.book.valuation.book_weights`)
and computes their risk in bulk (:func:`qpo.risk.book.book_risk`: the numbers
:func:`qpo.risk_report` gives each portfolio, its own limits checked); the results are written with
the alerts synced in one transaction (:func:`qpo.store.operations.write_book_risk`), new alerts
are delivered (:mod:`qpo.operations.delivery`, when e-mail or a webhook is configured), and the
book report (:mod:`qpo.reporting.book`) is written under ``$QPO_RUNS_DIR/book/``.

The cluster is :func:`qpo.operations.cluster.dask_client`'s: a local cluster of one-thread worker
processes, or the scheduler at ``QPO_DASK_SCHEDULER``. Workers open the store themselves from its
URL (an engine cannot travel), so a remote cluster's workers must reach the database.

Both runs read and write as system actors (``system:nightly-valuation``, ``system:nightly-risk``).

Real data has holes, and each is said, never silent (``NightlyResult.warnings``: logged as
``WARNING: ...``, in the summary, the stored run's details and the book report): a name without a
bar on the date is held at its last price by both runs (risk-checked with a 0 return that day) and
its portfolios flagged stale; a portfolio that cannot be risk-checked is counted in ``unchecked``
(never as checked, never as a pass); a day without an SP500 bar leaves beta NULL and the market
shocks on each portfolio's own names (said, with the last benchmark date); a date not newer than
the last finished run of the kind is "no new market data since DATE" (the run still runs: a
rerun replaces the date). At its start each run marks FAILED the runs left RUNNING by a process
that disappeared (:func:`qpo.store.operations.fail_abandoned_runs`) and tells them; any failure,
even before the run is recorded, is told to the ops desk from memory (it reaches them with the
database gone).
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from qpo.errors import InvalidValueError, StoreError
from qpo.operations._tasks import (
    CONFIDENCE,
    HORIZON,
    LOOKBACK_DAYS,
    RISK_ACTOR,
    VALUATION_ACTOR,
    benchmark_warning,
    carried_prices,
    compute_risk,
    risk_chunk,
    risk_inputs,
    stale_tickers,
    value_chunk,
)

#: the ``ops_runs.kind`` of the two runs
VALUATION_KIND, RISK_KIND = "valuation", "risk"
#: chunks per worker when the chunk size is not given, and the bounds of a chunk
CHUNKS_PER_WORKER = 4
MIN_CHUNK, MAX_CHUNK = 25, 2500


class NotValuedError(StoreError):
    """The risk run of a date the valuation has not run for."""


@dataclass
class NightlyResult:
    """What a nightly run did. ``kind`` is ``valuation`` or ``risk``; ``seconds`` the time of each
    phase (``prices``, ``cluster``, ``compute``, ``write``, and for the risk run ``deliver`` and
    ``report``), ``total`` included. A valuation fills ``valued``, ``unpriced``, ``stale`` and
    ``empty``; a risk run ``breaches`` (failed checks), ``breaching`` (portfolios), the alerts
    (``new_alerts``, ``persisting_alerts``, ``resolved_alerts``), ``skipped`` (valued portfolios
    with no risk row, and why), ``checked`` (portfolios whose limits were checked), ``unchecked``
    (every portfolio of the date that holds names but was NOT risk-checked, and why: unpriced by the
    valuation, or skipped; unknown, never a pass), ``stale`` (portfolios checked at a stale price),
    ``delivery`` and ``report`` (the book report's path). Both fill ``stale_tickers`` (``{ticker:
    its last price's date}`` for the names with no bar on the date) and ``warnings`` (what an
    operator must know: stale prices, no new market data, no benchmark bar; logged, in the summary
    and the report)."""

    kind: str
    as_of: dt.date
    run_id: int
    portfolios: int
    price_source: str
    workers: int
    dashboard: str | None
    scheduler: str
    chunks: int
    seconds: dict[str, float] = field(default_factory=dict)
    valued: int | None = None
    unpriced: int | None = None
    stale: int | None = None
    empty: int | None = None
    breaches: int | None = None
    breaching: int | None = None
    new_alerts: int | None = None
    persisting_alerts: int | None = None
    resolved_alerts: int | None = None
    skipped: dict[int, str] = field(default_factory=dict)
    checked: int | None = None
    unchecked: dict[int, str] = field(default_factory=dict)
    stale_tickers: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    delivery: str | None = None
    report: str | None = None
    alerts: dict[str, list[dict]] = field(default_factory=dict, repr=False)
    table: pd.DataFrame | None = field(default=None, repr=False)
    breach_list: list[dict] = field(default_factory=list, repr=False)

    def metrics(self) -> dict[str, Any]:
        """The numbers of the run, flat (what a pipeline records to MLflow)."""
        out: dict[str, Any] = {"portfolios": self.portfolios, "workers": self.workers, "chunks": self.chunks,
                               "ops_run_id": self.run_id}
        for name in ("valued", "unpriced", "stale", "empty", "checked", "breaches", "breaching", "new_alerts",
                     "persisting_alerts", "resolved_alerts"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        if self.kind == RISK_KIND:
            out["skipped"] = len(self.skipped)
            out["unchecked"] = len(self.unchecked)
        out["stale_tickers"] = len(self.stale_tickers)
        out["warnings"] = len(self.warnings)
        out.update({f"seconds_{k}": round(v, 3) for k, v in self.seconds.items()})
        return out

    def to_dict(self) -> dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
             if f.name not in ("table", "alerts", "breach_list")}
        d["as_of"] = self.as_of.isoformat()
        d["skipped"] = {str(k): v for k, v in self.skipped.items()}
        d["unchecked"] = {str(k): v for k, v in self.unchecked.items()}
        d["seconds"] = {k: round(v, 3) for k, v in self.seconds.items()}
        d["new_alert_list"] = [_plain(a) for a in self.alerts.get("new", [])]
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), default=str)

    def summary(self) -> str:
        """The run in a few lines, for a terminal or a log."""
        t = ", ".join(f"{k} {v:.1f} s" for k, v in self.seconds.items())
        lines = [f"{self.kind} of {self.as_of}: {self.portfolios:,} portfolios on {self.workers} worker(s), "
                 f"{self.chunks} chunk(s); prices from the {self.price_source} panel; ops run {self.run_id}", t]
        if self.kind == VALUATION_KIND:
            lines.append(f"valued {self.valued:,}, unpriced {self.unpriced:,}, with stale prices {self.stale:,}, "
                         f"empty {self.empty:,}")
        else:
            checked = self.checked if self.checked is not None else self.portfolios
            lines.append(f"risk-checked {checked:,}, NOT risk-checked {len(self.unchecked):,} (unknown, not a pass), "
                         f"checked at stale prices {self.stale or 0:,}")
            lines.append(f"{self.breaches:,} failed check(s) in {self.breaching:,} portfolio(s); alerts: "
                         f"{self.new_alerts} new, {self.persisting_alerts} persisting, {self.resolved_alerts} resolved")
            if self.unchecked:
                shown = "; ".join(f"{pid}: {why}" for pid, why in list(self.unchecked.items())[:3])
                lines.append(f"not risk-checked: {shown}" + (" ..." if len(self.unchecked) > 3 else "")
                             + " (see the report)")
            if self.delivery:
                lines.append(f"delivery: {self.delivery}")
            if self.report:
                lines.append(f"book report {self.report}")
        lines += [f"WARNING: {w}" for w in self.warnings]
        if self.dashboard:
            lines.append(f"Dask dashboard (while it ran) {self.dashboard}")
        return "\n".join(lines)


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


# -- the runs ---------------------------------------------------------------------------------------
def _url(engine) -> str:
    from qpo.store.db import sqlite_path

    url = engine.url.render_as_string(hide_password=False)
    if engine.dialect.name == "sqlite" and sqlite_path(url) is None:
        raise InvalidValueError("the nightly runs need a store the Dask workers can open: a SQLite file or a "
                                "database server, not an in-memory SQLite database")
    return url


def _chunks(ids: Sequence[int], workers: int, chunk_size: int | None) -> list[list[int]]:
    """``ids`` (sorted) cut into consecutive ranges: ``chunk_size`` each, or by default about
    :data:`CHUNKS_PER_WORKER` per worker, between :data:`MIN_CHUNK` and :data:`MAX_CHUNK`."""
    ids = sorted(int(i) for i in ids)
    if chunk_size is None:
        chunk_size = min(MAX_CHUNK, max(MIN_CHUNK, math.ceil(len(ids) / max(1, workers * CHUNKS_PER_WORKER))))
    elif isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        raise InvalidValueError(f"chunk_size must be a whole number of portfolios of at least 1, got {chunk_size!r}")
    return [ids[i:i + chunk_size] for i in range(0, len(ids), chunk_size)]


def _as_of(prices: pd.DataFrame, as_of, source: str) -> pd.Timestamp:
    from qpo.data import check_as_of
    from qpo.errors import DataError

    try:
        return check_as_of(prices.index, as_of)
    except DataError as exc:
        try:
            late = as_of is not None and len(prices.index) > 0 and pd.Timestamp(as_of) > prices.index.max()
        except (TypeError, ValueError):
            late = False
        hint = "; ingest newer prices with `qpo data ingest FILE` or `qpo data fetch alphavantage`" if late else ""
        raise DataError(f"{exc} (the {source} price panel){hint}") from exc


def _all_portfolio_ids(engine) -> list[int]:
    from sqlalchemy import select

    from qpo.store import ClientPortfolio

    with engine.connect() as conn:
        return [int(i) for i in conn.execute(select(ClientPortfolio.id).order_by(ClientPortfolio.id)).scalars()]


class _Clock:
    def __init__(self):
        self.seconds: dict[str, float] = {}
        self.t0 = time.perf_counter()

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        t = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - t

    def total(self) -> dict[str, float]:
        return {**self.seconds, "total": time.perf_counter() - self.t0}


def _compute(client, fn: Callable, chunks: list[list[int]], shared: tuple, log, what: str) -> list:
    """``fn(*shared, chunk)`` for every chunk on the cluster, the results in chunk order; the big
    arguments (``shared``) are scattered to every worker once."""
    from distributed import as_completed

    if not chunks:
        return []
    scattered = [client.scatter(a, broadcast=True) if isinstance(a, (pd.DataFrame, pd.Series)) else a for a in shared]
    futures = [client.submit(fn, *scattered, chunk, pure=False, key=f"{what}-{i}-{chunk[0]}-{chunk[-1]}")
               for i, chunk in enumerate(chunks)]
    order = {f.key: i for i, f in enumerate(futures)}
    results: list[Any] = [None] * len(futures)
    done = 0
    try:
        for future in as_completed(futures, loop=client.loop):
            results[order[future.key]] = future.result()  # a task's error is raised here, with its own text
            done += 1
            if done == len(futures) or done % max(1, len(futures) // 4) == 0:
                log(f"{what}: {done} of {len(futures)} chunk(s) done")
    finally:
        client.cancel(futures)
    return results


@contextmanager
def _cluster(client, workers: int | None, log) -> Iterator[Any]:
    """The given client (left open), or a cluster for the run (:func:`dask_client`)."""
    from qpo.operations.cluster import cluster_info, dask_client

    if client is None:
        with dask_client(workers, log=log) as started:
            yield started
        return
    if getattr(client, "qpo_info", None) is None:
        client.qpo_info = cluster_info(client, "given")
    log(client.qpo_info.describe())
    yield client


@contextmanager
def _recorded(engine, kind: str, day: dt.date, state: dict) -> Iterator[Any]:
    """:func:`qpo.store.operations.recorded_run`, its handle kept in ``state`` so that a failure
    can be told from memory (:func:`_tell_failure`) even when the database is gone."""
    from qpo.store.operations import recorded_run

    with recorded_run(engine, kind, day) as run:
        state["run"] = run
        yield run


def _told(kind: str, as_of, log, body: Callable[[dict], NightlyResult]) -> NightlyResult:
    """``body(state)``, and any error it raises told to the ops desk (:func:`_tell_failure`):
    a failed run, and a run refused before it was recorded (no store, a date outside the prices,
    a risk run before the valuation)."""
    state: dict = {}
    try:
        return body(state)
    except Exception as exc:
        _tell_failure(kind, state.get("day") or as_of, state.get("run"), exc, log)
        raise


def _start(engine, kind: str, day: pd.Timestamp, as_of, log) -> list[str]:
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
        _notify(r, log)
    prev = last_finished_date(engine, kind)
    if prev is not None and day.date() <= prev:
        text = (f"no new market data since {prev}: the prices' last date is {day.date()}, which the last finished "
                f"{kind} run already covered" if as_of is None else
                f"no new market data since {prev} for this run: {day.date()} is not after the last finished {kind} "
                f"run's date {prev} (a rerun of a date replaces its results)")
        log(f"WARNING: {text}")
        warnings.append(text)
    return warnings


def _stale_warning(stale: Mapping[str, str], day: pd.Timestamp, portfolios: int, what: str) -> str | None:
    if not stale:
        return None
    shown = ", ".join(f"{t} (last {d})" for t, d in list(stale.items())[:8]) + (" ..." if len(stale) > 8 else "")
    return (f"stale prices: {len(stale)} held name(s) have no bar on {day.date()} and are held at their last price "
            f"(return 0 since): {shown}; {portfolios:,} portfolio(s) {what} with them")


def run_valuation(as_of=None, *, engine=None, workers: int | None = None, chunk_size: int | None = None,
                  log: Callable[[str], None] | None = None, mlflow_run_id: str | None = None,
                  client=None) -> NightlyResult:
    """Value every portfolio of the store on ``as_of`` (default: the prices' last date) on Dask and
    store the valuations (see the module). ``workers``: local worker processes (default: the usable
    CPUs; ignored with ``QPO_DASK_SCHEDULER``); ``chunk_size``: portfolios per task; ``log``
    receives progress lines and warnings (the run's summary is :meth:`NightlyResult.summary`);
    ``mlflow_run_id`` is kept with the run's record (a pipeline's run); ``client``: a connected
    :class:`distributed.Client` to use (and leave open) instead of starting a cluster.

    A run that fails, or is refused before it is recorded, is told to the ops desk when delivery
    is configured (built from memory: it reaches them with the database gone)."""
    log = log or (lambda msg: None)
    return _told(VALUATION_KIND, as_of, log,
                 lambda state: _valuation(as_of, engine, workers, chunk_size, log, mlflow_run_id, client, state))


def _valuation(as_of, engine, workers, chunk_size, log, mlflow_run_id, client, state) -> NightlyResult:
    from qpo.store import connect
    from qpo.store.market_data import book_prices
    from qpo.store.operations import write_valuations

    clock = _Clock()
    engine = engine or connect(create=False)
    url = _url(engine)
    with clock.phase("prices"):
        prices, source = book_prices(engine)
        day = _as_of(prices, as_of, source)
        state["day"] = day.date()
        prices = prices.loc[:day]
    warnings = _start(engine, VALUATION_KIND, day, as_of, log)
    ids = _all_portfolio_ids(engine)
    log(f"valuation of {day.date()}: {len(ids):,} portfolios, prices from the {source} panel "
        f"({prices.shape[1]} tickers to {prices.index[-1].date()})")
    with _recorded(engine, VALUATION_KIND, day.date(), state) as run:
        started = time.perf_counter()
        with _cluster(client, workers, log) as client:
            info = client.qpo_info
            chunks = _chunks(ids, max(1, info.workers), chunk_size)
            clock.seconds["cluster"] = time.perf_counter() - started
            with clock.phase("compute"):
                parts = _compute(client, value_chunk, chunks, (url, day, prices), log, "valuation")
        frames = [p for p in parts if p is not None and len(p)]
        from qpo.book.valuation import VALUATION_COLUMNS

        rows = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=VALUATION_COLUMNS)
        with clock.phase("write"):
            written = write_valuations(engine, day.date(), rows, run_id=run.id)
        status = rows["status"] if len(rows) else pd.Series(dtype=object)
        stale = int(sum(1 for s, names in zip(status, rows.get("stale", []), strict=False)
                        if s != "unpriced" and names is not None and len(names) > 0)) if len(rows) else 0
        held_stale = _stale_of(prices, day, rows)
        warning = _stale_warning(held_stale, day, stale, "valued")
        if warning:
            log(f"WARNING: {warning}")
        result = NightlyResult(kind=VALUATION_KIND, as_of=day.date(), run_id=run.id, portfolios=written,
                               price_source=source, workers=info.workers, dashboard=info.dashboard,
                               scheduler=info.scheduler, chunks=len(chunks), valued=int((status == "valued").sum()),
                               unpriced=int((status == "unpriced").sum()), stale=stale,
                               empty=int((status == "empty").sum()), stale_tickers=held_stale,
                               warnings=warnings + ([warning] if warning else []))
        result.seconds = clock.total()
        run.portfolios = written
        run.details = {**{k: v for k, v in result.metrics().items() if k != "ops_run_id"},
                       "price_source": source, "scheduler": info.scheduler, "dashboard": info.dashboard,
                       "mlflow_run_id": mlflow_run_id, "warnings": result.warnings,
                       "stale_tickers": result.stale_tickers}
    log(f"valuation of {result.as_of} done in {result.seconds['total']:.1f} s (ops run {result.run_id}): "
        f"valued {result.valued:,}, unpriced {result.unpriced:,}, stale {result.stale:,}, "
        f"{len(result.warnings)} warning(s)")
    return result


def _stale_of(prices: pd.DataFrame, day: pd.Timestamp, rows: pd.DataFrame) -> dict[str, str]:
    """:func:`stale_tickers` of the names some valued portfolio holds at a stale price."""
    held: set[str] = set()
    if len(rows) and "stale" in rows:
        for names in rows["stale"]:
            if isinstance(names, (list, tuple)):
                held.update(str(t) for t in names)
    return {t: d for t, d in stale_tickers(prices, day).items() if t in held}


def _not_valued(day: dt.date) -> NotValuedError:
    return NotValuedError(f"the book has no valuation of {day} in the store; the risk run checks the portfolios "
                          f"valued that day: run `qpo nightly value --as-of {day}` first")


#: why book_weights / book_risk leave a portfolio without risk when it holds nothing to check
_NOTHING_HELD = ("holds no shares", "holds no names")


def run_risk(as_of=None, *, engine=None, workers: int | None = None, chunk_size: int | None = None,
             deliver: bool = True, log: Callable[[str], None] | None = None, mlflow_run_id: str | None = None,
             report_dir: str | Path | None = None, sectors: dict[str, str] | None = None,
             client=None) -> NightlyResult:
    """Risk-check every portfolio valued on ``as_of`` (default: the prices' last date) on Dask,
    store the results, sync and deliver the alerts and write the book report (see the module).
    A date without a stored valuation is refused (:class:`NotValuedError`), before anything is
    written. ``deliver`` False leaves the new alerts undelivered; ``report_dir`` (default
    ``$QPO_RUNS_DIR/book``) is where the report goes; ``sectors`` (``{ticker: sector}``, default
    the bundled map :func:`qpo.load_sectors`) groups the names for the sector limits.

    A name without a bar on the date is checked at its last price (its return 0 since: the price
    the valuation holds it at) and the portfolios holding it are flagged stale (``details["stale"]``
    of their stored row, the summary and the report). A portfolio that cannot be checked (unpriced
    by the valuation; a name listed inside the risk window) is listed in ``unchecked``: never
    counted as checked nor as a pass. A day without a benchmark bar is a warning (no beta)."""
    log = log or (lambda msg: None)
    return _told(RISK_KIND, as_of, log, lambda state: _risk(as_of, engine, workers, chunk_size, deliver, log,
                                                            mlflow_run_id, report_dir, sectors, client, state))


def _risk(as_of, engine, workers, chunk_size, deliver, log, mlflow_run_id, report_dir, sectors, client,
          state) -> NightlyResult:
    from qpo import config
    from qpo.data import load_sectors
    from qpo.store import connect
    from qpo.store.market_data import book_benchmark, book_prices
    from qpo.store.operations import has_valuations, valuations_on, write_book_risk

    clock = _Clock()
    engine = engine or connect(create=False)
    url = _url(engine)
    with clock.phase("prices"):
        prices, source = book_prices(engine)
        day = _as_of(prices, as_of, source)
        state["day"] = day.date()
        if not has_valuations(engine, day.date()):
            raise _not_valued(day.date())
        raw = prices.loc[:day]
        prices = carried_prices(raw, day)  # a stale name at its last price, as the valuation holds it
        benchmark = book_benchmark(engine, end=day)
        returns, history, bench_r = risk_inputs(prices, benchmark, day)
        sectors = load_sectors() if sectors is None else dict(sectors)
    warnings = _start(engine, RISK_KIND, day, as_of, log)
    bench_note = benchmark_warning(benchmark, returns, day) if bench_r is None else None
    if bench_note:
        log(f"WARNING: {bench_note}")
        warnings.append(bench_note)
    valuations = valuations_on(engine, day.date())
    ids = valuations.loc[valuations["status"] == "valued", "portfolio_id"].astype(int).tolist()
    log(f"risk of {day.date()}: {len(ids):,} valued portfolios of {len(valuations):,}, prices from the {source} panel")
    with _recorded(engine, RISK_KIND, day.date(), state) as run:
        started = time.perf_counter()
        with _cluster(client, workers, log) as client:
            info = client.qpo_info
            chunks = _chunks(ids, max(1, info.workers), chunk_size)
            clock.seconds["cluster"] = time.perf_counter() - started
            with clock.phase("compute"):
                parts = _compute(client, risk_chunk, chunks, (url, day, prices, returns, history, bench_r, sectors),
                                 log, "risk")
        tables = [p["table"] for p in parts if p["table"] is not None and len(p["table"])]
        table = pd.concat(tables).sort_index() if tables else _empty_risk_table()
        details: dict = {}
        breaches: list[dict] = []
        names: dict[int, dict] = {}
        skipped: dict[int, str] = {}
        for p in parts:
            details.update(p["details"])
            breaches.extend(p["breaches"])
            names.update(p["names"])
            skipped.update(p["skipped"])
        # stale: the valued portfolios the valuation priced with a name's older price, flagged in their row
        stale_ids: dict[int, dict[str, str]] = {}
        all_stale = stale_tickers(raw, day)
        if "stale" in valuations.columns:
            for pid, st, names_ in zip(valuations["portfolio_id"], valuations["status"], valuations["stale"],
                                       strict=True):
                if st == "valued" and isinstance(names_, (list, tuple)) and names_:
                    stale_ids[int(pid)] = {str(t): all_stale.get(str(t), "?") for t in names_}
        checked_mask = table["compliant"].notna() if len(table) else pd.Series(dtype=bool)
        checked_ids = {int(p) for p in table.index[checked_mask.to_numpy(dtype=bool)]} if len(table) else set()
        for pid, st in stale_ids.items():
            if pid in details:
                details[pid] = {**details[pid], "stale": st}
        unchecked: dict[int, str] = {}
        for pid, st, missing in zip(valuations["portfolio_id"], valuations["status"],
                                    valuations.get("unpriced", pd.Series([None] * len(valuations))), strict=True):
            if st == "unpriced":
                unchecked[int(pid)] = (f"unpriced by the valuation (no price on or before {day.date()} for "
                                       f"{', '.join(map(str, missing or [])) or 'a held name'}): not risk-checked")
        for pid, why in skipped.items():
            if int(pid) not in checked_ids and not str(why).startswith(_NOTHING_HELD):
                unchecked[int(pid)] = why
        held_stale = {t: d for t, d in all_stale.items() if any(t in s for s in stale_ids.values())}
        n_stale = sum(1 for p in stale_ids if p in checked_ids)
        stale_note = _stale_warning(held_stale, day, n_stale, "risk-checked")
        if stale_note:
            log(f"WARNING: {stale_note}")
            warnings.append(stale_note)
        if unchecked:
            text = (f"{len(unchecked):,} portfolio(s) holding names were NOT risk-checked on {day.date()} (their "
                    "compliance is unknown, not a pass): " + "; ".join(f"{p}: {w}" for p, w in
                                                                      list(unchecked.items())[:3])
                    + (" ..." if len(unchecked) > 3 else ""))
            log(f"WARNING: {text}")
            warnings.append(text)
        with clock.phase("write"):
            sync = write_book_risk(engine, day.date(), table, details, breaches, run_id=run.id)
        alerts = sync.to_dict()
        breaching = int((table["breaches"].fillna(0).astype(int) > 0).sum()) if len(table) else 0
        result = NightlyResult(kind=RISK_KIND, as_of=day.date(), run_id=run.id, portfolios=len(valuations),
                               price_source=source, workers=info.workers, dashboard=info.dashboard,
                               scheduler=info.scheduler, chunks=len(chunks), breaches=len(breaches),
                               breaching=breaching, new_alerts=len(sync.new), persisting_alerts=len(sync.persisting),
                               resolved_alerts=len(sync.resolved), skipped=skipped, alerts=alerts, table=table,
                               breach_list=breaches, checked=len(checked_ids), unchecked=unchecked, stale=n_stale,
                               stale_tickers=held_stale, warnings=warnings)
        with clock.phase("deliver"):
            result.delivery = _deliver(engine, sync.new, deliver, log)
        with clock.phase("report"):
            result.report = str(_write_report(engine, result, valuations, names, report_dir
                                              or config.runs_dir() / "book", stale_ids))
        result.seconds = clock.total()
        run.portfolios = len(checked_ids)
        run.details = {**{k: v for k, v in result.metrics().items() if k != "ops_run_id"},
                       "price_source": source, "scheduler": info.scheduler, "dashboard": info.dashboard,
                       "report": result.report, "delivery": result.delivery, "mlflow_run_id": mlflow_run_id,
                       "warnings": result.warnings, "stale_tickers": result.stale_tickers,
                       "unchecked": {str(k): v for k, v in unchecked.items()}}
    log(f"risk of {result.as_of} done in {result.seconds['total']:.1f} s (ops run {result.run_id}): checked "
        f"{result.checked:,}, not checked {len(result.unchecked):,}, {result.breaches:,} failed check(s), "
        f"{result.new_alerts} new alert(s), {len(result.warnings)} warning(s); book report {result.report}")
    return result


def _empty_risk_table() -> pd.DataFrame:
    from qpo.store.operations import RISK_COLUMNS

    table = pd.DataFrame({c: pd.Series(dtype=float) for c in RISK_COLUMNS})
    table["compliant"] = pd.Series(dtype=bool)
    table["breaches"] = pd.Series(dtype=int)
    table.index.name = "portfolio_id"
    return table


def _deliver(engine, new: list[dict], deliver: bool, log) -> str:
    """Send the new alerts, and any earlier one never delivered (a failed delivery is retried by
    the next run), when e-mail or a webhook is configured; a sentence saying what happened."""
    from qpo.operations.delivery import DeliverySettings, deliver_alerts
    from qpo.store.alerts import undelivered_alerts

    if not deliver:
        return f"{len(new)} new alert(s), not delivered (delivery turned off for this run)"
    settings = DeliverySettings.from_env()
    if not settings.configured:
        text = (f"{len(new)} new alert(s); no delivery is configured, so none was sent (set QPO_SMTP_HOST and "
                "QPO_ALERT_RECIPIENTS for e-mail, or QPO_ALERT_WEBHOOK for a webhook)")
        log(text)
        return text
    pending = undelivered_alerts(engine)
    if not pending:
        return "no alert to deliver"
    report = deliver_alerts(engine, pending, settings)
    channels = sorted({m["channel"] for m in report.sent})
    text = (f"{len(report.delivered)} of {len(pending)} undelivered alert(s) delivered"
            + (f" by {' and '.join(channels)}" if channels else "")
            + (f"; {len(report.errors)} delivery error(s): {'; '.join(report.errors)}" if report.errors else "")
            + (f"; {'; '.join(report.skipped)}" if report.skipped else ""))
    log(text)
    return text


def _tell_failure(kind: str, as_of, handle, exc: BaseException, log) -> None:
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
    _notify(run, log)


def _notify(run: Mapping, log) -> None:
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


def _write_report(engine, result: NightlyResult, valuations: pd.DataFrame, names: dict[int, dict],
                  folder: str | Path, stale: Mapping[int, Mapping[str, str]] | None = None) -> Path:
    from qpo.reporting.book import book_report
    from qpo.store.operations import book_risk_on, previous_risk_date

    prev_day = previous_risk_date(engine, result.as_of)
    previous = book_risk_on(engine, prev_day) if prev_day is not None else None
    frame = pd.DataFrame.from_dict(names, orient="index")
    if "portfolio" in valuations.columns:  # every valued/unpriced portfolio's name, from the valuations
        known = valuations.set_index("portfolio_id")[["portfolio", "advisor_email"]].rename(columns={"portfolio": "name"})
        frame = known.combine_first(frame) if len(frame) else known
    facts = {"prices": f"the {result.price_source} panel", "ops run": result.run_id,
             "cluster": f"{result.workers} worker(s), {result.chunks} chunk(s) ({result.scheduler})",
             "delivery": result.delivery or ""}
    checked = result.table[result.table["compliant"].notna().to_numpy(dtype=bool)] if result.table is not None \
        and len(result.table) else None
    if checked is not None and len(checked):
        facts["market shocks"] = ("-10 % and -20 % on each portfolio's beta to the SP500"
                                  if checked["beta"].notna().any() else
                                  "-10 % and -20 % on each portfolio's beta to its own names equal-weighted (no "
                                  "SP500 return on every date of the window: see the warnings)")
    report = book_report(result.as_of, result.table, breaches=result.breach_list, names=frame, alerts=result.alerts,
                         valuations=valuations, previous=previous, previous_as_of=prev_day, facts=facts,
                         unchecked=result.unchecked, warnings=result.warnings, stale=stale)
    return report.write(Path(folder) / f"book-risk-{result.as_of}.html")


__all__ = ["CONFIDENCE", "HORIZON", "LOOKBACK_DAYS", "RISK_ACTOR", "VALUATION_ACTOR", "NightlyResult", "NotValuedError",
           "compute_risk", "risk_chunk", "risk_inputs", "run_risk", "run_valuation", "value_chunk"]
