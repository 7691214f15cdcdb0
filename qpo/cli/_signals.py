"""How ``qpo pipeline run`` meets SIGINT and SIGTERM outside the run itself: while the command is
still starting (importing, loading the pipeline; before the run's own handler,
:class:`qpo.workbench.run_control.SignalGuard`), and after the run ended, while its result is printed."""
from __future__ import annotations

import json
import sys

HELD: list[int] = []  # signals that came after the run ended, while its result is printed
ENTERED: list[bool] = []  # non-empty once the command called run_pipeline


def hold_signals() -> None:
    """From now on SIGINT / SIGTERM are only noted in :data:`HELD`: ``qpo pipeline run`` then exits
    128 + the signal if the run had finished with 0, and prints no second status line."""
    import signal

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda signum, frame: HELD.append(signum))


class Stopped(BaseException):
    """A SIGINT or SIGTERM that came while ``qpo pipeline run`` was starting (importing, loading the
    pipeline): before the run's own handler (:class:`qpo.workbench.run_control.SignalGuard`)."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


def is_pipeline_run(argv: list[str]) -> bool:
    words = [a for a in argv if not a.startswith("-")]
    return words[:2] == ["pipeline", "run"]


def raise_stopped(signum: int, frame) -> None:
    raise Stopped(signum)


def report_stopped(argv: list[str], signum: int) -> int:
    """The one JSON line (``--json``) or the stderr line of a run stopped before it began, and the
    shell's status for the signal (130 SIGINT, 143 SIGTERM)."""
    import signal

    words = [a for a in argv if not a.startswith("-")]
    name = words[2] if len(words) > 2 else None
    sig = signal.Signals(signum).name
    if ENTERED:  # inside run_pipeline, outside its own handler: just before it began, or just after it ended
        error = (f"interrupted by {sig} while the run was starting or ending (outside its own signal handling); "
                 "`qpo pipeline runs` shows whether it was recorded")
    else:
        error = f"interrupted by {sig} before the run started; no MLflow run was made"
    if "--json" in argv:
        print(json.dumps({"pipeline": name, "status": "KILLED", "signal": sig, "run_id": None, "error": error}),
              flush=True)
    print(f"qpo: pipeline {name}: {error}", file=sys.stderr, flush=True)
    return 128 + signum
