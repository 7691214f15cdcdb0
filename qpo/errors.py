"""Typed errors. Every message says what was wrong and what is valid."""
from __future__ import annotations

from collections.abc import Iterable


class QpoError(Exception):
    """Base class of every error qpo raises on purpose."""


class UnknownOptionError(QpoError, ValueError):
    """An option name (source, objective, method, ...) that qpo does not know."""

    def __init__(self, kind: str, value: object, valid: Iterable[str]):
        self.kind, self.value, self.valid = kind, value, sorted(valid)
        super().__init__(f"unknown {kind} {value!r}; valid: {', '.join(self.valid)}")


class InvalidValueError(QpoError, ValueError):
    """An option with a value outside its valid range (a confidence of 95, a negative threshold)."""


class DataError(QpoError, ValueError):
    """Input data that cannot be used as given (missing file, wrong columns, NaN, ...)."""


class DataValidationError(DataError):
    """Data that failed its Great Expectations suite; carries the report."""

    def __init__(self, report):  # report: qpo.validation.ValidationReport
        self.report = report
        super().__init__(str(report))


class ProblemError(QpoError, ValueError):
    """A portfolio problem that is malformed (shapes, tickers, non-finite or non-PSD inputs)."""


class InfeasibleError(QpoError):
    """Constraints that cannot hold together; the message names them."""


class SolverError(QpoError):
    """A solver that failed on a well-posed problem; the message says what to try."""


class PipelineError(QpoError):
    """A pipeline that could not run or did not finish."""


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
