"""The team's MLflow: ``qpo ui mlflow`` as a tracking server.

``qpo ui mlflow`` runs ``mlflow server`` with artifact serving on (artifacts uploaded through the
server land under ``QPO_MLFLOW_ARTIFACTS``; clients see ``mlflow-artifacts:/`` URIs) on the
metadata store named by ``QPO_MLFLOW_BACKEND_URI`` (a team: ``postgresql+psycopg://user:pw@host/db``)
or, when that is unset, the workbench's SQLite ``mlflow.db``. A database store is reached first
(:data:`CONNECT_TIMEOUT_S`) and migrated with ``mlflow db upgrade`` (under a PostgreSQL advisory
lock: two servers starting at once migrate once) before the server starts; a bad or unreachable
one is refused with a :class:`TrackingBackendError` that names it without its password. The URI
reaches the server through its environment (``MLFLOW_BACKEND_STORE_URI``), not its command line,
so the password is not in the process list.

Clients (pipelines, sweeps, notebooks) log to the server when ``MLFLOW_TRACKING_URI`` is its
``http://`` address (see :func:`qpo.tracking.mlflow_run.configure`).
"""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from qpo import config
from qpo.errors import QpoError
from qpo.tracking.mlflow_run import is_remote

#: the environment variable naming the tracking server's metadata store
BACKEND_ENV = "QPO_MLFLOW_BACKEND_URI"
CONNECT_TIMEOUT_S = 10
_DATABASES = ("postgresql", "mysql", "mssql", "sqlite")
_EXAMPLE = "postgresql+psycopg://user:password@host:5432/mlflow, or sqlite:///path/to/mlflow.db"
_MIGRATION_LOCK = 0x716F_6D6C  # pg_advisory_lock key of `mlflow db upgrade` ("qoml")


class TrackingBackendError(QpoError):
    """A tracking server's metadata store that is not a database URL, or that cannot be reached or
    migrated; the message names it without its password."""


def backend_store_uri() -> str:
    """The server's metadata store: ``QPO_MLFLOW_BACKEND_URI``, else the workbench's tracking store
    (the SQLite ``mlflow.db`` when ``MLFLOW_TRACKING_URI`` is unset or names a server)."""
    env = os.environ.get(BACKEND_ENV, "").strip()
    if env:
        return env
    uri = config.tracking_uri()
    if is_remote(uri):  # the clients' address of this very server: its store is the default file
        return "sqlite:///" + quote(str(config.home() / "mlflow.db"), safe=" +/")
    return uri


def _safe(uri: str) -> str:
    from qpo.store.db import safe_url

    return safe_url(uri)


def _scrub(text: str, uri: str) -> str:
    """``text`` (a driver's message) with the secrets of ``uri`` removed (its password, a secret
    query value; raw and URL-quoted)."""
    from qpo.store.db import url_secrets

    text = text.replace(uri, _safe(uri))
    for secret in url_secrets(uri):
        text = text.replace(secret, "***")
    return text


def _first_line(exc: BaseException, uri: str) -> str:
    orig = getattr(exc, "orig", None) or exc
    lines = [x.strip() for x in str(orig).splitlines() if x.strip()]
    return _scrub(" ".join(lines[:2])[:400] or type(orig).__name__, uri)


def check_backend(uri: str) -> str:
    """Refuse ``uri`` unless it is a database URL MLflow can store runs in and, for a server
    database, one that answers within :data:`CONNECT_TIMEOUT_S`; returns its backend name."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError
    from sqlalchemy.pool import NullPool

    try:
        url = make_url(uri)
    except ArgumentError:
        raise TrackingBackendError(f"{BACKEND_ENV}={_safe(uri)!r} is not a database URL; valid: {_EXAMPLE}") from None
    backend = url.get_backend_name()
    if backend not in _DATABASES:
        raise TrackingBackendError(f"{BACKEND_ENV}={_safe(uri)!r} names database {backend!r}, which MLflow cannot "
                                   f"store runs in; valid: {', '.join(_DATABASES)} (e.g. {_EXAMPLE})")
    if backend == "sqlite":
        return backend
    args = {"connect_timeout": CONNECT_TIMEOUT_S} if backend in ("postgresql", "mysql") else {}
    try:
        engine = create_engine(url, connect_args=args, poolclass=NullPool)
    except (NoSuchModuleError, ImportError):
        raise TrackingBackendError(f"the MLflow backend store {_safe(uri)} needs the database driver "
                                   f"{url.drivername!r}, which is not installed; for PostgreSQL use "
                                   f"postgresql+psycopg://... (qpo installs psycopg 3)") from None
    except Exception as exc:  # noqa: BLE001 - a malformed URL that parsed
        raise TrackingBackendError(f"the MLflow backend store {_safe(uri)} is not usable: {_first_line(exc, uri)}") \
            from None
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001 - refused, unknown host, wrong password, no such database
        raise TrackingBackendError(f"cannot reach the MLflow backend store {_safe(uri)}: "
                                   f"{_first_line(exc, uri).rstrip('.?! ')}. "
                                   f"Check the host, port, user, password and database of {BACKEND_ENV}") from None
    finally:
        engine.dispose()
    return backend


def migrate_backend(uri: str) -> None:
    """Create or upgrade MLflow's schema in ``uri``: ``mlflow db upgrade`` (run in this process, so
    the URL stays out of the process list) for a database server, under an advisory lock on
    PostgreSQL; the SQLite file is created once under qpo's file lock (:func:`configure`)."""
    backend = check_backend(uri)
    if backend == "sqlite":
        from qpo.tracking.mlflow_run import configure

        configure(uri)
        return
    import contextlib

    from mlflow.db import commands
    from sqlalchemy import create_engine, text
    from sqlalchemy.pool import NullPool

    engine = create_engine(uri, poolclass=NullPool)
    try:
        with (engine.connect() if backend == "postgresql" else contextlib.nullcontext()) as conn:
            if conn is not None:
                conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _MIGRATION_LOCK})
            try:
                commands.main(["upgrade", uri], prog_name="mlflow db", standalone_mode=False)
            except Exception as exc:  # noqa: BLE001 - a migration that failed: the database's message
                raise TrackingBackendError(f"`mlflow db upgrade` of the MLflow backend store {_safe(uri)} failed: "
                                           f"{_first_line(exc, uri)}") from None
            finally:
                if conn is not None:
                    conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _MIGRATION_LOCK})
    finally:
        engine.dispose()


@dataclass(frozen=True)
class ServerCommand:
    """The ``mlflow server`` to run: its command line and the environment it needs."""

    argv: list[str]
    env: dict[str, str]
    backend_uri: str
    artifacts: Path

    @property
    def description(self) -> str:
        return f"metadata in {_safe(self.backend_uri)}, artifacts in {self.artifacts}"


def server_command(port: int, workers: int = 1, *, host: str = "127.0.0.1", backend_uri: str | None = None,
                   artifacts: Path | None = None, migrate: bool = True) -> ServerCommand:
    """``mlflow server`` on ``host:port`` with ``workers`` web workers, artifact serving on (to
    ``artifacts``, default ``QPO_MLFLOW_ARTIFACTS``) and the metadata in ``backend_uri`` (default
    :func:`backend_store_uri`), checked and migrated first unless ``migrate`` is False."""
    uri = backend_uri or backend_store_uri()
    if migrate:
        migrate_backend(uri)
    else:
        check_backend(uri)
    root = (artifacts or config.artifact_root()).resolve()
    root.mkdir(parents=True, exist_ok=True)
    argv = [sys.executable, "-m", "mlflow", "server", "--host", host, "--port", str(port), "--workers", str(workers),
            "--serve-artifacts", "--artifacts-destination", root.as_uri()]
    env = {"MLFLOW_BACKEND_STORE_URI": uri,  # read by `mlflow server`: the password stays out of `ps`
           "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": os.environ.get("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false")}
    return ServerCommand(argv, env, uri, root)
