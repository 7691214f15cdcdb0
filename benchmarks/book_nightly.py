"""The nightly book on Dask, measured on this machine and written to
``benchmarks/results/book_nightly.{json,md}``.

A synthetic book (:func:`qpo.book.synthetic.seed_book`, 20 to 500 names a portfolio for this
benchmark instead of its default 5 to 60) is seeded into a fresh SQLite store whose market data is
three years of daily closes (757 dates) of the ~500 S&P 500 names of ``../shared/data`` that have a
price on every one of those days, with their GICS sectors (``sp500_sectors.csv``, stored as
``qpo data sectors`` stores a map, so sector caps check real sectors), or the bundled 20-name panel
when the shared data is absent or ``--skip-shared``. Then the two nightly runs, as ``qpo nightly value`` and ``qpo nightly risk``
run them: :func:`qpo.operations.nightly.run_valuation` and :func:`~qpo.operations.nightly.run_risk`
(delivery off, the book report written), each on a fresh local Dask cluster of 1 and of 2
one-thread worker processes. Measured: the wall time of each run and of its phases (prices,
cluster start, compute on the workers, write, report), and the peak memory of the whole process
tree (this process and the Dask scheduler's and workers' processes, resident set sampled every
0.1 s); the speed-up from 1 to 2 workers and the growth from 1,000 to 10,000 portfolios. The goal:
10,000 portfolios valued and risk-checked in under 60 s on this 2-core machine.

``--smoke``: 40 portfolios of 20 names on the bundled panel, 2 workers (seconds); ``--quick``:
1,000 portfolios only.

Usage: ``python -m benchmarks.book_nightly [--smoke | --quick] [--skip-shared] [--out DIR]``
"""
from __future__ import annotations

import contextlib
import os
import tempfile
import threading
import time
from pathlib import Path

from benchmarks._common import (
    BARS,
    SECTORS,
    finish,
    header,
    mode,
    parser,
    shared_closes,
    shared_data,
    start,
    write_results,
)

NAME = "book_nightly"
PACKAGES = ("qpo", "dask", "distributed", "numpy", "pandas", "sqlalchemy")
WINDOW = 757  # three years of daily returns (756) and the price before them
NAMES = (20, 500)


class PeakMemory:
    """The peak resident memory of this process and all its children (the Dask cluster), sampled
    every ``interval`` seconds while the block runs."""

    def __init__(self, interval: float = 0.1):
        self.interval, self.peak, self._stop = interval, 0, threading.Event()

    def _sample(self) -> int:
        import psutil

        me = psutil.Process()
        total = 0
        for p in [me, *me.children(recursive=True)]:
            with contextlib.suppress(psutil.Error):
                total += p.memory_info().rss
        return total

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, self._sample())
            self._stop.wait(self.interval)

    def __enter__(self):
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._sample())

    @property
    def mib(self) -> float:
        return self.peak / 2 ** 20


def panel(args) -> tuple:
    """Three years of closes and their sector map: the shared names priced on every day with the
    shared sectors, else the bundled panel (whose sectors qpo ships)."""
    import qpo

    why = shared_data(args, BARS, SECTORS)
    if why is None and mode(args) != "smoke":
        closes = shared_closes().iloc[-WINDOW:]
        closes = closes.loc[:, closes.notna().all()]
        return (closes, f"../shared/data: {closes.shape[1]} names priced on each of the last {WINDOW} days, their "
                        "GICS sectors stored", qpo.load_sectors(str(SECTORS)))
    closes = qpo.load_prices("sp500").iloc[-WINDOW:]
    return closes, "the bundled panel (20 names)" + (f"; shared data {why}" if why else ""), None


@contextlib.contextmanager
def names_per_portfolio(lo: int, hi: int):
    """seed_book's names a portfolio set to ``lo``-``hi`` for the block."""
    from qpo.book import synthetic

    old = synthetic.MIN_NAMES, synthetic.MAX_NAMES
    synthetic.MIN_NAMES, synthetic.MAX_NAMES = lo, hi
    try:
        yield
    finally:
        synthetic.MIN_NAMES, synthetic.MAX_NAMES = old


def build_store(folder: Path, n: int, closes, sectors, lo: int, hi: int) -> dict:
    from qpo.book.synthetic import seed_book
    from qpo.store import connect
    from qpo.store.market_data import upsert_panel
    from qpo.store.sectors import upsert_sectors

    url = f"sqlite:///{folder / 'store.db'}"
    engine = connect(url)
    if sectors is not None:
        upsert_sectors(engine, sectors, source="benchmark")
    t0 = time.perf_counter()
    rows = upsert_panel(engine, closes, source="benchmark")
    t1 = time.perf_counter()
    with names_per_portfolio(lo, min(hi, closes.shape[1])):
        summary = seed_book(engine, n, seed=1, prices=closes)
    t2 = time.perf_counter()
    return {"engine": engine, "url": url, "bars": rows, "load_bars_s": t1 - t0, "seed_s": t2 - t1,
            "transactions": summary.transactions, "names_min": summary.names_min, "names_max": summary.names_max}


def one_pass(engine, workers: int, report_dir: Path) -> dict:
    """Valuation then risk of the book on a fresh cluster of ``workers`` processes each."""
    from qpo.operations.nightly import run_risk, run_valuation

    out: dict = {"workers": workers}
    with PeakMemory() as mem:
        t0 = time.perf_counter()
        val = run_valuation(engine=engine, workers=workers)
        t1 = time.perf_counter()
        risk = run_risk(engine=engine, workers=workers, deliver=False, report_dir=report_dir)
        t2 = time.perf_counter()
    out.update(valuation_s=t1 - t0, risk_s=t2 - t1, total_s=t2 - t0, peak_mib=mem.mib,
               valuation_phases=val.seconds, risk_phases=risk.seconds, valued=val.valued, unpriced=val.unpriced,
               risk_checked=risk.portfolios, skipped=len(risk.skipped), breaches=risk.breaches,
               new_alerts=risk.new_alerts, chunks=risk.chunks, as_of=str(val.as_of))
    return out


def run_size(n: int, closes, sectors, worker_counts, lo: int, hi: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="qpo-bench-book-") as folder:
        folder = Path(folder)
        os.environ["QPO_HOME"] = str(folder)
        built = build_store(folder, n, closes, sectors, lo, hi)
        engine = built.pop("engine")
        passes = []
        for w in worker_counts:
            print(f"  {n:,} portfolios, {w} worker(s)", flush=True)
            passes.append(one_pass(engine, w, folder / "reports"))
            print(f"    valuation {passes[-1]['valuation_s']:.1f} s, risk {passes[-1]['risk_s']:.1f} s, "
                  f"peak {passes[-1]['peak_mib']:.0f} MiB", flush=True)
        engine.dispose()
    built.pop("url")
    by = {p["workers"]: p for p in passes}
    out = {"portfolios": n, "store": built, "passes": passes}
    if 1 in by and 2 in by:
        out["speedup_1_to_2"] = by[1]["total_s"] / by[2]["total_s"]
    return out


def markdown(r: dict) -> str:
    lines = header(r, "The nightly book on Dask: valuation and risk", NAME,
                   f"Prices: {r['prices']}. A fresh SQLite store per size; each pass starts its own local "
                   "Dask cluster.")
    lines += ["", "| portfolios | names | ledger rows | workers | valuation | risk | total | peak memory (tree) | "
              "breaches | skipped |", "|---|---|---|---|---|---|---|---|---|---|"]
    for size in r["sizes"]:
        s = size["store"]
        for p in size["passes"]:
            lines.append(f"| {size['portfolios']:,} | {s['names_min']}-{s['names_max']} | {s['transactions']:,} | "
                         f"{p['workers']} | {p['valuation_s']:.1f} s | {p['risk_s']:.1f} s | {p['total_s']:.1f} s | "
                         f"{p['peak_mib']:,.0f} MiB | {p['breaches']:,} | {p['skipped']} |")
    lines += ["", "Phases (seconds) of the 2-worker passes:", ""]
    for size in r["sizes"]:
        for p in size["passes"]:
            if p["workers"] == max(q["workers"] for q in size["passes"]):
                v = ", ".join(f"{k} {x:.1f}" for k, x in p["valuation_phases"].items())
                k = ", ".join(f"{k} {x:.1f}" for k, x in p["risk_phases"].items())
                lines.append(f"- {size['portfolios']:,}: valuation ({v}); risk ({k})")
    lines.append("")
    for size in r["sizes"]:
        if "speedup_1_to_2" in size:
            lines.append(f"- speed-up from 1 to 2 workers at {size['portfolios']:,} portfolios: "
                         f"{size['speedup_1_to_2']:.2f}x")
    if "growth" in r:
        g = r["growth"]
        lines.append(f"- from {g['from']:,} to {g['to']:,} portfolios ({g['to'] / g['from']:.0f}x) with 2 workers the "
                     f"total time grew {g['time_ratio']:.1f}x")
    if "goal_10000_under_60s" in r:
        lines.append(f"- goal, 10,000 portfolios valued and risk-checked in under 60 s: "
                     f"{'met' if r['goal_10000_under_60s'] else 'NOT met'}")
    lines.append("- store setup (not timed above): " + "; ".join(
        f"{s['portfolios']:,}: bars {s['store']['load_bars_s']:.1f} s, seeding {s['store']['seed_s']:.1f} s"
        for s in r["sizes"]))
    return "\n".join(lines)


def main(argv=None) -> int:
    args = parser(__doc__).parse_args(argv)
    t_start = time.perf_counter()
    results = start(args, PACKAGES)
    home = os.environ.get("QPO_HOME")
    closes, results["prices"], sectors = panel(args)
    m = mode(args)
    plan = {"smoke": [(40, (2,))], "quick": [(1000, (1, 2))], "full": [(1000, (1, 2)), (10_000, (1, 2))]}[m]
    lo, hi = (20, 20) if m == "smoke" else NAMES
    try:
        results["sizes"] = [run_size(n, closes, sectors, workers, lo, hi) for n, workers in plan]
    finally:
        if home is None:
            os.environ.pop("QPO_HOME", None)
        else:
            os.environ["QPO_HOME"] = home
    two = {s["portfolios"]: next(p for p in s["passes"] if p["workers"] == max(q["workers"] for q in s["passes"]))
           for s in results["sizes"]}
    if 1000 in two and 10_000 in two:
        results["growth"] = {"from": 1000, "to": 10_000, "time_ratio": two[10_000]["total_s"] / two[1000]["total_s"]}
        results["goal_10000_under_60s"] = two[10_000]["total_s"] < 60
    finish(results, t_start)
    path = write_results(args.out, NAME, results, markdown(results))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
