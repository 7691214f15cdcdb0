"""A throw-away project for the run tests: one pipeline whose notebook is tiny (and can sleep), so
that real ``qpo pipeline run`` processes, real kernels and a real MLflow store cost seconds.

``QPO_PROJECT_ROOT`` points qpo at it: ``pipelines/tiny.toml`` names ``notebooks/tiny.ipynb``."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import nbformat

from tests.conftest import ROOT

PIPELINE = """description = "a tiny notebook for the reliability tests"
notebook = "notebooks/tiny.ipynb"
experiment = "tiny"
schedule = "0 0 * * *"
"""

PARAMETERS = """seconds: float = 0.0  # how long the work cell sleeps
label: str = "a"  # any text, recorded
run_id: "Optional[str]" = None  # set by the pipeline runner"""

WORK = """import time
from IPython.display import display
display({"application/vnd.qpo.record+json": {"name": "started", "value": 1}, "text/plain": "started"}, raw=True)
time.sleep(seconds)
display({"application/vnd.qpo.record+json": {"name": "slept", "value": seconds}, "text/plain": "slept"}, raw=True)"""


def make_project(root: Path) -> Path:
    """Write the tiny project under ``root``; returns ``root``."""
    (root / "pipelines").mkdir(parents=True, exist_ok=True)
    (root / "notebooks").mkdir(exist_ok=True)
    (root / "pipelines" / "tiny.toml").write_text(PIPELINE)
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    params = nbformat.v4.new_code_cell(PARAMETERS)
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell(WORK)]
    nbformat.write(nb, str(root / "notebooks" / "tiny.ipynb"))
    return root


def project_env(root: Path, **extra: str) -> dict[str, str]:
    """The environment of a ``qpo`` process on the tiny project (``QPO_HOME`` as the test set it)."""
    env = dict(os.environ, QPO_PROJECT_ROOT=str(root), PYTHONPATH=str(ROOT))
    env.update(extra)
    return env


def start_cli(env: dict[str, str], *args: str, **popen) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "qpo.cli", *args], env=env, cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **popen)
