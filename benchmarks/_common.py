"""What every benchmark script shares: paths, the command line, the timer, the machine and
version records, subprocess workers and the result writer.

A script is a module of :mod:`benchmarks` run from the project root
(``python -m benchmarks.<script> [--smoke | --quick] [--out DIR]``). It builds its parser with
:func:`parser`, times with :func:`timeit`, records :func:`machine` and :func:`versions`, and
writes ``<out>/<name>.json`` and ``<out>/<name>.md`` with :func:`write_results`. ``--out``
defaults to ``benchmarks/results/`` (the committed figures); the smoke test writes to a
temporary directory.
"""
from __future__ import annotations

import argparse
import functools
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
PY = sys.executable
SHARED = ROOT.parent / "shared" / "data"
BARS = SHARED / "sp500_daily_adjusted.parquet"
SECTORS = SHARED / "sp500_sectors.csv"
MODES = ("smoke", "quick", "full")


# -- command line ---------------------------------------------------------------------------------
def parser(doc: str | None, *, shared: bool = True) -> argparse.ArgumentParser:
    """The options every script takes: ``--smoke`` (tiny sizes, seconds: the suite runs it),
    ``--quick`` (fewer repeats), ``--out`` and, when the script reads ``../shared/data``,
    ``--skip-shared``."""
    ap = argparse.ArgumentParser(description=(doc or "").split("\n\n")[0])
    size = ap.add_mutually_exclusive_group()
    size.add_argument("--smoke", action="store_true", help="tiny sizes, one run each: checks the script works")
    size.add_argument("--quick", action="store_true", help="fewer repeats and sizes than the full run")
    ap.add_argument("--out", type=Path, default=RESULTS, help=f"where to write the results (default {RESULTS})")
    if shared:
        ap.add_argument("--skip-shared", action="store_true", help="do not read ../shared/data")
    return ap


def mode(args: argparse.Namespace) -> str:
    """``"smoke"``, ``"quick"`` or ``"full"``."""
    return "smoke" if getattr(args, "smoke", False) else "quick" if getattr(args, "quick", False) else "full"


def shared_data(args: argparse.Namespace, *paths: Path) -> str | None:
    """None when the shared data can be read, else why a section that needs it is skipped."""
    if getattr(args, "skip_shared", False):
        return "skipped (--skip-shared)"
    missing = [str(p) for p in (paths or (BARS,)) if not p.exists()]
    if missing:
        return f"skipped: {', '.join(missing)} not found (the shared data set lives beside the project)"
    return None


@functools.cache
def shared_closes():
    """The adjusted closes of ``../shared/data`` (``qpo.ohlcv_to_prices(qpo.load_ohlcv(BARS))``),
    read once per process: several scripts share it when the smoke runner runs them together.
    The same frame every call: slice or copy it, never change it in place."""
    import qpo

    return qpo.ohlcv_to_prices(qpo.load_ohlcv(BARS))


def module_name(file: str) -> str:
    """``benchmarks.<script>`` of a script's ``__file__``."""
    return f"benchmarks.{Path(file).stem}"


# -- timing ---------------------------------------------------------------------------------------
def timeit(fn: Callable, repeats: int, setup: Callable | None = None) -> dict:
    """``fn`` once (cold, reported as ``first_s``), then ``repeats`` times; ``setup`` (untimed)
    makes ``fn``'s argument afresh before every call. Returns the times and the last output
    (``output``; :func:`strip` drops it). With ``repeats=0`` the medians are the first call."""
    def once():
        arg = setup() if setup is not None else None
        t0 = time.perf_counter()
        out = fn(arg) if setup is not None else fn()
        return time.perf_counter() - t0, out

    first, out = once()
    times = []
    for _ in range(repeats):
        t, out = once()
        times.append(t)
    return {"first_s": first, "median_s": statistics.median(times) if times else first,
            "min_s": min(times) if times else first, "max_s": max(times) if times else first,
            "repeats": len(times), "output": out}


def strip(d: dict) -> dict:
    """``d`` without its ``output``."""
    return {k: v for k, v in d.items() if k != "output"}


# -- records --------------------------------------------------------------------------------------
def versions(packages) -> dict:
    """Installed version of each distribution (None when absent)."""
    from importlib.metadata import PackageNotFoundError, version

    out: dict[str, str | None] = {}
    for name in packages:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    return out


def loadavg() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def machine() -> dict:
    """CPU, usable CPUs, platform, Python, thread variables and the load average now."""
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count() or 1
    threads = {k: os.environ[k] for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
               if k in os.environ}
    return {"cpu": cpu, "cpu_count": os.cpu_count(), "cpus_usable": usable, "platform": platform.platform(),
            "python": platform.python_version(), "thread_env": threads, "load_average_start": loadavg()}


def machine_line(m: dict) -> str:
    return f"{m['cpu']}, {m['cpu_count']} logical CPUs ({m['cpus_usable']} usable), {m['platform']}"


def loaded(m: dict) -> bool:
    """Whether other work shared the CPUs (load average above half of them at the start, or
    above one more than that at the end: the benchmark keeps about one CPU busy itself)."""
    half = 0.5 * (m.get("cpus_usable") or 1)
    return (m.get("load_average_start") or [0])[0] > half or (m.get("load_average_end") or [0])[0] > 1 + half


def header(r: dict, title: str, script: str, what: str) -> list[str]:
    """The first lines of a results page: title, when and how, machine, versions, load."""
    m, v = r["machine"], r.get("versions", {})
    return [f"# {title}", "",
            f"Measured {r['date']} by `python -m benchmarks.{script}` ({r['mode']} mode, total "
            f"{r['total_wall_s']:.0f} s). {what}", "",
            f"- machine: {machine_line(m)}",
            f"- Python {m['python']}; " + ", ".join(f"{k} {val}" for k, val in v.items() if val),
            f"- load average (1, 5, 15 min) at start {m.get('load_average_start')}, at end "
            f"{m.get('load_average_end')}"
            + (" - other work shared the CPUs: absolute times are inflated and noisier than on an idle machine"
               if loaded(m) else "")]


def start(args: argparse.Namespace, packages) -> dict:
    """The record a run starts with: date, mode, machine, versions."""
    return {"date": time.strftime("%Y-%m-%d %H:%M"), "mode": mode(args), "machine": machine(),
            "versions": versions(packages)}


def finish(results: dict, t_start: float) -> dict:
    results["total_wall_s"] = time.perf_counter() - t_start
    results["machine"]["load_average_end"] = loadavg()
    return results


# -- formatting -----------------------------------------------------------------------------------
def fmt(v, nd: int = 4) -> str:
    """A number to ``nd`` significant digits; None as ``-``, booleans as yes/no."""
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:.{nd}g}"
    return str(v)


def ms(v) -> str:
    """Seconds as ``12.3 ms`` or ``1.23 s``."""
    return "-" if v is None else (f"{v * 1e3:.1f} ms" if v < 1 else f"{v:.2f} s")


def json_safe(o: Any) -> Any:
    """JSON-safe: non-finite floats to None, numpy arrays and scalars to Python values, anything
    else unknown to its string."""
    if isinstance(o, dict):
        return {str(k): json_safe(v) for k, v in o.items()}
    if isinstance(o, (list, tuple, set)):
        return [json_safe(v) for v in o]
    if isinstance(o, (str, bool, int)) or o is None:
        return o
    if isinstance(o, float):
        return o if math.isfinite(o) else None
    if hasattr(o, "tolist"):  # numpy arrays and scalars
        try:
            return json_safe(o.tolist())
        except (TypeError, ValueError):
            pass
    return str(o)


# -- output ---------------------------------------------------------------------------------------
def write_results(out: Path, name: str, results: dict, markdown: str) -> Path:
    """``<out>/<name>.json`` (:func:`json_safe`) and ``<out>/<name>.md``; returns the markdown's path."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps(json_safe(results), indent=2) + "\n")
    path = out / f"{name}.md"
    path.write_text(markdown if markdown.endswith("\n") else markdown + "\n")
    return path


# -- subprocess workers ---------------------------------------------------------------------------
WORKER_PREFIX = "RESULT "


def add_worker_options(ap: argparse.ArgumentParser) -> None:
    """``--worker KIND --worker-args JSON``: run one measurement in this process and print its
    result (hidden: :func:`run_worker` uses them)."""
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--worker-args", help=argparse.SUPPRESS)


def serve_worker(workers: dict[str, Callable[[dict], dict]], kind: str, args_json: str | None) -> None:
    """Run ``workers[kind]`` on the JSON arguments and print its JSON-safe result on one line."""
    if kind not in workers:
        raise SystemExit(f"unknown worker {kind!r}; known: {sorted(workers)}")
    print(WORKER_PREFIX + json.dumps(json_safe(workers[kind](json.loads(args_json or "{}")))), flush=True)


def run_worker(module: str, kind: str, args: dict, *, threads: int | None = None, timeout: float = 3600,
               in_process: dict[str, Callable[[dict], dict]] | None = None) -> dict:
    """``python -m <module> --worker <kind>`` in a fresh process (from the project root), with
    ``OMP/MKL/OPENBLAS_NUM_THREADS=threads`` when given. Returns the worker's result plus
    ``subprocess_wall_s``, or ``{"error": ...}`` when it failed or ran out of time.

    ``in_process`` (the script's workers, given in smoke mode) calls ``in_process[kind]`` here
    instead, without the fresh interpreter's imports; the result is the same JSON round trip,
    with ``"in_process": True``."""
    if in_process is not None:
        t0 = time.perf_counter()
        try:
            out = json.loads(json.dumps(json_safe(in_process[kind](args))))
        except Exception:  # noqa: BLE001 - reported like a failed subprocess: the run goes on
            msg = f"worker {kind} {args.get('model', '')}: {traceback.format_exc()[-1500:]}"
            print(msg, flush=True)
            return {"error": msg, "subprocess_wall_s": time.perf_counter() - t0, "in_process": True}
        return {**out, "subprocess_wall_s": time.perf_counter() - t0, "in_process": True}
    env = dict(os.environ)
    if threads is not None:
        env.update({k: str(threads) for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")})
    cmd = [PY, "-m", module, "--worker", kind, "--worker-args", json.dumps(args)]
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=ROOT, env=env, check=False)
    except subprocess.TimeoutExpired:
        return {"error": f"worker {kind} killed after {timeout:.0f} s", "subprocess_wall_s": time.perf_counter() - t0}
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(WORKER_PREFIX)]
    if proc.returncode != 0 or not lines:
        msg = f"worker {kind} {args.get('model', '')}: exit {proc.returncode}: {(proc.stderr or proc.stdout)[-1500:]}"
        print(msg, flush=True)
        return {"error": msg, "subprocess_wall_s": time.perf_counter() - t0}
    out = json.loads(lines[-1][len(WORKER_PREFIX):])
    out["subprocess_wall_s"] = time.perf_counter() - t0
    return out
