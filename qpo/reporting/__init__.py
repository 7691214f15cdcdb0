"""Reports built from the package's parts, for notebooks, pipelines and dashboards."""
from qpo.reporting.daily import DailyReport, daily_report
from qpo.reporting.frontier import FrontierStudy, frontier_study

__all__ = ["DailyReport", "FrontierStudy", "daily_report", "frontier_study"]
