"""Which constraints cannot hold together, found by checking constraint families.

:func:`conflicting_families` runs a *deletion filter* (Chinneck): starting from every family,
drop one at a time and keep it dropped when the rest is still infeasible. What remains is an
irreducible infeasible set: these families conflict, and removing any one of them resolves the
conflict. :func:`explain` turns the set into a sentence with the numbers behind it.
"""
from __future__ import annotations

import numpy as np

from qpo.optimization._quiet import silence_highs_banner
from qpo.optimization.constraints import ResolvedConstraints

# the order families are tried for removal: the most specific first, so that the set left
# names the simple constraints a user can relate to (budget, bounds) together with the culprit
_DROP_ORDER = ("min_position", "max_assets", "max_tracking_error", "max_turnover", "leverage")


def _feasible(cons: list, mixed_integer: bool, conic: bool) -> bool:
    import cvxpy as cp

    prob = cp.Problem(cp.Minimize(0), cons)
    solvers = (["SCIP"] if conic else ["HIGHS", "SCIP"]) if mixed_integer else (
        ["CLARABEL", "SCS"] if conic else ["HIGHS", "CLARABEL"])
    silence_highs_banner()
    for solver in solvers:
        try:
            prob.solve(solver=solver)
        except cp.error.SolverError:
            continue
        if prob.status in (cp.OPTIMAL, cp.OPTIMAL_INACCURATE):
            return True
        if prob.status in (cp.INFEASIBLE, cp.INFEASIBLE_INACCURATE):
            return False
    return False


def conflicting_families(rc: ResolvedConstraints, values: dict) -> list[str] | None:
    """The names of an irreducible set of conflicting constraint families, or None when all the
    constraints can hold together."""
    from qpo.optimization.model import numeric_families

    _, fam = numeric_families(rc, values)
    always = fam.pop("holdings", [])
    mi = rc.is_mixed_integer
    conic = rc.max_tracking_error is not None

    def feasible(active):
        return _feasible(always + [c for k in active for c in fam[k]], mi, conic)

    names = list(fam)
    if feasible(names):
        return None
    order = [k for k in _DROP_ORDER if k in names] + sorted(
        (k for k in names if k.startswith("group ")), reverse=True) + [
        k for k in ("max_weight", "min_weight", "budget") if k in names]
    order += [k for k in names if k not in order]
    active = list(names)
    for k in order:
        trial = [a for a in active if a != k]
        if trial and not feasible(trial):
            active = trial
    return active


def _bounds_text(kind: str, v: np.ndarray, n: int, long_only: bool) -> str:
    if np.allclose(v, v[0]):
        if kind == "min_weight" and long_only and v[0] == 0:
            return "long-only (no weight below 0)"
        return f"{kind} {v[0]:g} x {n} assets = {v[0] * n:g}"
    return f"per-asset {kind}s summing to {v.sum():g}"


def describe_family(name: str, rc: ResolvedConstraints) -> str:
    n = rc.n
    if name == "budget":
        return f"budget {rc.budget:g} (weights sum to {rc.budget:g})"
    if name in ("min_weight", "max_weight"):
        return _bounds_text(name, rc.lower if name == "min_weight" else rc.upper, n, rc.long_only)
    if name.startswith("group "):
        g, side = name[6:].rsplit(" ", 1)
        i = rc.group_names.index(g)
        members = int(rc.group_matrix[i].sum())
        v = rc.group_lower[i] if side == "min" else rc.group_upper[i]
        return f"group {g} {side} {v:g} ({members} assets)"
    if name == "leverage":
        return f"leverage {rc.leverage:g} (gross exposure)"
    if name == "max_turnover":
        return f"max_turnover {rc.max_turnover:g} from the current weights"
    if name == "max_tracking_error":
        return f"max_tracking_error {rc.max_tracking_error:g} against the benchmark"
    if name == "max_assets":
        return f"max_assets {rc.max_assets}"
    if name == "min_position":
        return f"min_position {rc.min_position:g}"
    return name


def explain(families: list[str], rc: ResolvedConstraints) -> str:
    """A sentence naming the conflicting families, with the arithmetic when it is simple."""
    fam = set(families)
    n, b = rc.n, rc.budget
    hi_scalar = np.allclose(rc.upper, rc.upper[0])
    lo_scalar = np.allclose(rc.lower, rc.lower[0])
    groups_min = sorted(k for k in fam if k.startswith("group ") and k.endswith(" min"))
    groups_max = sorted(k for k in fam if k.startswith("group ") and k.endswith(" max"))
    if fam <= {"budget", "max_weight", "min_weight"} and "max_weight" in fam and rc.upper.sum() < b:
        if hi_scalar:
            hi = rc.upper[0]
            return (f"max_weight {hi:g} x {n} assets = {hi * n:g} cannot reach a budget of {b:g} (fully "
                    f"invested); raise max_weight to at least {b / n:.4g}")
        return (f"the per-asset max weights sum to {rc.upper.sum():g}, which cannot reach a budget of {b:g}; "
                "raise some max_weight")
    if fam <= {"budget", "max_weight", "min_weight"} and "min_weight" in fam and rc.lower.sum() > b:
        if lo_scalar:
            lo = rc.lower[0]
            return (f"min_weight {lo:g} x {n} assets = {lo * n:g} exceeds the budget of {b:g}; lower "
                    f"min_weight to at most {b / n:.4g}")
        return f"the per-asset min weights sum to {rc.lower.sum():g}, above the budget of {b:g}"
    if groups_min and fam <= {"budget", "min_weight", *groups_min} and "budget" in fam:
        vals = [rc.group_lower[rc.group_names.index(k[6:-4])] for k in groups_min]
        terms = " + ".join(f"group {k[6:-4]} min {v:g}" for k, v in zip(groups_min, vals))
        extra = " with no short positions" if "min_weight" in fam and rc.long_only else ""
        return f"{terms} = {sum(vals):g} > budget {b:g}{extra}"
    if groups_max and fam <= {"budget", "max_weight", "min_weight", *groups_max} and "budget" in fam \
            and "max_weight" not in fam:
        vals = [rc.group_upper[rc.group_names.index(k[6:-4])] for k in groups_max]
        terms = " + ".join(f"group {k[6:-4]} max {v:g}" for k, v in zip(groups_max, vals))
        return f"{terms} = {sum(vals):g} < budget {b:g}, and every other asset is held at 0 or below"
    if len(groups_min) == 1 and fam <= {"max_weight", groups_min[0]}:
        g = groups_min[0][6:-4]
        i = rc.group_names.index(g)
        cap = float(rc.upper[rc.group_matrix[i] > 0].sum())
        return f"group {g} min {rc.group_lower[i]:g} > its {int(rc.group_matrix[i].sum())} assets' max weights, {cap:g} in all"
    if "max_assets" in fam and fam <= {"max_assets", "max_weight", "budget", "min_weight"} and hi_scalar:
        return (f"max_assets {rc.max_assets} x max_weight {rc.upper[0]:g} = {rc.max_assets * rc.upper[0]:g} "
                f"cannot reach a budget of {b:g}")
    parts = "; ".join(describe_family(k, rc) for k in families)
    return f"{parts} (dropping any one of these makes the rest feasible)"
