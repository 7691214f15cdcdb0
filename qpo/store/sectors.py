"""The sector map of the book's universe (``sectors``): one sector per ticker, loaded from a file
(``qpo data sectors FILE``, a CSV of ``ticker,sector``) and read wherever the book's names are
grouped by sector (the nightly risk run, proposals and their strategies, the dashboard).

:func:`book_sectors` is that map: the bundled map of the 20 bundled tickers, overlaid by what the
store holds. A ticker in neither has no sector: a cap on every sector does not check it (the
compliance row says so) rather than counting it in one made-up sector.
"""
from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import Engine, func, or_, select

from qpo._checks import check_symbol, quote
from qpo.data.sectors import BUNDLED_SECTORS, UNCLASSIFIED, unknown_sectors
from qpo.errors import QpoError, StoreError
from qpo.store import _inputs as check
from qpo.store.models import SectorOf

__all__ = ["book_sectors", "stored_sectors", "upsert_sectors"]


def upsert_sectors(engine: Engine, sectors: Mapping, *, source: str = "file") -> int:
    """Store ``sectors`` (ticker -> sector, e.g. :func:`qpo.load_sectors` of a CSV file), all or
    nothing: every row is checked first (a ticker symbol, a sector name of 1 to 64 characters, not
    ``Unclassified``, each ticker once, and no near miss of a GICS sector such as "Information
    technology", which would cap a sector of its own) and every problem reported at once. A ticker
    stored already gets the new sector and source. Returns the rows inserted or changed."""
    if not isinstance(sectors, Mapping):
        raise check.fail(f"the sector map must be a mapping ticker -> sector, got a {type(sectors).__name__}")
    src = check.label(source, "source", check.LABEL32)
    problems: list[str] = []
    rows: dict[str, str] = {}
    seen_twice: list[str] = []
    for i, (ticker, sector) in enumerate(sectors.items(), start=1):
        try:
            t = check_symbol(ticker, error=StoreError)
            s = check.label(sector, f"the sector of {t}", check.LABEL64)
        except QpoError as exc:
            problems.append(f"row {i}: {exc}")
            continue
        if s.casefold() == UNCLASSIFIED.casefold():
            problems.append(f"row {i}: {t} is given the sector {quote(s)}: leave a ticker without a sector out of the "
                            "map instead")
            continue
        if t in rows:
            seen_twice.append(t)
            continue
        rows[t] = s
    if seen_twice:
        problems.append(f"tickers given twice: {check.names_list(sorted(set(seen_twice)))}; give each one sector")
    near = [(n, g) for n, g in unknown_sectors(sorted(set(rows.values()))) if g is not None]
    if near:
        problems += [f"the sector {quote(n)} is a near miss of {quote(g)}: write it {quote(g)}" for n, g in near]
    if not rows and not problems:
        problems.append("the map holds no ticker")
    if problems:
        raise check.report("the sector map", problems)
    from qpo.store.market_data import _insert

    table = SectorOf.__table__
    stmt = _insert(engine)(table)
    stmt = stmt.on_conflict_do_update(
        index_elements=["ticker"], set_={"sector": stmt.excluded.sector, "source": stmt.excluded.source,
                                         "updated_at": func.now()},
        where=or_(table.c.sector.is_distinct_from(stmt.excluded.sector),
                  table.c.source.is_distinct_from(stmt.excluded.source))).returning(table.c.ticker)
    values = [{"ticker": t, "sector": s, "source": src} for t, s in rows.items()]
    written = 0
    with engine.begin() as conn:
        for start in range(0, len(values), 5_000):
            written += len(conn.execute(stmt, values[start:start + 5_000]).all())
    return written


def stored_sectors(engine: Engine) -> dict[str, str]:
    """The store's map: ticker -> sector (empty when none was loaded)."""
    with engine.connect() as conn:
        return {str(t): str(s) for t, s in conn.execute(select(SectorOf.ticker, SectorOf.sector))}


def book_sectors(engine: Engine | None = None) -> dict[str, str]:
    """The book's sector map: the bundled map of the 20 bundled tickers, overlaid by the store's
    (``engine``, default the configured store; the bundled map alone when there is no store)."""
    from qpo.errors import MissingStoreError

    out = dict(BUNDLED_SECTORS)
    try:
        if engine is None:
            from qpo.store.db import connect

            engine = connect(create=False)
        out.update(stored_sectors(engine))
    except MissingStoreError:
        pass
    return out
