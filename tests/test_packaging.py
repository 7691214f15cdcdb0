"""Packaging: one set of dependencies, a light `import qpo`, the console script, the layout."""
import subprocess
import sys
import tomllib

import yaml

from tests.conftest import ROOT

STACK = ["jupyterlab", "voila", "ipywidgets", "papermill", "mlflow", "numpy", "pandas", "cvxpy", "qiskit",
         "dwave-ocean-sdk", "torch", "plotly", "sqlalchemy", "great-expectations", "nbval"]


def _name(req: str) -> str:
    import re

    return re.split(r"[\[<>=!~ ;]", req, maxsplit=1)[0].lower()


def _pyproject():
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def test_environment_yml_mirrors_pyproject():
    project = _pyproject()
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    expected = project["dependencies"] + project["optional-dependencies"]["test"]
    assert sorted(pip) == sorted(expected)  # same packages, same version constraints
    assert "python=3.11" in env["dependencies"]


def test_the_whole_stack_is_a_dependency():
    deps = {_name(r) for r in _pyproject()["dependencies"]}
    assert set(STACK) <= deps
    # facts of this machine: the CPU torch wheel, anywidget for FigureWidget, SCIP for MIQP,
    # qiskit-aer for simulation, psycopg for PostgreSQL, alembic for migrations
    assert "torch==2.13.0" in _pyproject()["dependencies"]
    assert {"anywidget", "pyscipopt", "qiskit-aer", "psycopg", "alembic", "skfolio"} <= deps


def test_import_qpo_is_light():
    code = ("import sys, time; t = time.perf_counter(); import qpo; dt = time.perf_counter() - t; "
            "heavy = [m for m in ('pandas', 'numpy', 'cvxpy', 'mlflow', 'great_expectations', 'qiskit', 'torch', "
            "'sqlalchemy', 'plotly', 'papermill') if m in sys.modules]; print(heavy, dt)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    heavy, seconds = out.rsplit(" ", 1)
    assert heavy == "[]" and float(seconds) < 0.5


def test_public_api_resolves():
    import qpo

    for name in qpo.__all__:
        assert getattr(qpo, name) is not None
    import pytest

    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        qpo.nope  # noqa: B018


def test_console_script_and_help():
    exe = ROOT / ".venv" / "bin" / "qpo"
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "qpo.cli"]
    out = subprocess.run(cmd + ["--help"], capture_output=True, text=True, check=True).stdout
    for sub in ("validate", "pipeline", "dashboard", "db", "ui"):
        assert sub in out
    listing = subprocess.run(cmd + ["pipeline", "list"], capture_output=True, text=True, check=True).stdout
    assert "daily-report" in listing and "0 18 * * 1-5" in listing


def test_layout():
    for d in ("qpo", "notebooks", "pipelines", "voila_apps", "mlruns", "tests", "benchmarks", ".ci"):
        assert (ROOT / d).is_dir(), d
    tracked = subprocess.run(["git", "ls-files", "mlruns"], cwd=ROOT, capture_output=True, text=True).stdout.split()
    assert tracked in ([], ["mlruns/README.md"])  # artifacts stay out of git
