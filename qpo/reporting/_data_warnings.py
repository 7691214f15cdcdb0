"""The daily report's "Data warnings": the validation warnings of the prices it was computed from
(large one-day moves to review, ...), which stop nothing but must never pass unseen.

The rows are the ones the validation lists (each warning's first offending rows: ticker, date and
value), at most :data:`ROWS_SHOWN`, the names the portfolio holds first; the section gives each
warning's full count."""
from __future__ import annotations

import html
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

#: the warning rows the report lists
ROWS_SHOWN = 20
COLUMNS = ["check", "ticker", "date", "column", "value", "held"]


@dataclass
class DataWarnings:
    """``counts``: each warning's check -> its number of offending rows; ``table``: at most
    :data:`ROWS_SHOWN` of them (:data:`COLUMNS`); ``source``: where the validation came from."""

    counts: dict[str, int] = field(default_factory=dict)
    table: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=COLUMNS))
    source: str = ""

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def html(self) -> str:
        e = html.escape
        if not self.counts:
            return f'<p class="qpo-no-data-warnings">No data warnings: the prices passed every check{e(self.source)}.</p>'
        items = "".join(f"<li>{e(check)}: {n:,} row(s)</li>" for check, n in self.counts.items())
        shown = (f"The {len(self.table)} row(s) below are those the validation lists (the portfolio's names first)"
                 + (f"; {self.total - len(self.table):,} more are not shown" if self.total > len(self.table) else "")
                 + ".")
        head = (f'<div class="qpo-data-warnings" style="background:#fef5e7;border:2px solid #e67e22;padding:8px 12px">'
                f"<b>{self.total:,} data warning row(s) to review{e(self.source)}</b> (they did not stop the report; "
                f"check the prices behind its numbers):<ul>{items}</ul>{e(shown)}</div>")
        if self.table.empty:
            return head
        rows = "".join("<tr>" + "".join(f"<td>{e(_cell(c, v))}</td>" for c, v in r.items()) + "</tr>"
                       for _, r in self.table.iterrows())
        heads = "".join(f"<th>{e(c)}</th>" for c in self.table.columns)
        return head + f'<table class="qpo-data-warnings-rows"><thead><tr>{heads}</tr></thead><tbody>{rows}</tbody></table>'

    def metrics(self) -> dict[str, Any]:
        return {"data_warning_rows": self.total, "data_warnings": [f"{c}: {n} row(s)" for c, n in self.counts.items()]}


def _cell(column: str, value) -> str:
    if column == "held":
        return "yes" if value else ""
    if isinstance(value, float):
        return f"{value:+.2%}" if column == "value" and abs(value) < 100 else f"{value:,.6g}"
    return "" if value is None else str(value)


def _warnings_of(validation) -> list[dict[str, Any]]:
    """The warnings of a :class:`~qpo.validation.ValidationReport` or of its JSON (``to_dict()``,
    the pipeline's ``validation.json``), as dicts."""
    import dataclasses

    if validation is None:
        return []
    if isinstance(validation, Mapping):
        return [dict(w) for w in validation.get("warnings") or []]
    return [dataclasses.asdict(w) for w in getattr(validation, "warnings", [])]


def data_warnings(validation, held: Iterable[str] = (), *, rows: int = ROWS_SHOWN, source: str = "") -> DataWarnings:
    """The section of the validation warnings of ``validation`` (a
    :class:`~qpo.validation.ValidationReport`, its ``to_dict()`` JSON, or None: no warnings), the
    names in ``held`` listed first and marked; at most ``rows`` rows (the counts are whole)."""
    held = {str(t) for t in held}
    counts: dict[str, int] = {}
    records = []
    for w in _warnings_of(validation):
        check = str(w.get("check"))
        counts[check] = counts.get(check, 0) + int(w.get("unexpected_count") or 0)
        cols = [str(c) for c in w.get("columns") or []]
        for ex in w.get("examples") or []:
            value_col = next((c for c in cols if c in ex), None) or next(
                (k for k in ex if k not in ("ticker", "date")), None)
            ticker = ex.get("ticker")
            records.append({"check": check, "ticker": ticker, "date": None if ex.get("date") is None else str(ex["date"])[:10],
                            "column": value_col, "value": ex.get(value_col) if value_col else None,
                            "held": str(ticker) in held})
    table = pd.DataFrame(records, columns=COLUMNS)
    if not table.empty:
        table = table.sort_values(["held", "date"], ascending=[False, True], kind="stable").head(int(rows))
        table = table.reset_index(drop=True)
    return DataWarnings(counts=counts, table=table, source=source)


def run_validation(run_id: str, tracking_uri: str | None = None) -> dict[str, Any] | None:
    """The ``validation.json`` a pipeline logged to its MLflow run ``run_id`` before it ran the
    notebook (the validation the run's JSON, tags and Data Docs show), or None when the run has none."""
    import json
    import tempfile

    from qpo.tracking import configure

    configure(tracking_uri)
    import mlflow

    client = mlflow.MlflowClient()
    if "validation.json" not in {f.path for f in client.list_artifacts(run_id)}:
        return None
    with tempfile.TemporaryDirectory(prefix="qpo-validation-") as folder:
        path = client.download_artifacts(run_id, "validation.json", folder)
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
