"""The MLflow side of the forecaster: what a training run logs, the promotion rule (champion only on
out-of-sample evidence, aliases not stages), loading by alias / version / name, and the errors for
a registry that does not hold what was asked for or a model whose signature does not match.

One MLflow (SQLite + artifacts in a temporary QPO_HOME) serves the whole module: a real run on
eight bundled S&P 500 stocks, and a promotion sequence on synthetic prices built so that the
outcome is known (a persistent drift the historical mean captures; drift regimes that recent
returns reveal and the expanding mean does not)."""
from __future__ import annotations

import json
import math
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

import qpo
from qpo.errors import DataError
from qpo.forecasting import FeatureSpec, ForecasterConfig, compute_features
from qpo.tracking import (
    MODEL_NAME,
    PYFUNC_CODE,
    champion_forecast,
    current_champion,
    input_example,
    load_forecaster,
    log_and_register,
    promotion_decision,
    registry_table,
    train_and_register,
)
from tests.test_forecasting.conftest import mlflow_home

pytestmark = pytest.mark.xdist_group("forecast_registry")

TICKERS = ["AAPL", "JNJ", "JPM", "KO", "MSFT", "XOM", "PG", "WMT"]
PROMO = "qpo-promotion-test"  # the promotion sequence's own registered model


def small(**kw) -> ForecasterConfig:
    return ForecasterConfig(**{"hidden": 8, "layers": 1, "max_epochs": 3, "batch_size": 256, "seed": 0, **kw})


def regime_prices(noise: float, seed: int = 0, n: int = 20, years: int = 7) -> pd.DataFrame:
    """Each ticker's daily drift is +-0.2% and flips sign every 3 to 6 months: the last months'
    return predicts the next month's, the expanding mean (about 0 for everyone) does not."""
    rng = np.random.default_rng(seed)
    dates = pd.bdate_range("2010-01-01", periods=years * 252)
    drift = np.empty((len(dates), n))
    for j in range(n):
        sign, t = rng.choice([-1.0, 1.0]), 0
        while t < len(dates):
            length = int(rng.integers(63, 126))
            drift[t:t + length, j] = sign * 0.002
            sign, t = -sign, t + length
    rets = drift + noise * rng.standard_normal(drift.shape)
    return pd.DataFrame(100 * np.exp(np.cumsum(rets, axis=0)), index=dates, columns=[f"R{j:02d}" for j in range(n)])


def drift_prices(seed: int = 0, n: int = 20, years: int = 7) -> pd.DataFrame:
    """Constant drifts from -0.2% to +0.2% a day under 1.5% noise: the expanding mean of years of
    returns ranks the tickers far better than any 1-year lookback feature can."""
    rng = np.random.default_rng(seed)
    dates = pd.bdate_range("2010-01-01", periods=years * 252)
    rets = np.linspace(-0.002, 0.002, n) + 0.015 * rng.standard_normal((len(dates), n))
    return pd.DataFrame(100 * np.exp(np.cumsum(rets, axis=0)), index=dates, columns=[f"D{j:02d}" for j in range(n)])


# --------------------------------------------------------------------------- one MLflow per module
@pytest.fixture(scope="module")
def home(tmp_path_factory):
    """The module's QPO_HOME; also an empty, already-migrated copy of its MLflow database."""
    with mlflow_home(tmp_path_factory.mktemp("registry_home")) as path:
        yield path


@pytest.fixture
def registry(home, qpo_home, monkeypatch):
    """Point the test at the module's MLflow (the autouse qpo_home gave it an empty one)."""
    monkeypatch.setenv("QPO_HOME", str(home))
    from mlflow import MlflowClient

    from qpo.tracking.mlflow_run import configure

    return MlflowClient(configure())


@pytest.fixture(scope="module")
def real(home):
    prices = qpo.load_prices("sp500", start="2005-01-01", end="2012-12-31", tickers=TICKERS)
    result, final, reg = train_and_register(prices, small(), retrain_months=24, threads=1)
    return SimpleNamespace(prices=prices, result=result, final=final, reg=reg)


@pytest.fixture(scope="module")
def promotions(home):
    """(a) no edge over the historical mean, (b) a real edge, (c) a weaker edge, (d) a stronger
    one, (e) (d) registered again (the same IC): each step's registration, result and the
    champion version right after it."""
    steps = {"a": (drift_prices(), small()),
             "b": (regime_prices(noise=0.02), small()),
             "c": (regime_prices(noise=0.02), small(learning_rate=1e-6, max_epochs=1)),  # barely trained
             "d": (regime_prices(noise=0.01), small())}
    out = {}
    for key, (prices, config) in steps.items():
        result, final, reg = train_and_register(prices, config, retrain_months=24, threads=1, model_name=PROMO,
                                                experiment="promotion-test")
        champ = current_champion(PROMO)
        out[key] = SimpleNamespace(prices=prices, result=result, final=final, reg=reg,
                                   champion=str(champ.version) if champ is not None else None)
    d = out["d"]
    reg = log_and_register(d.result, d.final, d.prices, model_name=PROMO, experiment="promotion-test")
    out["e"] = SimpleNamespace(reg=reg, result=d.result, champion=str(current_champion(PROMO).version))
    return out


# --------------------------------------------------------------------------- 1. what a run logs
def test_training_run_logs_params_metrics_folds_artifacts_and_tags(real, registry):
    import mlflow

    from qpo.tracking import code_version

    result, final, reg = real.result, real.final, real.reg
    run = registry.get_run(reg.run_id)
    assert run.info.status == "FINISHED"
    params = run.data.params
    for k, v in final.config.params().items():
        assert params[k] == (json.dumps(v) if isinstance(v, (list, dict)) else str(v)), k
    assert params["hidden"] == "8" and params["max_epochs"] == "3"
    assert params["walk_forward.retrain_months"] == "24" and params["walk_forward.window"] == "expanding"
    assert params["walk_forward.folds"] == str(len(result.folds)) and len(result.folds) >= 2
    assert params["walk_forward.first_forecast"] == str(result.realized.index[0].date())
    assert params["n_tickers"] == "8" and params["train_end"] == "2012-12-31"

    overall = {k: v for k, v in run.data.metrics.items() if not k.startswith("fold_")}
    expected = result.summary_metrics()
    assert overall.keys() == expected.keys()
    assert overall == pytest.approx(expected, rel=1e-12, abs=0)
    assert overall["oos_mean_ic"] == result.metrics.loc["model", "mean_ic"]
    # one step per fold, each equal to the fold table
    for col in ("mean_ic", "baseline_mean_ic", "hit_rate", "mse", "baseline_mse", "best_epoch"):
        hist = sorted(registry.get_metric_history(reg.run_id, f"fold_{col}"), key=lambda m: m.step)
        assert [m.step for m in hist] == result.folds["fold"].tolist() == list(range(1, len(result.folds) + 1))
        np.testing.assert_allclose([m.value for m in hist], result.folds[col].to_numpy(dtype=float), rtol=1e-12)

    feats = mlflow.artifacts.load_dict(f"runs:/{reg.run_id}/features.json")
    assert feats["features"] == final.feature_names == FeatureSpec().names
    assert FeatureSpec.from_dict(feats["spec"]) == final.config.features
    ic = mlflow.artifacts.load_dict(f"runs:/{reg.run_id}/walk_forward/ic.json")
    assert ic["dates"] == [str(d.date()) for d in result.realized.index]
    got = {col: np.array([np.nan if v is None else v for v in ic[col]]) for col in ("model", "historical_mean")}
    for col, values in got.items():
        np.testing.assert_allclose(values, result.ic[col].to_numpy(), rtol=1e-12, equal_nan=True)
    assert np.nanmean(got["model"]) == pytest.approx(result.metrics.loc["model", "mean_ic"], rel=1e-12)

    tags = run.data.tags
    assert tags["qpo.data_hash"] == qpo.data_hash(real.prices) == final.metadata["data_hash"]
    assert tags["qpo.code_version"] == code_version()
    assert tags["qpo.promotion"] == reg.alias and tags["qpo.promotion_reason"] == reg.reason
    assert tags["qpo.model_version"] == reg.version and tags["qpo.registered_model"] == MODEL_NAME


def test_logged_model_has_signature_example_and_version_tags(real, registry):
    import mlflow

    result, reg = real.result, real.reg
    names = ["date", "ticker", *FeatureSpec().names]
    info = mlflow.models.get_model_info(reg.model_uri)
    assert info.signature.inputs.input_names() == names
    assert info.signature.outputs.input_names() == ["date", "ticker", "forecast"]
    example = mlflow.pyfunc.load_model(reg.model_uri).input_example
    assert list(example.columns) == names and len(example) == 2  # two tickers, an MLP's one-day window
    # the example is real features: those qpo computes on the last date for the first two tickers
    last = compute_features(real.prices[TICKERS[:2]].iloc[-300:]).to_frame(real.prices.index[-1:])
    assert example["ticker"].tolist() == TICKERS[:2]
    np.testing.assert_allclose(example[names[2:]].to_numpy(dtype=float), last[names[2:]].to_numpy(), rtol=1e-8,
                               atol=1e-10)

    mv = registry.get_model_version(MODEL_NAME, reg.version)
    assert mv.run_id == reg.run_id
    assert mv.current_stage in (None, "None")  # aliases, not the deprecated stages
    oos, base = result.metrics.loc["model", "mean_ic"], result.metrics.loc["historical_mean", "mean_ic"]
    assert float(mv.tags["qpo.oos_mean_ic"]) == oos and float(mv.tags["qpo.baseline_mean_ic"]) == base
    assert mv.tags["qpo.promotion"] == reg.alias and mv.tags["qpo.promotion_reason"] == reg.reason
    assert mv.tags["qpo.data_hash"] == qpo.data_hash(real.prices) and mv.tags["qpo.train_end"] == "2012-12-31"
    # the module's first version of MODEL_NAME: promoted exactly when it beats the historical mean
    assert reg.promoted == (oos > base) == (reg.alias == "champion") == result.beats_historical_mean
    assert str(registry.get_registered_model(MODEL_NAME).aliases[reg.alias]) == reg.version
    table = registry_table()
    row = table.set_index("version").loc[int(reg.version)]
    assert row["aliases"] == reg.alias and row["oos_mean_ic"] == oos and row["reason"] == reg.reason


# --------------------------------------------------------------------------- 2. promotion
def test_promotion_decision_rules():
    nan = math.nan
    promote, reason = promotion_decision(nan, 0.01, None, None)
    assert not promote and "IC is undefined" in reason
    promote, reason = promotion_decision(0.05, nan, None, None)
    assert not promote and "historical mean's IC is undefined" in reason
    promote, reason = promotion_decision(0.03, 0.03, None, None)  # a tie with the baseline is no edge
    assert not promote and "does not beat the historical mean's 0.0300" in reason
    promote, reason = promotion_decision(0.02, 0.05, None, None)
    assert not promote and "0.0200 does not beat the historical mean's 0.0500" in reason
    promote, reason = promotion_decision(0.06, 0.02, None, None)
    assert promote and reason.endswith("and there was no champion")
    promote, reason = promotion_decision(0.06, 0.02, "3", 0.06)  # a tie with the champion: it stays
    assert not promote and "but not the champion's (version 3) 0.0600" in reason
    promote, reason = promotion_decision(0.05, 0.02, "3", 0.06)
    assert not promote and "(version 3) 0.0600" in reason
    promote, reason = promotion_decision(0.07, 0.02, "3", 0.06)
    assert promote and "and the champion's (version 3) 0.0600" in reason
    # a champion of another horizon is not compared with: a 63-day IC of 0.0179 "beat" a 21-day 0.0040
    # and the default forecasts turned 63-day unseen; nor could a 21-day model ever replace it
    promote, reason = promotion_decision(0.0179, 0.0116, "2", 0.0040, 63, 21)
    assert not promote and "the champion (version 2) forecasts 21 days and this model 63" in reason
    promote, reason = promotion_decision(0.0040, 0.0029, "4", 0.0179, 21, 63)
    assert not promote and "not comparable" in reason
    assert promotion_decision(0.07, 0.02, "3", 0.06, 21, 21)[0]
    promote, reason = promotion_decision(0.07, 0.02, "3", None)
    assert promote and "has no recorded IC" in reason
    promote, reason = promotion_decision(0.07, 0.02, "3", nan)  # an undefined IC is no IC to beat
    assert promote and "has no recorded IC" in reason


def test_no_edge_over_the_historical_mean_is_a_challenger(promotions, registry):
    a = promotions["a"]
    m = a.result.metrics
    assert m.loc["historical_mean", "mean_ic"] > m.loc["model", "mean_ic"] + 0.05  # the drift is the mean's
    assert not a.reg.promoted and a.reg.alias == "challenger" and a.champion is None  # even with no champion
    assert a.reg.reason.startswith("not promoted") and "does not beat the historical mean's" in a.reg.reason
    assert a.reg.previous_champion is None
    mv = registry.get_model_version(PROMO, a.reg.version)
    assert mv.tags["qpo.promotion"] == "challenger" and mv.tags["qpo.promotion_reason"] == a.reg.reason
    assert mv.tags["qpo.beats_historical_mean"] == "False"


def test_first_version_with_an_edge_becomes_champion(promotions):
    b = promotions["b"]
    m = b.result.metrics
    assert m.loc["model", "mean_ic"] > m.loc["historical_mean", "mean_ic"] + 0.05 and m.loc["model", "ic_t_stat"] > 2
    assert b.reg.promoted and b.reg.alias == "champion" and b.champion == b.reg.version
    assert b.reg.reason == (f"promoted: out-of-sample mean IC {m.loc['model', 'mean_ic']:.4f} beats the historical "
                            f"mean's {m.loc['historical_mean', 'mean_ic']:.4f}, and there was no champion")
    assert b.reg.previous_champion is None


def test_weaker_version_is_a_challenger_and_the_champion_stays(promotions, registry):
    b, c = promotions["b"], promotions["c"]
    assert c.reg.baseline_mean_ic < c.reg.oos_mean_ic < b.reg.oos_mean_ic  # beats the mean, not the champion
    assert not c.reg.promoted and c.reg.alias == "challenger" and c.champion == b.reg.version
    assert c.reg.previous_champion == b.reg.version and c.reg.previous_champion_ic == b.reg.oos_mean_ic
    assert f"but not the champion's (version {b.reg.version}) {b.reg.oos_mean_ic:.4f}" in c.reg.reason
    assert registry.get_model_version(PROMO, c.reg.version).tags["qpo.promotion"] == "challenger"


def test_stronger_version_takes_the_champion_alias(promotions, registry):
    b, d = promotions["b"], promotions["d"]
    client = registry
    assert d.reg.oos_mean_ic > b.reg.oos_mean_ic > promotions["c"].reg.oos_mean_ic
    assert d.reg.promoted and d.reg.alias == "champion" and d.champion == d.reg.version
    assert d.reg.previous_champion == b.reg.version and d.reg.previous_champion_ic == b.reg.oos_mean_ic
    assert f"and the champion's (version {b.reg.version}) {b.reg.oos_mean_ic:.4f}" in d.reg.reason
    assert client.get_model_version(PROMO, b.reg.version).tags["qpo.superseded_by"] == d.reg.version
    assert client.get_model_version(PROMO, b.reg.version).tags["qpo.promotion"] == "champion"  # its record stays
    versions = client.search_model_versions(f"name='{PROMO}'")
    assert sorted(int(v.version) for v in versions) == [1, 2, 3, 4, 5]
    assert all(v.current_stage in (None, "None") for v in versions)
    assert {k: int(v) for k, v in client.get_registered_model(PROMO).aliases.items()} == \
        {"champion": int(d.reg.version), "challenger": int(promotions["e"].reg.version)}
    table = registry_table(PROMO)
    assert table["promotion"].tolist() == ["challenger", "champion", "challenger", "champion", "challenger"]
    assert table["aliases"].tolist() == ["", "", "", "champion", "challenger"]


def test_retrain_with_the_same_ic_is_not_promoted(promotions):
    """The champion's IC is stored in full: an equal IC is a tie, not a win."""
    d, e = promotions["d"], promotions["e"]
    assert e.reg.oos_mean_ic == d.reg.oos_mean_ic and e.reg.previous_champion_ic == d.reg.oos_mean_ic
    assert not e.reg.promoted and e.reg.alias == "challenger" and e.champion == d.reg.version
    assert "but not the champion's" in e.reg.reason


def test_two_retrains_finishing_at_once_leave_the_better_one_champion(promotions, registry, monkeypatch):
    """Each retrain read the champion when it started: two at once both saw none (or the same old
    one), both promoted themselves, and the last to finish was champion, the weaker of them here."""
    import threading

    from mlflow import MlflowClient

    b, d = promotions["b"], promotions["d"]
    name = "qpo-promotion-race"
    slow = threading.local()
    real_set_alias = MlflowClient.set_registered_model_alias

    def set_alias(self, model, alias, version):  # the weaker one is the slower to set its alias
        if getattr(slow, "on", False):
            import time

            time.sleep(3.0)
        return real_set_alias(self, model, alias, version)

    monkeypatch.setattr(MlflowClient, "set_registered_model_alias", set_alias)
    regs: dict = {}

    def register(key, step, is_slow):
        slow.on = is_slow
        regs[key] = log_and_register(step.result, step.final, step.prices, model_name=name,
                                     experiment="promotion-race")

    threads = [threading.Thread(target=register, args=("b", b, True)),
               threading.Thread(target=register, args=("d", d, False))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert set(regs) == {"b", "d"}
    champion = current_champion(name)
    assert str(champion.version) == regs["d"].version and regs["d"].promoted
    assert float(champion.tags["qpo.oos_mean_ic"]) == d.reg.oos_mean_ic > b.reg.oos_mean_ic


# --------------------------------------------------------------------------- 3. loading
def test_load_by_alias_version_and_name_predicts_like_the_trained_model(real, registry):
    final, reg = real.final, real.reg
    expected = final.predict(real.prices)
    earlier = final.predict(real.prices, as_of="2011-06-30")
    for uri in (reg.model_uri, f"models:/{MODEL_NAME}@{reg.alias}", f"models:/{MODEL_NAME}"):
        f = load_forecaster(uri)
        got = f.predict(real.prices)
        assert got.values.index.tolist() == TICKERS
        np.testing.assert_allclose(got.values.to_numpy(), expected.values.to_numpy(), atol=1e-6, rtol=0)
        np.testing.assert_allclose(f.predict(real.prices, as_of="2011-06-30").values.to_numpy(),
                                   earlier.values.to_numpy(), atol=1e-6, rtol=0)
        assert got.model == reg.model_uri
        assert f.metadata["version"] == reg.version and f.metadata["aliases"] == [reg.alias]
        assert f.metadata["tags"]["qpo.promotion"] == reg.alias and f.metadata["run_id"] == reg.run_id
        assert f.metadata["per_ticker_oos_mse"] == pytest.approx(real.result.per_ticker_mse().to_dict(), rel=1e-12)
    assert load_forecaster(f"models:/{MODEL_NAME}@{reg.alias}").metadata["alias"] == reg.alias
    assert np.ptp(expected.values.to_numpy()) > 0  # a forecast that tells tickers apart, not a constant


def test_pyfunc_predicts_like_predict_frame(real, registry):
    import mlflow
    from mlflow.exceptions import MlflowException

    final, reg = real.final, real.reg
    frame = compute_features(real.prices.iloc[-320:]).to_frame(real.prices.index[-5:])
    model = mlflow.pyfunc.load_model(reg.model_uri)
    out = model.predict(frame)
    assert list(out.columns) == ["date", "ticker", "forecast"] and len(out) == 5 * len(TICKERS)
    assert out["ticker"].tolist() == frame["ticker"].tolist()
    np.testing.assert_allclose(out["forecast"].to_numpy(), final.predict_frame(frame).to_numpy(), atol=1e-6, rtol=0)
    last = out[pd.to_datetime(out["date"]) == real.prices.index[-1]].set_index("ticker")["forecast"]
    np.testing.assert_allclose(last[TICKERS].to_numpy(), final.predict(real.prices).values[TICKERS].to_numpy(),
                               atol=1e-6, rtol=0)
    # a feature frame that does not match the signature: MLflow's schema check names the column
    with pytest.raises(MlflowException, match="rank_mom_12_1"):
        model.predict(frame.drop(columns=["rank_mom_12_1"]))
    with pytest.raises(DataError, match=r"missing columns \['rank_mom_12_1'\]"):
        final.predict_frame(frame.drop(columns=["rank_mom_12_1"]))


def test_unknown_name_alias_version_and_malformed_uri_list_the_registry(real, registry):
    v = real.reg.version
    with pytest.raises(DataError, match=r"no registered model 'no-such-model' .*registered models: \[.*"
                                        + repr(MODEL_NAME)):
        load_forecaster("models:/no-such-model@champion")
    with pytest.raises(DataError, match=rf"has no alias 'production'; its aliases: @{real.reg.alias} -> version {v}; "
                                        rf"its versions: \[{v}\]"):
        load_forecaster(f"models:/{MODEL_NAME}@production")
    with pytest.raises(DataError, match=rf"has no version 99; its versions: \[{v}\]; aliases: .*'{real.reg.alias}'"):
        load_forecaster(f"models:/{MODEL_NAME}/99")
    for bad in ("runs:/abc/forecaster", f"models:/{MODEL_NAME}/latest", "models:/", "qpo-return-forecaster", None):
        with pytest.raises(DataError, match=r"is not of the form models:/<name>@<alias> .*registered models: "
                                            rf"\[.*'{MODEL_NAME}'"):
            load_forecaster(bad)


def test_empty_registry_says_how_to_train_one(home, qpo_home):
    uri = f"sqlite:///{home / 'empty.db'}"
    with pytest.raises(DataError, match=r"no registered model 'qpo-return-forecaster'.*the registry is empty: "
                                        r"train one with `qpo pipeline run weekly-retrain`"):
        load_forecaster(tracking_uri=uri)
    assert champion_forecast(pd.DataFrame(), tracking_uri=uri) is None  # no champion: nothing to forecast


@pytest.mark.filterwarnings("ignore:.*An input example was not provided")
def test_signature_that_lacks_a_feature_is_refused(real, registry, tmp_path):
    import mlflow
    from mlflow.models import infer_signature

    from qpo.tracking import tracked_run

    final = real.final
    short = input_example(final, real.prices).drop(columns=["vol_63d"])
    with tracked_run("tampered"):
        mlflow.pyfunc.log_model(name="forecaster", python_model=str(PYFUNC_CODE),
                                artifacts={"forecaster": str(final.save(tmp_path / "forecaster"))},
                                signature=infer_signature(short), pip_requirements=["mlflow"],
                                registered_model_name="qpo-tampered")
    with pytest.raises(DataError, match=r"models:/qpo-tampered/1's signature does not match the features qpo "
                                        r"computes for it") as err:
        load_forecaster("models:/qpo-tampered/1")
    assert "'vol_63d'" in str(err.value)  # the list of features it expected names the missing one


def test_feature_spec_that_gives_other_names_is_refused(real, registry, monkeypatch):
    """A qpo whose features no longer match what the model was trained on refuses to load it."""
    monkeypatch.setattr(FeatureSpec, "names", property(lambda self: self.base_names))  # as if ranks were gone
    with pytest.raises(DataError, match="signature does not match the features qpo computes for it.*"
                                        "retrain it with this version of qpo"):
        load_forecaster(real.reg.model_uri)


def test_a_champion_whose_run_then_failed_is_withdrawn_and_the_one_it_superseded_restored(promotions, registry):
    """A retrain registers and promotes in its first compute cell; a later cell failing, or SIGTERM,
    ended the run KILLED with its model still champion. withdraw_run_champion (called by the
    pipeline runner for a FAILED or KILLED run) makes it a challenger and the champion it superseded
    champion again; with none, there is no champion; a run withdrawn while not the champion never
    comes back as one."""
    from qpo.tracking.registration import withdraw_run_champion

    b, d = promotions["b"], promotions["d"]
    name = "qpo-withdraw"
    first = log_and_register(b.result, b.final, b.prices, model_name=name, experiment="withdraw-test")
    second = log_and_register(d.result, d.final, d.prices, model_name=name, experiment="withdraw-test")
    assert first.promoted and second.promoted and str(current_champion(name).version) == second.version
    done = withdraw_run_champion(second.run_id, f"its run {second.run_id} ended KILLED", model_name=name)
    assert done == (f"version {second.version} withdrawn as champion (its run {second.run_id} ended KILLED); "
                    f"version {first.version} is champion again")
    assert str(current_champion(name).version) == first.version
    tags = registry.get_model_version(name, second.version).tags
    assert tags["qpo.promotion"] == "challenger" and tags["qpo.promotion_reason"].startswith("withdrawn: its run")
    assert withdraw_run_champion(first.run_id, "ended FAILED", model_name=name).endswith("there is no champion")
    assert current_champion(name) is None
    # a run withdrawn while not the champion never comes back: A promotes v1, B promotes v2 over it,
    # A fails (v1 withdrawn, not the champion), then B fails: no champion, not A's v1 again
    name = "qpo-withdraw-race"
    a = log_and_register(b.result, b.final, b.prices, model_name=name, experiment="withdraw-test")
    bb = log_and_register(d.result, d.final, d.prices, model_name=name, experiment="withdraw-test")
    assert registry.get_model_version(name, bb.version).tags["qpo.previous_champion"] == a.version
    assert withdraw_run_champion(a.run_id, "A ended FAILED", model_name=name).endswith("not the champion")
    assert str(current_champion(name).version) == bb.version
    assert withdraw_run_champion(bb.run_id, "B ended KILLED", model_name=name).endswith("there is no champion")
    assert withdraw_run_champion("no-such-run", "x", model_name=name) is None
