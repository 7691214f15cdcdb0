"""What a notebook hands back to the workbench.

``record(name, value)`` and ``show_figure(fig, name)`` display outputs that carry a qpo mime
type, so an executed notebook *is* the run's record: the pipeline runner reads the numbers
(``read_records``) and figures (``read_figures``) back out of it and logs them to MLflow, and
the tests check them. No side files.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

RECORD_MIME = "application/vnd.qpo.record+json"
PLOTLY_MIME = "application/vnd.plotly.v1+json"
_plotlyjs_sent = False


def _jsonable(value: Any) -> Any:
    import numpy as np

    if isinstance(value, (np.floating, np.integer)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def record(name: str, value: Any, *, show: bool = True) -> None:
    """Keep ``name = value``, machine-readable, in the notebook's output (and show it, unless
    ``show=False``, as dashboards want)."""
    from IPython.display import display

    value = _jsonable(value)
    text = f"{name} = {value:.6g}" if isinstance(value, float) else f"{name} = {value}"
    display({RECORD_MIME: {"name": name, "value": value}, "text/plain": text if show else ""}, raw=True)


def show_figure(fig, name: str) -> None:
    """Display a plotly figure: interactive in JupyterLab/Voila (plotly mime type) and as
    self-contained HTML in exported reports (plotly.js inlined once per kernel, no CDN)."""
    global _plotlyjs_sent
    import plotly.io as pio
    from IPython.display import display

    html = pio.to_html(fig, full_html=False, include_plotlyjs=not _plotlyjs_sent)
    _plotlyjs_sent = True
    display({PLOTLY_MIME: json.loads(pio.to_json(fig)), "text/html": html,
             "text/plain": f"<figure {name}>"}, metadata={"qpo_figure": name}, raw=True)


def _outputs(nb_or_path):
    import nbformat

    nb = nbformat.read(str(nb_or_path), as_version=4) if isinstance(nb_or_path, (str, Path)) else nb_or_path
    for cell in nb.cells:
        if cell.get("cell_type") == "code":
            yield from cell.get("outputs", [])


def read_records(nb_or_path) -> dict[str, Any]:
    """Every ``record``-ed value of an executed notebook, by name (last one wins)."""
    out = {}
    for o in _outputs(nb_or_path):
        data = o.get("data", {})
        if RECORD_MIME in data:
            rec = data[RECORD_MIME]
            out[rec["name"]] = rec["value"]
    return out


def read_figures(nb_or_path) -> dict[str, dict]:
    """Every ``show_figure``-ed plotly figure (as JSON) of an executed notebook, by name."""
    out = {}
    for o in _outputs(nb_or_path):
        name = o.get("metadata", {}).get("qpo_figure")
        if name and PLOTLY_MIME in o.get("data", {}):
            out[name] = o["data"][PLOTLY_MIME]
    return out
