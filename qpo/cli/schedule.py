"""``qpo schedule``: run the pipelines on their cron schedules, unattended.

- ``qpo schedule run [--once] [--missed run_once|skip] [--retries N] [--backoff S] [--grace S]``
  runs in the foreground until SIGINT or SIGTERM (``--once``: the runs due now, then exit), one
  log line per decision on standard error (see :mod:`qpo.workbench.scheduler`). Exit 0; 1 when a
  run it decided ended FAILED, KILLED, INVALID_DATA or could not start, or a definition was refused
  (a bad cron line: reported loudly, the other pipelines run); 2 for a bad option; 130 / 143 when
  stopped by SIGINT / SIGTERM (a running pipeline is stopped and recorded KILLED).
- ``qpo schedule show [--json]``: each scheduled pipeline's next run, dependency, missed-run policy
  and last run; a definition that does not load (a bad cron line) is listed REFUSED with its
  error and a warning on standard error, the others shown (exit 0).
- ``qpo schedule crontab``: the equivalent cron lines, for those who prefer cron; a refused
  definition has no line, a comment says why.
"""
from __future__ import annotations

import json
import os
import sys


def _cmd_run(args) -> int:
    import math
    import signal

    from qpo.errors import InvalidValueError
    from qpo.workbench.run_control import exit_code, repair_orphaned_runs
    from qpo.workbench.scheduler import ScheduleOptions, Scheduler, SubprocessRunner

    if not (math.isfinite(args.run_timeout) and args.run_timeout >= 0):  # -5 meant no limit, and claims that never expire
        raise InvalidValueError(f"--run-timeout must be 0 (no limit) or a number of seconds > 0, got {args.run_timeout:g}")
    timeout = args.run_timeout if args.run_timeout > 0 else None
    options = ScheduleOptions(retries=args.retries, backoff=args.backoff, grace=args.grace, poll=args.poll,
                              missed=args.missed, run_timeout=timeout)
    runner = SubprocessRunner(timeout=timeout)
    # runs left RUNNING by a dead process (SIGKILL, a crash) are marked FAILED, with a notice, on start
    # and on every tick, before anything new runs
    scheduler = Scheduler(runner=runner, options=options, repair=repair_orphaned_runs)
    runner.log = lambda m: scheduler.log("runner", detail=m)
    received: list[int] = []

    def handle(signum, frame) -> None:
        if not received:
            scheduler.log("stopping", detail=f"{signal.Signals(signum).name} received: stopping after the running "
                                             f"pipeline is stopped and recorded")
        received.append(signum)
        scheduler.stop()
        runner.signal(signum)

    previous = {sig: signal.signal(sig, handle) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        names = ", ".join(f"{n} ({s.schedule}{', after ' + s.after if s.after else ''})"
                          for n, s in sorted(scheduler.specs.items()))
        scheduler.log("start", detail=f"scheduler {scheduler.id} (process {os.getpid()}), state "
                                      f"{scheduler.state.path}; pipelines: {names or 'none scheduled'}")
        status = scheduler.run(once=args.once)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if received:
        return exit_code(received[0])
    return status


def _when(iso: str | None) -> str:
    import datetime as dt

    return dt.datetime.fromisoformat(iso).strftime("%Y-%m-%d %H:%M %a") if iso else ""


def _warn_refused(refused: dict[str, str]) -> None:
    if refused:
        print(f"warning: {len(refused)} pipeline definition(s) refused, not scheduled: {', '.join(sorted(refused))} "
              "(fix the file; `qpo schedule run` reports them too)", file=sys.stderr, flush=True)


def _cmd_show(args) -> int:
    from qpo.workbench.scheduler import schedule_table

    refused: dict[str, str] = {}
    rows = schedule_table(refused=refused)
    _warn_refused(refused)
    if args.json:
        print(json.dumps({"pipelines": rows, "refused": [{"pipeline": n, "error": e} for n, e in sorted(refused.items())]},
                         default=str))
        return 0
    if not rows and not refused:
        print("no pipeline has a schedule (pipelines/*.toml: schedule = \"0 18 * * 1-5\")")
        return 0
    header = f"{'pipeline':20s} {'schedule':16s} {'next run':22s} {'after':12s} {'missed':9s} last scheduled run"
    print(header)
    for r in rows:
        last = f"{_when(r['last_due'])} {r['last_status']}" if r["last_due"] else "-"
        print(f"{r['pipeline']:20s} {r['schedule']:16s} {_when(r['next_run']):22s} {r['after'] or '-':12s} "
              f"{r['missed']:9s} {last}")
    for name, why in sorted(refused.items()):  # after the good ones: each with its error
        print(f"{name:20s} REFUSED: {' '.join(why.split())}")
    return 0


def _cmd_crontab(args) -> int:
    from qpo.workbench.scheduler import TZ_ENV, crontab_text, schedule_timezone, scheduled_specs

    tz = schedule_timezone()  # a zone that is none (QPO_SCHEDULE_TZ=Mars/Olympus) is refused, as `schedule show` does
    refused: dict[str, str] = {}
    specs = scheduled_specs(refused)
    _warn_refused(refused)
    # the zone `schedule run` uses, when QPO_SCHEDULE_TZ or TZ names it (else cron's zone is the machine's, as ours)
    zone = getattr(tz, "key", None) if os.environ.get(TZ_ENV) or os.environ.get("TZ") else None
    sys.stdout.write(crontab_text(specs, tz_name=zone, refused=refused))
    return 0


def register(sub) -> None:
    """Add ``schedule run | show | crontab`` to the top-level subparsers."""
    from qpo.workbench.scheduler import RUN_TIMEOUT_S
    sc = sub.add_parser("schedule", help="run the pipelines on their cron schedules, unattended; show them; cron lines",
                        description="The pipelines' cron schedules (pipelines/*.toml: schedule, after, missed), "
                                    "run by a foreground scheduler.", allow_abbrev=False)
    scsub = sc.add_subparsers(dest="schedule_action", required=True, metavar="{run,show,crontab}")
    run = scsub.add_parser("run", help="run the pipelines when due, in the foreground (Ctrl-C stops)",
                           description="Run each pipeline when its schedule is due: after its `after` pipeline's "
                                       "run of the same date, retrying a run that could not start, with a policy "
                                       "for runs missed while no scheduler ran, claiming each run in "
                                       "$QPO_HOME/schedule/state.json so that two schedulers never run it twice. "
                                       "One log line per decision on standard error.", allow_abbrev=False)
    run.add_argument("--once", action="store_true", help="run what is due now (and missed runs, by the policy), then exit")
    run.add_argument("--missed", choices=["run_once", "skip"], default=None,
                     help="runs missed while no scheduler ran, for every pipeline: run the latest once, or skip them "
                          "(default: each definition's `missed`, else run_once)")
    run.add_argument("--retries", type=int, default=3, help="retries of a run that could not start (default 3)")
    run.add_argument("--backoff", type=float, default=60.0,
                     help="seconds before the first retry; each further one waits twice as long (default 60)")
    run.add_argument("--grace", type=float, default=300.0,
                     help="a run due this many seconds before the start is run as late, not missed (default 300)")
    run.add_argument("--run-timeout", type=float, default=RUN_TIMEOUT_S, metavar="S",
                     help="the longest a whole run may take, in seconds: past it its processes are stopped and the "
                          f"run recorded FAILED, timed out; 0 for no limit (default {RUN_TIMEOUT_S:.0f}, 4 hours). "
                          "A run claimed by a scheduler on another host sharing QPO_HOME is taken as abandoned "
                          "15 minutes after this limit")
    run.add_argument("--poll", type=float, default=60.0,
                     help="the longest sleep, in seconds: how often dependencies and other schedulers are looked at "
                          "(default 60)")
    run.set_defaults(func=_cmd_run)
    show = scsub.add_parser("show", help="each scheduled pipeline's next run, dependency and last run",
                            allow_abbrev=False)
    show.add_argument("--json", action="store_true", help="print one JSON document")
    show.set_defaults(func=_cmd_show)
    cron = scsub.add_parser("crontab", help="the equivalent cron lines (without dependencies, retries or missed runs)",
                            allow_abbrev=False)
    cron.set_defaults(func=_cmd_crontab)
