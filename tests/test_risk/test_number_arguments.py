"""The risk options are checked by qpo._checks: a bool is not a limit, a numpy integer is a whole
number (``chunk_size=np.int64(2)``, ``min_names=np.int64(3)``) and is stored as an int."""
from __future__ import annotations

import json
from dataclasses import asdict

import numpy as np
import pandas as pd
import pytest

from qpo.errors import InvalidValueError
from qpo.risk import Limits
from qpo.risk.book import book_risk


def test_limits_refuse_bools_and_take_numpy_numbers():
    for field in ("max_weight", "var_limit"):
        with pytest.raises(InvalidValueError, match=rf"Limits.{field} must be a fraction in \(0, 1\].*got True"):
            Limits(**{field: True})
    with pytest.raises(InvalidValueError, match="sector_max caps must be fractions"):
        Limits(sector_max={"Energy": False})
    with pytest.raises(InvalidValueError, match="Limits.min_names must be a whole number >= 1, got True"):
        Limits(min_names=True)
    lim = Limits(max_weight=np.float64(0.3), min_names=np.int64(3))
    assert lim.min_names == 3 and type(lim.min_names) is int
    json.dumps(asdict(lim))  # plain numbers


def test_book_chunk_size_takes_a_numpy_integer():
    rng = np.random.default_rng(0)
    dates = pd.bdate_range("2020-01-01", periods=120)
    returns = pd.DataFrame(rng.normal(0.0, 0.01, (120, 3)), index=dates, columns=["A", "B", "C"])
    weights = pd.DataFrame(rng.dirichlet(np.ones(3), 5), columns=["A", "B", "C"])
    with pytest.raises(InvalidValueError, match="chunk_size must be a whole number >= 1, got True"):
        book_risk(weights, returns, benchmark_returns=None, chunk_size=True)
    by_int = book_risk(weights, returns, benchmark_returns=None, chunk_size=2)
    by_numpy = book_risk(weights, returns, benchmark_returns=None, chunk_size=np.int64(2))
    pd.testing.assert_frame_equal(by_numpy.table, by_int.table)
