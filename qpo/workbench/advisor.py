"""The advisor dashboard (``voila_apps/advisor.ipynb``): pick a client portfolio, see its
holdings, its risk numbers and its growth against the S&P 500. Widgets only; no code shown.

The dashboard only reads: it opens the store with ``connect(create=False)``, so a store that is
missing (never created, or deleted while the server runs) is refused with its URL and the command
that creates it; the dashboard never creates a store and never seeds one (only ``qpo db seed``
does).

Holdings and cash come from each portfolio's ledger; the compliance checks are the portfolio's own
limits (its stored strategy's, the default strategy's when it stores none).

Who reads: served by ``qpo dashboard``, the person signed in (the login of
:mod:`qpo.workbench.auth` tells the kernel through ``QPO_USER``): an advisor sees only their own
clients' portfolios, under the store's access rules. Run by hand (a notebook), the user named by
``QPO_USER``, else the system actor ``system:dashboard`` (every portfolio).

The page is a set of tabs (:mod:`qpo.workbench.tabs`): Overview here; the others are built when the
dashboard is, and each draws the selected portfolio when it is first opened and on each new
selection while it is open. Figures are built once and updated in place (one ``batch_update``), so
a new selection sends only new data to the browser."""
from __future__ import annotations

import html
import os
from typing import Any

import pandas as pd

#: tabs drawn again each time they are opened (they show what another tab last did)
ALWAYS_REDRAWN = frozenset({"Frontier", "Report"})
#: the purpose of the system actor the dashboard reads as when QPO_USER is not set
DASHBOARD_ACTOR_PURPOSE = "dashboard"


def dashboard_actor(actor=None):
    """Who the dashboard reads as: ``actor`` when given, else the user named by ``QPO_USER`` when
    set, else the system actor ``system:dashboard``."""
    from qpo.store import USER_ENV, Actor

    if actor is not None:
        return actor
    named = (os.environ.get(USER_ENV) or "").strip()
    return named or Actor.system(DASHBOARD_ACTOR_PURPOSE)


def open_dashboard(tabs: bool = True, **kwargs) -> AdvisorDashboard:
    """:class:`AdvisorDashboard` ``(**kwargs)`` for the Voila app; when it cannot open (no store, an
    empty or damaged one), the reason is shown on the page, in words, before the error stops the
    notebook (Voila itself shows only that a cell failed)."""
    from qpo.errors import QpoError

    try:
        board = AdvisorDashboard(**kwargs)
    except QpoError as exc:
        from IPython.display import HTML, display

        display(HTML(f"<div class='qpo-error' style='color:#c0392b'><b>The dashboard cannot open.</b> "
                     f"{html.escape(str(exc))}</div>"))
        raise
    if tabs:
        add_standard_tabs(board)
    return board


def add_standard_tabs(board: AdvisorDashboard) -> None:
    """The tabs after the Overview: Risk, Rebalance, Frontier, History, Report (:mod:`qpo.workbench.tabs`).
    An accepted proposal redraws the Overview and marks the other tabs for redrawing; the Frontier
    and the Report are drawn again each time they are opened (they use the Rebalance tab's last
    proposal)."""
    from qpo.workbench.tabs.frontier import FrontierTab
    from qpo.workbench.tabs.history import HistoryTab
    from qpo.workbench.tabs.rebalance import RebalanceTab
    from qpo.workbench.tabs.report import ReportTab
    from qpo.workbench.tabs.risk import RiskTab

    def changed(name: str) -> None:
        board._drawn = {t: n for t, n in board._drawn.items() if t == "Rebalance"}
        board.update(name)

    def rebalance_tab(b):
        tab = RebalanceTab(b)
        tab.on_change = changed
        return tab

    # each made when first opened: the first page carries only the Overview's widgets
    board.add_tab("Risk", RiskTab)
    board.add_tab("Rebalance", rebalance_tab)
    board.add_tab("Frontier", FrontierTab)
    board.add_tab("History", HistoryTab)
    board.add_tab("Report", ReportTab)


class AdvisorDashboard:
    """Widgets over the store's client portfolios.

    ``widget`` is what the notebook displays; selecting another portfolio recomputes its
    report and updates the figures in place. ``limits`` (a :class:`~qpo.risk.Limits` or a dict of
    its fields) overrides every portfolio's own limits, as the daily report's do; ``actor`` is who
    reads (default: :func:`dashboard_actor`).
    """

    def __init__(self, initial: str | None = None, lookback_days: int = 756, engine=None,
                 history_start: str = "2000-01-01", limits=None, actor=None):
        import ipywidgets as widgets

        from qpo.data import load_prices, prices_to_returns
        from qpo.errors import StoreError
        from qpo.reporting.daily import resolve_limits
        from qpo.store import actor_for, connect, list_portfolios, session_scope

        self.lookback_days = lookback_days
        resolve_limits(None, limits)  # a bad override is refused now, not at the first selection
        self.limits_override = limits
        self.engine = engine or connect(create=False)
        self.prices = load_prices("sp500", start=history_start)
        index = load_prices("sp500_index", start=history_start)["SP500"]
        self.benchmark = prices_to_returns(index.to_frame())["SP500"].iloc[-lookback_days:]
        with session_scope(self.engine) as session:
            self.actor = actor_for(session, dashboard_actor(actor))  # an unknown QPO_USER is refused here
            self.portfolios = list_portfolios(session, self.actor)
        names = self.portfolios["name"].tolist()
        if not names:
            if self.actor.role == "advisor":
                raise StoreError(f"{self.actor} manages no client portfolio in the store at "
                                 f"{self.engine.url.render_as_string(hide_password=True)}")
            raise StoreError(f"the store at {self.engine.url.render_as_string(hide_password=True)} holds no client "
                             "portfolio: add one, or run `qpo db seed` for the four demo portfolios")
        self.selected: str = initial if initial is not None and initial in names else names[0]

        self.dropdown = widgets.Dropdown(options=names, value=self.selected, description="Client portfolio",
                                         style={"description_width": "initial"},
                                         layout=widgets.Layout(width="420px"))
        self.header = widgets.HTML()
        self.holdings = widgets.HTML()
        self.risk = widgets.HTML()
        self.wealth_fig = None
        self.weights_fig = None
        self.charts = widgets.VBox()
        self.overview = widgets.VBox([
            widgets.HBox([self.holdings, self.risk], layout=widgets.Layout(gap="40px")),
            self.charts,
        ])
        self.tabs: dict[str, Any] = {}
        self._holders: dict[str, Any] = {}
        self.tab_widget = widgets.Tab(children=[self.overview])
        self.tab_widget.set_title(0, "Overview")
        self._drawn: dict[str, str] = {}
        self.widget = widgets.VBox([self.dropdown, self.header, self.tab_widget])
        self.tab_widget.observe(lambda change: self._draw_open_tab(), names="selected_index")
        self.update(self.selected)
        self.dropdown.observe(lambda change: self.select(change["new"]), names="value")

    def add_tab(self, title: str, tab) -> None:
        """Add a tab: a :mod:`qpo.workbench.tabs` class instance, or a function of the board that
        makes one (then made when the tab is first opened, so that the first page carries only the
        Overview's widgets). It draws the selected portfolio when it is opened."""
        import ipywidgets as widgets

        self.tabs[title] = tab
        holder = widgets.VBox([tab.widget] if hasattr(tab, "widget") else [])
        self._holders[title] = holder
        self.tab_widget.children = [*self.tab_widget.children, holder]
        self.tab_widget.set_title(len(self.tab_widget.children) - 1, title)

    def tab(self, title: str):
        """The tab ``title``, made now if it was given as a function and not made yet."""
        tab = self.tabs[title]
        if not hasattr(tab, "widget"):
            tab = self.tabs[title] = tab(self)
            self._holders[title].children = [tab.widget]
        return tab

    def select(self, name: str) -> None:
        """Show portfolio ``name``: the overview, and the open tab."""
        self.update(name)
        self._draw_open_tab()

    def _draw_open_tab(self) -> None:
        index = self.tab_widget.selected_index or 0
        if index == 0:
            return
        title = list(self.tabs)[index - 1]
        if self._drawn.get(title) != self.selected or title in ALWAYS_REDRAWN:
            tab = self.tab(title)
            self._drawn[title] = self.selected
            tab.show(self.selected)

    def update(self, name: str) -> None:
        import plotly.graph_objects as go

        from qpo.data import load_sectors, prices_to_returns
        from qpo.reporting.daily import describe_limits, ledger_weights, portfolio_strategy, resolve_limits
        from qpo.reporting.figures import wealth_figure, weights_figure
        from qpo.risk import portfolio_returns, risk_report
        from qpo.risk.metrics import percent
        from qpo.store import get_portfolio, position, session_scope

        with session_scope(self.engine) as session:
            own = portfolio_strategy(get_portfolio(session, self.actor, name)).limits
            weights, cash = ledger_weights(session, self.actor, name, self.prices)
            quantities = position(session, self.actor, name, self.prices.index[-1].date()).shares
        self.limits, source = resolve_limits(own, self.limits_override)
        px = self.prices[list(weights.index)]
        rets = prices_to_returns(px).iloc[-self.lookback_days:]
        bench = self.benchmark.reindex(rets.index)
        self.selected = name
        self.report = risk_report(weights, rets, benchmark=bench if bench.notna().all() else None,
                                  history=prices_to_returns(px, dropna="all"), limits=self.limits,
                                  sectors=load_sectors(), n_scenarios=20_000)
        port = portfolio_returns(weights, rets)
        row = self.portfolios.set_index("name").loc[name]
        last = self.prices.iloc[-1]
        invested = float((quantities * last[quantities.index]).sum())
        self.market_value, self.cash = invested + cash, cash
        self.header.value = (f"<h3>{html.escape(name)}</h3><p>Client: {html.escape(str(row['client']))} · "
                             f"Advisor: {html.escape(str(row['advisor']))} · Market value "
                             f"${invested + cash:,.0f} (cash ${cash:,.0f}) on {self.prices.index[-1].date()}</p>")
        table = pd.DataFrame({"shares": quantities, "price": last[quantities.index],
                              "weight": weights}).sort_values("weight", ascending=False)
        self.holdings.value = "<h4>Holdings</h4>" + table.to_html(
            formatters={"shares": "{:,.1f}".format, "price": "${:,.2f}".format, "weight": "{:.1%}".format},
            classes="qpo-holdings", border=0)
        r = self.report
        var_table, compliance = r.var_table, r.compliance
        assert var_table is not None, "risk_report always computes the VaR table"
        assert compliance is not None, "a portfolio always has limits (its strategy's), so the report checks them"
        rows = [("Annualized return (CAGR)", f"{r.cagr:.2%}"), ("Volatility", f"{r.volatility:.2%}"),
                ("Sharpe", f"{r.sharpe:.2f}"), ("Max drawdown", f"{r.max_drawdown:.2%}"),
                (f"VaR {percent(r.confidence)} (1 day)", f"{r.var:.2%}"),
                (f"CVaR {percent(r.confidence)} (1 day)", f"{r.cvar:.2%}"),
                (f"VaR {percent(r.confidence)}, normal / Cornish-Fisher",
                 f"{var_table.loc['normal', 'var']:.2%} / {var_table.loc['cornish_fisher', 'var']:.2%}")]
        if r.benchmark is not None:
            rows.append(("Beta vs the S&P 500", f"{r.benchmark['beta']:.2f}"))
        stress = r.stress.dropna(subset=["loss"]) if r.stress is not None else None
        if stress is not None and len(stress):
            worst = stress.loc[stress["loss"].idxmax()]
            rows.append((f"Worst stress: {worst['scenario']}", f"-{worst['loss']:.1%}"))
        if r.breaches:
            status = ("<div class='qpo-breach' style='color:#c0392b'><b>Compliance breach</b><ul>"
                      + "".join(f"<li>{html.escape(b)}</li>" for b in r.breaches) + "</ul></div>")
        else:
            status = f"<div class='qpo-compliant' style='color:#27ae60'><b>Compliant</b>: all {len(compliance)} checks pass</div>"
        status += (f"<p class='qpo-limits'>Limits, {html.escape(source)}: "
                   f"{html.escape(describe_limits(self.limits))}</p>")
        self.risk.value = (f"<h4>Risk, {r.start.date()} to {r.end.date()}</h4>{status}<table class='qpo-risk'>"
                           + "".join(f"<tr><td>{html.escape(k)}</td><td style='text-align:right'><b>{v}</b></td></tr>"
                                     for k, v in rows)
                           + "</table>")
        bench = self.benchmark.reindex(port.index).fillna(0.0)
        w = weights.sort_values(ascending=False)
        wealth = wealth_figure({name: port, "S&P 500": bench}, f"{name}: growth of $1 vs the S&P 500")
        bars = weights_figure({"weight": w}, f"{name}: weights")
        if self.wealth_fig is None or self.weights_fig is None:
            # built once: later selections send only their data (one batch_update each)
            self.wealth_fig = go.FigureWidget(wealth)
            self.weights_fig = go.FigureWidget(bars)
            self.charts.children = [self.wealth_fig, self.weights_fig]
        else:
            _replace_figure(self.wealth_fig, wealth)
            _replace_figure(self.weights_fig, bars)


def _replace_figure(widget, figure) -> None:
    """Give a FigureWidget the traces and title of ``figure`` in one message to the browser: the
    traces' data in place when their number and kinds agree, else the traces replaced."""
    same = len(widget.data) == len(figure.data) and all(a.type == b.type for a, b in zip(widget.data, figure.data))
    with widget.batch_update():
        if same:
            for old, new in zip(widget.data, figure.data):
                old.update(new.to_plotly_json(), overwrite=True)
        else:
            widget.data = ()
            widget.add_traces(list(figure.data))
        widget.layout.update(figure.layout.to_plotly_json(), overwrite=True)
