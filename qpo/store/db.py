"""Engine, migrations and transactions.

``connect(url)`` returns an engine whose schema is at the newest Alembic revision
(``upgrade`` runs the migrations; creating the schema any other way is not supported).
``session_scope(engine)`` is one transaction: it commits when the block ends and rolls
everything back when anything in it raises, so a failed write leaves nothing behind.
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

from qpo import config
from qpo.errors import StoreError

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
_ENGINES: dict[str, Engine] = {}


def _alembic_config(engine: Engine):
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    # ConfigParser interpolates %: escape it (URL-encoded options hold %3D and the like)
    cfg.set_main_option("sqlalchemy.url", engine.url.render_as_string(hide_password=False).replace("%", "%%"))
    return cfg


def _make_engine(url: str) -> Engine:
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    engine = create_engine(url, future=True, pool_pre_ping=True)
    if engine.dialect.name == "sqlite":
        if engine.url.database and engine.url.database != ":memory:":
            Path(engine.url.database).parent.mkdir(parents=True, exist_ok=True)

        @event.listens_for(engine, "connect")
        def _fk_on(dbapi_conn, _record):  # SQLite enforces foreign keys only when asked
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

    return engine


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Run the Alembic migrations up to ``revision`` on ``engine``'s database."""
    from alembic import command

    cfg = _alembic_config(engine)
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def _upgrade_with_retry(engine: Engine, attempts: int = 3) -> None:
    """Migrate; when another process migrates the same fresh database at the same moment (two
    dashboards opened at once), the loser's DDL fails: wait, and find the schema at head."""
    import time

    from sqlalchemy.exc import DBAPIError

    for attempt in range(attempts):
        try:
            upgrade(engine)
            return
        except DBAPIError:
            if attempt == attempts - 1:
                raise
            time.sleep(0.5 * (attempt + 1))


def connect(url: str | None = None, *, migrate: bool = True) -> Engine:
    """Engine for ``url`` (default: ``QPO_DATABASE_URL`` or the SQLite file in ``QPO_HOME``),
    migrated to the newest schema. Engines are cached per URL."""
    url = url or config.database_url()
    engine = _ENGINES.get(url)
    if engine is None:
        try:
            engine = _make_engine(url)
            if migrate:
                _upgrade_with_retry(engine)
        except Exception as exc:  # noqa: BLE001 - unreachable server, bad URL, driver missing
            safe = url.split("@")[-1] if "@" in url else url
            raise StoreError(f"cannot open the store at {safe!r}: {exc.__class__.__name__}: {exc}".strip()) from exc
        _ENGINES[url] = engine
    return engine


@contextlib.contextmanager
def session_scope(engine: Engine | None = None) -> Iterator[Session]:
    """One transaction: commit on success, roll back everything on any error."""
    engine = engine or connect()
    factory = sessionmaker(bind=engine, expire_on_commit=False)
    with factory() as session, session.begin():
        yield session
