"""One VaR/CVaR rule for one portfolio and for a block: :func:`qpo.measures.var_cvar_columns` gives,
column by column, the numbers of :func:`qpo.measures.var_cvar`, and the book's risk
(``qpo.risk._book_parts``) is that function, not a second copy of the rule."""
from __future__ import annotations

import numpy as np
import pytest

from qpo import measures
from qpo.errors import InvalidValueError
from qpo.risk import _book_parts


def _matrix(rng: np.random.Generator, t: int, m: int) -> np.ndarray:
    """Returns with many ties (a few cents' grid) and a column of one value repeated."""
    x = np.round(rng.standard_t(3, (t, m)) * 0.01, 3)
    x[:, 0] = -0.02  # every return tied
    x[: t // 2, 1] = x[0, 1]  # half the column one value
    return x


@pytest.mark.parametrize(("t", "confidence"), [
    (1000, 0.95),  # k = 50, whole (50.00000000000004 in floating point)
    (200, 0.99),  # k = 2, whole
    (40, 0.975),  # k = 1, whole: the tail is the boundary return alone
    (100, 0.975),  # k = 2.5
    (250, 0.99),  # k = 2.5
    (37, 0.9),  # k = 3.7
    (10, 0.95),  # k = 0.5 < 1: the worst return
])
def test_columns_give_the_one_portfolio_numbers(t, confidence):
    rng = np.random.default_rng(t)
    x = _matrix(rng, t, 12)
    var, cvar = measures.var_cvar_columns(x, confidence)
    assert var.shape == cvar.shape == (12,)
    one = np.array([measures.var_cvar(x[:, j], confidence) for j in range(x.shape[1])])
    np.testing.assert_allclose(var, one[:, 0], rtol=0, atol=1e-15)
    np.testing.assert_allclose(cvar, one[:, 1], rtol=0, atol=1e-15)
    np.testing.assert_array_equal(np.column_stack((var, cvar)), one)  # the same code: to the last bit
    # a column alone, in another layout, or among others gives the same numbers
    for block in (np.asfortranarray(x), x[:, ::-1], np.repeat(x, 3, axis=1)):
        v, c = measures.var_cvar_columns(block, confidence)
        np.testing.assert_array_equal(np.sort(v), np.sort(np.resize(var, v.size)))
        np.testing.assert_array_equal(np.sort(c), np.sort(np.resize(cvar, c.size)))
    # the rule written out on the sorted column
    k, ik = measures.tail_size(t, confidence)
    s = np.sort(x, axis=0)
    want_cvar = -s[0] if k < 1 else -(s[:ik].sum(axis=0) + s[ik] * (k - ik)) / k
    np.testing.assert_allclose(var, -s[ik], rtol=0, atol=0)
    np.testing.assert_allclose(cvar, want_cvar, rtol=1e-12, atol=1e-15)
    assert (cvar >= var - 1e-15).all()
    assert var[0] == 0.02 and cvar[0] == pytest.approx(0.02, rel=1e-14)  # every return tied: that loss


def test_the_book_uses_the_column_rule(monkeypatch):
    rng = np.random.default_rng(5)
    P = _matrix(rng, 500, 8)
    one = np.array([measures.var_cvar(P[:, j], 0.95) for j in range(P.shape[1])])
    np.testing.assert_array_equal(np.column_stack(_book_parts.historical_var_cvar(P, 0.95, 1)), one)
    calls = []

    def rule(block, confidence):
        calls.append((block.shape, confidence))
        return np.zeros(block.shape[1]), np.ones(block.shape[1])

    monkeypatch.setattr(_book_parts, "var_cvar_columns", rule)
    var, cvar = _book_parts.historical_var_cvar(P, 0.95, 5)
    assert calls == [((496, 8), 0.95)] and (var == 0).all() and (cvar == 1).all()  # 500 - 5 + 1 sums


def test_columns_need_a_matrix():
    with pytest.raises(InvalidValueError, match="2-d"):
        measures.var_cvar_columns(np.zeros(10), 0.95)
    with pytest.raises(InvalidValueError, match="strictly between 0 and 1"):
        measures.var_cvar_columns(np.zeros((10, 2)), 95)
