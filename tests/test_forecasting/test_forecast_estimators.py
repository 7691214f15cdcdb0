"""Expected returns from a registered forecaster: ForecastMean (forecast / horizon) and
ForecastBlackLitterman (views from the forecasts, confidence from the out-of-sample error), checked
against the forecaster itself, qpo's BlackLitterman with hand-built views and omega, and
PyPortfolioOpt's BlackLittermanModel; and the errors for input the model cannot forecast.
The estimators take a loaded forecaster; qpo.tracking.forecast_mean resolves a models:/ URI or the
name "forecast" (the champion), and the optimizer refuses those names with what to pass instead.

One MLflow (a temporary QPO_HOME) serves the module: a small MLP trained and walk-forward
evaluated on eight bundled S&P 500 stocks 2005-2012 and registered; the estimators then forecast
from 2012-2014 returns (after the training data)."""
from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

import qpo
from qpo.errors import DataError, ProblemError
from qpo.estimation import ForecastBlackLitterman, ForecastMean
from qpo.forecasting import ForecasterConfig
from qpo.tracking import (
    DEFAULT_MODEL_URI,
    MODEL_NAME,
    forecast_mean,
    load_forecaster,
    resolve_mean,
    train_and_register,
)
from tests.test_forecasting.conftest import mlflow_home

pytestmark = pytest.mark.xdist_group("forecast_estimators")

TICKERS = ["AAPL", "JNJ", "JPM", "KO", "MSFT", "XOM", "PG", "WMT"]
H = 21


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    """The module's QPO_HOME (and an empty, already-migrated copy of its MLflow database)."""
    with mlflow_home(tmp_path_factory.mktemp("estimators_home")) as path:
        yield path


@pytest.fixture(scope="module")
def model(home):
    """The registered champion, its walk-forward result, and the prices/returns it forecasts from."""
    from mlflow import MlflowClient

    train = qpo.load_prices("sp500", start="2005-01-01", end="2012-12-31", tickers=TICKERS)
    config = ForecasterConfig(hidden=8, layers=1, max_epochs=3, batch_size=256, seed=0)
    result, final, reg = train_and_register(train, config, retrain_months=24, threads=1)
    if not reg.promoted:  # (it is on this data) an ML engineer can promote a version by hand
        MlflowClient().set_registered_model_alias(MODEL_NAME, "champion", reg.version)
    prices = qpo.load_prices("sp500", start="2012-01-01", end="2014-12-31", tickers=TICKERS)
    return SimpleNamespace(result=result, final=final, reg=reg, prices=prices,
                           returns=qpo.prices_to_returns(prices))


@pytest.fixture
def registry(home, qpo_home, monkeypatch):
    """Point the test at the module's MLflow (the autouse qpo_home gave it an empty one)."""
    monkeypatch.setenv("QPO_HOME", str(home))


def test_forecast_mean_is_the_forecast_over_its_horizon(model, registry):
    returns = model.returns
    problem = qpo.PortfolioProblem.from_returns(returns, mean=forecast_mean(model.reg.model_uri))
    f = load_forecaster(model.reg.model_uri)
    assert isinstance(forecast_mean(model.reg.model_uri), ForecastMean)
    rebuilt = (1.0 + returns).cumprod()  # prices from the returns, by hand (features are price ratios)
    expected = f.predict(rebuilt).values
    assert expected.index.tolist() == TICKERS and f.predict(rebuilt).as_of == returns.index[-1]
    assert problem.tickers == TICKERS
    np.testing.assert_allclose(problem.mu.to_numpy(), expected.to_numpy() / H, rtol=1e-6, atol=1e-9)
    # the real prices give the same forecast: it is the model's view at the returns' last date
    np.testing.assert_allclose(problem.mu.to_numpy(), f.predict(model.prices).values.to_numpy() / H,
                               rtol=1e-6, atol=1e-9)
    assert np.ptp(problem.mu.to_numpy()) > 0
    assert not np.allclose(problem.mu.to_numpy(), returns.mean().to_numpy(), rtol=0.05)  # not the historical mean
    # the loaded model passed in, and a TrainedForecaster in memory, are the same model
    mu_loaded = qpo.PortfolioProblem.from_returns(returns, mean=ForecastMean(f)).mu
    np.testing.assert_allclose(mu_loaded.to_numpy(), problem.mu.to_numpy(), rtol=0, atol=0)
    mu_mem = ForecastMean(model.final).estimate(returns)
    np.testing.assert_allclose(mu_mem.to_numpy(), problem.mu.to_numpy(), rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(forecast_mean(model.final).estimate(returns).to_numpy(), mu_mem.to_numpy(),
                               rtol=0, atol=0)


def test_mean_forecast_resolves_to_the_champion(model, registry):
    mu = qpo.PortfolioProblem.from_returns(model.returns, mean=resolve_mean("forecast")).mu
    champion = load_forecaster()  # models:/qpo-return-forecaster@champion
    assert champion.metadata["version"] == model.reg.version and "champion" in champion.metadata["aliases"]
    np.testing.assert_allclose(mu.to_numpy(), champion.predict(model.prices).values.to_numpy() / H,
                               rtol=1e-6, atol=1e-9)
    assert DEFAULT_MODEL_URI == f"models:/{MODEL_NAME}@champion"
    default = forecast_mean()  # the champion
    assert default.forecaster.metadata["alias"] == "champion" and default.forecaster.metadata["version"] == \
        model.reg.version
    np.testing.assert_allclose(qpo.PortfolioProblem.from_returns(model.returns, mean=default).mu.to_numpy(),
                               mu.to_numpy(), rtol=0, atol=0)
    by_uri = resolve_mean(model.reg.model_uri)
    assert isinstance(by_uri, ForecastMean) and by_uri.forecaster.metadata["version"] == model.reg.version
    assert resolve_mean("ewma") == "ewma"  # the estimators' own names pass through
    # the frontier study (a report, above the optimizer) resolves the name itself
    study = qpo.frontier_study(model.returns, mean="forecast", objectives=("min_variance",), n_points=5)
    np.testing.assert_allclose(study.problem.mu.to_numpy(), mu.to_numpy(), rtol=0, atol=0)


def test_the_optimizer_refuses_registry_names_and_says_what_to_pass(model):
    """qpo.estimation reads no registry: "forecast", a models:/ URI, or no forecaster is a clear
    error that names the estimator to pass (and is raised before any MLflow is touched)."""
    returns = model.returns
    with pytest.raises(ProblemError, match=r"mean='forecast' names the model registry's champion.*"
                                           r"mean=qpo\.forecast_mean\('models:/qpo-return-forecaster@champion'\)"
                                           r".*qpo\.ForecastMean\(qpo\.load_forecaster\("):
        qpo.PortfolioProblem.from_returns(returns, mean="forecast")
    uri = f"models:/{MODEL_NAME}/1"
    with pytest.raises(ProblemError, match=rf"qpo\.forecast_mean\('{uri}'\)"):
        qpo.PortfolioProblem.from_returns(returns, mean=uri)
    with pytest.raises(ProblemError, match=rf"ForecastMean takes a loaded forecaster.*the string '{uri}'.*"
                                           rf"ForecastMean\(qpo\.load_forecaster\('{uri}'\)\).*"
                                           rf"qpo\.forecast_mean\('{uri}'\)"):
        ForecastMean(uri)
    with pytest.raises(ProblemError, match=r"ForecastBlackLitterman takes a loaded forecaster.*"
                                           r"forecast_mean\('models:/qpo-return-forecaster@champion', "
                                           r"black_litterman=True\)"):
        ForecastBlackLitterman()
    with pytest.raises(ProblemError, match="ForecastMean takes a loaded forecaster.*got int"):
        ForecastMean(42)
    # the advice works as written after a plain `import qpo`
    assert callable(qpo.forecast_mean)
    with pytest.raises(ProblemError, match=r"\['tau'\] are options of the Black-Litterman forecast mean"):
        forecast_mean(model.final, tau=0.1)


def test_mean_forecast_with_an_empty_registry_is_a_clear_error(model, home, qpo_home, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{home / 'empty.db'}")
    with pytest.raises(DataError, match="the registry is empty: train one with `qpo pipeline run weekly-retrain`"):
        qpo.PortfolioProblem.from_returns(model.returns, mean=resolve_mean("forecast"))
    with pytest.raises(DataError, match="the registry is empty: train one with `qpo pipeline run weekly-retrain`"):
        forecast_mean()


def test_forecast_black_litterman_matches_hand_views_and_pypfopt(model, registry):
    from pypfopt import BlackLittermanModel

    returns, result = model.returns, model.result
    mw = {t: 1.0 + i for i, t in enumerate(TICKERS)}
    w = pd.Series(mw) / sum(mw.values())
    forecast = load_forecaster(model.reg.model_uri).predict(model.prices).values
    views = {t: float(forecast[t]) * 252 / H for t in TICKERS}
    # out-of-sample MSE per ticker from the walk-forward forecasts and what followed, by hand
    err = result.forecasts["model"][TICKERS].to_numpy() - result.realized[TICKERS].to_numpy()
    mse = np.nanmean(err ** 2, axis=0)
    assert np.isfinite(mse).all() and (mse > 0).all() and np.ptp(mse) > 0
    omega = np.diag(mse * 252 / H)

    est = forecast_mean(model.reg.model_uri, black_litterman=True, market_weights=mw, risk_aversion=2.5, tau=0.05)
    assert isinstance(est, ForecastBlackLitterman)
    mu = qpo.PortfolioProblem.from_returns(returns, mean=est).mu
    by_hand = qpo.BlackLitterman(views=views, omega=omega, market_weights=mw, risk_aversion=2.5, tau=0.05)
    np.testing.assert_allclose(mu.to_numpy(), by_hand.estimate(returns).to_numpy(), rtol=1e-6, atol=1e-10)

    cov = returns.cov() * 252
    ref = BlackLittermanModel(cov, pi=2.5 * cov @ w, absolute_views=views, omega=omega, tau=0.05).bl_returns()
    np.testing.assert_allclose(mu.to_numpy() * 252, ref[TICKERS].to_numpy(), rtol=1e-6, atol=1e-9)

    # the views (all above the prior here) pull every posterior toward them; a forecaster that
    # missed 100x more (in squared error) moves the prior far less
    prior = (2.5 * cov @ w).to_numpy()
    post, q = mu.to_numpy() * 252, np.array([views[t] for t in TICKERS])
    assert (np.abs(post - q) < np.abs(prior - q)).all()
    f = load_forecaster(model.reg.model_uri)
    worse = dataclasses.replace(f, metadata={**f.metadata, "per_ticker_oos_mse": {
        t: 100 * v for t, v in f.metadata["per_ticker_oos_mse"].items()}})
    post_worse = ForecastBlackLitterman(worse, market_weights=mw).estimate(returns).to_numpy() * 252
    assert (np.abs(post_worse - prior) < 0.2 * np.abs(post - prior)).all()


def test_forecast_estimators_refuse_what_the_model_cannot_forecast(model, registry):
    returns = model.returns
    uri = model.reg.model_uri
    extra = returns.assign(NFLX=returns["AAPL"].to_numpy()[::-1])  # a ticker the model was not trained on
    for est in (forecast_mean(uri), forecast_mean(uri, black_litterman=True)):
        with pytest.raises(DataError, match=r"not trained on tickers \['NFLX'\]"):
            qpo.PortfolioProblem.from_returns(extra, mean=est)
        with pytest.raises(DataError, match="too little history: the mlp forecaster needs 253 prices per ticker"):
            qpo.PortfolioProblem.from_returns(returns.iloc[-200:], mean=est)
    f = load_forecaster(uri)
    bare = dataclasses.replace(f, metadata={})  # e.g. trained in a notebook, never walk-forward evaluated
    with pytest.raises(ProblemError, match="the forecaster records no out-of-sample error for 'AAPL'"):
        ForecastBlackLitterman(bare).estimate(returns)
    assert np.isfinite(ForecastMean(bare).estimate(returns)).all()  # the plain mean needs no OOS error
    with pytest.raises(DataError, match=rf"model {MODEL_NAME!r} has no alias 'production'"):
        forecast_mean(f"models:/{MODEL_NAME}@production")
    with pytest.raises(ProblemError, match="model must be a models:/ URI"):
        forecast_mean(42)


def test_a_forecast_mean_before_the_training_end_is_refused_as_look_ahead(model):
    """The champion was trained on 2005-2012: an optimizer's mean as of 2011 (a backtest's
    rebalance) used a model that had seen what followed, silently (a rank IC of 0.070 in-sample
    for 0.004 out of sample). Refused, naming both dates; predict itself warns."""
    forecaster = model.final
    early = qpo.prices_to_returns(qpo.load_prices("sp500", start="2010-01-01", end="2011-06-30", tickers=TICKERS))
    with pytest.raises(ProblemError, match=r"look-ahead: the forecaster was trained on prices up to 2012-\d\d-\d\d, "
                                           r"after 2011-06-30.*would trade on the future"):
        ForecastMean(forecaster).estimate(early)
    from qpo.errors import DataWarning

    with pytest.warns(DataWarning, match="look-ahead"):
        forecaster.predict(qpo.load_prices("sp500", start="2009-01-01", end="2011-06-30", tickers=TICKERS))
    assert not forecaster.in_sample(model.returns.index[-1])  # the module's forecasts: after the training data
    # a backtest spanning the training end stops on it (before the review: its earlier rebalances
    # "failed" one by one and the portfolio sat in cash, its CAGR reported over the whole span)
    from qpo.errors import LookAheadError

    prices = qpo.load_prices("sp500", start="2010-01-01", end="2013-06-28", tickers=TICKERS)
    strategy = qpo.Strategy("max_sharpe", mean=ForecastMean(forecaster))
    with pytest.raises(LookAheadError, match="look-ahead"):
        qpo.backtest(prices, strategy, start="2012-06-01", window=252)
