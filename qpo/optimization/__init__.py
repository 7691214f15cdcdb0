"""One problem type, one result type, one entry point for every optimizer."""
from qpo.optimization.engine import METHODS, OBJECTIVES, optimize
from qpo.optimization.problem import Constraints, PortfolioProblem
from qpo.optimization.result import OptimizationResult

__all__ = ["METHODS", "OBJECTIVES", "Constraints", "OptimizationResult", "PortfolioProblem", "optimize"]
