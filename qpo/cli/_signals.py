"""How ``qpo pipeline run`` and ``qpo nightly value|risk`` meet SIGINT and SIGTERM: a pipeline run
outside the run itself, while the command is still starting (importing, loading the pipeline; before
the run's own handler, :class:`qpo.workbench.run_control.SignalGuard`), and after the run ended,
while its result is printed; a nightly run throughout (:class:`Stopped` raised in it marks its ops
run FAILED with the signal, closes its Dask cluster and is told to the ops desk)."""
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

    def __str__(self) -> str:
        import signal

        return f"interrupted by {signal.Signals(self.signum).name}"


def _command(argv: list[str]) -> list[str]:
    """The command's first three words (``pipeline run NAME``, ``nightly risk``), past the top-level
    options (``--as EMAIL``) and the options among them."""
    words: list[str] = []
    skip = False
    for a in argv:
        if skip:
            skip = False
        elif a == "--as":
            skip = True  # its value is no word of the command
        elif not a.startswith("-"):
            words.append(a)
    return words[:3]


def catches_signals(argv: list[str]) -> bool:
    """Whether the command ends a signal with its own status line: a pipeline run, a nightly run."""
    words = _command(argv)
    return words[:2] == ["pipeline", "run"] or (words[:1] == ["nightly"] and words[1:2] in (["value"], ["risk"]))


def raise_stopped(signum: int, frame) -> None:
    """The first SIGINT / SIGTERM raises :class:`Stopped`; the ones after it, while the command
    stops (closing its cluster, marking its run, telling the ops desk), are only noted."""
    hold_signals()
    raise Stopped(signum)


def report_stopped(argv: list[str], signum: int) -> int:
    """The one JSON line (``--json``) or the stderr line of a run stopped before it began, and the
    shell's status for the signal (130 SIGINT, 143 SIGTERM)."""
    import signal

    words = _command(argv)
    if words[:1] == ["nightly"]:
        return report_nightly_stopped(words[1], signum, None, "--json" in argv)
    sig = signal.Signals(signum).name
    name = words[2] if len(words) > 2 else None
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


def report_nightly_stopped(action: str, signum: int, run_id: int | None, as_json: bool) -> int:
    """The one status line of ``qpo nightly value|risk`` stopped by a signal (the JSON line with
    ``as_json``; stderr always): before its ops run was recorded (``run_id`` None), or with that run
    marked FAILED; the shell's status for the signal."""
    import signal

    sig = signal.Signals(signum).name
    kind = "valuation" if action == "value" else action  # the run's own kind, as its result says it
    if run_id is None:
        error = f"interrupted by {sig} before the run was recorded; nothing was written"
    else:
        error = (f"interrupted by {sig}: ops run {run_id} ({kind}) is marked FAILED with this reason; a rerun of the "
                 "date replaces whatever it wrote")
    if as_json:
        print(json.dumps({"kind": kind, "status": "KILLED", "signal": sig, "run_id": run_id, "error": error}),
              flush=True)
    print(f"qpo: nightly {action}: {error}", file=sys.stderr, flush=True)
    return 128 + signum
