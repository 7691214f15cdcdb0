"""Compliance checks of a portfolio against its limits: a pass/breach list."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from enum import StrEnum

import pandas as pd

from qpo._checks import is_number, quote, whole
from qpo.data.sectors import UNCLASSIFIED
from qpo.errors import DataError, InvalidValueError, UnknownOptionError

HOLDING_TOLERANCE = 1e-6  # a weight at or below this is not a holding


class ComplianceStatus(StrEnum):
    """The outcome of a compliance check, or of a report's checks together. A ``StrEnum``: it
    prints, compares and serialises as its value (``"breach"``)."""

    PASS = "pass"
    BREACH = "breach"
    NOT_CHECKED = "not checked"


@dataclass(frozen=True)
class Limits:
    """Investment limits. Every limit is optional (None: not checked).

    ``max_weight``: the largest absolute weight of a single name; ``sector_max``: the largest net
    weight of a sector (one number for every sector or a ``{sector: cap}`` map); ``min_names``: the
    fewest holdings (|weight| > 1e-6); ``var_limit``: the largest VaR (a positive loss) by
    ``var_method`` at the report's confidence and horizon.
    """

    max_weight: float | None = None
    sector_max: float | dict[str, float] | None = None
    min_names: int | None = None
    var_limit: float | None = None
    var_method: str = "historical"

    def __post_init__(self):
        from qpo.risk.var import VAR_METHODS

        for name in ("max_weight", "var_limit"):  # at most 1: a limit of 20 (meant as 20 %) would never breach
            v = getattr(self, name)
            if v is not None and (not is_number(v) or not 0 < float(v) <= 1):
                raise InvalidValueError(f"Limits.{name} must be a fraction in (0, 1] (0.25 = 25 %), got {quote(v)}")
        caps = self.sector_max.values() if isinstance(self.sector_max, dict) else (
            [] if self.sector_max is None else [self.sector_max])
        for v in caps:
            if not is_number(v) or not 0 <= float(v) <= 1:
                raise InvalidValueError(f"Limits.sector_max caps must be fractions in [0, 1] (0.4 = 40 %), got {quote(v)}")
        if self.min_names is not None:
            object.__setattr__(self, "min_names", whole("Limits.min_names", self.min_names, 1))  # np.int64 -> int
        if self.var_method not in VAR_METHODS:
            raise UnknownOptionError("Limits.var_method", self.var_method, VAR_METHODS)

    @classmethod
    def coerce(cls, limits) -> Limits | None:
        if limits is None or isinstance(limits, Limits):
            return limits
        if isinstance(limits, dict):
            unknown = set(limits) - set(cls.__dataclass_fields__)
            if unknown:
                raise UnknownOptionError("limit", sorted(unknown)[0], cls.__dataclass_fields__)
            return cls(**limits)
        raise InvalidValueError(f"limits must be a qpo.risk.Limits or a dict of its fields, got {type(limits).__name__}")

    def to_dict(self) -> dict:
        return asdict(self)


def unclassified_row(value: float, cap: float, names: list, have_map: bool) -> dict:
    """The compliance row of the names without a sector under a cap on every sector: NOT_CHECKED.
    They are no sector, so they are not one sector over the cap (a breach of a sector that does not
    exist), nor within it (a pass nobody checked); the row says how much and which."""
    shown = ", ".join(map(str, names[:5])) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
    how = ("give the map of their sectors (`qpo data sectors FILE`, or sectors=)" if have_map else
           "no sector map was given (sectors=)")
    return {"check": f"sector {UNCLASSIFIED}", "value": value, "limit": cap, "status": ComplianceStatus.NOT_CHECKED,
            "detail": f"{value:.1%} of the portfolio is in names without a sector ({shown}): not checked against the "
                      f"sector cap; {how}"}


def check_compliance(weights: pd.Series, limits: Limits, *, groups: dict[str, str] | None = None,
                     var_values: dict[str, float] | None = None, var_label: str = "") -> pd.DataFrame:
    """One row per check: check, value, limit, status (a :class:`ComplianceStatus`), detail."""
    rows = []
    held = weights[weights.abs() > HOLDING_TOLERANCE]
    if limits.max_weight is not None:
        top = held.abs().sort_values(ascending=False)
        over = top[top > limits.max_weight + 1e-9]
        rows.append({"check": "max single name", "value": float(top.iloc[0]) if len(top) else 0.0,
                     "limit": float(limits.max_weight), "status": ComplianceStatus.BREACH if len(over) else ComplianceStatus.PASS,
                     "detail": _names(over) if len(over) else
                     (f"largest {top.index[0]} {top.iloc[0]:.1%}" if len(top) else "no holdings")})
    if limits.sector_max is not None:
        labels = [(groups or {}).get(t, UNCLASSIFIED) for t in weights.index]
        sectors = weights.groupby(labels).sum()
        uniform = not isinstance(limits.sector_max, dict)
        caps: dict[str, float] = ({str(s): float(v) for s, v in limits.sector_max.items()}
                                  if isinstance(limits.sector_max, dict) else
                                  {str(s): float(limits.sector_max) for s in sectors.index})
        for s, cap in caps.items():
            v = float(sectors.get(s, 0.0))
            if uniform and s == UNCLASSIFIED:  # names without a sector are no sector: unknown, not one big sector
                names = [t for t, g in zip(weights.index, labels) if g == UNCLASSIFIED and t in held.index]
                if names:  # held long or short, whatever their net weight
                    rows.append(unclassified_row(v, float(cap), names, bool(groups)))
                continue
            rows.append({"check": f"sector {s}", "value": v, "limit": float(cap),
                         "status": ComplianceStatus.BREACH if v > cap + 1e-9 else ComplianceStatus.PASS,
                         "detail": f"{s} {v:.1%} of the portfolio" + (
                             "" if groups else " (no sector map given: every name is Unclassified)")})
    if limits.min_names is not None:
        n = int(len(held))
        rows.append({"check": "min names", "value": float(n), "limit": float(limits.min_names),
                     "status": ComplianceStatus.BREACH if n < limits.min_names else ComplianceStatus.PASS, "detail": f"{n} holdings"})
    if limits.var_limit is not None:
        if var_values is None or limits.var_method not in var_values:
            raise DataError(f"the VaR limit is set on the {limits.var_method} VaR, which the report could not "
                            f"compute (it has {sorted(var_values or {})}); choose one of those")
        v = float(var_values[limits.var_method])
        undefined = not math.isfinite(v)
        rows.append({"check": f"VaR ({limits.var_method})", "value": v, "limit": float(limits.var_limit),
                     "status": (ComplianceStatus.BREACH if undefined or v > limits.var_limit
                                else ComplianceStatus.PASS),
                     "detail": (f"{var_label} {limits.var_method} VaR is undefined here: the limit cannot be shown "
                                "to hold" if undefined else
                                f"{var_label} VaR {v:.2%} against a limit of {limits.var_limit:.2%}").strip()})
    columns = ["check", "value", "limit", "status", "detail"]
    # object columns: pandas would turn the ComplianceStatus members into plain strings
    return pd.DataFrame({c: pd.Series([r[c] for r in rows], dtype=object if c in ("status", "check", "detail")
                                      else float) for c in columns}, columns=columns)


def _names(over: pd.Series, most: int = 5) -> str:
    text = ", ".join(f"{t} {v:.1%}" for t, v in over.head(most).items())
    return text + (f" and {len(over) - most} more" if len(over) > most else "")
