"""`qpo pipeline run risk --fail-on-breach`: the risk pipeline (notebook 09 under Papermill) exits 1
when it recorded new breach alerts, so that a scheduler paging on exit codes pages; a rerun of the
same date has no new alert and exits 0."""
from __future__ import annotations

import json
import subprocess
import sys

from tests.test_workbench import seed_demo_book


def _qpo(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "qpo.cli", *args], capture_output=True, text=True, timeout=900)


def test_the_risk_pipeline_fails_on_new_breaches_only(qpo_home):
    seed_demo_book()  # the demo book: some portfolios breach their own limits on the panel's last date
    value = _qpo("pipeline", "run", "valuation", "-p", "workers", "1", "--json")
    assert value.returncode == 0, value.stdout[-2000:] + value.stderr[-3000:]
    assert json.loads(value.stdout.strip().splitlines()[-1])["status"] == "FINISHED"

    first = _qpo("pipeline", "run", "risk", "-p", "workers", "1", "--fail-on-breach", "--json")
    run = json.loads(first.stdout.strip().splitlines()[-1])
    assert run["status"] == "FINISHED" and run["metrics"]["new_alerts"] > 0, first.stderr[-3000:]
    assert first.returncode == 1 and "new alert(s), 0 portfolio(s) not risk-checked: exit 1 (--fail-on-breach)" in first.stderr

    again = _qpo("pipeline", "run", "risk", "-p", "workers", "1", "--fail-on-breach", "--json")
    rerun = json.loads(again.stdout.strip().splitlines()[-1])
    assert rerun["status"] == "FINISHED" and rerun["metrics"]["new_alerts"] == 0
    assert rerun["metrics"]["persisting_alerts"] == run["metrics"]["new_alerts"]  # the same breaches: no new alert
    assert again.returncode == 0, again.stderr[-3000:]

    plain = _qpo("pipeline", "run", "risk", "-p", "workers", "1", "--json")  # without the flag: 0 either way
    assert plain.returncode == 0
