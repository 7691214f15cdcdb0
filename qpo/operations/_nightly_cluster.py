"""How a nightly run of :mod:`qpo.operations.nightly` uses the Dask cluster: the store's URL the
workers open, the book cut into chunks, the chunks computed (the big arguments scattered once),
the cluster started or the given client used, and the time of each phase."""
from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import pandas as pd

from qpo.errors import InvalidValueError

#: chunks per worker when the chunk size is not given, and the bounds of a chunk
CHUNKS_PER_WORKER = 4
MIN_CHUNK, MAX_CHUNK = 25, 2500


def store_url(engine) -> str:
    from qpo.store.db import sqlite_path

    url = engine.url.render_as_string(hide_password=False)
    if engine.dialect.name == "sqlite" and sqlite_path(url) is None:
        raise InvalidValueError("the nightly runs need a store the Dask workers can open: a SQLite file or a "
                                "database server, not an in-memory SQLite database")
    return url


def chunks(ids: Sequence[int], workers: int, chunk_size: int | None) -> list[list[int]]:
    """``ids`` (sorted) cut into consecutive ranges: ``chunk_size`` each, or by default about
    :data:`CHUNKS_PER_WORKER` per worker, between :data:`MIN_CHUNK` and :data:`MAX_CHUNK`."""
    ids = sorted(int(i) for i in ids)
    if chunk_size is None:
        chunk_size = min(MAX_CHUNK, max(MIN_CHUNK, math.ceil(len(ids) / max(1, workers * CHUNKS_PER_WORKER))))
    elif isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        raise InvalidValueError(f"chunk_size must be a whole number of portfolios of at least 1, got {chunk_size!r}")
    return [ids[i:i + chunk_size] for i in range(0, len(ids), chunk_size)]


class Clock:
    def __init__(self):
        self.seconds: dict[str, float] = {}
        self.t0 = time.perf_counter()

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        t = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - t

    def total(self) -> dict[str, float]:
        return {**self.seconds, "total": time.perf_counter() - self.t0}


def compute(client, fn: Callable, chunks: list[list[int]], shared: tuple, log, what: str) -> list:
    """``fn(*shared, chunk)`` for every chunk on the cluster, the results in chunk order; the big
    arguments (``shared``) are scattered to every worker once."""
    from distributed import as_completed

    if not chunks:
        return []
    scattered = [client.scatter(a, broadcast=True) if isinstance(a, (pd.DataFrame, pd.Series)) else a for a in shared]
    futures = [client.submit(fn, *scattered, chunk, pure=False, key=f"{what}-{i}-{chunk[0]}-{chunk[-1]}")
               for i, chunk in enumerate(chunks)]
    order = {f.key: i for i, f in enumerate(futures)}
    results: list[Any] = [None] * len(futures)
    done = 0
    try:
        for future in as_completed(futures, loop=client.loop):
            results[order[future.key]] = future.result()  # a task's error is raised here, with its own text
            done += 1
            if done == len(futures) or done % max(1, len(futures) // 4) == 0:
                log(f"{what}: {done} of {len(futures)} chunk(s) done")
    finally:
        client.cancel(futures)
    return results


@contextmanager
def cluster(client, workers: int | None, log) -> Iterator[Any]:
    """The given client (left open), or a cluster for the run (:func:`dask_client`)."""
    from qpo.operations.cluster import cluster_info, dask_client

    if client is None:
        with dask_client(workers, log=log) as started:
            yield started
        return
    if getattr(client, "qpo_info", None) is None:
        client.qpo_info = cluster_info(client, "given")
    log(client.qpo_info.describe())
    yield client

