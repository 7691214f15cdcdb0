"""Stress tests: historical windows replayed on today's weights, and hypothetical shocks.

Conventions
-----------
* **Historical replay**: the portfolio bought at today's weights at the close of the window's
  first day and held (no rebalancing) to the close of its last day. Each asset's window return is
  its compounded simple return over the trading days in ``(start, end]``; the portfolio's return
  is ``sum_i w_i R_i`` and each asset's contribution ``w_i R_i``. An asset without a full price
  history over the window is replaced by the benchmark's window return when a benchmark is given
  (named in ``note``), otherwise it contributes nothing and ``coverage`` (the share of gross
  weight with data) says so. A window the data do not reach is reported as such, not guessed.
  On data coarser than daily the window is measured between the data's dates at or before its
  start and its end (named in ``note`` when either lies more than 4 days away); when either lies
  more than a fifth of the window away (monthly data cannot resolve the 33 days of the 2020 crash),
  the scenario is reported unresolved (no return, coverage 0), not as another window's return.
* **Hypothetical shocks** are propagated to every asset through betas estimated over the report's
  window (the conditional expectation of the asset's return given the shocked factor, in a
  linear-Gaussian model: ``E[r_i | f = x] = beta_i x``):

  - ``{"kind": "market", "shock": -0.2}``: the market factor (the benchmark's returns when given,
    otherwise the equal-weighted average of every column of the returns) falls 20 %;
  - ``{"kind": "sector", "sector": "Energy", "shock": -0.3}``: the sector's equal-weighted
    average return falls 30 %;
  - ``{"kind": "volatility", "factor": 2.0}``: every volatility doubles (correlations kept); the
    loss is the one-period parametric normal VaR at the report's confidence under the scaled
    covariance, and the contributions its Euler components.

* ``loss`` is a positive number for a loss (``-portfolio_return``).
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from qpo.errors import DataError, InvalidValueError, UnknownOptionError

HISTORICAL_SCENARIOS: dict[str, tuple[str, str]] = {
    "Dot-com bust 2000-02": ("2000-03-24", "2002-10-09"),
    "Global financial crisis 2008": ("2007-10-09", "2009-03-09"),
    "US downgrade 2011": ("2011-07-22", "2011-10-03"),
    "COVID crash 2020": ("2020-02-19", "2020-03-23"),
    "Rates shock 2022": ("2022-01-03", "2022-10-12"),
}
"""S&P 500 peak-to-trough windows (closes): the default historical scenarios."""

SHOCK_KINDS = ("market", "sector", "volatility")


def default_shocks(weights: pd.Series, groups: dict[str, str] | None) -> list[dict]:
    """The market down 10 % and 20 %, the portfolio's largest sector down 20 % (when sectors are
    known), volatility doubled."""
    shocks: list[dict] = [{"kind": "market", "shock": -0.10}, {"kind": "market", "shock": -0.20}]
    if groups:
        known = weights[[t in groups for t in weights.index]]  # a partial map: the names it gives a sector
        by_sector = known.groupby([str(groups[t]) for t in known.index]).sum()
        if len(by_sector):
            shocks.append({"kind": "sector", "sector": str(by_sector.idxmax()), "shock": -0.20})
    shocks.append({"kind": "volatility", "factor": 2.0})
    return shocks


def _worst(contrib: pd.Series, top: int) -> str:
    worst = contrib.sort_values().head(top)
    worst = worst[worst < 0]
    return ", ".join(f"{t} {v:+.2%}" for t, v in worst.items()) or "none lost"


#: days by which a window's ends may miss the data's dates with nothing said (weekends, holidays)
ALIGN_DAYS = 4
#: the share of a window's length by which its ends may miss the data's dates at most
ALIGN_SHARE = 0.2


def window_alignment(index: pd.DatetimeIndex, start, end) -> tuple[bool, str]:
    """Whether the dates ``index`` resolve the window (start, end] (see the module), and the note
    to show: empty when the window's ends lie on (or within 4 days after) the data's dates."""
    start, end = pd.Timestamp(start), pd.Timestamp(end)
    i, j = int(index.searchsorted(start, side="right")) - 1, int(index.searchsorted(end, side="right")) - 1
    if i < 0 or j <= i:
        return True, ""  # not reached, or no date inside: said elsewhere
    d_a, d_b = index[i], index[j]
    off_a, off_b = (start - d_a).days, (end - d_b).days
    if max(off_a, off_b) <= ALIGN_DAYS:
        return True, ""
    length = (end - start).days
    if max(off_a, off_b) > ALIGN_SHARE * length:
        return False, (f"the data's dates cannot resolve this {length}-day window: the nearest dates at or before "
                       f"its start and end ({d_a.date()}, {d_b.date()}) lie {off_a} and {off_b} days before them")
    return True, f"measured from {d_a.date()} to {d_b.date()}, the data's dates nearest the window"


def _window_returns(history: pd.DataFrame, start, end) -> tuple[pd.Series, bool]:
    """Compounded returns of each column over (start, end]; NaN where a column lacks data. The
    flag says whether the data reach the whole window."""
    start, end = pd.Timestamp(start), pd.Timestamp(end)
    covered = history.index[0] <= start and history.index[-1] >= end
    rows = history.loc[(history.index > start) & (history.index <= end)]
    if rows.empty:
        return pd.Series(np.nan, index=history.columns), False
    total = (1.0 + rows).prod(min_count=len(rows)) - 1.0
    total[rows.isna().any()] = np.nan
    return total, covered


def historical_stress(weights: pd.Series, history: pd.DataFrame, scenarios: dict | None = None,
                      benchmark: pd.Series | None = None, top: int = 3) -> tuple[pd.DataFrame, dict]:
    """One row per historical scenario, and each scenario's contributions by asset."""
    scenarios = HISTORICAL_SCENARIOS if scenarios is None else scenarios
    rows, contributions = [], {}
    gross = float(weights.abs().sum()) or 1.0
    for name, (start, end) in scenarios.items():
        if pd.Timestamp(start) >= pd.Timestamp(end):
            raise InvalidValueError(f"stress scenario {name!r}: start {start} is not before end {end}")
        asset_r, covered = _window_returns(history.reindex(columns=weights.index), start, end)
        base = {"scenario": name, "kind": "historical", "start": pd.Timestamp(start).date(),
                "end": pd.Timestamp(end).date()}
        if not covered:
            rows.append({**base, "portfolio_return": np.nan, "loss": np.nan, "worst_contributors": "",
                         "coverage": 0.0, "note": f"the data ({history.index[0].date()} to "
                                                  f"{history.index[-1].date()}) do not reach this window"})
            continue
        resolved, note = window_alignment(history.index, start, end)
        if not resolved:
            rows.append({**base, "portfolio_return": np.nan, "loss": np.nan, "worst_contributors": "",
                         "coverage": 0.0, "note": note})
            continue
        missing = asset_r.index[asset_r.isna()].tolist()
        if missing and benchmark is not None:
            b_r, b_cov = _window_returns(benchmark.to_frame("benchmark"), start, end)
            if b_cov and np.isfinite(b_r.iloc[0]):
                asset_r[missing] = float(b_r.iloc[0])
                note = "; ".join(filter(None, [note, f"no prices for {missing} over the window: the benchmark's "
                                                     "return stands in"]))
        if asset_r.isna().any():
            gone = asset_r.index[asset_r.isna()].tolist()
            note = "; ".join(filter(None, [note, f"no prices for {gone} over the window: left out (coverage below)"]))
        contrib = (weights * asset_r).fillna(0.0)
        coverage = float(weights[asset_r.notna()].abs().sum()) / gross
        ret = float(contrib.sum())
        contributions[name] = contrib
        rows.append({**base, "portfolio_return": ret, "loss": -ret, "worst_contributors": _worst(contrib, top),
                     "coverage": coverage, "note": note})
    return pd.DataFrame(rows), contributions


def _betas(returns: pd.DataFrame, factor: np.ndarray) -> np.ndarray:
    R = returns.to_numpy(dtype=float)
    if not np.isfinite(factor).all():
        raise DataError("the shock's factor has NaN returns in the window; betas are undefined")
    f = factor - factor.mean()
    var = float(f @ f)
    if not var > 0:
        raise DataError("the shock's factor has no variance over the window; betas are undefined")
    return (R - R.mean(axis=0)).T @ f / var


def hypothetical_stress(weights: pd.Series, returns: pd.DataFrame, shocks: list, *, groups: dict | None = None,
                        benchmark: pd.Series | None = None, confidence: float = 0.95,
                        top: int = 3) -> tuple[pd.DataFrame, dict]:
    """One row per hypothetical shock (see the module's conventions)."""
    from qpo.risk.metrics import percent, portfolio_returns
    from qpo.risk.var import _normal_z

    portfolio_returns(weights, returns)  # the tickers are columns, without NaN
    complete = returns.loc[:, returns.notna().all()]  # factors from the fully priced columns only
    held = returns[list(weights.index)]
    w = weights.to_numpy(dtype=float)
    rows, contributions = [], {}
    for raw in shocks:
        shock = _parse_shock(raw)
        kind = shock["kind"]
        if kind == "volatility":
            k = shock["factor"]
            cov = np.atleast_2d(np.cov(held.to_numpy(dtype=float), rowvar=False, ddof=1)) * k * k
            mu = held.to_numpy(dtype=float).mean(axis=0)
            sd = math.sqrt(max(float(w @ cov @ w), 0.0))
            z, _ = _normal_z(confidence)
            comp = w * mu + w * (cov @ w) / sd * z if sd > 0 else w * mu
            contrib = pd.Series(comp, index=weights.index)
            name = f"volatility x{k:g}"
            detail = f"1-period normal VaR {percent(confidence)} with every volatility x{k:g}"
        else:
            if kind == "market":
                if benchmark is not None:
                    b = pd.Series(benchmark, dtype=float).reindex(returns.index)
                    if b.isna().any():
                        raise DataError("the benchmark lacks returns on some of the report's dates; the market "
                                        "shock needs them all")
                    factor, label = b.to_numpy(), "the benchmark"
                else:
                    factor, label = complete.to_numpy(dtype=float).mean(axis=1), "the equal-weighted universe"
                name = f"market {_signed(shock['shock'])}"
            else:
                sector = shock["sector"]
                members = [t for t in complete.columns if (groups or {}).get(t) == sector]
                if not members:
                    known = sorted({g for t in complete.columns if (g := (groups or {}).get(t)) is not None})
                    raise DataError(f"sector shock: no fully priced asset of the returns is in sector {sector!r}; "
                                    f"sectors present: {known}")
                factor, label = complete[members].to_numpy(dtype=float).mean(axis=1), f"{sector} (equal-weighted)"
                name = f"{sector} {_signed(shock['shock'])}"
            beta = _betas(held, factor)
            contrib = pd.Series(w * beta * shock["shock"], index=weights.index)
            detail = f"{label} {_signed(shock['shock'])}, propagated by betas over the report window"
        while name in contributions:
            name += " (again)"
        ret = float(contrib.sum(skipna=False))
        contributions[name] = contrib
        rows.append({"scenario": name, "kind": kind, "start": None, "end": None, "portfolio_return": ret,
                     "loss": -ret, "worst_contributors": _worst(contrib, top), "coverage": 1.0, "note": detail})
    return pd.DataFrame(rows), contributions


def _signed(x: float) -> str:
    from qpo.risk.metrics import percent

    return ("-" if x < 0 else "+") + percent(abs(x))


def _parse_shock(raw) -> dict:
    if isinstance(raw, (tuple, list)):
        if raw and raw[0] == "sector" and len(raw) == 3:
            raw = {"kind": "sector", "sector": raw[1], "shock": raw[2]}
        elif raw and raw[0] == "volatility" and len(raw) == 2:
            raw = {"kind": "volatility", "factor": raw[1]}
        elif raw and len(raw) == 2:
            raw = {"kind": raw[0], "shock": raw[1]}
    if not isinstance(raw, dict) or "kind" not in raw:
        raise InvalidValueError(f"a shock is a dict such as {{'kind': 'market', 'shock': -0.2}}, {{'kind': "
                                f"'sector', 'sector': 'Energy', 'shock': -0.3}} or {{'kind': 'volatility', "
                                f"'factor': 2}}; got {raw!r}")
    if raw["kind"] not in SHOCK_KINDS:
        raise UnknownOptionError("shock kind", raw["kind"], SHOCK_KINDS)
    if raw["kind"] == "volatility":
        f = raw.get("factor")
        if not isinstance(f, (int, float)) or isinstance(f, bool) or not f > 0:
            raise InvalidValueError(f"a volatility shock's factor must be a positive number (2 doubles it), got {f!r}")
    else:
        s = raw.get("shock")
        if not isinstance(s, (int, float)) or isinstance(s, bool) or not -1 <= s <= 10:
            raise InvalidValueError(f"a {raw['kind']} shock is a return between -1 and 10 (-0.2 is a 20 % fall), "
                                    f"got {s!r}")
        if raw["kind"] == "sector" and not raw.get("sector"):
            raise InvalidValueError("a sector shock names its sector: {'kind': 'sector', 'sector': 'Energy', "
                                    "'shock': -0.3}")
    return dict(raw)
