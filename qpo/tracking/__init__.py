"""MLflow tracking: one helper that every pipeline uses."""
from qpo.tracking.mlflow_run import TrackedRun, code_version, configure, tracked_run

__all__ = ["TrackedRun", "code_version", "configure", "tracked_run"]
