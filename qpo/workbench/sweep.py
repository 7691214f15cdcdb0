"""Parameter sweeps: one pipeline's notebook run for every cell of a grid, on Dask.

``run_sweep("backtest", {"costs": [0, 0.001, 0.002], "window": [126, 252]})`` (or
``qpo pipeline sweep backtest -p costs 0 0.001 0.002 -p window 126 252``) runs the 6 cells of the
grid, or a list of parameter sets (``cells=``, :func:`load_cells` reads one from JSON, YAML or
CSV), on a Dask cluster (:func:`~qpo.operations.cluster.dask_client`: a local cluster of worker
processes, one thread each, or the scheduler at ``QPO_DASK_SCHEDULER``):

1. every cell's parameters are checked first (names the notebook declares, types): a bad one is
   refused before anything is written;
2. the sweep's process connects to the cluster (one it cannot reach is an error and nothing is
   written), then creates the experiment and one *parent* MLflow run (tag ``qpo.sweep=parent``)
   holding the grid (parameters ``grid.<name>`` and the artifact ``sweep/grid.json``);
3. each cell is one :func:`~qpo.workbench.pipelines.run_pipeline` in a worker process (Papermill
   changes the process's working directory, so cells never share a process at the same time) with
   its own output notebook, HTML report and MLflow run, a child of the parent (tag
   ``mlflow.parentRunId``; ``qpo.sweep_cell`` its number). Kernels start on Unix sockets (no TCP
   port race), with a 300 s start timeout; the numerical libraries use one thread per worker;
4. a failing cell is recorded FAILED and the sweep goes on; at the end the parent holds the status
   of every cell (``sweep/cells.json``, the metrics ``cells_finished`` / ``cells_failed`` /
   ``cells_killed``, the tag ``qpo.failed_cells``), the comparison table (``sweep/comparison.csv``
   and ``.html``: parameters, status, child run and every metric) and a figure (a metric against
   the first parameter, one line per value of the others). A worker that dies while it runs a
   cell: Dask runs the cell again and the re-run counts; the dead attempt's child run is marked
   FAILED with the tag ``qpo.superseded_by`` (the re-run's id) and is not a cell of the sweep
   (statuses count cells, not runs). The parent ends FINISHED, or FAILED
   when a cell failed (the sweep's exit status is then 1); then ONE failed-run notice lists the
   failed cells through the delivery channels (:mod:`qpo.operations.delivery`; the cells
   themselves send none);
5. SIGINT (Ctrl-C) or SIGTERM stops the workers: cells not started are not run (``NOT_STARTED``),
   running ones have their kernel stopped, their partial notebook kept and their child run marked
   KILLED with the reason; the parent is marked KILLED too, with the report of what ran. Only
   this sweep's cells are stopped (another sweep sharing the workers runs on). The sweep waits
   up to :data:`STOP_WAIT_S` for the running cells; a second Ctrl-C stops waiting (their runs are
   then marked KILLED without their partial notebooks).

:func:`read_sweep` reads a finished sweep back (``notebooks/07_sweep.ipynb`` plots one).
"""
from __future__ import annotations

import contextlib
import datetime as dt
import itertools
import json
import signal
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qpo.errors import InvalidValueError, PipelineError, RunInterrupted
from qpo.workbench._sweep_fanout import SUPERSEDED_TAG, fan_out, own, repair_children
from qpo.workbench._sweep_report import (
    CELLS_ARTIFACT,
    SWEEP_TAG,
    SweepRecord,
    comparison_table,
    default_metric,
    label,
    read_sweep,
    strategy_order,
    sweep_figure,
)

if TYPE_CHECKING:
    import pandas as pd

#: the longest the sweep waits, once stopped, for the running cells to end KILLED
STOP_WAIT_S = 90.0
_FAILED = ("FAILED", "INVALID_DATA")


@dataclass
class SweepCell:
    """One cell: its number, parameters, status (FINISHED, FAILED, INVALID_DATA, KILLED or
    NOT_STARTED), child run, output notebook and report, metrics, error, and timings (``wall_s``
    the whole cell in its worker, ``papermill_s`` the notebook's execution with its kernel's
    start, ``cells_s`` the notebook's own compute)."""

    index: int
    parameters: dict[str, Any]
    status: str
    run_id: str | None = None
    notebook: str | None = None
    html: str | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    seconds: float = 0.0
    timings: dict[str, Any] = field(default_factory=dict)
    pid: int | None = None

    @property
    def label(self) -> str:
        return label(self.parameters)


@dataclass
class SweepResult:
    pipeline: str
    status: str  # FINISHED | FAILED (a cell failed) | KILLED (stopped by a signal)
    parent_run_id: str
    experiment: str
    tracking_uri: str
    names: list[str]
    cells: list[SweepCell]
    metric: str | None = None
    signal: str | None = None
    seconds: float = 0.0
    workers: int = 0
    table: pd.DataFrame | None = field(default=None, repr=False)  # the comparison table
    notice: dict[str, Any] | None = None  # the failed-cells notice's delivery report (None: none sent)
    superseded: list[str] = field(default_factory=list)  # dead workers' attempts of cells Dask re-ran (not cells)

    @property
    def failed(self) -> list[SweepCell]:
        return [c for c in self.cells if c.status in _FAILED]

    @property
    def ok(self) -> bool:
        return self.status == "FINISHED"

    @property
    def exit_code(self) -> int:
        """0 all cells finished; 1 a cell failed; 130 / 143 stopped by SIGINT / SIGTERM."""
        if self.status == "KILLED":
            return 128 + int(signal.Signals[self.signal or "SIGINT"])
        return 0 if self.ok else 1

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("table")
        out["failed"] = [c.index for c in self.failed]
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), default=str)


# -- the cells ----------------------------------------------------------------------------------
def grid_cells(grid: dict[str, list]) -> list[dict[str, Any]]:
    """Every combination of the grid's values, the first parameter varying slowest."""
    if not isinstance(grid, dict) or not grid:
        raise InvalidValueError(f"a sweep's grid maps parameter names to lists of values, e.g. "
                                f"{{'costs': [0, 0.001], 'window': [126, 252]}}; got {grid!r}")
    for name, values in grid.items():
        if not isinstance(values, (list, tuple)) or not values:
            raise InvalidValueError(f"grid parameter {name!r} needs a non-empty list of values, got {values!r}")
        if len({json.dumps(v, sort_keys=True, default=str) for v in values}) != len(values):
            raise InvalidValueError(f"grid parameter {name!r} lists a value twice: {list(values)!r}")
    names = list(grid)
    return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*(grid[n] for n in names))]


def load_cells(path: str | Path) -> list[dict[str, Any]]:
    """Parameter sets from a file: JSON or YAML (a list of mappings, or ``{"cells": [...]}``), or
    CSV (a header of parameter names, one cell per row, each value read as YAML: ``0.001``,
    ``126``, ``null``, text)."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise InvalidValueError(f"cells file {path} does not exist (a .json, .yaml/.yml or .csv of parameter sets)")
    suffix = path.suffix.lower()
    text = path.read_text(encoding="utf-8")
    if suffix == ".csv":
        import csv

        def value(cell: str):
            try:
                return yaml.safe_load(cell) if cell.strip() else None
            except (yaml.YAMLError, ValueError, OverflowError):
                return cell

        reader = csv.reader(text.splitlines())
        header = [h.strip() for h in next(reader, [])]
        twice = sorted({h for h in header if header.count(h) > 1})
        if twice:  # a dict would keep the last column's values and drop the others, unseen
            raise InvalidValueError(f"cells file {path}: the column(s) {', '.join(map(repr, twice))} appear more than "
                                    "once in the header; give each parameter one column")
        rows = [(reader.line_num, row) for row in reader if any(cell.strip() for cell in row)]
        # a row of fewer values would run its cell on the notebook's defaults, unseen; one of more, drop values
        uneven = next(((i, line, row) for i, (line, row) in enumerate(rows, start=1) if len(row) != len(header)), None)
        if uneven is not None:
            i, line, row = uneven
            raise InvalidValueError(f"cells file {path}: row {i} (line {line}) has {len(row)} value(s) for the "
                                    f"{len(header)} column(s) of the header ({', '.join(header)}); give every "
                                    "column a value (an empty one is null)")
        data: Any = [{k: value(v) for k, v in zip(header, row, strict=True)} for _, row in rows]
    elif suffix in (".json", ".yaml", ".yml"):
        try:
            data = json.loads(text) if suffix == ".json" else yaml.safe_load(text)
        except (json.JSONDecodeError, yaml.YAMLError) as exc:
            raise InvalidValueError(f"cells file {path} cannot be read: {exc}") from None
        if isinstance(data, dict) and "cells" in data:
            data = data["cells"]
    else:
        raise InvalidValueError(f"cells file {path}: unknown format {suffix or '(none)'}; valid: .json, .yaml, .yml, .csv")
    if not isinstance(data, list) or not data or not all(isinstance(c, dict) and c for c in data):
        raise InvalidValueError(f"cells file {path} must hold a non-empty list of parameter sets (name: value "
                                f"mappings), e.g. [{{\"costs\": 0.001, \"window\": 126}}]")
    return data


def _check_cells(spec, cells: list[dict[str, Any]]) -> list[str]:
    """Refuse a bad cell before anything is written; the parameter names, in order."""
    from qpo.errors import UnknownOptionError
    from qpo.workbench.pipelines import check_portfolio, resolve_parameters

    name = spec.name
    names: list[str] = []
    portfolios: set = set()  # each portfolio a cell names is checked once, before anything runs
    for i, cell in enumerate(cells):
        if "run_id" in cell:
            raise InvalidValueError("run_id is set by the sweep for each cell; leave it out of the grid")
        try:
            resolved = resolve_parameters(spec, dict(cell))
            named = resolved.get(spec.portfolio_parameter) if spec.portfolio_parameter else None
            if named is not None and named not in portfolios:
                check_portfolio(spec, resolved)
                portfolios.add(named)
        except UnknownOptionError as exc:  # run_id is the notebook's, set by the sweep: not a valid choice here
            raise UnknownOptionError(f"{exc.kind} in cell {i} ({label(cell)})" if exc.kind.startswith("portfolio (") else
                                     f"parameter of pipeline {name!r} in cell {i} ({label(cell)})", exc.value,
                                     [v for v in exc.valid if v != "run_id"],
                                     see="see `qpo portfolio list`" if exc.kind.startswith("portfolio (") else "") from None
        except PipelineError as exc:
            raise type(exc)(f"cell {i} ({label(cell)}): {exc}") from None
        names += [n for n in cell if n not in names]
    return names


# -- signals ------------------------------------------------------------------------------------
class _Signals:
    """SIGINT and SIGTERM recorded (in the main thread), not raised: the sweep stops in order."""

    def __init__(self) -> None:
        self.number: int | None = None
        self.count = 0  # signals received: a second one while stopping stops waiting for the cells
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> _Signals:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame) -> None:
        self.count += 1
        if self.number is None:  # a second signal while stopping: stopping already
            self.number = signum

    def __exit__(self, *exc) -> None:
        for sig, previous in self._previous.items():
            signal.signal(sig, previous)

    @property
    def name(self) -> str | None:
        return signal.Signals(self.number).name if self.number is not None else None


# -- the sweep ----------------------------------------------------------------------------------
def run_sweep(name: str, grid: dict[str, list] | None = None, *, cells: list[dict] | None = None,
              workers: int | None = None, log=None, metric: str | None = None,
              scheduler: str | None = None, parameters: dict[str, Any] | None = None) -> SweepResult:
    """Run pipeline ``name`` for every cell of ``grid`` (or every parameter set of ``cells``) on
    Dask (see the module). ``workers``: local worker processes (default ``QPO_DASK_WORKERS`` or
    the usable CPUs); ``scheduler``: a running Dask scheduler's address (default
    ``QPO_DASK_SCHEDULER``); ``metric``: the one the figure plots (default the Sharpe ratio of the
    first strategy of the notebook's ``strategies``, not a baseline's); ``parameters``: values
    every cell shares (not part of the grid: logged to the parent as ``fixed.<name>``, not in the
    table). Raises, before anything is written (no tracking store created, no parent run), for an
    unknown pipeline, a bad grid or cell, an unusable runs folder, a Dask cluster that cannot be
    reached (:class:`~qpo.operations.cluster.ClusterError`); never for a failing cell."""
    from qpo import config
    from qpo.operations.cluster import dask_client
    from qpo.tracking import configure, tracked_run
    from qpo.workbench.pipelines import load_spec, resolve_parameters, run_folders
    from qpo.workbench.run_control import check_run_folders, run_owner_tags

    log = log or (lambda msg: None)
    t0 = time.perf_counter()
    if (grid is None) == (cells is None):
        raise InvalidValueError("give a sweep either a grid (parameter -> values) or a list of cells (parameter sets), "
                                "not both and not neither")
    spec = load_spec(name)
    plan = grid_cells(grid) if grid is not None else [dict(c) for c in cells or []]
    if not plan:
        raise InvalidValueError("a sweep needs at least one cell")
    fixed = dict(parameters or {})
    names = _check_cells(spec, [{**fixed, **c} for c in plan])
    names = [n for n in names if n not in fixed or any(n in c for c in plan)]
    plan = [{**fixed, **c} for c in plan]
    strategies = strategy_order(resolve_parameters(spec, dict(plan[0])).get("strategies"))
    uri = config.tracking_uri()
    check_run_folders(run_folders(uri))  # before anything is written: the tracking store included
    sweep_id = uuid.uuid4().hex
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    params = ({f"grid.{k}": json.dumps(v, default=str) for k, v in grid.items()} if grid is not None
              else {"cells_file": f"{len(plan)} parameter sets"})
    params.update({f"fixed.{k}": json.dumps(v, default=str) for k, v in fixed.items()})
    tags = {SWEEP_TAG: "parent", "qpo.sweep_id": sweep_id, "qpo.pipeline": name, "qpo.notebook": spec.notebook.name,
            "qpo.sweep_cells": str(len(plan)), **run_owner_tags()}
    result: SweepResult | None = None
    cluster = contextlib.ExitStack()  # reached before the parent run opens: no cluster, no run
    try:
        client = cluster.enter_context(dask_client(workers, scheduler=scheduler, log=log, dashboard=False))
        n_workers = client.qpo_info.workers
        uri = configure(uri)
        warning = remote_tracking_warning(client.qpo_info.kind, client.scheduler.address, uri)
        if warning:
            log(warning)
        with _Signals() as signals, tracked_run(spec.experiment, run_name=f"sweep {name} {stamp}",
                                                params={**params, "n_cells": len(plan)}, tags=tags) as parent:
            parent.log_dict({"pipeline": name, "grid": grid, "parameters": fixed, "cells": plan, "names": names},
                            "sweep/grid.json")
            log(f"sweep {name}: {len(plan)} cell(s) of {', '.join(names)}; parent run {parent.run_id}")
            try:
                outcomes = fan_out(client, name, plan, names, sweep_id, parent.run_id, uri, signals, log,
                                   stop_wait=STOP_WAIT_S, second_signal=lambda: signals.count > 1)
            finally:
                cluster.close()  # the workers gone before their runs are repaired
            result = _report(parent, name, spec.experiment, uri, names, plan, outcomes, signals.name, metric, log,
                             strategies)
            result.workers, result.seconds = n_workers, time.perf_counter() - t0
            if result.status == "KILLED":
                raise RunInterrupted(f"interrupted by {signals.name}", int(signals.number or signal.SIGINT))
            if result.status == "FAILED":
                import mlflow

                mlflow.set_tags({"error": f"{len(result.failed)} of {len(plan)} cell(s) failed: "
                                          + "; ".join(c.label for c in result.failed)[:3900],
                                 "error_type": "SweepCellsFailed"})
                mlflow.end_run(status="FAILED")
    except RunInterrupted:
        if result is None:
            raise
    finally:
        cluster.close()
    if result.status == "FAILED":
        result.notice = _notify_failed_cells(result, log)
    log(f"sweep {name}: {result.status}; {sum(c.status == 'FINISHED' for c in result.cells)} finished, "
        f"{len(result.failed)} failed, {sum(c.status == 'KILLED' for c in result.cells)} killed, "
        f"{sum(c.status == 'NOT_STARTED' for c in result.cells)} not started, in {result.seconds:.1f} s")
    return result


def _notify_failed_cells(result: SweepResult, log) -> dict[str, Any] | None:
    """ONE failed-run notice for a sweep with failed cells (its cells run with ``notify=False``),
    listing each failed cell, its parameters, child run and error, through the delivery channels of
    the environment (:func:`~qpo.workbench.run_control.notify_failed_run`; none configured: none)."""
    from qpo.workbench.run_control import notify_failed_run

    failed = result.failed
    lines = [f"cell {c.index} ({c.label}): {c.status}" + (f", run {c.run_id}" if c.run_id else "")
             + (f": {c.error}" if c.error else "") for c in failed]
    error = (f"sweep {result.pipeline}: {len(failed)} of {len(result.cells)} cell(s) failed (parent run "
             f"{result.parent_run_id}):\n" + "\n".join(lines))
    try:
        report = notify_failed_run(result.parent_run_id, pipeline=result.pipeline, status="FAILED", error=error,
                                   tracking_uri=result.tracking_uri, log=log)
    except Exception as exc:  # noqa: BLE001 - a notice that cannot go is logged; the sweep's result stands
        log(f"failed-cells notice not sent: {type(exc).__name__}: {exc}")
        return None
    if report and report.get("sent"):
        log(f"sweep {result.pipeline}: failed-cells notice sent: " + ", ".join(s["channel"] for s in report["sent"]))
    return report


def remote_tracking_warning(kind: str, scheduler_address: str, tracking_uri: str) -> str | None:
    """A warning when cells run on a team's scheduler on another host while the runs are tracked in
    a local file (the SQLite default, or a file store): a worker elsewhere cannot reach that file,
    so its cells would fail to log. None when the cluster is local, on this host, or the tracking
    store is a server."""
    from urllib.parse import urlsplit

    if kind == "local":
        return None
    host = (urlsplit(scheduler_address if "://" in scheduler_address else f"tcp://{scheduler_address}").hostname
            or "").lower()
    if host in ("127.0.0.1", "localhost", "::1", ""):
        return None
    scheme = urlsplit(tracking_uri).scheme.lower()
    if scheme in ("http", "https", "databricks") or scheme.startswith("postgresql") or scheme.startswith("mysql"):
        return None
    return (f"warning: the cells run on the scheduler at {scheduler_address}, but the runs are tracked in a local file "
            f"({scheme or 'file'}:): a worker on another host cannot reach it. Point MLFLOW_TRACKING_URI at a "
            f"tracking server (`qpo ui mlflow`) that every worker reaches")


def _report(parent, name, experiment, uri, names, plan, outcomes, stopped, metric, log,
            strategies: list[str] | None = None) -> SweepResult:
    """Log the cells' statuses, the comparison table and the figure to the parent run."""
    import tempfile

    superseded = repair_children(parent.run_id, uri, outcomes, stopped, log)
    cells = []
    for i, cell in enumerate(plan):
        o = outcomes.get(i) or {"status": "NOT_STARTED", "error": f"not started: interrupted by {stopped}"}
        cells.append(SweepCell(index=i, parameters=own(cell, names), **{k: v for k, v in o.items()
                                                             if k not in ("index", "parameters")}))
    raw = [asdict(c) for c in cells]
    table = comparison_table(raw, names)
    failed = [c for c in cells if c.status in _FAILED]
    status = "KILLED" if stopped else "FAILED" if failed else "FINISHED"
    counts = {s: sum(c.status == s for c in cells) for s in ("FINISHED", "FAILED", "INVALID_DATA", "KILLED",
                                                              "NOT_STARTED")}
    parent.log_metrics({"cells_finished": counts["FINISHED"], "cells_failed": counts["FAILED"] + counts["INVALID_DATA"],
                        "cells_killed": counts["KILLED"], "cells_not_started": counts["NOT_STARTED"]})
    parent.log_dict({"pipeline": name, "names": names, "status": status, "cells": raw, "strategies": strategies},
                    CELLS_ARTIFACT)
    parent.set_tags({"qpo.sweep_status": status,
                     "qpo.failed_cells": "; ".join(f"{c.index} ({c.label}): {c.error}" for c in failed)[:4000] or "none",
                     **({"qpo.superseded_runs": " ".join(superseded)[:4000]} if superseded else {})})
    with tempfile.TemporaryDirectory(prefix="qpo-sweep-") as tmp:
        csv, html = Path(tmp) / "comparison.csv", Path(tmp) / "comparison.html"
        table.to_csv(csv, index=False)
        html.write_text(table.to_html(index=False, na_rep="", float_format=lambda v: f"{v:.6g}"), encoding="utf-8")
        parent.log_artifact(csv, "sweep")
        parent.log_artifact(html, "sweep")
    chosen = metric or default_metric(table, names, strategies)
    if chosen is not None and chosen in table.columns:
        parent.log_figure(sweep_figure(table, chosen, names), f"sweep_{chosen}")
    elif metric is not None:
        log(f"metric {metric!r} was not recorded by any cell: no figure")
    return SweepResult(pipeline=name, status=status, parent_run_id=parent.run_id, experiment=experiment,
                       tracking_uri=uri, names=names, cells=cells, metric=chosen, signal=stopped, table=table,
                       superseded=superseded)


__all__ = ["STOP_WAIT_S", "SUPERSEDED_TAG", "SweepCell", "SweepRecord", "SweepResult", "grid_cells", "load_cells", "read_sweep",
           "run_sweep", "sweep_figure"]
