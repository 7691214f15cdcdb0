"""Command-line edges found by probing the scheduler and the pipeline commands: each one a traceback,
a value taken to mean what it did not say, or a --json command silent on its error."""
from __future__ import annotations

import json
import re

import pytest


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    from qpo.cli import main

    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("limit", ["0", "-1"])
def test_pipeline_runs_limit_below_one_is_refused_with_a_json_line(capsys, limit):
    """MLflow's own traceback, exit 1, nothing on stdout."""
    code, out, err = _run(capsys, "pipeline", "runs", "--limit", limit, "--json")
    doc = json.loads(out.strip().splitlines()[-1])
    assert code == 2 and doc["status"] == "ERROR" and "--limit must be a whole number of runs from 1" in doc["error"]
    assert "Traceback" not in err


def test_a_negative_run_timeout_is_refused(capsys):
    """-5 was taken as no limit, and made other hosts' claims never expire."""
    code, _, err = _run(capsys, "schedule", "run", "--once", "--run-timeout", "-5")
    assert code == 2 and "--run-timeout must be 0 (no limit) or a number of seconds > 0, got -5" in err


def test_the_crontab_carries_the_zone_the_scheduler_uses(capsys, monkeypatch):
    """With TZ set, `schedule run` kept New York's 17:00 while the cron lines had no zone; a zone
    that is none was written as CRON_TZ=Mars/Olympus."""
    monkeypatch.delenv("QPO_SCHEDULE_TZ", raising=False)
    monkeypatch.setenv("TZ", "America/New_York")
    code, out, _ = _run(capsys, "schedule", "crontab")
    assert code == 0 and "\nCRON_TZ=America/New_York\n" in out
    monkeypatch.setenv("QPO_SCHEDULE_TZ", "Mars/Olympus")
    code, out, err = _run(capsys, "schedule", "crontab")
    assert code == 2 and out == "" and "QPO_SCHEDULE_TZ='Mars/Olympus' is not a time zone" in err


def test_a_cells_file_naming_a_parameter_twice_is_refused(tmp_path):
    """`costs,costs` ran one cell with the last value, the first dropped unseen."""
    from qpo.errors import InvalidValueError
    from qpo.workbench.sweep import load_cells

    path = tmp_path / "cells.csv"
    path.write_text("costs,costs\n0,0.002\n")
    with pytest.raises(InvalidValueError, match="the column\\(s\\) 'costs' appear more than once"):
        load_cells(path)
    path.write_text("costs,window\n0,126\n0.001,252\n")
    assert load_cells(path) == [{"costs": 0, "window": 126}, {"costs": 0.001, "window": 252}]


@pytest.mark.parametrize("text, message", [
    ("costs,window\n0,126\n\n0.001\n", "row 2 (line 4) has 1 value(s) for the 2 column(s) of the header (costs, window)"),
    ("costs,window\n0,126,9\n", "row 1 (line 2) has 3 value(s) for the 2 column(s)"),
])
def test_a_cells_row_of_too_few_or_too_many_values_is_refused(tmp_path, text, message):
    """`0.001` under `costs,window` ran its cell on the notebook's default window, shown beside the
    cells that set one as if it had been swept."""
    from qpo.errors import InvalidValueError
    from qpo.workbench.sweep import load_cells

    path = tmp_path / "cells.csv"
    path.write_text(text)
    with pytest.raises(InvalidValueError, match=re.escape(message)):
        load_cells(path)
    path.write_text("costs,window\n0.001,\n")  # an empty value is there, and null
    assert load_cells(path) == [{"costs": 0.001, "window": None}]


def test_a_parameter_yaml_cannot_make_a_date_of_stays_text():
    """`-p as_of 2021-02-30` ended in YAML's 'day is out of range for month' traceback, exit 1."""
    from qpo.cli import _parse_value
    from qpo.cli.sweep import grid_from_args

    assert _parse_value("2021-02-30") == "2021-02-30" and _parse_value("2021-02-28") == "2021-02-28"
    assert grid_from_args([["history_end", "2021-02-30"]]) == {"history_end": ["2021-02-30"]}
