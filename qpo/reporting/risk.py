"""A risk report drawn: plotly figures, formatted tables and a self-contained HTML page.

:mod:`qpo.risk` computes the numbers (:class:`qpo.risk.RiskReport`); this module draws them.
"""
from __future__ import annotations

import html
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from qpo.reporting.figures import drawdown_figure, wealth_figure
from qpo.risk import ComplianceStatus, drawdown_series
from qpo.risk.metrics import percent

if TYPE_CHECKING:
    from pandas.io.formats.style import Styler

    from qpo.risk import RiskReport

_LAYOUT: dict[str, Any] = dict(template="plotly_white", height=340, margin=dict(l=50, r=20, t=50, b=40))
_VAR_COLORS = ["#c0392b", "#e67e22", "#8e44ad", "#16a085", "#2980b9", "#2c3e50"]

#: summary rows that are fractions of wealth (shown as %), counts (whole numbers) or ratios
_PERCENT_WORDS = ("return", "volatility", "drawdown", "var ", "cvar ", "hit rate", "alpha", "tracking error")
_COUNT_WORDS = ("duration", "(periods)")


def distribution_figure(report: RiskReport):
    """The return distribution with a dashed line at minus the VaR of each method; the labels are
    stacked down the plot's top edge so that close VaR lines do not print over each other."""
    import plotly.graph_objects as go

    r = report.returns
    if r is None:
        raise ValueError("this risk report holds no return series to draw")
    fig = go.Figure(go.Histogram(x=r.to_numpy(), nbinsx=80, name="returns", marker_color="#34495e", opacity=0.75))
    if report.var_table is not None:
        rows = sorted(report.var_table.iterrows(), key=lambda mr: float(mr[1]["var"]))
        for i, ((method, row), color) in enumerate(zip(rows, _VAR_COLORS * 2)):
            fig.add_vline(x=-float(row["var"]), line=dict(color=color, dash="dash"))
            fig.add_annotation(x=-float(row["var"]), xref="x", y=1.0 - 0.09 * i, yref="paper", xanchor="left",
                               yanchor="top", showarrow=False, text=f"{method} {float(row['var']):.2%}",
                               font=dict(color=color, size=11), bgcolor="rgba(255,255,255,0.8)")
    fig.update_layout(title=f"Return distribution and VaR {percent(report.confidence)} "
                            f"({report.horizon}-period VaR lines)", xaxis_tickformat=".1%", **_LAYOUT)
    return fig


def _contribution_bars(table: pd.DataFrame, title: str):
    import plotly.graph_objects as go

    x = table.index.tolist()
    fig = go.Figure([go.Bar(x=x, y=table["vol_share"].to_numpy(), name="share of volatility"),
                     go.Bar(x=x, y=table["cvar_share"].to_numpy(), name="share of CVaR"),
                     go.Bar(x=x, y=table["weight"].to_numpy(), name="weight")])
    fig.update_layout(title=title, barmode="group", yaxis_tickformat=".0%", **_LAYOUT)
    return fig


def stress_figure(report: RiskReport):
    import plotly.graph_objects as go

    if report.stress is None or not report.stress["loss"].notna().any():
        return None
    st = report.stress.dropna(subset=["loss"])
    fig = go.Figure(go.Bar(y=st["scenario"].tolist(), x=st["loss"].to_numpy(), orientation="h",
                           marker_color=["#c0392b" if v > 0 else "#27ae60" for v in st["loss"]],
                           text=[f"{v:.1%}" for v in st["loss"]], textposition="auto"))
    fig.update_layout(title="Stress tests: loss on today's weights", xaxis_tickformat=".0%",
                      yaxis=dict(autorange="reversed"), **_LAYOUT)
    return fig


def risk_figures(report: RiskReport) -> dict:
    """Plotly figures of a risk report: wealth, drawdown, return distribution with the VaR of each
    method, and (for a portfolio) contributions by asset and sector and stress losses."""
    if report.returns is None:
        raise ValueError("this risk report holds no return series to draw")
    series = {"portfolio": report.returns}
    if report.benchmark_returns is not None:
        series["benchmark"] = report.benchmark_returns
    figs = {"wealth": wealth_figure(series, f"Growth of $1, {report.start.date()} to {report.end.date()}"),
            "drawdown": drawdown_figure(drawdown_series(report.returns), "Drawdown"),
            "distribution": distribution_figure(report)}
    if report.contributions is not None:
        figs["contributions"] = _contribution_bars(report.contributions.sort_values("vol_component", ascending=False),
                                                   "Risk contributions by asset")
    if report.sector_contributions is not None:
        figs["sectors"] = _contribution_bars(report.sector_contributions, "Risk contributions by sector")
    stress = stress_figure(report)
    if stress is not None:
        figs["stress"] = stress
    return figs


def format_value(label: str, value) -> str:
    """One summary value as a reader wants it, by its row's label: fractions of wealth in %, counts
    (durations, periods) whole, ratios to 3 decimals, text as it is, an undefined number empty."""
    if isinstance(value, str):
        return value
    if value is None or (isinstance(value, (float, np.floating)) and math.isnan(value)):
        return ""
    low = str(label).lower()
    if any(w in low for w in _COUNT_WORDS):
        return f"{value:,.0f}"
    if any(w in low for w in _PERCENT_WORDS):
        return f"{value:.2%}"
    return f"{value:.3f}"


def style_summary(table: pd.DataFrame, caption: str | None = None) -> Styler:
    """A summary table (metrics as rows, one column per portfolio) formatted row by row."""
    styler = table.style
    for label in table.index:
        styler = styler.format(lambda v, _label=label: format_value(_label, v), subset=pd.IndexSlice[[label], :])
    if caption:
        styler = styler.set_caption(caption)
    return styler


_TABLE_FORMATS: dict[str, dict[str, str]] = {
    "var": {"var": "{:.3%}", "cvar": "{:.3%}"},
    "stress": {"portfolio_return": "{:.2%}", "loss": "{:.2%}", "coverage": "{:.0%}"},
    "compliance": {"value": "{:.4g}", "limit": "{:.4g}"},
}


def style_table(name: str, table: pd.DataFrame) -> Styler:
    """One of :meth:`RiskReport.tables` formatted for a reader (``name`` as there)."""
    if name in ("summary", "drawdown"):
        return style_summary(table)
    formats = dict(_TABLE_FORMATS.get(name, {}))
    for c in table.columns:
        if c not in formats and pd.api.types.is_float_dtype(table[c]):
            formats[c] = "{:.2%}" if ("share" in str(c) or c == "weight") else "{:.4f}"
    styler = table.style.format(formats, na_rep="–")
    if name == "compliance" and "status" in table:
        styler = styler.map(lambda v: "color:#c0392b;font-weight:bold" if v == ComplianceStatus.BREACH else "",
                            subset=["status"])
    return styler


def compliance_banner(report: RiskReport) -> str:
    """Breaches in red first, or a green line; nothing when no limits were given."""
    if report.compliance_status is ComplianceStatus.NOT_CHECKED:
        return ""
    if report.breaches:
        items = "".join(f"<li>{html.escape(b)}</li>" for b in report.breaches)
        n = len(report.breaches)
        return (f'<div class="breach" style="background:#fdecea;border:2px solid #c0392b;padding:8px">'
                f"<strong>{n} compliance breach{'es' if n > 1 else ''}</strong><ul>{items}</ul></div>")
    unchecked = "".join(f"<li>{html.escape(u)}</li>" for u in report.unchecked)
    if unchecked:
        return ('<div class="compliant" style="background:#fef9e7;border:2px solid #b7950b;padding:8px">'
                f"<strong>Every limit checked holds; not checked:</strong><ul>{unchecked}</ul></div>")
    return ('<div class="compliant" style="background:#eafaf1;border:2px solid #27ae60;'
            'padding:8px"><strong>Every limit holds.</strong></div>')


def risk_html(report: RiskReport, path: str | Path | None = None, title: str = "Risk report") -> str:
    """A self-contained HTML page (plotly.js inlined once: it works offline): breaches first,
    then the summary, VaR by method, contributions, stress tests, compliance, attribution and the
    figures. Written to ``path`` when given."""
    import plotly.io as pio

    parts = [f"<h1>{html.escape(title)}</h1>",
             f"<p>{report.start.date()} to {report.end.date()}, {report.n_periods} periods.</p>",
             compliance_banner(report)]
    for name, table in report.tables().items():
        parts.append(f"<h2>{name.capitalize()}</h2>")
        parts.append(style_table(name, table).set_table_attributes(f'class="table-{name}" border="0"').to_html())
    parts.append(f"<h2>Conventions</h2><p>{html.escape(report.conventions)}</p>")
    parts += [f"<p>{html.escape(n)}</p>" for n in report.notes]
    for i, (name, fig) in enumerate(risk_figures(report).items()):
        parts.append(pio.to_html(fig, include_plotlyjs=(i == 0), full_html=False, div_id=f"fig-{name}"))
    page = (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            "<style>body{font-family:sans-serif;max-width:1100px;margin:auto}table{border-collapse:collapse}"
            "td,th{padding:2px 8px;text-align:right}</style></head><body>" + "\n".join(parts) + "</body></html>")
    if path is not None:
        Path(path).write_text(page, encoding="utf-8")
    return page


__all__ = ["compliance_banner", "distribution_figure", "format_value", "risk_figures", "risk_html", "stress_figure",
           "style_summary", "style_table"]
