"""Registering forecasters in MLflow's model registry, promoted on out-of-sample evidence.

:func:`log_and_register` logs one training run (parameters, per-fold and overall out-of-sample
metrics, the feature list, the IC series, the data's hash and the code version, and the model as
an MLflow ``pyfunc`` with its signature and an input example), registers the model as
``qpo-return-forecaster`` and gives the new version an alias:

* ``champion`` when its out-of-sample mean rank IC is positive and beats the historical-mean
  baseline's over the same forecasts **and** the current champion's (or there is no champion yet),
  the champion forecasting the same horizon (one of another horizon is not compared with);
* ``challenger`` otherwise (the model is tracked, not promoted).

The decision and its reason are tags of the model version (``qpo.promotion``,
``qpo.promotion_reason``) and of the run. Aliases, not the deprecated stages. The champion's IC
is the one logged when it was registered (its own walk-forward): a retrained model is compared
with the evidence its predecessor was promoted on.

The model is logged from code: MLflow copies :mod:`qpo.tracking.forecaster_pyfunc` (the file
:data:`PYFUNC_CODE`) into the model and runs it when the model is loaded; the weights and the
configuration are artifacts. :func:`train_and_register` evaluates, trains and registers in one call.
"""
from __future__ import annotations

import math
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from qpo._checks import package_versions
from qpo.errors import DataError
from qpo.tracking.mlflow_run import TrackedRun, _locked, code_version, configure, tracked_run
from qpo.tracking.registry import (
    CHALLENGER,
    CHAMPION,
    MODEL_NAME,
    _registered,
    current_champion,
    numeric_tag,
    registry_client,
)

if TYPE_CHECKING:
    from qpo.forecasting import TrainedForecaster, WalkForwardResult

#: the MLflow model-from-code file of a qpo forecaster (what MLflow copies into every logged model)
PYFUNC_CODE = Path(__file__).with_name("forecaster_pyfunc.py")


@dataclass(frozen=True)
class Registration:
    """What :func:`log_and_register` did."""

    model_name: str
    version: str
    alias: str  # "champion" or "challenger"
    promoted: bool
    reason: str
    run_id: str
    model_uri: str  # models:/name/version
    oos_mean_ic: float
    baseline_mean_ic: float
    previous_champion: str | None  # version
    previous_champion_ic: float | None

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)



def promotion_decision(oos_ic: float, baseline_ic: float, champion_version: str | None,
                       champion_ic: float | None, horizon: int | None = None,
                       champion_horizon: int | None = None) -> tuple[bool, str]:
    """``(promote, reason)`` for a new version with out-of-sample mean IC ``oos_ic``. A champion
    forecasting another horizon is not compared with (a 63-day IC is not a 21-day one): the new
    version is not promoted, and says why."""
    if not math.isfinite(oos_ic):
        return False, "not promoted: the model's out-of-sample mean IC is undefined (no forecast date had 3 names)"
    if not math.isfinite(baseline_ic):
        return False, "not promoted: the historical mean's IC is undefined, so the model cannot be shown to beat it"
    if oos_ic <= 0:
        return False, (f"not promoted: out-of-sample mean IC {oos_ic:.4f} is not positive (the historical mean's "
                       f"{baseline_ic:.4f}); a model that ranks names no better than chance is not promoted")
    if oos_ic <= baseline_ic:
        return False, (f"not promoted: out-of-sample mean IC {oos_ic:.4f} does not beat the historical mean's "
                       f"{baseline_ic:.4f} over the same forecasts")
    beat = f"out-of-sample mean IC {oos_ic:.4f} beats the historical mean's {baseline_ic:.4f}"
    if champion_version is None:
        return True, f"promoted: {beat}, and there was no champion"
    if horizon is not None and champion_horizon is not None and horizon != champion_horizon:
        return False, (f"not promoted: {beat}, but the champion (version {champion_version}) forecasts "
                       f"{champion_horizon} days and this model {horizon}: their ICs are not comparable, and the "
                       "champion's forecasts would change horizon unseen (set the champion alias by hand to "
                       "change it)")
    if champion_ic is None or not math.isfinite(champion_ic):
        return True, f"promoted: {beat}; the champion (version {champion_version}) has no recorded IC"
    if oos_ic > champion_ic:
        return True, f"promoted: {beat} and the champion's (version {champion_version}) {champion_ic:.4f}"
    return False, (f"not promoted: {beat} but not the champion's (version {champion_version}) "
                   f"{champion_ic:.4f}")



def _pip_requirements() -> list[str]:
    versions = package_versions(("mlflow", "torch", "numpy", "pandas", "cloudpickle"))
    return [f"{pkg}=={v.split('+')[0]}" if v else pkg for pkg, v in versions.items()]


def input_example(model: TrainedForecaster, prices: pd.DataFrame, volume: pd.DataFrame | None = None,
                  n_tickers: int = 2) -> pd.DataFrame:
    """A few rows of real features (the last ``window`` dates of the first ``n_tickers`` tickers
    that have every feature on those dates; delisted or newly listed tickers would give no rows
    or NaN)."""
    from qpo.forecasting import compute_features, window_at

    window = model.config.window
    assert window is not None  # set by ForecasterConfig.__post_init__
    need = model.config.min_history + 1
    label = {str(c): c for c in prices.columns}  # the model keeps tickers as str (int ids too)
    known = [label[t] for t in model.tickers if t in label]
    tail = prices[known].iloc[-(need + 5):]
    vol = volume.reindex(index=tail.index, columns=tail.columns) if volume is not None else None
    panel = compute_features(tail, model.config.features, vol)
    complete = window_at(panel, len(panel.dates) - 1, window)[1]
    chosen = [t for t, ok in zip(known, complete) if ok][:n_tickers]
    px = tail[chosen or known[:n_tickers]]
    vol = volume.reindex(index=px.index, columns=px.columns) if volume is not None else None
    frame = compute_features(px, model.config.features, vol).to_frame(px.index[-window:])
    return frame.reset_index(drop=True)


def log_and_register(result: WalkForwardResult, model: TrainedForecaster, prices: pd.DataFrame, *,
                     run_id: str | None = None, experiment: str = "weekly-retrain",
                     model_name: str = MODEL_NAME, data_hash: str | None = None,
                     tracking_uri: str | None = None, volume: pd.DataFrame | None = None,
                     extra_params: dict[str, Any] | None = None) -> Registration:
    """Log the walk-forward evaluation ``result`` and the final ``model`` (trained on all of
    ``prices``) to MLflow, register the model and promote it or not (see the module doc).

    ``run_id`` logs into an existing run (the pipeline runner's); otherwise a new run of
    ``experiment`` is started through :func:`qpo.tracking.tracked_run`."""
    import mlflow
    from mlflow.models import infer_signature

    from qpo.data import data_hash as hash_of

    if model.config != result.config:
        raise DataError("the model and the walk-forward result have different configurations; "
                        "evaluate and train the same ForecasterConfig")
    data_hash = data_hash or hash_of(prices)
    metrics = result.summary_metrics()
    oos_ic = float(result.metrics.loc["model", "mean_ic"])
    base_ic = float(result.metrics.loc["historical_mean", "mean_ic"])
    client = registry_client(tracking_uri)
    params = {**model.config.params(), "walk_forward.window": result.window,
              "walk_forward.retrain_months": result.retrain_months, "walk_forward.folds": len(result.folds),
              "walk_forward.first_forecast": str(result.realized.index[0].date()),
              "walk_forward.last_forecast": str(result.realized.index[-1].date()),
              "train_start": str(model.train_start.date()), "train_end": str(model.train_end.date()),
              "n_tickers": len(model.tickers), **(extra_params or {})}
    model.metadata.update({"oos_mean_ic": oos_ic, "baseline_mean_ic": base_ic,
                           "oos_mse": float(result.metrics.loc["model", "mse"]),
                           "per_ticker_oos_mse": {k: float(v) for k, v in result.per_ticker_mse().items()},
                           "data_hash": data_hash, "code_version": code_version()})
    example = input_example(model, prices, volume)

    def _log(run: TrackedRun) -> Registration:
        run.log_metrics(metrics)
        for _, row in result.folds.iterrows():
            run.log_metrics({f"fold_{k}": row[k] for k in ("mean_ic", "baseline_mean_ic", "hit_rate", "mse",
                                                          "baseline_mse", "fit_seconds", "best_epoch")},
                            step=int(row["fold"]))
        run.log_dict({"features": model.feature_names, "spec": model.config.features.to_dict()}, "features.json")
        run.log_dict({"folds": _records(result.folds)}, "walk_forward/folds.json")
        run.log_dict({"metrics": {name: {k: _clean(v) for k, v in row.items()} for name, row in result.metrics.iterrows()},
                      "verdict": result.verdict()}, "walk_forward/metrics.json")
        ic = result.ic
        run.log_dict({"dates": [str(d.date()) for d in ic.index],
                      **{c: [_clean(v) for v in ic[c]] for c in ic.columns}}, "walk_forward/ic.json")
        with tempfile.TemporaryDirectory() as tmp:
            path = model.save(Path(tmp) / "forecaster")
            out = pd.DataFrame({"date": example["date"], "ticker": example["ticker"],
                                "forecast": model.predict_frame(example).to_numpy(dtype=float)})
            info = mlflow.pyfunc.log_model(
                name="forecaster", python_model=str(PYFUNC_CODE), artifacts={"forecaster": str(path)},
                signature=infer_signature(example, out), input_example=example,
                pip_requirements=_pip_requirements(), registered_model_name=model_name,
                metadata={"qpo.model": model.config.model, "qpo.horizon": model.config.horizon})
        version = str(info.registered_model_version)
        # the champion is read, compared with and replaced under this host's tracking lock, its tags
        # before its alias: two retrains finishing at once (the scheduled one and one by hand) each
        # compare with the champion the other left, so the better of them ends champion (before, both
        # compared with the old one, read when they started, and the last to finish won); the lock is
        # this machine's: retrains on two machines against one team server are not serialized
        with _locked(run.tracking_uri, "choosing the forecaster's champion in"):
            champ = current_champion(model_name, tracking_uri=tracking_uri)
            # str: MLflow's SQL store gives get_model_version()'s version as an int (search_model_versions' a str)
            champ_version = str(champ.version) if champ is not None else None
            champ_ic = numeric_tag(champ.tags, "qpo.oos_mean_ic") if champ is not None else None
            champ_h = numeric_tag(champ.tags, "qpo.horizon") if champ is not None else None
            promote, reason = promotion_decision(oos_ic, base_ic, champ_version, champ_ic, int(model.config.horizon),
                                                 None if champ_h is None else int(champ_h))
            alias = CHAMPION if promote else CHALLENGER
            # full precision (repr): the next version is compared with this number, and a rounded one would
            # let a retrain with the very same IC "beat" it
            tags = {"qpo.promotion": alias, "qpo.promotion_reason": reason, "qpo.oos_mean_ic": repr(oos_ic),
                    "qpo.baseline_mean_ic": repr(base_ic),
                    "qpo.beats_historical_mean": str(result.beats_historical_mean),
                    "qpo.model": model.config.model, "qpo.horizon": str(model.config.horizon),
                    "qpo.data_hash": data_hash, "qpo.code_version": model.metadata["code_version"],
                    "qpo.train_end": str(model.train_end.date()), "qpo.run_id": run.run_id,
                    # before the alias moves: the way back if this run then fails (withdraw_run_champion)
                    **({"qpo.previous_champion": champ_version or ""} if promote else {})}
            for k, v in tags.items():
                client.set_model_version_tag(model_name, version, k, v)
            client.set_registered_model_alias(model_name, alias, version)
            if promote and champ_version is not None:
                client.set_model_version_tag(model_name, champ_version, "qpo.superseded_by", version)
        run.set_tags({"qpo.registered_model": model_name, "qpo.model_version": version, "qpo.promotion": alias,
                      "qpo.promotion_reason": reason})
        return Registration(model_name, version, alias, promote, reason, run.run_id,
                            f"models:/{model_name}/{version}", oos_ic, base_ic, champ_version, champ_ic)

    if run_id is None:
        with tracked_run(experiment, params=params, data_hash=data_hash,
                         tracking_uri=tracking_uri) as run:
            return _log(run)
    uri = configure(tracking_uri)
    with mlflow.start_run(run_id=run_id) as active:
        run = TrackedRun(active.info.run_id, active.info.experiment_id, uri)
        run.set_tags({"qpo.code_version": code_version(), "qpo.data_hash": data_hash})
        run.log_params(params)
        return _log(run)



def _clean(v):
    v = float(v)
    return v if math.isfinite(v) else None


def _records(frame: pd.DataFrame) -> list[dict]:
    out = []
    for rec in frame.to_dict("records"):
        out.append({k: (str(v.date()) if isinstance(v, pd.Timestamp) else
                        _clean(v) if isinstance(v, (float, np.floating)) else
                        int(v) if isinstance(v, (np.integer,)) else v) for k, v in rec.items()})
    return out



def train_and_register(prices: pd.DataFrame, config=None, *, retrain_months: int = 12, window: str = "expanding",
                       train_years: float | None = None, start=None, run_id: str | None = None,
                       experiment: str = "weekly-retrain", model_name: str = MODEL_NAME,
                       tracking_uri: str | None = None, volume: pd.DataFrame | None = None,
                       threads: int | None = None, progress=None):
    """Walk-forward evaluate ``config`` on ``prices``, train the final model on all of them, log
    both and register the model: ``(WalkForwardResult, TrainedForecaster, Registration)``."""
    from qpo.data import periods_per_year
    from qpo.forecasting import ForecasterConfig, compute_features, fit, forward_returns, walk_forward

    config = config or ForecasterConfig()
    result = walk_forward(prices, config, start=start, retrain_months=retrain_months, window=window,
                          train_years=train_years, volume=volume, threads=threads, progress=progress)
    panel = compute_features(prices, config.features, volume)
    last = len(panel.dates) - 1
    # (walk_forward has refused a rolling window without train_years)
    first = 0 if window == "expanding" or train_years is None else max(0, last - int(round(train_years * periods_per_year(prices.index))))
    final = fit(panel, forward_returns(prices, config.horizon).to_numpy(dtype=float), config, end_position=last,
                start_position=first, threads=threads)
    reg = log_and_register(result, final, prices, run_id=run_id, experiment=experiment, model_name=model_name,
                           tracking_uri=tracking_uri, volume=volume)
    return result, final, reg


def withdraw_run_champion(run_id: str | None, why: str, *, model_name: str = MODEL_NAME,
                          tracking_uri: str | None = None) -> str | None:
    """Run ``run_id`` ended FAILED or KILLED (a later cell failed, a signal stopped it): the
    versions it registered are tagged ``qpo.withdrawn`` (``why``), and when one of them is the
    champion it becomes a challenger and the champion it superseded (``qpo.previous_champion``,
    skipping withdrawn ones) is champion again (none: no champion). A run that ended badly does
    not leave its model serving forecasts, nor come back as the champion when a later one is
    withdrawn. Returns what was done, or None when the run registered nothing."""
    from qpo.tracking.mlflow_run import missing_store

    if not run_id or missing_store(tracking_uri) is not None:
        return None
    client = registry_client(tracking_uri)
    if not _registered(client, model_name):
        return None
    mine = [mv for mv in client.search_model_versions(f"name='{model_name}'") if mv.run_id == run_id]
    if not mine:  # the usual failed run: it registered nothing (no lock taken)
        return None
    with _locked(configure(tracking_uri), "withdrawing a champion in"):
        for mv in mine:
            client.set_model_version_tag(model_name, str(mv.version), "qpo.withdrawn", why)
        champ = current_champion(model_name, tracking_uri=tracking_uri)
        if champ is None or champ.run_id != run_id:
            return f"version(s) {', '.join(str(mv.version) for mv in mine)} withdrawn ({why}); not the champion"
        version = str(champ.version)
        client.set_model_version_tag(model_name, version, "qpo.promotion", CHALLENGER)
        client.set_model_version_tag(model_name, version, "qpo.promotion_reason", f"withdrawn: {why}")
        client.set_registered_model_alias(model_name, CHALLENGER, version)
        back = champ.tags.get("qpo.previous_champion")
        if back is None:  # registered before the tag: the champion it superseded says so
            older = [mv for mv in client.search_model_versions(f"name='{model_name}'")
                     if mv.tags.get("qpo.superseded_by") == version]
            back = str(max(int(mv.version) for mv in older)) if older else None
        back = back or None
        seen = {version}
        while back is not None and back not in seen:
            seen.add(back)
            earlier = client.get_model_version(model_name, back)
            if "qpo.withdrawn" not in earlier.tags:
                break
            back = earlier.tags.get("qpo.previous_champion") or None
        else:
            back = None
        if back is not None:
            client.set_registered_model_alias(model_name, CHAMPION, back)
            return f"version {version} withdrawn as champion ({why}); version {back} is champion again"
        client.delete_registered_model_alias(model_name, CHAMPION)
        return f"version {version} withdrawn as champion ({why}); there is no champion"
