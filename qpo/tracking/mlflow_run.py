"""The one MLflow helper every pipeline uses.

Metadata go to ``MLFLOW_TRACKING_URI`` (default: SQLite ``mlflow.db`` in ``QPO_HOME``);
artifacts of experiments qpo creates go under ``QPO_MLFLOW_ARTIFACTS`` (default ``mlruns/``).
MLflow is imported only when a run starts (it takes seconds to import).
"""
from __future__ import annotations

import contextlib
import json
import math
import numbers
import subprocess
import traceback
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qpo import config


def code_version() -> str:
    """``git`` commit of the checkout (``+dirty`` when it has uncommitted changes), or the
    package version when qpo does not run from a checkout."""
    import qpo

    root = config.project_root()
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True,
                             timeout=5, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return sha + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return f"qpo-{qpo.__version__}"


def configure(tracking_uri: str | None = None) -> str:
    """Point MLflow at ``tracking_uri`` (default from the environment / ``QPO_HOME``)."""
    import mlflow

    uri = tracking_uri or config.tracking_uri()
    mlflow.set_tracking_uri(uri)
    return uri


def _experiment_id(name: str) -> str:
    import mlflow

    exp = mlflow.get_experiment_by_name(name)
    if exp is not None:
        return exp.experiment_id
    root = config.artifact_root()
    root.mkdir(parents=True, exist_ok=True)
    return mlflow.create_experiment(name, artifact_location=(root / name).as_uri())


@dataclass
class TrackedRun:
    """A live MLflow run; methods log to it."""

    run_id: str
    experiment_id: str
    tracking_uri: str

    def log_params(self, params: Mapping[str, Any]) -> None:
        import mlflow

        mlflow.log_params({k: (json.dumps(v) if isinstance(v, (dict, list)) else v) for k, v in params.items()})

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        """Log the finite real numbers (numpy's included) of ``metrics``; text, booleans and NaN
        are not metrics and are left out."""
        import mlflow
        import numpy as np

        clean = {k: float(v) for k, v in metrics.items()
                 if isinstance(v, numbers.Real) and not isinstance(v, (bool, np.bool_)) and math.isfinite(v)}
        if clean:
            mlflow.log_metrics(clean, step=step)

    def log_figure(self, figure, name: str) -> None:
        """A plotly figure (object or its JSON dict), saved as interactive HTML and as JSON."""
        import mlflow
        import plotly.graph_objects as go
        import plotly.io as pio

        fig = figure if isinstance(figure, go.Figure) else go.Figure(figure)
        mlflow.log_text(pio.to_html(fig, include_plotlyjs=True, full_html=True), f"figures/{name}.html")
        mlflow.log_text(pio.to_json(fig), f"figures/{name}.json")

    def log_artifact(self, path: str | Path, artifact_path: str | None = None) -> None:
        import mlflow

        mlflow.log_artifact(str(path), artifact_path)

    def log_dict(self, data: dict, name: str) -> None:
        import mlflow

        mlflow.log_dict(data, name)

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        import mlflow

        mlflow.set_tags({k: str(v) for k, v in tags.items()})

    @property
    def artifact_uri(self) -> str:
        import mlflow

        return mlflow.get_run(self.run_id).info.artifact_uri


@contextlib.contextmanager
def tracked_run(experiment: str, run_name: str | None = None, *, params: Mapping[str, Any] | None = None,
                data_hash: str | None = None, tags: Mapping[str, Any] | None = None,
                tracking_uri: str | None = None) -> Iterator[TrackedRun]:
    """Start an MLflow run tagged with the code version and the data's hash.

    The run ends FINISHED when the block completes and FAILED (with the error as the tags
    ``error`` and ``error_type`` and the traceback as ``error.txt``) when it raises; the error
    propagates.
    """
    import mlflow

    uri = configure(tracking_uri)
    exp_id = _experiment_id(experiment)
    base_tags = {"qpo.code_version": code_version()}
    if data_hash:
        base_tags["qpo.data_hash"] = data_hash
    base_tags.update({k: str(v) for k, v in (tags or {}).items()})
    with mlflow.start_run(experiment_id=exp_id, run_name=run_name, tags=base_tags) as active:
        run = TrackedRun(active.info.run_id, exp_id, uri)
        if params:
            run.log_params(params)
        try:
            yield run
        except BaseException as exc:
            mlflow.set_tags({"error_type": type(exc).__name__, "error": str(exc)[:4000]})
            mlflow.log_text("".join(traceback.format_exception(exc)), "error.txt")
            mlflow.end_run(status="FAILED")
            raise
