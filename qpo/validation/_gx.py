"""Running a suite with Great Expectations 1.x, and reading its result back as a report.

Each expectation carries its defect in words (``meta.check``) and its severity (``meta.severity``,
GX's own ``severity`` field, and the description the Data Docs show in place of GX's rule text).
The run succeeds when no check of severity ERROR failed; that success is what the Data Docs page
shows, with each warning's rows listed under its check.
"""
from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from qpo import config
from qpo.validation.report import FailedExpectation, Severity, ValidationReport

_EXAMPLES = 20


def expect(kind: type, check: str, severity: Severity = Severity.ERROR, **kwargs: Any) -> Any:
    """A GX expectation of class ``kind`` looking for the defect ``check``, with its severity."""
    from great_expectations.expectations.metadata_types import FailureSeverity

    gx_severity = FailureSeverity.CRITICAL if severity is Severity.ERROR else FailureSeverity.WARNING
    return kind(meta={"check": check, "severity": severity.value}, severity=gx_severity,
                description=f"{check} [{severity.value}: {severity.effect}]", **kwargs)


def severity_of(config_meta: dict[str, Any] | None) -> Severity:
    return Severity((config_meta or {}).get("severity", Severity.ERROR.value))


def run_suite(kind: str, long: pd.DataFrame, expectations: list[Any], example_cols: list[str]) -> tuple[Any, str | None]:
    """Validate ``long`` and write its Data Docs page; returns GX's validation result (its
    ``success`` set to qpo's: no failed check of severity ERROR) and the page's path."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )
    from great_expectations.data_context.types.resource_identifiers import ExpectationSuiteIdentifier

    docs_dir = config.data_docs_dir()
    # in memory, but for one Data Docs site in QPO_DATA_DOCS_DIR (no temporary sites, no analytics)
    ctx = gx.get_context(mode="ephemeral", project_config=DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
        data_docs_sites={"qpo": {"class_name": "SiteBuilder", "store_backend": {
            "class_name": "TupleFilesystemStoreBackend", "base_directory": str(docs_dir)}}},
        analytics_enabled=False, progress_bars=ProgressBarsConfig(globally=False)))
    asset = ctx.data_sources.add_pandas(f"qpo_{kind}").add_dataframe_asset(kind)
    batch_def = asset.add_batch_definition_whole_dataframe("whole")
    suite = ctx.suites.add(gx.ExpectationSuite(name=f"qpo_{kind}"))
    for e in expectations:
        suite.add_expectation(e)
    vdef = ctx.validation_definitions.add(gx.ValidationDefinition(name=f"qpo_{kind}_{uuid.uuid4().hex[:8]}",
                                                                  data=batch_def, suite=suite))
    checkpoint = ctx.checkpoints.add(gx.Checkpoint(
        name=f"qpo_{kind}_checkpoint", validation_definitions=[vdef], actions=[],
        result_format={"result_format": "COMPLETE", "unexpected_index_column_names": example_cols,
                       "partial_unexpected_count": _EXAMPLES}))
    result = checkpoint.run(batch_parameters={"dataframe": long})
    (identifier, vresult), = result.run_results.items()
    # GX fails a suite on any failed expectation; qpo's run fails on errors only. The page says so.
    vresult.success = not any(not r.success and _blocks(r) for r in vresult.results)
    ctx.validation_results_store.set(identifier, vresult)
    # as GX's UpdateDataDocsAction does: both identifiers in one list (GX's annotation allows one kind per list)
    ctx.build_data_docs(site_names=["qpo"], resource_identifiers=[  # type: ignore[arg-type]
        identifier, ExpectationSuiteIdentifier(name=suite.name)])
    page = None
    try:
        urls = ctx.get_docs_sites_urls(resource_identifier=identifier, site_name="qpo")
        page = urls[0]["site_url"] if urls else None
    except Exception:  # noqa: BLE001 - the index is the fallback
        page = (docs_dir / "index.html").as_uri()
    if page and page.startswith("file://"):
        page = str(Path(page[len("file://"):]))
    return vresult, page


def _blocks(r: Any) -> bool:
    """A failed check stops the run when it is an error, or when it could not run at all (a
    warning that cannot look at the data would let its rows pass unseen)."""
    return severity_of(r.expectation_config.meta) is Severity.ERROR or bool(_exception_message(r.exception_info))


def failures(vresult: Any) -> list[FailedExpectation]:
    """Every failed check, with its severity (ERROR for a check that could not run)."""
    out = []
    for r in vresult.results:
        if r.success:
            continue
        cfg = r.expectation_config
        kw = cfg.kwargs
        columns = [kw[k] for k in ("column", "column_A", "column_B") if k in kw] + list(kw.get("column_list", []))
        res = r.result or {}
        examples: list[dict[str, Any]] = []
        for row in (res.get("unexpected_index_list") or [])[:_EXAMPLES]:
            if isinstance(row, dict):
                examples.append({k: _plain(v) for k, v in row.items()})
            else:
                examples.append({"row": row})
        error = _exception_message(r.exception_info)
        observed: Any
        if error:
            observed = f"the check could not run: {error}"
        else:
            observed = res.get("observed_value") if not examples else None
        count = res.get("unexpected_count")
        out.append(FailedExpectation(
            check=(cfg.meta or {}).get("check", cfg.type), expectation=cfg.type, columns=columns,
            unexpected_count=int(count) if count is not None else 0,
            unexpected_percent=res.get("unexpected_percent"), examples=examples,
            observed=observed if not isinstance(observed, (list, set)) or len(observed) < 50 else f"{len(observed)} values",
            severity=Severity.ERROR if _blocks(r) else Severity.WARNING))
    return out


def _plain(v: Any) -> Any:
    """A JSON-ready value: dates as ISO strings, numpy scalars as Python numbers, NaN as None."""
    if isinstance(v, pd.Timestamp):
        return str(v.date()) if v == v.normalize() else v.isoformat()
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and np.isnan(v):
        return None
    return v


def _exception_message(info: dict[str, Any] | None) -> str | None:
    """GX 1.x keeps errors either flat or per metric: {metric_id: {raised_exception, exception_message}}."""
    if not info:
        return None
    infos = [info] if "raised_exception" in info else [v for v in info.values() if isinstance(v, dict)]
    msgs = [i.get("exception_message") for i in infos if i.get("raised_exception")]
    return "; ".join(str(m) for m in msgs if m) or None


def report(kind: str, long: pd.DataFrame, vresult: Any, page: str | None, params: dict[str, Any]) -> ValidationReport:
    dates = pd.to_datetime(long["date"], errors="coerce")
    failed = failures(vresult)
    errors = [f for f in failed if f.severity is Severity.ERROR]
    checks = {(r.expectation_config.meta or {}).get("check", r.expectation_config.type):
              severity_of(r.expectation_config.meta) for r in vresult.results}
    return ValidationReport(
        kind=kind, success=not errors, n_rows=len(long),
        n_tickers=int(long["ticker"].nunique()),
        start=str(dates.min().date()) if dates.notna().any() else None,
        end=str(dates.max().date()) if dates.notna().any() else None,
        n_expectations=len(vresult.results), failures=errors, data_docs=page, parameters=params,
        warnings=[f for f in failed if f.severity is Severity.WARNING], checks=checks)
