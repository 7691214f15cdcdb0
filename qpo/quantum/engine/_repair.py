"""Making an infeasible answer feasible: greedy moves (selection: drop or add the asset that changes
the objective least; lots: sell the lot whose sale costs least, until the budget holds)."""
from __future__ import annotations

import numpy as np

from qpo.errors import ProblemError
from qpo.quantum.formulation import BinaryModel


def repair(model: BinaryModel, x) -> np.ndarray | None:
    """A feasible string near ``x`` by greedy moves, or None."""
    x = np.round(np.asarray(x, float)).copy()
    if model.kind == "selection":
        k = model.k
        while x.sum() > k:
            on = np.flatnonzero(x == 1)
            trial = np.repeat(x[None], len(on), 0)
            trial[np.arange(len(on)), on] = 0
            x = trial[int(np.argmin(model.objective(trial)))]
        while model.cardinality == "exact" and x.sum() < k:
            off = np.flatnonzero(x == 0)
            trial = np.repeat(x[None], len(off), 0)
            trial[np.arange(len(off)), off] = 1
            x = trial[int(np.argmin(model.objective(trial)))]
        return x if model.is_feasible(x) else None
    enc = model.encoding
    tickers = list(model.tickers)
    lots = np.array([model.decode(x)[1]["lots"][t] for t in tickers])
    cost = np.array([enc["lot_cost"][t] for t in tickers])
    maxl = np.array([enc["max_lots"][t] for t in tickers])
    lots = np.minimum(lots, maxl)
    while lots @ cost > enc["cash"] + 1e-9 * enc["cash"]:
        held = np.flatnonzero(lots > 0)
        trials = [encode_lots(model, lots - np.eye(len(lots), dtype=int)[i]) for i in held]
        f = model.objective(np.array(trials))
        lots[held[int(np.argmin(f))]] -= 1
    x = encode_lots(model, lots)
    return x if model.is_feasible(x) else None


def encode_lots(model: BinaryModel, lots) -> np.ndarray:
    """Bits of integer lot counts under the model's bounded encoding."""
    x = np.zeros(model.n_variables)
    for t, n in zip(model.tickers, lots):
        bits = model.encoding["bits"][t]
        rest = int(n)
        for j, coef in sorted(bits, key=lambda b: -b[1]):
            if coef <= rest:
                x[j], rest = 1.0, rest - coef
        if rest:
            raise ProblemError(f"{n} lots of {t} has no code (0..{model.encoding['max_lots'][t]} do)")
    return x


def broken_constraints(model: BinaryModel, x) -> str:
    names = [c.name for c in model.constraints if float(c.violation(np.round(x))) > 1e-9 * max(abs(c.rhs), 1)]
    return ", ".join(names) or "?"
