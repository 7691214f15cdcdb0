"""The book's prices as the advisor dashboard reads them, kept in a snapshot file per server.

Each visit's kernel reads the book's prices (:func:`qpo.store.market_data.book_prices`, the actual
closes beside them and the S&P 500), about a second for the store's whole panel. The dashboard's
server (:mod:`qpo.workbench.dashboard_server`) reads them once when it starts and writes them to
``$QPO_HOME/cache/book-prices-<key>.npz`` (:func:`snapshot_path`: one file per store and first
date), keyed by the store's :func:`fingerprint`; a kernel then loads that file instead when the
store's fingerprint (one aggregate query of ``market_data``) is the file's, else reads the store as
before and writes the file again for the next visits.

The fingerprint is the bars' count, first and last dates, newest ``updated_at`` and the sums of the
adjusted and of the actual closes: a day ingested, a bar corrected, removed or re-adjusted (a
re-adjustment rewrites closes without moving ``updated_at``) changes it, so a newer day is always
the day shown. It is taken before the store is read, and the file is written only when it is the
same after the read: a file never claims a newer store than the prices it holds. A file that
cannot be read (missing, truncated, corrupt: the zip's checksums are checked as it is read, and
no pickled object is ever loaded) or that holds another fingerprint, first date, format or qpo
version is no snapshot: the store is read. Only the store's prices are kept (never the bundled
panel of a store without market data), and nothing is written where there is no store. Market
data is public, not client data: one file serves every person signed in.

``python -m qpo.workbench.price_snapshot`` writes the file (what the server runs before it serves).
"""
from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

#: the folder of cached files under ``QPO_HOME``
CACHE_DIR = "cache"
#: the first date the advisor dashboard reads prices from (``AdvisorDashboard``'s ``history_start``)
DEFAULT_START = "2000-01-01"
#: the snapshot file's layout (a new layout: the old files are not read)
FORMAT = 1


@dataclass(frozen=True)
class BookPanel:
    """The book's adjusted closes and where they came from (``"store"`` or ``"bundled"``), its
    actual closes (``closes``; ``prices`` itself when they do not differ) and the S&P 500 level."""

    prices: pd.DataFrame
    origin: str
    closes: pd.DataFrame
    benchmark: pd.Series


def fingerprint(engine) -> str | None:
    """The store's bars in one line (one aggregate query, no panel read), None when it holds none."""
    from sqlalchemy import func, select

    from qpo.store.models import MarketBar

    bar = MarketBar
    q = select(func.count(), func.min(bar.date), func.max(bar.date), func.max(bar.updated_at),
               func.sum(bar.adjusted_close), func.sum(func.coalesce(bar.close, bar.adjusted_close)))
    with engine.connect() as conn:
        row = tuple(conn.execute(q).one())
    if not row[0]:
        return None
    # sums to 1e-6: a parallel sum (PostgreSQL) may differ in its last bits from one call to the next
    return "|".join(f"{float(v):.6f}" if isinstance(v, float) else str(v) for v in row)


def _first(start) -> str:
    return "" if start is None else str(pd.Timestamp(start).date())


def snapshot_path(engine, start=DEFAULT_START) -> Path:
    """The snapshot file of the store of ``engine`` read from ``start`` (nothing is created)."""
    from qpo import config

    env = os.environ.get("QPO_HOME")
    home = Path(env).resolve() if env else config.project_root()
    where = engine.url.render_as_string(hide_password=True)  # never a password, not even hashed
    key = hashlib.sha256(f"{where}|{_first(start)}".encode()).hexdigest()[:16]
    return home / CACHE_DIR / f"book-prices-{key}.npz"


def read_store(engine, start=DEFAULT_START) -> BookPanel:
    """The book's prices read from the store (the bundled panel while it holds no bar), as the
    dashboard has always read them."""
    from qpo.store.market_data import book_benchmark, book_prices
    from qpo.workbench._overview import actual_closes

    prices, origin = book_prices(engine, start=start)
    closes = actual_closes(engine, prices, origin)  # what shares are worth: the day's change
    return BookPanel(prices, origin, closes, book_benchmark(engine, start=start))


def _version() -> str:
    import qpo

    return str(getattr(qpo, "__version__", ""))


def save(panel: BookPanel, mark: str, path: Path, start=DEFAULT_START) -> None:
    """Write ``panel`` (the store's, with its fingerprint ``mark``) to ``path``: a temporary file
    beside it, then renamed over it, so a reader sees the old file or the new one, never half."""
    prices, bench = panel.prices, panel.benchmark
    same = panel.closes is prices
    arrays = {"format": np.array(FORMAT), "version": np.array(_version()), "fingerprint": np.array(mark),
              "start": np.array(_first(start)), "origin": np.array(panel.origin),
              "dates": prices.index.to_numpy(), "tickers": np.array([str(c) for c in prices.columns], dtype=str),
              "prices": prices.to_numpy(dtype="float64"), "same_closes": np.array(same),
              "closes": np.empty((0, 0)) if same else panel.closes.to_numpy(dtype="float64"),
              "bench_dates": bench.index.to_numpy(), "bench": bench.to_numpy(dtype="float64"),
              "bench_index_name": np.array(str(bench.index.name or "")),
              "bench_origin": np.array(str(bench.attrs.get("origin", "")))}
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            np.savez(out, **arrays)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load(path: Path, mark: str, start=DEFAULT_START) -> BookPanel | None:
    """The panel in ``path`` when it holds the store's fingerprint ``mark`` (and this layout, this
    qpo's version, the first date ``start``), else None: also when it is missing or cannot be read."""
    try:
        with np.load(path, allow_pickle=False) as z:
            if (int(z["format"]) != FORMAT or str(z["fingerprint"]) != mark or str(z["start"]) != _first(start)
                    or str(z["version"]) != _version()):
                return None
            dates, tickers, values = z["dates"], [str(t) for t in z["tickers"].tolist()], z["prices"]
            bench_dates, bench = z["bench_dates"], z["bench"]
            if (dates.dtype.kind != "M" or bench_dates.dtype.kind != "M" or values.shape != (len(dates), len(tickers))
                    or bench.shape != bench_dates.shape):
                return None
            index = pd.DatetimeIndex(dates, name="date")
            prices = pd.DataFrame(values, index=index, columns=pd.Index(tickers))
            closes = prices
            if not bool(z["same_closes"]):
                if z["closes"].shape != values.shape:
                    return None
                closes = pd.DataFrame(z["closes"], index=index, columns=pd.Index(tickers))
            level = pd.Series(bench, index=pd.DatetimeIndex(bench_dates, name=str(z["bench_index_name"]) or None),
                              name="SP500")
            level.attrs["origin"] = str(z["bench_origin"])
            origin = str(z["origin"])
    except Exception:  # noqa: BLE001 - a file that cannot be read (truncated, corrupt, not ours) is no snapshot
        return None
    return BookPanel(prices, origin, closes, level)


def book_panel(engine, start=DEFAULT_START, *, write: bool = True) -> BookPanel:
    """The book's prices from ``start``: the snapshot when it holds the store's current bars (one
    query), else read from the store (and, ``write``, kept in the snapshot for the next reads)."""
    from qpo.store.market_data import STORE

    mark = fingerprint(engine)  # before the read: the file never claims a newer store than it holds
    path = snapshot_path(engine, start)
    if mark is not None:
        kept = load(path, mark, start)
        if kept is not None:
            return kept
    panel = read_store(engine, start)
    if (write and mark is not None and panel.origin == STORE and not panel.prices.empty
            and fingerprint(engine) == mark):  # no bar written meanwhile
        try:
            save(panel, mark, path, start)
        except OSError:  # a read-only or full disk: the next reads go to the store
            pass
    return panel


def main() -> int:
    """Write the snapshot of the configured store (nothing where there is no store). Says what
    it did in one line; 1 when the store could not be read."""
    import time

    from qpo.errors import MissingStoreError, QpoError
    from qpo.store import connect

    began = time.perf_counter()
    try:
        engine = connect(create=False)
        mark = fingerprint(engine)
        if mark is None:
            print("no price snapshot: the store holds no market data (the bundled panel is read)")
            return 0
        panel = book_panel(engine)
    except MissingStoreError:
        print("no price snapshot: there is no store")
        return 0
    except QpoError as exc:
        print(f"no price snapshot: {exc}")
        return 1
    except Exception as exc:  # noqa: BLE001 - a driver's text may hold the store's URL: its kind only
        print(f"no price snapshot: {type(exc).__name__}")
        return 1
    p = panel.prices
    if p.empty:
        print("no price snapshot: the store's panel is empty")
        return 0
    print(f"price snapshot: {p.shape[0]} dates x {p.shape[1]} tickers to {p.index[-1].date()} "
          f"in {time.perf_counter() - began:.2f} s ({snapshot_path(engine)})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
