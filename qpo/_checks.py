"""The one home of qpo's argument checks, the required-option marker and package versions.

Every package checks its arguments with these functions, so the same wrong value gets the same
message everywhere: what was wrong, and what is valid. They raise :class:`~qpo.errors.InvalidValueError`
unless told to raise another :class:`~qpo.errors.QpoError` (``error=ProblemError``).
This module imports nothing from qpo but :mod:`qpo.errors`.
"""
from __future__ import annotations

import numbers
from collections.abc import Iterable
from importlib import metadata

import numpy as np

from qpo.errors import InvalidValueError, QpoError


class _Required:
    """The marker of an option that has no default: the caller must give it."""

    _instance: _Required | None = None

    def __new__(cls) -> _Required:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "REQUIRED"

    def __reduce__(self) -> str:
        return "REQUIRED"


#: the default of an option the caller must give (``{"target_return": REQUIRED}``)
REQUIRED = _Required()


def is_number(v: object) -> bool:
    """A finite real number that is not a bool."""
    return isinstance(v, numbers.Real) and not isinstance(v, bool) and bool(np.isfinite(float(v)))


def _bound(lo: float | None, hi: float | None, lo_open: bool, hi_open: bool) -> str:
    parts = []
    if lo is not None:
        parts.append(f"{'>' if lo_open else '>='} {lo:g}")
    if hi is not None:
        parts.append(f"{'<' if hi_open else '<='} {hi:g}")
    return " and ".join(parts)


def _hint(hint: str) -> str:
    return f" ({hint})" if hint else ""


def number(name: str, v: object, lo: float | None = None, hi: float | None = None, *, lo_open: bool = False,
           hi_open: bool = False, hint: str = "", error: type[QpoError] = InvalidValueError) -> float:
    """``v`` as a float, checked finite and within ``[lo, hi]`` (``lo_open``/``hi_open`` exclude the
    bound). ``hint`` (what is valid, e.g. "0.95 for 95 %") is added to the message."""
    if not is_number(v):
        bound = _bound(lo, hi, lo_open, hi_open)
        raise error(f"{name} must be a finite number{' ' + bound if bound else ''}{_hint(hint)}, got {v!r}")
    x = float(v)  # type: ignore[arg-type]
    if (lo is not None and (x <= lo if lo_open else x < lo)) or (hi is not None and (x >= hi if hi_open else x > hi)):
        raise error(f"{name} must be {_bound(lo, hi, lo_open, hi_open)}{_hint(hint)}, got {v!r}")
    return x


def positive(name: str, v: object, *, hint: str = "", error: type[QpoError] = InvalidValueError) -> float:
    """``v`` as a float, checked finite and > 0."""
    if not is_number(v) or float(v) <= 0:  # type: ignore[arg-type]
        raise error(f"{name} must be a positive finite number{_hint(hint)}, got {v!r}")
    return float(v)  # type: ignore[arg-type]


def whole(name: str, v: object, lo: int | None = None, hi: int | None = None, *, hint: str = "",
          error: type[QpoError] = InvalidValueError) -> int:
    """``v`` as an int, checked a whole number (not a bool, not a float) within ``[lo, hi]``."""
    ok = isinstance(v, numbers.Integral) and not isinstance(v, bool)
    if not ok or (lo is not None and v < lo) or (hi is not None and v > hi):  # type: ignore[operator]
        bound = _bound(lo, hi, False, False)
        raise error(f"{name} must be a whole number{' ' + bound if bound else ''}{_hint(hint)}, got {v!r}")
    return int(v)  # type: ignore[call-overload]


def fraction(name: str, v: object, *, error: type[QpoError] = InvalidValueError) -> float:
    """``v`` as a float strictly between 0 and 1."""
    if not is_number(v) or not 0.0 < float(v) < 1.0:  # type: ignore[arg-type]
        raise error(f"{name} must lie strictly between 0 and 1, got {v!r}")
    return float(v)  # type: ignore[arg-type]


def check_confidence(confidence: object) -> float:
    """A confidence level strictly between 0 and 1 (0.95, not 95)."""
    if not is_number(confidence) or not 0.0 < float(confidence) < 1.0:  # type: ignore[arg-type]
        raise InvalidValueError(f"confidence must lie strictly between 0 and 1 (e.g. 0.95), got {confidence!r}")
    return float(confidence)  # type: ignore[arg-type]


def package_versions(packages: Iterable[str]) -> dict[str, str | None]:
    """Installed versions of ``packages`` (None when absent), for the record of a run."""
    out: dict[str, str | None] = {}
    for name in packages:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


__all__ = ["REQUIRED", "check_confidence", "fraction", "is_number", "number", "package_versions", "positive",
           "whole"]
