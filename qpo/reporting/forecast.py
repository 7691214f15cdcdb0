"""Figures and tables of a return forecaster's training run (``notebooks/05_train_forecaster.ipynb``,
the ``weekly-retrain`` pipeline) and the daily report's forecast table.

Every IC here is the walk-forward's out-of-sample Spearman rank IC (see
:mod:`qpo.forecasting.walkforward`); the model and the historical mean are scored on the same
(date, ticker) pairs. Annualized returns are arithmetic: a ``horizon``-period forecast times
``P / horizon``, a mean period return times P, P the periods a year of the prices (252 for
business days, read from their dates; as the views of :class:`qpo.estimation.ForecastBlackLitterman`
and the frontier notebook's expected returns).
"""
from __future__ import annotations

import html as _html
import math
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from qpo.forecasting import Forecast, WalkForwardResult
    from qpo.tracking import Registration

CONSTANT = "n/a (constant)"
_MODEL_COLOR, _BASE_COLOR = "#1f77b4", "#7f7f7f"


def _fmt(value, spec: str, missing: str = "n/a") -> str:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return missing
    return format(v, spec) if math.isfinite(v) else missing


def _model_label(result: WalkForwardResult) -> str:
    return f"model ({result.config.model.upper()})"


def baseline_table(result: WalkForwardResult) -> pd.DataFrame:
    """The model against the historical mean and zero over the same out-of-sample forecasts:
    mean rank IC, its t-stat, the share of dates with IC > 0, the hit rate, the MSE and the
    number of forecast dates, formatted as text. Zero is a constant forecast: it has no rank IC
    and no sign (``n/a (constant)``)."""
    m = result.metrics
    rows = {}
    for key, label in (("model", _model_label(result)), ("historical_mean", "historical mean"), ("zero", "zero")):
        r = m.loc[key]
        constant = key == "zero"
        rows[label] = {
            "mean IC": CONSTANT if constant else _fmt(r["mean_ic"], ".4f"),
            "IC t-stat": CONSTANT if constant else _fmt(r["ic_t_stat"], ".2f"),
            "IC > 0 share": CONSTANT if constant else _fmt(r["ic_positive_share"], ".1%"),
            "hit rate": CONSTANT if constant else _fmt(r["hit_rate"], ".1%"),
            "MSE": _fmt(r["mse"], ".6f"),
            "forecasts": _fmt(r["n_forecasts"], ".0f"),
        }
    out = pd.DataFrame(rows).T
    out.index.name = "forecast"
    return out


def ic_figure(result: WalkForwardResult):
    """Per forecast date, the rank IC of the model and of the historical mean (bars), and below
    their cumulative sums (lines): a model that beats the baseline climbs faster."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    ic = result.ic.dropna(how="all")
    m = result.metrics
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.55, 0.45], vertical_spacing=0.08,
                        subplot_titles=("rank IC per forecast date", "cumulative rank IC"))
    for col, label, color in (("model", _model_label(result), _MODEL_COLOR),
                              ("historical_mean", "historical mean", _BASE_COLOR)):
        fig.add_trace(go.Bar(x=ic.index, y=ic[col].to_numpy(), name=label, marker_color=color,
                             legendgroup=col, opacity=0.8), row=1, col=1)
        fig.add_trace(go.Scatter(x=ic.index, y=ic[col].fillna(0.0).cumsum().to_numpy(), mode="lines",
                                 name=f"{label}, cumulative", line=dict(color=color), legendgroup=col),
                      row=2, col=1)
    fig.update_layout(
        title=(f"Out-of-sample rank IC: {result.config.model.upper()} mean {_fmt(m.loc['model', 'mean_ic'], '.4f')}"
               f", historical mean {_fmt(m.loc['historical_mean', 'mean_ic'], '.4f')}, over {len(ic)} forecast dates"),
        barmode="group", template="plotly_white", height=520, legend=dict(orientation="h", y=-0.12),
        margin=dict(l=50, r=20, t=70, b=40))
    fig.update_yaxes(title_text="IC", row=1, col=1)
    fig.update_yaxes(title_text="sum of IC", row=2, col=1)
    return fig


def folds_table(result: WalkForwardResult) -> pd.DataFrame:
    """One row per walk-forward fold: its training and test periods, samples, epochs, fit
    seconds and the mean IC of the model and of the historical mean over its forecast dates."""
    f = result.folds

    def day(col):
        return [str(pd.Timestamp(d).date()) for d in f[col]]

    out = pd.DataFrame({
        "train from": day("train_start"), "train to": day("train_end"), "test from": day("test_start"),
        "test to": day("test_end"), "forecast dates": f["n_test_dates"].astype(int).to_numpy(),
        "train samples": f["n_train"].astype(int).to_numpy(), "epochs": f["epochs"].astype(int).to_numpy(),
        "best epoch": f["best_epoch"].astype(int).to_numpy(), "fit seconds": f["fit_seconds"].to_numpy(dtype=float),
        "model IC": f["mean_ic"].to_numpy(dtype=float), "historical mean IC": f["baseline_mean_ic"].to_numpy(dtype=float),
    }, index=pd.Index(f["fold"].astype(int).to_numpy(), name="fold"))
    out["model better"] = out["model IC"] > out["historical mean IC"].fillna(-np.inf)
    return out


def folds_figure(result: WalkForwardResult):
    """Per fold, the mean IC of the model and of the historical mean (hover: epochs, fit time)."""
    import plotly.graph_objects as go

    t = folds_table(result)
    labels = [f"{i}: {a[:4]}-{b[:4]}" for i, a, b in zip(t.index, t["test from"], t["test to"])]
    hover = [f"train to {e}<br>{n} epochs (best {b}), {s:.1f} s"
             for e, n, b, s in zip(t["train to"], t["epochs"], t["best epoch"], t["fit seconds"])]
    fig = go.Figure([
        go.Bar(x=labels, y=t["model IC"].to_numpy(), name=_model_label(result), marker_color=_MODEL_COLOR,
               hovertext=hover),
        go.Bar(x=labels, y=t["historical mean IC"].to_numpy(), name="historical mean", marker_color=_BASE_COLOR)])
    better = int(t["model better"].sum())
    fig.update_layout(title=f"Mean rank IC per fold: the model beats the historical mean in {better} of {len(t)} folds",
                      barmode="group", xaxis_title="fold: test years", yaxis_title="mean IC",
                      template="plotly_white", height=360, margin=dict(l=50, r=20, t=50, b=40))
    return fig


def promotion_html(registration: Registration, result: WalkForwardResult) -> str:
    """The banner a training report opens with: promoted to champion (green) or kept as
    challenger (amber), the registry's reason, and whether the model beats the historical mean."""
    r = registration
    esc = _html.escape
    name = esc(r.model_name)
    if r.promoted:
        head = (f"PROMOTED TO CHAMPION: {name} version {esc(r.version)} is now "
                f"<code>models:/{name}@champion</code>")
        before = (f"It replaces version {esc(r.previous_champion)}." if r.previous_champion is not None
                  else "There was no champion before it.")
        css, colors = "qpo-promoted", "background:#eafaf1;border:2px solid #27ae60"
    else:
        head = f"KEPT AS CHALLENGER: {name} version {esc(r.version)} was not promoted"
        before = (f"The champion is still version {esc(r.previous_champion)}." if r.previous_champion is not None
                  else "There is no champion: the daily report shows no model forecast.")
        css, colors = "qpo-challenger", "background:#fef5e7;border:2px solid #e67e22"
    reason = r.reason[:1].upper() + r.reason[1:]
    return (f'<div class="{css}" style="{colors};padding:8px 12px"><b>{head}</b>'
            f"<p>{esc(reason)}. {before}</p><p>{esc(result.verdict())}</p></div>")


def forecast_comparison(forecast: Forecast, historical_mean: pd.Series, weights: pd.Series | None = None, *,
                        periods_per_year: int | None = None) -> pd.DataFrame:
    """Per name of ``historical_mean`` (annualized, e.g. 252 x the mean daily return of the report's
    lookback): the model's ``horizon``-period forecast, that forecast annualized (``x periods_per_year
    / horizon``; None: the forecast's own periods a year), the historical mean and their difference; with ``weights``, their weight and a
    last row ``portfolio`` (the weighted sums, only when every name has a forecast). Names the model
    could not forecast have NaN and the reason in ``note``."""
    names = list(historical_mean.index)
    h = forecast.horizon
    if periods_per_year is None:
        periods_per_year = forecast.periods_per_year
    fc = forecast.values.reindex(names).astype(float)
    table = pd.DataFrame(index=pd.Index(names, name="ticker"))
    if weights is not None:
        table["weight"] = weights.reindex(names).astype(float)
    table[f"forecast {h}d"] = fc
    table["forecast (annualized)"] = fc * periods_per_year / h
    table["historical mean (annualized)"] = historical_mean.astype(float)
    table["difference (annualized)"] = table["forecast (annualized)"] - table["historical mean (annualized)"]
    table["note"] = [forecast.dropped.get(t, "no forecast") if not np.isfinite(fc[t]) else "" for t in names]
    if weights is not None and np.isfinite(fc.to_numpy()).all():
        w = table["weight"]
        row = {c: float((w * table[c]).sum()) for c in table.columns if c not in ("weight", "note")}
        table.loc["portfolio"] = {**row, "weight": float(w.sum()), "note": "weighted sum"}
    return table
