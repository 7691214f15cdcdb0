"""`qpo models list / forecast` against a real (temporary) MLflow registry."""
from __future__ import annotations

import json

import numpy as np
import pytest

from qpo.cli import main


def test_models_list_on_an_empty_registry_says_how_to_train(capsys):
    assert main(["models", "list"]) == 0
    assert "train one with `qpo pipeline run weekly-retrain`" in capsys.readouterr().out


def test_models_forecast_without_a_champion_is_a_clear_error(capsys):
    assert main(["models", "forecast"]) == 2
    err = capsys.readouterr().err
    assert "qpo: error: no registered model 'qpo-return-forecaster'" in err and "Traceback" not in err


@pytest.mark.slow
def test_models_list_and_forecast_show_the_registered_version(capsys, sp500):
    from qpo.forecasting import ForecasterConfig
    from qpo.tracking import load_forecaster, train_and_register

    prices = sp500.loc["2012-01-01":"2019-12-31", ["AAPL", "JNJ", "KO", "MSFT", "PG", "XOM"]]
    _, _, reg = train_and_register(prices, ForecasterConfig(max_epochs=2, hidden=8), retrain_months=36)
    capsys.readouterr()
    assert main(["models", "list", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["version"] for r in rows] == [1]
    assert rows[0]["aliases"] == reg.alias and rows[0]["promotion"] == reg.alias
    assert rows[0]["oos_mean_ic"] == pytest.approx(reg.oos_mean_ic, abs=1e-6)
    assert main(["models", "forecast", "--model", "models:/qpo-return-forecaster/1", "--known-only", "--as-of",
                 "2019-06-28", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    expected = load_forecaster("models:/qpo-return-forecaster/1").predict(
        sp500.loc[:"2019-06-28", prices.columns]).values
    assert out["as_of"] == "2019-06-28" and out["horizon"] == 21
    # trained on prices to 2019-12-31: a forecast as of June 2019 is in-sample, and says so
    assert out["in_sample"] is True and out["train_end"] == "2019-12-31"
    assert main(["models", "forecast", "--model", "models:/qpo-return-forecaster/1", "--known-only", "--as-of",
                 "2019-06-28"]) == 0
    assert "warning: look-ahead: the forecaster was trained on prices up to 2019-12-31, after 2019-06-28" in \
        capsys.readouterr().err
    assert sorted(out["forecasts"]) == sorted(prices.columns)
    np.testing.assert_allclose([out["forecasts"][t] for t in expected.index], expected.to_numpy(), atol=1e-6)
    # an as-of outside the prices, or not a date: refused (before: 2030-01-01 gave the last date's forecasts,
    # exit 0; "notadate" was called an "end")
    assert main(["models", "forecast", "--model", "models:/qpo-return-forecaster/1", "--known-only", "--as-of",
                 "2030-01-01"]) == 2
    assert "as_of 2030-01-01 is outside the data, which runs from" in capsys.readouterr().err
    assert main(["models", "forecast", "--model", "models:/qpo-return-forecaster/1", "--known-only", "--as-of",
                 "notadate"]) == 2
    assert "as_of 'notadate' is not a date" in capsys.readouterr().err
    # a ticker the model never saw: the error names it
    assert main(["models", "forecast", "--model", "models:/qpo-return-forecaster/1", "--json"]) == 2
    assert "not trained on tickers" in capsys.readouterr().err
