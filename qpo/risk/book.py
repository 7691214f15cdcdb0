"""Risk of a whole book of portfolios at once: the numbers :func:`qpo.risk_report` gives each
portfolio, computed as matrix operations over the book.

:func:`book_risk` takes the weights of every portfolio (one row each, one column per ticker, 0
where a name is not held) and one return panel, and computes, for all portfolios together:

* the portfolio returns ``P = R @ W.T`` (dates x portfolios), one matrix product;
* volatility (``std(P, ddof=1) * sqrt(periods_per_year)`` along the dates);
* historical VaR and CVaR (``np.partition`` along the dates; overlapping ``horizon``-period sums
  by a cumulative sum) and parametric (normal) VaR and CVaR from the moments of ``P``
  (``std(P)^2 = w' S w``, the covariance quadratic form, without forming S);
* beta against the benchmark, maximum drawdown (cumulative product and maximum along the dates);
* the stress scenarios of :func:`qpo.risk_report`: each historical window (one product of the
  weights with the names' window returns), the market shocks (the portfolios' betas on the
  benchmark, or on the equal-weighted average of each portfolio's names), the shock of each
  portfolio's largest sector (its names in that sector, equal-weighted) and doubled volatility;
* every compliance check of each portfolio's own :class:`~qpo.risk.Limits`.

Only the assembly of each portfolio's JSON details and of the breach messages loops over
portfolios (and, when a portfolio's VaR limit is on a Monte Carlo method, that portfolio's
Monte Carlo run: see :func:`book_risk`).

**The same numbers as** ``risk_report``: row ``p`` of the result equals
``qpo.risk_report(w, returns[held], benchmark=benchmark_returns, confidence=confidence,
periods_per_year=..., horizon=horizon, sectors=sectors, history=history[held] without the dates on
which none of the held names has a return, limits=limits[p])`` where ``held`` are the tickers of
row ``p`` with a non-zero weight and ``w`` their weights: exactly the call
:func:`qpo.reporting.daily.daily_report` makes for one portfolio. The tests compare a sample to
1e-10.
"""
from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from qpo._checks import check_confidence, whole
from qpo.data.sectors import UNCLASSIFIED
from qpo.errors import DataError, InvalidValueError, UnknownOptionError
from qpo.risk import _book_parts as parts
from qpo.risk._book_inputs import benchmark_array as _benchmark
from qpo.risk._book_inputs import check_returns as _check_returns
from qpo.risk._book_inputs import check_weights as _check_weights
from qpo.risk._book_inputs import limits_list as _limits_list
from qpo.risk._book_inputs import num as _num
from qpo.risk._book_inputs import signed as _signed
from qpo.risk.compliance import HOLDING_TOLERANCE, Limits, unclassified_row
from qpo.risk.metrics import frequency_of, percent

#: the float columns of :attr:`BookRiskResult.table`, then ``compliant`` (bool) and ``breaches`` (int)
COLUMNS = ("volatility", "var_historical", "cvar_historical", "var_parametric", "cvar_parametric", "beta",
           "max_drawdown", "worst_stress")
MISSING_POLICIES = ("report", "raise")


@dataclass
class BookRiskResult:
    """The risk of every portfolio of a book (:func:`book_risk`).

    ``table``: one row per portfolio (the weights' index), the float columns :data:`COLUMNS`
    (VaR and CVaR positive losses at the run's confidence and horizon; ``beta`` NaN without a
    benchmark; ``worst_stress`` the largest stress loss, NaN when no scenario could be computed),
    ``compliant`` (every check passed; True when the portfolio has no limits) and ``breaches``
    (failed checks). A portfolio in ``skipped`` has NaN numbers, ``compliant`` False and 0 breaches.

    ``details``: ``{portfolio_id: {...}}``, JSON-able: ``status`` (``"ok"``, ``"unpriced"``,
    ``"empty"``), ``limits``, ``stress`` (one ``{scenario, kind, loss, coverage}`` per scenario, as
    ``risk_report(...).stress``), ``compliance`` (one ``{check, value, limit, passed}`` per check,
    as ``risk_report(...).compliance``) and ``message`` for a skipped portfolio.

    ``breaches``: every failed compliance check, ``{portfolio_id, check, value, limit, message}``;
    ``message`` is the line ``risk_report(...).breaches`` gives.

    ``skipped``: ``{portfolio_id: why}`` for the portfolios that could not be computed (a held name
    without a return on some date of the window, or no holding at all)."""

    table: pd.DataFrame
    details: dict[Any, dict]
    breaches: list[dict]
    skipped: dict[Any, str] = field(default_factory=dict)
    as_of: pd.Timestamp | None = None
    start: pd.Timestamp | None = None
    end: pd.Timestamp | None = None
    n_periods: int = 0
    periods_per_year: int = 252
    confidence: float = 0.95
    horizon: int = 1
    elapsed_s: float = 0.0

    def __len__(self) -> int:
        return len(self.table)


def book_risk(weights: pd.DataFrame, returns: pd.DataFrame, *, benchmark_returns: pd.Series | None,
              limits: Sequence[Limits | None] | Mapping[Any, Limits | None] | None = None,
              sectors: Mapping[str, str] | None = None, confidence: float = 0.95, horizon: int = 1,
              periods_per_year=None, as_of=None, history: pd.DataFrame | None = None,
              stress_scenarios: dict | None = None, missing: str = "report", chunk_size: int = 2000,
              n_scenarios: int = 100_000, seed: int = 0) -> BookRiskResult:
    """Volatility, VaR/CVaR (historical and parametric), beta, drawdown, the stress scenarios and
    every compliance check of every portfolio of a book, in bulk (see the module docstring for
    the equivalence with :func:`qpo.risk_report`).

    Parameters
    ----------
    weights
        One row per portfolio (the index: portfolio ids), one column per ticker, 0 where a name is
        not held: the weights ``risk_report`` gets for that portfolio (cash excluded, as the daily
        report's). NaN/inf, duplicate ids, an empty book and a held ticker absent from ``returns``
        are a :class:`~qpo.errors.DataError`.
    returns
        Asset returns over the risk window (dates x tickers; e.g. three years of daily returns),
        cut at ``as_of`` when given.
    benchmark_returns
        Benchmark returns on every date of ``returns`` (a date missing is a DataError), or None
        (no beta; market shocks on each portfolio's equal-weighted names).
    limits
        One :class:`~qpo.risk.Limits` (or a dict of its fields, or None: nothing checked) per row
        of ``weights``, or a mapping portfolio id -> Limits. A VaR limit on ``historical``,
        ``normal`` or ``cornish_fisher`` is checked in bulk; on a Monte Carlo method it runs
        :func:`qpo.risk.monte_carlo_var` for that portfolio (``n_scenarios``, ``seed``: the
        report's defaults), a loop over those portfolios only.
    sectors
        ``{ticker: sector}``; None: the bundled GICS map (as ``risk_report``).
    confidence, horizon, periods_per_year
        As :func:`qpo.risk_report`; ``periods_per_year`` None reads the frequency from the dates.
    as_of
        The date of the run: ``returns`` and ``history`` are cut there; recorded in the result.
    history
        Asset returns over a longer past for the historical stress windows (default ``returns``),
        e.g. ``prices_to_returns(prices, dropna="none")``; NaN before a listing is kept.
    stress_scenarios
        ``{name: (start, end)}`` (default :data:`qpo.risk.stress.HISTORICAL_SCENARIOS`).
    missing
        A portfolio holding a ticker with a NaN return on some date of the window cannot be
        reported (``risk_report`` refuses it: ``DataError``). ``"report"`` (default): the rest of
        the book is computed and that portfolio is listed in ``skipped`` with the tickers and the
        first date (status ``"unpriced"`` in ``details``); ``"raise"``: a DataError naming them.
    chunk_size
        Portfolios per block (bounds the memory: a block holds a few dates x chunk_size arrays).
    """
    t0 = time.perf_counter()
    from qpo.risk.stress import HISTORICAL_SCENARIOS
    from qpo.risk.var import VAR_METHODS, _check_horizon

    check_confidence(confidence)
    horizon = _check_horizon(horizon)
    if missing not in MISSING_POLICIES:
        raise UnknownOptionError("missing-prices policy", missing, MISSING_POLICIES)
    chunk_size = whole("chunk_size", chunk_size, 1)
    returns = _check_returns(returns, as_of)
    weights = _check_weights(weights, returns)
    if len(returns) < max(3, horizon):
        raise DataError(f"need at least {max(3, horizon)} dates of returns for the book's risk "
                        f"(horizon {horizon}), got {len(returns)}")
    pids = weights.index
    lims = _limits_list(limits, pids)
    for pid, lim in zip(pids, lims, strict=True):
        if lim is not None and lim.var_limit is not None and lim.var_method not in VAR_METHODS:
            raise UnknownOptionError(f"var_method of portfolio {pid!r}", lim.var_method, VAR_METHODS)
    b = _benchmark(benchmark_returns, returns.index)
    frequency = frequency_of(returns, periods_per_year)
    ppy = frequency.periods_per_year
    scenarios = HISTORICAL_SCENARIOS if stress_scenarios is None else dict(stress_scenarios)
    for name, (s, e) in scenarios.items():
        if pd.Timestamp(s) >= pd.Timestamp(e):
            raise InvalidValueError(f"stress scenario {name!r}: start {s} is not before end {e}")
    if b is not None and not float(((b - b.mean()) ** 2).sum()) > 0:
        raise DataError("the benchmark has no variance over the window: the market shocks' betas are undefined")

    # the universe: tickers held by some portfolio
    W_all = weights.to_numpy(dtype=float)
    used = np.flatnonzero((W_all != 0.0).any(axis=0))
    tickers = [weights.columns[i] for i in used]
    W = np.ascontiguousarray(W_all[:, used])
    H = W != 0.0
    R = returns[tickers].to_numpy(dtype=float)
    nan_r = np.isnan(R)
    if np.isinf(R).any():
        raise DataError("returns hold inf values for " + str([tickers[i] for i in np.flatnonzero(np.isinf(R).any(0))][:10]))
    skipped: dict[Any, str] = {}
    status = np.array(["ok"] * len(pids), dtype=object)
    gap_cols = nan_r.any(axis=0)
    if gap_cols.any():
        gap_rows = np.flatnonzero((H & gap_cols).any(axis=1))
        for r in gap_rows:
            cols = [tickers[i] for i in np.flatnonzero(H[r] & gap_cols)]
            first = returns.index[nan_r[:, [tickers.index(c) for c in cols]].any(axis=1)][0]
            skipped[pids[r]] = (f"returns hold NaN for held tickers {cols} (first {first.date()}): no risk figures; "
                                "price them or trim the window")
            status[r] = "unpriced"
        if missing == "raise" and len(gap_rows):
            raise DataError(f"{len(gap_rows)} portfolio(s) hold tickers with NaN returns in the window: "
                            + "; ".join(f"{pid}: {skipped[pid]}" for pid in list(skipped)[:5]))
        R = np.where(nan_r, 0.0, R)
    for r in np.flatnonzero(~H.any(axis=1)):
        skipped[pids[r]] = "holds no names (every weight is 0): nothing to report"
        status[r] = "empty"
    ok = np.flatnonzero(status == "ok")

    # sectors: the risk report's groups (the bundled map when none is given)
    if sectors is None:
        from qpo.data.sectors import BUNDLED_SECTORS

        groups: dict = dict(BUNDLED_SECTORS)
        bundled = True
    else:
        groups, bundled = dict(sectors), False
    known = [groups.get(t) for t in tickers]
    shock_sectors = sorted({s for s in known if s is not None})
    onehot_shock = np.zeros((len(tickers), len(shock_sectors)))
    for i, s in enumerate(known):
        if s is not None:
            onehot_shock[i, shock_sectors.index(s)] = 1.0
    labels = [groups.get(t, UNCLASSIFIED) for t in tickers]
    comp_sectors = sorted(set(labels))
    onehot_comp = np.zeros((len(tickers), len(comp_sectors)))
    for i, s in enumerate(labels):
        onehot_comp[i, comp_sectors.index(s)] = 1.0
    has_known = (H.astype(float) @ (np.array([s is not None for s in known], dtype=float))) > 0
    groups_empty = (~has_known) if bundled else np.full(len(pids), not groups)

    # the stress history: each portfolio's first and last date on which one of its names has a return
    hist_frame = returns if history is None else _check_returns(history, as_of, "history")
    hist = hist_frame.reindex(columns=tickers).to_numpy(dtype=float)
    hist_dates = pd.DatetimeIndex(hist_frame.index)
    has = ~np.isnan(hist)
    n_h = hist.shape[0]
    fv = np.where(has.any(axis=0), has.argmax(axis=0), n_h)
    lv = np.where(has.any(axis=0), n_h - 1 - has[::-1].argmax(axis=0), -1)

    n = len(pids)
    out = {c: np.full(n, np.nan) for c in COLUMNS}
    stress_names = list(scenarios) + [f"market {_signed(-0.10)}", f"market {_signed(-0.20)}"]
    hist_loss = np.full((n, len(scenarios)), np.nan)
    hist_cov = np.zeros((n, len(scenarios)))
    market_loss = np.full((n, 2), np.nan)
    sector_name: list[str | None] = [None] * n
    sector_loss = np.full(n, np.nan)
    vol_loss = np.full(n, np.nan)
    var_by_method: dict[str, np.ndarray] = {m: np.full(n, np.nan) for m in ("historical", "normal", "cornish_fisher")}
    need_cf = np.array([lim is not None and lim.var_limit is not None and lim.var_method == "cornish_fisher"
                        for lim in lims])
    maxw, n_names = np.zeros(n), np.zeros(n, dtype=int)
    sector_sums, sector_present = np.zeros((n, len(comp_sectors))), np.zeros((n, len(comp_sectors)), dtype=bool)
    from qpo.risk.var import _normal_z

    z, _ = _normal_z(confidence)
    for lo in range(0, len(ok), chunk_size):
        idx = ok[lo:lo + chunk_size]
        Wc, Hc = W[idx], H[idx]
        P = R @ Wc.T  # dates x portfolios
        mean, std = P.mean(axis=0), P.std(axis=0, ddof=1)
        out["volatility"][idx] = std * math.sqrt(ppy)
        vh, ch = parts.historical_var_cvar(P, confidence, horizon)
        out["var_historical"][idx], out["cvar_historical"][idx] = vh, ch
        vn, cn = parts.parametric_var_cvar(mean, std, confidence, horizon)
        out["var_parametric"][idx], out["cvar_parametric"][idx] = vn, cn
        var_by_method["historical"][idx], var_by_method["normal"][idx] = vh, vn
        if need_cf[idx].any():
            frame = pd.DataFrame(P)
            vc, _ = parts.parametric_var_cvar(mean, std, confidence, horizon, skew=frame.skew().to_numpy(),
                                              kurt=frame.kurt().to_numpy(), method="cornish_fisher")
            var_by_method["cornish_fisher"][idx] = vc
        if b is not None:
            out["beta"][idx] = parts.benchmark_beta(P, b)
        out["max_drawdown"][idx] = parts.max_drawdown(P)
        # historical windows
        first = np.where(Hc, fv[None, :], n_h).min(axis=1)
        last = np.where(Hc, lv[None, :], -1).max(axis=1)
        for j, (s, e) in enumerate(scenarios.values()):
            ret, cov = parts.window_stress(Wc, Hc, hist, hist_dates, first, last, s, e)
            hist_loss[idx, j], hist_cov[idx, j] = -ret, cov
        # market shocks: betas on the benchmark, or on each portfolio's names equal-weighted
        if b is not None:
            beta_m = parts.betas(P, b)
        else:
            F = R @ (Hc / Hc.sum(axis=1, keepdims=True)).T
            beta_m = parts.betas(P, F)
        market_loss[idx, 0], market_loss[idx, 1] = 0.10 * beta_m, 0.20 * beta_m
        # the largest sector down 20 %
        names = parts.largest_sector(Wc, Hc, onehot_shock, shock_sectors, tickers, groups)
        members = np.zeros_like(Wc)
        with_sector = [k for k, s in enumerate(names) if s is not None]
        for k in with_sector:
            members[k] = Hc[k] & (onehot_shock[:, shock_sectors.index(names[k])] > 0)
        if with_sector:
            M = members[with_sector]
            Fs = R @ (M / M.sum(axis=1, keepdims=True)).T
            beta_s = parts.betas(P[:, with_sector], Fs)
            sector_loss[idx[with_sector]] = 0.20 * beta_s
        for k, s in zip(idx, names, strict=True):
            sector_name[k] = s
        # volatility doubled: the one-period normal VaR with every volatility x2
        vol_loss[idx] = np.where(std > 0, -(mean + 2.0 * std * z), -mean)
        # weights for the compliance checks
        absw = np.abs(Wc)
        maxw[idx] = np.where(absw > HOLDING_TOLERANCE, absw, 0.0).max(axis=1)
        n_names[idx] = (absw > HOLDING_TOLERANCE).sum(axis=1)
        sector_sums[idx] = Wc @ onehot_comp
        sector_present[idx] = (Hc.astype(float) @ onehot_comp) > 0
    all_loss = np.column_stack([hist_loss, market_loss, sector_loss, vol_loss])
    with np.errstate(all="ignore"):
        finite = np.isfinite(all_loss)
        out["worst_stress"] = np.where(finite.any(axis=1), np.where(finite, all_loss, -np.inf).max(axis=1), np.nan)
    # Monte Carlo VaR limits: that portfolio's own run
    for r in ok:
        lim = lims[r]
        if lim is not None and lim.var_limit is not None and lim.var_method.startswith("monte_carlo"):
            var_by_method.setdefault(lim.var_method, np.full(n, np.nan))
            var_by_method[lim.var_method][r] = _monte_carlo(W[r], H[r], tickers, returns, lim.var_method,
                                                            confidence, horizon, n_scenarios, seed)

    # assembly: per portfolio JSON details, compliance rows and breach messages
    var_label = f"{percent(confidence)} {horizon}-period"
    details: dict[Any, dict] = {}
    breaches: list[dict] = []
    compliant = np.zeros(n, dtype=bool)
    n_breach = np.zeros(n, dtype=int)
    hist_kinds = [("historical", name) for name in scenarios]
    limit_dicts = {id(lim): lim.to_dict() for lim in lims if lim is not None}
    sector_label = f" {_signed(-0.20)}"
    for r, pid in enumerate(pids):  # type: ignore[assignment]
        lim = lims[r]
        if status[r] != "ok":
            details[pid] = {"status": status[r], "message": skipped[pid],
                            "limits": limit_dicts[id(lim)] if lim is not None else None, "stress": [], "compliance": []}
            continue
        stress = [{"scenario": name, "kind": kind, "loss": _num(hist_loss[r, j]), "coverage": float(hist_cov[r, j])}
                  for j, (kind, name) in enumerate(hist_kinds)]
        stress += [{"scenario": stress_names[len(scenarios) + j], "kind": "market", "loss": _num(market_loss[r, j]),
                    "coverage": 1.0} for j in range(2)]
        if sector_name[r] is not None:
            stress.append({"scenario": f"{sector_name[r]}{sector_label}", "kind": "sector",
                           "loss": _num(sector_loss[r]), "coverage": 1.0})
        stress.append({"scenario": f"volatility x{2.0:g}", "kind": "volatility", "loss": _num(vol_loss[r]),
                       "coverage": 1.0})
        checks = [] if lim is None else _checks(int(r), lim, maxw, n_names, sector_sums, sector_present, comp_sectors,
                                                var_by_method, bool(groups_empty[r]), var_label, W, tickers, labels)
        failed = [c for c in checks if c["passed"] is False]  # None: not checked (names without a sector)
        compliant[r], n_breach[r] = not failed, len(failed)
        for c in failed:
            breaches.append({"portfolio_id": pid, "check": c["check"], "value": c["value"], "limit": c["limit"],
                             "message": f"{c['check']}: {c.pop('detail')}"})
        for c in checks:
            c.pop("detail", None)
            c["value"] = _num(c["value"])
        details[pid] = {"status": "ok", "limits": dict(limit_dicts[id(lim)]) if lim is not None else None,
                        "stress": stress,
                        "compliance": checks}
    table = pd.DataFrame(out, index=pids)[list(COLUMNS)]
    table["compliant"] = compliant
    table["breaches"] = n_breach
    for pid in skipped:
        table.loc[pid, "compliant"] = False
    return BookRiskResult(table=table, details=details, breaches=breaches, skipped=skipped,
                          as_of=pd.Timestamp(as_of) if as_of is not None else None,
                          start=pd.Timestamp(returns.index[0]), end=pd.Timestamp(returns.index[-1]),
                          n_periods=len(returns), periods_per_year=ppy, confidence=float(confidence),
                          horizon=horizon, elapsed_s=time.perf_counter() - t0)


def _monte_carlo(w: np.ndarray, h: np.ndarray, tickers: list, returns: pd.DataFrame, method: str,
                 confidence: float, horizon: int, n_scenarios: int, seed: int) -> float:
    from qpo.risk.var import monte_carlo_var

    held = [tickers[i] for i in np.flatnonzero(h)]
    mc = monte_carlo_var(pd.Series(w[h], index=held), returns[held], confidence=confidence, horizon=horizon,
                         n_scenarios=n_scenarios, method=method.removeprefix("monte_carlo_"), seed=seed)
    return mc.var


def _checks(r: int, lim: Limits, maxw, n_names, sector_sums, sector_present, comp_sectors, var_by_method,
            groups_empty: bool, var_label: str, W: np.ndarray, tickers: list, labels: list) -> list[dict]:
    """The rows of :func:`qpo.risk.compliance.check_compliance` for portfolio ``r`` from the
    book's vectorized numbers (``detail`` is the report's text; popped by the caller)."""
    rows = []
    if lim.max_weight is not None:
        v = float(maxw[r])
        passed = not v > lim.max_weight + 1e-9
        if passed:
            detail = ""  # only a breach's text is kept
        else:
            held = np.flatnonzero(np.abs(W[r]) > HOLDING_TOLERANCE)
            a = np.abs(W[r, held])
            # pandas' sort_values(ascending=False) order (ties as it leaves them), without a Series per portfolio
            order = np.arange(a.size)[::-1][a[::-1].argsort(kind="quicksort")][::-1]
            over = [i for i in order if a[i] > lim.max_weight + 1e-9]
            detail = ", ".join(f"{tickers[held[i]]} {a[i]:.1%}" for i in over[:5]) + (
                f" and {len(over) - 5} more" if len(over) > 5 else "")
        rows.append({"check": "max single name", "value": v, "limit": float(lim.max_weight), "passed": passed,
                     "detail": detail})
    if lim.sector_max is not None:
        uniform = not isinstance(lim.sector_max, dict)
        caps: dict[str, float] = ({str(s): float(v) for s, v in lim.sector_max.items()}
                                  if isinstance(lim.sector_max, dict) else
                                  {comp_sectors[k]: float(lim.sector_max) for k in np.flatnonzero(sector_present[r])})
        suffix = " (no sector map given: every name is Unclassified)" if groups_empty else ""
        for s, cap in caps.items():
            k = comp_sectors.index(s) if s in comp_sectors else None
            v = float(sector_sums[r, k]) if k is not None and sector_present[r, k] else 0.0
            if uniform and s == UNCLASSIFIED:  # unknown, not one sector: passed None (check_compliance's NOT_CHECKED)
                names = [tickers[i] for i in np.flatnonzero(np.abs(W[r]) > HOLDING_TOLERANCE)
                         if labels[i] == UNCLASSIFIED]
                if names:  # held long or short, whatever their net weight
                    row = unclassified_row(v, float(cap), names, not groups_empty)
                    rows.append({"check": row["check"], "value": v, "limit": float(cap), "passed": None,
                                 "detail": row["detail"]})
                continue
            rows.append({"check": f"sector {s}", "value": v, "limit": float(cap), "passed": not v > cap + 1e-9,
                         "detail": f"{s} {v:.1%} of the portfolio{suffix}"})
    if lim.min_names is not None:
        k = int(n_names[r])
        rows.append({"check": "min names", "value": float(k), "limit": float(lim.min_names),
                     "passed": not k < lim.min_names, "detail": f"{k} holdings"})
    if lim.var_limit is not None:
        v = float(var_by_method[lim.var_method][r])
        undefined = not math.isfinite(v)
        rows.append({"check": f"VaR ({lim.var_method})", "value": v, "limit": float(lim.var_limit),
                     "passed": not (undefined or v > lim.var_limit),
                     "detail": (f"{var_label} {lim.var_method} VaR is undefined here: the limit cannot be shown to hold"
                                if undefined else
                                f"{var_label} VaR {v:.2%} against a limit of {lim.var_limit:.2%}").strip()})
    return rows
