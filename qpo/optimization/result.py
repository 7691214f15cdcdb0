"""The result every optimizer returns."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:  # pragma: no cover
    from qpo.quantum.result import BinaryOutcome


@dataclass
class OptimizationResult:
    """Weights and their annualized statistics, plus how they were found.

    ``expected_return`` and ``volatility`` are annualized with ``periods_per_year``
    (arithmetic: mu * P, sigma * sqrt(P)); ``sharpe`` = (expected_return - risk_free_rate) / volatility.
    ``fallback_reason`` is set when the requested method's answer was replaced by another's.
    ``diagnostics`` holds method-specific figures as a flat dict (what MLflow logs).

    ``binary`` is set for the binary objectives (``method="exact" | "qaoa" | "annealing" | "auto"``):
    a :class:`~qpo.quantum.result.BinaryOutcome`, the typed parts of the answer (the model, the exact
    reference, the solution quality, the sample distribution, the run record); ``diagnostics`` is
    then generated from it.
    """

    weights: pd.Series
    expected_return: float
    volatility: float
    sharpe: float
    objective: str
    method: str
    solver: str
    status: str
    periods_per_year: int
    risk_free_rate: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)
    confidence_interval: tuple[float, float] | None = None
    fallback_reason: str | None = None
    diagnostics: dict[str, Any] = field(default_factory=dict)
    binary: BinaryOutcome | None = field(default=None, repr=False)

    @property
    def tickers(self) -> list[str]:
        return list(self.weights.index)

    def to_dict(self) -> dict[str, Any]:
        """Plain data; the typed ``binary`` part is left out (``diagnostics`` is its flat view)."""
        d = asdict(replace(self, binary=None))
        del d["binary"]
        d["weights"] = {k: float(v) for k, v in self.weights.items()}
        return d

    def summary(self) -> pd.Series:
        return pd.Series({
            "expected_return": self.expected_return,
            "volatility": self.volatility,
            "sharpe": self.sharpe,
            "n_holdings": int((np.abs(self.weights) > 1e-6).sum()),
            "objective": self.objective,
            "solver": self.solver,
            "status": self.status,
        })

    def __repr__(self) -> str:
        top = self.weights[self.weights.abs() > 1e-6].sort_values(ascending=False).head(5)
        tops = ", ".join(f"{k} {v:.1%}" for k, v in top.items())
        return (f"OptimizationResult({self.objective}, {self.method}/{self.solver}, {self.status}: "
                f"return {self.expected_return:.2%}, vol {self.volatility:.2%}, Sharpe {self.sharpe:.2f}; "
                f"top: {tops})")
