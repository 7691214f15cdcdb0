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
from qpo.reporting.rebalance import (
    compare_proposals,
    order_ticket,
    order_ticket_csv,
    proposal_figures,
    proposal_html,
    proposal_page,
)
from qpo.reporting.risk import risk_figures, risk_html, style_summary, style_table

__all__ = ["DailyReport", "ForecastSection", "FrontierStudy", "QuantumStudy", "baseline_table", "compare_proposals",
           "daily_report", "folds_figure", "folds_table", "forecast_comparison", "forecast_section", "frontier_study",
           "ic_figure", "order_ticket", "order_ticket_csv", "promotion_html", "proposal_figures", "proposal_html",
           "proposal_page", "quantum_study", "risk_figures", "risk_html", "style_summary", "style_table"]
