"""The nightly book: every portfolio valued (17:00) and risk-checked (18:00) on a Dask cluster.

:func:`run_valuation` values the book on a date: the prices are the store's actual closes
(:func:`qpo.store.market_data.book_prices`, the bundled panel on a fresh install), the date
defaults to their last one; the market data's stock splits up to the date are first booked into
the ledgers of the portfolios holding the name (:func:`qpo.book.corporate_actions.book_splits`), so
that shares and closes agree; the book is split into chunks of portfolio ids, the price panel is
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
its portfolios flagged stale, for at most ``max_stale_days`` trading days (default 5): a name
without a bar for longer is not carried at a frozen price but treated as unpriced, its portfolios
reported unpriced and not risk-checked (``unpriced_stale`` names it and its last date); beta and the
market shocks are against each portfolio's own benchmark where it has prices, else the SP500
(``benchmarks`` counts them, a benchmark without prices is said); a portfolio that cannot be risk-checked is counted in ``unchecked``
(never as checked, never as a pass); a day without an SP500 bar leaves beta NULL and the market
shocks on each portfolio's own names (said, with the last benchmark date); a date not newer than
the last finished run of the kind is "no new market data since DATE" (the run still runs: a
rerun replaces the date). At its start each run marks FAILED the runs left RUNNING by a process
that disappeared (:func:`qpo.store.operations.fail_abandoned_runs`) and tells them; any failure,
even before the run is recorded, is told to the ops desk from memory (it reaches them with the
database gone).

The parts live next to it: the result (``_nightly_result``), the cluster and the chunks
(``_nightly_cluster``), the recorded run and its failures told (``_nightly_failures``), the alerts
delivered and the book report (``_nightly_report``), what the workers compute (``_tasks``).
"""
from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import pandas as pd

from qpo.errors import StoreError
from qpo.operations._nightly_cluster import CHUNKS_PER_WORKER, MAX_CHUNK, MIN_CHUNK
from qpo.operations._nightly_cluster import Clock as _Clock
from qpo.operations._nightly_cluster import chunks as _chunks
from qpo.operations._nightly_cluster import cluster as _cluster
from qpo.operations._nightly_cluster import compute as _compute
from qpo.operations._nightly_cluster import store_url as _url
from qpo.operations._nightly_failures import recorded as _recorded
from qpo.operations._nightly_failures import start_run as _start
from qpo.operations._nightly_failures import told as _told
from qpo.operations._nightly_report import deliver as _deliver
from qpo.operations._nightly_report import empty_risk_table as _empty_risk_table
from qpo.operations._nightly_report import write_report as _write_report
from qpo.operations._nightly_result import RISK_KIND, VALUATION_KIND, NightlyResult
from qpo.operations._tasks import (
    CONFIDENCE,
    DEFAULT_BENCHMARK,
    HORIZON,
    LOOKBACK_DAYS,
    MAX_STALE_DAYS,
    RISK_ACTOR,
    VALUATION_ACTOR,
    benchmark_returns,
    benchmark_warning,
    carried_prices,
    compute_risk,
    past_stale_cap,
    risk_chunk,
    risk_inputs,
    stale_cap_warning,
    stale_tickers,
    value_chunk,
    without,
)


class NotValuedError(StoreError):
    """The risk run of a date the valuation has not run for."""


# -- the runs ---------------------------------------------------------------------------------------
def _as_of(prices: pd.DataFrame, as_of, source: str) -> pd.Timestamp:
    from qpo.data import check_as_of
    from qpo.errors import DataError
    from qpo.store.market_data import latest_today

    try:
        day = check_as_of(prices.index, as_of)
    except DataError as exc:
        try:
            late = as_of is not None and len(prices.index) > 0 and pd.Timestamp(as_of) > prices.index.max()
        except (TypeError, ValueError):
            late = False
        hint = "; ingest newer prices with `qpo data ingest FILE` or `qpo data fetch alphavantage`" if late else ""
        raise DataError(f"{exc} (the {source} price panel){hint}") from exc
    today = latest_today()
    if day.date() > today:  # a bar stored with a mistyped date: every run would be of that day
        ahead = prices.loc[prices.index > pd.Timestamp(today)].dropna(axis=1, how="all")
        raise DataError(f"the run's date {day.date()} is after today ({today}): the {source} price panel holds bars "
                        f"dated in the future ({', '.join(map(str, ahead.columns[:5]))}{' ...' if ahead.shape[1] > 5 else ''}"
                        f", up to {prices.index.max().date()}); remove them (`qpo data remove TICKER --from DATE`) or "
                        "give --as-of")
    return day


def _all_portfolio_ids(engine) -> list[int]:
    from sqlalchemy import select

    from qpo.store import ClientPortfolio

    with engine.connect() as conn:
        return [int(i) for i in conn.execute(select(ClientPortfolio.id).order_by(ClientPortfolio.id)).scalars()]


def _stale_warning(stale: Mapping[str, str], day: pd.Timestamp, portfolios: int, what: str) -> str | None:
    if not stale:
        return None
    shown = ", ".join(f"{t} (last {d})" for t, d in list(stale.items())[:8]) + (" ..." if len(stale) > 8 else "")
    return (f"stale prices: {len(stale)} held name(s) have no bar on {day.date()} and are held at their last price "
            f"(return 0 since): {shown}; {portfolios:,} portfolio(s) {what} with them")


def run_valuation(as_of=None, *, engine=None, workers: int | None = None, chunk_size: int | None = None,
                  log: Callable[[str], None] | None = None, mlflow_run_id: str | None = None,
                  client=None, max_stale_days: int = MAX_STALE_DAYS) -> NightlyResult:
    """Value every portfolio of the store on ``as_of`` (default: the prices' last date) on Dask and
    store the valuations (see the module). ``workers``: local worker processes (default: the usable
    CPUs; ignored with ``QPO_DASK_SCHEDULER``); ``chunk_size``: portfolios per task; ``log``
    receives progress lines and warnings (the run's summary is :meth:`NightlyResult.summary`);
    ``mlflow_run_id`` is kept with the run's record (a pipeline's run); ``client``: a connected
    :class:`distributed.Client` to use (and leave open) instead of starting a cluster.
    ``max_stale_days``: a held name whose last bar is more than this many trading days before the
    date makes its portfolios unpriced (not valued at a frozen price; ``unpriced_stale`` names them
    and their last dates); a name stale for fewer days is valued at its last price, flagged stale.

    A run that fails, or is refused before it is recorded, is told to the ops desk when delivery
    is configured (built from memory: it reaches them with the database gone)."""
    log = log or (lambda msg: None)
    cap = _stale_cap(max_stale_days)
    return _told(VALUATION_KIND, as_of, log,
                 lambda state: _valuation(as_of, engine, workers, chunk_size, log, mlflow_run_id, client, state, cap))


def _stale_cap(days) -> int:
    from qpo.errors import InvalidValueError

    if isinstance(days, bool) or not isinstance(days, int) or days < 0:
        raise InvalidValueError(f"max_stale_days must be a whole number of trading days of at least 0, got {days!r} "
                                f"(default {MAX_STALE_DAYS}: a name without a bar for longer is unpriced)")
    return days


def _valuation(as_of, engine, workers, chunk_size, log, mlflow_run_id, client, state, cap) -> NightlyResult:
    from qpo.store import connect
    from qpo.store.market_data import book_prices, closes_differ
    from qpo.store.operations import write_valuations

    clock = _Clock()
    engine = engine or connect(create=False)
    url = _url(engine)
    with clock.phase("prices"):
        prices, source = book_prices(engine, actual=True)  # shares are valued at the day's actual closes
        day = _as_of(prices, as_of, source)
        state["day"] = day.date()
        capped = past_stale_cap(prices, day, cap)
        prices = prices.loc[:day]  # past the cap: unpriced after its last bar (carry_until), not carried
        carry_until = {t: pd.Timestamp(v["last"]) for t, v in capped.items()}
        adjusted = None
        if source == "store" and closes_differ(engine):  # the adjusted closes, for positions traded at them
            adjusted = book_prices(engine)[0].loc[:day].reindex_like(prices)
            adjusted = None if adjusted.equals(prices) else adjusted
    warnings = _start(engine, VALUATION_KIND, day, as_of, log)
    from qpo.book.corporate_actions import book_splits
    from qpo.store import Actor

    with clock.phase("splits"):
        splits = book_splits(engine, day, actor=Actor.system(VALUATION_ACTOR))
    unsplit = splits.attrs.get("skipped")
    if unsplit is not None and len(unsplit):
        log(f"{len(unsplit):,} position(s) not split: their ledgers' prices are already split-adjusted (e.g. "
            f"{unsplit['portfolio'].iloc[0]!r} {unsplit['ticker'].iloc[0]} {unsplit['trade_date'].iloc[0].date()})")
    if len(splits):
        log(f"{len(splits):,} split entr{'y' if len(splits) == 1 else 'ies'} booked into the ledgers of "
            f"{splits['portfolio_id'].nunique():,} portfolio(s): " + ", ".join(
                f"{t} {d.date()} ({r:g}-for-1)" for (t, d, r), _ in list(splits.groupby(["ticker", "trade_date", "ratio"]))[:5]))
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
                parts = _compute(client, value_chunk, chunks, (url, day, prices, adjusted, carry_until), log,
                                 "valuation")
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
        held_capped, n_capped = _capped_holdings(rows, capped)
        cap_note = stale_cap_warning(capped, set(held_capped), day, n_capped, cap)
        if cap_note:
            log(f"WARNING: {cap_note}")
        result = NightlyResult(kind=VALUATION_KIND, as_of=day.date(), run_id=run.id, portfolios=written,
                               price_source=source, workers=info.workers, dashboard=info.dashboard,
                               scheduler=info.scheduler, chunks=len(chunks), valued=int((status == "valued").sum()),
                               unpriced=int((status == "unpriced").sum()), stale=stale,
                               empty=int((status == "empty").sum()), splits_booked=len(splits),
                               stale_tickers=held_stale,
                               unpriced_stale=held_capped, max_stale_days=cap,
                               warnings=warnings + [w for w in (warning, cap_note) if w])
        result.seconds = clock.total()
        run.portfolios = written
        run.details = {**{k: v for k, v in result.metrics().items() if k != "ops_run_id"},
                       "price_source": source, "scheduler": info.scheduler, "dashboard": info.dashboard,
                       "mlflow_run_id": mlflow_run_id, "warnings": result.warnings,
                       "stale_tickers": result.stale_tickers, "unpriced_stale": result.unpriced_stale,
                       "max_stale_days": cap}
    log(f"valuation of {result.as_of} done in {result.seconds['total']:.1f} s (ops run {result.run_id}): "
        f"valued {result.valued:,}, unpriced {result.unpriced:,}, stale {result.stale:,}, "
        f"{len(result.warnings)} warning(s)")
    return result


def _capped_holdings(rows: pd.DataFrame, capped: Mapping[str, dict]) -> tuple[dict[str, str], int]:
    """The names past the staleness cap some portfolio holds (``{ticker: last bar date}``) and how
    many portfolios hold one (unpriced for it)."""
    held: dict[str, str] = {}
    portfolios = 0
    if capped and len(rows) and "unpriced" in rows:
        for names in rows["unpriced"]:
            mine = [str(t) for t in (names if isinstance(names, (list, tuple)) else []) if str(t) in capped]
            portfolios += bool(mine)
            held.update({t: capped[t]["last"] for t in mine})
    return dict(sorted(held.items(), key=lambda kv: (kv[1], kv[0]))), portfolios


def _stale_of(prices: pd.DataFrame, day: pd.Timestamp, rows: pd.DataFrame) -> dict[str, str]:
    """:func:`stale_tickers` of the names some valued portfolio holds at a stale price."""
    held: set[str] = set()
    if len(rows) and "stale" in rows:
        for names in rows["stale"]:
            if isinstance(names, (list, tuple)):
                held.update(str(t) for t in names)
    return {t: d for t, d in stale_tickers(prices, day).items() if t in held}


def _benchmarks(engine, source: str, raw: pd.DataFrame, sp500: pd.Series | None, returns: pd.DataFrame,
                day: pd.Timestamp) -> dict[str, pd.Series | None]:
    """``{benchmark: its returns on the risk window, or None}``: the SP500's, and those of every
    other benchmark a portfolio names (its ``benchmark`` field, else its strategy's), from the price panel (a stock or
    fund held as a benchmark) or the store's bars (an index series)."""
    from sqlalchemy import select

    from qpo.store import ClientPortfolio
    from qpo.store.market_data import STORE, prices_panel
    from qpo.store.portfolios import benchmark_of

    out: dict[str, pd.Series | None] = {DEFAULT_BENCHMARK: sp500}
    with engine.connect() as conn:
        rows = conn.execute(select(ClientPortfolio.benchmark, ClientPortfolio.strategy)).all()
    given = [benchmark_of(own, strategy) for own, strategy in rows]  # its own, else its strategy's
    named = sorted({b.strip() for b in given if b} - {DEFAULT_BENCHMARK})
    for name in named:
        if name in raw.columns:
            series = raw[name]
        elif source == STORE:
            series = prices_panel(engine, [name], end=day)[name]
        else:
            series = None
        out[name] = benchmark_returns(series, returns, day)
    return out


def _not_valued(day: dt.date) -> NotValuedError:
    return NotValuedError(f"the book has no valuation of {day} in the store; the risk run checks the portfolios "
                          f"valued that day: run `qpo nightly value --as-of {day}` first")


#: why book_weights / book_risk leave a portfolio without risk when it holds nothing to check
_NOTHING_HELD = ("holds no shares", "holds no names")


def run_risk(as_of=None, *, engine=None, workers: int | None = None, chunk_size: int | None = None,
             deliver: bool = True, log: Callable[[str], None] | None = None, mlflow_run_id: str | None = None,
             report_dir: str | Path | None = None, sectors: dict[str, str] | None = None,
             client=None, max_stale_days: int = MAX_STALE_DAYS) -> NightlyResult:
    """Risk-check every portfolio valued on ``as_of`` (default: the prices' last date) on Dask,
    store the results, sync and deliver the alerts and write the book report (see the module).
    A date without a stored valuation is refused (:class:`NotValuedError`), before anything is
    written. ``deliver`` False leaves the new alerts undelivered; ``report_dir`` (default
    ``$QPO_RUNS_DIR/book``) is where the report goes; ``sectors`` (``{ticker: sector}``, default
    the book's map :func:`qpo.store.sectors.book_sectors`: the store's over the bundled one) groups
    the names for the sector limits.

    A name without a bar on the date is checked at its last price (its return 0 since: the price
    the valuation holds it at) and the portfolios holding it are flagged stale (``details["stale"]``
    of their stored row, the summary and the report). A portfolio that cannot be checked (unpriced
    by the valuation; a name listed inside the risk window) is listed in ``unchecked``: never
    counted as checked nor as a pass. A day without a benchmark bar is a warning (no beta). A name
    without a bar for more than ``max_stale_days`` trading days is not carried: the portfolios
    holding it are not risk-checked with a frozen price (``unchecked``, saying which name and since
    when; ``unpriced_stale``)."""
    log = log or (lambda msg: None)
    cap = _stale_cap(max_stale_days)
    return _told(RISK_KIND, as_of, log, lambda state: _risk(as_of, engine, workers, chunk_size, deliver, log,
                                                            mlflow_run_id, report_dir, sectors, client, state, cap))


def _risk(as_of, engine, workers, chunk_size, deliver, log, mlflow_run_id, report_dir, sectors, client,
          state, cap) -> NightlyResult:
    from qpo import config
    from qpo._folders import check_run_folders
    from qpo.store import connect
    from qpo.store.market_data import book_benchmark, book_prices, closes_differ
    from qpo.store.operations import finished_run, has_valuations, valuations_on, write_book_risk
    from qpo.store.sectors import book_sectors

    clock = _Clock()
    engine = engine or connect(create=False)
    url = _url(engine)
    report_dir = Path(report_dir) if report_dir is not None else config.runs_dir() / "book"
    # the book report's folder, before anything is written: a run that commits its date and its
    # alerts and then cannot write the report would leave a failed run whose alerts are already old
    check_run_folders([(report_dir, "the book report's folder", "QPO_RUNS_DIR")])
    with clock.phase("prices"):
        prices, source = book_prices(engine)
        day = _as_of(prices, as_of, source)
        state["day"] = day.date()
        # valued: rows of the date, or a finished valuation run of it (an empty book's has no row)
        if not has_valuations(engine, day.date()) and not finished_run(engine, VALUATION_KIND, day.date()):
            raise _not_valued(day.date())
        capped = past_stale_cap(prices, day, cap)
        raw = without(prices.loc[:day], capped)  # past the cap: no price, so not checked at a frozen one
        prices = carried_prices(raw, day)  # a stale name at its last price, as the valuation holds it
        actual = None  # the actual closes, for the ledger's actual shares (the valuation's prices)
        if source == "store" and closes_differ(engine):
            actual = carried_prices(without(book_prices(engine, actual=True)[0].loc[:day], capped), day)
            actual = None if actual.equals(prices) else actual
        benchmark = book_benchmark(engine, end=day)
        returns, history, bench_r = risk_inputs(prices, benchmark, day)
        benchmarks = _benchmarks(engine, source, raw, bench_r, returns, day)
        sectors = book_sectors(engine) if sectors is None else dict(sectors)
    warnings = _start(engine, RISK_KIND, day, as_of, log)
    bench_note = None
    if bench_r is None:  # beta dropped: always said, with the reason when one is found
        bench_note = benchmark_warning(benchmark, returns, day) or (
            f"beta not computed: the benchmark's returns do not cover the risk window ending {day.date()}; beta is "
            "NULL for every portfolio and the market shocks use each portfolio's beta to its own names instead")
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
                parts = _compute(client, risk_chunk, chunks, (url, day, prices, returns, history, benchmarks, sectors,
                                                              actual), log, "risk")
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
                gone = [str(t) for t in (missing or []) if str(t) in capped]
                if gone:
                    unchecked[int(pid)] = ("unpriced: no bar for more than " f"{cap} trading days for "
                                           + ", ".join(f"{t} (last {capped[t]['last']})" for t in gone)
                                           + ": not risk-checked at a frozen price")
                else:
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
        against: dict[str, int] = {}
        for pid, d in details.items():  # the portfolios checked against each benchmark
            if d.get("benchmark") and int(pid) in checked_ids:
                against[str(d["benchmark"])] = against.get(str(d["benchmark"]), 0) + 1
        fallback = {pid: own for p in parts for pid, own in p.get("fallback", {}).items()}
        if fallback:
            owns = sorted(set(fallback.values()))
            note = (f"{len(fallback):,} portfolio(s) have a benchmark without prices covering the risk window ending "
                    f"{day.date()} ({', '.join(owns[:5])}{' ...' if len(owns) > 5 else ''}): their beta and market "
                    "shocks are against the SP500 instead; ingest the benchmark's bars to measure against it")
            log(f"WARNING: {note}")
            warnings.append(note)
        unclassified = [pid for pid, d in details.items()
                        if any("passed" in c and c["passed"] is None for c in (d.get("compliance") or []))]
        if unclassified:  # a sector cap it could not check: said, with the way out
            note = (f"{len(unclassified):,} portfolio(s) hold names without a sector in the sector map: their sector "
                    "caps are checked on the names with one, and the rest is reported not checked (not a breach, "
                    "not a pass); load the map of your universe with `qpo data sectors FILE`")
            log(f"WARNING: {note}")
            warnings.append(note)
        held_capped, n_capped = _capped_holdings(valuations, capped)
        cap_note = stale_cap_warning(capped, set(held_capped), day, n_capped, cap)
        if cap_note:
            log(f"WARNING: {cap_note}")
            warnings.append(cap_note)
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
                               stale_tickers=held_stale, unpriced_stale=held_capped, max_stale_days=cap,
                               benchmarks=dict(sorted(against.items())), warnings=warnings)
        with clock.phase("deliver"):
            result.delivery = _deliver(engine, sync.new, deliver, log)
        with clock.phase("report"):
            result.report = str(_write_report(engine, result, valuations, names, report_dir, stale_ids))
        result.seconds = clock.total()
        run.portfolios = len(checked_ids)
        run.details = {**{k: v for k, v in result.metrics().items() if k != "ops_run_id"},
                       "price_source": source, "scheduler": info.scheduler, "dashboard": info.dashboard,
                       "report": result.report, "delivery": result.delivery, "mlflow_run_id": mlflow_run_id,
                       "warnings": result.warnings, "stale_tickers": result.stale_tickers,
                       "unpriced_stale": result.unpriced_stale, "max_stale_days": cap,
                       "unchecked": {str(k): v for k, v in unchecked.items()}}
    log(f"risk of {result.as_of} done in {result.seconds['total']:.1f} s (ops run {result.run_id}): checked "
        f"{result.checked:,}, not checked {len(result.unchecked):,}, {result.breaches:,} failed check(s), "
        f"{result.new_alerts} new alert(s), {len(result.warnings)} warning(s); book report {result.report}")
    return result


__all__ = ["CHUNKS_PER_WORKER", "CONFIDENCE", "HORIZON", "LOOKBACK_DAYS", "MAX_CHUNK", "MIN_CHUNK", "RISK_ACTOR", "RISK_KIND",
           "VALUATION_ACTOR", "VALUATION_KIND", "NightlyResult", "NotValuedError", "compute_risk", "risk_chunk",
           "risk_inputs", "run_risk", "run_valuation", "value_chunk"]
