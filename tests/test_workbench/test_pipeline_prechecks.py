"""Data that validates yet cannot support the run is refused before any run exists (INVALID_DATA:
no MLflow run, no runs folder, no failure notice), with what was wrong."""
from __future__ import annotations

import pytest

from qpo.workbench.pipelines import run_pipeline
from tests.test_workbench import seed_demo_book


@pytest.fixture
def seeded(qpo_home, sp500):
    seed_demo_book(prices=sp500)


def test_too_few_dates_to_tell_their_frequency(qpo_home, seeded, tmp_path, sp500_clean):
    names = ["JNJ", "PG", "KO", "PEP", "WMT", "MRK", "PFE"]  # Conservative Income's holdings
    path = tmp_path / "two_days.csv"
    sp500_clean.loc["2022-12-27":, names].reset_index().to_csv(path, index=False)
    run = run_pipeline("daily-report", {"prices_source": str(path), "portfolio": "Conservative Income"})
    assert run.status == "INVALID_DATA" and "cannot tell how often the data is observed" in run.error, run.error
    assert run.run_id is None and not (qpo_home / "runs").exists() and not (qpo_home / "mlflow.db").exists()


def test_prices_lacking_the_portfolios_holdings(qpo_home, seeded, tmp_path, sp500_clean):
    path = tmp_path / "two_names.csv"
    sp500_clean.loc["2020-01-01":, ["KO", "PEP"]].reset_index().to_csv(path, index=False)
    run = run_pipeline("daily-report", {"prices_source": str(path), "portfolio": "Conservative Income"})
    assert run.status == "INVALID_DATA" and run.run_id is None
    assert "the prices lack 5 name(s) portfolio 'Conservative Income' holds: JNJ, MRK, PFE, PG, WMT" in run.error
    assert not (qpo_home / "runs").exists()


def test_a_sweep_naming_an_unknown_portfolio_is_refused_before_it_starts(qpo_home, seeded):
    """Every cell's portfolio is checked before the parent run, the cluster or any cell: nothing
    runs, nothing is written, and the valid names are listed."""
    from qpo.errors import UnknownOptionError
    from qpo.workbench.sweep import run_sweep

    with pytest.raises(UnknownOptionError) as err:
        run_sweep("daily-report", {"portfolio": ["Tech Tilt", "Nope"]}, workers=1)
    message = str(err.value)
    assert "unknown portfolio" in message and "'Nope'" in message and "cell 1" in message
    assert "valid: Balanced Growth, Conservative Income, Min-Variance Core, Tech Tilt" in message
    assert not (qpo_home / "mlflow.db").exists() and not (qpo_home / "runs").exists()
