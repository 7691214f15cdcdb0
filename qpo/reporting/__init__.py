"""Reports built from the package's parts, for notebooks, pipelines and dashboards."""
from qpo.reporting.daily import DailyReport, daily_report
from qpo.reporting.frontier import FrontierStudy, frontier_study
from qpo.reporting.quantum import QuantumStudy, quantum_study

__all__ = ["DailyReport", "FrontierStudy", "QuantumStudy", "daily_report", "frontier_study", "quantum_study"]
