"""Solvers speak only when asked: HiGHS prints a licence banner to the process's stdout (at the C
level, past Python's ``sys.stdout``) the first time a ``highspy.Highs`` is made, whatever its
``output_flag``. :func:`silence_highs_banner` makes that first instance with file descriptor 1
pointed at ``/dev/null``, so the banner never reaches a notebook, a log or the CLI's output.
Solver logs still appear when a caller asks for them (``solver_options={"verbose": True}``)."""
from __future__ import annotations

import functools
import os
import sys


@functools.cache
def silence_highs_banner() -> None:
    """Make the process's first ``highspy.Highs`` (the one that prints the banner) silently."""
    try:
        import highspy
    except ImportError:  # pragma: no cover - cvxpy without HiGHS: nothing to silence
        return
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 1)
            highspy.Highs()
    finally:
        os.dup2(saved, 1)
        os.close(saved)
