"""Rounding a target to a trade list that keeps every constraint: each trade is rounded toward the
holding (a full exit sells every share), sells are rounded up where a name or a group must come
down to its cap, buys are cut until cash (after costs) is >= 0 and the turnover cap holds, and the
cash left is spent, a share at a time, on the names furthest below their target while every
constraint still holds. Used by :func:`qpo.book.rebalance.plan_rebalance`."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from qpo.errors import InvalidValueError
from qpo.optimization.constraints import ResolvedConstraints

#: a constraint holds when it is met to this (weights; cash to 1e-9 of the value)
TOLERANCE = 1e-8
#: a target weight at or below this is an exit; a change of weight below it is no trade
NEGLIGIBLE_WEIGHT = 1e-6
#: the share step of fractional trades
FRACTIONAL_STEP = 1e-6
TRADE_COLUMNS = ["side", "ticker", "shares", "price", "notional", "cost"]


# -- rounding: from target weights to a trade list that keeps every constraint ----------------------
@dataclass(frozen=True)
class _State:
    """The portfolio after holding ``shares`` (the trade is ``shares - held``)."""

    shares: np.ndarray
    trade: np.ndarray
    cost: np.ndarray
    cash: float
    value: float
    weights: np.ndarray


@dataclass(frozen=True)
class RoundedTrade:
    """The outcome of :func:`round_trades`, in the universe's order."""

    tickers: list[str]
    shares_before: np.ndarray
    shares_after: np.ndarray
    trade: np.ndarray
    prices: np.ndarray
    cost: np.ndarray
    cash_before: float
    cash_after: float
    value_before: float
    value_after: float
    weights_before: np.ndarray
    weights_after: np.ndarray
    violations: list[str]

    def trades(self) -> pd.DataFrame:
        """The trade list: side, ticker, shares, price, notional, cost; sells first, larger first."""
        d = self.trade
        moved = d != 0
        frame = pd.DataFrame({
            "side": np.where(d < 0, "sell", "buy")[moved],
            "ticker": np.asarray(self.tickers, dtype=object)[moved],
            "shares": np.abs(d[moved]),
            "price": self.prices[moved],
            "notional": np.abs(d[moved]) * self.prices[moved],
            "cost": self.cost[moved],
        }, columns=TRADE_COLUMNS)
        frame["_order"] = frame["side"].map({"sell": 0, "buy": 1})
        frame = frame.sort_values(["_order", "notional", "ticker"], ascending=[True, False, True], kind="stable")
        return frame.drop(columns="_order").reset_index(drop=True)


class _Book:
    """The arithmetic of one rounding: states of candidate holdings and the constraints they break."""

    def __init__(self, held, price, cash, target, rc: ResolvedConstraints, commission, spread, step):
        self.s0, self.p, self.cash0, self.t, self.rc = held, price, cash, target, rc
        self.commission, self.spread, self.step = commission, spread, step
        self.v0 = float(cash + held @ price)
        self.w0 = held * price / self.v0 if self.v0 > 0 else np.zeros_like(held)

    def state(self, shares: np.ndarray) -> _State:
        d = shares - self.s0
        notional = np.abs(d) * self.p
        cost = np.where(d != 0, self.commission + self.spread * notional, 0.0)
        cash = float(self.cash0 - d @ self.p - cost.sum())
        value = float(cash + shares @ self.p)
        return _State(shares, d, cost, cash, value, shares * self.p / value)

    # what an upper-type constraint exceeds by (<= 0 when it holds); all fall when buys shrink
    def excess(self, st: _State) -> dict[str, float]:
        rc, w = self.rc, st.weights
        out = {"cash": -st.cash / self.v0 - 1e-9, "budget": w.sum() - rc.budget - TOLERANCE}
        if rc.max_turnover is not None:
            out["turnover"] = np.abs(w - self.w0).sum() - rc.max_turnover - TOLERANCE
        if rc.leverage is not None:
            out["leverage"] = np.abs(w).sum() - rc.leverage - TOLERANCE
        return out

    def over_cap(self, st: _State) -> np.ndarray:
        return st.weights > self.rc.upper + TOLERANCE

    def group_excess(self, st: _State) -> np.ndarray:
        if not len(self.rc.group_names):
            return np.zeros(0)
        return self.rc.group_matrix @ st.weights - self.rc.group_upper - TOLERANCE

    def shortfall(self, st: _State) -> float:
        """How far the lower-type constraints (min_weight, group_min, min_position) are missed."""
        rc, w = self.rc, st.weights
        out = float(np.clip(rc.lower - w, 0, None).sum())
        if len(rc.group_names):
            out += float(np.clip(rc.group_lower - rc.group_matrix @ w, 0, None)[np.isfinite(rc.group_lower)].sum())
        if rc.min_position is not None:
            held = st.shares > 0
            out += float(np.clip(rc.min_position - w[held], 0, None).sum())
        return out

    def upper_ok(self, st: _State) -> bool:
        if max(self.excess(st).values()) > 0 or self.over_cap(st).any():
            return False
        if (self.group_excess(st) > 0).any():
            return False
        return self.rc.max_assets is None or int((st.shares > 0).sum()) <= max(
            self.rc.max_assets, int((self.s0 > 0).sum()))

    def violations(self, st: _State) -> list[str]:
        """Every constraint the state breaks, in words."""
        rc, w, names = self.rc, st.weights, self.rc.tickers
        out = []
        if st.cash < -1e-9 * self.v0:
            out.append(f"cash after the trades is {st.cash:,.2f} (< 0)")
        for i in np.flatnonzero(w > rc.upper + TOLERANCE):
            out.append(f"{names[i]} weighs {w[i]:.6g} after the trades, above its max_weight {rc.upper[i]:g}")
        for i in np.flatnonzero(w < rc.lower - TOLERANCE):
            out.append(f"{names[i]} weighs {w[i]:.6g} after the trades, below its min_weight {rc.lower[i]:g}"
                       " (whole shares cannot reach it with the cash available)")
        if len(rc.group_names):
            tot = rc.group_matrix @ w
            for g, v, lo, hi in zip(rc.group_names, tot, rc.group_lower, rc.group_upper):
                if v > hi + TOLERANCE or v < lo - TOLERANCE:
                    out.append(f"group {g!r} weighs {v:.6g} after the trades, outside [{lo:g}, {hi:g}]")
        if w.sum() > rc.budget + TOLERANCE:
            out.append(f"weights sum to {w.sum():.6g}, above the budget {rc.budget:g}")
        if rc.max_turnover is not None and np.abs(w - self.w0).sum() > rc.max_turnover + TOLERANCE:
            out.append(f"turnover {np.abs(w - self.w0).sum():.6g} above max_turnover {rc.max_turnover:g}")
        if rc.leverage is not None and np.abs(w).sum() > rc.leverage + TOLERANCE:
            out.append(f"gross exposure {np.abs(w).sum():.6g} above leverage {rc.leverage:g}")
        held = st.shares > 0
        if rc.max_assets is not None and held.sum() > rc.max_assets:
            out.append(f"{int(held.sum())} names held after the trades, max_assets is {rc.max_assets}")
        if rc.min_position is not None and held.any() and w[held].min() < rc.min_position - TOLERANCE:
            out.append(f"a held weight {w[held].min():.6g} is below min_position {rc.min_position:g}")
        if (st.shares < 0).any():
            out.append(f"{names[int(np.argmin(st.shares))]} would be sold short")
        return out

    # share arithmetic on the step grid
    def floor(self, x):
        return np.round(np.floor(np.asarray(x, dtype=float) / self.step + 1e-9) * self.step, 6)

    def ceil(self, x):
        return np.round(np.ceil(np.asarray(x, dtype=float) / self.step - 1e-9) * self.step, 6)


def round_trades(held, price, cash: float, target, constraints: ResolvedConstraints, *, commission: float = 0.0,
                 spread_bps: float = 0.0, fractional: bool = False) -> RoundedTrade:
    """Trades in whole shares (``fractional``: steps of 1e-6) from ``held`` shares and ``cash`` to
    near the ``target`` weights (fractions of the value held now, cash included), keeping every
    constraint of ``constraints`` (resolved in the same order as the arrays; see the module's notes).

    ``held``, ``price`` and ``target`` are arrays in the order of ``constraints.tickers``. The
    constraints' ``current`` weights are ignored: turnover is measured from the weights held now.
    """
    s0 = np.asarray(held, dtype=float)
    p = np.asarray(price, dtype=float)
    t = np.clip(np.asarray(target, dtype=float), 0.0, None)
    step = FRACTIONAL_STEP if fractional else 1.0
    book = _Book(s0, p, float(cash), t, constraints, float(commission), float(spread_bps) / 1e4, step)
    n = len(s0)
    if book.v0 <= 0:
        raise InvalidValueError("the portfolio is worth nothing (no shares of value, no cash): there is nothing to "
                                "rebalance; deposit cash first")

    # 1. each trade toward the holding; exits sell every share; noise is no trade
    d_star = t * book.v0 / p - s0
    d = np.sign(d_star) * book.floor(np.abs(d_star))
    exits = (t <= NEGLIGIBLE_WEIGHT) & (s0 > 0)
    d[exits] = -s0[exits]
    d[(np.abs(t - book.w0) <= NEGLIGIBLE_WEIGHT) & ~exits] = 0.0
    h = np.maximum(s0 + d, 0.0)

    # 2. names above their cap sell down to it (the sell rounded up), groups above theirs too; again
    #    while a new trade's commission lifts another name above its cap
    for _ in range(8):
        for _ in range(8):
            st = book.state(h)
            over = book.over_cap(st)
            if not over.any():
                break
            cap_shares = constraints.upper[over] * st.value / p[over] - book.step * 1e-3
            # the trade stays on the share grid (a fractional holding keeps its fraction), or exits
            h[over] = np.clip(np.minimum(h[over], s0[over] + book.floor(cap_shares - s0[over])), 0.0, None)
        for _ in range(4 * n + 8):
            st = book.state(h)
            gx = book.group_excess(st)
            if not (gx > 0).any():
                break
            g = int(np.argmax(gx))
            members = (constraints.group_matrix[g] > 0) & (h > 0)
            if not members.any():
                break
            gap = np.where(members, st.weights - t, -np.inf)
            i = int(np.argmax(gap))
            need = (gx[g] + TOLERANCE) * st.value / p[i]
            h[i] = max(h[i] - max(book.step, float(book.ceil(need))), 0.0)
        st = book.state(h)
        if not book.over_cap(st).any() and not (book.group_excess(st) > 0).any():
            break

    # 3. buys cut in proportion until the cash (after costs) covers them
    st = book.state(h)
    if st.cash < 0:
        buys = h > s0
        spend = float(((h - s0)[buys] @ p[buys]) * (1 + book.spread))
        if spend > 0:
            alpha = max(spend + st.cash, 0.0) / spend
            h[buys] = s0[buys] + book.floor(alpha * (h - s0)[buys])

    # 4. buys (then sells) cut until cash, budget, turnover and leverage hold
    for _ in range(4 * n + 64):
        st = book.state(h)
        ex = book.excess(st)
        worst = max(ex.values())
        if worst <= 0:
            break
        need_w = max(worst, 0.0) + TOLERANCE
        buys = h > s0
        if buys.any():
            i = int(np.argmax(np.where(buys, st.weights - t, -np.inf)))
            x = min(h[i] - s0[i], max(book.step, float(book.ceil(need_w * st.value / p[i]))))
            h[i] -= x
            continue
        if ex.get("turnover", -1.0) > 0:
            # only sells left: shrink the one furthest below its target, never above its cap
            sells = h < s0
            room = book.floor(constraints.upper * st.value / p - book.step * 1e-3 - h)
            ok = sells & (room >= book.step)
            if not ok.any():
                break
            i = int(np.argmin(np.where(ok, st.weights - t, np.inf)))
            x = min(s0[i] - h[i], room[i], max(book.step, float(book.ceil(need_w * st.value / p[i]))))
            h[i] += x
            continue
        if ex["cash"] > 0:
            # costs above the proceeds: drop the sell that brings the least cash in
            sells = (h < s0) & (s0 * p / st.value <= constraints.upper)  # a sale a cap forces stays
            if not sells.any():
                break
            net = np.where(sells, (s0 - h) * p - st.cost, np.inf)
            i = int(np.argmin(net))
            if net[i] >= 0:
                break
            h[i] = s0[i]
            continue
        break

    # 5. names below their min_weight buy what they lack, other buys cut to pay for it if need be
    lows = np.flatnonzero(book.state(h).weights < constraints.lower - TOLERANCE)
    for i in lows[np.argsort(-(constraints.lower - book.state(h).weights)[lows])]:
        st = book.state(h)
        trial = h.copy()
        trial[i] += max(book.step, float(book.ceil((constraints.lower[i] - st.weights[i] + TOLERANCE) * st.value / p[i])))
        for _ in range(n + 1):
            nxt = book.state(trial)
            if nxt.cash >= 0:
                break
            donors = (trial > s0) & (np.arange(n) != i) & (nxt.weights > constraints.lower + TOLERANCE)
            if not donors.any():
                break
            j = int(np.argmax(np.where(donors, nxt.weights - t, -np.inf)))
            trial[j] -= min(trial[j] - s0[j], max(book.step, float(book.ceil(-nxt.cash / (p[j] * (1 + book.spread))))))
        nxt = book.state(trial)
        if book.upper_ok(nxt) and book.shortfall(nxt) < book.shortfall(st) - 1e-12:
            h = trial

    # 6. the cash left buys, a share at a time, the names furthest below target while all holds
    active = (t > NEGLIGIBLE_WEIGHT) & (h >= s0)
    for _ in range(20 * n + 1000):
        st = book.state(h)
        # a gap below NEGLIGIBLE_WEIGHT is noise, unless the name is below its min_weight
        eligible = active & ((t - st.weights > NEGLIGIBLE_WEIGHT) | (st.weights < constraints.lower - TOLERANCE))
        if not eligible.any():
            break
        gap = np.where(eligible, t - st.weights, -np.inf)
        i = int(np.argmax(gap))
        afford = (st.cash - (book.commission if h[i] == s0[i] else 0.0)) / (p[i] * (1 + book.spread))
        want = float(book.floor(gap[i] * st.value / p[i]))
        if st.weights[i] < constraints.lower[i] - TOLERANCE:  # up to its min_weight, rounded up
            want = max(want, float(book.ceil((constraints.lower[i] - st.weights[i] + TOLERANCE) * st.value / p[i])))
        amount = min(want if fractional else max(want, 1.0), float(book.floor(afford)))
        short = book.shortfall(st)
        first = amount
        while amount >= book.step - 1e-12:
            trial = h.copy()
            trial[i] += amount
            nxt = book.state(trial)
            if book.upper_ok(nxt) and book.shortfall(nxt) <= short + 1e-12:
                h = trial
                break
            amount = float(book.floor(amount / 2)) if amount > book.step else 0.0
        if amount < first or amount < book.step - 1e-12:
            active[i] = False  # a constraint (or the cash) stopped it: it is done

    # the trade as the order will say it: on the share grid to 1e-6 (an exit sells every share held)
    d = np.where(h <= 0, -s0, np.round(h - s0, 6))
    st = book.state(s0 + d)
    return RoundedTrade(tickers=list(constraints.tickers), shares_before=s0, shares_after=st.shares, trade=d, prices=p,
                        cost=st.cost, cash_before=float(cash), cash_after=max(st.cash, 0.0) if st.cash > -1e-9 * book.v0 else st.cash,
                        value_before=book.v0, value_after=st.value, weights_before=book.w0, weights_after=st.weights,
                        violations=book.violations(st))
