"""The dashboard's Report tab (issue 18, tab 6) on a real store (the demo book), real prices and the
real optimizer: the HTML report decoded from its data: link is the portfolio's (client, holdings,
the daily report's risk numbers, offline), the PDF is printed by Chromium, the CSV is the order
ticket of the proposal the Rebalance tab shows; without a proposal the CSV is disabled with a note;
another advisor's portfolio is a message and no link."""
from __future__ import annotations

import base64
import html
import io
import re
import time

import pandas as pd
import pytest

import qpo
from tests.test_workbench import seed_demo_book, tab_board

ANA = "ana.silva@example.com"
BG = "Balanced Growth"


@pytest.fixture
def board(qpo_home, sp500):
    from qpo.store import connect

    engine = connect()
    seed_demo_book(engine, prices=sp500)
    index = qpo.prices_to_returns(qpo.load_prices("sp500_index", start="2000-01-01"))["SP500"]
    return tab_board(engine, ANA, sp500.loc["2000-01-01":], benchmark=index, lookback_days=500, tabs={})


def _tab(board, name=BG):
    from qpo.workbench.tabs.report import ReportTab

    tab = ReportTab(board)
    tab.show(name)
    return tab


def _links(value: str) -> dict[str, tuple[str, bytes]]:
    """download name -> (mime, bytes) of each data: link in the HTML ``value``."""
    out = {}
    for name, mime, data in re.findall(r"download='([^']+)' href='data:([^;]+);base64,([^']+)'", value):
        out[name] = (mime, base64.b64decode(data))
    return out


def _propose(board, name=BG):
    from qpo.workbench.tabs.rebalance import RebalanceTab

    rebalance = RebalanceTab(board)
    rebalance.show(name)
    rebalance.propose()
    assert rebalance.proposal is not None, rebalance.status.value
    board.tabs["Rebalance"] = rebalance
    return rebalance.proposal


def test_the_html_report_is_the_portfolios_offline(board):
    from qpo.reporting.daily import daily_report
    from qpo.store import get_portfolio, position, session_scope

    tab = _tab(board)
    assert not tab.html_button.disabled and tab.csv_button.disabled
    t0 = time.perf_counter()
    assert tab.make_html(), tab.message.value
    elapsed = time.perf_counter() - t0
    links = _links(tab.links.value)
    day = board.prices.index[-1].date().isoformat()
    assert list(links) == [f"Balanced_Growth_{day}.html"]
    mime, data = links[f"Balanced_Growth_{day}.html"]
    page = data.decode("utf-8")
    assert mime == "text/html"
    with session_scope(board.engine) as s:
        client = get_portfolio(s, board.actor, BG).client_name
        pos = position(s, board.actor, BG)
    assert html.escape(client) in page
    for ticker in pos.shares.index:
        assert f"<th>{ticker}</th>" in page
    value = float((pos.shares * board.prices[pos.shares.index].iloc[-1]).sum()) + pos.cash
    assert f"${value:,.2f}" in page and f"${pos.cash:,.2f}" in page
    # the risk numbers are daily_report's on the same inputs
    levels = (1 + board.benchmark.fillna(0)).cumprod()
    expected = daily_report(BG, board.prices, lookback_days=500, benchmark=levels, engine=board.engine,
                            actor=board.actor, n_scenarios=20_000)
    pd.testing.assert_frame_equal(tab.report.daily.risk_table(), expected.risk_table(), rtol=1e-10)
    assert expected.benchmark_risk is not None  # the benchmark was used
    hist = expected.risk.var_table.loc["historical", "var"]
    assert f"{100 * hist:.2f}%" in page
    # offline: plotly.js inlined once (its own text names its CDN for maps only), nothing loaded from the network
    import plotly.offline

    assert page.count(plotly.offline.get_plotlyjs()) == 1 and "Plotly.newPlot" in page
    assert page.index(plotly.offline.get_plotlyjs()) < page.index('id="fig-daily-wealth"')  # loaded before use
    outside = page.replace(plotly.offline.get_plotlyjs(), "")
    assert "cdn.plot.ly" not in outside and not re.search(r"<script[^>]+src=['\"]?https?:", page)
    assert "Rebalance proposal" not in page  # no proposal shown
    print(f"HTML report: {elapsed:.2f} s, {len(data) / 1e6:.1f} MB")


def test_the_report_carries_the_proposal_shown_and_the_csv_is_its_ticket(board):
    from qpo.reporting.rebalance import order_ticket

    proposal = _propose(board)
    tab = _tab(board)
    assert not tab.csv_button.disabled and "No proposal" not in tab.note.value
    assert tab.make_csv()
    (name, (mime, data)), = _links(tab.links.value).items()
    assert name.startswith("Balanced_Growth_trades_") and name.endswith(".csv") and mime == "text/csv"
    shown = pd.read_csv(io.StringIO(data.decode()))
    ticket = order_ticket(proposal)
    assert len(shown) == len(ticket) > 0
    assert data.decode() == ticket.to_csv(index=False, lineterminator="\n")
    assert tab.make_html()
    page = next(iter(_links(tab.links.value).values()))[1].decode()
    import plotly.offline

    assert "Rebalance proposal: Balanced Growth" in page and page.count(plotly.offline.get_plotlyjs()) == 1
    for ticker in proposal.trades["ticker"] if "ticker" in proposal.trades else proposal.trades.index:
        assert ticker in page


def test_no_proposal_disables_the_csv_with_a_note(board):
    from qpo.workbench.tabs.report import NO_PROPOSAL_NOTE

    tab = _tab(board)
    assert tab.csv_button.disabled and html.escape(NO_PROPOSAL_NOTE) in tab.note.value
    assert not tab.make_csv() and tab.links.value == "" and tab.csv is None
    _propose(board, "Conservative Income")  # a proposal of another portfolio is not this one's
    tab.refresh()
    assert tab.csv_button.disabled


def test_another_advisors_portfolio_is_a_message_and_no_link(board):
    tab = _tab(board, "Tech Tilt")
    assert "qpo-error" in tab.message.value and "Tech Tilt" in html.unescape(tab.message.value)
    assert tab.html_button.disabled and tab.csv_button.disabled
    assert not tab.make_html() and "href" not in tab.links.value
    assert "Nakamura" not in tab.message.value + tab.links.value


def test_the_pdf_is_printed_by_chromium(board, monkeypatch):
    from tests.browser import chromium_path

    monkeypatch.setenv("QPO_CHROMIUM", chromium_path())
    tab = _tab(board)
    t0 = time.perf_counter()
    assert tab.make_pdf(), tab.message.value
    elapsed = time.perf_counter() - t0
    links = _links(tab.links.value)
    pdf = next(data for name, (mime, data) in links.items() if name.endswith(".pdf"))
    assert any(name.endswith(".html") for name in links)
    assert pdf.startswith(b"%PDF") and len(pdf) > 20_000
    assert len(re.findall(rb"/Type\s*/Page[^s]", pdf)) > 1
    print(f"PDF: {elapsed:.2f} s, {len(pdf) / 1e3:.0f} kB")


def test_no_chromium_is_a_clear_message_and_the_html_still_works(board, monkeypatch):
    from qpo.workbench.tabs.report import NO_CHROMIUM_NOTE

    monkeypatch.setenv("QPO_CHROMIUM", "/nonexistent/chromium")
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.setattr("os.access", lambda path, mode: False)
    tab = _tab(board)
    assert tab.pdf_button.disabled and html.escape(NO_CHROMIUM_NOTE) in tab.note.value
    assert not tab.make_pdf() and "Chromium" in tab.message.value
    assert tab.make_html() and not tab.html_button.disabled


def test_the_tab_opened_again_keeps_the_report_just_made_and_a_click_follows_the_selection(board):
    """The dashboard shows the Report tab again each time it is opened; the click on a button may
    reach the kernel before that opening's message: the report just made must survive the
    opening, and a click acts on the portfolio the board shows."""
    tab = _tab(board)
    assert tab.make_html(), tab.message.value
    made, links = tab.report, tab.links.value
    tab.show(BG)  # the tab opened again, the same portfolio and no new proposal
    assert tab.report is made and tab.links.value == links != ""
    # a proposal made since in the Rebalance tab: the report without it is no longer offered
    _propose(board)
    tab.show(BG)
    assert tab.report is None and tab.links.value == ""
    assert tab.make_html() and tab.report.with_proposal
    with_proposal = tab.links.value
    tab.show(BG)
    assert tab.links.value == with_proposal
    # another portfolio selected on the board, the click delivered before the tab's opening message
    board.selected = "Conservative Income"
    assert tab.make_html(), tab.message.value
    assert tab.name == "Conservative Income" and list(_links(tab.links.value))[0].startswith("Conservative_Income_")
    links = tab.links.value
    tab.show("Conservative Income")  # the opening message, after
    assert tab.links.value == links and tab.report is not None
    tab.show(BG)  # another portfolio: its own, nothing made yet
    assert tab.links.value == "" and tab.report is None
