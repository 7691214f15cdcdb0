"""The workbench around the package: notebook helpers, Papermill pipelines, Voila dashboards."""
from qpo.workbench.notebook import read_figures, read_records, record, show_figure

__all__ = ["read_figures", "read_records", "record", "show_figure"]
