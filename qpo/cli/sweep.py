"""``qpo pipeline sweep NAME -p costs 0 0.001 0.002 -p window 126 252 [--set NAME VALUE ...]
[--cells FILE] [--workers N] [--metric NAME] [--json]``: a pipeline's notebook for every cell of a
grid, on Dask (:func:`qpo.workbench.sweep.run_sweep`).

``--set window 252`` (or ``--fixed``) gives every cell the same value without making it a grid
dimension: logged to the parent run as ``fixed.window``, not a column of the comparison table nor
an axis of its figure. ``-p window 252`` (one value) is a grid dimension of one value: a column of
the table, every cell the same.

Exit status: 0 every cell FINISHED; 1 a cell failed (the sweep went on; the parent run lists the
failed cells); 3 could not start (unknown pipeline or parameter, a bad value or cells file, an
unusable runs folder, no Dask cluster); 130 / 143 stopped by SIGINT (Ctrl-C) / SIGTERM (running
cells KILLED). Progress goes to stderr; ``--json`` prints the sweep as one JSON line on stdout."""
from __future__ import annotations

import json
import sys

from qpo.cli._common import parse_value, positive_whole


def grid_from_args(params: list[list[str]] | None) -> dict[str, list] | None:
    """``[["costs", "0", "0.001"], ["window", "126"]]`` -> ``{"costs": [0, 0.001], "window": [126]}``."""
    from qpo.errors import InvalidValueError

    if not params:
        return None
    grid: dict[str, list] = {}
    for name, *values in params:
        if not values:
            raise InvalidValueError(f"-p {name} needs at least one value: -p {name} VALUE [VALUE ...]")
        if name in grid:
            raise InvalidValueError(f"-p {name} is given twice; list all its values after one -p {name}")
        grid[name] = [parse_value(v) for v in values]
    return grid


def fixed_from_args(pairs: list[list[str]] | None) -> dict:
    """``[["window", "252"]]`` (from ``--set window 252``) -> ``{"window": 252}``."""
    from qpo.errors import InvalidValueError

    fixed: dict = {}
    for name, value in pairs or []:
        if name in fixed:
            raise InvalidValueError(f"--set {name} is given twice; a fixed parameter has one value")
        fixed[name] = parse_value(value)
    return fixed


def _cmd_sweep(args) -> int:
    from qpo.errors import QpoError
    from qpo.workbench.sweep import grid_cells, load_cells, run_sweep

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    try:
        grid = grid_from_args(args.param)
        fixed = fixed_from_args(args.fixed)
        both = sorted(set(fixed) & set(grid or {}))
        if both:
            from qpo.errors import InvalidValueError

            raise InvalidValueError(f"{', '.join(both)} is both a grid parameter (-p) and a fixed one (--set); give "
                                    "it once: -p NAME V1 V2 ... to sweep it, --set NAME VALUE to fix it")
        cells = load_cells(args.cells) if args.cells else None
        if grid is not None and cells is not None:  # a file's sets, each crossed with the grid
            cells = [{**c, **g} for c in cells for g in grid_cells(grid)]
            grid = None
        if grid is None and cells is None:
            from qpo.errors import InvalidValueError

            raise InvalidValueError("a sweep needs parameters: -p NAME VALUE [VALUE ...] (repeat -p per parameter), "
                                    "or --cells FILE.json|.yaml|.csv")
        result = run_sweep(args.name, grid, cells=cells, workers=args.workers, log=log, metric=args.metric,
                           parameters=fixed or None)
    except QpoError as exc:
        if args.json:
            print(json.dumps({"pipeline": args.name, "status": "ERROR", "error": str(exc)}), flush=True)
        print(f"qpo: error: {exc}", file=sys.stderr, flush=True)
        return 3
    if args.json:
        print(result.to_json(), flush=True)
    else:
        print(f"sweep      {result.pipeline}: {result.status}, {len(result.cells)} cell(s) on {result.workers} "
              f"worker(s) in {result.seconds:.1f} s", flush=True)
        for c in result.cells:
            print(f"cell {c.index:<5} {c.status:12s} {c.label}" + (f"  {c.error}" if c.error and not c.run_id else "")
                  + (f"  run {c.run_id}" if c.run_id else ""))
        if result.failed:
            print("failed     " + "; ".join(f"{c.index} ({c.label}): {c.error}" for c in result.failed))
        print(f"mlflow run {result.parent_run_id} (parent; experiment {result.experiment!r}) at {result.tracking_uri}")
    return result.exit_code


def register_sweep(plsub) -> None:
    """Add ``sweep`` to the ``qpo pipeline`` subparsers."""
    sw = plsub.add_parser("sweep", help="run a pipeline for every cell of a parameter grid, on Dask",
                          description="Run a pipeline's notebook for every combination of the values given (or every "
                                      "parameter set of --cells), each a child MLflow run of one parent run that holds "
                                      "the grid, the cells' statuses, a comparison table and a figure.")
    sw.add_argument("name", help="pipeline name (see `qpo pipeline list`)")
    sw.add_argument("-p", "--param", nargs="+", action="append", metavar=("NAME", "VALUE"),
                    help="a notebook parameter and its values (each read as YAML): -p costs 0 0.001 0.002; repeat for "
                         "each parameter of the grid (one value: a grid dimension of one value, a column of the "
                         "comparison table; use --set for a value every cell shares)")
    sw.add_argument("--set", "--fixed", dest="fixed", nargs=2, action="append", metavar=("NAME", "VALUE"),
                    help="a notebook parameter every cell gets, not a grid dimension (read as YAML): --set window 252; "
                         "logged to the parent run as fixed.NAME; repeat for each")
    sw.add_argument("--cells", metavar="FILE", default=None,
                    help="parameter sets from a .json/.yaml (a list of name: value mappings) or .csv (a header of names) "
                         "file; with -p, each set is crossed with the grid")
    sw.add_argument("--workers", type=positive_whole, default=None,
                    help="local Dask worker processes (default: QPO_DASK_WORKERS or the usable CPUs; ignored when "
                         "QPO_DASK_SCHEDULER names a running scheduler)")
    sw.add_argument("--metric", default=None,
                    help="the metric the parent's figure plots against the first parameter (default: the Sharpe "
                         "ratio of the notebook's first strategy, e.g. min_variance.sharpe; never a baseline's)")
    sw.add_argument("--json", action="store_true", help="print the sweep as one JSON line (progress on stderr)")
    sw.set_defaults(func=_cmd_sweep)


def main(argv: list[str] | None = None) -> int:
    """``python -m qpo.cli.sweep NAME -p ...``: the same command outside ``qpo pipeline``."""
    import argparse

    ap = argparse.ArgumentParser(prog="qpo pipeline", allow_abbrev=False)
    register_sweep(ap.add_subparsers(dest="action", required=True))
    args = ap.parse_args(["sweep", *(sys.argv[1:] if argv is None else argv)])
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
