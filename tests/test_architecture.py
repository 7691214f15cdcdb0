"""The shape of the house, held by the suite: the import layers (import-linter), no private names
across packages, modules of a readable size, and the linters (ruff, mypy) clean."""
from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
PACKAGES = sorted(p.name for p in (ROOT / "qpo").iterdir() if (p / "__init__.py").exists())
MAX_LINES = 500


def _run(cmd: list[str], cwd: Path = ROOT, env: dict | None = None, timeout: int = 600):
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})


def _tool(name: str) -> str:
    path = BIN / name
    if not path.exists():
        pytest.fail(f"{name} is not installed in {BIN}: `pip install -e .[test]` installs it")
    return str(path)


@pytest.mark.xdist_group("lint")
def test_import_layers_hold():
    out = _run([_tool("lint-imports"), "--no-cache"])
    assert out.returncode == 0, out.stdout[-6000:] + out.stderr[-2000:]
    assert re.search(r"Contracts: (\d+) kept, 0 broken", out.stdout), out.stdout[-3000:]
    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    assert int(re.search(r"Contracts: (\d+) kept", out.stdout).group(1)) == len(contracts) >= 8  # every one ran


@pytest.mark.xdist_group("lint")
def test_import_layers_catch_a_violation(tmp_path):
    """The contracts can fail: the optimizer reaching into the store, or risk drawing a figure,
    is reported (on a copy of the package, so the checkout is untouched)."""
    shutil.copytree(ROOT / "qpo", tmp_path / "qpo", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    (tmp_path / "qpo" / "optimization" / "leak.py").write_text(
        "def f():\n    from qpo.store import connect\n\n    return connect\n")
    (tmp_path / "qpo" / "risk" / "drawing.py").write_text("import plotly.graph_objects as go\n")
    out = _run([_tool("lint-imports"), "--no-cache"], cwd=tmp_path, env={"PYTHONPATH": str(tmp_path)})
    assert out.returncode != 0
    assert "qpo.optimization is not allowed to import qpo.store" in out.stdout, out.stdout[-3000:]
    assert "qpo.optimization.leak -> qpo.store" in out.stdout
    assert "qpo.risk.drawing -> plotly" in out.stdout


def _modules():
    for path in sorted((ROOT / "qpo").rglob("*.py")):
        rel = path.relative_to(ROOT).with_suffix("")
        yield path, ".".join(rel.parts).removesuffix(".__init__")


def test_no_private_name_crosses_packages():
    """``from qpo.<a>.x import _name`` only inside package ``a``: shared helpers live in
    ``qpo._checks`` and ``qpo.measures``, public."""
    bad = []
    for path, module in _modules():
        own = module.split(".")[1] if module.count(".") else ""
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("qpo."):
                target = node.module.split(".")[1]
                if target in PACKAGES and target != own:
                    bad += [f"{module}: from {node.module} import {a.name}" for a in node.names
                            if a.name.startswith("_") and not a.name.startswith("__")]
    assert not bad, "private names imported across packages:\n" + "\n".join(bad)


def test_modules_stay_readable():
    sizes = {module: len(path.read_text().splitlines()) for path, module in _modules()}
    big = {m: n for m, n in sizes.items() if n > MAX_LINES}
    assert not big, f"modules over {MAX_LINES} lines (split them along their jobs): {big}"


@pytest.mark.xdist_group("lint")
def test_ruff_is_clean():
    out = _run([_tool("ruff"), "check", "--no-cache", "qpo", "tests", "benchmarks", "notebooks", "voila_apps"])
    assert out.returncode == 0, out.stdout[-6000:] + out.stderr[-2000:]


@pytest.mark.xdist_group("lint")
def test_mypy_is_clean(tmp_path):
    out = _run([sys.executable, "-m", "mypy", "--cache-dir", str(tmp_path / "mypy"), "qpo"], timeout=900)
    assert out.returncode == 0, out.stdout[-6000:] + out.stderr[-2000:]


def test_config_sqlite_url_matches_sqlalchemy(tmp_path):
    """qpo.config renders SQLite URLs without importing SQLAlchemy, escaping as SQLAlchemy does."""
    from sqlalchemy.engine import URL, make_url

    from qpo.config import _sqlite_url

    for name in ("plain.db", "a b/x.db", "q?x%y#z@:/db.db", "ü/é.db", "a+b;c=d&e.db"):
        path = tmp_path / name
        assert _sqlite_url(path) == URL.create("sqlite", database=str(path)).render_as_string()
        assert make_url(_sqlite_url(path)).database == str(path)
