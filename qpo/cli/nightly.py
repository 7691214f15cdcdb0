"""``qpo nightly value|risk``: the nightly book runs (:mod:`qpo.operations.nightly`) from the shell
or a scheduler (cron, systemd timers).

Exit status: 0 done; 1 with ``--fail-on-breach`` (``risk`` only) when the risk run raised new
alerts or left a valued portfolio NOT risk-checked (unknown is not a pass) (for a scheduler that
pages on exit codes); 2 refused (a date without prices, a risk run before the date's valuation, a
bad option, ``--fail-on-breach`` on ``value``); 3 no store. The run's summary is printed once, on
stdout (or, with ``--json``, the run as one JSON line); progress and warnings go to stderr."""
from __future__ import annotations

import sys

from qpo.cli._common import positive_whole
from qpo.cli._signals import HELD, Stopped, hold_signals, report_nightly_stopped

#: the default of ``--max-stale-days`` (qpo.operations._tasks.MAX_STALE_DAYS; kept here so that
#: ``qpo --help`` imports no Dask)
MAX_STALE_DAYS = 5


def _whole_days(text: str) -> int:
    import argparse

    try:
        days = int(text)
    except ValueError:
        days = -1
    if days < 0:
        raise argparse.ArgumentTypeError(f"must be a whole number of trading days of at least 0, got {text!r}")
    return days


#: exit status of ``--fail-on-breach`` when a risk run raised new alerts or left portfolios unchecked
EXIT_NEW_BREACHES = 1


def _cmd(args) -> int:
    HELD.clear()
    status = _nightly(args)
    return 128 + HELD[0] if HELD and status == 0 else status  # a signal after the run was done, while it printed


def _nightly(args) -> int:
    from qpo.errors import MissingStoreError
    from qpo.operations.nightly import run_risk, run_valuation

    if args.fail_on_breach and args.action == "value":
        print("qpo: error: --fail-on-breach applies to `qpo nightly risk` (the valuation checks no limit): run "
              "`qpo nightly value` without it, then `qpo nightly risk --fail-on-breach`", file=sys.stderr)
        return 2
    run = run_valuation if args.action == "value" else run_risk
    result = None
    try:
        result = run(args.as_of, workers=args.workers, chunk_size=args.chunk_size,
                     log=lambda m: print(m, file=sys.stderr, flush=True), max_stale_days=args.max_stale_days)
        hold_signals()  # the run is done: a signal now only changes the exit status, after the one status line
    except MissingStoreError as exc:
        print(f"qpo: error: {exc}", file=sys.stderr)
        return 3
    except Stopped as stop:  # SIGINT / SIGTERM (main() raises it): the ops run is FAILED with it, the cluster closed
        if result is None:
            return report_nightly_stopped(args.action, stop.signum, getattr(stop, "ops_run_id", None), args.json)
        HELD.append(stop.signum)  # it came just as the run ended: the run stands, the exit status says the signal
    if args.json:
        print(result.to_json(), flush=True)
    else:
        print(result.summary(), flush=True)
    if args.fail_on_breach and args.action == "risk" and (result.new_alerts or result.unchecked):
        why = [f"{result.new_alerts} new breach alert(s)"] if result.new_alerts else []
        if result.unchecked:
            why.append(f"{len(result.unchecked)} valued portfolio(s) NOT risk-checked (compliance unknown)")
        print(f"qpo: {' and '.join(why)} on {result.as_of} (--fail-on-breach): exit {EXIT_NEW_BREACHES}",
              file=sys.stderr)
        return EXIT_NEW_BREACHES
    return 0


def register(sub) -> None:
    """Add ``nightly`` to the top-level subparsers."""
    nb = sub.add_parser("nightly", help="the nightly book on Dask: value every portfolio (17:00), risk-check it (18:00)")
    nsub = nb.add_subparsers(dest="action", required=True)
    for action, text in (("value", "value every portfolio on a date and store the valuations"),
                         ("risk", "risk-check every portfolio valued on a date: store the risk, sync and deliver the "
                                  "alerts, write the book report")):
        p = nsub.add_parser(action, help=text, description=text)
        p.add_argument("--as-of", metavar="YYYY-MM-DD", default=None,
                       help="the date (default: the last date of the prices)")
        p.add_argument("--workers", type=positive_whole, default=None,
                       help="local Dask worker processes (default: the usable CPUs; ignored when "
                            "QPO_DASK_SCHEDULER names a running scheduler)")
        p.add_argument("--chunk-size", type=positive_whole, default=None, help="portfolios per Dask task (default: about "
                                                                          "four tasks per worker)")
        p.add_argument("--max-stale-days", type=_whole_days, default=MAX_STALE_DAYS, metavar="DAYS",
                       help=f"a held name without a bar for more than DAYS trading days before the date is unpriced: "
                            f"its portfolios are reported unpriced, not {'valued' if action == 'value' else 'risk-checked'}"
                            f" at a frozen price (default {MAX_STALE_DAYS}; fewer days: carried at its last price, "
                            "flagged stale)")
        p.add_argument("--fail-on-breach", action="store_true",
                       help=(f"exit {EXIT_NEW_BREACHES} when the risk run raised new breach alerts or left a valued "
                             "portfolio not risk-checked" if action == "risk" else
                             "not for the valuation (refused, exit 2): use it on `qpo nightly risk`"))
        p.add_argument("--json", action="store_true", help="print the run as one JSON line")
        p.set_defaults(func=_cmd)
