"""The client report: one offline HTML page for a portfolio, composed of the existing reports.

The client and the portfolio, its value and cash, its holdings (from the ledger), the daily risk
report (:func:`qpo.reporting.daily.daily_report`: compliance banner, the summary next to the
what-if and the benchmark, then :func:`qpo.reporting.risk.risk_html`'s tables and figures, the
growth of $1 against the benchmark and the drawdown) and,
when given, the rebalance proposal (:func:`qpo.reporting.rebalance.proposal_page`). plotly.js is
inlined once, so the page needs no network. :func:`html_to_pdf` prints such a page with headless
Chromium.
"""
from __future__ import annotations

import html
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

if TYPE_CHECKING:
    from qpo.reporting.daily import DailyReport

from qpo.errors import InvalidValueError

#: seconds Chromium may take to print a page
PDF_TIMEOUT = 120
_STYLE = ("body{font-family:sans-serif;max-width:1100px;margin:auto}table{border-collapse:collapse}"
          "td,th{padding:2px 8px;text-align:right}td:first-child,th:first-child{text-align:left}"
          "dl.header{display:grid;grid-template-columns:max-content auto;gap:2px 12px}dt{font-weight:bold}"
          "dd{margin:0}tr.breach td{color:#c0392b;font-weight:bold}tr.trade-sell td:first-child{color:#c0392b}"
          "tr.trade-buy td:first-child{color:#27ae60}tr.total td{border-top:1px solid #333;font-weight:bold}"
          "section{page-break-before:always}")


@dataclass
class ClientReport:
    """A client report: the ``page`` (HTML text), the :class:`~qpo.reporting.daily.DailyReport`
    it shows, the client's name, the portfolio's value and cash, and whether a proposal is in it."""

    portfolio: str
    client: str
    page: str
    daily: DailyReport
    value: float
    cash: float
    with_proposal: bool


def _body(page: str) -> str:
    """What lies between ``<body>`` and ``</body>`` of a page of the reporting modules."""
    start = page.index("<body>") + len("<body>")
    return page[start:page.rindex("</body>")]


def safe_name(name: str) -> str:
    """``name`` with every character but letters, digits, - and _ made a _ (for a file name)."""
    return re.sub(r"[^A-Za-z0-9_-]+", "_", str(name)).strip("_")[:80] or "portfolio"


def client_report(name: str, prices: pd.DataFrame, *, engine, actor, benchmark_returns: pd.Series | None = None,
                  proposal=None, lookback_days: int = 756, n_scenarios: int = 20_000, as_of=None) -> ClientReport:
    """The client report of portfolio ``name`` as ``actor`` sees it (see the module).
    ``benchmark_returns`` are the S&P 500's daily returns (made a level series for
    :func:`~qpo.reporting.daily.daily_report`); ``proposal`` a
    :class:`qpo.book.RebalanceProposal` of this portfolio, or None."""
    import plotly.io as pio
    import plotly.offline

    from qpo.reporting.daily import daily_report
    from qpo.reporting.rebalance import proposal_page
    from qpo.reporting.risk import risk_html
    from qpo.store import get_portfolio, position, session_scope

    if proposal is not None and getattr(proposal, "portfolio", None) != name:
        raise InvalidValueError(f"the proposal is for {getattr(proposal, 'portfolio', None)!r}, not {name!r}")
    levels = None
    if benchmark_returns is not None:
        levels = (1.0 + benchmark_returns.fillna(0.0)).cumprod().rename("SP500")
    daily = daily_report(name, prices, as_of=as_of, lookback_days=lookback_days, benchmark=levels, engine=engine,
                         actor=actor, n_scenarios=n_scenarios)
    day = daily.as_of
    with session_scope(engine, write=False) as s:
        held = get_portfolio(s, actor, name)
        client, account, advisor = held.client_name, held.account, held.advisor.email
        pos = position(s, actor, name, day.date())
    px = prices.loc[:day, pos.shares.index].ffill().iloc[-1]
    values = pos.shares * px
    value = float(values.sum()) + float(pos.cash)
    holdings = pd.DataFrame({"shares": pos.shares, "price": px, "value": values,
                             "weight": daily.weights.reindex(pos.shares.index)}).sort_values("value", ascending=False)
    holdings.index.name = "ticker"
    table = holdings.to_html(classes="qpo-holdings", border=0, escape=True, formatters={
        "shares": lambda x: f"{x:,.6g}", "price": lambda x: f"${x:,.2f}", "value": lambda x: f"${x:,.2f}",
        "weight": lambda x: f"{100 * x:.2f}%"})
    e = html.escape
    title = f"Client report: {name}"
    facts = [("client", client), ("portfolio", name), ("account", account or ""), ("advisor", advisor),
             ("as of", str(day.date())), ("market value", f"${value:,.2f}"), ("cash", f"${float(pos.cash):,.2f}"),
             ("invested", f"${float(values.sum()):,.2f}")]
    parts = [f"<h1>{e(title)}</h1>",
             '<dl class="header">' + "".join(f"<dt>{e(k)}</dt><dd>{e(v)}</dd>" for k, v in facts) + "</dl>",
             daily.status_html(), "<h2>Holdings</h2>", table,
             "<h2>Risk summary</h2>", daily.styled_risk_table().to_html(),
             "<section>", _body(risk_html(daily.risk, title=f"Risk report: {name}")), "</section>",
             "<h2>Growth and drawdown</h2>"]
    figures = daily.figures()
    parts += [pio.to_html(figures[k], include_plotlyjs=False, full_html=False, div_id=f"fig-daily-{k}")
              for k in ("wealth", "drawdown")]  # after risk_html's figures, which load plotly.js
    if proposal is not None:
        page = _body(proposal_page(proposal))
        parts += ["<section>", page.replace(plotly.offline.get_plotlyjs(), ""), "</section>"]  # plotly.js once
    page = (f"<!doctype html><html><head><meta charset='utf-8'><title>{e(title)}</title><style>{_STYLE}</style>"
            "</head><body>" + "\n".join(parts) + "</body></html>")
    return ClientReport(name, client, page, daily, value, float(pos.cash), proposal is not None)


def chromium() -> str | None:
    """The Chromium to print with: ``$QPO_CHROMIUM``, ``chromium`` on the PATH or /usr/bin/chromium."""
    for path in (os.environ.get("QPO_CHROMIUM"), shutil.which("chromium"), shutil.which("chromium-browser"),
                 "/usr/bin/chromium"):
        if path and os.access(path, os.X_OK):
            return path
    return None


def html_to_pdf(page: str, timeout: float = PDF_TIMEOUT) -> bytes:
    """``page`` printed to PDF by headless Chromium (its scripts given 10 s of virtual time so the
    figures draw). An :class:`~qpo.errors.InvalidValueError` when there is no Chromium, it fails
    or it takes longer than ``timeout`` seconds."""
    exe = chromium()
    if exe is None:
        raise InvalidValueError("a PDF needs Chromium (apt-get install chromium, or set QPO_CHROMIUM); "
                                "the HTML report works without it")
    with tempfile.TemporaryDirectory(prefix="qpo-report-") as folder:
        src, out = Path(folder, "report.html"), Path(folder, "report.pdf")
        src.write_text(page, encoding="utf-8")
        args = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--no-first-run", f"--user-data-dir={folder}/profile",
                "--virtual-time-budget=10000", f"--print-to-pdf={out}", "--no-pdf-header-footer", src.as_uri()]
        try:
            done = subprocess.run(args, capture_output=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            raise InvalidValueError(f"Chromium did not print the report within {timeout:g} s") from None
        if not out.is_file() or out.stat().st_size == 0:
            raise InvalidValueError(f"Chromium could not print the report (exit status {done.returncode})")
        return out.read_bytes()


__all__ = ["ClientReport", "chromium", "client_report", "html_to_pdf", "safe_name"]
