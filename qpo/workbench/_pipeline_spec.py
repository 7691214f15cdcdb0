"""A pipeline's definition: ``pipelines/<name>.toml`` read into a :class:`PipelineSpec` (its
notebook, experiment, schedule, data parameters, store need, cell timeout and breach metrics),
each key checked when the file is loaded. :mod:`qpo.workbench.pipelines` runs them."""
from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from qpo import config
from qpo.errors import PipelineError, UnknownOptionError


@dataclass(frozen=True)
class PipelineSpec:
    name: str
    notebook: Path
    experiment: str
    schedule: str
    description: str
    data_source_parameter: str | None
    data_start_parameter: str | None
    parameters: dict[str, Any] = field(default_factory=dict)
    portfolio_parameter: str = "portfolio"  # the notebook parameter naming a portfolio of the store, if declared
    as_of_parameter: str = "as_of"  # the notebook parameter giving the report date, if declared
    after: str | None = None  # the scheduler runs it after that pipeline's run of the same date (see scheduler.py)
    missed: str | None = None  # runs missed while no scheduler ran: "run_once" (the latest, once) or "skip"
    execution_timeout: int | None = None  # seconds a cell may run before the run ends FAILED (None: no limit)
    store_required: bool = False  # [data] store = "required": the notebook reads the book; no store, no run
    breach_metrics: tuple[str, ...] = ()  # metrics counting breaches: `--fail-on-breach` exits 1 when one is > 0


def pipelines_dir() -> Path:
    return config.project_root() / "pipelines"


def available_pipelines() -> dict[str, Path]:
    d = pipelines_dir()
    return {p.stem: p for p in sorted(d.glob("*.toml"))} if d.is_dir() else {}


def load_spec(name: str) -> PipelineSpec:
    found = available_pipelines()
    if name not in found:
        raise UnknownOptionError("pipeline", name, found)
    try:
        raw = tomllib.loads(found[name].read_text())
    except tomllib.TOMLDecodeError as exc:
        raise PipelineError(f"{found[name]} is not valid TOML: {exc}") from exc
    try:
        nb, data = (config.project_root() / raw["notebook"]).resolve(), raw.get("data", {})
        spec = PipelineSpec(name=name, notebook=nb, experiment=raw.get("experiment", name),
                            schedule=raw.get("schedule", ""), description=raw.get("description", ""),
                            data_source_parameter=data.get("source"), data_start_parameter=data.get("start"),
                            parameters=raw.get("parameters", {}), portfolio_parameter=data.get("portfolio", "portfolio"),
                            as_of_parameter=data.get("as_of", "as_of"),
                            store_required=_store_required(found[name], data.get("store")),
                            breach_metrics=_breach_metrics(found[name], raw.get("breach_metrics")),
                            execution_timeout=_execution_timeout(found[name], raw.get("execution_timeout")))
    except KeyError as exc:
        raise PipelineError(f"{found[name]}: missing key {exc}") from exc
    if not nb.exists():
        raise PipelineError(f"pipeline {name!r} names notebook {nb}, which does not exist")
    from qpo.workbench._cron import check_schedule_keys

    return replace(spec, **check_schedule_keys(raw, f"pipelines/{found[name].name}", name, found))


def _store_required(path: Path, value) -> bool:
    """``[data] store`` of a pipeline file: ``"required"`` (its notebook reads the client book) or absent."""
    if value is None:
        return False
    if value != "required":
        raise PipelineError(f"{path}: [data] store must be \"required\" (the notebook reads the client book: a "
                            f"missing store is refused before a run is created) or left out; got {value!r}")
    return True


def _breach_metrics(path: Path, value) -> tuple[str, ...]:
    """``breach_metrics`` of a pipeline file: the names of the metrics its notebook records that
    count breaches (``--fail-on-breach`` exits 1 when one is above 0), or absent (none)."""
    if value is None:
        return ()
    if not (isinstance(value, list) and value and all(isinstance(v, str) and v.strip() for v in value)):
        raise PipelineError(f"{path}: breach_metrics must be a list of metric names (e.g. [\"compliance_breaches\"]) "
                            f"or left out; got {value!r}")
    return tuple(value)


def _execution_timeout(path: Path, value) -> int | None:
    """``execution_timeout`` of a pipeline file: whole seconds a cell may run, or absent (no limit)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise PipelineError(f"{path}: execution_timeout must be a whole number of seconds, 1 or more (the longest a "
                            f"cell may run, e.g. 600), or left out for no limit; got {value!r}")
    return value
