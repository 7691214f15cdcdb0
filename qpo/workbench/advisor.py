"""The advisor dashboard (``voila_apps/advisor.ipynb``): pick a client portfolio, see its
holdings, its risk numbers and its growth against its benchmark. Widgets only; no code shown.

The dashboard only reads: it opens the store with ``connect(create=False)``, so a store that is
missing (never created, or deleted while the server runs) is refused with its URL and the command
that creates it; the dashboard never creates a store and never seeds one (only ``qpo db seed``
does).

Holdings and cash come from each portfolio's ledger; the compliance checks are the portfolio's own
limits (its stored strategy's, the default strategy's when it stores none). Prices are the book's
(:func:`qpo.store.market_data.book_prices`: the store's market data, the bundled panel while the
store holds none), and so is the S&P 500 (:func:`qpo.store.market_data.book_benchmark`). They are read when
the page opens (from the server's snapshot while current: :mod:`qpo.workbench.price_snapshot`) and again when
the store holds a newer day (:meth:`AdvisorDashboard.refresh_prices`, before each Propose and Accept of the
Rebalance tab: a proposal built on older closes is refused).
A portfolio holding only cash shows its cash and no risk yet; one that cannot be shown at all never
keeps the page from opening (the next is shown, and the notice says why).

The growth chart compares the portfolio with the benchmark it stores (``portfolios.benchmark``):
the S&P 500 for ``SP500``, else that ticker's closes in the book's prices (or the store's market
data); a benchmark without prices (or none stored) falls back to the S&P 500, and the chart's title
says so (:func:`growth_benchmark`). The risk numbers' beta stays against the S&P 500.

Who reads: served by ``qpo dashboard``, the person signed in (the login of
:mod:`qpo.workbench.auth` tells the kernel through ``QPO_USER``): an advisor sees only their own
clients' portfolios, under the store's access rules. Run by hand (a notebook), the user named by
``QPO_USER``, else the system actor ``system:dashboard`` (every portfolio).

The page is a set of tabs (:mod:`qpo.workbench.tabs`): Overview here; the others are built when the
dashboard is, and each draws the selected portfolio when it is first opened and on each new
selection while it is open (only the open tab is redrawn; the others when next opened). Figures
are built once and updated in place (one ``batch_update``), so a new selection sends only new data
to the browser."""
from __future__ import annotations

import html
import os
from typing import Any

import pandas as pd

# holdings_table and day_change are part of this module's interface (defined with the Overview's helpers)
from qpo.workbench._overview import day_change, day_positions, failure_text, holdings_table, portfolio_choice, replace_figure

#: tabs drawn again each time they are opened (they show what another tab last did)
ALWAYS_REDRAWN = frozenset({"Frontier", "Report"})
#: the purpose of the system actor the dashboard reads as when QPO_USER is not set
DASHBOARD_ACTOR_PURPOSE = "dashboard"
#: the periods of the Overview's growth against the benchmark
GROWTH_PERIODS = ("1M", "3M", "6M", "YTD", "1Y", "3Y", "5Y", "Max")
#: the period shown first
DEFAULT_GROWTH_PERIOD = "3Y"
_OFFSETS = {"1M": {"months": 1}, "3M": {"months": 3}, "6M": {"months": 6}, "1Y": {"years": 1}, "3Y": {"years": 3},
            "5Y": {"years": 5}}


def growth_start(period: str, end: pd.Timestamp, first: pd.Timestamp) -> pd.Timestamp:
    """The date a growth period ending on ``end`` starts from: a calendar offset back (1M to 5Y),
    the last day of the year before (YTD), or ``first`` (Max); never before ``first``."""
    from qpo.errors import UnknownOptionError

    end, first = pd.Timestamp(end), pd.Timestamp(first)
    if period == "Max":
        return first
    if period == "YTD":
        start = pd.Timestamp(end.year - 1, 12, 31)
    elif period in _OFFSETS:
        start = end - pd.DateOffset(**_OFFSETS[period])
    else:
        raise UnknownOptionError("growth period", period, GROWTH_PERIODS)
    return max(start, first)


def growth_of_one(returns: pd.DataFrame, period: str) -> pd.DataFrame:
    """The growth of $1 of each column of daily ``returns`` over ``period`` (of
    :data:`GROWTH_PERIODS`) up to their last date: 1.0 on the last date on or before the period's
    start (:func:`growth_start`; the first date of ``returns`` for Max), then compounded by each
    later day's return. Each column is NaN-free (a NaN return counts as 0)."""
    from qpo.errors import DataError

    if returns.empty:
        raise DataError("no returns to grow: the portfolio and the benchmark share no dates")
    rets = returns.fillna(0.0)
    start = growth_start(period, rets.index[-1], rets.index[0])
    on_or_before = rets.index[rets.index <= start]
    base = on_or_before[-1] if len(on_or_before) else rets.index[0]
    window = rets.loc[rets.index > base]
    wealth = (1.0 + window).cumprod()
    first = pd.DataFrame([[1.0] * rets.shape[1]], index=[base], columns=rets.columns)
    return pd.concat([first, wealth])


#: the S&P 500's name on the page, and its ticker among the book's index series
SP500_LABEL, SP500_TICKER = "S&P 500", "SP500"


def growth_benchmark(stored: str | None, prices: pd.DataFrame, sp500: pd.Series, engine=None,
                     start: str = "2000-01-01") -> tuple[str, pd.Series, str]:
    """The benchmark a portfolio's growth is drawn against: (its label, its daily returns, the
    title's words for it). ``stored`` is the portfolio's ``benchmark``: ``SP500`` (or None) is the
    S&P 500 (``sp500``, daily returns); another ticker is its closes in ``prices`` (the book's),
    else in the store's market data; one with no prices falls back to the S&P 500, and the words
    say so (``"the S&P 500 (no prices for its benchmark XYZ)"``)."""
    from qpo.data import prices_to_returns

    ticker = (stored or "").strip()
    if not ticker or ticker.upper() == SP500_TICKER:
        return SP500_LABEL, sp500, f"the {SP500_LABEL}"
    closes = None
    if ticker in prices.columns:
        closes = prices[ticker]
    elif engine is not None:
        from qpo.store.market_data import last_bar_dates, prices_panel

        try:
            if last_bar_dates(engine, [ticker]):
                closes = prices_panel(engine, [ticker], start=start)[ticker]
        except Exception:  # noqa: BLE001 - a benchmark that cannot be read is one without prices
            closes = None
    if closes is not None and closes.notna().sum() >= 2:
        returns = prices_to_returns(closes.dropna().to_frame())[ticker]
        return ticker, returns, ticker
    return SP500_LABEL, sp500, f"the {SP500_LABEL} (no prices for its benchmark {ticker})"


def _signed_dollars(value: float) -> str:
    return f"{'+' if value >= 0 else '-'}${abs(value):,.0f}"


def _signed_percent(value: float) -> str:
    return f"{value:+.2%}"


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

        from qpo.errors import StoreError
        from qpo.reporting.daily import resolve_limits
        from qpo.store import actor_for, connect, list_portfolios, session_scope
        from qpo.store.db import safe_url
        from qpo.store.sectors import book_sectors

        self.lookback_days = lookback_days
        resolve_limits(None, limits)  # a bad override is refused now, not at the first selection
        self.limits_override = limits
        self.engine = engine or connect(create=False)
        self.sectors = book_sectors(self.engine)  # the book's map (the store's over the bundled one); again per selection
        self.history_start = history_start
        self._read_prices()
        with session_scope(self.engine, write=False) as session:
            self.actor = actor_for(session, dashboard_actor(actor))  # an unknown QPO_USER is refused here
            self.portfolios = list_portfolios(session, self.actor)
        names = self.portfolios["name"].tolist()
        if not names:
            where = safe_url(self.engine.url.render_as_string(hide_password=False))
            if self.actor.role == "advisor":
                raise StoreError(f"{self.actor} manages no client portfolio in the store at {where}")
            raise StoreError(f"the store at {where} holds no client "
                             "portfolio: add one, or run `qpo db seed` for the four demo portfolios")
        self.selected: str = initial if initial is not None and initial in names else names[0]

        self.dropdown = portfolio_choice()(options=names, value=self.selected, description="Client portfolio",
                                         style={"description_width": "initial"},
                                         layout=widgets.Layout(width="420px"))
        self.notice = widgets.HTML()  # a selection refused, or that failed: said here, in words
        self.header = widgets.HTML()
        self.holdings = widgets.HTML()
        self.risk = widgets.HTML()
        self.wealth_fig = None
        self.weights_fig = None
        self.report: Any = None  # the selected portfolio's RiskReport (None: it holds only cash)
        self.growth: pd.DataFrame | None = None  # the growth of $1 shown (portfolio, its benchmark)
        self.growth_against = f"the {SP500_LABEL}"  # the benchmark's words in the growth chart's title
        self._growth_returns: pd.DataFrame | None = None
        self.period = widgets.ToggleButtons(options=list(GROWTH_PERIODS), value=DEFAULT_GROWTH_PERIOD,
                                            description="Growth over", style={"button_width": "46px"},
                                            tooltips=["1 month", "3 months", "6 months", "year to date", "1 year",
                                                      "3 years", "5 years", "all the prices"])
        self.charts = widgets.VBox()
        self.overview = widgets.VBox([
            widgets.HBox([self.holdings, self.risk], layout=widgets.Layout(gap="40px")),
            self.period,
            self.charts,
        ])
        self.tabs: dict[str, Any] = {}
        self._holders: dict[str, Any] = {}
        self.tab_widget = widgets.Tab(children=[self.overview])
        self.tab_widget.set_title(0, "Overview")
        self._drawn: dict[str, str] = {}
        self.widget = widgets.VBox([self.dropdown, self.notice, self.header, self.tab_widget])
        self.tab_widget.observe(lambda change: self._draw_open_tab(), names="selected_index")
        self._show_first([self.selected, *(n for n in names if n != self.selected)])
        self.dropdown.observe(lambda change: self.select(change["new"]), names="value")
        self.period.observe(lambda change: self.show_growth(change["new"]), names="value")

    def _show_first(self, names: list[str]) -> None:
        """Show the first of ``names`` that can be shown; those before it that could not are named in
        the notice, with why (a qpo error's text, else only its kind): one portfolio never keeps the
        dashboard from opening. When none can be, the first's error is raised."""
        from qpo.errors import QpoError

        failed: list[tuple[str, Exception]] = []
        for name in names:
            try:
                self.update(name)
            except Exception as exc:  # noqa: BLE001 - said in the notice; raised when no portfolio can be shown
                failed.append((name, exc))
                continue
            self.selected = self.dropdown.value = name
            break
        else:
            raise failed[0][1]
        if failed:
            said = "; ".join(f"{html.escape(n)} could not be shown ("
                             f"{html.escape(str(e)) if isinstance(e, QpoError) else type(e).__name__})"
                             for n, e in failed)
            self.notice.value = (f"<div class='qpo-error' style='color:#c0392b'>{said}; showing "
                                 f"{html.escape(self.selected)}</div>")

    def _read_prices(self) -> None:
        from qpo.data import prices_to_returns
        from qpo.workbench.price_snapshot import book_panel

        book = book_panel(self.engine, self.history_start)  # the store's (else bundled); its snapshot if current
        self.prices, self.prices_origin, self.closes = book.prices, book.origin, book.closes  # closes: shares' worth
        #: the S&P 500's daily returns since ``history_start`` (the growth periods), and its last ``lookback_days``
        self.benchmark_history = prices_to_returns(book.benchmark.rename("SP500").to_frame())["SP500"]
        self.benchmark = self.benchmark_history.iloc[-self.lookback_days:]

    def refresh_prices(self, tickers=None) -> bool:
        """Read the book's prices again when the store holds a newer bar than the page's (of
        ``tickers``, default any ticker; or of the S&P 500): a cheap check of the last bar dates, the
        panel read only when a newer day came. True when read again; then the Overview is redrawn
        and the other tabs are drawn again when next opened. The Rebalance tab calls it before
        Propose and before Accept, so a proposal is built on the newest closes and one built on
        older closes is refused ("prices up to ... exist: rebuild it")."""
        from qpo.workbench._overview import prices_moved

        if not prices_moved(self.engine, self.prices, self.benchmark_history, tickers, start=self.history_start):
            return False
        self._read_prices()
        self._drawn = {t: n for t, n in self._drawn.items() if t == "Rebalance"}
        self.select(self.selected, draw_tab=False)
        return True

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

    def select(self, name: str, draw_tab: bool = True) -> None:
        """Show portfolio ``name``: the overview, and the open tab (the others are drawn when next
        opened; ``draw_tab=False``: the Overview only). Whatever the page asks for, the
        store reads are the person's own (:mod:`qpo.store.access`): a portfolio they may not read is
        refused by the repository, and the page keeps showing the one it showed, with a message
        (never the other portfolio's data; an error's text only when it is qpo's own)."""
        from qpo.errors import QpoError

        shown = self.selected
        try:
            self.update(name)
        except QpoError as exc:
            self.selected = shown
            self.notice.value = (f"<div class='qpo-error' style='color:#c0392b'>{html.escape(str(exc))} "
                                 f"(still showing {html.escape(shown)})</div>")
            return
        except Exception as exc:  # noqa: BLE001 - its text may hold a secret (a database URL): only its kind
            self.selected = shown
            text = failure_text(exc, f"{name} could not be shown")
            self.notice.value = (f"<div class='qpo-error' style='color:#c0392b'>{html.escape(text)}; still showing "
                                 f"{html.escape(shown)}</div>")
            return
        self.notice.value = ""
        if draw_tab:
            self._draw_open_tab()

    def show_growth(self, period: str) -> None:
        """The growth of $1 of the selected portfolio and of its benchmark over ``period`` (of
        :data:`GROWTH_PERIODS`), the figure updated in place (one message to the browser)."""
        if self._growth_returns is None:
            return
        self.growth = growth_of_one(self._growth_returns, period)
        figure = self._growth_figure()
        if self.wealth_fig is not None:
            replace_figure(self.wealth_fig, figure)

    def _growth_figure(self):
        import plotly.graph_objects as go

        assert self.growth is not None
        fig = go.Figure([go.Scatter(x=self.growth.index, y=self.growth[c].to_numpy(), mode="lines", name=str(c))
                         for c in self.growth.columns])
        fig.update_layout(title=f"{self.selected}: growth of $1 vs {self.growth_against}", yaxis_title="wealth",
                          template="plotly_white", height=380, margin=dict(l=50, r=20, t=50, b=40))
        return fig

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
        from qpo.data import prices_to_returns
        from qpo.reporting.daily import describe_limits, ledger_weights, portfolio_strategy, resolve_limits
        from qpo.risk import portfolio_returns, risk_report
        from qpo.risk.metrics import percent
        from qpo.store import get_portfolio, portfolio_benchmark, session_scope
        from qpo.store.sectors import book_sectors

        self.sectors = book_sectors(self.engine)  # a map stored meanwhile (`qpo data sectors`) counts, as in proposals
        with session_scope(self.engine, write=False) as session:
            stored = get_portfolio(session, self.actor, name)
            own, stored_benchmark = portfolio_strategy(stored).limits, portfolio_benchmark(stored)
            before, held, todays = day_positions(session, self.actor, name, self.prices.index)
            quantities, cash = held.shares, float(held.cash)
            if not quantities.empty:
                weights, cash = ledger_weights(session, self.actor, name, self.prices)
        self.limits, source = resolve_limits(own, self.limits_override)
        row = self.portfolios.set_index("name").loc[name]
        label, against, growth_against = growth_benchmark(stored_benchmark, self.prices, self.benchmark_history, self.engine)
        label = label if label != name else f"{label} (benchmark)"
        per_name, *change = day_change(self.closes, before, held, todays)
        if quantities.empty:  # cash only: its value, no holdings, no risk yet; cash grows by nothing
            return self._show_cash_only(name, row, cash, label, against, growth_against, (change[0], change[1]))
        px = self.prices[list(weights.index)]
        rets = prices_to_returns(px).iloc[-self.lookback_days:]
        bench = self.benchmark.reindex(rets.index)
        self.selected = name
        self.report = r = risk_report(weights, rets, benchmark=bench if bench.notna().all() else None,
                                      history=prices_to_returns(px, dropna="all"), limits=self.limits,
                                      sectors=self.sectors, n_scenarios=20_000)
        self.day_change, self.day_change_pct = change[0], change[1]
        self.holdings_frame = table = holdings_table(quantities, self.closes, cash, day_pnl=per_name)
        invested = float(table["market value"].sum())
        self.market_value, self.cash = invested + cash, cash
        color = "#27ae60" if self.day_change >= 0 else "#c0392b"
        self.header.value = (f"<h3>{html.escape(name)}</h3><p>Client: {html.escape(str(row['client']))} · "
                             f"Advisor: {html.escape(str(row['advisor']))} · Market value "
                             f"${invested + cash:,.0f} (cash ${cash:,.0f}) on {self.prices.index[-1].date()} · "
                             f"<span class='qpo-day-change' style='color:{color}'>Day change "
                             f"{_signed_dollars(self.day_change)} ({_signed_percent(self.day_change_pct)})</span></p>")
        shown = table[["shares", "price", "market value", "weight", "day change", "day change %"]]
        self.holdings.value = "<h4>Holdings</h4>" + shown.to_html(
            formatters={"shares": "{:,.1f}".format, "price": "${:,.2f}".format, "market value": "${:,.0f}".format,
                        "weight": "{:.1%}".format, "day change": _signed_dollars, "day change %": _signed_percent},
            classes="qpo-holdings", border=0)
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
        elif r.unchecked:  # a check that could not be made (names without a sector): neither pass nor breach
            status = (f"<div class='qpo-compliant' style='color:#b7950b'><b>{len(compliance) - len(r.unchecked)} of "
                      f"{len(compliance)} checks pass; not checked</b><ul>"
                      + "".join(f"<li>{html.escape(u)}</li>" for u in r.unchecked) + "</ul></div>")
        else:
            status = f"<div class='qpo-compliant' style='color:#27ae60'><b>Compliant</b>: all {len(compliance)} checks pass</div>"
        status += (f"<p class='qpo-limits'>Limits, {html.escape(source)}: "
                   f"{html.escape(describe_limits(self.limits))}</p>")
        self.risk.value = (f"<h4>Risk, {r.start.date()} to {r.end.date()}</h4>{status}<table class='qpo-risk'>"
                           + "".join(f"<tr><td>{html.escape(k)}</td><td style='text-align:right'><b>{v}</b></td></tr>"
                                     for k, v in rows)
                           + "</table>")
        # the growth periods reach back before the risk window: the weights held since every name has a price
        grown = portfolio_returns(weights, prices_to_returns(px))
        self._draw_charts(name, grown, label, against, growth_against, weights)

    def _show_cash_only(self, name: str, row, cash: float, label: str, against: pd.Series, words: str,
                        change: tuple[float, float]) -> None:
        """The Overview of a portfolio holding only ``cash`` (``change``: the day's $ and return)."""
        from qpo.workbench._overview import cash_only_html

        self.selected, self.report, self.market_value, self.cash = name, None, cash, cash
        self.day_change, self.day_change_pct = change
        self.holdings_frame = pd.DataFrame(columns=["shares", "price", "previous close", "market value", "weight",
                                                     "day change", "day change %"])
        self.header.value, self.holdings.value, self.risk.value = cash_only_html(name, row, cash, self.prices.index[-1].date(),
                                                                                 change)
        self._draw_charts(name, pd.Series(0.0, index=against.index), label, against, words, pd.Series(dtype=float))

    def _draw_charts(self, name: str, grown: pd.Series, label: str, against: pd.Series, words: str,
                     weights: pd.Series) -> None:
        from qpo.reporting.figures import weights_figure
        from qpo.workbench.figure_widgets import figure_widget

        self.growth_against = words
        self._growth_returns = pd.DataFrame({name: grown, label: against.reindex(grown.index).fillna(0.0)})
        self.growth = growth_of_one(self._growth_returns, self.period.value)
        wealth = self._growth_figure()
        w = weights.sort_values(ascending=False)
        bars = weights_figure({"weight": w}, f"{name}: weights")
        if self.wealth_fig is None or self.weights_fig is None:
            # built once: later selections send only their data (one batch_update each)
            self.wealth_fig = figure_widget(wealth)
            self.weights_fig = figure_widget(bars)
            self.charts.children = [self.wealth_fig, self.weights_fig]
        else:
            replace_figure(self.wealth_fig, wealth)
            replace_figure(self.weights_fig, bars)
