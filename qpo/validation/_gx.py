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

import pandas as pd

from qpo import config
from qpo.validation._panel import EXAMPLES, plain
from qpo.validation.report import FailedExpectation, Severity, ValidationReport

_EXAMPLES = EXAMPLES


def expect(kind: type, check: str, severity: Severity = Severity.ERROR, **kwargs: Any) -> Any:
    """A GX expectation of class ``kind`` looking for the defect ``check``, with its severity."""
    from great_expectations.expectations.metadata_types import FailureSeverity

    gx_severity = FailureSeverity.CRITICAL if severity is Severity.ERROR else FailureSeverity.WARNING
    return kind(meta={"check": check, "severity": severity.value}, severity=gx_severity,
                description=f"{check} [{severity.value}: {severity.effect}]", **kwargs)


def severity_of(config_meta: dict[str, Any] | None) -> Severity:
    return Severity((config_meta or {}).get("severity", Severity.ERROR.value))


def _context(kind: str, expectations: list[Any]) -> tuple[Any, Any]:
    """An ephemeral GX context (in memory, but for one Data Docs site in ``QPO_DATA_DOCS_DIR``; no
    temporary sites, no analytics) holding the suite ``qpo_<kind>`` of ``expectations``."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    ctx = gx.get_context(mode="ephemeral", project_config=DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
        data_docs_sites={"qpo": {"class_name": "SiteBuilder", "store_backend": {
            "class_name": "TupleFilesystemStoreBackend", "base_directory": str(config.data_docs_dir())}}},
        analytics_enabled=False, progress_bars=ProgressBarsConfig(globally=False)))
    suite = ctx.suites.add(gx.ExpectationSuite(name=f"qpo_{kind}"))
    for e in expectations:
        suite.add_expectation(e)
    return ctx, suite


def _publish(ctx: Any, suite: Any, identifier: Any, vresult: Any, example_cols: list[str] | None = None) -> str | None:
    """Set the run's success to qpo's (no failed check of severity ERROR: GX fails a suite on any
    failed expectation; the page says qpo's verdict), store it and write its Data Docs page."""
    from great_expectations.data_context.types.resource_identifiers import ExpectationSuiteIdentifier

    vresult.success = not any(not r.success and _blocks(r) for r in vresult.results)
    for r in vresult.results:  # the Data Docs list (ticker, date) rows from unexpected_index_list: the bounded sample
        res = r.result or {}
        if res.get("partial_unexpected_index_list") and not res.get("unexpected_index_list"):
            res["unexpected_index_list"] = res["partial_unexpected_index_list"]
        if example_cols and res.get("unexpected_index_list") and not res.get("unexpected_index_column_names"):
            # GX's null checks leave these out, and its Data Docs then fail to render their rows
            res["unexpected_index_column_names"] = list(example_cols)
    ctx.validation_results_store.set(identifier, vresult)
    # as GX's UpdateDataDocsAction does: both identifiers in one list (GX's annotation allows one kind per list)
    ctx.build_data_docs(site_names=["qpo"], resource_identifiers=[  # type: ignore[arg-type]
        identifier, ExpectationSuiteIdentifier(name=suite.name)])
    page = None
    try:
        urls = ctx.get_docs_sites_urls(resource_identifier=identifier, site_name="qpo")
        page = urls[0]["site_url"] if urls else None
    except Exception:  # noqa: BLE001 - the index is the fallback
        page = (config.data_docs_dir() / "index.html").as_uri()
    if page and page.startswith("file://"):
        page = str(Path(page[len("file://"):]))
    return page


def run_suite(kind: str, long: pd.DataFrame, expectations: list[Any], example_cols: list[str]) -> tuple[Any, str | None]:
    """Validate ``long`` with GX and write its Data Docs page; returns GX's validation result (its
    ``success`` set to qpo's) and the page's path. Results are ``SUMMARY``s: counts and the first
    :data:`_EXAMPLES` offending rows, never a list of every one."""
    import great_expectations as gx

    ctx, suite = _context(kind, expectations)
    asset = ctx.data_sources.add_pandas(f"qpo_{kind}").add_dataframe_asset(kind)
    batch_def = asset.add_batch_definition_whole_dataframe("whole")
    vdef = ctx.validation_definitions.add(gx.ValidationDefinition(name=f"qpo_{kind}_{uuid.uuid4().hex[:8]}",
                                                                  data=batch_def, suite=suite))
    # no unexpected_index_column_names: with them GX reads the named columns of *every* failing row
    # one cell at a time (1.8 M `df.at` calls for a file defective on every row: minutes); without,
    # it lists row numbers, and the bounded sample is named here from ``long``
    checkpoint = ctx.checkpoints.add(gx.Checkpoint(
        name=f"qpo_{kind}_checkpoint", validation_definitions=[vdef], actions=[],
        result_format={"result_format": "SUMMARY", "partial_unexpected_count": _EXAMPLES}))
    result = checkpoint.run(batch_parameters={"dataframe": long})
    (identifier, vresult), = result.run_results.items()
    _name_rows(vresult, long, example_cols)
    return vresult, _publish(ctx, suite, identifier, vresult, example_cols)


def _name_rows(vresult: Any, long: pd.DataFrame, example_cols: list[str]) -> None:
    """Each failed check's sample of row numbers as the rows GX would have named: the checked
    columns' values and ``example_cols`` (ticker, date) of each, at most :data:`_EXAMPLES`."""
    for r in vresult.results:
        res = r.result or {}
        rows = res.get("partial_unexpected_index_list") or []
        if not rows or isinstance(rows[0], dict):
            continue
        kw = r.expectation_config.kwargs
        checked = [kw[k] for k in ("column", "column_A", "column_B") if k in kw] + list(kw.get("column_list", []))
        cols = [c for c in dict.fromkeys([*checked, *example_cols]) if c in long.columns]
        picked = long.loc[[i for i in rows[:_EXAMPLES] if i in long.index], cols]
        res["partial_unexpected_index_list"] = picked.to_dict("records")
        res.pop("unexpected_index_list", None)
        res.pop("unexpected_index_query", None)
        res["unexpected_index_column_names"] = list(example_cols)


def publish_results(kind: str, expectations: list[Any], outcomes: list[tuple[bool, dict[str, Any]]]) -> tuple[Any, str | None]:
    """Results qpo computed itself (``outcomes[i]``: whether ``expectations[i]`` held, and its result
    in GX's ``SUMMARY`` shape) as a GX validation result, with its Data Docs page: the same report
    and page as :func:`run_suite` writes, without GX scanning every row."""
    import datetime as dt

    import great_expectations as gx
    from great_expectations.core import ExpectationSuiteValidationResult, ExpectationValidationResult
    from great_expectations.core.run_identifier import RunIdentifier
    from great_expectations.data_context.types.resource_identifiers import (
        ExpectationSuiteIdentifier,
        ValidationResultIdentifier,
    )

    ctx, suite = _context(kind, expectations)
    run_id = RunIdentifier(run_time=dt.datetime.now(dt.UTC))
    results = [ExpectationValidationResult(success=ok, expectation_config=e.configuration, result=res,
                                           exception_info={"raised_exception": False, "exception_traceback": None,
                                                           "exception_message": None})
               for e, (ok, res) in zip(suite.expectations, outcomes, strict=True)]
    n_ok = sum(bool(r.success) for r in results)
    vresult = ExpectationSuiteValidationResult(
        success=n_ok == len(results), results=results, suite_name=suite.name,
        statistics={"evaluated_expectations": len(results), "successful_expectations": n_ok,
                    "unsuccessful_expectations": len(results) - n_ok,
                    "success_percent": 100.0 * n_ok / len(results) if results else None},
        meta={"great_expectations_version": gx.__version__, "run_id": run_id,
              "validation_time": run_id.run_time, "batch_spec": {"batch_data": "PandasDataFrame (qpo: wide panel)"}})
    identifier = ValidationResultIdentifier(expectation_suite_identifier=ExpectationSuiteIdentifier(name=suite.name),
                                            run_id=run_id, batch_identifier=f"qpo_{kind}-{kind}")
    return vresult, _publish(ctx, suite, identifier, vresult)


def _blocks(r: Any) -> bool:
    """A failed check stops the run when it is an error, or when it could not run at all (a
    warning that cannot look at the data would let its rows pass unseen)."""
    return severity_of(r.expectation_config.meta) is Severity.ERROR or bool(_exception_message(r.exception_info))


def failures(vresult: Any) -> list[FailedExpectation]:
    """Every failed check, with its severity (ERROR for a check that could not run), its count and
    at most :data:`_EXAMPLES` offending rows (and tickers): bounded whatever the defect count."""
    out = []
    for r in vresult.results:
        if r.success:
            continue
        cfg = r.expectation_config
        kw = cfg.kwargs
        columns = [kw[k] for k in ("column", "column_A", "column_B") if k in kw] + list(kw.get("column_list", []))
        res = r.result or {}
        rows = res.get("partial_unexpected_index_list") or res.get("unexpected_index_list") or []
        examples = [{k: plain(v) for k, v in row.items()} if isinstance(row, dict) else {"row": plain(row)}
                    for row in rows[:_EXAMPLES]]
        count = res.get("unexpected_count")
        observed: Any = None
        error = _exception_message(r.exception_info)
        if error:
            observed = f"the check could not run: {error}"[:1000]
        elif "value_set" in kw and isinstance(res.get("observed_value"), (list, set)):  # missing members of a set
            absent = sorted(set(kw["value_set"]) - set(res["observed_value"]))
            examples = [{kw.get("column", "value"): plain(v)} for v in absent[:_EXAMPLES]]
            count, observed = len(absent), f"{len(absent)} of {len(kw['value_set'])} missing"
        elif not examples:
            observed = res.get("observed_value")
            if isinstance(observed, (list, set, tuple, dict)) and len(observed) >= 50:
                observed = f"{len(observed)} values"
            else:
                observed = plain(observed) if not isinstance(observed, (list, set, tuple, dict)) else observed
        out.append(FailedExpectation(
            check=(cfg.meta or {}).get("check", cfg.type), expectation=cfg.type, columns=columns,
            unexpected_count=int(count) if count is not None else 0,
            unexpected_percent=res.get("unexpected_percent"), examples=examples, observed=observed,
            severity=Severity.ERROR if _blocks(r) else Severity.WARNING,
            tickers=list(res.get("qpo_tickers") or [])[:_EXAMPLES], n_tickers=res.get("qpo_n_tickers")))
    return out


def _exception_message(info: dict[str, Any] | None) -> str | None:
    """GX 1.x keeps errors either flat or per metric: {metric_id: {raised_exception, exception_message}}."""
    if not info:
        return None
    infos = [info] if "raised_exception" in info else [v for v in info.values() if isinstance(v, dict)]
    msgs = [i.get("exception_message") for i in infos if i.get("raised_exception")]
    return "; ".join(str(m) for m in msgs if m) or None


def report(kind: str, vresult: Any, page: str | None, params: dict[str, Any], *, n_rows: int, n_tickers: int,
           start: str | None, end: str | None) -> ValidationReport:
    failed = failures(vresult)
    errors = [f for f in failed if f.severity is Severity.ERROR]
    checks = {(r.expectation_config.meta or {}).get("check", r.expectation_config.type):
              severity_of(r.expectation_config.meta) for r in vresult.results}
    return ValidationReport(
        kind=kind, success=not errors, n_rows=n_rows, n_tickers=n_tickers, start=start, end=end,
        n_expectations=len(vresult.results), failures=errors, data_docs=page, parameters=params,
        warnings=[f for f in failed if f.severity is Severity.WARNING], checks=checks)


def long_report(kind: str, long: pd.DataFrame, vresult: Any, page: str | None, params: dict[str, Any]) -> ValidationReport:
    """:func:`report` of a suite GX ran on the long frame ``long``."""
    dates = pd.to_datetime(long["date"], errors="coerce")
    has = bool(dates.notna().any())
    return report(kind, vresult, page, params, n_rows=len(long), n_tickers=int(long["ticker"].nunique()),
                  start=plain(dates.min()) if has else None, end=plain(dates.max()) if has else None)
