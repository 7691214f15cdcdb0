"""The number checks every part shares refuse what is not a finite real number, without raising."""
from __future__ import annotations

import numpy as np
import pytest

from qpo._checks import is_number


@pytest.mark.parametrize("value", [10**400, -(10**400), float("nan"), float("inf"), np.inf, True, "1", None, 1j])
def test_not_a_finite_number(value):
    assert is_number(value) is False


@pytest.mark.parametrize("value", [0, 1, -3, 2.5, np.float32(1.5), np.int64(7), 10**300])
def test_a_finite_number(value):
    assert is_number(value) is True
