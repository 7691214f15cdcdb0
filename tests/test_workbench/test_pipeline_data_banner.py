"""Data warnings are seen wherever a run's result is read, not only in the daily report.

Before: a pipeline run on prices with a -50 % one-day crash FINISHED (right) with the warning in the
run's text, JSON and Data Docs, but its report.html said nothing and ``qpo pipeline runs`` showed a
plain FINISHED. Now every pipeline's report.html opens with a banner (count, the first rows, the Data
Docs page) when its validation warned, and ``qpo pipeline runs`` shows ``FINISHED (1 data warning)``
(its ``--json`` a ``data_warnings`` count). A real pipeline on a real kernel and MLflow store: a tiny
notebook that declares a price source, so that the pipeline validates the file first."""
from __future__ import annotations

import json
from pathlib import Path

import nbformat
import numpy as np
import pandas as pd
import pytest

from qpo.workbench._pipeline_banner import BANNER_ID, banner_html, warning_count
from qpo.workbench.run_control import status_text

WARNING = "large one-day moves to review (|return| > 40 %)"
CRASH_DAY = 150
TICKERS = ["AAA", "BBB", "CRSH"]


def _prices(crash: bool) -> pd.DataFrame:
    """Three random walks (1 % a day) over 260 business days; with ``crash``, CRSH falls 50 % on one day."""
    rng = np.random.default_rng(5)
    dates = pd.bdate_range("2022-01-03", periods=260)
    steps = rng.normal(0.0003, 0.01, (len(dates), len(TICKERS)))
    if crash:
        steps[CRASH_DAY, 2] = np.log(0.5)
    panel = pd.DataFrame(100 * np.exp(np.cumsum(steps, axis=0)), index=dates, columns=TICKERS).round(4)
    panel.index.name = "date"
    return panel


def _crash_date() -> str:
    return str(_prices(True).index[CRASH_DAY].date())


@pytest.fixture
def project(tmp_path, monkeypatch):
    root = tmp_path / "project"
    (root / "pipelines").mkdir(parents=True)
    (root / "notebooks").mkdir()
    (root / "pipelines" / "priced.toml").write_text('description = "a notebook on validated prices"\n'
                                                    'notebook = "notebooks/priced.ipynb"\nexperiment = "priced"\n\n'
                                                    '[data]\nsource = "prices_source"\n')
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    params = nbformat.v4.new_code_cell('prices_source: str = "prices.csv"\nrun_id: "Optional[str]" = None')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_markdown_cell("# Priced report"),
                nbformat.v4.new_code_cell('print("the report body")')]
    nbformat.write(nb, str(root / "notebooks" / "priced.ipynb"))
    monkeypatch.setenv("QPO_PROJECT_ROOT", str(root))
    for var in ("QPO_SMTP_HOST", "QPO_ALERT_WEBHOOK", "QPO_ALERT_RECIPIENTS", "QPO_MIN_FREE_MB"):
        monkeypatch.delenv(var, raising=False)
    return root


def _runs(capsys, *extra):
    from qpo.cli import main

    capsys.readouterr()
    assert main(["pipeline", "runs", *extra]) == 0
    return capsys.readouterr().out


def test_a_run_with_a_crash_shows_a_banner_and_a_marked_status(project, qpo_home, tmp_path, capsys):
    from qpo.workbench.pipelines import run_pipeline

    _prices(True).to_csv(tmp_path / "crash.csv")
    run = run_pipeline("priced", {"prices_source": str(tmp_path / "crash.csv")})
    assert run.status == "FINISHED" and run.ok, run.error
    (warning,) = run.data_warnings
    assert warning.startswith(WARNING) and f"ticker=CRSH, date={_crash_date()}" in warning

    report = Path(run.html).read_text(encoding="utf-8")
    assert report.count(f'id="{BANNER_ID}"') == 1
    banner = report[report.index(f'id="{BANNER_ID}"'):]
    banner = banner[:banner.index("</div>")]
    assert "<b>1 data warning(s) to review</b>" in banner
    assert f"<li>{WARNING.replace('>', '&gt;')}: 1 row(s)</li>" in banner
    assert f"<td>CRSH</td><td>{_crash_date()}</td><td>-50.0%</td>" in banner
    assert run.data_docs and Path(run.data_docs).name in banner and Path(run.data_docs).as_uri() in banner
    assert report.index(BANNER_ID) < report.index("the report body")  # at the top, before the notebook's output

    doc = json.loads(_runs(capsys, "--json"))
    (row,) = doc["runs"]
    assert row["run_id"] == run.run_id and row["status"] == "FINISHED" and row["data_warnings"] == 1
    text = _runs(capsys)
    assert "FINISHED (1 data warning)" in text and run.run_id[:12] in text


def test_a_clean_run_has_no_banner(project, qpo_home, tmp_path, capsys):
    from qpo.workbench.pipelines import run_pipeline

    _prices(False).to_csv(tmp_path / "clean.csv")
    run = run_pipeline("priced", {"prices_source": str(tmp_path / "clean.csv")})
    assert run.status == "FINISHED" and run.data_warnings == [], run.error
    report = Path(run.html).read_text(encoding="utf-8")
    assert BANNER_ID not in report and "data warning" not in report and "the report body" in report
    (row,) = json.loads(_runs(capsys, "--json"))["runs"]
    assert row["data_warnings"] == 0
    text = _runs(capsys)
    assert "FINISHED" in text and "data warning" not in text


def test_banner_and_counts_without_a_run():
    """The pieces on their own: many warning rows, the banner lists five and says how many more."""
    examples = [{"simple_return": -0.45 - i / 100, "ticker": f"T{i}", "date": f"2020-03-{10 + i:02d}"} for i in range(8)]
    validation = {"warnings": [{"check": WARNING, "columns": ["simple_return"], "unexpected_count": 8,
                                "examples": examples},
                               {"check": "split on a ticker's first bar not judged (no previous close to show it)",
                                "columns": ["first_bar_split"], "unexpected_count": 1,
                                "examples": [{"first_bar_split": 2.0, "ticker": "NEW", "date": "2020-01-02"}]}],
                  "data_docs": None}
    html = banner_html(validation)
    assert html is not None and "<b>9 data warning(s) to review</b>" in html
    assert html.count("<tr><td>") == 5 and "4 more not shown" in html
    assert "<td>T0</td><td>2020-03-10</td><td>-45.0%</td>" in html
    assert banner_html({"warnings": []}) is None and banner_html(None) is None
    tag = f"{WARNING}: 8 row(s); split on a ticker's first bar not judged (no previous close to show it): 1 row(s)"
    assert warning_count(tag) == 9 and warning_count(None) == 0
    assert status_text({"status": "FINISHED", "data_warnings": 9}) == "FINISHED (9 data warnings)"
    assert status_text({"status": "RUNNING", "process": "gone", "data_warnings": 1}) == "RUNNING (gone, 1 data warning)"
    assert status_text({"status": "FAILED", "data_warnings": 0}) == "FAILED"


def test_the_classical_frontier_report_shows_the_crash(qpo_home, tmp_path, capsys, sp500, monkeypatch):
    """The case the audit met: `classical-frontier` on a CSV whose AAPL halves in a day (the bundled
    panel from 2018, a -50 % day injected in 2022) finishes, and its report says so at the top."""
    from qpo.workbench.pipelines import run_pipeline

    monkeypatch.delenv("QPO_PROJECT_ROOT", raising=False)  # the project's own pipelines
    prices = sp500.loc["2018-01-01":].copy()
    day = prices.index[-100]
    prices.loc[day:, "AAPL"] *= 0.5
    prices.to_csv(tmp_path / "crash.csv")
    run = run_pipeline("classical-frontier", {"prices_source": str(tmp_path / "crash.csv")})
    assert run.status == "FINISHED", run.error
    report = Path(run.html).read_text(encoding="utf-8")
    start = report.index(f'id="{BANNER_ID}"')
    banner = report[start:report.index("</div>", start)]
    assert f"<td>AAPL</td><td>{day.date()}</td><td>-50.1%</td>" in banner, banner
    assert report.index("<main") < start < report.index('<div class="jp-Cell')  # above the notebook's first cell
    (row,) = json.loads(_runs(capsys, "--json"))["runs"]
    assert (row["pipeline"], row["status"], row["data_warnings"]) == ("classical-frontier", "FINISHED", 1)
