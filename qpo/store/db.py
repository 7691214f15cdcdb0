"""Engine, migrations and transactions.

``connect(url)`` returns an engine whose schema is at the newest Alembic revision
(``upgrade`` runs the migrations; creating the schema any other way is not supported).
Commands that write the book call it as it is and may create an empty store; every entry point
that only reads (the dashboard, reports, pipelines) calls ``connect(url, create=False)``, which
refuses a missing store (:class:`qpo.errors.MissingStoreError`, naming the URL and the command
that creates it) and never creates a file. The first migration of a fresh store runs once however
many processes arrive at once: under a file lock beside a SQLite file, under an advisory lock on
PostgreSQL. A damaged SQLite file is a :class:`qpo.errors.CorruptFileError`.
``session_scope(engine)`` is one transaction: it commits when the block ends and rolls
everything back when anything in it raises, so a failed write leaves nothing behind.
"""
from __future__ import annotations

import contextlib
import functools
import re
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import Connection, Engine, create_engine, event, inspect, make_url, text
from sqlalchemy.orm import Session, sessionmaker

from qpo import config
from qpo.errors import MissingStoreError, QpoError, StoreError
from qpo.store import _sqlite
from qpo.store._sqlite import SQLITE_BUSY_TIMEOUT

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
#: engines of ``connect(url)`` (may create the store) and of ``connect(url, create=False)``
_ENGINES: dict[str, Engine] = {}
_READERS: dict[str, Engine] = {}
#: the SQLite file (device, inode) each cached engine was opened on
_FILES: dict[int, tuple[int, int]] = {}
#: how long a process waits for another one's migration before giving up (seconds)
MIGRATION_LOCK_TIMEOUT = 300.0
#: the PostgreSQL advisory lock key that serializes qpo's migrations (any fixed 64-bit number)
_PG_LOCK_KEY = 0x71706F5F73746F72  # "qpo_stor"
#: PostgreSQL advisory locks (transaction-scoped) around a check of the store followed by a write it
#: allows: a second writer waits for the first one's commit, then checks again and sees its rows.
#: Without one, READ COMMITTED lets both check, and the second hits a unique key (a raw database
#: error) or doubles a row. SQLite needs none: a writing transaction holds its one write lock.
PG_PEOPLE_LOCK = 0x71706F5F70656F70  # "qpo_peop": adding people (two first admins of an empty store)
PG_PORTFOLIO_NAMES_LOCK = 0x71706F5F6E616D65  # "qpo_name": a portfolio created or renamed
PG_VALUATIONS_LOCK = 0x71706F5F76616C75  # "qpo_valu": a date's valuations replaced (delete, insert)
PG_BOOK_RISK_LOCK = 0x71706F5F7269736B  # "qpo_risk": a date's book risk replaced, its alerts synced
PG_MARKET_BARS_LOCK = 0x71706F5F62617273  # "qpo_bars": bars written (a re-adjustment reads, then scales)
CREATE_HINT = ("create it with `qpo db upgrade` (an empty store) or `qpo db seed` (with the four demo "
               "portfolios), or set QPO_DATABASE_URL to your store")


def _alembic_config(engine: Engine | None = None):
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    if engine is not None:
        # ConfigParser interpolates %: escape it (URL-encoded options hold %3D and the like)
        cfg.set_main_option("sqlalchemy.url", engine.url.render_as_string(hide_password=False).replace("%", "%%"))
    return cfg


def _normalize(url: str) -> str:
    return "postgresql+psycopg://" + url[len("postgresql://"):] if url.startswith("postgresql://") else url


#: query keys of a URL whose value is a secret (libpq takes ``?password=``, as SQLAlchemy passes
#: query keys to the driver): lower case, compared case-blind
SECRET_QUERY_KEYS = frozenset({"password", "sslpassword", "pass", "pwd", "passwd", "token", "secret",
                               "api_key", "apikey", "access_token"})


def safe_url(url: str) -> str:
    """``url`` with its password hidden (for messages): the one before the host and any secret
    query value (``?password=...``: :data:`SECRET_QUERY_KEYS`)."""
    try:
        parsed = make_url(url)
        query = {k: ("***" if k.lower() in SECRET_QUERY_KEYS else v) for k, v in parsed.query.items()}
        return parsed.set(query=query).render_as_string(hide_password=True).replace("%2A%2A%2A", "***")
    except Exception:  # noqa: BLE001 - not a URL at all: show no more than the part after any '@', no query
        return url.split("@")[-1].split("?")[0]


def url_secrets(url: str) -> list[str]:
    """The secrets written in ``url`` (its password, secret query values), as written and
    URL-quoted, for taking them out of a driver's message; none when it is no URL."""
    from urllib.parse import quote as urlquote
    from urllib.parse import unquote

    try:
        parsed = make_url(url)
    except Exception:  # noqa: BLE001 - not a URL: nothing to take from it
        return []
    found = [parsed.password or ""]
    for k, v in parsed.query.items():
        if k.lower() in SECRET_QUERY_KEYS:
            found += list(v) if isinstance(v, tuple) else [v]
    out = {x for s in found if s for x in (str(s), urlquote(str(s), safe=""), unquote(str(s)))}
    return sorted(out - {""}, key=len, reverse=True)


def sqlite_path(url: str) -> Path | None:
    """The file of a SQLite ``url``; None for another database or an in-memory one."""
    try:
        parsed = make_url(_normalize(url))
    except Exception:  # noqa: BLE001 - not a URL: the engine creation reports it
        return None
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:" \
            or parsed.database.startswith("file:"):
        return None
    return Path(parsed.database)


def _make_engine(url: str, *, create: bool = True) -> Engine:
    url = _normalize(url)
    path = sqlite_path(url)
    kwargs: dict[str, object] = {}
    if path is not None:
        if create:
            path.parent.mkdir(parents=True, exist_ok=True)
        else:  # SQLite creates a missing file on connect unless told mode=rw
            kwargs["creator"] = _sqlite.existing_file_creator(path)
    if path is not None and "creator" not in kwargs:
        kwargs["connect_args"] = {"timeout": SQLITE_BUSY_TIMEOUT}
    engine = create_engine(url, future=True, pool_pre_ping=True, **kwargs)
    if engine.dialect.name == "sqlite":

        @event.listens_for(engine, "connect")
        def _fk_on(dbapi_conn, _record):  # SQLite enforces foreign keys only when asked
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        if path is not None:
            @event.listens_for(engine, "handle_error")
            def _damaged(context):  # any statement on a damaged file: name the file, not the SQL
                if _sqlite.is_corruption(context.original_exception):
                    raise _sqlite.corrupt(path, f"SQLite says {context.original_exception}") \
                        from context.original_exception

    return engine


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Run the Alembic migrations up to ``revision`` on ``engine``'s database.

    On SQLite, foreign keys are off while a migration runs (a migration that rebuilds a table drops
    the old one, which would cascade to its children) and checked once it is done, before commit."""
    if engine.dialect.name != "sqlite":
        with engine.begin() as conn:
            _upgrade_on(conn, revision)
        return
    with engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA foreign_keys=OFF")  # outside a transaction, or SQLite ignores it
        conn.commit()
        try:
            with conn.begin():
                _upgrade_on(conn, revision)
                broken = conn.exec_driver_sql("PRAGMA foreign_key_check").all()
                if broken:
                    raise StoreError(f"the migration left {len(broken)} row(s) whose parent is missing (first: "
                                     f"{tuple(broken[0])}); nothing was changed")
        finally:
            conn.exec_driver_sql("PRAGMA foreign_keys=ON")
            conn.commit()


def _upgrade_on(conn: Connection, revision: str = "head") -> None:
    from alembic import command

    cfg = _alembic_config(conn.engine)
    cfg.attributes["connection"] = conn
    command.upgrade(cfg, revision)


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision() -> str:
    """The newest revision of qpo's migrations."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
    if head is None:  # pragma: no cover - the package ships its migrations
        raise StoreError(f"no migrations found in {MIGRATIONS}")
    return head


def _known_revisions() -> set[str]:
    from alembic.script import ScriptDirectory

    return {s.revision for s in ScriptDirectory.from_config(_alembic_config()).walk_revisions()}


_REVISION_LINE = re.compile(r"""^(revision|down_revision)\s*(?::[^=\n]*)?=\s*(None|"[^"\n]*"|'[^'\n]*')\s*$""", re.M)


@functools.cache
def _head_from_files() -> str | None:
    """The head revision read from the migration files' own ``revision`` / ``down_revision`` lines,
    without importing alembic (about 0.2 s of every reader's start: a dashboard kernel, a command);
    None when the files cannot be read that way (alembic then decides)."""
    revisions, downs = set(), set()
    for path in sorted((MIGRATIONS / "versions").glob("*.py")):
        found = dict(_REVISION_LINE.findall(path.read_text()))
        if "revision" not in found or found["revision"] == "None":
            return None
        revisions.add(found["revision"].strip("'\""))
        if found.get("down_revision", "None") != "None":
            downs.add(found["down_revision"].strip("'\""))
    heads = revisions - downs
    return heads.pop() if len(heads) == 1 else None


def _at_head(engine: Engine) -> bool:
    """Whether the store's ``alembic_version`` names the head revision (read with plain SQL)."""
    from sqlalchemy.exc import DBAPIError

    head = _head_from_files()
    if head is None:
        return False
    try:
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    except DBAPIError:  # no such table yet: a fresh store
        return False
    return list(rows) == [head]


def _migrate(engine: Engine) -> None:
    """Bring the schema to head, once: a store already there is left alone (no lock taken, and
    alembic not even imported); a fresh or older one is migrated by one process while the others
    wait, then find it at head."""
    if _at_head(engine):
        return
    current = current_revision(engine)
    if current == head_revision():
        return
    if current is not None and current not in _known_revisions():
        raise StoreError(f"the database at {safe_url(str(engine.url))} is at revision {current!r}, which qpo's "
                         f"migrations do not know (revisions: {sorted(_known_revisions())}): it is not a qpo "
                         "store, or one from a newer qpo")
    path = sqlite_path(str(engine.url))
    if path is not None:
        from filelock import FileLock, Timeout

        lock = Path(f"{path}.lock")
        try:
            with FileLock(lock, timeout=MIGRATION_LOCK_TIMEOUT):
                upgrade(engine)  # alembic does nothing when a process before us got there
        except Timeout as exc:
            raise StoreError(f"another process has been migrating the store {path} for {MIGRATION_LOCK_TIMEOUT:.0f} s "
                             f"(it holds {lock}; the lock goes when that process ends): wait for it, or stop "
                             "it") from exc
    elif engine.dialect.name == "postgresql":
        with engine.begin() as conn:  # held until this transaction ends: the others then see head
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})
            _upgrade_on(conn)
    else:
        _upgrade_with_retry(engine)


def _upgrade_with_retry(engine: Engine, attempts: int = 3) -> None:
    """Migrate a database that qpo has no lock for (an in-memory SQLite, another dialect);
    when another process's DDL wins a race, wait and find the schema at head."""
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


def _file_id(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_dev, st.st_ino


def _cached(cache: dict[str, Engine], url: str, path: Path | None) -> Engine | None:
    """The cached engine for ``url``, unless its SQLite file was deleted or replaced since: its
    pooled connections would still read (and write) the old file, so it is dropped."""
    engine = cache.get(url)
    if engine is not None and path is not None and _FILES.get(id(engine)) != _file_id(path):
        del cache[url]
        _FILES.pop(id(engine), None)
        engine.dispose()
        engine = None
    return engine


def _remember(cache: dict[str, Engine], url: str, engine: Engine, path: Path | None) -> Engine:
    cache[url] = engine
    if path is not None:
        file_id = _file_id(path)
        if file_id is not None:
            _FILES[id(engine)] = file_id
    return engine


def _open(url: str, *, migrate: bool, create: bool) -> Engine:
    path = sqlite_path(url)
    if path is not None and path.exists():
        _sqlite.check_file(path)
    if not create:
        if path is not None and not path.is_file():
            raise MissingStoreError(f"no store at {safe_url(url)}: the file {path} does not exist, and nothing "
                                    f"was created; {CREATE_HINT}")
        engine = _cached(_READERS, url, path) or _remember(_READERS, url, _make_engine(url, create=False), path)
        with engine.connect() as conn:
            has_schema = inspect(conn).has_table("alembic_version")
        if not has_schema:
            raise MissingStoreError(f"no store at {safe_url(url)}: the database holds no qpo schema (no "
                                    f"alembic_version table); {CREATE_HINT}")
        if migrate:
            _migrate(engine)
        return engine
    writer = _cached(_ENGINES, url, path)
    if writer is None:
        writer = _make_engine(url)
        if migrate:
            _migrate(writer)
        _remember(_ENGINES, url, writer, path)
    return writer


def connect(url: str | None = None, *, migrate: bool = True, create: bool = True) -> Engine:
    """Engine for ``url`` (default: ``QPO_DATABASE_URL`` or the SQLite file in ``QPO_HOME``),
    migrated to the newest schema. Engines are cached per URL.

    ``create=False`` is for entry points that read: a store that does not exist (no SQLite file,
    or a database without qpo's schema) raises :class:`MissingStoreError` and nothing is created.
    A damaged SQLite file raises :class:`qpo.errors.CorruptFileError`; anything else that stops
    the store from opening (an unreachable server, a bad URL, a missing driver) a StoreError.
    """
    url = url or config.database_url()
    try:
        return _open(url, migrate=migrate, create=create)
    except QpoError:
        raise
    except Exception as exc:  # noqa: BLE001 - unreachable server, bad URL, driver missing
        path = sqlite_path(url)
        if path is not None and not create and not path.exists():  # deleted while we opened it
            raise MissingStoreError(f"no store at {safe_url(url)}: the file {path} does not exist, and nothing "
                                    f"was created; {CREATE_HINT}") from exc
        if path is not None and _sqlite.is_corruption(exc):
            raise _sqlite.corrupt(path, f"SQLite says {getattr(exc, 'orig', exc)}") from exc
        said = str(exc)
        for secret in url_secrets(url):
            said = said.replace(secret, "***")
        raise StoreError(f"cannot open the store at {safe_url(url).split('@')[-1]!r}: "
                         f"{exc.__class__.__name__}: {said}".strip()) from exc


def store_exists(url: str | None = None) -> bool:
    """Whether a qpo store is at ``url`` (default: the configured one), without creating anything."""
    try:
        connect(url, migrate=False, create=False)
    except MissingStoreError:
        return False
    return True


def one_writer(executor: Session | Connection, key: int) -> None:
    """Wait, inside the transaction of ``executor`` (a session or a connection), until no other
    transaction holds the advisory lock ``key`` (PostgreSQL; on SQLite nothing to do)."""
    dialect = executor.dialect if isinstance(executor, Connection) else executor.get_bind().dialect
    if dialect.name == "postgresql":
        executor.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": key})


@contextlib.contextmanager
def session_scope(engine: Engine | None = None, *, write: bool = True) -> Iterator[Session]:
    """One transaction: commit on success, roll back everything on any error.

    On SQLite a transaction that may write (``write=True``, the default) takes the database's write
    lock when it begins (``BEGIN IMMEDIATE``): the checks it reads before it writes (the last admin,
    the cash and shares a ledger holds, a proposal still open) cannot change under it, and two
    writers never both read and then both fail to write ("database is locked"): the second waits
    (up to :data:`SQLITE_BUSY_TIMEOUT` seconds) and then sees the first one's rows. PostgreSQL locks
    the rows it checks (``SELECT ... FOR UPDATE``). Pages that only read pass ``write=False``."""
    engine = engine or connect()
    factory = sessionmaker(bind=engine, expire_on_commit=False)
    with factory() as session, session.begin():
        if write and engine.dialect.name == "sqlite":
            session.connection().exec_driver_sql("BEGIN IMMEDIATE")
        yield session
