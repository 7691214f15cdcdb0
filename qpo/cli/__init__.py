"""The ``qpo`` command line. Imports stay inside the commands, so ``qpo --help`` is instant.

The client book's commands (``user``, ``portfolio``, ``rebalance``, ``audit``) live in
:mod:`qpo.cli.book` and :mod:`qpo.cli.rebalance`; their exit statuses and ``--json`` contract are
in :mod:`qpo.cli._common`."""
from __future__ import annotations

import argparse
import json
import sys

from qpo.cli._breaches import _breach_counts, _breach_metrics
from qpo.cli._common import parse_value as _parse_value
from qpo.cli._signals import ENTERED, HELD, Stopped, catches_signals, hold_signals, raise_stopped, report_stopped
from qpo.cli._usage import UsageError, _Parser, _usage_error


def _cmd_validate(args) -> int:
    from qpo.validation import validate_file

    limits = {k: v for k, v in (("max_stale_days", args.max_stale_days),
                                ("max_abs_log_return", args.max_abs_log_return),
                                ("max_adjustment_gap", args.max_adjustment_gap),
                                ("review_abs_return", args.review_abs_return)) if v is not None}
    report = validate_file(args.path, kind=args.kind, ticker=args.ticker, **limits)
    print(report.to_json() if args.json else str(report))
    return 0 if report.success else 1  # warnings are printed and do not fail the command


def _cmd_pipeline_run(args) -> int:
    HELD.clear()
    status = _pipeline_run(args)
    return 128 + HELD[0] if HELD and status == 0 else status


def _pipeline_run(args) -> int:
    """Exit status: 0 FINISHED, 1 FAILED, 2 INVALID_DATA or a corrupt file, 3 could not start
    (unknown pipeline, parameter or portfolio, a missing store), 130 / 143 KILLED by SIGINT / SIGTERM;
    with ``--fail-on-breach``, 1 when a FINISHED run recorded breaches (its definition's ``breach_metrics``)."""
    from qpo.errors import CorruptFileError, QpoError
    from qpo.workbench.pipelines import run_pipeline
    from qpo.workbench.run_control import exit_code

    params = {name: _parse_value(value) for name, value in (args.param or [])}
    log = (lambda m: print(m, file=sys.stderr, flush=True)) if not args.json else None
    try:
        ENTERED.append(True)
        breach_metrics = _breach_metrics(args.name) if args.fail_on_breach else ()
        run = run_pipeline(args.name, params, log=log)
        hold_signals()  # the run is over: a signal now must not add a second status line
    except QpoError as exc:  # could not start: unknown pipeline or parameter, a broken definition
        hold_signals()
        if args.json:
            print(json.dumps({"pipeline": args.name, "status": "ERROR", "error": str(exc)}))
        print(f"qpo: error: {exc}", file=sys.stderr)
        return 2 if isinstance(exc, CorruptFileError) else 3
    if args.json:
        print(run.to_json(), flush=True)
    elif run.status == "KILLED":
        print(f"pipeline   {run.pipeline}: KILLED by {run.signal} after {run.seconds:.1f} s", flush=True)
        if run.notebook:
            print(f"notebook   {run.notebook} (partial)")
        if run.run_id:
            print(f"mlflow run {run.run_id} (experiment {run.experiment!r}) marked KILLED at {run.tracking_uri}")
    else:
        print(f"pipeline   {run.pipeline}: {run.status} in {run.seconds:.1f} s")
        if run.error:
            print(f"error      {run.error}")
        if run.notice:  # a FAILED run's notice through the delivery channels
            sent = ", ".join(s["channel"] for s in run.notice["sent"]) or "nothing"
            print(f"notice     sent: {sent}" + "".join(f"; not delivered: {e}" for e in run.notice["errors"]))
        for warning in run.data_warnings:
            print(f"warning    {warning}")
        if run.notebook:
            print(f"notebook   {run.notebook}")
        if run.html:
            print(f"report     {run.html}")
        if run.data_docs:
            print(f"data docs  {run.data_docs}")
        if run.run_id:
            print(f"mlflow run {run.run_id} (experiment {run.experiment!r}) at {run.tracking_uri}")
            print("           browse it: qpo ui mlflow, then http://127.0.0.1:5000")
    if run.status == "KILLED":
        import signal

        return exit_code(signal.Signals[run.signal or "SIGINT"])
    if args.fail_on_breach and run.status == "FINISHED":
        counted, unread = _breach_counts(run.metrics, breach_metrics)
        if unread:  # a renamed record or a typo must not pass as "no breach"
            print(f"breaches   {', '.join(unread)} not recorded as a number by the run: exit 1 (--fail-on-breach)",
                  file=sys.stderr)
            return 1
        if any(v > 0 for v in counted.values()):
            shown = ", ".join(f"{m} {v:g}" for m, v in counted.items())
            print(f"breaches   {shown}: exit 1 (--fail-on-breach)", file=sys.stderr)
            return 1
    return {"FINISHED": 0, "INVALID_DATA": 2}.get(run.status, 1)  # FAILED: 1; could not start: 3


def _cmd_pipeline_runs(args) -> int:
    """The recent pipeline runs with their status; ``--repair`` first marks FAILED ("process
    disappeared") the RUNNING runs whose process is gone (a SIGKILL, a crash)."""
    from qpo.errors import InvalidValueError
    from qpo.tracking.mlflow_run import missing_store

    if not 1 <= args.limit <= 100_000:  # 0 or -1 ended in MLflow's own traceback
        raise InvalidValueError(f"--limit must be a whole number of runs from 1 to 100000, got {args.limit}")
    absent = missing_store()
    if absent is not None:  # a read creates nothing: no mlflow.db until a run makes one
        if args.json:
            print(json.dumps({"runs": [], "repaired": [], "no_tracking_store": str(absent)}))
        else:
            print(f"no runs yet (no tracking store at {absent})")
        return 0
    from qpo.workbench.run_control import pipeline_runs, repair_orphaned_runs, status_text

    log = (lambda m: print(m, file=sys.stderr, flush=True)) if not args.json else None
    repaired = repair_orphaned_runs(log=log) if args.repair else []
    runs = pipeline_runs(args.limit)
    if args.json:
        print(json.dumps({"runs": runs, "repaired": repaired}, default=str))
        return 0
    for r in runs:
        state = status_text(r)  # FINISHED (2 data warnings), RUNNING (gone)
        print(f"{r['run_id'][:12]}  {str(r['pipeline']):16s} {state:30s} {r['started'] or '':25s} {r['reason'] or ''}")
    if not runs:
        print("no pipeline runs recorded yet")
    if args.repair:
        print(f"repaired: {len(repaired)} run(s) marked FAILED (process disappeared)")
    elif any(r.get("process") == "gone" for r in runs):
        print("runs marked RUNNING (gone) lost their process: `qpo pipeline runs --repair` marks them FAILED")
    return 0


def _cmd_pipeline_list(args) -> int:
    from qpo.errors import QpoError
    from qpo.workbench.pipelines import available_pipelines, load_spec

    broken = []
    for name in available_pipelines():
        try:
            spec = load_spec(name)
        except QpoError as exc:  # one bad definition (a bad cron line): listed with its error, the others shown
            broken.append(name)
            print(f"{name:16s} BROKEN: {' '.join(str(exc).split())}")
            continue
        print(f"{name:16s} {spec.schedule:16s} {spec.notebook.name}  {spec.description}")
    if broken:
        print(f"warning: {len(broken)} pipeline definition(s) do not load: {', '.join(broken)}", file=sys.stderr)
    return 0


def _cmd_models_list(args) -> int:
    from qpo.tracking.mlflow_run import missing_store
    from qpo.tracking.registry import registry_table

    table = registry_table(args.name)
    absent = missing_store()
    if args.json:
        print(table.to_json(orient="records"))
    elif absent is not None:
        print(f"no models yet (no tracking store at {absent}); train one with `qpo pipeline run weekly-retrain`")
    elif table.empty:
        print(f"no versions of {args.name!r} are registered; train one with `qpo pipeline run weekly-retrain`")
    else:
        print(table.drop(columns=["run_id"]).to_string(index=False))
    return 0


def _cmd_models_forecast(args) -> int:
    from qpo.data import check_as_of, load_prices
    from qpo.tracking import load_forecaster

    model = load_forecaster(args.model)
    whole = load_prices(args.source)
    check_as_of(whole.index, args.as_of)  # not a date, or outside the prices: refused (not the last date's)
    prices = whole.loc[:args.as_of] if args.as_of is not None else whole
    keep = [t for t in prices.columns if t in set(model.tickers)]
    import warnings

    with warnings.catch_warnings():  # the look-ahead said once, below, not as a Python warning
        warnings.filterwarnings("ignore", message="look-ahead")
        fc = model.predict(prices[keep] if args.known_only else prices, args.as_of)
    out = {"model": model.metadata["model_uri"], "as_of": str(fc.as_of.date()), "horizon": fc.horizon,
           "forecasts": {k: round(float(v), 6) for k, v in fc.values.items()}, "dropped": fc.dropped,
           "train_end": str(model.train_end.date()), "in_sample": model.in_sample(fc.as_of)}
    if out["in_sample"]:
        print(f"warning: {model.in_sample_text(fc.as_of)}", file=sys.stderr)
    print(json.dumps(out, indent=None if args.json else 1))
    return 0


def _cmd_dashboard(args) -> int:
    from qpo.workbench.dashboard import serve

    serve(args.name, args.port, open_browser=args.open, ip=args.ip)
    return 0  # not reached: this process became the Voila server


def _cmd_db(args) -> int:
    from sqlalchemy.engine import make_url

    from qpo import config
    from qpo.errors import InvalidValueError
    from qpo.store.db import safe_url

    if args.action != "seed" and (args.book_size is not None or args.seed is not None):
        raise InvalidValueError(f"--book and --seed go with `qpo db seed` (a synthetic book), not `qpo db {args.action}`")
    if args.json and args.book_size is None:
        raise InvalidValueError("--json goes with `qpo db seed --book N` (the synthetic book's summary)")
    if args.seed is not None and args.book_size is None:
        raise InvalidValueError("--seed needs --book N (the seed of a synthetic book of N portfolios)")
    args.seed = 0 if args.seed is None else args.seed
    if args.action == "url":  # no connection: this is what to check when the store is unreachable
        from qpo.errors import StoreError

        raw = config.database_url()
        try:
            print(safe_url(str(make_url(raw))))
        except Exception as exc:  # noqa: BLE001 - ArgumentError, or ValueError of a bad port: the URL's own fault
            raise StoreError(f"QPO_DATABASE_URL is not a database URL ({safe_url(raw)!r}): write it "
                             "dialect+driver://user:password@host:port/database, or sqlite:///path/qpo.db") from exc
        return 0
    from qpo.store import connect
    from qpo.workbench.demo import seed_demo

    engine = connect()
    url = safe_url(engine.url.render_as_string(hide_password=False))
    if args.action == "upgrade":
        print(f"schema at head: {url}")
    elif args.action == "seed" and args.book_size is not None:
        from qpo.book.synthetic import seed_book

        summary = seed_book(engine, args.book_size, seed=args.seed)
        if args.json:  # the users added and the e-mail to name with --as, for scripts
            from qpo.cli._common import emit_json

            emit_json({**summary.to_dict(), "store": url, "hint": summary.as_hint()})
        else:
            print(summary.text(url))
    elif args.action == "seed":
        print(f"seeded {seed_demo(engine)} demo portfolios into {url}")
    return 0


MLFLOW_UI_WORKERS_ENV = "QPO_MLFLOW_UI_WORKERS"


def _ui_workers(given: int | None) -> int:
    import os

    from qpo.errors import InvalidValueError

    text = str(given) if given is not None else os.environ.get(MLFLOW_UI_WORKERS_ENV, "1")
    try:
        workers = int(text)
    except ValueError:
        workers = 0
    if not 1 <= workers <= 16:
        source = "--workers" if given is not None else MLFLOW_UI_WORKERS_ENV
        raise InvalidValueError(f"{source} must be a whole number of web workers from 1 to 16, got {text!r}")
    return workers


def _cmd_ui_mlflow(args) -> int:
    """MLflow's tracking server (UI, REST API, artifact serving) with a fixed, small number of
    processes: ``--workers`` web workers (default 1, or ``QPO_MLFLOW_UI_WORKERS``) and no
    job-execution consumers (set ``MLFLOW_SERVER_ENABLE_JOB_EXECUTION=true`` to have them). Its
    metadata store (``QPO_MLFLOW_BACKEND_URI``, else ``mlflow.db``) is reached and migrated
    (``mlflow db upgrade``) first: a bad one is refused in one line, without its password."""
    import os

    from qpo.tracking.server import server_command
    from qpo.workbench.dashboard import exec_server

    workers = _ui_workers(args.workers)
    host = args.host
    server = server_command(args.port, workers, host=host)
    os.environ.update(server.env)
    shown = "127.0.0.1" if host in ("127.0.0.1", "localhost", "::1") else (host if host not in ("0.0.0.0", "::")
                                                                           else "<this machine's address>")
    print(f"MLflow tracking server on http://{shown}:{args.port} ({workers} worker(s)): {server.description}; "
          f"clients log to it with MLFLOW_TRACKING_URI=http://{shown}:{args.port}", flush=True)
    if shown != "127.0.0.1":
        print(f"qpo: listening on {host}: MLflow's server has no login and no TLS; put a proxy with both in front "
              "of it before a team's machines reach it", file=sys.stderr, flush=True)
    exec_server(server.argv)
    return 0  # not reached: this process became the MLflow server


def _cmd_lab(args) -> int:
    import os

    from qpo import config
    from qpo.workbench.dashboard import exec_server

    cmd = [sys.executable, "-m", "jupyterlab", f"--port={args.port}", "--ServerApp.ip=127.0.0.1",
           f"--ServerApp.root_dir={config.project_root()}", "--LabApp.news_url=",
           "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"] + (args.jupyter_args or [])
    if not args.open:
        cmd.append("--no-browser")
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")  # containers and CI machines often run as root
    exec_server(cmd)
    return 0  # not reached: this process became JupyterLab


def build_parser() -> argparse.ArgumentParser:
    from qpo.cli import _common, book, data, nightly, operations, rebalance, schedule
    from qpo.cli.sweep import register_sweep

    p = _Parser(prog="qpo", description="qpo: the quantum portfolio optimizer workbench",
                                epilog="The client book's commands (user, portfolio, rebalance, audit) exit 0 when "
                                       "done, 2 for refused input (nothing written), 3 when there is no store to read, "
                                       "4 when access is refused.")
    _common.add_actor_option(p, top=True)
    sub = p.add_subparsers(dest="command", required=True)

    v = sub.add_parser("validate", help="validate a price panel or OHLCV file with Great Expectations")
    v.add_argument("path", help="CSV or Parquet file: a wide price panel or long OHLCV bars")
    v.add_argument("--kind", choices=["auto", "prices", "ohlcv"], default="auto")
    v.add_argument("--ticker", metavar="SYMBOL", help="whose bars a one-ticker OHLCV file without a 'ticker' column "
                                                      "holds (an Alpha Vantage CSV download)")
    v.add_argument("--max-stale-days", type=int, help="most days a price may stay unchanged (default 10)")
    v.add_argument("--max-abs-log-return", type=float,
                   help="largest |one-day log return| (default 1.0: a fall of 63%%, a rise of 172%%)")
    v.add_argument("--max-adjustment-gap", type=float,
                   help="OHLCV: largest gap between the adjusted-close log return and the one implied by "
                        "close, split and dividend (default 0.05)")
    v.add_argument("--review-abs-return", type=float,
                   help="a warning, not an error: one-day |simple return| above this is listed to review "
                        "(default 0.4)")
    v.add_argument("--json", action="store_true", help="print the report as one JSON line")
    v.set_defaults(func=_cmd_validate)

    pl = sub.add_parser("pipeline", help="scheduled Papermill pipelines")
    plsub = pl.add_subparsers(dest="action", required=True)
    run = plsub.add_parser("run", help="run a pipeline now")
    run.add_argument("name", help="pipeline name (see `qpo pipeline list`)")
    run.add_argument("-p", "--param", nargs=2, action="append", metavar=("NAME", "VALUE"),
                     help="set a notebook parameter (value parsed as YAML)")
    run.add_argument("--json", action="store_true", help="print one JSON line: run id, status, paths")
    run.add_argument("--fail-on-breach", action="store_true",
                     help="exit 1 when the run recorded breaches (its definition's breach_metrics: new alerts and "
                          "unchecked portfolios of the risk run, compliance breaches of the daily report), for "
                          "schedulers that page on exit codes; refused for a pipeline that counts none")
    run.set_defaults(func=_cmd_pipeline_run)
    runs = plsub.add_parser("runs", help="list recent pipeline runs; --repair marks runs whose process is gone FAILED")
    runs.add_argument("--repair", action="store_true",
                      help="mark FAILED (\"process disappeared\") the RUNNING runs whose process is gone")
    runs.add_argument("--limit", type=int, default=20, help="how many runs to list, newest first (default 20)")
    runs.add_argument("--json", action="store_true", help="print one JSON line: runs and repaired")
    runs.set_defaults(func=_cmd_pipeline_runs)
    ls = plsub.add_parser("list", help="list the pipelines and their schedules")
    ls.set_defaults(func=_cmd_pipeline_list)
    register_sweep(plsub)

    mo = sub.add_parser("models", help="the return forecasters in MLflow's model registry")
    mosub = mo.add_subparsers(dest="action", required=True)
    mls = mosub.add_parser("list", help="every registered version: aliases, out-of-sample IC, promotion and reason")
    mls.add_argument("--name", default="qpo-return-forecaster")
    mls.add_argument("--json", action="store_true")
    mls.set_defaults(func=_cmd_models_list)
    mfc = mosub.add_parser("forecast", help="a registered forecaster's forecasts on a price source")
    mfc.add_argument("--model", default="models:/qpo-return-forecaster@champion",
                     help="models:/<name>@<alias> or models:/<name>/<version>")
    mfc.add_argument("--source", default="sp500", help="bundled source name or a CSV/Parquet price file")
    mfc.add_argument("--as-of", default=None, help="forecast date YYYY-MM-DD (default: the last date)")
    mfc.add_argument("--known-only", action="store_true", help="forecast only the tickers the model was trained on")
    mfc.add_argument("--json", action="store_true")
    mfc.set_defaults(func=_cmd_models_forecast)

    d = sub.add_parser("dashboard", help="serve a Voila advisor dashboard on localhost")
    d.add_argument("name", help="dashboard name, e.g. advisor")
    d.add_argument("--port", type=_common.port_number, default=8866, help="the port to listen on, 1-65535 (default 8866)")
    d.add_argument("--open", action="store_true", help="open a browser")
    d.add_argument("--ip", type=_common.listen_address, default="127.0.0.1",
                   help="the address to listen on (default 127.0.0.1: this machine only; for a team, put TLS in front)")
    d.set_defaults(func=_cmd_dashboard)

    db = sub.add_parser("db", help="the store: migrate, seed demo portfolios, show URL")
    db.add_argument("action", choices=["upgrade", "seed", "url"])
    db.add_argument("--book", type=int, default=None, metavar="N", dest="book_size",
                    help="seed: a synthetic book of N client portfolios (scale tests) instead of the demo portfolios")
    db.add_argument("--seed", type=int, default=None, metavar="S", help="with --book: the random seed (default 0)")
    db.add_argument("--json", action="store_true", help="with seed --book: the summary (users added, --as) as JSON")
    db.set_defaults(func=_cmd_db)

    lab = sub.add_parser("lab", help="JupyterLab on the workbench (notebooks/, voila_apps/), on localhost")
    lab.add_argument("--port", type=int, default=8888)
    lab.add_argument("--open", action="store_true", help="open a browser")
    lab.add_argument("jupyter_args", nargs="*", help="more JupyterLab options, after --")
    lab.set_defaults(func=_cmd_lab)

    ui = sub.add_parser("ui", help="start a web UI")
    uisub = ui.add_subparsers(dest="which", required=True)
    m = uisub.add_parser("mlflow", help="the MLflow tracking server and UI (metadata: $QPO_MLFLOW_BACKEND_URI or "
                                        "mlflow.db; artifacts served from $QPO_MLFLOW_ARTIFACTS)")
    m.add_argument("--port", type=int, default=5000)
    m.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1, this machine only; 0.0.0.0 for a team's workers, "
                        "behind a proxy with TLS and a login)")
    m.add_argument("--workers", type=int, default=None,
                   help="web worker processes (default 1, or $QPO_MLFLOW_UI_WORKERS); each holds ~250 MB")
    m.set_defaults(func=_cmd_ui_mlflow)

    book.register(sub)
    data.register(sub)
    operations.register(sub)
    nightly.register(sub)
    rebalance.register(sub)
    schedule.register(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    """The command line. ``qpo pipeline run`` and ``qpo nightly value|risk`` catch SIGINT and
    SIGTERM from here on, before their heavy imports, so a signal at any moment ends them with one
    status line (the JSON line with ``--json``) and 130 / 143."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not catches_signals(argv):
        return _main(argv)
    import signal

    previous = {sig: signal.signal(sig, raise_stopped) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        return _main(argv)
    except Stopped as stop:
        return report_stopped(argv, stop.signum)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _main(argv: list[str]) -> int:
    try:
        args = build_parser().parse_args(argv)
    except UsageError as exc:  # argparse's own message and exit status 2, and JSON for the book's commands
        return _usage_error(exc, argv)
    from qpo.errors import QpoError

    try:
        try:
            return int(args.func(args) or 0)
        except BrokenPipeError:
            raise
        except (OSError, UnicodeEncodeError) as exc:  # a path the system refuses (too long, not a folder, not UTF-8)
            from qpo.cli._common import a_path_refused, system_refused

            if not a_path_refused(exc):
                raise  # a lost connection, a timeout: not a path's fault
            from qpo.errors import InvalidValueError

            raise InvalidValueError(system_refused(exc)) from None
    except QpoError as exc:
        if getattr(args, "book", False):  # the book's commands: JSON errors, exit 2 / 3 / 4
            from qpo.cli import _common

            return _common.fail_output(args, exc, _common.exit_status(exc))
        if getattr(args, "json", False):  # --json: one JSON line on stdout, whatever went wrong
            print(json.dumps({"status": "ERROR", "error": str(exc), "kind": type(exc).__name__, "exit": 2}))
        print(f"qpo: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # Ctrl-C outside a pipeline run: stop quietly, as a shell expects
        print("qpo: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `qpo audit | head`: the reader left; stop quietly, as a shell expects
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
