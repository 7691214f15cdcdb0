"""The dashboard's Report tab: the client report to download (offline HTML, and PDF) and the trade
list (CSV) of the proposal shown in the Rebalance tab.

The report is :func:`qpo.reporting.client_report.client_report` (the client, value and cash,
holdings, the daily risk report and, when the Rebalance tab shows a proposal of this portfolio,
that proposal); the PDF is that page printed by headless Chromium; the CSV is
:func:`qpo.reporting.rebalance.order_ticket`. Each is given to the browser as a link with a data:
URI (works in Voila without its files handler). A :class:`qpo.errors.QpoError` shows its message in
red; any other error only its type (its text may hold a secret such as a database URL).
"""
from __future__ import annotations

import base64
import datetime as dt
import html
from typing import Any

NO_PROPOSAL_NOTE = ("No proposal is shown for this portfolio: propose a rebalance in the Rebalance tab to "
                    "download its trade list.")
NO_CHROMIUM_NOTE = "A PDF needs Chromium on the server (apt-get install chromium); the HTML report works without it."


def _error(text: str) -> str:
    return f"<div class='qpo-error' style='color:#c0392b'>{html.escape(text)}</div>"


def download_link(data: bytes, filename: str, mime: str, label: str) -> str:
    """An ``<a download>`` whose href is ``data`` as a base64 data: URI."""
    uri = f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"
    return (f"<a class='qpo-download' download='{html.escape(filename, quote=True)}' href='{uri}' "
            f"target='_blank'>{html.escape(label)} ({len(data) / 1024:,.0f} kB)</a>")


class ReportTab:
    """Tab 6 of the advisor dashboard (see the module). ``show(name)`` picks portfolio ``name``;
    ``make_html()``, ``make_pdf()`` and ``make_csv()`` are what the buttons do, each putting its
    link (or a message) in ``links``; ``report`` is the last client report made, ``pdf`` and
    ``csv`` the last bytes given."""

    def __init__(self, board) -> None:
        import ipywidgets as widgets

        self.board = board
        self.name: str | None = None
        self.report: Any = None
        self.pdf: bytes | None = None
        self.csv: bytes | None = None
        self._made: tuple | None = None  # the basis (:meth:`_basis`) of the links shown
        self.html_button = widgets.Button(description="Client report (HTML)", icon="file-text", disabled=True,
                                          layout=widgets.Layout(width="200px"))
        self.pdf_button = widgets.Button(description="PDF", icon="file-pdf-o", disabled=True)
        self.csv_button = widgets.Button(description="Trade list (CSV)", icon="table", disabled=True,
                                         layout=widgets.Layout(width="180px"))
        self.message = widgets.HTML()
        self.note = widgets.HTML()
        self.links = widgets.HTML()
        self.widget = widgets.VBox([widgets.HBox([self.html_button, self.pdf_button, self.csv_button]),
                                    self.note, self.message, self.links])
        self.html_button.on_click(lambda _b: self.make_html())
        self.pdf_button.on_click(lambda _b: self.make_pdf())
        self.csv_button.on_click(lambda _b: self.make_csv())

    # -- state --------------------------------------------------------------------------------------
    def proposal(self) -> Any:
        """The proposal the Rebalance tab shows for this portfolio, or None."""
        rebalance = (getattr(self.board, "tabs", None) or {}).get("Rebalance")
        p = getattr(rebalance, "proposal", None)
        if p is None or self.name is None or getattr(rebalance, "name", self.name) != self.name:
            return None
        return p if getattr(p, "portfolio", None) == self.name else None

    def refresh(self) -> None:
        """The buttons and the notes as the portfolio and the Rebalance tab's proposal now stand."""
        from qpo.reporting.client_report import chromium

        ready = self.name is not None
        has_proposal = self.proposal() is not None
        self.html_button.disabled = not ready
        self.pdf_button.disabled = not ready or chromium() is None
        self.csv_button.disabled = not ready or not has_proposal
        notes = []
        if ready and not has_proposal:
            notes.append(NO_PROPOSAL_NOTE)
        if ready and chromium() is None:
            notes.append(NO_CHROMIUM_NOTE)
        self.note.value = "".join(f"<p class='qpo-note'><i>{html.escape(n)}</i></p>" for n in notes)

    def _fail(self, exc: Exception, what: str) -> None:
        from qpo.errors import QpoError
        from qpo.workbench._overview import failure_text

        self.links.value = ""
        self._made = None
        text = str(exc) if isinstance(exc, QpoError) else failure_text(exc, what)
        self.message.value = _error(text)

    def _basis(self) -> tuple:
        """What the links shown were made of: the portfolio and the Rebalance tab's proposal."""
        return (self.name, self.proposal())

    def _still_shown(self, name: str) -> bool:
        """Whether the links shown were made of ``name`` and the proposal the Rebalance tab shows now."""
        return (self._made is not None and self.name is not None and name == self.name == self._made[0]
                and self._made[1] is self.proposal())

    def _follow_selection(self) -> None:
        """Act on the portfolio the board shows now: a button's click may reach the kernel before the
        message that opened the tab (which shows the board's portfolio here)."""
        current = getattr(self.board, "selected", None)
        if current is not None and current != self.name:
            self.show(current)

    def show(self, name: str) -> None:
        """Portfolio ``name``: no link yet; a portfolio the person may not read is a message. Shown
        again (the tab opened again) with the same portfolio and the same proposal in the Rebalance
        tab, the links already made stay (the report just made is not discarded)."""
        from qpo.store import get_portfolio, session_scope

        if self._still_shown(name):
            self.refresh()
            return
        self._made = None
        self.name, self.report, self.pdf, self.csv = name, None, None, None
        self.links.value = self.message.value = ""
        try:
            with session_scope(self.board.engine, write=False) as s:
                get_portfolio(s, self.board.actor, name)
        except Exception as exc:  # noqa: BLE001 - shown in the tab (a qpo message, else only its type)
            self.name = None
            self.refresh()
            self._fail(exc, f"the portfolio {name} could not be read")
            return
        self.refresh()

    def _file(self, ext: str) -> str:
        from qpo.reporting.client_report import safe_name

        day = self.report.daily.as_of.date() if self.report is not None else dt.date.today()
        return f"{safe_name(self.name or '')}_{day.isoformat()}.{ext}"

    # -- the downloads ------------------------------------------------------------------------------
    def make_html(self) -> bool:
        """Build the client report and offer it as an HTML file; False (and a message) when it fails."""
        from qpo.reporting.client_report import client_report

        self._follow_selection()
        self.refresh()
        if self.name is None:
            self.message.value = _error("pick a portfolio first")
            return False
        try:
            self.report = client_report(self.name, self.board.prices, engine=self.board.engine, actor=self.board.actor,
                                        benchmark_returns=getattr(self.board, "benchmark", None),
                                        proposal=self.proposal(),
                                        lookback_days=int(getattr(self.board, "lookback_days", 756)))
        except Exception as exc:  # noqa: BLE001 - shown in the tab (a qpo message, else only its type)
            self.report = None
            self._fail(exc, f"the report of {self.name} could not be made")
            return False
        self.message.value = ""
        self._made = self._basis()
        extra = " with the proposal shown in the Rebalance tab" if self.report.with_proposal else ""
        self.links.value = (f"<p>Client report of {html.escape(self.name)}{extra}: "
                            + download_link(self.report.page.encode("utf-8"), self._file("html"), "text/html",
                                            "download the HTML report") + "</p>")
        return True

    def make_pdf(self) -> bool:
        """The client report printed to PDF by Chromium, offered as a file; False when it fails."""
        from qpo.reporting.client_report import chromium, html_to_pdf

        self._follow_selection()
        if chromium() is None:
            self.refresh()
            self.message.value = _error(NO_CHROMIUM_NOTE)
            return False
        if not self.make_html():
            return False
        html_link = self.links.value
        try:
            self.pdf = html_to_pdf(self.report.page)
        except Exception as exc:  # noqa: BLE001 - shown in the tab (a qpo message, else only its type)
            self.pdf = None
            self._fail(exc, "the PDF could not be printed")
            self.links.value = html_link  # the HTML is still offered
            self._made = self._basis()
            return False
        self.links.value = html_link + "<p>" + download_link(self.pdf, self._file("pdf"), "application/pdf",
                                                             "download the PDF") + "</p>"
        return True

    def make_csv(self) -> bool:
        """The order ticket of the proposal shown, offered as a CSV file; False (and the note) without one."""
        from qpo.reporting.client_report import safe_name
        from qpo.reporting.rebalance import order_ticket

        self._follow_selection()
        self.refresh()
        proposal = self.proposal()
        if proposal is None:
            self.csv = None
            self.links.value = ""
            self.message.value = _error(NO_PROPOSAL_NOTE if self.name is not None else "pick a portfolio first")
            return False
        try:
            self.csv = order_ticket(proposal).to_csv(index=False, lineterminator="\n").encode("utf-8")
        except Exception as exc:  # noqa: BLE001 - shown in the tab (a qpo message, else only its type)
            self.csv = None
            self._fail(exc, "the trade list could not be made")
            return False
        self.message.value = ""
        day = getattr(proposal, "prices_as_of", None)
        stamp = pd_date(day) or dt.date.today().isoformat()
        name = f"{safe_name(self.name or '')}_trades_{stamp}.csv"
        self.links.value = "<p>" + download_link(self.csv, name, "text/csv", "download the trade list") + "</p>"
        self._made = self._basis()
        return True


def pd_date(value) -> str | None:
    """``value`` (a date, a timestamp or text) as YYYY-MM-DD, or None."""
    import pandas as pd

    try:
        return None if value is None else pd.Timestamp(value).date().isoformat()
    except (TypeError, ValueError):
        return None
