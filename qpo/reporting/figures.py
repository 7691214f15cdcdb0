"""Plotly figures shared by reports and dashboards."""
from __future__ import annotations

import pandas as pd


def wealth_figure(returns: dict[str, pd.Series], title: str = "Growth of $1"):
    import plotly.graph_objects as go

    fig = go.Figure()
    for name, r in returns.items():
        wealth = (1.0 + r).cumprod()
        fig.add_trace(go.Scatter(x=wealth.index, y=wealth.to_numpy(), mode="lines", name=name))
    fig.update_layout(title=title, yaxis_title="wealth", template="plotly_white", height=380,
                      margin=dict(l=50, r=20, t=50, b=40))
    return fig


def drawdown_figure(drawdown: pd.Series, title: str = "Drawdown"):
    import plotly.graph_objects as go

    fig = go.Figure(go.Scatter(x=drawdown.index, y=drawdown.to_numpy(), fill="tozeroy", mode="lines",
                               name="drawdown", line=dict(color="#c0392b")))
    fig.update_layout(title=title, yaxis_tickformat=".0%", template="plotly_white", height=300,
                      margin=dict(l=50, r=20, t=50, b=40))
    return fig


def weights_figure(weights: dict[str, pd.Series], title: str = "Weights"):
    import plotly.graph_objects as go

    frame = pd.DataFrame(weights).fillna(0.0)
    frame = frame.loc[frame.abs().max(axis=1) > 1e-6]
    fig = go.Figure([go.Bar(x=frame.index.tolist(), y=frame[c].to_numpy(), name=c) for c in frame.columns])
    fig.update_layout(title=title, barmode="group", yaxis_tickformat=".0%", template="plotly_white",
                      height=340, margin=dict(l=50, r=20, t=50, b=40))
    return fig
