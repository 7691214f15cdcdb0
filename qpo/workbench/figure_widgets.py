"""Plotly figure widgets whose JavaScript the dashboard's server serves once.

plotly 7's ``FigureWidget`` is an anywidget whose ``_esm`` trait holds plotly's whole widget bundle
(about 5 MB of JavaScript): every figure sends it to the browser again, through the kernel's
websocket, when its model opens. The dashboard's server (:mod:`qpo.workbench.dashboard_server`)
serves that bundle at :func:`bundle_route` (to a signed-in person only, cached by the browser for
good: the version is in its name) and tells each visit's kernel its address in
``QPO_WIDGET_BUNDLE_URL``; :func:`figure_widget` then makes figures whose ``_esm`` is that address
(anywidget imports an ``http(s)://`` address instead of running inline code), so a page loads the
bundle once, by HTTP, whatever its number of figures. Without the variable (a notebook run by
hand), figures are plotly's own ``FigureWidget``, the bundle inline; a server started with
``QPO_WIDGET_BUNDLE=inline`` tells its kernels no address (a proxy in front that cannot pass the
route; a comparison).
"""
from __future__ import annotations

import os
from pathlib import Path

#: the environment variable that holds the bundle's address for the kernels of the dashboard
BUNDLE_URL_ENV = "QPO_WIDGET_BUNDLE_URL"
#: ``inline`` on the dashboard's server: its kernels are told no address (figures carry the bundle)
BUNDLE_MODE_ENV = "QPO_WIDGET_BUNDLE"

_classes: dict[str, type] = {}


def bundle_path() -> Path:
    """plotly's widget bundle (the JavaScript its FigureWidget sends inline)."""
    import plotly

    return Path(plotly.__file__).parent / "package_data" / "widgetbundle.js"


def bundle_version() -> str:
    """The version of plotly whose bundle is served (part of its address: a new plotly, a new address)."""
    import plotly

    return str(plotly.__version__)


def bundle_route() -> str:
    """The bundle's path on the dashboard's server, below its base URL (no leading slash)."""
    return f"qpo/static/plotly-widget-{bundle_version()}.js"


def _plotly_figure_widget() -> type:
    """plotly's ``FigureWidget``, imported without compiling ``rfc3987_syntax``'s grammars.

    Importing ``FigureWidget`` imports plotly's renderers, which import nbformat and so jsonschema;
    jsonschema's format checkers import ``rfc3987_syntax`` when it is installed (Jupyter's event
    schemas pull it in), and that module compiles 38 lark grammars when imported: about 1 s of a
    dashboard kernel's start (measured: 0.99 s of a 3.0 s kernel), for an IRI format check nothing in
    a kernel uses. When jsonschema is not imported yet, it is imported with that optional module
    hidden, as if it were not installed (jsonschema then checks no ``iri`` format in this process);
    the module itself stays importable afterwards.
    """
    import sys

    if "jsonschema" not in sys.modules and "rfc3987_syntax" not in sys.modules:
        sys.modules["rfc3987_syntax"] = None  # type: ignore[assignment]  # import fails: jsonschema skips it
        try:
            import jsonschema._format  # type: ignore[import-untyped]  # noqa: F401
        finally:
            del sys.modules["rfc3987_syntax"]
    import plotly.graph_objects as go

    return go.FigureWidget


def widget_class(url: str | None = None) -> type:
    """The FigureWidget class for the bundle at ``url`` (default: ``QPO_WIDGET_BUNDLE_URL``);
    plotly's own ``FigureWidget`` (the bundle inline) when there is none."""
    from qpo.errors import InvalidValueError

    figure_widget_base = _plotly_figure_widget()
    url = (os.environ.get(BUNDLE_URL_ENV) or "").strip() if url is None else url.strip()
    if not url:
        return figure_widget_base
    if not url.startswith(("http://", "https://")):
        raise InvalidValueError(f"{BUNDLE_URL_ENV} must be an http:// or https:// address of plotly's widget "
                                f"bundle (anywidget imports only those), got {url!r}")
    cls = _classes.get(url)
    if cls is None:
        cls = type("QpoFigureWidget", (figure_widget_base,), {"__module__": __name__,
                                                               "__doc__": f"A FigureWidget whose JavaScript is {url}."})
        # set after the class is made: anywidget would read a class's own ``_esm`` ending in ".js"
        # as a file to inline when the class is created
        cls._esm = url  # type: ignore[attr-defined]
        _classes[url] = cls
    return cls


def figure_widget(figure=None, **kwargs):
    """A FigureWidget of ``figure`` (a plotly figure or its dict, or None) and ``kwargs`` (``layout=``,
    ``data=``), of :func:`widget_class`: the bundle served by the dashboard when the kernel knows
    its address, else inline."""
    return widget_class()(figure, **kwargs)
