"""The quantum options are checked by qpo._checks: a bool is refused wherever a number is expected
(``cvar_alpha=True`` is not alpha = 1), and a numpy integer is a whole number like an int."""
from __future__ import annotations

import numpy as np
import pytest

import qpo
from qpo.errors import InvalidValueError
from qpo.quantum.annealing import run_annealing
from qpo.quantum.exact import solve_scip
from qpo.quantum.formulation import selection_model
from qpo.quantum.qaoa import dicke_state, run_qaoa


def test_a_bool_is_not_a_cvar_level(real_problem):
    pb = real_problem(4)
    with pytest.raises(InvalidValueError, match=r"cvar_alpha must be in \(0, 1\].*got True"):
        qpo.optimize(pb, "asset_selection", method="qaoa", k=2, cvar_alpha=True)
    with pytest.raises(InvalidValueError, match="reps"):  # as reps=True always was
        qpo.optimize(pb, "asset_selection", method="qaoa", k=2, reps=True)
    diag = np.arange(8.0)
    for bad in (True, False, np.bool_(True), "0.5"):
        with pytest.raises(InvalidValueError, match="cvar_alpha"):
            run_qaoa(diag, cvar_alpha=bad)
    assert run_qaoa(diag, cvar_alpha=np.float64(0.5), reps=1, maxiter=5).cvar_alpha == 0.5


@pytest.mark.parametrize("option", ["n_random", "maxiter", "shots", "seed", "reps"])
def test_qaoa_whole_numbers_refuse_bools_and_take_numpy_integers(option):
    diag = np.arange(8.0)
    with pytest.raises(InvalidValueError, match=f"{option}.*whole number.*got True"):
        run_qaoa(diag, **{option: True})
    run = run_qaoa(diag, **{"maxiter": 5, option: np.int64(2)})
    assert run.evaluations > 0
    with pytest.raises(InvalidValueError, match="k must"):
        run_qaoa(diag, mixer="xy", k=True)
    assert run_qaoa(diag, mixer="xy", k=np.int64(1), maxiter=5).mixer == "xy"


def test_dicke_state_and_sampler_options():
    with pytest.raises(InvalidValueError, match="k must be a whole number"):
        dicke_state(3, True)
    with pytest.raises(InvalidValueError, match="n must be a whole number"):
        dicke_state(True, 0)
    assert dicke_state(np.int64(3), np.int64(1)).sum() == pytest.approx(3 / np.sqrt(3))


def test_annealing_and_exact_options(real_problem):
    model = selection_model(real_problem(5), 2)
    for option in ("num_reads", "seed"):
        with pytest.raises(InvalidValueError, match=option):
            run_annealing(model, **{option: True})
    run = run_annealing(model, num_reads=np.int64(3), seed=np.int64(1))
    assert run.n_reads == 3
    for bad in (True, "10", float("nan"), 0):
        with pytest.raises(InvalidValueError, match="time_limit must be a positive number of seconds"):
            solve_scip(model, time_limit=bad)
    pb = real_problem(5)
    for method, option in (("exact", "time_limit"), ("annealing", "reference_time_limit")):
        with pytest.raises(InvalidValueError, match=f"{option} must be a positive number"):
            qpo.optimize(pb, "asset_selection", method=method, k=2, **{option: True})
