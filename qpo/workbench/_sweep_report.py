"""A sweep's comparison table and figure, and reading a finished sweep back from MLflow
(:func:`qpo.workbench.sweep.read_sweep`)."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from qpo.errors import InvalidValueError, PipelineError

#: the tag every sweep's parent run carries (value ``parent``); children carry ``mlflow.parentRunId``
SWEEP_TAG = "qpo.sweep"
#: the parent run's artifact listing every cell: its parameters, status, child run and error
CELLS_ARTIFACT = "sweep/cells.json"
COLUMNS = ("cell", "status", "run_id", "wall_s")  # besides the parameters and the metrics


def label(parameters: dict[str, Any]) -> str:
    """``costs=0.001 window=126``."""
    return " ".join(f"{k}={v}" for k, v in parameters.items())


def comparison_table(cells: list[dict[str, Any]], names: list[str]):
    """One row per cell: its number, each parameter of ``names``, status, child run id, the cell's
    seconds in its worker (``wall_s``) and every metric the children recorded (a column per metric,
    ``metric.<name>`` where a parameter has its name; empty where a cell has none)."""
    import pandas as pd

    rows = []
    for c in cells:
        row: dict[str, Any] = {"cell": c["index"]}
        row.update({n: c["parameters"].get(n) for n in names})
        row.update(status=c["status"], run_id=c.get("run_id"), wall_s=round(float(c.get("seconds") or 0.0), 2))
        row.update({(f"metric.{k}" if k in row else k): v for k, v in (c.get("metrics") or {}).items()
                    if isinstance(v, (int, float)) and not isinstance(v, bool)})
        rows.append(row)
    table = pd.DataFrame(rows)
    metric_cols = sorted(set(table.columns) - set(names) - set(COLUMNS))
    return table.reindex(columns=["cell", *names, "status", "run_id", "wall_s", *metric_cols])


def metric_columns(table, names: list[str]) -> list[str]:
    return [c for c in table.columns if c not in (*names, *COLUMNS)]


def strategy_order(value: Any) -> list[str] | None:
    """The strategies of a notebook's ``strategies`` parameter in its order (``"min_variance,
    max_sharpe,equal_weight"`` or a list), None when it has none."""
    if isinstance(value, str):
        return [s.strip() for s in value.split(",") if s.strip()] or None
    if isinstance(value, (list, tuple)):
        return [str(s).strip() for s in value if str(s).strip()] or None
    return None


def default_metric(table, names: list[str], strategies: list[str] | None = None) -> str | None:
    """The metric a sweep plots unless told: the Sharpe ratio of the first *strategy* in the
    notebook's ``strategies`` order (``min_variance.sharpe``), never that of a baseline
    (equal_weight, buy_and_hold) or of the benchmark, which barely move with the parameters swept;
    without that order, the first strategy Sharpe ratio recorded that is not a baseline's; else a
    baseline's; else the first metric; None when no cell recorded one."""
    from qpo.backtesting import BASELINES

    metrics = metric_columns(table, names)
    lowered = {m.lower(): m for m in metrics}
    for s in strategies or []:
        if s not in BASELINES and f"{s.lower()}.sharpe" in lowered:
            return lowered[f"{s.lower()}.sharpe"]
    sharpe = [m for m in metrics if m.lower().endswith("sharpe") and not m.lower().startswith("benchmark")]
    own = [m for m in sharpe if m.split(".")[0] not in BASELINES]
    return (own or sharpe or metrics or [None])[0]  # type: ignore[list-item]


def sweep_figure(table, metric: str, names: list[str]):
    """``metric`` against the first parameter, one line per value of the others (e.g. Sharpe
    against costs, one line per window); cells without the metric (failed ones) are left out."""
    import plotly.graph_objects as go

    if metric not in table.columns:
        raise InvalidValueError(f"metric {metric!r} was not recorded by the sweep's cells; recorded: "
                                f"{', '.join(metric_columns(table, names)) or 'none'}")
    if not names:
        raise PipelineError("a sweep with no parameter has nothing to plot against")
    x, others = names[0], names[1:]
    data = table[table[metric].notna()]
    fig = go.Figure()
    groups = data.groupby([data[o].astype(str) for o in others], sort=False) if others else [((), data)]
    for key, part in groups:
        key = key if isinstance(key, tuple) else (key,)
        part = part.sort_values(x)
        name = ", ".join(f"{o}={v}" for o, v in zip(others, key, strict=True)) or metric
        fig.add_trace(go.Scatter(x=part[x].tolist(), y=part[metric].tolist(), mode="lines+markers", name=name))
    by = f", one line per {', '.join(others)}" if others else ""
    fig.update_layout(title=f"{metric} by {x}{by}", xaxis_title=x, yaxis_title=metric, template="plotly_white",
                      legend_title=", ".join(others) or None)
    return fig


@dataclass
class SweepRecord:
    """A finished sweep as MLflow holds it: the parent run, the grid's parameter names, every cell
    (its parameters and number from the parent's ``sweep/cells.json``; status and metrics from its
    child run) and the comparison table."""

    parent_run_id: str
    pipeline: str
    status: str
    names: list[str]
    cells: list[dict[str, Any]] = field(default_factory=list)
    table: Any = None
    strategies: list[str] | None = None  # the notebook's strategies order, for the default metric

    def figure(self, metric: str | None = None):
        chosen = metric or default_metric(self.table, self.names, self.strategies)
        return sweep_figure(self.table, chosen, self.names)  # type: ignore[arg-type]


def read_sweep(parent_run_id: str | None = None, *, tracking_uri: str | None = None) -> SweepRecord:
    """The sweep whose parent run is ``parent_run_id`` (default: the latest sweep of the tracking
    store), its cells' statuses and metrics read from their child runs."""
    import mlflow
    from mlflow.tracking import MlflowClient

    from qpo.tracking import configure

    client = MlflowClient(configure(tracking_uri))
    if parent_run_id is None:
        experiments = [e.experiment_id for e in client.search_experiments()]
        found = client.search_runs(experiments, filter_string=f"tags.`{SWEEP_TAG}` = 'parent'",
                                   order_by=["attributes.start_time DESC"], max_results=1) if experiments else []
        if not found:
            raise PipelineError(f"no sweep is recorded in the tracking store {client.tracking_uri}; run one with "
                                "`qpo pipeline sweep NAME -p PARAM VALUE ...`")
        parent = found[0]
    else:
        try:
            parent = client.get_run(parent_run_id)
        except mlflow.exceptions.MlflowException as exc:
            raise PipelineError(f"no MLflow run {parent_run_id!r} in {client.tracking_uri}: {exc}") from None
        if parent.data.tags.get(SWEEP_TAG) != "parent":
            raise PipelineError(f"MLflow run {parent_run_id} is not a sweep's parent run (no tag {SWEEP_TAG}=parent)")
    run_id = parent.info.run_id
    import os

    quiet = os.environ.get("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR")
    os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = "false"  # no progress bar in a notebook's output
    try:
        saved = json.loads(mlflow.artifacts.load_text(f"runs:/{run_id}/{CELLS_ARTIFACT}"))
    except mlflow.exceptions.MlflowException as exc:
        raise PipelineError(f"sweep {run_id} has no {CELLS_ARTIFACT} (it is still running, or its process was "
                            f"killed before the end): {exc}") from None
    finally:
        if quiet is None:
            os.environ.pop("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", None)
        else:
            os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = quiet
    children = {r.info.run_id: r for r in client.search_runs(
        [parent.info.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{run_id}'", max_results=10000)}
    cells = []
    for c in saved["cells"]:
        child = children.get(c.get("run_id") or "")
        if child is not None:  # MLflow's record wins: a status repaired later, the metrics as logged
            c = {**c, "status": child.info.status, "metrics": dict(child.data.metrics)}
        cells.append(c)
    return SweepRecord(run_id, saved["pipeline"], parent.info.status, saved["names"], cells,
                       comparison_table(cells, saved["names"]), strategy_order(saved.get("strategies")))
