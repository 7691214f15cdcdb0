"""Reports built from the package's parts, for notebooks, pipelines and dashboards."""
from qpo.reporting.daily import (
    DailyReport,
    ForecastSection,
    daily_report,
    forecast_section,
)
from qpo.reporting.forecast import (
    baseline_table,
    folds_figure,
    folds_table,
    forecast_comparison,
    ic_figure,
    promotion_html,
)
from qpo.reporting.frontier import FrontierStudy, frontier_study
from qpo.reporting.quantum import QuantumStudy, quantum_study
from qpo.reporting.risk import risk_figures, risk_html, style_summary, style_table

__all__ = ["DailyReport", "ForecastSection", "FrontierStudy", "QuantumStudy", "baseline_table", "daily_report",
           "folds_figure", "folds_table", "forecast_comparison", "forecast_section", "frontier_study",
           "ic_figure", "promotion_html", "quantum_study", "risk_figures", "risk_html", "style_summary", "style_table"]
