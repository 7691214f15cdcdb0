"""The one MLflow helper every pipeline uses.

Metadata go to ``MLFLOW_TRACKING_URI`` (default: SQLite ``mlflow.db`` in ``QPO_HOME``);
artifacts of experiments qpo creates go under ``QPO_MLFLOW_ARTIFACTS`` (default ``mlruns/``).
MLflow is imported only when a run starts (it takes seconds to import).

Several processes may start runs at once on a fresh home: :func:`configure` creates the tracking
store (MLflow's schema migrations) once, under a file lock beside ``mlflow.db``, and experiments
are got-or-created under the same lock (mlflow #4123). A ``mlflow.db`` that is not a readable
SQLite database is refused with a :class:`~qpo.errors.CorruptFileError` that says how to recover, and
so is one that is SQLite but not this MLflow's (a copy of ``qpo.db``, a newer MLflow's store), before
MLflow's migrations touch it (:func:`check_mlflow_schema`).

A team's tracking server (``MLFLOW_TRACKING_URI=http://...``, ``qpo ui mlflow``): no local store
is created and no file lock taken; :func:`configure` checks that the server answers, experiments
are created on the server with its artifact location (``mlflow-artifacts:/``), and a process that
loses the race to create one (``RESOURCE_ALREADY_EXISTS``) reads the one the winner created.

MLflow prints "View run ... at" / "View experiment at" lines on stdout when a run on a tracking server
ends; qpo's commands print their result there (``--json``: one line), so :func:`configure` turns them off
for this process and the processes it starts (:data:`MLFLOW_QUIET_ENV`; Dask workers get it from
:func:`~qpo.operations.cluster.dask_client`).
"""
from __future__ import annotations

import contextlib
import functools
import json
import math
import numbers
import os
import subprocess
import traceback
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qpo import config
from qpo.errors import CorruptFileError, PipelineError, RunInterrupted

LOCK_TIMEOUT_S = 600.0  # the longest a process waits for another one creating the tracking store
SERVER_WAIT_S = 30.0  # the longest a run waits for a tracking server (MLFLOW_TRACKING_URI=http://...) to answer
_READY: set[str] = set()  # tracking URIs whose store this process has checked and created
_SQLITE_HEADER = b"SQLite format 3\x00"
#: the environment qpo runs MLflow with: no run or experiment links printed on stdout (a ``--json`` result is one line)
MLFLOW_QUIET_ENV = {"MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true"}


def code_version() -> str:
    """``git`` commit of the checkout (``+dirty`` when it has uncommitted changes), or the
    package version when qpo does not run from a checkout."""
    import qpo

    root = config.project_root()
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True,
                             timeout=5, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return sha + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return f"qpo-{qpo.__version__}"


def sqlite_path(uri: str) -> Path | None:
    """The database file of a ``sqlite:///`` tracking URI, or None for any other store."""
    if not uri.startswith("sqlite:"):
        return None
    from sqlalchemy.engine import make_url

    database = make_url(uri).database
    return Path(database).resolve() if database and database != ":memory:" else None


def missing_store(tracking_uri: str | None = None) -> Path | None:
    """Where the local tracking store would be when there is none yet (``mlflow.db`` absent or
    empty, a ``file:`` store's folder absent), else None (it exists, or the store is a server's).
    A reading command (``qpo pipeline runs``, ``qpo models list``) then says there is nothing yet
    and creates nothing: only a run creates the store."""
    uri = tracking_uri or config.tracking_uri()
    if is_remote(uri):
        return None
    path = sqlite_path(uri)
    if path is not None:
        return path if not path.exists() or path.stat().st_size == 0 else None
    if uri.startswith("file:"):
        from urllib.parse import unquote, urlsplit

        folder = Path(unquote(urlsplit(uri).path)).resolve()
    elif "://" in uri or uri.startswith(("sqlite:", "postgresql", "mysql", "mssql")):
        return None  # a database server: it exists or MLflow says why not
    else:
        folder = Path(uri).expanduser().resolve()  # a plain path: MLflow's file store
    return folder if not folder.exists() else None


def _corrupt(path: Path, what: str) -> CorruptFileError:
    return CorruptFileError(f"the MLflow tracking store {path} is corrupt: {what}. To recover, move it aside "
                            f"(mv '{path}' '{path}.corrupt') and run again to start an empty one, or restore "
                            f"it from a backup")


def check_sqlite_file(path: Path) -> None:
    """Refuse a SQLite file that is not one (wrong header), is cut short (smaller than its header
    says) or that SQLite cannot read, with a :class:`~qpo.errors.CorruptFileError`. An absent or
    empty file is fine: MLflow creates the store."""
    import sqlite3

    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return
    if size == 0:
        return
    with open(path, "rb") as f:
        header = f.read(100)
    if not header.startswith(_SQLITE_HEADER[: len(header)]):
        raise _corrupt(path, "it is not an SQLite database (its first bytes are not the SQLite header)")
    if len(header) < 100:
        raise _corrupt(path, f"it is truncated ({size} bytes, shorter than an SQLite header)")
    page_size = int.from_bytes(header[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    pages = int.from_bytes(header[28:32], "big")
    header_valid = header[24:28] == header[92:96] and pages > 0
    if page_size < 512 or size % page_size or (header_valid and size < pages * page_size):
        raise _corrupt(path, f"it is truncated ({size} bytes where its header announces "
                             f"{pages} pages of {page_size} bytes)")
    try:
        con = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True, timeout=30)
        try:
            con.execute("SELECT count(*) FROM sqlite_master").fetchone()
        finally:
            con.close()
    except sqlite3.DatabaseError as exc:
        if "locked" in str(exc):
            return
        raise _corrupt(path, f"SQLite cannot read it ({exc})") from exc


def _lock(uri: str):
    """The file lock that serializes creating the tracking store and its experiments on this host."""
    from filelock import FileLock

    path = sqlite_path(uri)
    lock_path = path.with_name(path.name + ".lock") if path else config.home() / ".mlflow-tracking.lock"
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    return FileLock(str(lock_path), timeout=LOCK_TIMEOUT_S)


@contextlib.contextmanager
def _locked(uri: str, doing: str = "creating the MLflow tracking store") -> Iterator[None]:
    """This host's lock on the tracking store ``uri``: the processes of one machine take turns
    (a team's server shared by several machines is not covered)."""
    from filelock import Timeout

    try:
        with _lock(uri):
            yield
    except Timeout as exc:
        raise PipelineError(f"waited {LOCK_TIMEOUT_S:.0f} s for another process {doing} {uri} (lock "
                            f"{exc.lock_file}); if none runs, delete the lock file") from exc


@functools.lru_cache(maxsize=1)
def _mlflow_revisions() -> frozenset[str]:
    """Every schema revision (Alembic) this MLflow's migrations know: read from the migration files'
    ``revision = "..."`` lines (Alembic's own loader imports every file: 0.4 s)."""
    import re

    import mlflow.store.db_migrations

    folder = Path(mlflow.store.db_migrations.__file__).parent / "versions"
    found = re.compile(r"""^revision\s*(?::\s*str\s*)?=\s*["']([^"']+)["']""", re.M)
    revisions = {m for f in folder.glob("*.py") for m in found.findall(f.read_text(encoding="utf-8"))}
    if revisions:
        return frozenset(revisions)
    from alembic.script import ScriptDirectory

    return frozenset(s.revision for s in ScriptDirectory(str(folder.parent)).walk_revisions())


def _not_mlflows(path: Path, what: str) -> CorruptFileError:
    return CorruptFileError(f"{path} is not an MLflow tracking store of this version: {what}. Move it aside "
                            f"(mv '{path}' '{path}.aside') and run again to start an empty one, or point "
                            f"MLFLOW_TRACKING_URI at the store it belongs to")


def check_mlflow_schema(path: Path) -> None:
    """Refuse, before MLflow migrates it, an SQLite ``mlflow.db`` that is not this MLflow's: its
    schema revision unknown to the installed MLflow (another application's database, such as a
    copy of ``qpo.db``, or a newer MLflow's store), or tables and no MLflow table among them.
    The file is only read: a refused file is left as it was."""
    import sqlite3

    import mlflow

    from qpo.errors import named, quoted

    if not path.exists() or path.stat().st_size == 0:
        return
    try:
        con = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True, timeout=30)
        try:
            tables = sorted(r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'"))
            revisions = ([r[0] for r in con.execute("SELECT version_num FROM alembic_version")]
                         if "alembic_version" in tables else [])
        finally:
            con.close()
    except sqlite3.DatabaseError as exc:
        if "locked" in str(exc):
            return
        raise _corrupt(path, f"SQLite cannot read it ({str(exc)[:300]})") from exc
    unknown = [r for r in revisions if r not in _mlflow_revisions()]
    if unknown:
        raise _not_mlflows(path, f"its schema revision {quoted(unknown[0])} is unknown to MLflow "
                                 f"{mlflow.__version__} (a newer MLflow's store, or another application's "
                                 f"database; its tables: {named(tables, 5)})")
    if tables and not revisions and not {"experiments", "runs"} & set(tables):
        raise _not_mlflows(path, f"it holds tables that are not MLflow's ({named(tables, 5)})")


def _create_store(uri: str) -> None:
    """Check the store's file and create the store (MLflow's migrations), once per process."""
    from mlflow.tracking import MlflowClient

    path = sqlite_path(uri)
    if path is not None:
        check_sqlite_file(path)
        check_mlflow_schema(path)
    try:
        MlflowClient(uri).search_experiments(max_results=1)  # creates and migrates the store
    except Exception as exc:  # noqa: BLE001 - a damaged file that passed the header checks
        text = str(exc)
        if path is not None and any(s in text for s in ("malformed", "not a database", "file is encrypted",
                                                         "disk image")):
            raise _corrupt(path, f"SQLite cannot read it ({text.splitlines()[0][:300]})") from exc
        if "Can't locate revision" in text or type(exc).__name__ in ("CommandError", "ResolutionError"):
            import mlflow

            from qpo.store.db import safe_url

            where = str(path) if path is not None else safe_url(uri)
            raise CorruptFileError(f"the MLflow tracking store {where} is not one of this MLflow "
                                   f"({mlflow.__version__}): {text.splitlines()[0][:300]}. Point MLFLOW_TRACKING_URI "
                                   f"at a store of this MLflow version, or move this one aside") from exc
        raise


def is_remote(uri: str) -> bool:
    """Whether ``uri`` is a tracking server (``http(s)://``, Databricks), not a store on this host."""
    return uri.startswith(("http://", "https://", "databricks"))


def _server_address(uri: str) -> str:
    """``uri`` without any user or password (for messages)."""
    from urllib.parse import urlsplit

    parts = urlsplit(uri)
    return f"{parts.scheme}://{parts.hostname or ''}{f':{parts.port}' if parts.port else ''}{parts.path}"


def _check_server(uri: str) -> None:
    """Refuse a tracking server that does not answer ``/health`` within :data:`SERVER_WAIT_S`
    (any HTTP answer counts: a proxy may guard it), before a run starts."""
    import time
    import urllib.error
    import urllib.request

    deadline, reason = time.monotonic() + SERVER_WAIT_S, ""
    while True:
        try:
            with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=10):
                return
        except urllib.error.HTTPError:
            return
        except (OSError, ValueError) as exc:
            reason = str(getattr(exc, "reason", exc))
        if time.monotonic() > deadline:
            raise PipelineError(f"the MLflow tracking server {_server_address(uri)} (MLFLOW_TRACKING_URI) does not "
                                f"answer ({reason}); start it with `qpo ui mlflow`, or unset MLFLOW_TRACKING_URI "
                                f"to track into the local mlflow.db")
        time.sleep(1.0)


def configure(tracking_uri: str | None = None) -> str:
    """Point MLflow at ``tracking_uri`` (default from the environment / ``QPO_HOME``) and make
    sure its store exists: created by one process at a time, under a file lock. A tracking server
    (``http://...``) is only checked to answer: it keeps its own store. MLflow's links on stdout are
    turned off (:data:`MLFLOW_QUIET_ENV`)."""
    import mlflow

    os.environ.update(MLFLOW_QUIET_ENV)  # read by MLflow when a run ends; inherited by kernels and workers
    uri = tracking_uri or config.tracking_uri()
    mlflow.set_tracking_uri(uri)
    if uri not in _READY:
        if uri.startswith(("http://", "https://")):
            _check_server(uri)
        elif not is_remote(uri):
            with _locked(uri):
                _create_store(uri)
        _READY.add(uri)
    return uri


def _experiment_id(name: str, uri: str) -> str:
    """Get or create experiment ``name``, under the store's lock (two first runs of one pipeline
    would otherwise both create it, and one fail)."""
    import mlflow

    exp = mlflow.get_experiment_by_name(name)
    if exp is not None:
        return exp.experiment_id
    if is_remote(uri):  # the server's database decides: one creation wins, the others read it
        from mlflow.exceptions import MlflowException

        try:
            return mlflow.create_experiment(name)  # the server's artifact location (mlflow-artifacts:/)
        except MlflowException as exc:
            exp = mlflow.get_experiment_by_name(name)
            if exc.error_code != "RESOURCE_ALREADY_EXISTS" or exp is None:
                raise
            return exp.experiment_id
    with _locked(uri):
        exp = mlflow.get_experiment_by_name(name)
        if exp is not None:
            return exp.experiment_id
        root = config.artifact_root()
        root.mkdir(parents=True, exist_ok=True)
        return mlflow.create_experiment(name, artifact_location=(root / name).as_uri())


@dataclass
class TrackedRun:
    """A live MLflow run; methods log to it."""

    run_id: str
    experiment_id: str
    tracking_uri: str

    def log_params(self, params: Mapping[str, Any]) -> None:
        import mlflow

        mlflow.log_params({k: (json.dumps(v) if isinstance(v, (dict, list)) else v) for k, v in params.items()})

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        """Log the finite real numbers (numpy's included) of ``metrics``; text, booleans and NaN
        are not metrics and are left out."""
        import mlflow
        import numpy as np

        clean = {k: float(v) for k, v in metrics.items()
                 if isinstance(v, numbers.Real) and not isinstance(v, (bool, np.bool_)) and math.isfinite(v)}
        if clean:
            mlflow.log_metrics(clean, step=step)

    def log_figure(self, figure, name: str) -> None:
        """A plotly figure (object or its JSON dict), saved as interactive HTML and as JSON."""
        import mlflow
        import plotly.graph_objects as go
        import plotly.io as pio

        fig = figure if isinstance(figure, go.Figure) else go.Figure(figure)
        mlflow.log_text(pio.to_html(fig, include_plotlyjs=True, full_html=True), f"figures/{name}.html")
        mlflow.log_text(pio.to_json(fig), f"figures/{name}.json")

    def log_artifact(self, path: str | Path, artifact_path: str | None = None) -> None:
        import mlflow

        mlflow.log_artifact(str(path), artifact_path)

    def log_dict(self, data: dict, name: str) -> None:
        import mlflow

        mlflow.log_dict(data, name)

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        import mlflow

        mlflow.set_tags({k: str(v) for k, v in tags.items()})

    @property
    def artifact_uri(self) -> str:
        import mlflow

        return mlflow.get_run(self.run_id).info.artifact_uri


@contextlib.contextmanager
def tracked_run(experiment: str, run_name: str | None = None, *, params: Mapping[str, Any] | None = None,
                data_hash: str | None = None, tags: Mapping[str, Any] | None = None,
                tracking_uri: str | None = None) -> Iterator[TrackedRun]:
    """Start an MLflow run tagged with the code version and the data's hash.

    The run ends FINISHED when the block completes and FAILED (with the error as the tags
    ``error`` and ``error_type`` and the traceback as ``error.txt``) when it raises; the error
    propagates. A run stopped by a signal (:class:`~qpo.errors.RunInterrupted`, or Ctrl-C's
    ``KeyboardInterrupt``) ends KILLED, the reason in the tags ``qpo.stop_reason`` and
    ``mlflow.note.content`` ("interrupted by SIGTERM").
    """
    import mlflow

    uri = configure(tracking_uri)
    exp_id = _experiment_id(experiment, uri)
    # an MLFLOW_RUN_ID inherited from the environment (an `mlflow run` wrapper, a worker's or a
    # scheduler's environment) would make start_run resume that one run for every run started here
    os.environ.pop("MLFLOW_RUN_ID", None)
    base_tags = {"qpo.code_version": code_version()}
    if data_hash:
        base_tags["qpo.data_hash"] = data_hash
    base_tags.update({k: str(v) for k, v in (tags or {}).items()})
    with mlflow.start_run(experiment_id=exp_id, run_name=run_name, tags=base_tags) as active:
        run = TrackedRun(active.info.run_id, exp_id, uri)
        if params:
            run.log_params(params)
        try:
            yield run
        except (RunInterrupted, KeyboardInterrupt) as exc:
            reason = str(exc) if isinstance(exc, RunInterrupted) else "interrupted by SIGINT (Ctrl-C)"
            mlflow.set_tags({"error_type": type(exc).__name__, "error": reason, "qpo.stop_reason": reason,
                             "mlflow.note.content": reason})
            mlflow.end_run(status="KILLED")
            raise
        except BaseException as exc:
            mlflow.set_tags({"error_type": type(exc).__name__, "error": str(exc)[:4000]})
            mlflow.log_text("".join(traceback.format_exception(exc)), "error.txt")
            mlflow.end_run(status="FAILED")
            raise
