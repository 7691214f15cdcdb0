"""qpo's PyTorch return forecasters (MLP, LSTM, GRU), measured on this machine and written to
``benchmarks/results/return_forecaster.{json,md}``.

1. Training time per walk-forward fold: the 20 bundled S&P 500 stocks, 2011-01-01..2020-12-31,
   ``walk_forward(prices, ForecasterConfig(model=m), retrain_months=12)`` (defaults otherwise):
   per-fold ``fit_seconds`` (median, min, max), epochs, the whole walk-forward's wall time.
2. Inference for ~500 assets of ``../shared/data``: the tickers with a price on the last date, no
   gap and enough history; each model trained once on the last ~6 years (a modest config:
   ``max_epochs=5, sample_stride=10``), then ``TrainedForecaster.predict(prices, as_of=last date)``
   (features + forward pass) and the forward pass alone, medians of repeats after a first call.
3. Peak memory: every measurement above runs in its own subprocess, which reports its peak RSS
   (``VmHWM`` of ``/proc/self/status``; ``getrusage(RUSAGE_SELF).ru_maxrss`` beside it) at each
   stage, next to a subprocess that only imports torch and qpo (the baseline).
4. Out-of-sample quality on the whole bundled panel (1990-2022, retrain every 12 months,
   expanding window, seed 0; the MLP also with seeds 1 and 2): the walk-forward metrics of each
   model and of the two baselines (historical mean, zero), its verdict, and, as an independent
   reference, a scikit-learn ``Ridge`` fitted on the same features, targets and folds.

Threads: every timed run uses ONE torch thread (``threads=1``, ``OMP_NUM_THREADS=1``), one subprocess
at a time. On this shared 2-core machine torch's default (one thread per core) meets other processes
and its OpenMP threads wait on each other: an LSTM fit then runs an order of magnitude slower. A
small side measurement (``threads``) fits the same LSTM with 1 and with 2 threads to show it.

Section 4 measures quality, not speed: its runs use one thread each, ``--jobs`` of them at a time.
Recurrent nets cost ~10x an MLP per fold, so in full mode they retrain every
``--rnn-retrain-months`` (default 60) months to keep the whole run near 15 minutes; the MLP and
the Ridge run both at 12 months (the protocol) and at the recurrent nets' schedule (like for
like). ``--rnn-retrain-months 12`` runs the recurrent nets on the 12-month protocol too (~25-30
minutes on 2 loaded cores).
Section 2 needs ``../shared/data`` and is skipped, with a message, when it is absent.

``--smoke`` (the suite runs it) runs every section on tiny sizes: the MLP and the LSTM, one epoch,
2014-2020 for section 1, 40 shared assets over two years for section 2, 2012-2022 for section 4;
its workers run in the benchmark's own process except the baseline (a fresh process, as always).

Usage: ``python -m benchmarks.return_forecaster [--smoke | --quick] [--skip-shared] [--jobs 2]
[--rnn-retrain-months 60] [--out DIR]``
"""
from __future__ import annotations

import shutil
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from benchmarks._common import (
    BARS,
    add_worker_options,
    finish,
    fmt,
    header,
    module_name,
    ms,
    parser,
    run_worker,
    serve_worker,
    shared_closes,
    shared_data,
    start,
    timeit,
    write_results,
)

NAME = "return_forecaster"
PACKAGES = ("qpo", "torch", "numpy", "pandas", "scikit-learn", "pyarrow")
MODELS = ("mlp", "lstm", "gru")
RIDGE_ALPHA = 1.0

#: sizes of each mode (``models``: the forecasters measured; ``in_process``: workers in this process)
MODES = {
    "full": {"models": MODELS, "s1_period": ("2011-01-01", "2020-12-31"), "s1_overrides": {},
             "threads_epochs": 3, "threads_overrides": {},
             "s2_years": 6, "s2_assets": None, "s2_overrides": {"max_epochs": 5, "sample_stride": 10}, "s2_repeats": 20,
             "s4_start": None, "s4_retrain_months": 12, "s4_rnn_retrain_months": 60, "s4_overrides": {},
             "s4_extra_mlp_seeds": [1, 2], "in_process": False},
    "quick": {"models": MODELS, "s1_period": ("2011-01-01", "2020-12-31"), "s1_overrides": {"max_epochs": 3},
              "threads_epochs": 1, "threads_overrides": {},
              "s2_years": 3, "s2_assets": None, "s2_overrides": {"max_epochs": 1, "sample_stride": 20}, "s2_repeats": 5,
              "s4_start": None, "s4_retrain_months": 60, "s4_rnn_retrain_months": 60, "s4_overrides": {"max_epochs": 3},
              "s4_extra_mlp_seeds": [], "in_process": False},
    "smoke": {"models": ("mlp", "lstm"), "s1_period": ("2014-01-01", "2020-12-31"),
              "s1_overrides": {"max_epochs": 1, "patience": 1, "sample_stride": 20},
              "threads_epochs": 1, "threads_overrides": {"sample_stride": 40},
              "s2_years": 2, "s2_assets": 40, "s2_overrides": {"max_epochs": 1, "sample_stride": 40}, "s2_repeats": 1,
              "s4_start": "2012-01-01", "s4_retrain_months": 120, "s4_rnn_retrain_months": 120,
              "s4_overrides": {"max_epochs": 1, "patience": 1, "sample_stride": 40}, "s4_extra_mlp_seeds": [],
              "in_process": True},
}


# -- worker-side helpers --------------------------------------------------------------------------
def _rss() -> dict:
    """This process's memory: peak (VmHWM) and current (VmRSS) resident set, and ru_maxrss, in MiB."""
    import resource

    d = {"ru_maxrss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(("VmHWM:", "VmRSS:")):
                key, val = line.split(":", 1)
                d[f"{key.lower()}_mib"] = int(val.split()[0]) / 1024
    except OSError:
        pass
    return d


# -- workers --------------------------------------------------------------------------------------
def w_baseline(a: dict) -> dict:
    import torch

    import qpo
    import qpo.forecasting  # noqa: F401

    out = {"torch_threads": torch.get_num_threads(), "rss": _rss()}
    # torch's own training runtime (autograd, Adam, thread pool, allocator): a few steps of a tiny net
    torch.set_num_threads(a.get("threads") or torch.get_num_threads())
    net = torch.nn.Sequential(torch.nn.Linear(14, 8), torch.nn.ReLU(), torch.nn.Linear(8, 1))
    opt = torch.optim.Adam(net.parameters())
    x = torch.randn(512, 14)
    for _ in range(5):
        opt.zero_grad()
        net(x).pow(2).mean().backward()
        opt.step()
    out["rss_after_tiny_training"] = _rss()
    return out


def w_fold_timing(a: dict) -> dict:
    """Section 1: one model's walk-forward on 20 assets, 10 years; memory after each fold."""
    import numpy as np
    import torch

    import qpo
    from qpo.forecasting import ForecasterConfig, walk_forward

    rss = {"after_imports": _rss()}
    prices = qpo.load_prices("sp500").loc[a["period"][0]:a["period"][1]]
    rss["after_load"] = _rss()
    config = ForecasterConfig(model=a["model"], **a.get("overrides", {}))
    per_fold_rss = []
    res = walk_forward(prices, config, retrain_months=12, threads=a.get("threads"),
                       progress=lambda k, n, row: per_fold_rss.append(_rss()))
    f = res.folds
    fit_s = f["fit_seconds"].to_numpy()
    ep = f["epochs"].to_numpy()
    return {"model": a["model"], "config": config.params(), "torch_threads": torch.get_num_threads(),
            "data": f"{prices.shape[1]} assets, {prices.index[0].date()}..{prices.index[-1].date()} "
                    f"({len(prices)} dates)",
            "folds": len(f), "test_period": f"{f['test_start'].iloc[0].date()}..{f['test_end'].iloc[-1].date()}",
            "n_train": [int(x) for x in f["n_train"]], "n_validation": [int(x) for x in f["n_validation"]],
            "fit_seconds": [float(x) for x in fit_s], "epochs": [int(x) for x in ep],
            "best_epochs": [int(x) for x in f["best_epoch"]],
            "fit_median_s": float(np.median(fit_s)), "fit_min_s": float(fit_s.min()), "fit_max_s": float(fit_s.max()),
            "seconds_per_epoch_median": float(np.median(fit_s / ep)),
            "walk_forward_s": res.seconds, "oos_mean_ic": float(res.metrics.loc["model", "mean_ic"]),
            "rss": {**rss, "after_fold_1": per_fold_rss[0], "after_last_fold": per_fold_rss[-1]},
            "rss_per_fold_hwm_mib": [r.get("vmhwm_mib") for r in per_fold_rss]}


def w_threads(a: dict) -> dict:
    """One LSTM fit (section 1's data, its last fold, a fixed number of epochs) with 1 and with 2
    torch threads, after an untimed warm-up fit."""
    import numpy as np
    import torch

    import qpo
    from qpo.forecasting import ForecasterConfig, compute_features, fit, forward_returns

    prices = qpo.load_prices("sp500").loc[a["period"][0]:a["period"][1]]
    more = a.get("overrides", {})
    config = ForecasterConfig(model="lstm", **{**more, "max_epochs": a["epochs"], "patience": a["epochs"]})
    panel = compute_features(prices, config.features)
    target = forward_returns(prices, config.horizon).to_numpy(dtype=float)
    end = len(prices) - 1 - 252  # about a year before the end: section 1's last cutoff
    default_threads = torch.get_num_threads()
    fit(panel, target, ForecasterConfig(model="lstm", **{**more, "max_epochs": 1}), end_position=end, threads=1)  # warm-up
    out = {"default_threads": default_threads, "model": "lstm", "epochs": a["epochs"], "runs": []}
    for th in a["order"]:
        m = fit(panel, target, config, end_position=end, threads=th)
        out["runs"].append({"threads": th, "fit_seconds": m.fit_seconds, "epochs": len(m.history),
                            "n_train": m.n_train, "val_loss": float(np.min([e["val_loss"] for e in m.history]))})
    return out


def _shared_prices(years: int = 6, n_assets: int | None = None):
    """The wide adjusted-close panel of the shared bars over the last ``years`` years plus a
    feature lookback; the tickers with a price on the last date, no gap after their first price,
    and at least a year of training samples (the first ``n_assets`` of them alphabetically if given)."""
    import numpy as np
    import pandas as pd

    from qpo.forecasting import ForecasterConfig

    t0 = time.perf_counter()
    full = shared_closes()
    load_s = time.perf_counter() - t0
    last = full.index[-1]
    need = max(ForecasterConfig(model=m).min_history for m in MODELS)
    first_sample = full.index.searchsorted(last - pd.DateOffset(years=years))
    px = full.iloc[max(0, first_sample - need):]
    on_last = px.iloc[-1].notna()
    valid = px.notna().to_numpy()
    first = np.where(valid.any(axis=0), valid.argmax(axis=0), len(px))
    rows = np.arange(len(px))[:, None]
    gap = ((rows > first) & ~valid).any(axis=0)
    enough = (len(px) - first) >= need + 21 + 252
    keep = on_last.to_numpy() & ~gap & enough
    info = {"tickers_in_file": full.shape[1], "file_period": f"{full.index[0].date()}..{last.date()}",
            "load_and_pivot_s": load_s, "panel_period": f"{px.index[0].date()}..{last.date()}",
            "panel_dates": len(px), "no_price_on_last_date": int((~on_last).sum()),
            "gap_after_listing": sorted(px.columns[on_last.to_numpy() & gap]),
            "too_short": sorted(px.columns[on_last.to_numpy() & ~gap & ~enough]),
            "min_prices": int(need + 21 + 252), "n_assets": int(keep.sum()),
            "full_history": int((keep & (first == 0)).sum())}
    px = px.loc[:, keep]
    if n_assets:
        px = px[sorted(px.columns)[:n_assets]]
        info.update(n_assets=px.shape[1], first_alphabetically=n_assets)
    return px, info


def w_prep500(a: dict) -> dict:
    prices, info = _shared_prices(a["years"], a.get("assets"))
    prices.to_pickle(Path(a["dir"]) / "prices500.pkl")
    return {"data": info, "rss": _rss()}


def w_train500(a: dict) -> dict:
    import numpy as np
    import pandas as pd
    import torch

    from qpo.forecasting import ForecasterConfig, train_forecaster

    rss = {"after_imports": _rss()}
    prices = pd.read_pickle(Path(a["dir"]) / "prices500.pkl")
    rss["after_load"] = _rss()
    config = ForecasterConfig(model=a["model"], **a["overrides"])
    t0 = time.perf_counter()
    model = train_forecaster(prices, config, threads=a.get("threads"))
    train_s = time.perf_counter() - t0
    rss["after_training"] = _rss()
    fc = model.predict(prices)
    model.save(Path(a["dir"]) / f"model_{a['model']}")
    return {"model": a["model"], "config": config.params(), "torch_threads": torch.get_num_threads(),
            "train_s": train_s, "fit_seconds": model.fit_seconds, "epochs": len(model.history),
            "n_train": model.n_train, "n_validation": model.n_validation, "n_dropped_nan": model.n_dropped_nan,
            "train_period": f"{model.train_start.date()}..{model.train_end.date()}",
            "n_parameters": int(sum(p.numel() for p in model.net.parameters())),
            "forecast_checksum": float(np.sum(fc.values.to_numpy())), "rss": rss}


def w_predict500(a: dict) -> dict:
    import numpy as np
    import pandas as pd
    import torch

    from qpo.forecasting import TrainedForecaster, compute_features, window_at

    torch.set_num_threads(a.get("threads") or torch.get_num_threads())
    rss = {"after_imports": _rss()}
    prices = pd.read_pickle(Path(a["dir"]) / "prices500.pkl")
    model = TrainedForecaster.load(Path(a["dir"]) / f"model_{a['model']}")
    rss["after_load"] = _rss()
    as_of = prices.index[-1]
    reps = a["repeats"]
    pred = timeit(lambda: model.predict(prices, as_of=as_of), reps)
    rss["after_predict"] = _rss()
    fc = pred.pop("output")
    need = model.config.min_history + 1
    tail = prices.loc[:as_of].iloc[-(need + 5):]
    feat = timeit(lambda: compute_features(tail, model.config.features), reps)
    panel = feat.pop("output")
    x, ok = window_at(panel, len(panel.dates) - 1, model.config.window)
    xs = np.ascontiguousarray(x[ok], dtype=np.float32)
    def forward():  # the network alone, as predict runs it (eval mode, no autograd, float32)
        model.net.eval()
        with torch.no_grad():
            return model.net(torch.from_numpy(xs)).numpy().astype(float)

    fwd = timeit(forward, max(reps, 20))
    direct = fwd.pop("output")
    vals = fc.values.reindex([t for t, o in zip(panel.tickers, ok) if o]).to_numpy()
    return {"model": a["model"], "torch_threads": torch.get_num_threads(), "as_of": str(as_of.date()),
            "n_forecast": int(len(fc.values)), "n_dropped": len(fc.dropped), "input_shape": list(xs.shape),
            "predict": pred, "features": feat, "forward": fwd,
            "forward_vs_predict_max_abs_diff": float(np.max(np.abs(direct - vals))),
            "forecast_checksum": float(np.sum(fc.values.to_numpy())), "rss": rss}


def _ridge(prices, res) -> dict:
    """A scikit-learn Ridge on the MLP's inputs (features on the forecast date), trained at each
    of ``res``'s cutoffs on the samples whose label is known there (the same sample dates and
    winsorized target as the network), scored on the same (date, ticker) pairs."""
    import numpy as np
    import pandas as pd
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from qpo.forecasting import (
        ForecasterConfig,
        compute_features,
        forecast_metrics,
        forward_returns,
        samples,
        window_at,
    )

    cfg = ForecasterConfig(model="mlp")
    panel = compute_features(prices, cfg.features)
    target = forward_returns(prices, cfg.horizon).to_numpy(dtype=float)
    dates, h = panel.dates, cfg.horizon
    out = pd.DataFrame(np.nan, index=res.realized.index, columns=panel.tickers)
    n_train = []
    t0 = time.perf_counter()
    for row in res.folds.itertuples():
        cutoff, start = dates.get_loc(row.train_end), dates.get_loc(row.train_start)
        first = max(start, cfg.min_history)
        pos = np.arange(cutoff - h, first - 1, -cfg.sample_stride)[::-1]  # labels known at the cutoff
        x, tp, ip = samples(panel, pos, 1)
        x = x[:, 0, :]
        y = target[tp, ip]
        ok = np.isfinite(x).all(axis=1) & np.isfinite(y) & panel.listed[tp, ip]
        x, y = x[ok], y[ok]
        lo, hi = np.quantile(y, [cfg.target_clip, 1 - cfg.target_clip])
        reg = make_pipeline(StandardScaler(), Ridge(alpha=RIDGE_ALPHA)).fit(x, np.clip(y, lo, hi))
        n_train.append(len(y))
        for d in out.index[(out.index >= row.test_start) & (out.index <= row.test_end)]:
            xt, okt = window_at(panel, dates.get_loc(d), 1)
            if okt.any():
                out.loc[d, np.asarray(panel.tickers)[okt]] = reg.predict(xt[okt, 0, :])
    mask = res.forecasts["model"].notna()
    m = forecast_metrics(out.where(mask), res.realized)
    model_m = res.metrics.loc["model"]
    return {"what": f"make_pipeline(StandardScaler(), Ridge(alpha={RIDGE_ALPHA})) on the {len(panel.names)} features "
                    f"of the forecast date; target winsorized at the {cfg.target_clip:g}/{1 - cfg.target_clip:g} "
                    f"quantiles; sample dates every {cfg.sample_stride} days with the label known at the cutoff",
            "metrics": m, "n_train": n_train, "seconds": time.perf_counter() - t0,
            "same_pairs_as_model": int(mask.to_numpy().sum()) == int(m["n_forecasts"]) or None,
            "model_minus_ridge_mean_ic": float(model_m["mean_ic"] - m["mean_ic"])}


def w_quality(a: dict) -> dict:
    """Section 4: one model's walk-forward over the whole bundled panel."""
    import torch

    import qpo
    from qpo.forecasting import ForecasterConfig, walk_forward

    prices = qpo.load_prices("sp500")
    h = ForecasterConfig().horizon
    # one first forecast date for every model: the latest default (the recurrent nets' window)
    s = max(ForecasterConfig(model=m).min_history for m in MODELS) + round(3.0 * 252) + h
    start = prices.index[max(s, prices.index.searchsorted(a["start"]) if a.get("start") else 0)]
    config = ForecasterConfig(model=a["model"], seed=a["seed"], **a.get("overrides", {}))
    res = walk_forward(prices, config, start=start, retrain_months=a["retrain_months"], window="expanding",
                       threads=a.get("threads"))
    f = res.folds
    out = {"model": a["model"], "seed": a["seed"], "config": config.params(), "torch_threads": torch.get_num_threads(),
           "data": f"{prices.shape[1]} assets, {prices.index[0].date()}..{prices.index[-1].date()}",
           "folds": len(f), "retrain_months": res.retrain_months, "window": res.window,
           "test_period": f"{res.realized.index[0].date()}..{res.realized.index[-1].date()}",
           "metrics": {k: dict(v) for k, v in res.metrics.iterrows()}, "verdict": res.verdict(),
           "beats_historical_mean": res.beats_historical_mean, "walk_forward_s": res.seconds,
           "fit_seconds_total": float(f["fit_seconds"].sum()), "epochs": [int(x) for x in f["epochs"]],
           "fold_mean_ic": [float(x) for x in f["mean_ic"]], "rss": _rss()}
    if a.get("ridge"):
        out["ridge"] = _ridge(prices, res)
    return out


WORKERS = {"baseline": w_baseline, "fold": w_fold_timing, "threads": w_threads, "prep500": w_prep500, "train500": w_train500,
           "predict500": w_predict500, "quality": w_quality}


# -- parent ---------------------------------------------------------------------------------------
def _worker(p: dict, kind: str, args: dict, *, threads: int | None = None) -> dict:
    """One measurement in a fresh process (in this one when ``p["in_process"]``: the smoke run)."""
    return run_worker(module_name(__file__), kind, args, threads=threads,
                      in_process=WORKERS if p["in_process"] else None)


def section_training(p: dict) -> dict:
    out = {}
    for m in p["models"]:
        print(f"   {m} ...", flush=True)
        out[m] = _worker(p, "fold", {"model": m, "overrides": p["s1_overrides"], "threads": 1,
                                     "period": p["s1_period"]}, threads=1)
    print("   threads: one LSTM fit with 1 and 2 torch threads ...", flush=True)
    out["threads"] = _worker(p, "threads", {"epochs": p["threads_epochs"], "order": [1, 2], "period": p["s1_period"],
                                            "overrides": p["threads_overrides"]})
    return out


def section_inference(p: dict, tmp: str) -> dict:
    prep = _worker(p, "prep500", {"dir": tmp, "years": p["s2_years"], "assets": p["s2_assets"]}, threads=1)
    if "error" in prep:
        return prep
    out = {"data": prep["data"], "prep_rss": prep["rss"], "overrides": p["s2_overrides"], "models": {}}
    for m in p["models"]:
        print(f"   {m} ...", flush=True)
        tr = _worker(p, "train500", {"dir": tmp, "model": m, "overrides": p["s2_overrides"], "threads": 1}, threads=1)
        pr = _worker(p, "predict500", {"dir": tmp, "model": m, "repeats": p["s2_repeats"], "threads": 1},
                     threads=1) if "error" not in tr else {"error": "not run: training failed"}
        if "error" not in pr:
            pr["checksum_diff_vs_training_process"] = abs(pr["forecast_checksum"] - tr["forecast_checksum"])
        out["models"][m] = {"train": tr, "predict": pr}
    return out


def section_quality(p: dict, jobs: int) -> dict:
    """(model, seed, retrain months) runs, the longest first; Ridge rides along with every MLP seed-0 run."""
    rm, mm = p["s4_rnn_retrain_months"], p["s4_retrain_months"]
    rnns = [m for m in ("gru", "lstm") if m in p["models"]]
    runs = [(m, 0, rm) for m in rnns] + [("mlp", 0, mm)] + [("mlp", s, mm) for s in p["s4_extra_mlp_seeds"]]
    if rm != mm:
        runs.append(("mlp", 0, rm))

    def go(r):
        m, s, months = r
        t0 = time.perf_counter()
        res = _worker(p, "quality", {"model": m, "seed": s, "retrain_months": months, "overrides": p["s4_overrides"],
                                     "threads": 1, "ridge": (m, s) == ("mlp", 0), "start": p["s4_start"]}, threads=1)
        print(f"   {m} seed {s}, retrain {months} months: {time.perf_counter() - t0:.0f} s", flush=True)
        return res

    t0 = time.perf_counter()
    jobs = 1 if p["in_process"] else jobs  # workers in this process share torch's thread setting: one at a time
    with ThreadPoolExecutor(max_workers=jobs) as ex:
        results = list(ex.map(go, runs))
    return {"runs": {f"{m}_seed{s}_{months}m": r for (m, s, months), r in zip(runs, results)}, "jobs": jobs,
            "wall_s": time.perf_counter() - t0, "retrain_months": mm, "rnn_retrain_months": rm,
            "overrides": p["s4_overrides"]}


def main(argv: list[str] | None = None) -> None:
    ap = parser(__doc__)
    ap.add_argument("--jobs", type=int, default=2, help="section 4 walk-forwards run at a time (1 thread each)")
    ap.add_argument("--rnn-retrain-months", type=int, default=None,
                    help="section 4: retrain schedule of the LSTM/GRU (full mode default 60; 12 = the MLP's protocol)")
    add_worker_options(ap)
    args = ap.parse_args(argv)
    if args.worker:
        serve_worker(WORKERS, args.worker, args.worker_args)
        return
    t_start = time.perf_counter()
    results = start(args, PACKAGES)
    p = dict(MODES[results["mode"]])
    if args.rnn_retrain_months is not None:
        p["s4_rnn_retrain_months"] = args.rnn_retrain_months
    results["parameters"] = p
    print("0. baseline process (imports torch + qpo) ...", flush=True)
    results["baseline"] = run_worker(module_name(__file__), "baseline", {"threads": 1}, threads=1)  # always fresh
    print(f"1. training time per walk-forward fold, 20 assets, {p['s1_period'][0][:4]}-{p['s1_period'][1][:4]} ...",
          flush=True)
    results["training_20"] = section_training(p)
    skipped = shared_data(args)
    if skipped:
        print(skipped, flush=True)
        results["inference_500"] = {"skipped": skipped}
    else:
        print("2. inference, ~500 assets of the shared data ...", flush=True)
        tmp = tempfile.mkdtemp(prefix="qpo_bench_forecaster_")
        try:
            results["inference_500"] = section_inference(p, tmp)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    print(f"4. out-of-sample quality, bundled panel, {args.jobs} runs at a time ...", flush=True)
    results["quality"] = section_quality(p, max(1, args.jobs))
    finish(results, t_start)
    text = write_table(results)
    write_results(args.out, NAME, results, text)
    print(text)


# -- markdown -------------------------------------------------------------------------------------
def _mib(v):
    return "-" if v is None else f"{v:.0f}"


def write_table(r: dict) -> str:
    where = ("Every measurement but the baseline runs in the benchmark's own process (smoke run)."
             if r["parameters"]["in_process"] else "Every measurement runs in its own subprocess.")
    L = header(r, "Return forecasters: training, inference, memory, out-of-sample quality", NAME, where)
    L += [f"- parameters: {r['parameters']}", ""]
    base = r["baseline"]
    b_peak = (base.get("rss") or {}).get("vmhwm_mib")

    # 1
    s1 = {k: x for k, x in r["training_20"].items() if k in MODELS}
    th = r["training_20"].get("threads", {})
    any1 = next((x for x in s1.values() if "error" not in x), {})
    L += ["## 1. Training time per walk-forward fold, 20 assets", "",
          (f"Bundled S&P 500 panel, {any1.get('data', '?')}; `walk_forward(prices, ForecasterConfig(model=m"
           f"{''.join(f', {k}={val}' for k, val in r['parameters']['s1_overrides'].items())}), retrain_months=12)` "
           f"(expanding window, defaults otherwise: hidden 32, 2 layers, max_epochs 40, patience 5, batch 512, "
           f"sample_stride 5; window 1 for the MLP, 21 days for LSTM/GRU); torch threads "
           f"{any1.get('torch_threads', '?')}."), "",
          "| model | folds | out of sample | train samples (first..last fold) | fit per fold: median | min | max | "
          "epochs per fold | s per epoch (median) | walk-forward total | process wall |",
          "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for name, x in s1.items():
        if "error" in x:
            L.append(f"| {name} | error: {x['error'][:200]} |")
            continue
        L.append(f"| {name} | {x['folds']} | {x['test_period']} | {x['n_train'][0]}..{x['n_train'][-1]} | "
                 f"{ms(x['fit_median_s'])} | {ms(x['fit_min_s'])} | {ms(x['fit_max_s'])} | "
                 f"{', '.join(map(str, x['epochs']))} | {ms(x['seconds_per_epoch_median'])} | "
                 f"{ms(x['walk_forward_s'])} | {ms(x['subprocess_wall_s'])} |")
    L += ["", "Epochs include the `patience` epochs without improvement that early stopping waits for; the walk-"
              "forward total adds the features and the forecasts of every fold to the fits; the first fit of a "
              "process also pays torch's one-off start-up (most of the MLP's max).", ""]
    if th.get("runs"):
        L += [(f"Threads: the same LSTM fit ({th['runs'][0]['n_train']} samples, {th['epochs']} epochs, after a "
               f"warm-up fit; torch's default here is {th['default_threads']} threads):"), "",
              "| torch threads | fit | per epoch |", "| --- | --- | --- |"]
        for x in th["runs"]:
            L.append(f"| {x['threads']} | {ms(x['fit_seconds'])} | {ms(x['fit_seconds'] / x['epochs'])} |")
        L.append("")
    elif th:
        L += [f"Threads comparison: {th.get('error', '?')[:300]}", ""]

    # 2
    s2 = r["inference_500"]
    L += ["## 2. Inference, ~500 assets of the shared data", ""]
    if "skipped" in s2 or "error" in s2:
        L += [s2.get("skipped") or s2["error"], ""]
    else:
        d = s2["data"]
        L += [(f"`{BARS.name}` ({d['tickers_in_file']} tickers, {d['file_period']}; read and pivoted in "
               f"{ms(d['load_and_pivot_s'])}): {d['n_assets']} tickers with a price on the last date, no gap after "
               f"their first price and at least {d['min_prices']} prices (lookback, one label, a year of samples) "
               f"({d['full_history']} of them over the whole panel {d['panel_period']}, {d['panel_dates']} dates); "
               f"dropped: {d['no_price_on_last_date']} without a price on the last date, "
               f"{', '.join(d['gap_after_listing']) or 'none'} for a gap, {', '.join(d['too_short']) or 'none'} "
               "for too short a history."), "",
              (f"Each model trained once on that panel with `ForecasterConfig(model=m, "
               f"{', '.join(f'{k}={val}' for k, val in s2['overrides'].items())})`; then, in a fresh process that "
               "loads the saved model, `predict(prices, as_of=last date)` (features of the last `min_history + 6` "
               "dates, then the network) and, apart, `compute_features` on those dates and the "
               "forward pass alone (the network in eval mode, no autograd, on the (assets, window, features) array). Medians of repeats "
               "after a first call."), "",
              "| model | parameters | train samples | training (epochs) | predict: first | predict: median (n) | "
              "features | forward pass: first | forward pass: median (n) | input | forecasts | "
              "forward = predict |", "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
        for name, x in s2["models"].items():
            tr, pr = x["train"], x["predict"]
            if "error" in tr or "error" in pr:
                L.append(f"| {name} | error: {(tr.get('error') or pr.get('error'))[:200]} |")
                continue
            L.append(f"| {name} | {tr['n_parameters']} | {tr['n_train']} + {tr['n_validation']} | "
                     f"{ms(tr['train_s'])} ({tr['epochs']}) | {ms(pr['predict']['first_s'])} | "
                     f"{ms(pr['predict']['median_s'])} ({pr['predict']['repeats']}) | "
                     f"{ms(pr['features']['median_s'])} | {ms(pr['forward']['first_s'])} | "
                     f"{ms(pr['forward']['median_s'])} ({pr['forward']['repeats']}) | "
                     f"{' x '.join(map(str, pr['input_shape']))} | {pr['n_forecast']} ({pr['n_dropped']} dropped) | "
                     f"{fmt(pr['forward_vs_predict_max_abs_diff'], 2)} |")
        L += ["", "Last column: max abs difference between the forward pass alone and `predict`'s forecasts "
                  "(0 = the same numbers).", ""]

    # 3
    L += ["## 3. Peak memory (resident set, MiB)", "",
          ("Each row is one subprocess; `peak` is its VmHWM (the high-water mark of its own address space) at the "
           "end of the stage, `ru_maxrss` the same from `getrusage(RUSAGE_SELF)`; `+ baseline` subtracts the "
           "baseline process's peak."), "",
          "| process | stage | peak | + baseline | ru_maxrss |", "| --- | --- | --- | --- | --- |"]

    def mem_row(proc, stage, d):
        if not d:
            return
        pk = d.get("vmhwm_mib")
        inc = f"{pk - b_peak:+.0f}" if pk is not None and b_peak is not None else "-"
        L.append(f"| {proc} | {stage} | {_mib(pk)} | {inc} | {_mib(d.get('ru_maxrss_mib'))} |")

    mem_row("baseline", "`import torch, qpo, qpo.forecasting`", base.get("rss"))
    mem_row("baseline", "+ 5 Adam steps of a 14-8-1 net (torch's training runtime, no data)",
            base.get("rss_after_tiny_training"))
    for name, x in s1.items():
        if "error" in x:
            continue
        mem_row(f"section 1, {name}", "imports + bundled prices", x["rss"]["after_load"])
        mem_row(f"section 1, {name}", f"after fold 1 (one fit on {x['n_train'][0]} samples)", x["rss"]["after_fold_1"])
        mem_row(f"section 1, {name}", f"after all {x['folds']} folds (last fit on {x['n_train'][-1]} samples)",
                x["rss"]["after_last_fold"])
    if "models" in s2:
        mem_row("section 2, data", "read the parquet, pivot, select", s2["prep_rss"])
        for name, x in s2["models"].items():
            tr, pr = x["train"], x["predict"]
            if "error" not in tr:
                mem_row(f"section 2, {name} training", "imports + 500-asset prices", tr["rss"]["after_load"])
                mem_row(f"section 2, {name} training", f"after training ({tr['n_train']} samples)",
                        tr["rss"]["after_training"])
            if "error" not in pr:
                mem_row(f"section 2, {name} predict", "imports + prices + saved model", pr["rss"]["after_load"])
                mem_row(f"section 2, {name} predict", f"after {pr['predict']['repeats'] + 1} predicts",
                        pr["rss"]["after_predict"])
    L.append("")

    # 4
    q = r["quality"]
    runs = q["runs"]
    first = next((x for x in runs.values() if "error" not in x), {})
    L += ["## 4. Out-of-sample quality, bundled panel", "",
          (f"{first.get('data', '?')}; walk-forward with an expanding window, forecasts every 21 trading days "
           f"{first.get('test_period', '?')} (the same first forecast date for every model: the latest default, the "
           "recurrent nets' 21-day window, so every run forecasts the same dates); ForecasterConfig defaults"
           f"{''.join(f', {k}={val}' for k, val in q['overrides'].items())}. Metrics per forecast date across the 20 "
           "tickers (rank IC = Spearman), every forecast of a run scored on the same (date, ticker) pairs. The MLP "
           f"and the Ridge retrain every {q['retrain_months']} months; the LSTM and GRU every "
           f"{q['rnn_retrain_months']} months" + (" (see the module doc: cost)" if q['rnn_retrain_months'] !=
                                                  q['retrain_months'] else "") +
           f". Runs: 1 torch thread each, {q['jobs']} at a time, {q['wall_s']:.0f} s in all."), ""]
    cols = [("mean_ic", "mean IC", 4), ("ic_t_stat", "IC t-stat", 3), ("ic_positive_share", "IC > 0", 3),
            ("hit_rate", "hit rate", 3), ("mse", "MSE", 4), ("n_dates", "dates", 4)]
    for key, x in runs.items():
        if "error" in x:
            L += [f"### {key}", "", f"error: {x['error'][:500]}", ""]
            continue
        L += [f"### {x['model'].upper()}, seed {x['seed']}, retrain every {x['retrain_months']} months "
              f"({x['folds']} folds, epochs per fold {min(x['epochs'])}-{max(x['epochs'])}, "
              f"{ms(x['walk_forward_s'])})", "",
              "| forecast | " + " | ".join(c[1] for c in cols) + " |", "| --- " * (len(cols) + 1) + "|"]
        for fname, row in x["metrics"].items():
            L.append(f"| {fname} | " + " | ".join(fmt(row.get(c[0]), c[2]) for c in cols) + " |")
        if "ridge" in x:
            rm = x["ridge"]["metrics"]
            L.append("| sklearn Ridge (reference) | " + " | ".join(fmt(rm.get(c[0]), c[2]) for c in cols) + " |")
        L += ["", x["verdict"], ""]
        if "ridge" in x:
            L += [f"Ridge: {x['ridge']['what']}; one fit per fold ({x['ridge']['n_train'][0]}..."
                  f"{x['ridge']['n_train'][-1]} samples), {x['ridge']['seconds']:.1f} s for all folds.", ""]
    L += ["### Summary", "",
          "| forecaster | seed | retrain (months) | folds | mean IC | IC t-stat | hit rate | MSE | beats historical mean |",
          "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    hist = {}
    for x in runs.values():
        if "error" in x:
            continue
        mm, months = x["metrics"]["model"], x["retrain_months"]
        hist[months] = (x["metrics"]["historical_mean"], x["folds"])
        L.append(f"| {x['model']} | {x['seed']} | {months} | {x['folds']} | {fmt(mm['mean_ic'], 4)} | "
                 f"{fmt(mm['ic_t_stat'], 3)} | {fmt(mm['hit_rate'], 3)} | {fmt(mm['mse'], 4)} | "
                 f"{fmt(x['beats_historical_mean'])} |")
    for x in runs.values():
        if "ridge" in x:
            rm, hm = x["ridge"]["metrics"], x["metrics"]["historical_mean"]
            L.append(f"| sklearn Ridge | - | {x['retrain_months']} | {x['folds']} | {fmt(rm['mean_ic'], 4)} | "
                     f"{fmt(rm['ic_t_stat'], 3)} | {fmt(rm['hit_rate'], 3)} | {fmt(rm['mse'], 4)} | "
                     f"{fmt(bool(rm['mean_ic'] > hm['mean_ic']))} |")
    for months, (hm, folds) in sorted(hist.items()):
        L.append(f"| historical mean | - | {months} | {folds} | {fmt(hm['mean_ic'], 4)} | {fmt(hm['ic_t_stat'], 3)} | "
                 f"{fmt(hm['hit_rate'], 3)} | {fmt(hm['mse'], 4)} | - |")
    mlps = [x for x in runs.values()
            if "error" not in x and x["model"] == "mlp" and x["retrain_months"] == q["retrain_months"]]
    if len(mlps) > 1:
        ics = [x["metrics"]["model"]["mean_ic"] for x in mlps]
        beats = sum(bool(x["beats_historical_mean"]) for x in mlps)
        L += ["", (f"MLP seed spread of the mean IC ({q['retrain_months']}-month retrain): {min(ics):.4f} to "
                   f"{max(ics):.4f} over {len(ics)} seeds; {beats} of {len(ics)} seeds beat the historical mean's "
                   f"{hist[q['retrain_months']][0]['mean_ic']:.4f}"
                   + (" - the verdict depends on the seed." if 0 < beats < len(ics) else "."))]
    L += ["", "## Notes", ""] + [f"- {n}" for n in findings(r)]
    L.append("")
    return "\n".join(L)


def findings(r: dict) -> list[str]:
    """Facts worth a reader's attention, derived from the figures."""
    notes = []
    th = r["training_20"].get("threads", {})
    if len(th.get("runs", [])) >= 2:
        one = [x for x in th["runs"] if x["threads"] == 1]
        two = [x for x in th["runs"] if x["threads"] == 2]
        if one and two:
            ratio = two[0]["fit_seconds"] / one[0]["fit_seconds"]
            notes.append(f"threads: the same LSTM fit took {ratio:.1f}x as long with 2 torch threads as with 1 "
                         f"(load average at the start {r['machine'].get('load_average_start')}). qpo's fit/"
                         "walk_forward/train_forecaster leave torch at its default (one thread per core) when "
                         "threads=None; on a shared machine threads=1 is the safe choice.")
    runs = [x for x in r["quality"]["runs"].values() if "error" not in x]
    sig = [x for x in runs if x["metrics"]["model"].get("ic_t_stat") is not None
           and abs(x["metrics"]["model"]["ic_t_stat"]) >= 2]
    h_t = next((x["metrics"]["historical_mean"].get("ic_t_stat") for x in runs), None)
    n_dates = next((x["metrics"]["model"].get("n_dates") for x in runs), None)
    notes.append(f"quality: {len(sig)} of {len(runs)} network runs have a mean rank IC with |t| >= 2; the "
                 f"historical mean's t-stat is {fmt(h_t, 3)}"
                 + (f". With no significant IC on 20 stocks and {fmt(n_dates)} forecast dates, the ranking of the "
                    "forecasters is within the noise (see the MLP's seed spread)." if not sig and h_t is not None
                    and abs(h_t) < 2 else "."))
    hm = {x["retrain_months"]: x["metrics"]["historical_mean"]["mean_ic"] for x in runs}
    if len(set(round(v, 12) for v in hm.values())) == 1 and len(hm) > 1:
        notes.append("the historical-mean baseline is the same under every retrain schedule (its window grows "
                     "with each forecast date, not with the folds): a sanity check that the runs share dates.")
    return notes


if __name__ == "__main__":
    main()
