"""Small real panels and small forecasters for the forecasting tests: six bundled S&P 500 names,
2004-2012, networks with 8 hidden units trained for a few epochs (seconds, not minutes)."""
from __future__ import annotations

import contextlib
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.conftest import _STATE_VARS

TICKERS = ["AAPL", "JNJ", "JPM", "KO", "MSFT", "XOM"]


def small_config(model: str = "mlp", **overrides):
    """A forecaster config small enough for a test: 8 hidden units, one layer, a few epochs."""
    from qpo.forecasting import ForecasterConfig

    kw = dict(model=model, hidden=8, layers=1, max_epochs=4, batch_size=256, seed=0, dropout=0.1)
    if model != "mlp":
        kw["window"] = 5
    kw.update(overrides)
    return ForecasterConfig(**kw)


def perturb_after(prices: pd.DataFrame, date, seed: int = 0, scale: float = 0.3) -> pd.DataFrame:
    """``prices`` with every price strictly after ``date`` multiplied by independent lognormal
    noise (positive, so the panel stays valid; NaN stays NaN)."""
    rng = np.random.default_rng(seed)
    out = prices.copy()
    after = out.index > pd.Timestamp(date)
    out.loc[after] = out.loc[after].to_numpy() * np.exp(scale * rng.standard_normal((int(after.sum()),
                                                                                      out.shape[1])))
    return out


def state_dicts_equal(a, b) -> bool:
    import torch

    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.fixture(scope="session")
def prices() -> pd.DataFrame:
    """Six real S&P 500 stocks, 2004-2012 (2265 trading days, no NaN)."""
    import qpo

    return qpo.load_prices("sp500", start="2004-01-01", end="2012-12-31", tickers=TICKERS)


@pytest.fixture(scope="session")
def trained_mlp(prices):
    """A small MLP trained on labels known by the end of 2010."""
    from qpo.forecasting import train_forecaster

    return train_forecaster(prices, small_config(), end="2010-12-31")


@pytest.fixture(scope="session")
def trained_gru(prices):
    """A small GRU over 5-day windows trained on labels known by the end of 2010."""
    from qpo.forecasting import train_forecaster

    return train_forecaster(prices, small_config("gru", max_epochs=3), end="2010-12-31")


@pytest.fixture(scope="session", autouse=True)
def one_torch_thread():
    """These networks are tiny: one intra-op thread is several times faster than two on a busy
    2-core machine (and the results are the same from run to run either way)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@contextlib.contextmanager
def mlflow_home(path: Path):
    """``path`` as QPO_HOME for a whole test module, with its MLflow database created and migrated
    once, and an empty copy of it (``empty.db``) for tests that need an empty registry."""
    with pytest.MonkeyPatch.context() as mp:
        for var in _STATE_VARS:
            mp.delenv(var, raising=False)
        mp.setenv("QPO_HOME", str(path))
        mp.setenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
        from mlflow import MlflowClient

        from qpo.tracking.mlflow_run import configure

        MlflowClient(configure()).search_registered_models()  # creates and migrates mlflow.db
        shutil.copy(path / "mlflow.db", path / "empty.db")
        yield path
