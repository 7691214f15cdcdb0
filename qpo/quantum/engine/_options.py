"""The options of the binary objectives and methods (names, defaults, checks) and the model each
objective builds."""
from __future__ import annotations

from typing import TYPE_CHECKING

from qpo._checks import REQUIRED, is_number, quote, whole
from qpo.errors import InvalidValueError, ProblemError, UnknownOptionError
from qpo.quantum.formulation import BinaryModel, lots_model, selection_model

if TYPE_CHECKING:  # pragma: no cover - annotations only: qpo.optimization sits above qpo.quantum
    from qpo.optimization.problem import PortfolioProblem

QUANTUM_METHODS = ("exact", "qaoa", "annealing", "auto")

#: binary objective -> its options and defaults
BINARY_OBJECTIVE_OPTIONS: dict[str, dict[str, object]] = {
    "asset_selection": {"k": None, "cardinality": "exact", "risk_aversion": 1.0, "penalty": None},
    "integer_lots": {"prices": REQUIRED, "cash": REQUIRED, "lot_size": 1, "max_lots": None, "risk_aversion": 1.0,
                     "penalty": None, "slack_resolution": 0.25},
}
BINARY_OBJECTIVES = tuple(BINARY_OBJECTIVE_OPTIONS)

_COMMON = {"reference_time_limit": 120.0}
#: method -> its options and defaults
METHOD_OPTIONS: dict[str, dict[str, object]] = {
    "exact": {"exact_method": "auto", "time_limit": None},
    "qaoa": {"reps": 1, "mixer": "auto", "cvar_alpha": 1.0, "inits": ("linear_ramp", "tqa"), "n_random": 0,
             "optimizer": "COBYLA", "maxiter": 200, "shots": 1024, "backend": "numpy", "max_qubits": 24, **_COMMON},
    "annealing": {"sampler": "simulated_annealing", "num_reads": None, "num_sweeps": None, "penalty_sweep": None,
                  "polish": True, "time_limit": None, **_COMMON},
}
METHOD_OPTIONS["auto"] = {**METHOD_OPTIONS["qaoa"], **METHOD_OPTIONS["annealing"], "auto_qaoa_qubits": 12}


def build_model(problem: PortfolioProblem, objective: str, opts: dict) -> BinaryModel:
    """The binary model of ``objective`` with its resolved options (:func:`resolve_binary_options`)."""
    if objective == "asset_selection":
        return selection_model(problem, opts["k"], cardinality=opts["cardinality"],
                               risk_aversion=opts["risk_aversion"], penalty=opts["penalty"])
    return lots_model(problem, opts["prices"], opts["cash"], lot_size=opts["lot_size"], max_lots=opts["max_lots"],
                      risk_aversion=opts["risk_aversion"], penalty=opts["penalty"],
                      slack_resolution=opts["slack_resolution"])


def resolve_binary_options(objective: str, method: str, options: dict) -> tuple[dict, dict]:
    """Split ``options`` into the objective's and the method's, check the names, fill defaults."""
    obj_valid = BINARY_OBJECTIVE_OPTIONS[objective]
    meth_valid = METHOD_OPTIONS[method]
    for name in options:
        if name not in obj_valid and name not in meth_valid:
            raise UnknownOptionError(f"option for {objective} with method {method!r}", name,
                                     list(obj_valid) + list(meth_valid))
    obj = {k: options.get(k, v) for k, v in obj_valid.items()}
    missing = [k for k, v in obj.items() if v is REQUIRED]
    if missing:
        raise ProblemError(f"{objective} needs {', '.join(missing)}, e.g. optimize(problem, {objective!r}, "
                           "method='exact', prices=last_closes, cash=100_000)")
    meth = {k: options.get(k, v) for k, v in meth_valid.items()}
    for name in ("max_qubits", "auto_qaoa_qubits"):
        if name in meth:
            meth[name] = whole(name, meth[name], 1)
    for name in ("reference_time_limit", "time_limit"):
        lim = meth.get(name)
        if lim is not None and (not is_number(lim) or not float(lim) > 0):
            raise InvalidValueError(f"{name} must be a positive number of seconds or None, got {quote(lim)}")
    if isinstance(meth.get("inits"), str):
        meth["inits"] = (meth["inits"],)
    return obj, meth
