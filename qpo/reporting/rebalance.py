"""A rebalance proposal drawn and exported: the order ticket (a table a broker's desk can key in),
plotly figures of its weights, trades and risk before and after, and a self-contained offline HTML
page.

:mod:`qpo.book.rebalance` computes the proposal (:class:`qpo.book.RebalanceProposal`); this module
only presents it. Every text that comes from the book (portfolio and account names, tickers, check
names, violations) is HTML-escaped on the page, and figures carry it only inside plotly's JSON
(which escapes ``<``), so a name such as ``<script>`` is shown, never run.
"""
from __future__ import annotations

import html
import math
import os
import tempfile
from collections.abc import Mapping
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from qpo._checks import check_label, quote
from qpo.errors import InvalidValueError

if TYPE_CHECKING:
    from qpo.book.rebalance import RebalanceProposal

#: the columns of :func:`order_ticket`
TICKET_COLUMNS = ["side", "ticker", "shares", "limit_price", "account"]
#: the rows of :func:`compare_proposals`
COMPARE_ROWS = ["n_trades", "turnover", "total_cost", "cash_after", "tracking_error", "distance_l1", "volatility",
                "expected_return"]

_LAYOUT: dict[str, Any] = dict(template="plotly_white", height=360, margin=dict(l=60, r=20, t=50, b=40))
_SIDE_COLORS = {"sell": "#c0392b", "buy": "#27ae60"}
#: the comparison rows the risk figure draws, with their labels
_RISK_ROWS = {"volatility": "volatility", "var": "VaR", "cvar": "CVaR", "tracking_error": "tracking error"}
_PERCENT_ROWS = ("expected_return", "volatility", "var", "cvar", "tracking_error", "cash_weight", "turnover",
                 "distance_l1")


def _check_proposal(proposal) -> RebalanceProposal:
    from qpo.book.rebalance import RebalanceProposal

    if not isinstance(proposal, RebalanceProposal):
        raise InvalidValueError(f"proposal must be a qpo.book.RebalanceProposal (plan_rebalance, propose_rebalance or "
                                f"RebalanceProposal.from_record), got {type(proposal).__name__}")
    return proposal


# -- the order ticket -------------------------------------------------------------------------------
def _cents(price: float, side: str | None = None) -> float:
    """A price in cents: for a buy rounded up and for a sell down (a limit at least as good for a
    fill as the estimate); without a side half away from zero (135.905 -> 135.91)."""
    rounding = {"buy": ROUND_CEILING, "sell": ROUND_FLOOR}.get(side or "", ROUND_HALF_UP)
    return float(Decimal(repr(float(price))).quantize(Decimal("0.01"), rounding=rounding))


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(text: str) -> str:
    """Text a spreadsheet will not run as a formula: a cell that starts with = + - @ (or a tab or a
    carriage return) gets a leading apostrophe (OWASP's advice for CSV files)."""
    return "'" + text if text.startswith(_FORMULA_START) else text


def _shares_column(shares: pd.Series) -> pd.Series:
    """Whole numbers of shares as ints; a fractional number as it is (the trade exactly). All
    whole: an int64 column; some fractional: an object column of ints and floats."""
    values = shares.to_numpy(dtype=float)
    whole = values == np.round(values)
    if whole.all():
        return pd.Series(values.astype(np.int64), index=shares.index, name="shares")
    return pd.Series([int(v) if w else float(v) for v, w in zip(values, whole)], index=shares.index,
                     dtype=object, name="shares")


def order_ticket(proposal: RebalanceProposal, account: str | None = None) -> pd.DataFrame:
    """The proposal's trade list as an order ticket: ``side, ticker, shares, limit_price, account``,
    one row per trade in the proposal's order (sells first). ``limit_price`` is the proposal's
    estimated price (its last close) in cents, rounded up for a buy and down for a sell; text that
    a spreadsheet would run as a formula (``=...``) starts with an apostrophe; ``shares`` are ints where whole, the exact
    fraction otherwise; ``account`` is ``account`` when given, else the proposal's. A proposal
    without trades gives an empty ticket with these columns."""
    p = _check_proposal(proposal)
    acct = check_label(account, "account") if account is not None else str(p.account)
    trades = p.trades
    if trades.empty:
        return pd.DataFrame({"side": pd.Series(dtype=object), "ticker": pd.Series(dtype=object),
                             "shares": pd.Series(dtype=np.int64), "limit_price": pd.Series(dtype=float),
                             "account": pd.Series(dtype=object)}, columns=TICKET_COLUMNS)
    bad = trades.index[~trades["side"].isin(("buy", "sell")) | ~(trades["shares"].astype(float) > 0)
                       | ~(trades["price"].astype(float) > 0)]
    if len(bad):
        row = trades.loc[bad[0]]
        raise InvalidValueError(f"trade {int(bad[0]) + 1} of the proposal ({quote(row['side'])} {row['shares']} "
                                f"{quote(row['ticker'])} at {row['price']}) cannot be ticketed: a side buy or sell, "
                                "shares > 0 and a price > 0 are needed")
    ticket = pd.DataFrame({
        "side": trades["side"].astype(object).to_numpy(),
        "ticker": [_cell(str(t)) for t in trades["ticker"]],
        "shares": _shares_column(trades["shares"].reset_index(drop=True)).to_numpy(),
        "limit_price": [_cents(x, side) for x, side in zip(trades["price"].to_numpy(dtype=float), trades["side"])],
        "account": _cell(acct),
    }, columns=TICKET_COLUMNS)
    return ticket


# -- comparing proposals ----------------------------------------------------------------------------
def compare_proposals(proposals: Mapping[str, RebalanceProposal]) -> pd.DataFrame:
    """Proposals side by side (one column each, by the mapping's keys): the number of trades,
    turnover, total cost, cash left, the tracking error of the holdings after the trades to each
    proposal's own target, the L1 distance to it, and the volatility and expected return after.
    Rows: :data:`COMPARE_ROWS`."""
    if not isinstance(proposals, Mapping) or not proposals:
        raise InvalidValueError("proposals must be a non-empty mapping label -> RebalanceProposal")
    cols = {}
    for label, p in proposals.items():
        p = _check_proposal(p)
        cols[str(label)] = [float(len(p.trades)), p.turnover, p.total_cost, p.cash_after,
                            float(p.comparison.loc["tracking_error", "after"]), p.distance_to_target.get("l1", np.nan),
                            float(p.comparison.loc["volatility", "after"]),
                            float(p.comparison.loc["expected_return", "after"])]
    frame = pd.DataFrame(cols, index=COMPARE_ROWS)
    frame.index.name = "metric"
    return frame


def format_number(row: str, value) -> str:
    """One number of a proposal's tables as a reader wants it, by its row or column name: weights,
    risk and turnover in %, counts whole, money with two decimals; an undefined number empty."""
    if value is None or (isinstance(value, (float, np.floating)) and math.isnan(value)):
        return ""
    if isinstance(value, str):
        return value
    name = str(row).lower()
    if name in ("n_names", "n_trades", "min names"):
        return f"{value:,.0f}"
    if name in _PERCENT_ROWS or name in ("before", "target", "after", "weight"):
        return f"{value:.2%}"
    return f"{value:,.2f}"


def style_comparison(table: pd.DataFrame):
    """:attr:`RebalanceProposal.comparison` or :func:`compare_proposals` formatted row by row."""
    styler = table.style
    for label in table.index:
        styler = styler.format(lambda v, _label=label: format_number(_label, v), subset=pd.IndexSlice[[label], :])
    return styler


# -- figures ----------------------------------------------------------------------------------------
def weights_figure(proposal: RebalanceProposal):
    """Grouped bars of each name's weight before, at the target and after the trades (fractions of
    total value including cash); names that are zero in all three are left out."""
    import plotly.graph_objects as go

    w = _check_proposal(proposal).weights[["before", "target", "after"]].astype(float)
    w = w.loc[w.abs().max(axis=1) > 1e-9]
    fig = go.Figure([go.Bar(x=w.index.tolist(), y=w[c].to_numpy(), name=c) for c in w.columns])
    fig.update_layout(title="Weights before, at the target and after the trades (of value incl. cash)",
                      barmode="group", yaxis_tickformat=".0%", **_LAYOUT)
    return fig


def trades_figure(proposal: RebalanceProposal):
    """The trade list's notional by ticker, in the list's order: sells negative (red), buys
    positive (green)."""
    import plotly.graph_objects as go

    t = _check_proposal(proposal).trades
    signed = np.where(t["side"].to_numpy() == "sell", -1.0, 1.0) * t["notional"].to_numpy(dtype=float)
    fig = go.Figure(go.Bar(x=t["ticker"].tolist(), y=signed, name="notional",
                           marker_color=[_SIDE_COLORS.get(s, "#34495e") for s in t["side"]],
                           customdata=np.column_stack([t["side"].to_numpy(dtype=object),
                                                       t["shares"].to_numpy(dtype=float)]) if len(t) else None,
                           hovertemplate="%{customdata[0]} %{customdata[1]:,} %{x}: %{y:,.2f}<extra></extra>"))
    if t.empty:
        fig.add_annotation(text="no trades: the holdings are already at the target", showarrow=False,
                           xref="paper", yref="paper", x=0.5, y=0.5)
    fig.update_layout(title="Trades: notional by ticker (sells negative)", yaxis_tickformat=",.0f",
                      xaxis=dict(type="category"), **_LAYOUT)
    return fig


def comparison_figure(proposal: RebalanceProposal):
    """Volatility, VaR, CVaR and tracking error to the target, before and after the trades."""
    import plotly.graph_objects as go

    p = _check_proposal(proposal)
    rows = p.comparison.loc[list(_RISK_ROWS)]
    conf = getattr(p.strategy, "confidence", None)
    labels = [f"{v} {conf:.0%}" if conf is not None and k in ("var", "cvar") else v for k, v in _RISK_ROWS.items()]
    fig = go.Figure([go.Bar(x=labels, y=rows[c].to_numpy(dtype=float), name=c) for c in ("before", "after")])
    fig.update_layout(title="Risk before and after the trades (annualized volatility; one-period VaR and CVaR)",
                      barmode="group", yaxis_tickformat=".1%", **_LAYOUT)
    return fig


def proposal_figures(proposal: RebalanceProposal) -> dict:
    """Plotly figures of a proposal: ``weights`` (before, target, after), ``trades`` (notional by
    ticker, sells negative) and ``comparison`` (volatility, VaR, CVaR, tracking error before and
    after)."""
    return {"weights": weights_figure(proposal), "trades": trades_figure(proposal),
            "comparison": comparison_figure(proposal)}


# -- the page ---------------------------------------------------------------------------------------
def _esc(value) -> str:
    return html.escape(str(value), quote=True)


def _money(x: float) -> str:
    return "" if x is None or not math.isfinite(float(x)) else f"{float(x):,.2f}"


def _shares_text(x: float) -> str:
    x = float(x)
    return f"{int(x):,}" if x == round(x) else f"{x:,.6f}".rstrip("0")


def _table(header: list[str], rows: list[list[str]], css: str, row_classes: list[str] | None = None) -> str:
    """An HTML table of already formatted cells (escaped here)."""
    head = "".join(f"<th>{_esc(h)}</th>" for h in header)
    body = []
    for i, row in enumerate(rows):
        cls = row_classes[i] if row_classes else ""
        attr = f' class="{_esc(cls)}"' if cls else ""
        body.append(f"<tr{attr}>" + "".join(f"<td>{_esc(c)}</td>" for c in row) + "</tr>")
    return (f'<table class="{_esc(css)}"><thead><tr>{head}</tr></thead><tbody>' + "".join(body)
            + "</tbody></table>")


def _trades_html(p: RebalanceProposal) -> str:
    if p.trades.empty:
        return '<p class="no-trades">No trades: the holdings are already at the target.</p>'
    rows = [[t.side, t.ticker, _shares_text(t.shares), _money(_cents(t.price, t.side)), _money(t.notional), _money(t.cost)]
            for t in p.trades.itertuples(index=False)]
    rows.append(["total", "", "", "", _money(p.trades["notional"].sum()), _money(p.total_cost)])
    classes = [f"trade-{t}" for t in p.trades["side"]] + ["total"]
    return _table(["side", "ticker", "shares", "limit price", "notional", "estimated cost"], rows, "trades", classes)


def _metric_labels(p: RebalanceProposal) -> dict[str, str]:
    conf = getattr(p.strategy, "confidence", None)
    at = f" {conf:.0%}" if isinstance(conf, float) else ""
    return {"expected_return": "expected return (annual)", "volatility": "volatility (annual)",
            "var": f"VaR{at} (one period)", "cvar": f"CVaR{at} (one period)",
            "tracking_error": "tracking error to the target (annual)", "n_names": "names held",
            "cash_weight": "cash weight"}


def _comparison_html(p: RebalanceProposal) -> str:
    c = p.comparison
    labels = _metric_labels(p)
    rows = [[labels.get(m, m.replace("_", " "))] + [format_number(m, c.loc[m, col]) for col in ("before", "after", "target")]
            for m in c.index]
    return _table(["", "before", "after", "target"], rows, "comparison")


def _compliance_html(p: RebalanceProposal) -> str:
    comp = p.compliance
    if comp.empty:
        return "<p>No compliance limits are set in the strategy.</p>"

    def fmt(check: str, v) -> str:
        return format_number("min names" if str(check) == "min names" else "weight", v)

    def state(passed) -> str:
        return "not checked" if passed is None else "pass" if passed else "BREACH"

    rows, classes = [], []
    for r in comp.itertuples(index=False):
        rows.append([r.check, fmt(r.check, r.limit), fmt(r.check, r.before), fmt(r.check, r.after),
                     state(r.passed_before), state(r.passed_after)])
        classes.append("breach" if r.passed_after is False else "breach-before" if r.passed_before is False else "pass")
    n = sum(1 for v in comp["passed_after"] if v is False)
    fixed = sum(1 for b, a in zip(comp["passed_before"], comp["passed_after"]) if b is False and a is True)
    banner = (f'<p class="breach-count"><strong>{n} limit{"s" if n != 1 else ""} breached after the trades.</strong></p>'
              if n else '<p class="compliant">Every limit holds after the trades.</p>')
    if fixed:
        banner += f'<p class="fixed">{fixed} breach{"es" if fixed != 1 else ""} before the trades mended by them (grey).</p>'

    return banner + _table(["check", "limit", "before", "after", "before: status", "after: status"], rows,
                           "compliance", classes)


def _violations_html(p: RebalanceProposal) -> str:
    if not p.violations:
        return "<p>None: whole-share rounding keeps every constraint of the target.</p>"
    return '<ul class="violations">' + "".join(f"<li>{_esc(v)}</li>" for v in p.violations) + "</ul>"


def _header_html(p: RebalanceProposal) -> str:
    items = [("portfolio", p.portfolio), ("account", p.account), ("status", p.status),
             ("id", p.id if p.id is not None else "not saved"),
             ("prices as of", p.prices_as_of.date().isoformat()), ("as of", p.as_of.date().isoformat()),
             ("objective", getattr(p.strategy, "objective", "")),
             ("value", f"{_money(p.value_before)} \u2192 {_money(p.value_after)}"),
             ("cash", f"{_money(p.cash_before)} \u2192 {_money(p.cash_after)}"),
             ("total cost", _money(p.total_cost)), ("turnover", format_number("turnover", p.turnover)),
             ("trades", f"{int((p.trades['side'] == 'sell').sum())} sells, {int((p.trades['side'] == 'buy').sum())} buys"),
             ("distance to target", f"max {format_number('before', p.distance_to_target.get('max_abs'))}, "
                                    f"L1 {format_number('before', p.distance_to_target.get('l1'))}")]
    return '<dl class="header">' + "".join(f"<dt>{_esc(k)}</dt><dd>{_esc(v)}</dd>" for k, v in items) + "</dl>"


def proposal_page(proposal: RebalanceProposal, title: str | None = None) -> str:
    """The proposal as one self-contained HTML page (plotly.js inlined once, no network needed):
    the header (portfolio, account, status, id, prices as of, value, cash before and after, total
    cost, turnover), the trade list, before and after, compliance with its breaches marked, the
    violations and the figures."""
    import plotly.io as pio

    p = _check_proposal(proposal)
    title = title if title is not None else f"Rebalance proposal: {p.portfolio}"
    parts = [f"<h1>{_esc(title)}</h1>", _header_html(p),
             "<h2>Trades</h2>", _trades_html(p),
             "<h2>Before and after</h2>",
             "<p>Weights are fractions of the total value including cash; risk numbers from the same returns as "
             "the target; tracking error to the target.</p>", _comparison_html(p),
             "<h2>Compliance</h2>", _compliance_html(p),
             "<h2>Constraints not met after rounding</h2>", _violations_html(p),
             "<h2>Figures</h2>"]
    for i, (name, fig) in enumerate(proposal_figures(p).items()):
        parts.append(pio.to_html(fig, include_plotlyjs=(i == 0), full_html=False, div_id=f"fig-{name}"))
    return ("<!doctype html><html><head><meta charset='utf-8'><title>" + _esc(title) + "</title>"
            "<style>body{font-family:sans-serif;max-width:1100px;margin:auto}table{border-collapse:collapse}"
            "td,th{padding:2px 8px;text-align:right}td:first-child,th:first-child{text-align:left}"
            "dl.header{display:grid;grid-template-columns:max-content auto;gap:2px 12px}dt{font-weight:bold}"
            "dd{margin:0}tr.breach td{color:#c0392b;font-weight:bold}tr.breach-before td{color:#7f8c8d}"
            "tr.trade-sell td:first-child{color:#c0392b}tr.trade-buy td:first-child{color:#27ae60}"
            "tr.total td{border-top:1px solid #333;font-weight:bold}.breach-count{color:#c0392b}"
            ".compliant{color:#27ae60}</style></head><body>" + "\n".join(parts) + "</body></html>")


def _write_atomically(path: Path, text: str) -> None:
    folder = path.parent
    if not folder.is_dir():
        raise InvalidValueError(f"cannot write {quote(str(path), 80)}: the folder {quote(str(folder), 80)} does not "
                                "exist (create it first)")
    if path.is_dir():
        raise InvalidValueError(f"cannot write {quote(str(path), 80)}: it is a folder; give a file name")
    if path.is_symlink() or (path.exists() and not path.is_file()):
        raise InvalidValueError(f"cannot write {quote(str(path), 80)}: it exists and is not a regular file (a device, "
                                "a pipe or a link); give the path of a file")
    if len(path.name.encode()) > 200:
        raise InvalidValueError(f"cannot write {quote(str(path), 80)}: the file name is too long (at most 200 bytes)")
    if path.exists():
        mode = path.stat().st_mode & 0o777  # a page written again keeps its permissions
    else:
        umask = os.umask(0)
        os.umask(umask)
        mode = 0o666 & ~umask  # as an ordinary open() would create it (mkstemp's file is 0600)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name[:40]}.", suffix=".tmp", dir=folder)
    except OSError as exc:
        raise InvalidValueError(f"cannot write {quote(str(path), 80)}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise InvalidValueError(f"cannot write {quote(str(path), 80)}: {exc.strerror or exc}") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def proposal_html(proposal: RebalanceProposal, path: str | os.PathLike, title: str | None = None) -> Path:
    """Write :func:`proposal_page` to ``path`` (UTF-8) and return the path. Written to a temporary
    file beside it and moved into place, so a failure leaves no half-written page (and an existing
    file as it was)."""
    if not isinstance(path, (str, os.PathLike)) or not str(path).strip():
        raise InvalidValueError(f"path must be a file path (text or os.PathLike), got {quote(path)}")
    page = proposal_page(proposal, title)  # built whole before anything is written
    out = Path(path)
    _write_atomically(out, page)
    return out


def order_ticket_csv(proposal: RebalanceProposal, path: str | os.PathLike, account: str | None = None) -> Path:
    """Write :func:`order_ticket` to ``path`` as CSV (UTF-8, a header row, no index) and return the
    path; written whole or not at all, as :func:`proposal_html` is."""
    if not isinstance(path, (str, os.PathLike)) or not str(path).strip():
        raise InvalidValueError(f"path must be a file path (text or os.PathLike), got {quote(path)}")
    text = order_ticket(proposal, account).to_csv(index=False, lineterminator="\n")
    out = Path(path)
    _write_atomically(out, text)
    return out


__all__ = ["COMPARE_ROWS", "TICKET_COLUMNS", "compare_proposals", "comparison_figure", "format_number",
           "order_ticket", "order_ticket_csv", "proposal_figures", "proposal_html", "proposal_page", "style_comparison",
           "trades_figure", "weights_figure"]
