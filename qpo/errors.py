"""Typed errors. Every message says what was wrong and what is valid."""
from __future__ import annotations

import bisect
import difflib
from collections.abc import Iterable


class QpoError(Exception):
    """Base class of every error qpo raises on purpose."""


#: the longest part of a refused value a message quotes (the rest is counted, not repeated)
VALUE_CHARS = 60
#: the most valid names a message lists (the rest are counted; ``.valid`` keeps them all)
LISTED_NAMES = 20
#: the longest valid name a message quotes in full
NAME_CHARS = 40
#: the longest ``kind`` (what was looked up) a message repeats
KIND_CHARS = 200


def quoted(value: object, n: int = VALUE_CHARS) -> str:
    """``repr(value)`` for a message, cut to about ``n`` characters with the full length said
    (``'xxxx'... (10000 characters)``), so a huge value never makes a huge message."""
    if isinstance(value, str):
        text = repr(value[:n])
        return text if len(value) <= n else f"{text}... ({len(value)} characters)"
    try:
        text = repr(value)
    except Exception:  # noqa: BLE001 - an int too large to print, a broken __repr__
        return f"a value of type {type(value).__name__}"
    return text if len(text) <= n else f"{text[:n]}... ({len(text)} characters)"


def named(names: list[str], n: int = LISTED_NAMES, width: int = NAME_CHARS, more: str = "") -> str:
    """At most ``n`` of ``names``, each cut to ``width`` characters, then "... and N more"
    (with ``more``, e.g. "see `qpo portfolio list`", in brackets after it)."""
    shown = ", ".join(s if len(s) <= width else s[:width - 3] + "..." for s in map(str, names[:n]))
    if len(names) <= n:
        return shown
    return f"{shown} ... and {len(names) - n} more" + (f" ({more})" if more else "")


def _closest(value: str, names: list[str], n: int = 5) -> list[str]:
    """Up to ``n`` of the sorted ``names`` nearest to ``value``: by similarity (difflib) when there
    are at most 1,000 names, else alphabetically (a bisection, so a 100,000-name list costs
    nothing)."""
    if len(names) <= 1000:
        return difflib.get_close_matches(value, names, n=n, cutoff=0.6)
    try:
        at = bisect.bisect_left(names, value)
    except TypeError:  # names that are not all text
        return []
    return names[max(0, at - n // 2):max(0, at - n // 2) + n]


class UnknownOptionError(QpoError, ValueError):
    """An option name (source, objective, method, a portfolio, ...) that qpo does not know.

    The message stays short whatever the input: it quotes at most :data:`VALUE_CHARS` characters of
    the value, lists at most :data:`LISTED_NAMES` valid names (the closest to the value first when
    there are more) and says how many more there are, with ``see`` (where to find them all, e.g.
    "see `qpo portfolio list`"). ``.valid`` holds every valid name, sorted, for code."""

    def __init__(self, kind: str, value: object, valid: Iterable[str], *, see: str = ""):
        self.kind, self.value, self.valid = kind, value, sorted(valid)
        names = self.valid
        if len(names) > LISTED_NAMES and isinstance(value, str):
            close = set(closest := _closest(value[:KIND_CHARS], names))
            names = closest + [v for v in names if v not in close]
        what = kind if len(kind) <= KIND_CHARS else kind[:KIND_CHARS - 3] + "..."
        super().__init__(f"unknown {what} {quoted(value)}; valid: {named(names, more=see)}")


class InvalidValueError(QpoError, ValueError):
    """An option with a value outside its valid range (a confidence of 95, a negative threshold)."""


class DataError(QpoError, ValueError):
    """Input data that cannot be used as given (missing file, wrong columns, NaN, ...)."""


class DataWarning(UserWarning):
    """Data used as asked, in a way that may not be what was meant (most of a history dropped
    because one ticker starts late): the warning says what happened and how to do otherwise."""


class DataValidationError(DataError):
    """Data that failed its Great Expectations suite; carries the report."""

    def __init__(self, report):  # report: qpo.validation.ValidationReport
        self.report = report
        super().__init__(str(report))


class ProblemError(QpoError, ValueError):
    """A portfolio problem that is malformed (shapes, tickers, non-finite or non-PSD inputs)."""


class LookAheadError(ProblemError):
    """A forecast as of a date before its model's training end used as an input (an optimizer's
    mean, a backtest's rebalance): the model has seen what followed. A backtest stops on it rather
    than sitting those rebalances out in cash."""


class InfeasibleError(QpoError):
    """Constraints that cannot hold together; the message names them."""


class SolverError(QpoError):
    """A solver that failed on a well-posed problem; the message says what to try."""


class PipelineError(QpoError):
    """A pipeline that could not run or did not finish."""


class RunsFolderError(PipelineError):
    """A run that cannot start: a folder it writes to is read-only, not a folder, or on a disk with
    too little free space. Nothing was written."""


class StoreError(QpoError):
    """A store operation that was refused; nothing was written."""


class AccessDenied(StoreError):
    """A request its actor may not make (an advisor reading another advisor's client, a researcher
    changing a portfolio). The message says who was refused what; nothing was read or written."""


class MissingStoreError(StoreError):
    """A reading entry point (dashboard, report, pipeline) found no store where it looks; nothing
    was created. The message names the URL and the command that creates the store."""


class CorruptFileError(QpoError):
    """A database file (the store, MLflow's ``mlflow.db``) that exists but cannot be read; the
    message names the file, what is wrong and how to recover (move it aside, restore a backup)."""


class RunInterrupted(PipelineError):
    """A run stopped by SIGINT or SIGTERM; it is recorded KILLED with the reason."""

    def __init__(self, message: str, signal_number: int):
        self.signal_number = signal_number
        super().__init__(message)
