"""Rebalance proposals on a real store, measured on this machine and written to
``benchmarks/results/rebalance_proposals.{json,md}``.

Each case opens a client portfolio in a fresh store (``create_portfolio``, its strategy stored
with it), proposes a rebalance (``qpo.book.propose_rebalance``: the ledger read, the plan, the
proposal saved) and accepts it (``qpo.book.accept_rebalance``: the trades into the ledger, the
optimization run and the audit row in one transaction):

1. 20 names, the bundled panel (``qpo.load_prices("sp500")``, its sectors): the default strategy
   (minimum variance, Ledoit-Wolf, three years, whole shares, the house limits) and maximum Sharpe
   with ``max_turnover`` 0.2;
2. ~500 names, ``../shared/data``: the names with a price on every day of the three-year lookback
   up to the bars' last date, GICS sectors from its sector file for ``sector_max`` 0.25, 2 % per
   name; the same two objectives. Skipped, with the reason, when the shared data is absent.

Each on SQLite (a file in a temporary directory) and, when ``--database-url`` or
``QPO_TEST_DATABASE_URL`` names a PostgreSQL database, on PostgreSQL too, in a private schema made
for the run and dropped after it (the database's other schemas are not touched).

Every (case, store) runs in a fresh interpreter, so the first proposal and the first acceptance
(reported apart, ``first``) pay the imports and the solver's first call; the medians are of the
repeats after it, each on a new portfolio holding the same shares (the same proposal every time).
A proposal's time is split into the plan (``plan_rebalance``: the return window, the problem with
its estimators, the optimization, the rounding to shares, the before/after metrics and the
compliance checks) and the store (the actor, the portfolio's row and ledger replayed, the proposal
written, the commit); an acceptance's into ``accept_proposal`` (ledger replay, transactions,
optimization run, audit) and the rest (reading the proposal, its prices' date check, the commit,
the proposal read back). The stages are timed by wrapping the library's own functions with a
timer for the duration of the run (the real code runs; nothing is replaced).

``--smoke`` (one call each, the 20-name case, in this process) checks the script works;
``--quick`` takes 2 repeats instead of 5.

Usage: ``python -m benchmarks.rebalance_proposals [--smoke | --quick] [--skip-shared]
[--database-url URL | --no-postgres] [--out DIR]``
"""
from __future__ import annotations

import contextlib
import functools
import os
import statistics
import tempfile
import time
import uuid

from benchmarks._common import (
    SECTORS,
    add_worker_options,
    finish,
    header,
    module_name,
    ms,
    parser,
    run_worker,
    serve_worker,
    shared_closes,
    shared_data,
    start,
    write_results,
)

NAME = "rebalance_proposals"
PACKAGES = ("qpo", "numpy", "pandas", "scipy", "cvxpy", "clarabel", "osqp", "scikit-learn", "sqlalchemy", "psycopg")
MODES = {"full": {"repeats": 5}, "quick": {"repeats": 2}, "smoke": {"repeats": 0}}
ADVISOR = "advisor@bench.qpo"
CASES = {
    "bundled_20": "20 names, the bundled panel",
    "shared_500": "~500 names, ../shared/data",
}
STRATEGIES = {
    "bundled_20": {"default": {}, "max_sharpe, max_turnover 0.2": {"objective": "max_sharpe", "max_turnover": 0.2}},
    "shared_500": {
        "default, 2 % per name, 25 % per sector": {"max_weight": 0.02, "sector_max": 0.25},
        "max_sharpe, max_turnover 0.2, 2 % per name, 25 % per sector": {"objective": "max_sharpe", "max_turnover": 0.2,
                                                                        "max_weight": 0.02, "sector_max": 0.25},
    },
}
#: the plan's stages (functions of qpo.book.rebalance) and the store's, in the order shown
PLAN_STAGES = ("window", "problem", "optimize", "rounding", "metrics", "compliance")
PROPOSE_STORE_STAGES = ("ledger_read", "save_proposal")
ACCEPT_STAGES = ("accept_proposal", "from_record")
ONE_THREAD = "1 BLAS thread"


# -- the data ---------------------------------------------------------------------------------------
def _inputs(case: str):
    """Prices, sectors, shares held and cash of a case's portfolio, and what the universe is."""
    import numpy as np
    import pandas as pd

    import qpo
    from qpo.book import Strategy

    lookback = Strategy.default().lookback
    if case == "bundled_20":
        prices, sectors = qpo.load_prices("sp500"), qpo.load_sectors()
        cash, low, high = 25_000.0, 5_000.0, 60_000.0
        label = "the bundled panel (qpo.load_prices('sp500')), its 20 names; sectors: qpo.load_sectors()"
    else:
        prices, sectors = shared_closes(), qpo.load_sectors(SECTORS)
        cash, low, high = 50_000.0, 2_000.0, 40_000.0
        label = (f"../shared/data: the names with a price on each of the last {lookback + 1} days; "
                 "sectors: its GICS file")
    window = prices.iloc[-(lookback + 1):]
    names = sorted(window.columns[window.notna().all().to_numpy()])
    last = window[names].iloc[-1]
    rng = np.random.default_rng(0)  # a position of 2-40 k (500 names) or 5-60 k (20 names) in each
    held = pd.Series(np.floor(rng.uniform(low, high, len(names)) / last.to_numpy()), index=names)
    held = held[held > 0]
    return {"prices": prices, "sectors": dict(sectors), "held": held, "cash": cash, "label": label,
            "as_of": prices.index[-1], "opened": prices.index[-21].date(), "n_dates": len(prices)}


# -- the stores -------------------------------------------------------------------------------------
@contextlib.contextmanager
def _store(backend: str, url: str | None):
    """The URL of a store that does not exist yet: a SQLite file in a temporary directory, or a
    private schema of the PostgreSQL database at ``url``, dropped afterwards."""
    if backend == "sqlite":
        with tempfile.TemporaryDirectory(prefix="qpo_bench_") as tmp:
            try:
                yield f"sqlite:///{tmp}/store.db"
            finally:
                _forget(f"sqlite:///{tmp}/store.db")
        return
    from sqlalchemy import create_engine, text

    schema = f"bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(url)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    store_url = f"{url}{'&' if '?' in url else '?'}options=-csearch_path%3D{schema}"
    try:
        yield store_url
    finally:
        _forget(store_url)
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def _forget(url: str) -> None:
    """Close the pooled engines :func:`qpo.store.connect` keeps for ``url``."""
    from qpo.store import db

    for cache in (getattr(db, "_ENGINES", {}), getattr(db, "_READERS", {})):
        eng = cache.pop(url, None)
        if eng is not None:
            eng.dispose()


def postgres_reachable(url: str) -> str | None:
    """None when ``url`` answers, else why the PostgreSQL runs are skipped."""
    from sqlalchemy import create_engine, text

    try:
        eng = create_engine(url)
        with eng.connect() as conn:
            conn.execute(text("SELECT 1"))
        eng.dispose()
    except Exception as exc:  # noqa: BLE001 - reported as the reason the section is skipped
        return f"skipped: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
    return None


# -- timing the stages ------------------------------------------------------------------------------
class _Stages:
    """Time spent in named functions while a run is on (each the sum of its calls)."""

    def __init__(self):
        self.t: dict[str, float] = {}

    def wrap(self, name: str, fn):
        @functools.wraps(fn)
        def timed(*a, **k):
            t0 = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                self.t[name] = self.t.get(name, 0.0) + time.perf_counter() - t0
        return timed

    @contextlib.contextmanager
    def on(self):
        """Wrap the stages' functions where the services look them up, restore them after."""
        import qpo.book.proposals as services
        import qpo.book.rebalance as rebalance
        import qpo.store as store
        import qpo.store.repository as repository
        from qpo.book.rebalance import RebalanceProposal
        from qpo.book.strategy import Strategy

        targets = [(services, "plan_rebalance", "plan"), (rebalance, "_window", "window"),
                   (Strategy, "problem", "problem"), (rebalance, "optimize", "optimize"),
                   (rebalance, "round_trades", "rounding"), (rebalance, "_metrics", "metrics"),
                   (rebalance, "_compliance", "compliance"), (repository, "position", "ledger_read"),
                   (repository, "save_proposal", "save_proposal"), (store, "accept_proposal", "accept_proposal")]
        saved = [(obj, attr, obj.__dict__[attr]) for obj, attr, _ in targets if attr in obj.__dict__]
        for obj, attr, name in targets:
            if attr in obj.__dict__:
                setattr(obj, attr, self.wrap(name, getattr(obj, attr)))
        from_record = RebalanceProposal.__dict__["from_record"]
        RebalanceProposal.from_record = classmethod(self.wrap("from_record", from_record.__func__))
        try:
            yield self
        finally:
            for obj, attr, fn in saved:
                setattr(obj, attr, fn)
            RebalanceProposal.from_record = from_record

    def take(self) -> dict[str, float]:
        out, self.t = self.t, {}
        return out


def _summary(times: list[float]) -> dict:
    first, rest = times[0], times[1:]
    return {"first_s": first, "median_s": statistics.median(rest) if rest else first,
            "min_s": min(rest) if rest else first, "max_s": max(rest) if rest else first, "repeats": len(rest)}


def _stage_summary(runs: list[dict[str, float]], names) -> dict:
    """Each stage's first time and median over the repeats (None when it was never called)."""
    out = {}
    for n in names:
        vals = [r.get(n) for r in runs]
        if any(v is None for v in vals):
            out[n] = None
            continue
        out[n] = {"first_s": vals[0], "median_s": statistics.median(vals[1:]) if len(vals) > 1 else vals[0]}
    return out


# -- one case on one store --------------------------------------------------------------------------
def _describe(p, held_names: int) -> dict:
    """What the proposal is: its size, trades, costs, solver, and how it compares before and after."""
    c, comp = p.comparison, p.compliance
    return {"names": int(len(p.weights)), "names_held_before": held_names,
            "n_trades": int(len(p.trades)), "n_sells": int((p.trades["side"] == "sell").sum()),
            "n_buys": int((p.trades["side"] == "buy").sum()), "turnover": p.turnover, "total_cost": p.total_cost,
            "traded_notional": float(p.trades["notional"].sum()), "value_before": p.value_before,
            "cash_before": p.cash_before, "cash_after": p.cash_after,
            "objective": p.result.objective, "method": p.result.method, "solver": p.result.solver,
            "status": p.result.status, "fallback_reason": p.result.fallback_reason,
            "periods": p.parameters.get("periods"), "window": p.parameters.get("window"),
            "prices_as_of": p.prices_as_of.date().isoformat(),
            "volatility_before": float(c.loc["volatility", "before"]), "volatility_after": float(c.loc["volatility", "after"]),
            "n_names_after": int(c.loc["n_names", "after"]), "max_weight_after": float(p.weights["after"].max()),
            "distance_to_target_max_abs": p.distance_to_target["max_abs"], "violations": list(p.violations),
            "compliance_failed_before": comp.loc[~comp["passed_before"].astype(bool), "check"].tolist(),
            "compliance_failed_after": comp.loc[~comp["passed_after"].astype(bool), "check"].tolist()}


def run_case(args: dict) -> dict:
    """One case (``args["case"]``) on one store (``args["backend"]``, ``args["url"]``): for each
    strategy ``1 + args["repeats"]`` portfolios opened, proposed for and accepted."""
    import numpy as np

    from qpo.book import Strategy, accept_rebalance, propose_rebalance
    from qpo.store import Actor, add_user, connect, create_portfolio, position, session_scope

    case, backend, repeats = args["case"], args["backend"], int(args["repeats"])
    t0 = time.perf_counter()
    data = _inputs(case)
    load_s = time.perf_counter() - t0
    prices, held, cash = data["prices"], data["held"], data["cash"]
    known = list(prices.columns) if case != "bundled_20" else None
    out = {"case": case, "backend": backend, "data": data["label"], "load_s": load_s, "names": len(held),
           "as_of": data["as_of"].date().isoformat(), "opened": data["opened"].isoformat(), "strategies": {}}
    stages = _Stages()
    with _store(backend, args.get("url")) as url:
        t0 = time.perf_counter()
        engine = connect(url)
        out["store_create_s"] = time.perf_counter() - t0
        seed = Actor.system("bench")
        with session_scope(engine) as s:
            add_user(s, seed, ADVISOR, "Bench Advisor", "advisor")
        for label, overrides in STRATEGIES[case].items():
            strategy = Strategy.default().with_overrides(**overrides) if overrides else Strategy.default()
            create, propose, accept = [], [], []
            p_stages, a_stages = [], []
            proposal = accepted = None
            for i in range(1 + repeats):
                name = f"{case} {len(out['strategies'])}.{i}"
                t0 = time.perf_counter()
                with session_scope(engine) as s:
                    create_portfolio(s, seed, name, f"Client {i}", ADVISOR, holdings=held.to_dict(), cash=cash,
                                     strategy=strategy.to_json(), trade_date=data["opened"], known_tickers=known)
                create.append(time.perf_counter() - t0)
                with stages.on():
                    t0 = time.perf_counter()
                    proposal = propose_rebalance(name, actor=ADVISOR, prices=prices, engine=engine,
                                                 sectors=data["sectors"])
                    propose.append(time.perf_counter() - t0)
                    p_stages.append(stages.take())
                    t0 = time.perf_counter()
                    accepted = accept_rebalance(proposal.id, actor=ADVISOR, prices=prices, engine=engine)
                    accept.append(time.perf_counter() - t0)
                    a_stages.append(stages.take())
            assert accepted.status == "accepted", accepted.status
            with session_scope(engine) as s:  # the ledger holds what the proposal said it would
                now = position(s, ADVISOR, name)
            after = proposal.weights["after"]
            px = prices.loc[:data["as_of"]].ffill().iloc[-1]
            value = now.cash + float((now.shares * px.reindex(now.shares.index)).sum())
            check = {"cash_diff": abs(now.cash - proposal.cash_after), "value_rel_diff": abs(value / proposal.value_after - 1),
                     "weight_max_diff": float(np.abs((now.shares * px.reindex(now.shares.index) / value)
                                                     .reindex(after.index).fillna(0.0) - after).max())}
            assert check["cash_diff"] < 1e-4 and check["value_rel_diff"] < 1e-9 and check["weight_max_diff"] < 1e-9, check
            for r in p_stages:
                plan = r.get("plan", 0.0)
                r["plan_other"] = plan - sum(r.get(k, 0.0) for k in PLAN_STAGES)
            for r, total in zip(p_stages, propose):
                r["store"] = total - r.get("plan", 0.0)
                r["store_other"] = r["store"] - sum(r.get(k, 0.0) for k in PROPOSE_STORE_STAGES)
            for r, total in zip(a_stages, accept):
                r["accept_other"] = total - sum(r.get(k, 0.0) for k in ACCEPT_STAGES)
            out["strategies"][label] = {
                "strategy": strategy.to_json(), "proposal": _describe(proposal, len(held)),
                "ledger_after_accept": check,
                "create_portfolio": _summary(create), "propose": _summary(propose),
                "propose_stages": _stage_summary(p_stages, ("plan", *PLAN_STAGES, "plan_other", "store",
                                                            *PROPOSE_STORE_STAGES, "store_other")),
                "accept": _summary(accept),
                "accept_stages": _stage_summary(a_stages, (*ACCEPT_STAGES, "accept_other")),
            }
        engine.dispose()
    return out


WORKERS = {"case": run_case}


# -- the page ---------------------------------------------------------------------------------------
def _st(stages: dict, name: str) -> str:
    v = stages.get(name)
    return "-" if v is None else ms(v["median_s"])


def write_table(r: dict) -> str:
    n = r["parameters"]["repeats"]
    lines = header(r, "Rebalance proposals", NAME,
                   "Each (case, store) in a fresh interpreter: `first` is its first proposal or acceptance "
                   "(imports, the solver's first call, the store's first statements); the other times are "
                   + (f"medians of {n} repeats after it, each on a new portfolio holding the same shares." if n else
                      "the first call again (no repeats in this mode).")
                   + f" The `sqlite, {ONE_THREAD}` rows run with OMP/MKL/OPENBLAS_NUM_THREADS=1; the others with "
                   "the machine's default.")
    for case, sec in r["cases"].items():
        lines += ["", f"## {CASES[case]}", ""]
        if "skipped" in sec:
            lines.append(f"{sec['skipped']}")
            continue
        runs = {b: v for b, v in sec["stores"].items() if "strategies" in v}
        not_run = [f"{b}: {v.get('skipped') or v.get('error', '')[:600]}" for b, v in sec["stores"].items()
                   if "strategies" not in v]
        if not runs:
            lines += not_run
            continue
        any_run = next(iter(runs.values()))
        lines += [f"Data: {any_run['data']} ({any_run['names']} names held); proposals as of {any_run['as_of']}, "
                  f"the portfolio opened {any_run['opened']}. Loading the data: "
                  + ", ".join(f"{ms(v['load_s'])} ({b})" for b, v in runs.items()) + ".", "",
                  "### What each proposal is", "",
                  "| strategy | names | trades (sells / buys) | turnover | traded | cost | cash before -> after | "
                  "solver (method) | volatility before -> after | largest weight after | max distance to target | "
                  "compliance failed before -> after | violations |",
                  "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
        for label, s in any_run["strategies"].items():
            p = s["proposal"]
            lines.append(
                f"| {label} | {p['names']} | {p['n_trades']} ({p['n_sells']} / {p['n_buys']}) | {p['turnover']:.1%} | "
                f"{p['traded_notional']:,.0f} of {p['value_before']:,.0f} | {p['total_cost']:,.2f} | "
                f"{p['cash_before']:,.0f} -> {p['cash_after']:,.2f} | {p['solver']} ({p['method']}) | "
                f"{p['volatility_before']:.2%} -> {p['volatility_after']:.2%} | {p['max_weight_after']:.2%} | "
                f"{p['distance_to_target_max_abs']:.2e} | {', '.join(p['compliance_failed_before']) or 'none'} -> "
                f"{', '.join(p['compliance_failed_after']) or 'none'} | {len(p['violations']) or 'none'} |")
        lines += ["", "### Times", "",
                  "| store | strategy | open the portfolio | propose: first | propose: median (min) | plan | "
                  "window | problem (estimators) | optimize | rounding | metrics | compliance | store part | "
                  "ledger read | save | accept: first | accept: median (min) | accept_proposal |",
                  "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
        for b, v in runs.items():
            for label, s in v["strategies"].items():
                ps, acc = s["propose_stages"], s["accept_stages"]
                lines.append(
                    f"| {b} | {label} | {ms(s['create_portfolio']['median_s'])} | {ms(s['propose']['first_s'])} | "
                    f"**{ms(s['propose']['median_s'])}** ({ms(s['propose']['min_s'])}) | {_st(ps, 'plan')} | {_st(ps, 'window')} | "
                    f"{_st(ps, 'problem')} | {_st(ps, 'optimize')} | {_st(ps, 'rounding')} | {_st(ps, 'metrics')} | "
                    f"{_st(ps, 'compliance')} | {_st(ps, 'store')} | {_st(ps, 'ledger_read')} | "
                    f"{_st(ps, 'save_proposal')} | {ms(s['accept']['first_s'])} | **{ms(s['accept']['median_s'])}** "
                    f"({ms(s['accept']['min_s'])}) | "
                    f"{_st(acc, 'accept_proposal')} |")
        lines += ["", *not_run] if not_run else []
    lines += ["", "Stages: `plan` is `plan_rebalance` (window: the returns of the lookback and the last prices; "
              "problem: the estimators and constraints; optimize: `qpo.optimize`; rounding: `round_trades`; "
              "metrics: volatility, VaR/CVaR, tracking error before, after and at the target; compliance: the "
              "limits before and after). `store part` is the proposal's time outside the plan (the actor, the "
              "portfolio's row, the ledger replayed twice, the proposal written and committed); `accept_proposal` "
              "is the acceptance's store write (ledger replay, the transactions, the optimization run, the audit row) "
              "before the commit. Opening the portfolio (`create_portfolio`: one ledger row per holding) is set-up, "
              "not part of the proposal's time.", ""]
    return "\n".join(lines)


# -- the run ----------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> None:
    ap = parser(__doc__)
    pg = ap.add_mutually_exclusive_group()
    pg.add_argument("--database-url", default=os.environ.get("QPO_TEST_DATABASE_URL"),
                    help="a PostgreSQL database to also run on, in a private schema dropped after the run "
                         "(default QPO_TEST_DATABASE_URL)")
    pg.add_argument("--no-postgres", action="store_true", help="SQLite only")
    add_worker_options(ap)
    args = ap.parse_args(argv)
    if args.worker:
        serve_worker(WORKERS, args.worker, args.worker_args)
        return
    t_start = time.perf_counter()
    results = start(args, PACKAGES)
    p = dict(MODES[results["mode"]])
    smoke = results["mode"] == "smoke"
    url = None if args.no_postgres else args.database_url
    backends = {"sqlite": None}
    pg_reason = ("skipped (--no-postgres)" if args.no_postgres else
                 "skipped: no --database-url and QPO_TEST_DATABASE_URL is not set" if not url else postgres_reachable(url))
    if pg_reason is None:
        backends["postgresql"] = url
    p["stores"] = list(backends)
    results["parameters"] = p
    results["cases"] = {}
    for case in CASES:
        why = shared_data(args) if case == "shared_500" else None
        if why is None and case == "shared_500" and not SECTORS.exists():
            why = f"skipped: {SECTORS} not found (the shared data set lives beside the project)"
        if why is None and smoke and case != "bundled_20":
            why = "skipped in a smoke run"
        if why is not None:
            results["cases"][case] = {"skipped": why}
            print(f"{CASES[case]}: {why}", flush=True)
            continue
        print(f"{CASES[case]}:", flush=True)
        sec = results["cases"][case] = {"stores": {}}
        runs = [(b, b, u, None) for b, u in backends.items()]
        if not smoke:  # the BLAS threads' share: the same on one thread (OMP/MKL/OPENBLAS_NUM_THREADS=1)
            runs.append((f"sqlite, {ONE_THREAD}", "sqlite", None, 1))
        for key, backend, burl, threads in runs:
            out = sec["stores"][key] = run_worker(
                module_name(__file__), "case", {"case": case, "backend": backend, "url": burl, "repeats": p["repeats"]},
                threads=threads, timeout=3600, in_process=WORKERS if smoke else None)
            for label, s in out.get("strategies", {}).items():
                print(f"  {key:22s} {label[:44]:44s} propose {ms(s['propose']['median_s']):>9s} (first "
                      f"{ms(s['propose']['first_s'])}), accept {ms(s['accept']['median_s']):>9s} (first "
                      f"{ms(s['accept']['first_s'])}); {s['proposal']['n_trades']} trades", flush=True)
        if "postgresql" not in backends:
            sec["stores"]["postgresql"] = {"skipped": pg_reason or ""}
    finish(results, t_start)
    path = write_results(args.out, NAME, results, write_table(results))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
