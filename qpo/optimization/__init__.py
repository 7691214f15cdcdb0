"""One problem type, one result type, one entry point for every optimizer."""
from qpo.optimization.constraints import Constraints
from qpo.optimization.engine import (
           BINARY_OBJECTIVES,
           METHODS,
           OBJECTIVE_OPTIONS,
           OBJECTIVES,
           optimize,
)
from qpo.optimization.frontier import efficient_frontier
from qpo.optimization.problem import PortfolioProblem, nearest_psd
from qpo.optimization.result import OptimizationResult

__all__ = ["BINARY_OBJECTIVES", "METHODS", "OBJECTIVES", "OBJECTIVE_OPTIONS", "Constraints", "OptimizationResult", "PortfolioProblem",
           "efficient_frontier", "nearest_psd", "optimize"]
