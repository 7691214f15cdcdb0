"""Brinson-Fachler performance attribution against a benchmark portfolio, by sector.

For one period, with sector weights ``wp_j``/``wb_j``, sector returns ``Rp_j``/``Rb_j`` (each
sector's holdings as a sub-portfolio) and the benchmark's total return ``Rb``:

* allocation ``(wp_j - wb_j)(Rb_j - Rb)``;
* selection ``wb_j (Rp_j - Rb_j)``;
* interaction ``(wp_j - wb_j)(Rp_j - Rb_j)``;

summing over sectors to the active return ``Rp - Rb``. When a book's weights do not sum to 1,
the rest is cash, a "Cash" sector that earns nothing. A sector the portfolio does not hold takes
``Rp_j = Rb_j`` (no selection, no interaction); a sector the benchmark does not hold takes
``Rb_j = Rp_j`` (the whole effect is allocation).

Over many periods (the portfolio and the benchmark each held at constant weights, rebalanced every
period, as :func:`qpo.risk.portfolio_returns` does), the one-period effects are linked with Carino's
logarithmic factors ``k_t / k``, ``k_t = (ln(1+Rp_t) - ln(1+Rb_t)) / (Rp_t - Rb_t)`` (``1/(1+Rp_t)``
when they are equal), ``k`` the same over the whole window, so that the linked effects sum exactly
to the compounded active return ``prod(1+Rp_t) - prod(1+Rb_t)``.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from qpo.errors import DataError
from qpo.risk.metrics import portfolio_returns


def _carino(rp: np.ndarray, rb: np.ndarray) -> np.ndarray:
    diff = rp - rb
    with np.errstate(divide="ignore", invalid="ignore"):
        # ln(1+rp) - ln(1+rb) = ln(1 + diff/(1+rb)): no cancellation when diff is tiny
        k = np.where(diff != 0, np.log1p(diff / (1.0 + rb)) / diff, 1.0 / (1.0 + rb))
    return k


def brinson_fachler(weights: pd.Series, benchmark_weights: pd.Series, returns: pd.DataFrame,
                    groups: dict[str, str] | None = None, unclassified: str = "Unclassified") -> pd.DataFrame:
    """Allocation, selection and interaction by sector (rows; a ``Total`` row last) over the
    window of ``returns``, Carino-linked. Also the sectors' weights and compounded returns."""
    tickers = sorted(set(weights.index) | set(benchmark_weights.index), key=list(returns.columns).index
                     if set(weights.index) | set(benchmark_weights.index) <= set(returns.columns) else str)
    missing = [t for t in tickers if t not in returns.columns]
    if missing:
        raise DataError(f"attribution: the returns have no column for {missing}")
    wp = weights.reindex(tickers, fill_value=0.0).astype(float)
    wb = benchmark_weights.reindex(tickers, fill_value=0.0).astype(float)
    rp_total = portfolio_returns(wp, returns).to_numpy()
    rb_total = portfolio_returns(wb, returns).to_numpy()
    R = returns[tickers].to_numpy(dtype=float)
    labels = np.array([(groups or {}).get(t, unclassified) for t in tickers])
    if abs(wp.sum() - 1) > 1e-9 or abs(wb.sum() - 1) > 1e-9:
        # the identity needs both books to sum to 1: the rest is cash, a sector that earns nothing
        tickers = [*tickers, "(cash)"]
        cash = [1.0 - x.sum() for x in (wp, wb)]
        wp["(cash)"], wb["(cash)"] = (c if abs(c) > 1e-9 else 0.0 for c in cash)
        R = np.column_stack([R, np.zeros(len(R))])
        labels = np.append(labels, "Cash")
    sectors = sorted(set(labels))
    T = R.shape[0]
    alloc, select, inter = (np.zeros((T, len(sectors))) for _ in range(3))
    wp_s, wb_s = np.zeros(len(sectors)), np.zeros(len(sectors))
    rp_s, rb_s = np.zeros((T, len(sectors))), np.zeros((T, len(sectors)))
    for j, s in enumerate(sectors):
        m = labels == s
        wp_j, wb_j = float(wp[m].sum()), float(wb[m].sum())
        for side, wj, wv in (("portfolio", wp_j, wp.to_numpy()[m]), ("benchmark", wb_j, wb.to_numpy()[m])):
            if abs(wj) <= 1e-12 and np.abs(wv).sum() > 1e-12:
                raise DataError(f"Brinson-Fachler: the {side}'s long and short positions in sector {s!r} net to "
                                "zero, so the sector has no return to attribute; group those names differently "
                                "or attribute by asset (one group per ticker)")
        wp_s[j], wb_s[j] = wp_j, wb_j
        # a side without weight in the sector takes the other side's return (no effect), or 0 when neither has any
        rb_own = R[:, m] @ wb.to_numpy()[m] / wb_j if abs(wb_j) > 1e-12 else None
        rp_own = R[:, m] @ wp.to_numpy()[m] / wp_j if abs(wp_j) > 1e-12 else None
        rb_j = rb_own if rb_own is not None else (rp_own if rp_own is not None else np.zeros(T))
        rp_j = rp_own if rp_own is not None else rb_j
        rp_s[:, j], rb_s[:, j] = rp_j, rb_j
        alloc[:, j] = (wp_j - wb_j) * (rb_j - rb_total)
        select[:, j] = wb_j * (rp_j - rb_j)
        inter[:, j] = (wp_j - wb_j) * (rp_j - rb_j)
    Rp, Rb = float(np.prod(1 + rp_total) - 1), float(np.prod(1 + rb_total) - 1)
    k_t = _carino(rp_total, rb_total)
    k = float(_carino(np.array([Rp]), np.array([Rb]))[0])
    link = k_t / k
    out = pd.DataFrame({
        "portfolio_weight": wp_s, "benchmark_weight": wb_s,
        "portfolio_return": np.prod(1 + rp_s, axis=0) - 1, "benchmark_return": np.prod(1 + rb_s, axis=0) - 1,
        "allocation": link @ alloc, "selection": link @ select, "interaction": link @ inter,
    }, index=pd.Index(sectors, name="sector"))
    out["total"] = out["allocation"] + out["selection"] + out["interaction"]
    total = pd.DataFrame({"portfolio_weight": wp_s.sum(), "benchmark_weight": wb_s.sum(), "portfolio_return": Rp,
                          "benchmark_return": Rb, "allocation": out["allocation"].sum(),
                          "selection": out["selection"].sum(), "interaction": out["interaction"].sum(),
                          "total": out["total"].sum()}, index=pd.Index(["Total"], name="sector"))
    return pd.concat([out, total])
