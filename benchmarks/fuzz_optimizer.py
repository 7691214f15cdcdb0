"""Optimizer fuzz: random constraint sets on small real problems, every answer checked independently.

Each case draws (from its own seed) a sub-panel of the bundled S&P 500 returns (3, 5 or 8 names, 120
or 250 days), an objective and a constraint set: long-only or shorting with a leverage limit, per-asset
bounds (numbers or ticker maps), groups with minimums and maximums, turnover against current
weights, transaction costs, a tracking-error limit against a benchmark, a cardinality limit,
return and volatility targets that may or may not be reachable. A case passes when it ends in

* a result whose weights are finite and satisfy every constraint within 1e-6, checked here from
  the case's own numbers (sum, bounds, groups, turnover, leverage, tracking error, holdings, the
  return or volatility target), not by qpo's own checker; or
* a :class:`qpo.errors.QpoError` whose message is a sentence (not empty, not a bare repr).

Anything else (another exception, a NaN weight, a broken constraint) is a failure, listed with its
seed so that ``case(seed)`` reproduces it. ``python -m benchmarks.fuzz_optimizer`` runs 10,000 cases
and writes ``benchmarks/results/fuzz_optimizer.{json,md}``; ``--cases N`` another number;
``--smoke`` 50.
"""
from __future__ import annotations

import argparse
import collections
import functools
import time
import traceback
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

TOL = 1e-6
OBJECTIVES = ("min_variance", "max_sharpe", "efficient_return", "efficient_risk", "max_utility", "min_cvar",
              "risk_parity", "max_diversification", "hrp")


@functools.lru_cache(maxsize=1)
def _returns() -> pd.DataFrame:
    import qpo

    return qpo.prices_to_returns(qpo.load_prices("sp500", start="2005-01-01"))


@dataclass
class Case:
    """One fuzz case: the problem's inputs and the objective, as plain numbers (what the check uses)."""

    seed: int
    returns: pd.DataFrame
    objective: str
    constraints: dict[str, Any]
    options: dict[str, Any] = field(default_factory=dict)


def case(seed: int) -> Case:
    """The case drawn from ``seed`` (reproducible)."""
    rng = np.random.default_rng(seed)
    panel = _returns()
    # a few sizes only: each (objective, constraint structure, size) compiles a cvxpy model once, and
    # re-solves of a compiled model are what a backtest or a sweep does
    n = int(rng.choice([3, 5, 8]))
    T = int(rng.choice([120, 250]))
    cols = sorted(rng.choice(panel.shape[1], size=n, replace=False).tolist())
    start = int(rng.integers(0, len(panel) - T))
    R = panel.iloc[start:start + T, cols]
    tickers = list(R.columns)
    objective = str(rng.choice(OBJECTIVES))
    c: dict[str, Any] = {}
    if objective == "hrp" and rng.random() < 0.8:
        return Case(seed, R, objective, c)  # hrp takes no constraints: mostly plain, sometimes refused
    long_only = rng.random() < 0.75
    c["long_only"] = long_only
    if rng.random() < 0.6:
        hi = float(rng.uniform(0.05, 1.0))
        c["max_weight"] = hi if rng.random() < 0.7 else {t: float(rng.uniform(0.05, 1.0)) for t in tickers}
    if rng.random() < 0.4:
        if long_only:
            c["min_weight"] = float(rng.uniform(0.0, 0.3))
        else:
            c["min_weight"] = float(rng.uniform(-0.8, 0.1))
    elif not long_only:
        c["min_weight"] = -1.0
    if not long_only and rng.random() < 0.6:
        c["leverage"] = float(rng.uniform(0.8, 3.0))
    if rng.random() < 0.35:
        k = int(rng.integers(2, 4))
        labels = [f"g{int(rng.integers(0, k))}" for _ in tickers]
        c["groups"] = dict(zip(tickers, labels))
        names = sorted(set(labels))
        if rng.random() < 0.6:
            c["group_max"] = {g: float(rng.uniform(0.1, 1.0)) for g in names if rng.random() < 0.7}
        if rng.random() < 0.5:
            c["group_min"] = {g: float(rng.uniform(0.0, 0.7)) for g in names if rng.random() < 0.6}
    if rng.random() < 0.3:
        w0 = rng.dirichlet(np.ones(n))
        c["current_weights"] = dict(zip(tickers, w0.tolist()))
        if rng.random() < 0.8:
            c["max_turnover"] = float(rng.uniform(0.0, 1.2))
        if rng.random() < 0.3:
            c["transaction_costs"] = float(rng.uniform(0.0, 0.01))
    if rng.random() < 0.1:
        c["benchmark_weights"] = dict(zip(tickers, np.full(n, 1.0 / n).tolist()))
        c["max_tracking_error"] = float(rng.uniform(0.005, 0.2))
    if rng.random() < 0.08:
        c["max_assets"] = int(rng.integers(1, n + 1))
    opts: dict[str, Any] = {}
    if objective == "efficient_return":
        opts["target_return"] = float(rng.uniform(-0.2, 0.8))
    elif objective == "efficient_risk":
        opts["target_volatility"] = float(rng.uniform(0.03, 0.5))
    elif objective == "max_utility":
        opts["risk_aversion"] = float(10 ** rng.uniform(-1, 2))
    elif objective == "min_cvar":
        opts["confidence"] = float(rng.choice([0.9, 0.95, 0.99]))
    return Case(seed, R, objective, c, opts)


def violations(cs: Case, w: np.ndarray, cov_annual: np.ndarray, mu_annual: np.ndarray) -> list[str]:
    """Every constraint of ``cs`` that ``w`` breaks by more than :data:`TOL`, from the case's numbers."""
    c, tickers = cs.constraints, list(cs.returns.columns)
    n = len(tickers)
    out: list[str] = []
    if not np.isfinite(w).all():
        return [f"non-finite weights {w.tolist()}"]
    if abs(w.sum() - 1.0) > TOL:
        out.append(f"sum {w.sum():.9g} != 1")
    long_only = c.get("long_only", True)

    def per_asset(v, default):
        if v is None:
            return np.full(n, default)
        if isinstance(v, dict):
            return np.array([v.get(t, default) for t in tickers], dtype=float)
        return np.full(n, float(v))

    lo = per_asset(c.get("min_weight"), 0.0 if long_only else -np.inf)
    hi = per_asset(c.get("max_weight"), np.inf)
    if long_only:
        lo = np.maximum(lo, 0.0)
    if (w < lo - TOL).any():
        out.append(f"below min_weight: {w.round(9).tolist()} < {lo.tolist()}")
    if (w > hi + TOL).any():
        out.append(f"above max_weight: {w.round(9).tolist()} > {hi.tolist()}")
    groups = c.get("groups") or {}
    for g, cap in (c.get("group_max") or {}).items():
        tot = sum(wi for t, wi in zip(tickers, w) if groups.get(t) == g)
        if tot > cap + TOL:
            out.append(f"group {g} {tot:.9g} > max {cap}")
    for g, floor in (c.get("group_min") or {}).items():
        tot = sum(wi for t, wi in zip(tickers, w) if groups.get(t) == g)
        if tot < floor - TOL:
            out.append(f"group {g} {tot:.9g} < min {floor}")
    if c.get("leverage") is not None and np.abs(w).sum() > c["leverage"] + TOL:
        out.append(f"gross {np.abs(w).sum():.9g} > leverage {c['leverage']}")
    if c.get("max_turnover") is not None:
        w0 = np.array([c["current_weights"][t] for t in tickers])
        if np.abs(w - w0).sum() > c["max_turnover"] + TOL:
            out.append(f"turnover {np.abs(w - w0).sum():.9g} > {c['max_turnover']}")
    if c.get("max_tracking_error") is not None:
        d = w - np.array([c["benchmark_weights"][t] for t in tickers])
        te = float(np.sqrt(max(d @ cov_annual @ d, 0.0)))
        if te > c["max_tracking_error"] + TOL:
            out.append(f"tracking error {te:.9g} > {c['max_tracking_error']}")
    if c.get("max_assets") is not None and (np.abs(w) > TOL).sum() > c["max_assets"]:
        out.append(f"{int((np.abs(w) > TOL).sum())} holdings > max_assets {c['max_assets']}")
    if cs.objective == "efficient_return" and float(mu_annual @ w) < cs.options["target_return"] - TOL:
        out.append(f"return {float(mu_annual @ w):.9g} < target {cs.options['target_return']}")
    if cs.objective == "efficient_risk":
        vol = float(np.sqrt(max(w @ cov_annual @ w, 0.0)))
        if vol > cs.options["target_volatility"] + TOL:
            out.append(f"volatility {vol:.9g} > target {cs.options['target_volatility']}")
    return out


def run_case(cs: Case) -> tuple[str, str]:
    """``(outcome, detail)``: outcome ``"ok"``, ``"error:<QpoError class>"`` or ``"FAIL:<why>"``."""
    import qpo
    from qpo.errors import QpoError

    try:
        cons = qpo.Constraints(**cs.constraints)
        problem = qpo.PortfolioProblem.from_returns(cs.returns, constraints=cons)
        res = qpo.optimize(problem, cs.objective, confidence_level=None, **cs.options)
    except QpoError as exc:
        msg = str(exc)
        if len(msg) < 20 or msg.startswith("<"):
            return "FAIL:unclear message", f"{type(exc).__name__}: {msg!r}"
        return f"error:{type(exc).__name__}", msg
    except Exception as exc:  # noqa: BLE001 - the fuzz reports every other exception as a failure
        return f"FAIL:{type(exc).__name__}", "".join(traceback.format_exception(exc)[-3:])[-600:]
    w = res.weights.to_numpy()
    broken = violations(cs, w, problem.annual_cov(), problem.annual_mu())
    if broken:
        return "FAIL:constraint", f"{res.solver}: {'; '.join(broken)}"
    for name in ("expected_return", "volatility"):
        if not np.isfinite(getattr(res, name)):
            return "FAIL:non-finite figure", f"{name} = {getattr(res, name)}"
    return "ok", res.solver


def run(seeds) -> dict:
    """Run the cases of ``seeds``: counts by outcome and by objective, failures with their seeds, seconds."""
    t0 = time.perf_counter()
    outcomes: collections.Counter[str] = collections.Counter()
    by_objective: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    failures: list[dict] = []
    for seed in seeds:
        cs = case(int(seed))
        kind, detail = run_case(cs)
        outcomes[kind] += 1
        by_objective[cs.objective]["ok" if kind == "ok" else "error" if kind.startswith("error") else "fail"] += 1
        if kind.startswith("FAIL"):
            failures.append({"seed": int(seed), "objective": cs.objective, "constraints": cs.constraints,
                             "options": cs.options, "outcome": kind, "detail": detail})
    return {"cases": int(sum(outcomes.values())), "outcomes": dict(sorted(outcomes.items())),
            "by_objective": {k: dict(v) for k, v in sorted(by_objective.items())}, "failures": failures,
            "seconds": time.perf_counter() - t0}


def main(argv: list[str] | None = None) -> int:
    from benchmarks._common import finish, parser, start, write_results

    ap: argparse.ArgumentParser = parser(__doc__, shared=False)
    ap.add_argument("--cases", type=int, default=None, help="how many cases (default 10,000; --smoke 50)")
    args = ap.parse_args(argv)
    n = args.cases or (50 if args.smoke else 2000 if args.quick else 10_000)
    t_start = time.perf_counter()
    results = start(args, ["cvxpy", "clarabel", "scs", "osqp", "highspy", "pyscipopt", "numpy"])
    results.update(run(range(n)))
    finish(results, t_start)
    rate = results["cases"] / results["seconds"]
    lines = [f"# Optimizer fuzz ({results['date']}, {results['mode']})", "",
             f"{results['cases']:,} random constraint sets on real S&P 500 sub-panels (3, 5 or 8 names) in "
             f"{results['seconds']:.1f} s ({rate:.0f} cases/s); every result checked within {TOL:g}.", "",
             "| outcome | cases |", "| --- | ---: |"]
    lines += [f"| {k} | {v:,} |" for k, v in results["outcomes"].items()]
    lines += ["", "| objective | ok | qpo error | failure |", "| --- | ---: | ---: | ---: |"]
    lines += [f"| {k} | {v.get('ok', 0):,} | {v.get('error', 0):,} | {v.get('fail', 0):,} |"
              for k, v in results["by_objective"].items()]
    lines += ["", f"Failures: {len(results['failures'])}"]
    lines += [f"- seed {f['seed']} ({f['objective']}): {f['outcome']}: {f['detail'][:300]}" for f in results["failures"][:50]]
    path = write_results(args.out, "fuzz_optimizer", results, "\n".join(lines))
    print("\n".join(lines[:12]))
    print(f"wrote {path}")
    return 1 if results["failures"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
