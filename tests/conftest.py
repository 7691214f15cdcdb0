"""Shared fixtures. Every test that writes state gets its own QPO_HOME (store, MLflow, runs,
Data Docs) in a temporary folder; nothing touches the checkout's own state."""
from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"
_STATE_VARS = ("QPO_HOME", "QPO_DATABASE_URL", "MLFLOW_TRACKING_URI", "QPO_MLFLOW_ARTIFACTS", "QPO_RUNS_DIR",
               "QPO_DATA_DOCS_DIR")


@pytest.fixture(autouse=True)
def qpo_home(tmp_path, monkeypatch) -> Path:
    """A fresh, empty workbench home for each test."""
    for var in _STATE_VARS:
        monkeypatch.delenv(var, raising=False)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("QPO_HOME", str(home))
    monkeypatch.setenv("GX_ANALYTICS_ENABLED", "False")
    monkeypatch.setenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    return home


@pytest.fixture(scope="session")
def sp500() -> pd.DataFrame:
    import qpo

    return qpo.load_prices("sp500")


@pytest.fixture(scope="session")
def sp500_clean(sp500) -> pd.DataFrame:
    """The bundled panel from 2000 on: passes validation (before 2000 RRC has a vendor defect)."""
    return sp500.loc["2000-01-01":]


@pytest.fixture(scope="session")
def goog_bars() -> pd.DataFrame:
    """Real Google daily OHLCV 2004-2013 (the backtesting package's test data), in Alpha Vantage
    columns."""
    from backtesting.test import GOOG

    bars = GOOG.reset_index().rename(columns={"index": "date", "Date": "date"})
    bars.columns = [c.lower() for c in bars.columns]
    bars = bars.assign(ticker="GOOG", adjusted_close=bars["close"], dividend_amount=0.0, split_coefficient=1.0)
    from qpo.data import OHLCV_COLUMNS

    return bars[OHLCV_COLUMNS]


def shared_file(name: str) -> Path:
    path = SHARED_DATA / name
    if not path.exists():
        pytest.skip(f"{path} is absent (the shared S&P 500 bars live beside the project only on "
                    "development machines); this test needs it")
    return path


def database_urls() -> list:
    urls = [pytest.param("sqlite", id="sqlite")]
    pg = os.environ.get("QPO_TEST_DATABASE_URL")
    urls.append(pytest.param(pg or "postgresql", id="postgresql", marks=[pytest.mark.postgres] + (
        [] if pg else [pytest.mark.skip(reason="QPO_TEST_DATABASE_URL is not set (CI sets it to a real PostgreSQL)")])))
    return urls
