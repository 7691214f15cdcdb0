"""Where qpo keeps its state: one home folder, every path overridable by environment.

================================  =======================================================
variable                          default
================================  =======================================================
``QPO_HOME``                      the project checkout (the folder holding ``pipelines/``)
                                  when qpo runs from it, else the current directory
``QPO_DATABASE_URL``              ``sqlite:///$QPO_HOME/qpo.db``
``MLFLOW_TRACKING_URI``           ``sqlite:///$QPO_HOME/mlflow.db``
``QPO_MLFLOW_ARTIFACTS``          ``$QPO_HOME/mlruns``
``QPO_RUNS_DIR``                  ``$QPO_HOME/runs`` (executed notebooks and HTML reports)
``QPO_DATA_DOCS_DIR``             ``$QPO_HOME/data_docs`` (Great Expectations Data Docs)
================================  =======================================================
"""
from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent


def project_root() -> Path:
    """The checkout that holds ``notebooks/``, ``pipelines/`` and ``voila_apps/``."""
    env = os.environ.get("QPO_PROJECT_ROOT")
    if env:
        return Path(env).resolve()
    candidate = PACKAGE_DIR.parent
    if (candidate / "pipelines").is_dir():
        return candidate
    return Path.cwd().resolve()


def home() -> Path:
    env = os.environ.get("QPO_HOME")
    path = Path(env).resolve() if env else project_root()
    path.mkdir(parents=True, exist_ok=True)
    return path


def _sqlite_url(path: Path) -> str:
    """``sqlite:///<path>`` with what a path may hold ('?', '%', '#') escaped as SQLAlchemy's
    ``URL.create("sqlite", database=path).render_as_string()`` does (a test holds them equal)."""
    from urllib.parse import quote

    return "sqlite:///" + quote(str(path), safe=" +/")


def database_url() -> str:
    return os.environ.get("QPO_DATABASE_URL") or _sqlite_url(home() / "qpo.db")


def tracking_uri() -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or _sqlite_url(home() / "mlflow.db")


def artifact_root() -> Path:
    env = os.environ.get("QPO_MLFLOW_ARTIFACTS")
    return Path(env).resolve() if env else home() / "mlruns"


def runs_dir() -> Path:
    env = os.environ.get("QPO_RUNS_DIR")
    return Path(env).resolve() if env else home() / "runs"


def data_docs_dir() -> Path:
    env = os.environ.get("QPO_DATA_DOCS_DIR")
    return Path(env).resolve() if env else home() / "data_docs"
