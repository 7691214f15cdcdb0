"""Scheduled Papermill pipelines.

A pipeline is a TOML file in ``pipelines/`` naming a parameterized notebook, its MLflow experiment, its schedule,
and which notebook parameter names the price data. ``run_pipeline``:

1. resolves the parameters (notebook defaults < pipeline file < caller) and refuses, before anything is written, an
   unknown parameter name or a portfolio the store does not hold (the valid names listed; a missing store is
   refused, never created);
2. loads the price data and validates it with Great Expectations: an error stops here, before any notebook, report
   or MLflow run is written (the Data Docs report is left); a warning (a large one-day move to review) is reported
   and the run goes on: the run's ``data_warnings``, the MLflow tag ``qpo.data_warnings`` and the
   ``validation.json`` artifact; an ``as_of`` parameter outside the data's dates is invalid data too;
3. creates the MLflow tracking store if needed (once, under a file lock: first runs may start together; a corrupt
   ``mlflow.db`` raises :class:`~qpo.errors.CorruptFileError`), starts an MLflow run (code version, data hash,
   parameters), executes the notebook with Papermill into ``runs/<pipeline>/<time>-<run id>/notebook.ipynb``;
   a kernel that cannot start (it dies or does not answer before any cell: papermill #511, #776) is started again
   after :data:`KERNEL_START_BACKOFF_S` (1 s, 3 s) in the same MLflow run (tag ``qpo.kernel_start_attempts``); one
   that never starts ends the MLflow run FAILED ("kernel could not start in 3 attempt(s): ...") and raises
   :class:`KernelStartError`: the run could not start (``qpo pipeline run`` exits 3; the scheduler retries it);
4. exports ``report.html`` (code hidden, plotly figures inlined; a data-warnings banner at its top when the
   validation warned), logs the notebook, the report, every ``record``-ed number as a metric and every
   ``show_figure``-d figure to the run; a notebook that declares a ``run_id`` parameter receives the MLflow run's id;
5. on an error in the notebook keeps the executed notebook (and its HTML), logs them, marks the MLflow run FAILED
   with the error, and returns status ``FAILED``;
6. on SIGINT (Ctrl-C) or SIGTERM stops the kernel, keeps and logs the partial notebook, marks the MLflow run KILLED
   with the reason ("interrupted by SIGTERM") and returns status ``KILLED`` with the signal (see
   :mod:`qpo.workbench.run_control`);
7. on a kernel that dies (killed, out of memory) or a cell that runs longer than the definition's
   ``execution_timeout`` (seconds; none by default) keeps the partial notebook with the cell marked failed, marks
   the MLflow run FAILED with the reason in the tag ``qpo.failure`` ("kernel died in cell 3 (killed by SIGKILL:
   ...)", "cell timed out after 60 s in cell 4") and returns ``FAILED``. Every FAILED run sends a failed-run notice
   through the delivery channels configured in the environment (:mod:`qpo.operations.delivery`; none configured:
   none sent). Each run records its pid and host, so that a run whose process vanished can be marked FAILED later
   (:func:`~qpo.workbench.run_control.repair_orphaned_runs`, ``qpo pipeline runs --repair``).

Before anything is written, a runs folder (or MLflow artifacts folder) that is read-only, not a folder, or on a disk
with less than ``QPO_MIN_FREE_MB`` (default 100) MB free is refused with a
:class:`~qpo.workbench.run_control.RunsFolderError` naming the folder and what is needed.
"""
from __future__ import annotations

import ast
import datetime as dt
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from qpo import config
from qpo.errors import DataError, PipelineError, QpoError, RunInterrupted, StoreError, UnknownOptionError
from qpo.workbench._pipeline_spec import PipelineSpec, available_pipelines, load_spec, pipelines_dir  # noqa: F401

#: the purpose of the system actor a pipeline reads the store as (``system:pipeline``)
PIPELINE_ACTOR = "pipeline"


def notebook_parameters(notebook: Path) -> dict[str, dict]:
    """The notebook's ``parameters`` cell: name -> {default, type, help} (via papermill)."""
    import papermill as pm

    return {k: {"default": v["default"], "type": v["inferred_type_name"], "help": v["help"]}
            for k, v in pm.inspect_notebook(str(notebook)).items()}


def _default_value(text: str):
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def resolve_parameters(spec: PipelineSpec, overrides: dict[str, Any]) -> dict[str, Any]:
    declared = notebook_parameters(spec.notebook)
    unknown = sorted(set(overrides) - set(declared))
    if unknown:
        raise UnknownOptionError(f"parameter(s) {unknown} of pipeline {spec.name!r}; parameter", unknown[0], declared)
    stray = sorted(set(spec.parameters) - set(declared))
    if stray:
        raise PipelineError(f"pipelines/{spec.name}.toml sets {stray} under [parameters], which "
                            f"{spec.notebook.name} does not declare; it declares: {', '.join(declared)}")
    params = {k: _default_value(v["default"]) for k, v in declared.items()}
    params.update(spec.parameters)
    params.update(overrides)
    for name, value in params.items():
        _check_type(name, value, declared[name])
    source = spec.data_source_parameter
    if source:
        from qpo.data.loaders import is_file_source

        if is_file_source(params.get(source)):
            # a file: the notebook runs in its own folder, so hand it the path the caller meant
            params[source] = str(Path(params[source]).expanduser().resolve())
    return params


_TYPES = {"int": (int,), "float": (int, float), "bool": (bool,), "str": (str,), "Optional[str]": (str, type(None)),
          "Optional[int]": (int, type(None)), "Optional[float]": (int, float, type(None))}


def _check_type(name: str, value, declared: dict) -> None:
    allowed = _TYPES.get(declared["type"])
    if allowed is None:
        return
    ok = isinstance(value, allowed) and not (isinstance(value, bool) and bool not in allowed)
    if not ok:
        raise PipelineError(f"parameter {name} must be {declared['type']} ({declared['help']}), "
                            f"got {value!r} ({type(value).__name__})")


@dataclass
class PipelineRun:
    pipeline: str
    status: str  # FINISHED | FAILED | INVALID_DATA | KILLED
    run_id: str | None
    notebook: str | None
    html: str | None
    tracking_uri: str
    experiment: str
    parameters: dict[str, Any]
    metrics: dict[str, Any] = field(default_factory=dict)
    data_hash: str | None = None
    data_docs: str | None = None
    error: str | None = None
    seconds: float = 0.0
    data_warnings: list[str] = field(default_factory=list)  # validation warnings: reported, did not stop the run
    signal: str | None = None  # KILLED: the signal that stopped the run (SIGINT, SIGTERM)
    failure: str | None = None  # FAILED: the short reason (MLflow tag qpo.failure): "kernel died in cell 3", ...
    notice: dict | None = None  # FAILED: the failed-run notice's delivery (None: no channel configured)

    @property
    def ok(self) -> bool:
        return self.status == "FINISHED"

    def to_json(self) -> str:
        """One line of JSON; a parameter's text beyond 200 characters is cut (``...(N characters)``): the line stays
        short whatever was passed."""
        doc = asdict(self)
        if isinstance(doc.get("parameters"), dict):
            doc["parameters"] = {k: (v[:200] + f"...({len(v):,} characters)" if isinstance(v, str) and len(v) > 200
                                     else v) for k, v in doc["parameters"].items()}
        return json.dumps(doc, default=str)


def export_html(notebook: Path, html: Path) -> Path:
    """Code-free HTML of an executed notebook that needs no network: plotly.js is inlined by
    :func:`qpo.workbench.show_figure`, and the template drops nbconvert's CDN scripts."""
    import nbformat
    from nbconvert import HTMLExporter

    templates = Path(__file__).resolve().parent / "templates"
    exporter = HTMLExporter(template_name="qpo_report", extra_template_basedirs=[str(templates)])
    exporter.exclude_input = exporter.exclude_input_prompt = exporter.exclude_output_prompt = True
    body, _ = exporter.from_notebook_node(nbformat.read(str(notebook), as_version=4))
    html.write_text(body, encoding="utf-8")
    return html


def check_portfolio(spec: PipelineSpec, params: dict[str, Any]) -> None:
    """Refuse a portfolio parameter that names no portfolio of the store, listing the ones it holds; read-only: a
    missing store is refused, never created. A scheduled pipeline is an operations job: it reads as the system actor
    ``system:pipeline`` (:data:`PIPELINE_ACTOR`)."""
    from qpo.store import Actor, connect, list_portfolios, session_scope
    from qpo.store.db import safe_url

    name = spec.portfolio_parameter
    if not name or name not in params or params[name] is None:
        if spec.store_required:
            connect(create=False)  # a missing store: MissingStoreError, before a run is created
        return
    with session_scope(connect(create=False), write=False) as session:  # a missing store: MissingStoreError, nothing created
        names = list(list_portfolios(session, Actor.system(PIPELINE_ACTOR))["name"])
    if not names:
        raise StoreError(f"the store at {safe_url(config.database_url())} holds no portfolio; add one, or seed the demo "
                         f"portfolios with `qpo db seed`")
    if params[name] not in names:
        raise UnknownOptionError(f"portfolio (parameter {name} of pipeline {spec.name!r})", params[name], names,
                                 see="see `qpo portfolio list`")


def check_run_data(spec: PipelineSpec, params: dict[str, Any], prices) -> str | None:
    """What keeps valid ``prices`` from supporting this run, found before any run is created (the run then ends
    INVALID_DATA, with no MLflow run and no failure notice), or None: too few dates to tell their frequency (unless the
    run's ``periods_per_year`` says it), or a portfolio whose holdings on the as-of date include names the prices lack."""
    from qpo.data.calendar import infer_frequency
    from qpo.store import Actor, connect, portfolio_holdings, session_scope

    try:
        infer_frequency(prices.index, params.get("periods_per_year"))
    except DataError as exc:
        return str(exc)
    name = spec.portfolio_parameter
    if not name or params.get(name) is None:
        return None
    as_of = params.get(spec.as_of_parameter) if spec.as_of_parameter else None
    try:
        with session_scope(connect(create=False), write=False) as session:
            held = portfolio_holdings(session, Actor.system(PIPELINE_ACTOR), params[name], as_of)
    except QpoError:  # no holdings on that date, say: the notebook says so in its own words
        return None
    missing = sorted(set(held.index) - set(prices.columns))
    if missing:
        shown = ", ".join(missing[:10]) + (f" and {len(missing) - 10} more" if len(missing) > 10 else "")
        return (f"the prices lack {len(missing)} name(s) portfolio {params[name]!r} holds: {shown}; use prices "
                f"that cover its holdings (the store's market data: `qpo data ingest`)")
    return None


def _invalid(base: dict[str, Any], t0: float, error: str, log, data_docs: str | None = None) -> PipelineRun:
    log(f"invalid data: {error}")
    return PipelineRun(status="INVALID_DATA", run_id=None, notebook=None, html=None, error=error, data_docs=data_docs,
                       seconds=time.perf_counter() - t0, **base)


#: seconds before each new attempt to start a kernel that could not start (kernels started at once: papermill #511)
KERNEL_START_BACKOFF_S = (1.0, 3.0)


class KernelStartError(PipelineError):
    """The notebook's kernel could not start in any attempt: the run could not start (``qpo pipeline run``
    exits 3; the scheduler retries it). Its MLflow run ``run_id`` ended FAILED (tag ``qpo.failure``)."""

    run_id: str | None = None


def launch_failure(exc: BaseException) -> str | None:
    """Why the kernel could not start, when ``exc`` is jupyter_client's wait for the kernel's first reply, which comes
    before any cell runs (the kernel died, or did not answer within ``start_timeout``); else None (a cell's failure)."""
    text = str(exc)
    if isinstance(exc, RuntimeError) and text.startswith(("Kernel died before replying", "Kernel didn't respond")):
        return f"{type(exc).__name__}: {text}"[:500]
    return None


def run_pipeline(name: str, parameters: dict[str, Any] | None = None, *, kernel_name: str | None = None, log=None,
                 notify: bool = True, tags: dict[str, str] | None = None, kernel_transport: str | None = None) -> PipelineRun:
    """Run pipeline ``name`` (see the module's docstring). Never raises for a failed notebook or invalid data: the
    returned run says what happened; it raises for an unknown pipeline, parameter or portfolio, a missing store or a
    corrupt tracking store, before anything is written, and :class:`KernelStartError` for a kernel that never started.
    A SIGINT or SIGTERM returns status ``KILLED`` (in the main thread; see :mod:`run_control`). A FAILED run sends a
    failed-run notice through the configured delivery channels unless ``notify`` is False (e.g. a sweep that reports
    its failed cells once). ``tags`` are added to the MLflow run's (a sweep's ``mlflow.parentRunId`` nests it). The
    kernel starts on Unix sockets (``kernel_transport="ipc"``, the default on POSIX): no TCP port to race for when
    several runs start at once, from cron, the scheduler or a sweep (papermill #511); ``"tcp"`` elsewhere."""
    from qpo.workbench.run_control import SignalGuard, check_run_folders, notify_failed_run, signal_name, withdraw_champion

    log, t0 = log or (lambda msg: None), time.perf_counter()
    spec = load_spec(name)
    params = resolve_parameters(spec, dict(parameters or {}))
    uri = config.tracking_uri()
    check_run_folders(run_folders(uri))  # a read-only runs folder, a full disk: refused, nothing written
    base: dict[str, Any] = dict(pipeline=name, tracking_uri=uri, experiment=spec.experiment, parameters=params)
    state: dict[str, Any] = {"tags": dict(tags or {})}
    try:
        with SignalGuard(kernel_transport) as guard:
            check_portfolio(spec, params)
            run = _validate_and_run(spec, params, base, guard, state, t0, kernel_name, log)
        if run.status == "FAILED":
            withdraw_champion(run.run_id, f"its run {run.run_id} ended FAILED", log)
        if run.status == "FAILED" and notify:  # loud: a notice through the delivery channels, if any is configured
            run.notice = notify_failed_run(
                run.run_id, pipeline=name, status="FAILED", error=run.error, started=state.get("started"),
                as_of=str(params[spec.as_of_parameter]) if params.get(spec.as_of_parameter) else None,
                tracking_uri=uri, log=log)
        return run
    except RunInterrupted as exc:
        log(f"pipeline {name} KILLED: {exc}")
        withdraw_champion(state.get("run_id"), f"its run {state.get('run_id')} ended KILLED", log)
        nb, html = state.get("notebook"), state.get("html")
        return PipelineRun(status="KILLED", run_id=state.get("run_id"),
                           notebook=str(nb) if nb and Path(nb).exists() else None,
                           html=str(html) if html and Path(html).exists() else None, data_hash=state.get("digest"),
                           error=str(exc), signal=signal_name(exc.signal_number), seconds=time.perf_counter() - t0,
                           **base)


def run_folders(tracking_uri: str) -> list[tuple[Path, str, str]]:
    """The folders a run writes to, checked before it starts: the runs folder, and MLflow's artifacts folder when the
    tracking store is local."""
    folders = [(config.runs_dir(), "the runs folder", "QPO_RUNS_DIR")]
    if not tracking_uri.startswith(("http://", "https://", "databricks")):
        folders.append((config.artifact_root(), "the MLflow artifacts folder", "QPO_MLFLOW_ARTIFACTS"))
    return folders


def _validate_and_run(spec: PipelineSpec, params: dict[str, Any], base: dict[str, Any], guard, state: dict[str, Any],
                      t0: float, kernel_name: str | None, log) -> PipelineRun:
    name = spec.name
    digest = docs = None
    validation: dict[str, Any] | None = None
    from qpo.workbench.prices import as_of_outside_the_book, validate_price_source

    if spec.data_source_parameter:
        from qpo.data import check_as_of, data_hash

        source = params[spec.data_source_parameter]
        start = params.get(spec.data_start_parameter) if spec.data_start_parameter else None
        log(f"validating price data {source!r} from {start or 'the start'}")
        try:
            report, prices = validate_price_source(source, start=start)
        except DataError as exc:  # unreadable: no columns, no dates, no such file
            return _invalid(base, t0, str(exc), log)
        base["data_warnings"] = [str(w) for w in report.warnings]
        if not report.success:
            log(str(report))
            return _invalid(base, t0, report.summary(), lambda m: None, data_docs=report.data_docs)
        if spec.as_of_parameter in params and prices is not None:
            try:
                check_as_of(prices.index, params[spec.as_of_parameter])
            except DataError as exc:
                return _invalid(base, t0, f"parameter {spec.as_of_parameter}: {exc}", log)
        problem = check_run_data(spec, params, prices) if prices is not None else None
        if problem:
            return _invalid(base, t0, problem, log)
        if report.warnings:
            log(f"data warnings, to review (the run goes on): {report.warning_summary()}")
        digest, docs, validation = data_hash(prices), report.data_docs, report.to_dict()
    elif spec.store_required and params.get(spec.as_of_parameter) is not None:
        problem = as_of_outside_the_book(spec.as_of_parameter, params[spec.as_of_parameter])
        if problem:
            return _invalid(base, t0, problem, log)
    state["digest"] = digest

    import papermill as pm

    from qpo.tracking import configure, tracked_run
    from qpo.workbench._pipeline_banner import add_data_warnings_banner
    from qpo.workbench.notebook import read_figures, read_records
    from qpo.workbench.run_control import FAILURE_TAG, RUN_DIR_TAG, kernel_failure, run_owner_tags

    configure(base["tracking_uri"])  # creates the store once (a file lock); refuses a corrupt one
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    out_nb = html = run_id = None
    guard.deferred = True  # from here a signal is recorded and the run ends KILLED, not half-written
    try:
        logged = {k: v for k, v in params.items() if k != "run_id"}
        tags = {"qpo.pipeline": name, "qpo.notebook": spec.notebook.name, "qpo.schedule": spec.schedule,
                **run_owner_tags(), **state["tags"]}  # pid, host: `qpo pipeline runs --repair` tells a live run from a dead one
        if validation is not None and validation["warnings"]:
            tags["qpo.data_warnings"] = "; ".join(f"{w['check']}: {w['unexpected_count']} row(s)"
                                                  for w in validation["warnings"])[:4000]
        with tracked_run(spec.experiment, run_name=f"{name} {stamp}", params=logged, data_hash=digest,
                         tags=tags) as run:
            run_id = state["run_id"] = run.run_id
            if validation is not None:
                run.log_dict(validation, "validation.json")
            state["started"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
            run_dir = config.runs_dir() / name / f"{stamp}-{run.run_id[:8]}"
            run_dir.mkdir(parents=True, exist_ok=True)
            run.set_tags({RUN_DIR_TAG: run_dir})
            out_nb, html = state["notebook"], state["html"] = run_dir / "notebook.ipynb", run_dir / "report.html"
            if "run_id" in params:  # a notebook that declares run_id gets this run's id
                params["run_id"] = run.run_id
            log(f"executing {spec.notebook.name} -> {out_nb}")
            attempt = 1  # a kernel that could not start is started again after KERNEL_START_BACKOFF_S
            try:
                while True:
                    try:
                        guard.execute(pm.execute_notebook, str(spec.notebook), str(out_nb), parameters=params,
                                      kernel_name=kernel_name, cwd=str(spec.notebook.parent), progress_bar=False,
                                      request_save_on_cell_execute=True, start_timeout=300,
                                      execution_timeout=spec.execution_timeout,
                                      kernel_manager_class=guard.kernel_manager_class())
                        break
                    except Exception as exc:
                        why = launch_failure(exc)
                        if why is None or attempt > len(KERNEL_START_BACKOFF_S):
                            raise
                        log(f"kernel could not start (attempt {attempt}): {why}; trying again")
                        time.sleep(KERNEL_START_BACKOFF_S[attempt - 1])  # a signal meanwhile: guard.execute raises it
                        attempt += 1
                        run.set_tags({"qpo.kernel_start_attempts": attempt})
            except BaseException as run_error:
                why = launch_failure(run_error)  # every attempt spent: could not start (exit 3, retried)
                # a dead kernel or a cell timeout: nbclient's raw errors, the notebook not marked failed
                failure = None if why else kernel_failure(run_error, out_nb, timeout=spec.execution_timeout,
                                                          exit_status=guard.kernel_exit_status())
                if not isinstance(run_error, RunInterrupted):
                    state["failure"] = (f"kernel could not start in {attempt} attempt(s): {why}" if why
                                        else failure.reason if failure else _error_text(run_error))
                    run.set_tags({FAILURE_TAG: state["failure"][:4000]})
                if out_nb.exists() and not why:  # keep what the failed run did: its notebook, and its report
                    run.log_artifact(out_nb)
                    try:
                        run.log_artifact(add_data_warnings_banner(export_html(out_nb, html), validation))
                    except Exception as exc:  # noqa: BLE001 - the notebook's own error is the one to report
                        log(f"HTML export of the failed notebook failed too: {exc}")
                        html = state["html"] = None
                if why:
                    start_error = KernelStartError(f"pipeline {name}: {state['failure']} (MLflow run {run_id} FAILED)")
                    start_error.run_id = run_id
                    raise start_error from run_error
                if failure is not None:
                    raise failure from run_error
                raise
            run.log_artifact(out_nb)
            # a finished run always has its report; a banner atop it when the data had warnings
            run.log_artifact(add_data_warnings_banner(export_html(out_nb, html), validation))
            metrics = read_records(out_nb)
            run.log_metrics(metrics)
            run.log_dict({"records": metrics}, "records.json")
            for fig_name, fig in read_figures(out_nb).items():
                run.log_figure(fig, fig_name)
            guard.check()  # a signal while logging: the run was asked to stop
            status = "FINISHED"
        return PipelineRun(status=status, run_id=run_id, notebook=str(out_nb), html=str(html), metrics=metrics,
                           data_hash=digest, data_docs=docs, seconds=time.perf_counter() - t0, **base)
    except (RunInterrupted, KernelStartError):
        raise
    except Exception as exc:  # noqa: BLE001 - reported in the returned run
        error = _error_text(exc)
        log(f"pipeline {name} FAILED: {error}")
        return PipelineRun(status="FAILED", run_id=run_id, notebook=str(out_nb) if out_nb else None,
                           html=str(html) if html and Path(html).exists() else None, data_hash=digest,
                           data_docs=docs, error=error, failure=state.get("failure") or error,
                           seconds=time.perf_counter() - t0, **base)


def _error_text(exc: BaseException) -> str:
    from qpo.workbench.run_control import RunFailure

    if isinstance(exc, RunFailure):  # a dead kernel, a cell timeout: the reason and where the notebook is
        return str(exc)
    ename = getattr(exc, "ename", None)
    if ename:  # papermill.PapermillExecutionError: the notebook's own error
        return f"cell {getattr(exc, 'exec_count', '?')}: {ename}: {getattr(exc, 'evalue', '')}"
    return f"{type(exc).__name__}: {exc}"
