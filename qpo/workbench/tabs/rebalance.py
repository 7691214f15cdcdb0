"""The dashboard's Rebalance tab: the portfolio's stored strategy in a form, "Propose" (a rebalance
proposal with its trade list, before and after, compliance and figures), and "Accept" / "Reject"
acting through the store as the person signed in.

What the form changes holds for the proposal only (overrides of
:func:`qpo.book.propose_rebalance`); the stored strategy is never changed here. An advisor's (or an
admin's) proposal is stored as open, to be accepted or rejected; a researcher's is a dry run
(nothing stored) and the decision buttons stay disabled. Before Propose and before Accept the board
reads the store's newer closes when a newer day came since the page read its prices, so a proposal
is built on the newest and one built on older closes is refused at Accept ("prices up to ... exist:
rebuild it").

A proposal that cannot be built shows the library's own message (a :class:`qpo.errors.QpoError`:
infeasible caps, stale prices, access refused, ...) in a red box; any other error shows only its
type, never its text (it may hold a secret such as a database URL). Figures are built once and
updated in place (one ``batch_update`` each) on later proposals.
"""
from __future__ import annotations

import html
import math
from collections.abc import Callable, Mapping
from typing import Any

import pandas as pd

from qpo._checks import quote
from qpo.errors import InvalidValueError, QpoError
from qpo.workbench._overview import failure_text

#: the objective option the form offers, by objective: (option, label, default text). min_cvar's
#: confidence and risk_parity's budgets stay as stored (the form does not edit them)
OPTION_FIELDS = {"efficient_return": ("target_return", "Target return (a year)", ""),
                 "efficient_risk": ("target_volatility", "Target volatility (a year)", ""),
                 "max_utility": ("risk_aversion", "Risk aversion", "1")}
#: what a researcher is told beside the disabled buttons
RESEARCHER_NOTE = ("Researchers may only compute proposals (dry runs): nothing is stored, and Accept and "
                   "Reject are disabled.")
ADVISOR_NOTE = ("Propose stores the proposal as open. Accept writes its trades to the ledger; Reject records "
                "your reason. The form changes this proposal only, not the portfolio's stored strategy.")
RED, GREEN = "#c0392b", "#27ae60"
_LABELS = {"expected_return": "expected return (a year)", "volatility": "volatility (a year)",
           "var": "VaR (one period)", "cvar": "CVaR (one period)", "tracking_error": "tracking error to the target",
           "n_names": "names held", "cash_weight": "cash weight"}
#: the caps the form reads as fractions: field -> (label, largest valid, what blank means)
_CAPS = {"max_weight": ("max weight", 1.0, 1.0), "sector_max": ("sector cap", 1.0, None),
         "max_turnover": ("turnover cap", 2.0, None)}


def _cap_text(value) -> str:
    """A cap as the form shows it: a number, blank for none, or the per-name/per-sector caps."""
    if value is None:
        return ""
    if isinstance(value, Mapping):
        return "as stored: " + ", ".join(f"{k} {float(v):g}" for k, v in value.items())
    return f"{float(value):g}"


def _parse_fraction(text: str, field: str) -> float | None:
    """The cap typed in ``field``'s box: a fraction (0.2) or a percentage (20%); blank means none."""
    label, top, blank = _CAPS[field]
    t = str(text).strip()
    if not t:
        return blank
    pct = t.endswith("%")
    try:
        x = float(t[:-1].strip() if pct else t)
    except ValueError:
        raise InvalidValueError(f"{label}: {quote(t, 30)} is not a number; give a fraction such as 0.20 (or 20%), "
                                "or leave it blank for none") from None
    x = x / 100.0 if pct else x
    if not math.isfinite(x) or x < 0 or x > top or (x == 0 and field != "max_turnover"):
        raise InvalidValueError(f"{label}: {t} is outside {'0' if field == 'max_turnover' else '(0'} to {top:g}; it is a "
                                "fraction of the portfolio's value (0.20 or 20% for 20 %)")
    return x


def _option_text(strategy, objective: str) -> str:
    field = OPTION_FIELDS.get(objective)
    if field is None:
        return ""
    if strategy is not None and strategy.objective == objective and field[0] in strategy.objective_options:
        return f"{float(strategy.objective_options[field[0]]):g}"
    return field[2]


def _money(x) -> str:
    return "" if x is None or not math.isfinite(float(x)) else f"${float(x):,.2f}"


def _shares(x: float) -> str:
    return f"{int(x):,}" if float(x) == round(float(x)) else f"{float(x):,.6f}".rstrip("0")


def _box(text: str, color: str, cls: str) -> str:
    """Escaped ``text`` in a coloured box."""
    return (f"<div class='{cls}' style='color:{color};border:1px solid {color};padding:6px 10px;"
            f"border-radius:4px'>{html.escape(text)}</div>")


def _replace_figure(widget, figure) -> None:
    """Give the FigureWidget ``widget`` the traces and layout of ``figure`` in one message to the
    browser: each trace's data in place (a property ``figure`` leaves out is reset), the layout's
    fields and its annotations (none clears them)."""
    same = len(widget.data) == len(figure.data) and all(a.type == b.type for a, b in zip(widget.data, figure.data))
    if not same:  # a different set of traces (not the case for the proposal figures): replace them
        widget.data = ()
        widget.add_traces(list(figure.data))
    with widget.batch_update():
        if same:
            for old, new in zip(widget.data, figure.data):
                props = new.to_plotly_json()
                stale = {k: None for k in old.to_plotly_json() if k not in props and k not in ("type", "uid")}
                old.update({**stale, **props}, overwrite=True)
        widget.layout.update(figure.layout.to_plotly_json(), overwrite=True)
        widget.layout.annotations = figure.layout.annotations


def _refresh(board, tickers=None) -> None:
    """The board's prices read again when the store holds newer closes (of ``tickers``, default
    any): :meth:`qpo.workbench.advisor.AdvisorDashboard.refresh_prices` (a board without it keeps
    its prices)."""
    refresh = getattr(board, "refresh_prices", None)
    if refresh is not None:
        refresh(tickers)


class RebalanceTab:
    """The Rebalance tab of the advisor dashboard (``RebalanceTab(board)``; see
    :mod:`qpo.workbench.tabs`).

    ``widget`` is what the dashboard shows; ``show(name)`` fills the form with portfolio ``name``'s
    stored strategy and clears the last proposal. ``propose()``, ``accept()`` and ``reject()`` are
    what the buttons do (each shows its outcome in ``status``). ``proposal`` is the proposal shown
    (a :class:`qpo.book.RebalanceProposal`, or None), ``figures`` its FigureWidgets by name
    (``weights``, ``trades``, ``comparison``: the same objects from one proposal to the next).
    ``on_change``, when set, is called with the portfolio's name after an accepted proposal changed
    its ledger (the dashboard may redraw what shows the holdings).
    """

    def __init__(self, board) -> None:
        import ipywidgets as widgets

        from qpo.book.strategy import OBJECTIVES

        self.board = board
        self.name: str | None = None
        self.strategy: Any = None  # the stored strategy of the portfolio shown
        self.proposal: Any = None
        self.figures: dict[str, Any] = {}
        self.on_change: Callable[[str], None] | None = None
        self.researcher = getattr(board.actor, "role", None) == "researcher"
        self._prefill: dict[str, Any] = {}
        wide = {"description_width": "140px"}
        def box() -> widgets.Layout:  # one each: a layout hidden (the option box) hides every widget sharing it
            return widgets.Layout(width="340px")

        self.objective = widgets.Dropdown(options=list(OBJECTIVES), description="Objective", style=wide, layout=box())
        self.option = widgets.Text(description="Target", style=wide, layout=box())
        self.max_weight = widgets.Text(description="Max weight", placeholder="0.20 or 20%; blank: none", style=wide,
                                       layout=box())
        self.sector_max = widgets.Text(description="Sector cap", placeholder="0.40 or 40%; blank: none", style=wide,
                                       layout=box())
        self.max_turnover = widgets.Text(description="Turnover cap", placeholder="0.30 or 30%; blank: none",
                                         style=wide, layout=box())
        self.spread_bps = widgets.FloatText(description="Spread (bps)", style=wide, layout=box())
        self.commission = widgets.FloatText(description="Commission / trade", style=wide, layout=box())
        self.fractional = widgets.Checkbox(description="Fractional shares", indent=False)
        self.propose_button = widgets.Button(description="Propose", button_style="primary", disabled=True,
                                             icon="calculator")
        self.accept_button = widgets.Button(description="Accept", button_style="success", disabled=True, icon="check")
        self.reject_button = widgets.Button(description="Reject", button_style="danger", disabled=True, icon="times")
        self.reason = widgets.Textarea(description="Reason", placeholder="Why the proposal is rejected (required "
                                       "to reject)", style=wide, layout=widgets.Layout(width="520px", height="60px"),
                                       disabled=self.researcher)
        self.note = widgets.HTML(f"<p class='qpo-note'><i>{html.escape(RESEARCHER_NOTE if self.researcher else ADVISOR_NOTE)}"
                                 "</i></p>")
        self.status = widgets.HTML()
        self.summary = widgets.HTML()
        self.trades_table = widgets.HTML()
        self.comparison_table = widgets.HTML()
        self.compliance_table = widgets.HTML()
        self.charts = widgets.VBox()
        self.trades_table.layout.margin = "0 40px 0 0"
        self.result = widgets.VBox([self.summary, widgets.HBox([self.trades_table, self.comparison_table]),
                                    self.compliance_table, self.charts], layout=widgets.Layout(display="none"))
        form = widgets.HBox([widgets.VBox([self.objective, self.option, self.max_weight, self.sector_max]),
                             widgets.VBox([self.max_turnover, self.spread_bps, self.commission, self.fractional])])
        decision = widgets.VBox([self.reason, widgets.HBox([self.accept_button, self.reject_button])])
        self.widget = widgets.VBox([widgets.HTML("<h4>Strategy for this proposal</h4>"), form, self.propose_button,
                                    self.note, self.status, self.result, decision])
        self.objective.observe(lambda change: self._objective_changed(change["new"]), names="value")
        self.propose_button.on_click(lambda _b: self.propose())
        self.accept_button.on_click(lambda _b: self.accept())
        self.reject_button.on_click(lambda _b: self.reject())

    # -- the form -----------------------------------------------------------------------------------
    def show(self, name: str) -> None:
        """Portfolio ``name``: the form reset to its stored strategy, no proposal shown."""
        from qpo.book import Strategy
        from qpo.store import get_portfolio, session_scope

        self.name = name
        self._clear()
        self.status.value = ""
        try:
            with session_scope(self.board.engine, write=False) as s:
                raw = get_portfolio(s, self.board.actor, name).strategy
            self.strategy = Strategy.from_json(raw, check_builds=False) if raw else Strategy.default()
        except Exception as exc:  # noqa: BLE001 - shown in the tab (a qpo message, else only its type)
            self.strategy = None
            self.propose_button.disabled = True
            self._error(exc, "The portfolio's strategy could not be read")
            return
        self._fill(self.strategy)
        self.propose_button.disabled = False

    def _fill(self, strategy) -> None:
        c = strategy.constraints
        self._prefill = {"objective": strategy.objective, "max_weight": _cap_text(c.max_weight),
                         "sector_max": _cap_text(strategy.sector_max), "max_turnover": _cap_text(c.max_turnover),
                         "spread_bps": float(strategy.spread_bps), "commission": float(strategy.commission),
                         "fractional": bool(strategy.fractional)}
        if self.objective.value == strategy.objective:
            self._objective_changed(strategy.objective)
        self.objective.value = strategy.objective  # fills the option box (observer)
        for field in ("max_weight", "sector_max", "max_turnover", "spread_bps", "commission", "fractional"):
            getattr(self, field).value = self._prefill[field]

    def _objective_changed(self, objective: str) -> None:
        field = OPTION_FIELDS.get(objective)
        self.option.layout.display = "none" if field is None else None
        if field is not None:
            self.option.description = field[1]
            self.option.placeholder = "e.g. 0.08 (8 %)" if field[0] != "risk_aversion" else "e.g. 3"
        self.option.value = _option_text(self.strategy, objective)

    def overrides(self) -> dict[str, Any]:
        """What the form changes from the stored strategy, as :func:`qpo.book.propose_rebalance`'s
        overrides (a box left as it was filled changes nothing). Raises InvalidValueError for a box
        that does not read as a number."""
        if self.strategy is None:
            raise InvalidValueError("no portfolio is shown: pick one first")
        out: dict[str, Any] = {}
        objective = self.objective.value
        if objective != self._prefill["objective"]:
            out["objective"] = objective
        field = OPTION_FIELDS.get(objective)
        if field is not None:
            text = self.option.value.strip()
            if not text:
                raise InvalidValueError(f"{field[1].lower()}: {objective} needs it (e.g. 0.08 for 8 % a year)")
            if text != _option_text(self.strategy, objective):
                try:
                    value = float(text[:-1]) / 100.0 if text.endswith("%") else float(text)
                except ValueError:
                    raise InvalidValueError(f"{field[1].lower()}: {quote(text, 30)} is not a number") from None
                out[field[0]] = value
        for cap in _CAPS:
            text = getattr(self, cap).value
            if text.strip() != self._prefill[cap]:
                out[cap] = _parse_fraction(text, cap)
        for name in ("spread_bps", "commission", "fractional"):
            value = getattr(self, name).value
            if value != self._prefill[name]:
                out[name] = bool(value) if name == "fractional" else float(value)
        return out

    # -- actions ------------------------------------------------------------------------------------
    def propose(self):
        """Build a proposal for the portfolio shown with the form's changes: stored as open for an
        advisor or admin, a dry run for a researcher. Returns it, or None when it could not be
        built (the reason is shown)."""
        from qpo.book import propose_rebalance

        if self.name is None or self.strategy is None:
            return None
        self._clear()
        self.status.value = ""
        b = self.board
        try:
            _refresh(b)  # the newest closes: a newer day in the store since the page read its prices
            proposal = propose_rebalance(self.name, actor=b.actor, prices=b.prices, engine=b.engine,
                                         save=not self.researcher, **self.overrides())
            self._draw(proposal)
        except Exception as exc:  # noqa: BLE001 - shown in the tab (a qpo message, else only its type)
            self._clear()
            self._error(exc, "The proposal could not be built")
            return None
        self.proposal = proposal
        self._set_buttons()
        return proposal

    def _decidable(self) -> bool:
        p = self.proposal
        return not self.researcher and p is not None and p.id is not None and p.status == "open"

    def _set_buttons(self) -> None:
        self.accept_button.disabled = self.reject_button.disabled = not self._decidable()

    def accept(self) -> bool:
        """Accept the open proposal shown (its trades into the ledger, the optimization run and the
        audit row); says what was recorded. True when accepted."""
        from qpo.book import accept_rebalance

        name = self.name
        if not self._decidable() or name is None:
            return False
        p, b = self.proposal, self.board
        try:
            # the store's newest closes of its names: one built on older closes is refused ("rebuild it")
            _refresh(b, sorted({*p.target.index, *p.trades["ticker"]}))
            done = accept_rebalance(p.id, actor=b.actor, prices=b.prices, engine=b.engine)
        except Exception as exc:  # noqa: BLE001
            self._error(exc, "The proposal could not be accepted")
            return False
        p.status = done.status
        self._set_buttons()
        n = len(done.trades)
        text = (f"Accepted proposal #{p.id}: {n} trade{'s' if n != 1 else ''} written to the ledger of {self.name} "
                f"(dated {done.as_of.date()})")
        try:
            from qpo.store import get_proposal, position, session_scope

            with session_scope(b.engine, write=False) as s:
                run = get_proposal(s, b.actor, p.id).optimization_run_id
                cash = position(s, b.actor, name).cash
            text += f"; optimization run #{run} recorded; cash now {_money(cash)}."
        except Exception as exc:  # noqa: BLE001 - the decision is recorded; only the read-back failed
            why = str(exc) if isinstance(exc, QpoError) else type(exc).__name__
            text += f". (The store could not be read back: {why}.)"
        self.status.value = _box(text, GREEN, "qpo-recorded")
        self.summary.value = self._summary_html(p)
        if self.on_change is not None:
            self.on_change(name)
        return True

    def reject(self) -> bool:
        """Reject the open proposal shown with the reason in the box (required). True when rejected."""
        from qpo.book import reject_rebalance

        if not self._decidable():
            return False
        reason = self.reason.value
        if not reason.strip():
            self.status.value = _box("A rejection needs a reason: write it in the Reason box, then press Reject.",
                                     RED, "qpo-error")
            return False
        p, b = self.proposal, self.board
        try:
            done = reject_rebalance(p.id, reason, actor=b.actor, engine=b.engine)
        except Exception as exc:  # noqa: BLE001
            self._error(exc, "The proposal could not be rejected")
            return False
        p.status = done.status
        self._set_buttons()
        self.reason.value = ""
        self.status.value = _box(f"Rejected proposal #{p.id} of {self.name}; the reason recorded: {reason}", GREEN,
                                 "qpo-recorded")
        self.summary.value = self._summary_html(p)
        return True

    # -- drawing ------------------------------------------------------------------------------------
    def _error(self, exc: Exception, what: str) -> None:
        """``exc`` in a red box: a qpo error's own message; any other only by its type."""
        text = f"{what}: {exc}" if isinstance(exc, QpoError) else failure_text(exc, what) + "."
        self.status.value = _box(text, RED, "qpo-error")

    def _clear(self) -> None:
        self.proposal = None
        self.result.layout.display = "none"
        for w in (self.summary, self.trades_table, self.comparison_table, self.compliance_table):
            w.value = ""
        self._set_buttons()

    def _draw(self, p) -> None:

        from qpo.reporting.rebalance import proposal_figures
        from qpo.workbench.figure_widgets import figure_widget

        self.summary.value = self._summary_html(p)
        self.trades_table.value = self._trades_html(p)
        self.comparison_table.value = self._comparison_html(p)
        self.compliance_table.value = self._compliance_html(p)
        figures = proposal_figures(p)
        if not self.figures:  # built once; later proposals send only their data
            self.figures = {k: figure_widget(f) for k, f in figures.items()}
            self.charts.children = list(self.figures.values())
        else:
            for k, f in figures.items():
                _replace_figure(self.figures[k], f)
        self.result.layout.display = None

    def _summary_html(self, p) -> str:
        stored = (f"Proposal #{p.id} ({p.status})" if p.id is not None
                  else "Dry run (not stored: a researcher computes proposals only)")
        n_sell = int((p.trades["side"] == "sell").sum())
        changed = p.parameters.get("overrides") or {}
        rows = [("", stored), ("prices as of", p.prices_as_of.date().isoformat()),
                ("objective", p.strategy.objective),
                ("changed for this proposal", ", ".join(f"{k} {v}" for k, v in changed.items()) or "nothing"),
                ("value", f"{_money(p.value_before)} \u2192 {_money(p.value_after)}"),
                ("cash", f"{_money(p.cash_before)} \u2192 {_money(p.cash_after)}"),
                ("trades", f"{n_sell} sells, {len(p.trades) - n_sell} buys"), ("turnover", f"{p.turnover:.2%}"),
                ("estimated cost", _money(p.total_cost))]
        body = "".join(f"<tr><th style='text-align:left'>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>"
                       for k, v in rows)
        extra = ""
        if p.violations:
            extra = ("<p class='qpo-violations' style='color:#c0392b'>Not met after rounding to whole shares:</p><ul>"
                     + "".join(f"<li>{html.escape(v)}</li>" for v in p.violations) + "</ul>")
        return f"<table class='qpo-proposal'>{body}</table>{extra}"

    @staticmethod
    def _trades_html(p) -> str:
        if p.trades.empty:
            return "<h4>Trades</h4><p class='qpo-no-trades'>No trades: the holdings are already at the target.</p>"
        t = p.trades
        frame = pd.DataFrame({"side": t["side"], "ticker": t["ticker"], "shares": t["shares"].map(_shares),
                              "price": t["price"].map(_money), "notional": t["notional"].map(_money),
                              "cost": t["cost"].map(_money)})
        return "<h4>Trades</h4>" + frame.to_html(index=False, classes="qpo-trades", border=0, escape=True)

    @staticmethod
    def _comparison_html(p) -> str:
        from qpo.reporting.rebalance import format_number

        c = p.comparison
        rows = "".join(f"<tr><td>{html.escape(_LABELS.get(m, m))}</td>"
                       + "".join(f"<td style='text-align:right'>{format_number(m, c.loc[m, col])}</td>"
                                 for col in ("before", "after", "target")) + "</tr>" for m in c.index)
        return ("<h4>Before and after</h4><table class='qpo-comparison'><thead><tr><th></th><th>before</th>"
                f"<th>after</th><th>target</th></tr></thead><tbody>{rows}</tbody></table>")

    @staticmethod
    def _compliance_html(p) -> str:
        comp = p.compliance
        if comp.empty:
            return "<h4>Compliance</h4><p>No compliance limits are set in the strategy.</p>"
        breaches = p.breaches_after()
        head = (f"<div class='qpo-breach' style='color:{RED}'><b>{len(breaches)} limit"
                f"{'s' if len(breaches) != 1 else ''} breached after the trades</b><ul>"
                + "".join(f"<li>{html.escape(b)}</li>" for b in breaches) + "</ul></div>" if breaches
                else f"<div class='qpo-compliant' style='color:{GREEN}'>Every limit holds after the trades.</div>")

        def fmt(check: str, v) -> str:
            if v is None or (isinstance(v, float) and math.isnan(v)):
                return ""
            return f"{v:.0f}" if str(check).startswith("min names") else f"{v:.2%}"

        rows = []
        for r in comp.itertuples(index=False):
            bad = r.passed_after is False
            style = f" class='qpo-breach-row' style='color:{RED};font-weight:bold'" if bad else ""
            cells = [html.escape(str(r.check)), fmt(r.check, r.limit), fmt(r.check, r.before), fmt(r.check, r.after),
                     *("not checked" if p is None else "pass" if p else "BREACH"
                       for p in (r.passed_before, r.passed_after))]
            rows.append(f"<tr{style}>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
        return ("<h4>Compliance</h4>" + head + "<table class='qpo-compliance'><thead><tr><th>check</th><th>limit</th>"
                "<th>before</th><th>after</th><th>before: status</th><th>after: status</th></tr></thead><tbody>"
                + "".join(rows) + "</tbody></table>")


__all__ = ["ADVISOR_NOTE", "OPTION_FIELDS", "RESEARCHER_NOTE", "RebalanceTab"]
