"""The daily report's what-if: the rebalance the portfolio's own strategy proposes on the report's
date (:func:`qpo.book.propose_rebalance` with ``save=False``, a dry run), with its trades and its
numbers before and after.

It is **not stored** as a proposal: a report runs every weekday, as the system actor, and may be
run for a past date whose ledger has moved on since; an open proposal is an advisor's act
(``qpo rebalance propose NAME``), reviewed and accepted or rejected. The report's MLflow run keeps
the what-if's numbers (``what_if_*``) with the report's own.

A what-if that cannot be built (the strategy is infeasible on that date, a name it may buy has too
short a history) never fails the report: the section says why."""
from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pandas as pd

if TYPE_CHECKING:
    from qpo.book.rebalance import RebalanceProposal

#: the trades the report lists (largest notional first); the section says how many more there are
TRADES_SHOWN = 10
#: the what-if's numbers, before and after the trades (rows of RebalanceProposal.comparison)
COMPARED = ("expected_return", "volatility", "var", "cvar", "n_names", "cash_weight")

NOT_RECORDED = ("A dry run: this proposal is not stored and no trade is made. The portfolio's advisor stores one for "
                "review with `qpo rebalance propose {name}` (or the dashboard's Rebalance tab).")


@dataclass
class WhatIf:
    """``status`` is ``proposal`` (``proposal`` holds the dry-run :class:`~qpo.book.RebalanceProposal`)
    or ``unavailable`` (``message`` says why); ``overrides`` are the strategy fields given for this
    report (the notebook's ``max_weight``), empty when the portfolio's own strategy was used whole."""

    status: str
    message: str
    proposal: RebalanceProposal | None = field(default=None, repr=False)
    overrides: dict[str, Any] = field(default_factory=dict)

    @property
    def available(self) -> bool:
        return self.status == "proposal"

    @property
    def weights(self) -> pd.Series | None:
        """The weights after the proposal's trades (fractions of the whole value, cash included), of
        the names held or bought; None when there is no proposal."""
        if self.proposal is None:
            return None
        after = self.proposal.weights["after"]
        return after[after.abs() > 0].rename("what-if")

    def trades_table(self, n: int = TRADES_SHOWN) -> pd.DataFrame:
        """The ``n`` largest trades by notional (side, ticker, shares, price, notional, cost)."""
        if self.proposal is None:
            return pd.DataFrame(columns=["side", "ticker", "shares", "price", "notional", "cost"])
        t = self.proposal.trades
        return t.reindex(t["notional"].abs().sort_values(ascending=False, kind="stable").index).head(n).reset_index(
            drop=True)

    def summary_table(self) -> pd.DataFrame:
        """Before and after the trades: expected return, volatility, VaR and CVaR (one period, the
        strategy's confidence), names held and cash weight over the strategy's lookback; then the
        turnover, the trades' total cost and their number."""
        if self.proposal is None:
            return pd.DataFrame(columns=["before", "after"])
        p = self.proposal
        table = p.comparison.loc[list(COMPARED), ["before", "after"]].copy()
        table.loc["turnover"] = [float("nan"), p.turnover]
        table.loc["total_cost"] = [float("nan"), p.total_cost]
        table.loc["n_trades"] = [float("nan"), float(len(p.trades))]
        table.index.name = "metric"
        return table

    def html(self) -> str:
        """The section: what was proposed and from which strategy, the before/after table, the
        largest trades and the note that nothing was stored."""
        from qpo.reporting.rebalance import format_number

        e = html.escape
        if self.proposal is None:
            return f'<p class="qpo-what-if-unavailable">{e(self.message)}</p>'
        p = self.proposal
        parts = [f'<p class="qpo-what-if">{e(self.message)}</p>',
                 f'<p class="qpo-what-if-not-recorded"><b>{e(NOT_RECORDED.format(name=p.portfolio))}</b></p>']
        labels = {"expected_return": "expected return (annual)", "volatility": "volatility (annual)",
                  "var": f"VaR {p.strategy.confidence:.0%} (one period)",
                  "cvar": f"CVaR {p.strategy.confidence:.0%} (one period)", "n_names": "names held",
                  "cash_weight": "cash weight", "turnover": "turnover", "total_cost": "total cost ($)",
                  "n_trades": "trades"}
        rows = "".join(f"<tr><th>{e(labels.get(m, m))}</th>"
                       + "".join(f"<td>{e(format_number(m, v))}</td>" for v in r) + "</tr>"
                       for m, r in self.summary_table().iterrows())
        parts.append('<table class="qpo-what-if-summary"><thead><tr><th></th><th>before</th><th>after</th></tr>'
                     f"</thead><tbody>{rows}</tbody></table>")
        if p.trades.empty:
            parts.append("<p>No trades: the holdings are already at the strategy's target.</p>")
            return "".join(parts)
        shown = self.trades_table()
        rows = "".join(f'<tr class="trade-{e(str(t.side))}"><td>{e(str(t.side))}</td><td>{e(str(t.ticker))}</td>'
                       f"<td>{t.shares:,.6g}</td><td>{t.price:,.2f}</td><td>{t.notional:,.2f}</td><td>{t.cost:,.2f}</td></tr>"
                       for t in shown.itertuples(index=False))
        more = len(p.trades) - len(shown)
        caption = (f"The {len(shown)} largest of {len(p.trades)} trades (by notional)" if more
                   else f"The {len(p.trades)} trade(s)")
        parts.append(f'<table class="qpo-what-if-trades"><caption>{e(caption)}</caption><thead><tr><th>side</th>'
                     "<th>ticker</th><th>shares</th><th>price</th><th>notional ($)</th><th>estimated cost ($)</th>"
                     f"</tr></thead><tbody>{rows}</tbody></table>")
        if p.violations:
            parts.append("<p>Not met after whole-share rounding: " + e("; ".join(p.violations)) + "</p>")
        return "".join(parts)

    def metrics(self) -> dict[str, Any]:
        """Flat values to record: ``what_if_available``, and with a proposal its turnover, total cost,
        number of trades, cash after, and each compared number before and after
        (``what_if_proposal_volatility_before``, ...)."""
        out: dict[str, Any] = {"what_if_available": int(self.available), "what_if_status": self.status}
        if self.proposal is None:
            return out
        p = self.proposal
        out.update({"what_if_turnover": p.turnover, "what_if_total_cost": p.total_cost,
                    "what_if_n_trades": len(p.trades), "what_if_cash_after": p.cash_after,
                    "what_if_objective": p.strategy.objective})
        for m in COMPARED:
            for col in ("before", "after"):
                out[f"what_if_proposal_{m}_{col}"] = float(p.comparison.loc[m, col])
        return out


def what_if_overrides(max_weight=None) -> dict[str, Any]:
    """The strategy fields a report gives for its what-if: ``max_weight`` (the per-name cap of the
    target) when not None."""
    return {} if max_weight is None else {"max_weight": max_weight}


def what_if_proposal(portfolio: str, prices: pd.DataFrame, as_of: pd.Timestamp, *, strategy, actor, engine,
                     sectors=None, overrides: dict[str, Any] | None = None) -> WhatIf:
    """The dry-run proposal of ``portfolio`` as of ``as_of`` from ``strategy`` (the portfolio's own,
    already checked with ``overrides``): a :class:`WhatIf`. Planning errors (an infeasible target,
    too short a history) make an ``unavailable`` section that says why; access errors raise."""
    from qpo.book import propose_rebalance
    from qpo.errors import DataError, InfeasibleError, InvalidValueError, ProblemError, SolverError, StoreError

    overrides = dict(overrides or {})
    given = f", with {', '.join(f'{k}={v}' for k, v in sorted(overrides.items()))} given for this report" if overrides else ""
    try:
        proposal = propose_rebalance(portfolio, as_of=as_of, actor=actor, prices=prices, engine=engine, save=False,
                                     sectors=sectors, **overrides)
    except StoreError:
        raise
    except (DataError, InfeasibleError, ProblemError, SolverError, InvalidValueError) as exc:
        return WhatIf("unavailable", f"No what-if rebalance is shown: the portfolio's strategy "
                                     f"({strategy.objective}{given}) could not propose one on {as_of.date()} "
                                     f"({type(exc).__name__}: {exc}).", overrides=overrides)
    sells, buys = int((proposal.trades["side"] == "sell").sum()), int((proposal.trades["side"] == "buy").sum())
    window = proposal.parameters.get("window") or ["?", "?"]
    msg = (f"The rebalance the portfolio's own strategy proposes on {as_of.date()} (objective "
           f"{proposal.strategy.objective}{given}; current weights, turnover cap and costs included): {sells} sell(s) "
           f"and {buys} buy(s), turnover {proposal.turnover:.1%}, estimated cost {proposal.total_cost:,.2f}, cash "
           f"{proposal.cash_before:,.2f} -> {proposal.cash_after:,.2f}. Before and after over the strategy's "
           f"lookback ({window[0]} to {window[1]}).")
    return WhatIf("proposal", msg, proposal=proposal, overrides=overrides)
