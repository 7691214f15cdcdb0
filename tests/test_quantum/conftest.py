"""Real problems for the quantum tests: daily returns of the bundled S&P 500 names, 2015-2020."""
from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def sp500_returns(sp500):
    import qpo

    return qpo.prices_to_returns(sp500.loc["2015-01-01":"2020-12-31"])


@pytest.fixture(scope="session")
def real_problem(sp500_returns):
    """A factory: the first ``n`` bundled names, Ledoit-Wolf covariance."""
    import qpo

    cache = {}

    def make(n: int):
        if n not in cache:
            cache[n] = qpo.PortfolioProblem.from_returns(sp500_returns.iloc[:, :n], covariance="ledoit_wolf")
        return cache[n]

    return make


@pytest.fixture(scope="session")
def last_prices(sp500):
    return sp500.loc[:"2020-12-31"].iloc[-1]
