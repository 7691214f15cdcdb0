"""One pipeline definition with a bad cron line does not take the others down: ``qpo schedule show``
and ``qpo pipeline list`` list the good ones and show the broken one with its error (exit 0, a
warning on standard error); ``qpo schedule crontab`` prints the good lines and a comment saying why
the broken one (and the one that runs after it) has none."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.reliability.tiny_project import make_project

BAD = """description = "a risk run with a typo in its schedule"
notebook = "notebooks/tiny.ipynb"
experiment = "tiny"
schedule = "61 18 * * 1-5"
"""
AFTER_BAD = """description = "waits for the broken one"
notebook = "notebooks/tiny.ipynb"
experiment = "tiny"
schedule = "30 19 * * 1-5"
after = "broken"
"""


@pytest.fixture
def project(tmp_path, monkeypatch, qpo_home) -> Path:
    root = make_project(tmp_path / "project")  # tiny: schedule "0 0 * * *"
    (root / "pipelines" / "broken.toml").write_text(BAD)
    (root / "pipelines" / "follower.toml").write_text(AFTER_BAD)
    monkeypatch.setenv("QPO_PROJECT_ROOT", str(root))
    monkeypatch.setenv("QPO_SCHEDULE_TZ", "UTC")
    return root


def _qpo(capsys, *argv: str) -> tuple[int, str, str]:
    from qpo.cli import main

    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_schedule_show_lists_the_good_pipelines_and_the_refused_one_with_its_error(project, capsys):
    code, out, err = _qpo(capsys, "schedule", "show")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith("pipeline")
    (tiny,) = [line for line in lines if line.startswith("tiny ")]
    assert "0 0 * * *" in tiny and ":00" in tiny  # its next run, at midnight
    (broken,) = [line for line in lines if line.startswith("broken ")]
    assert "REFUSED: pipelines/broken.toml: schedule '61 18 * * 1-5' is not a valid cron expression" in broken
    assert "minute field '61'" in broken and "valid: 0-59" in broken
    (follower,) = [line for line in lines if line.startswith("follower ")]
    assert "REFUSED: pipelines/follower.toml: after = 'broken', whose definition was refused" in follower
    assert "warning: 2 pipeline definition(s) refused, not scheduled: broken, follower" in err

    code, out, _ = _qpo(capsys, "schedule", "show", "--json")
    assert code == 0
    doc = json.loads(out)
    assert [r["pipeline"] for r in doc["pipelines"]] == ["tiny"]
    assert doc["pipelines"][0]["next_run"].endswith("T00:00:00+00:00")
    assert [r["pipeline"] for r in doc["refused"]] == ["broken", "follower"]
    assert "61" in doc["refused"][0]["error"]


def test_crontab_prints_the_good_lines_and_says_why_the_broken_one_has_none(project, capsys):
    code, out, err = _qpo(capsys, "schedule", "crontab")
    assert code == 0, err
    jobs = [line for line in out.splitlines() if line and not line.startswith("#") and "=" not in line.split()[0]]
    assert len(jobs) == 1 and jobs[0].startswith("0 0 * * *  ") and "pipeline run tiny --json" in jobs[0]
    assert "61 18" not in "\n".join(jobs)
    comments = [line for line in out.splitlines() if line.startswith("# broken is left out")]
    assert len(comments) == 1 and "schedule '61 18 * * 1-5' is not a valid cron expression" in comments[0]
    assert any(line.startswith("# follower is left out") for line in out.splitlines())
    assert "warning: 2 pipeline definition(s) refused" in err


def test_pipeline_list_shows_the_broken_definition_with_its_error(project, capsys):
    code, out, err = _qpo(capsys, "pipeline", "list")
    assert code == 0, err
    rows = {line.split()[0]: line for line in out.splitlines() if line.strip()}
    assert set(rows) == {"tiny", "broken", "follower"}
    assert "tiny.ipynb" in rows["tiny"] and "tiny.ipynb" in rows["follower"]  # it loads; only scheduling refuses it
    assert "BROKEN: pipelines/broken.toml: schedule '61 18 * * 1-5' is not a valid cron expression" in rows["broken"]
    assert "warning: 1 pipeline definition(s) do not load: broken" in err
