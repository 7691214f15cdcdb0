"""The forecasting options are checked by qpo._checks: a bool is not a number of years or of days,
a numpy integer is a whole number."""
from __future__ import annotations

import numpy as np
import pytest

from qpo.errors import InvalidValueError
from qpo.forecasting import FeatureSpec, walk_forward


def test_bools_are_not_years_and_numpy_integers_are_days():
    with pytest.raises(InvalidValueError, match="min_train_years.*got True"):
        walk_forward(None, min_train_years=True)  # refused before the prices are read
    with pytest.raises(InvalidValueError, match="rolling window needs train_years.*got True"):
        walk_forward(None, window="rolling", train_years=True)
    with pytest.raises(InvalidValueError, match="return_horizons.*whole number.*got True"):
        FeatureSpec(return_horizons=(1, True))
    spec = FeatureSpec(return_horizons=(np.int64(2),), vol_windows=np.int64(5))
    assert spec.return_horizons == (2,) and spec.vol_windows == (5,) and type(spec.vol_windows[0]) is int
