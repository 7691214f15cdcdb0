"""The data-warnings banner of a pipeline run's ``report.html``.

A validation warning (a large one-day move to review, a split that could not be judged) stops no
run, so it must be seen where the run's result is read: every pipeline's exported report opens
with a banner giving the number of warning rows, the first few of them (check, ticker, date,
value) and the Data Docs page that lists them, whenever the run's validation had warnings. A run
without warnings (or without validation) gets no banner. The daily report's own "Data warnings"
section (:mod:`qpo.reporting.daily`) is in addition to it.

Private: only :mod:`qpo.workbench` imports it (:func:`qpo.workbench.pipelines.run_pipeline`).
"""
from __future__ import annotations

import html as _html
import re
from pathlib import Path
from typing import Any

#: the banner's element id (one per report; a second call does not add another)
BANNER_ID = "qpo-data-warnings-banner"
#: the warning rows the banner lists; the Data Docs list the rest
ROWS_SHOWN = 5

_MAIN = re.compile(r"<main\b[^>]*>", re.IGNORECASE)
_BODY = re.compile(r"<body\b[^>]*>", re.IGNORECASE)


def _validation_dict(validation: Any) -> dict[str, Any] | None:
    if validation is None:
        return None
    if isinstance(validation, dict):
        return validation
    return validation.to_dict()  # a qpo.validation.ValidationReport


def _value(column: str | None, value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and column == "simple_return":
        return f"{value:+.1%}"
    if isinstance(value, float):
        return f"{value:,.6g}"
    return str(value)


def banner_html(validation: Any, *, rows: int = ROWS_SHOWN) -> str | None:
    """The banner for a run whose validation is ``validation`` (a
    :class:`~qpo.validation.ValidationReport` or its ``to_dict()``, the run's ``validation.json``),
    or None when it has no warnings."""
    from qpo.reporting.daily import data_warnings

    doc = _validation_dict(validation)
    if not doc or not doc.get("warnings"):
        return None
    found = data_warnings(doc, rows=rows)
    e = _html.escape
    checks = "".join(f"<li>{e(check)}: {n:,} row(s)</li>" for check, n in found.counts.items())
    listed = "".join(
        f"<tr><td>{e(str(r['check']))}</td><td>{e(str(r['ticker'] or ''))}</td><td>{e(str(r['date'] or ''))}</td>"
        f"<td>{e(_value(r['column'], r['value']))}</td></tr>" for _, r in found.table.iterrows())
    more = found.total - len(found.table)
    docs = doc.get("data_docs")
    if docs:
        path = Path(str(docs))
        href = path.as_uri() if path.is_absolute() else str(docs)
        where = (f'<p>Every row is listed in the Data Docs: <a href="{e(href, quote=True)}">{e(path.name)}</a> '
                 f"(<code>{e(str(docs))}</code>).</p>")
    else:
        where = ""
    return (f'<div id="{BANNER_ID}" class="qpo-data-warnings" role="alert" style="background:#fef5e7;'
            f'border:2px solid #e67e22;padding:8px 12px;margin:8px 0">'
            f"<b>{found.total:,} data warning(s) to review</b>: the price data passed validation with warnings, "
            f"which did not stop this run; check the prices behind its numbers.<ul>{checks}</ul>"
            f"<table><thead><tr><th>check</th><th>ticker</th><th>date</th><th>value</th></tr></thead>"
            f"<tbody>{listed}</tbody></table>"
            + (f"<p>{more:,} more not shown.</p>" if more > 0 else "") + where + "</div>")


def add_data_warnings_banner(report: str | Path, validation: Any) -> Path:
    """Put :func:`banner_html` at the top of the exported report ``report`` (in place), when the
    validation has warnings; returns the report's path either way (for ``log_artifact``)."""
    path = Path(report)
    banner = banner_html(validation)
    if banner is None:
        return path
    text = path.read_text(encoding="utf-8")
    if f'id="{BANNER_ID}"' in text:
        return path
    opening = _MAIN.search(text) or _BODY.search(text)
    at = opening.end() if opening else 0
    path.write_text(text[:at] + banner + text[at:], encoding="utf-8")
    return path


def warning_count(tag: str | None) -> int:
    """The number of warning rows in a run's ``qpo.data_warnings`` tag
    (``"large one-day moves to review (...): 2 row(s); ..."``); 0 without the tag."""
    return sum(int(n) for n in re.findall(r": (\d+) row\(s\)(?:;|$)", tag or ""))
