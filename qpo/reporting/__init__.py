"""Reports built from the package's parts, for notebooks, pipelines and dashboards."""
from qpo.reporting.daily import DailyReport, daily_report

__all__ = ["DailyReport", "daily_report"]
