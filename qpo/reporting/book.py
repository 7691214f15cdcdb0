"""The book report: one offline HTML page of the nightly risk run over every portfolio.

In the order an operations desk reads it: the compliance breaches first (each failed check of
each portfolio, its alert new or persisting), then the distribution of risk across the book
(histograms of volatility and historical VaR, quantiles of every measure), the worst portfolios,
what changed since the previous risk date (the largest moves of VaR and volatility, portfolios
that started or stopped breaching), and the portfolios the valuation could not price or priced
with stale prices. plotly.js is inlined once, so the page needs no network.

The numbers come in as frames (the risk run's table, the valuations of the date, the previous
date's stored risk); this module reads no store and computes no risk.
"""
from __future__ import annotations

import datetime as dt
import html
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

#: the risk table's measures, as the report names them
MEASURES = {"volatility": "volatility (annualized)", "var_historical": "VaR historical",
            "cvar_historical": "CVaR historical", "var_parametric": "VaR parametric",
            "cvar_parametric": "CVaR parametric", "beta": "beta", "max_drawdown": "max drawdown",
            "worst_stress": "worst stress loss"}
_RATIOS = ("beta",)  # shown as a number, not a percentage
_LAYOUT: dict[str, Any] = dict(template="plotly_white", height=320, margin=dict(l=50, r=20, t=50, b=40))
_STYLE = ("body{font-family:sans-serif;max-width:1150px;margin:auto}table{border-collapse:collapse;margin:6px 0}"
          "td,th{padding:2px 8px;text-align:right;border-bottom:1px solid #eee}"
          "td:first-child,th:first-child{text-align:left}dl.header{display:grid;"
          "grid-template-columns:max-content auto;gap:2px 12px}dt{font-weight:bold}dd{margin:0}"
          "td.new{color:#c0392b;font-weight:bold}.qpo-flag{background:#fef5e7;border:2px solid #e67e22;padding:8px 12px}")


@dataclass
class BookReport:
    """The page (HTML text), its figures (plotly, by name) and the counts it shows."""

    as_of: dt.date
    page: str
    figures: dict = field(default_factory=dict, repr=False)
    summary: dict = field(default_factory=dict)

    def write(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.page, encoding="utf-8")
        return path


def _by_portfolio(frame: pd.DataFrame | None) -> pd.DataFrame | None:
    """``frame`` indexed by portfolio id (from its ``portfolio_id`` column when it has one)."""
    if frame is None:
        return None
    if "portfolio_id" in frame.columns:
        frame = frame.set_index("portfolio_id")
    return frame


def _pct(v, digits: int = 2) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return ""
    return f"{float(v):.{digits}%}"


def _num(v, digits: int = 3) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return ""
    return f"{float(v):.{digits}f}"


def _fmt(measure: str, v) -> str:
    return _num(v) if measure in _RATIOS else _pct(v)


def _value(v) -> str:
    """A compliance value or limit: a fraction as a percentage, a count as a whole number."""
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return ""
    v = float(v)
    return f"{v:,.0f}" if v.is_integer() and abs(v) >= 1 else f"{v:.2%}"


def _table(rows: list[list[str]], header: list[str], css: str, classes: list[str] | None = None) -> str:
    """An HTML table of already-escaped cells."""
    head = "".join(f"<th>{h}</th>" for h in header)
    body = []
    for i, row in enumerate(rows):
        cls = f' class="{classes[i]}"' if classes and classes[i] else ""
        body.append(f"<tr{cls}>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>")
    return f'<table class="{css}"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'


def _name(names: pd.DataFrame | None, pid) -> str:
    if names is not None and pid in names.index and "name" in names.columns:
        return str(names.loc[pid, "name"])
    return f"portfolio {pid}"


def _advisor(names: pd.DataFrame | None, pid) -> str:
    if names is not None and pid in names.index and "advisor_email" in names.columns:
        v = names.loc[pid, "advisor_email"]
        return "" if v is None or (isinstance(v, float) and math.isnan(v)) else str(v)
    return ""


def book_figures(table: pd.DataFrame) -> dict:
    """Histograms of the book's volatility, historical VaR and worst stress loss (one bar per
    range of values, the count of portfolios in it), each with its median marked."""
    import plotly.graph_objects as go

    figs = {}
    for key, column, color in (("volatility", "volatility", "#2980b9"), ("var", "var_historical", "#c0392b"),
                               ("stress", "worst_stress", "#8e44ad")):
        if column not in table.columns:
            continue
        values = pd.to_numeric(table[column], errors="coerce").dropna().to_numpy(dtype=float)
        if values.size == 0:
            continue
        fig = go.Figure(go.Histogram(x=values, nbinsx=40, marker_color=color, opacity=0.8, name=MEASURES[column]))
        median = float(np.median(values))
        fig.add_vline(x=median, line=dict(color="#2c3e50", dash="dash"))
        fig.add_annotation(x=median, xref="x", y=1.0, yref="paper", yanchor="top", xanchor="left", showarrow=False,
                           text=f"median {median:.2%}", bgcolor="rgba(255,255,255,0.8)")
        fig.update_layout(title=f"{MEASURES[column].capitalize()} across the book ({values.size} portfolios)",
                          xaxis_tickformat=".1%", xaxis_title=MEASURES[column], yaxis_title="portfolios", **_LAYOUT)
        figs[key] = fig
    return figs


def valuation_figures(valuations: pd.DataFrame) -> dict:
    """Histograms of the valued portfolios' market values and daily returns (a valuation run's
    rows: ``status``, ``market_value``, ``daily_return``)."""
    import plotly.graph_objects as go

    valued = valuations[valuations["status"] == "valued"] if "status" in valuations else valuations
    figs = {}
    for key, column, fmt, title in (("market_value", "market_value", "$,.0f", "Market value"),
                                    ("daily_return", "daily_return", ".1%", "Daily return")):
        values = pd.to_numeric(valued.get(column), errors="coerce").dropna().to_numpy(dtype=float) \
            if column in valued else np.array([])
        if values.size == 0:
            continue
        fig = go.Figure(go.Histogram(x=values, nbinsx=40, marker_color="#16a085", opacity=0.8, name=title.lower()))
        fig.update_layout(title=f"{title} of the {values.size} valued portfolios", xaxis_tickformat=fmt,
                          xaxis_title=title.lower(), yaxis_title="portfolios", **_LAYOUT)
        figs[key] = fig
    return figs


def quantile_table(table: pd.DataFrame) -> pd.DataFrame:
    """Each measure's count, mean, 5 %, median, 95 % and largest value across the book."""
    rows = {}
    for column, label in MEASURES.items():
        if column not in table.columns:
            continue
        v = pd.to_numeric(table[column], errors="coerce").dropna()
        if v.empty:
            continue
        rows[label] = {"portfolios": len(v), "mean": v.mean(), "5%": v.quantile(0.05), "median": v.median(),
                       "95%": v.quantile(0.95), "largest": v.max()}
    return pd.DataFrame.from_dict(rows, orient="index")


def _alert_states(alerts: Mapping[str, Sequence[Mapping]] | None) -> dict[tuple, str]:
    """(portfolio id, check) -> new | persisting, from an alert sync's lists."""
    out: dict[tuple, str] = {}
    for state in ("persisting", "new"):
        for a in (alerts or {}).get(state, ()) or ():
            check = a.get("check", a.get("check_name"))
            out[(a.get("portfolio_id"), check)] = state
    return out


def _breach_section(breaches: Sequence[Mapping], names, alerts, n: int, as_of, unchecked: int = 0) -> tuple[str, int]:
    e = html.escape
    if not breaches and unchecked:
        return (f'<div class="qpo-unknown qpo-flag"><b>No breach among the {n} portfolios risk-checked, but {unchecked} '
                f"portfolio(s) were NOT risk-checked on {as_of}: their compliance is unknown, not a pass (listed "
                "below).</b></div>", 0)
    if not breaches:
        return (f'<div class="qpo-compliant" style="background:#eafaf1;border:2px solid #27ae60;padding:8px 12px">'
                f"<b>No compliance breach: every checked limit of the {n} portfolios holds on {as_of}.</b></div>", 0)
    states = _alert_states(alerts)
    by_pf = sorted(breaches, key=lambda b: (_name(names, b.get("portfolio_id")), str(b.get("check"))))
    rows, classes = [], []
    for b in by_pf:
        pid = b.get("portfolio_id")
        state = states.get((pid, b.get("check")), "")
        rows.append([e(_name(names, pid)), e(_advisor(names, pid)), e(str(b.get("check", ""))),
                     e(_value(b.get("value"))), e(_value(b.get("limit"))), e(state), e(str(b.get("message", "")))])
        classes.append("breach-new" if state == "new" else "breach")
    portfolios = len({b.get("portfolio_id") for b in breaches})
    new = sum(1 for b in by_pf if states.get((b.get("portfolio_id"), b.get("check"))) == "new")
    banner = (f'<div class="qpo-breach" style="background:#fdecea;border:2px solid #c0392b;padding:8px 12px">'
              f"<b>COMPLIANCE BREACHES: {len(breaches)} failed check(s) in {portfolios} of {n} portfolios on "
              f"{as_of}" + (f", {new} new since the last run" if alerts is not None else "")
              + (f"; {unchecked} more portfolio(s) NOT risk-checked (unknown)" if unchecked else "") + "</b></div>")
    table = _table(rows, ["portfolio", "advisor", "check", "value", "limit", "alert", "message"], "qpo-breaches",
                   classes)
    return banner + table, portfolios


def _worst_section(table: pd.DataFrame, names, top: int) -> str:
    e = html.escape
    parts = []
    for column in ("var_historical", "volatility", "worst_stress"):
        if column not in table.columns:
            continue
        worst = pd.to_numeric(table[column], errors="coerce").dropna().sort_values(ascending=False).head(top)
        if worst.empty:
            continue
        rows = []
        for pid in worst.index:
            r = table.loc[pid]
            rows.append([e(_name(names, pid)), e(_advisor(names, pid))]
                        + [e(_fmt(c, r.get(c))) for c in ("var_historical", "volatility", "worst_stress", "beta")]
                        + [e(str(int(r.get("breaches", 0) or 0)))])
        parts.append(f"<h3>Highest {e(MEASURES[column])}</h3>" + _table(
            rows, ["portfolio", "advisor", "VaR historical", "volatility", "worst stress", "beta", "breaches"],
            f"qpo-worst-{column}"))
    return "".join(parts)


def _changes_section(table: pd.DataFrame, previous: pd.DataFrame | None, previous_as_of, names, top: int) -> tuple[str, dict]:
    e = html.escape
    if previous is None or previous.empty:
        return "<p>No earlier risk run is stored: nothing to compare with.</p>", {}
    # a portfolio not checked on either date is no evidence: it neither started nor stopped breaching
    table, previous = _checked_rows(table), _checked_rows(previous)
    both = table.index.intersection(previous.index)
    out: dict[str, Any] = {"compared": int(len(both)), "added": int(len(table.index.difference(previous.index))),
                           "dropped": int(len(previous.index.difference(table.index)))}
    now_breach = set(table.index[table["breaches"].fillna(0).astype(int) > 0]) if "breaches" in table else set()
    was_breach = (set(previous.index[pd.to_numeric(previous["breaches"], errors="coerce").fillna(0).astype(int) > 0])
                  if "breaches" in previous else set())
    started = sorted(p for p in now_breach - was_breach if p in both)
    stopped = sorted(p for p in was_breach - now_breach if p in both)
    unknown = sorted(p for p in was_breach if p not in table.index)
    out.update(started_breaching=len(started), stopped_breaching=len(stopped), unknown_breaching=len(unknown))
    parts = [f"<p>Against the risk run of {e(str(previous_as_of))}: {len(both)} portfolios checked on both dates, "
             f"{out['added']} checked now but not then, {out['dropped']} checked then but not now; {len(started)} "
             f"started breaching, {len(stopped)} stopped"
             + (f", {len(unknown)} breaching then and NOT checked now (unknown)" if unknown else "") + ".</p>"]
    if unknown:
        parts.append('<p class="qpo-flag">Breaching on ' + e(str(previous_as_of)) + ", not risk-checked now (unknown, "
                     "not stopped): " + ", ".join(e(_name(names, p)) for p in unknown[:top])
                     + (" ..." if len(unknown) > top else "") + "</p>")
    if started:
        parts.append("<p>Started breaching: " + ", ".join(e(_name(names, p)) for p in started[:top])
                     + (" ..." if len(started) > top else "") + "</p>")
    if stopped:
        parts.append("<p>Stopped breaching: " + ", ".join(e(_name(names, p)) for p in stopped[:top])
                     + (" ..." if len(stopped) > top else "") + "</p>")
    for column in ("var_historical", "volatility"):
        if column not in table.columns or column not in previous.columns or not len(both):
            continue
        now = pd.to_numeric(table.loc[both, column], errors="coerce")
        before = pd.to_numeric(previous.loc[both, column], errors="coerce")
        delta = (now - before).dropna()
        if delta.empty:
            continue
        out[f"{column}_median_change"] = float(delta.median())
        moved = delta.reindex(delta.abs().sort_values(ascending=False).index).head(top)
        rows = [[e(_name(names, p)), e(_pct(before[p])), e(_pct(now[p])), e(f"{moved[p]:+.2%}")] for p in moved.index]
        parts.append(f"<h3>Largest changes of {e(MEASURES[column])}</h3>"
                     + _table(rows, ["portfolio", str(previous_as_of), "now", "change"], f"qpo-changes-{column}"))
    return "".join(parts), out


def _checked_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows whose limits were checked (``compliant`` set); all rows of a frame without the column."""
    if "compliant" not in frame.columns:
        return frame
    return frame[frame["compliant"].notna().to_numpy(dtype=bool)]


def _listed(v) -> list[str]:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return []
    if isinstance(v, str):
        import json

        try:
            v = json.loads(v)
        except ValueError:
            return [v]
    return [str(t) for t in v] if isinstance(v, (list, tuple, np.ndarray)) else [str(v)]


def _pricing_section(valuations: pd.DataFrame | None, names, top: int,
                     stale_dates: Mapping[Any, Mapping[str, str]] | None = None) -> tuple[str, dict]:
    e = html.escape
    if valuations is None:
        return "<p>No valuation was given: prices not checked.</p>", {}
    status = valuations["status"] if "status" in valuations else pd.Series(dtype=object)
    unpriced = valuations.index[status == "unpriced"]
    stale = [p for p in valuations.index if _listed(valuations.loc[p, "stale"]) and status.get(p) != "unpriced"] \
        if "stale" in valuations else []
    empty = valuations.index[status == "empty"]
    counts = {"unpriced": int(len(unpriced)), "stale": int(len(stale)), "empty": int(len(empty))}
    if not (len(unpriced) or len(stale) or len(empty)):
        return f"<p>Every one of the {len(valuations)} portfolios was valued at prices of the date.</p>", counts
    parts = ['<div class="qpo-flag">'
             f"<b>{len(unpriced)} unpriced, {len(stale)} valued with stale prices, {len(empty)} empty</b> "
             "(unpriced: a name held has no price on or before the date, so the portfolio is not valued and not "
             "risk-checked; stale: a name's last price is older than the date).</div>"]
    for label, ids, column in (("Unpriced", list(unpriced), "unpriced"), ("Stale prices", stale, "stale")):
        if not ids:
            continue
        rows = [[e(_name(names, p)), e(_advisor(names, p)),
                 e(", ".join(f"{t} (last price {(stale_dates or {}).get(p, {}).get(t)})"
                             if column == "stale" and (stale_dates or {}).get(p, {}).get(t) else t
                             for t in _listed(valuations.loc[p, column])))]
                for p in ids[:top]]
        more = f"<p>... and {len(ids) - top} more.</p>" if len(ids) > top else ""
        parts.append(f"<h3>{label} ({len(ids)})</h3>" + _table(rows, ["portfolio", "advisor", "tickers"],
                                                              f"qpo-{column}") + more)
    return "".join(parts), counts


def book_report(as_of, table: pd.DataFrame, *, breaches: Sequence[Mapping] = (), names: pd.DataFrame | None = None,
                alerts: Mapping[str, Sequence[Mapping]] | None = None, valuations: pd.DataFrame | None = None,
                previous: pd.DataFrame | None = None, previous_as_of=None, facts: Mapping[str, Any] | None = None,
                top: int = 20, unchecked: Mapping[Any, str] | None = None, warnings: Sequence[str] = (),
                stale: Mapping[Any, Mapping[str, str]] | None = None) -> BookReport:
    """The book report of the risk run of ``as_of`` (see the module).

    ``table``: the risk run's table, one row per portfolio (indexed by portfolio id, or with a
    ``portfolio_id`` column), the columns of :class:`qpo.store.BookRisk`; ``breaches``: every failed
    check (dicts with portfolio_id, check, value, limit, message); ``names``: portfolio id -> name,
    advisor_email; ``alerts``: the alert sync of the run (lists ``new``, ``persisting``,
    ``resolved`` of alert dicts) or None; ``valuations``: the valuations of the date (status,
    unpriced, stale); ``previous``: the stored risk of ``previous_as_of``, or None; ``facts``:
    name -> value lines for the header (run id, workers, times); ``top``: rows of each list;
    ``unchecked``: portfolio id -> why, for the portfolios of the date NOT risk-checked (shown and
    counted apart: never as checked, nor as having stopped breaching); ``warnings``: sentences shown
    at the top (stale prices, no new market data, no benchmark bar); ``stale``: portfolio id ->
    ``{ticker: date of its last price}`` for the portfolios checked at a stale price.

    A table row whose ``compliant`` is missing (NaN/None) was not checked: it is left out of the
    checked count and of the changes."""
    import plotly.io as pio

    e = html.escape
    day = pd.Timestamp(as_of).date()
    table = _by_portfolio(table)
    names = _by_portfolio(names)
    valuations = _by_portfolio(valuations)
    previous = _by_portfolio(previous)
    unchecked = dict(unchecked or {})
    if "compliant" in table.columns:  # rows not checked (compliant missing) are counted apart
        for pid in table.index[table["compliant"].isna().to_numpy(dtype=bool)]:
            unchecked.setdefault(pid, "not risk-checked")
    n = len(_checked_rows(table))
    title = f"Book risk report {day}"
    breach_html, breaching = _breach_section(list(breaches), names, alerts, n, day, len(unchecked))
    figures = book_figures(table) if n else {}
    quantiles = quantile_table(table) if n else pd.DataFrame()
    changes_html, changes = _changes_section(table, previous, previous_as_of, names, top)
    pricing_html, pricing = _pricing_section(valuations, names, top, stale)
    resolved = list((alerts or {}).get("resolved", ()) or ())
    header = [("as of", str(day)), ("portfolios risk-checked", f"{n:,}"),
              ("NOT risk-checked", f"{len(unchecked):,} (compliance unknown, not a pass)"),
              ("breaching", f"{breaching:,} portfolios, {len(breaches):,} failed checks")]
    if stale:
        header.append(("checked at stale prices", f"{len(stale):,} portfolios (a name without a bar on {day} "
                                                  "held at its last price)"))
    if alerts is not None:
        header.append(("alerts", f"{len(alerts.get('new', ()) or ())} new, {len(alerts.get('persisting', ()) or ())} "
                                 f"persisting, {len(resolved)} resolved"))
    header += [(str(k), str(v)) for k, v in (facts or {}).items()]
    parts = [f"<h1>{e(title)}</h1>",
             '<dl class="header">' + "".join(f"<dt>{e(k)}</dt><dd>{e(v)}</dd>" for k, v in header) + "</dl>"]
    if warnings:
        parts.append('<div class="qpo-warnings qpo-flag"><b>Warnings</b><ul>'
                     + "".join(f"<li>{e(str(w))}</li>" for w in warnings) + "</ul></div>")
    parts += ["<h2>Compliance breaches</h2>", breach_html]
    if unchecked:
        rows = [[e(_name(names, p)), e(_advisor(names, p)), e(str(why))] for p, why in list(unchecked.items())[:top]]
        parts.append(f"<h3>Not risk-checked ({len(unchecked)}): compliance unknown</h3>"
                     + _table(rows, ["portfolio", "advisor", "why"], "qpo-unchecked")
                     + (f"<p>... and {len(unchecked) - top} more.</p>" if len(unchecked) > top else ""))
    if resolved:
        rows = [[e(str(a.get("portfolio") or a.get("portfolio_name") or _name(names, a.get("portfolio_id")))),
                 e(str(a.get("check", a.get("check_name", ""))))] for a in resolved[:top]]
        parts.append(f"<h3>Resolved since the last run ({len(resolved)})</h3>"
                     + _table(rows, ["portfolio", "check"], "qpo-resolved"))
    parts.append("<h2>Risk across the book</h2>")
    if not quantiles.empty:
        rows = [[e(label)] + [e(f"{int(r['portfolios']):,}")]
                + [e(_fmt("beta" if label == "beta" else "x", r[c])) for c in ("mean", "5%", "median", "95%", "largest")]
                for label, r in quantiles.iterrows()]
        parts.append(_table(rows, ["measure", "portfolios", "mean", "5%", "median", "95%", "largest"], "qpo-quantiles"))
    for i, (key, fig) in enumerate(figures.items()):
        parts.append(pio.to_html(fig, include_plotlyjs=(i == 0), full_html=False, div_id=f"fig-book-{key}"))
    parts += ["<h2>Worst portfolios</h2>", _worst_section(table, names, top) or "<p>No portfolio was risk-checked.</p>",
              "<h2>Changes since the previous risk date</h2>", changes_html,
              "<h2>Unpriced and stale portfolios</h2>", pricing_html]
    page = (f"<!doctype html><html><head><meta charset='utf-8'><title>{e(title)}</title><style>{_STYLE}</style>"
            "</head><body>" + "\n".join(parts) + "</body></html>")
    summary = {"portfolios": n, "unchecked": len(unchecked), "warnings": list(warnings),
               "breaching_portfolios": breaching, "failed_checks": len(breaches), **pricing,
               **{f"changes_{k}": v for k, v in changes.items()}}
    return BookReport(day, page, figures, summary)


__all__ = ["MEASURES", "BookReport", "book_figures", "book_report", "quantile_table", "valuation_figures"]
