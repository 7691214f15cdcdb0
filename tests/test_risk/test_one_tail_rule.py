"""One implementation of the historical VaR/CVaR rule: :func:`qpo.risk.var.tail_average` (and with it
``qpo.risk.var_cvar(method="historical")`` at any horizon) is :func:`qpo.measures.var_cvar`, not a
second copy of its formula."""
import numpy as np
import pytest

import qpo
from qpo import measures
from qpo.risk import var as risk_var


@pytest.mark.parametrize(("n", "confidence", "k"), [(1000, 0.95, 50.0), (100, 0.975, 2.5), (250, 0.99, 2.5),
                                                    (10, 0.95, 0.5)],
                         ids=["whole k", "fractional k", "fractional k 99%", "k < 1"])
def test_risk_and_measures_give_the_same_numbers(n, confidence, k):
    r = np.random.default_rng(3).standard_t(4, n) * 0.01
    assert measures.tail_size(n, confidence)[0] == pytest.approx(k)
    expected = measures.var_cvar(r, confidence)
    assert risk_var.tail_average(r, confidence) == expected  # unsorted outcomes are fine
    assert risk_var.tail_average(np.sort(r), confidence) == expected
    assert qpo.risk.var_cvar(r, confidence, method="historical") == expected
    s = np.sort(r)  # the rule itself, written out: a wrong shared implementation fails here too
    floor_k = int(np.floor(k))
    var = -s[max(0, int(np.ceil(k)) - 1)]
    cvar = -s[0] if k < 1 else -(s[:floor_k].sum() + s[floor_k] * (k - floor_k) if k != floor_k
                                 else s[:floor_k].sum()) / k
    assert expected == (pytest.approx(var, rel=1e-12), pytest.approx(cvar, rel=1e-12))


def test_tail_average_is_the_measures_rule(monkeypatch):
    """Change the rule in qpo.measures and qpo.risk follows: there is no second copy to drift."""
    calls = []

    def rule(returns, confidence):
        calls.append((len(returns), confidence))
        return 0.123, 0.456

    monkeypatch.setattr(measures, "var_cvar", rule)
    r = np.linspace(-0.05, 0.05, 40)
    assert risk_var.tail_average(r, 0.9) == (0.123, 0.456)
    assert qpo.risk.var_cvar(r, 0.9, horizon=5, method="historical") == (0.123, 0.456)
    assert calls == [(40, 0.9), (36, 0.9)]  # 40 - 5 + 1 overlapping 5-period sums
