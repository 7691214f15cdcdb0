"""Run several benchmark scripts: ``python -m benchmarks [--smoke | --quick] [--out DIR] [script ...]``
(default: every script of :data:`benchmarks.SCRIPTS`, in its order; ``make benchmark`` runs this).

Full and ``--quick`` runs start each script in its own process (``python -m benchmarks.<script>``),
so that no script's imports, caches or threads colour another's figures. ``--smoke`` runs the
scripts' smoke modes one after the other in this one process: the heavy imports (skfolio,
Riskfolio-Lib, torch, Great Expectations) and the shared bars are paid once, which keeps the
suite's smoke test short. Prints each script's wall time; exits non-zero when one failed.
"""
from __future__ import annotations

import argparse
import importlib
import subprocess
import sys
import time
import traceback
from pathlib import Path

from benchmarks import SCRIPTS
from benchmarks._common import PY, RESULTS, ROOT


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n\n")[0])
    size = ap.add_mutually_exclusive_group()
    size.add_argument("--smoke", action="store_true", help="every script's smoke mode, in this process")
    size.add_argument("--quick", action="store_true", help="every script's quick mode")
    ap.add_argument("--out", type=Path, default=RESULTS, help=f"where the scripts write (default {RESULTS})")
    ap.add_argument("scripts", nargs="*", metavar="script", help=f"of {', '.join(SCRIPTS)} (default: all)")
    args = ap.parse_args(argv)
    unknown = sorted(set(args.scripts) - set(SCRIPTS))
    if unknown:
        ap.error(f"unknown script(s) {', '.join(unknown)}; known: {', '.join(SCRIPTS)}")
    flags = ["--smoke"] if args.smoke else ["--quick"] if args.quick else []
    failed, times = [], {}
    for name in args.scripts or SCRIPTS:
        print(f"== {name} {' '.join(flags)}", flush=True)
        t0 = time.perf_counter()
        if args.smoke:
            try:
                if importlib.import_module(f"benchmarks.{name}").main([*flags, "--out", str(args.out)]):
                    failed.append(name)  # a script that found failures (the optimizer fuzz) returns non-zero
            except Exception:  # noqa: BLE001 - report it and go on with the next script
                traceback.print_exc()
                failed.append(name)
        elif subprocess.run([PY, "-m", f"benchmarks.{name}", *flags, "--out", str(args.out)], cwd=ROOT).returncode:
            failed.append(name)
        times[name] = time.perf_counter() - t0
    print("\n".join(f"{name:22s} {s:7.1f} s" for name, s in times.items()), flush=True)
    if failed:
        print(f"FAILED: {', '.join(failed)}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
