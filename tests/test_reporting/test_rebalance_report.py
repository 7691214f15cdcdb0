"""A rebalance proposal exported (qpo.reporting.rebalance): the order ticket against the proposal's
own trade list and an independent replay of it, the offline HTML page (parsed, its figures' data read
back out of the page), hostile names escaped, an atomic write, and a proposal read back from its
record exporting the same ticket. Real proposals on the bundled S&P 500 panel."""
from __future__ import annotations

import base64
import csv
import io
import json
import math
import os
import re
from html.parser import HTMLParser

import numpy as np
import pandas as pd
import pytest

import qpo
from qpo.book import RebalanceProposal, Strategy, plan_rebalance
from qpo.errors import InvalidValueError
from qpo.reporting.rebalance import (
    COMPARE_ROWS,
    TICKET_COLUMNS,
    compare_proposals,
    order_ticket,
    order_ticket_csv,
    proposal_figures,
    proposal_html,
)

PANEL = qpo.load_prices("sp500")
ALL = list(PANEL.columns)
AS_OF = "2022-06-30"
HELD = pd.Series({"AAPL": 300.0, "MSFT": 200.0, "XOM": 500.0, "JPM": 100.0, "KO": 400.0})
CASH = 25_000.0
HOSTILE = '<script>alert("x")</script> O\'Brien & "Sons" \U0001f4c8'


def strategy(**kw) -> Strategy:
    base = {"constraints": {"max_weight": 0.15}, "sector_max": 0.3, "commission": 1.0, "spread_bps": 5.0,
            "limits": {"max_weight": 0.15, "sector_max": 0.3, "min_names": 8, "var_limit": 0.03}}
    return Strategy(**(base | kw))


@pytest.fixture(scope="module")
def whole() -> RebalanceProposal:
    return plan_rebalance(HELD, CASH, PANEL, strategy(), as_of=AS_OF, portfolio="Demo", account="ACC-1", universe=ALL)


@pytest.fixture(scope="module")
def fractional() -> RebalanceProposal:
    return plan_rebalance(HELD, CASH, PANEL, strategy(fractional=True), as_of=AS_OF, portfolio="Demo", universe=ALL)


@pytest.fixture(scope="module")
def hostile() -> RebalanceProposal:
    """A hostile name, and a single-name limit (4 %) that 20 names cannot hold fully invested: the
    target keeps its own caps (15 %) and the limit is breached after the trades."""
    s = strategy(limits={"max_weight": 0.04, "sector_max": 0.3, "min_names": 8, "var_limit": 0.03})
    return plan_rebalance(HELD, CASH, PANEL, s, as_of=AS_OF, portfolio=HOSTILE, universe=ALL)


def cents(x: float, side: str) -> float:
    """A limit at least as good for a fill as the estimate: a buy's rounded up, a sell's down."""
    return (math.ceil(x * 100 - 1e-9) if side == "buy" else math.floor(x * 100 + 1e-9)) / 100


# -- the order ticket -------------------------------------------------------------------------------
def test_ticket_is_the_trade_list(whole):
    p, t = whole, order_ticket(whole)
    assert list(t.columns) == TICKET_COLUMNS and len(t) == len(p.trades) == 11
    assert t["side"].tolist() == p.trades["side"].tolist() and t["ticker"].tolist() == p.trades["ticker"].tolist()
    n_sell = int((t["side"] == "sell").sum())
    assert n_sell == 5 and (t["side"].iloc[:n_sell] == "sell").all() and (t["side"].iloc[n_sell:] == "buy").all()
    assert t["shares"].dtype == np.int64 and t["shares"].tolist() == p.trades["shares"].astype(int).tolist()
    assert (t["shares"].to_numpy() == p.trades["shares"].to_numpy()).all()
    assert t["limit_price"].tolist() == [cents(x, side) for x, side in zip(p.trades["price"], p.trades["side"])]
    assert (abs(t["limit_price"] - p.trades["price"]) < 0.01).all()
    buys = (t["side"] == "buy").to_numpy()
    assert (t["limit_price"][buys] >= p.trades["price"][buys] - 1e-12).all()
    assert (t["limit_price"][~buys] <= p.trades["price"][~buys] + 1e-12).all()
    assert t.iloc[0].tolist() == ["sell", "AAPL", 248, 135.90, "ACC-1"]  # AAPL closed at 135.908 on 2022-06-30
    assert (t["account"] == "ACC-1").all()
    # replayed on the holdings at the day's closes, the ticket lands on the proposal's weights after
    px = PANEL.loc[AS_OF]
    shares = HELD.reindex(ALL).fillna(0.0)
    cash = CASH
    for row in t.itertuples():
        signed = row.shares if row.side == "buy" else -row.shares
        shares[row.ticker] += signed
        cash -= signed * px[row.ticker] + 1.0 + 5e-4 * row.shares * px[row.ticker]
    value = cash + float(shares @ px[ALL])
    np.testing.assert_allclose((shares * px[ALL] / value).reindex(p.weights.index), p.weights["after"], atol=1e-12)
    assert cash == pytest.approx(p.cash_after, abs=1e-6)


def test_ticket_csv_writes_whole_shares_as_integers(whole, tmp_path):
    path = tmp_path / "ticket.csv"
    order_ticket(whole).to_csv(path, index=False)  # what `qpo rebalance export --csv` writes
    rows = list(csv.DictReader(path.open(newline="")))
    assert list(rows[0]) == TICKET_COLUMNS
    assert [r["shares"] for r in rows] == [str(int(x)) for x in whole.trades["shares"]]
    assert rows[0]["limit_price"] == "135.9" and {r["account"] for r in rows} == {"ACC-1"}


def test_ticket_csv_file_is_written_whole(whole, tmp_path):
    path = order_ticket_csv(whole, tmp_path / "ticket.csv", account="DU-1")
    assert path == tmp_path / "ticket.csv"
    assert path.read_text() == order_ticket(whole, account="DU-1").to_csv(index=False, lineterminator="\n")
    with pytest.raises(InvalidValueError, match="account must be"):
        order_ticket_csv(whole, path, account="")
    assert "DU-1" in path.read_text()  # the earlier ticket is left as it was
    with pytest.raises(InvalidValueError, match="does not exist"):
        order_ticket_csv(whole, tmp_path / "nowhere" / "ticket.csv")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["home", "ticket.csv"]


def test_account_given_overrides_the_proposals(whole):
    t = order_ticket(whole, account="  DU-9876 \U0001f4bc ")
    assert (t["account"] == "DU-9876 \U0001f4bc").all()
    pd.testing.assert_frame_equal(t.drop(columns="account"), order_ticket(whole).drop(columns="account"))
    for bad in ("", "   ", "A\x00B", "line\nbreak", 42):
        with pytest.raises(InvalidValueError, match="account must be text of 1 to 200 characters"):
            order_ticket(whole, account=bad)
    with pytest.raises(InvalidValueError, match="proposal must be a qpo.book.RebalanceProposal"):
        order_ticket(whole.trades)


def test_fractional_shares_are_exact_and_whole_ones_integers(fractional):
    p, t = fractional, order_ticket(fractional)
    assert t["shares"].dtype == object
    frac = p.trades["shares"] != p.trades["shares"].round()
    assert frac.sum() >= 5 and (~frac).sum() >= 1  # JPM is sold whole (a full exit of 100 shares)
    for v, x, f in zip(t["shares"], p.trades["shares"], frac):
        assert type(v) is (float if f else int) and v == x
    text = io.StringIO()
    t.to_csv(text, index=False)
    jpm = next(r for r in csv.DictReader(io.StringIO(text.getvalue())) if r["ticker"] == "JPM")
    assert jpm["shares"] == "100" and jpm["side"] == "sell"
    aapl = next(r for r in csv.DictReader(io.StringIO(text.getvalue())) if r["ticker"] == "AAPL")
    assert float(aapl["shares"]) == p.trades.set_index("ticker").loc["AAPL", "shares"]


def test_a_proposal_without_trades_gives_an_empty_ticket_and_page(tmp_path):
    s = Strategy(constraints={"max_weight": 0.5, "max_turnover": 0.0}, commission=1.0, spread_bps=5.0)
    p = plan_rebalance(HELD, 0.0, PANEL, s, as_of=AS_OF, portfolio="Still")
    assert p.trades.empty
    t = order_ticket(p)
    assert t.empty and list(t.columns) == TICKET_COLUMNS
    path = tmp_path / "empty.csv"
    t.to_csv(path, index=False)
    assert path.read_text().strip() == ",".join(TICKET_COLUMNS)
    page = proposal_html(p, tmp_path / "empty.html").read_text()
    assert "No trades: the holdings are already at the target." in page
    [bars] = _figure_data(page, "fig-trades")
    assert _array(bars.get("x", [])) == [] and _array(bars.get("y", [])) == []
    assert _parse(page).header["trades"] == "0 sells, 0 buys" and "trades" not in _parse(page).tables


def test_a_proposal_read_back_from_its_record_exports_the_same(whole, fractional, tmp_path):
    for p in (whole, fractional):
        back = RebalanceProposal.from_record(p.to_record() | {"portfolio": "Demo", "status": "open", "id": 41})
        assert back.account == p.account  # the record keeps the account
        pd.testing.assert_frame_equal(order_ticket(back), order_ticket(p))
        pd.testing.assert_frame_equal(order_ticket(back, account="DU-1"), order_ticket(p, account="DU-1"))
    back = RebalanceProposal.from_record(json.loads(json.dumps(whole.to_dict())))  # through JSON, as --json shows it
    pd.testing.assert_frame_equal(order_ticket(back), order_ticket(whole))
    page = proposal_html(RebalanceProposal.from_record(whole.to_record() | {"portfolio": "Demo", "status": "open",
                                                                            "id": 41}), tmp_path / "p.html").read_text()
    header = _parse(page).header
    assert header["status"] == "open" and header["id"] == "41" and header["account"] == "ACC-1"


# -- the page ---------------------------------------------------------------------------------------
class _Page(HTMLParser):
    """The page's header items, table rows (with their class) and script sources, as parsed."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.header, self.tables, self.srcs, self.items = {}, {}, [], []
        self._dt = self._text = None
        self._table = self._row = self._cell = None
        self._stack: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self._stack.append(tag)
        if tag == "script" and a.get("src"):
            self.srcs.append(a["src"])
        if tag == "table":
            self._table = a.get("class")
            self.tables[self._table] = []
        elif tag == "tr" and self._table:
            self._row = (a.get("class") or "", [])
        elif tag in ("td", "th") and self._row is not None:
            self._cell = ""
        elif tag in ("dt", "dd", "li"):
            self._text = ""

    def handle_endtag(self, tag):
        if self._stack:
            self._stack.pop()
        if tag in ("td", "th") and self._cell is not None:
            self._row[1].append(self._cell)
            self._cell = None
        elif tag == "tr" and self._row is not None:
            self.tables[self._table].append(self._row)
            self._row = None
        elif tag == "table":
            self._table = None
        elif tag == "dt":
            self._dt = self._text
        elif tag == "dd":
            self.header[self._dt] = self._text
        elif tag == "li":
            self.items.append(self._text)

    def handle_data(self, data):
        if self._cell is not None:
            self._cell += data
        if self._text is not None:
            self._text += data


def _parse(page: str) -> _Page:
    parser = _Page()
    parser.feed(page)
    parser.close()
    return parser


def _array(values) -> list:
    if isinstance(values, dict):  # plotly >= 6: base64 bytes with a dtype
        return np.frombuffer(base64.b64decode(values["bdata"]), dtype=values["dtype"]).tolist()
    return list(values)


def _figure_data(page: str, div_id: str) -> list[dict]:
    """The traces the page hands Plotly.newPlot for ``div_id``."""
    m = re.search(r'Plotly\.newPlot\(\s*"' + re.escape(div_id) + r'",\s*', page)
    assert m, f"no Plotly.newPlot for {div_id}"
    data, _ = json.JSONDecoder().raw_decode(page, m.end())
    return data


def test_the_page_holds_every_number_escaped_and_offline(hostile, tmp_path):
    p = hostile
    path = proposal_html(p, tmp_path / "proposal.html")
    assert path == tmp_path / "proposal.html"
    page = path.read_text(encoding="utf-8")
    # offline: plotly.js inlined once, no script loaded from anywhere
    parsed = _parse(page)
    assert parsed.srcs == []
    assert not re.search(r"<script[^>]*src=", page)
    assert len(re.findall(r"\* plotly\.js v\d", page)) == 1 and page.count("window.PlotlyConfig") == 1
    # the hostile name: shown escaped, never as markup
    assert "<script>alert" not in page and html_escaped(HOSTILE) in page
    assert parsed.header["portfolio"] == HOSTILE and parsed.header["account"] == HOSTILE
    assert f"<title>Rebalance proposal: {html_escaped(HOSTILE)}</title>" in page
    # the header's numbers
    h = parsed.header
    assert h["status"] == "draft" and h["id"] == "not saved" and h["prices as of"] == "2022-06-30"
    assert h["cash"] == f"{p.cash_before:,.2f} \u2192 {p.cash_after:,.2f}"
    assert h["value"] == f"{p.value_before:,.2f} \u2192 {p.value_after:,.2f}"
    assert h["total cost"] == f"{p.total_cost:,.2f}" and h["turnover"] == f"{p.turnover:.2%}"
    # every trade, in order, with its limit price (the order ticket's: a buy's rounded up, a sell's down) and the totals
    rows = parsed.tables["trades"][1:]
    assert [r[1][1] for r in rows[:-1]] == p.trades["ticker"].tolist()
    assert [r[0] for r in rows[:-1]] == [f"trade-{s}" for s in p.trades["side"]]
    for (_, cells), t in zip(rows, p.trades.itertuples()):
        assert cells == [t.side, t.ticker, f"{int(t.shares):,}", f"{cents(t.price, t.side):,.2f}", f"{t.notional:,.2f}",
                         f"{t.cost:,.2f}"]
    assert rows[-1][1][-1] == f"{p.total_cost:,.2f}"
    # before / after
    comp = {cells[0]: cells[1:] for _, cells in parsed.tables["comparison"][1:]}
    assert comp["volatility (annual)"] == [f"{p.comparison.loc['volatility', c]:.2%}" for c in ("before", "after", "target")]
    assert comp["CVaR 95% (one period)"] == [f"{p.comparison.loc['cvar', c]:.2%}" for c in ("before", "after", "target")]
    assert comp["names held"] == [f"{p.comparison.loc['n_names', c]:.0f}" for c in ("before", "after", "target")]
    assert comp["names held"][0] == "5" and len(comp) == 7
    # compliance: the breach after the trades marked, the ones fixed by them marked as past
    checks = {cells[0]: (cls, cells) for cls, cells in parsed.tables["compliance"][1:]}
    assert len(checks) == len(p.compliance)
    for r in p.compliance.itertuples():
        cls, cells = checks[r.check]
        assert cls == ("breach" if not r.passed_after else "breach-before" if not r.passed_before else "pass")
        assert cells[-1] == ("pass" if r.passed_after else "BREACH")
    assert checks["max single name"][0] == "breach" and checks["max single name"][1][1:4] == [
        "4.00%", f"{p.weights['before'].max():.2%}", f"{p.weights['after'].max():.2%}"]
    assert p.parameters["limits_as_caps"] is False and p.breaches_after()[0].startswith("max single name")
    assert checks["min names"][1][1:4] == ["8", "5", "10"]
    assert "1 limit breached after the trades." in page and "2 breaches before the trades mended by them" in page


def html_escaped(text: str) -> str:
    import html

    return html.escape(text, quote=True)


def test_the_pages_figures_are_the_proposals_numbers(whole, tmp_path):
    p = whole
    page = proposal_html(p, tmp_path / "p.html").read_text()
    shown = p.weights.loc[p.weights.abs().max(axis=1) > 1e-9]
    traces = _figure_data(page, "fig-weights")
    assert [t["name"] for t in traces] == ["before", "target", "after"]
    for t in traces:
        assert list(t["x"]) == shown.index.tolist()
        np.testing.assert_allclose(_array(t["y"]), shown[t["name"]].to_numpy(), rtol=0, atol=1e-15)
    [bars] = _figure_data(page, "fig-trades")
    signed = np.where(p.trades["side"] == "sell", -1, 1) * p.trades["notional"]
    assert list(bars["x"]) == p.trades["ticker"].tolist()
    np.testing.assert_allclose(_array(bars["y"]), signed, rtol=1e-15)
    assert min(_array(bars["y"])[:5]) < 0 < min(_array(bars["y"])[5:])
    risk = _figure_data(page, "fig-comparison")
    assert [t["name"] for t in risk] == ["before", "after"]
    for t in risk:
        np.testing.assert_allclose(_array(t["y"]), p.comparison.loc[["volatility", "var", "cvar", "tracking_error"],
                                                                    t["name"]].to_numpy(), rtol=1e-15)
    figs = proposal_figures(p)
    assert set(figs) == {"weights", "trades", "comparison"}
    assert figs["comparison"].data[0].x == ("volatility", "VaR 95%", "CVaR 95%", "tracking error")


def test_violations_are_listed(whole, tmp_path):
    rec = whole.to_record()
    rec["summary"] = rec["summary"] | {"violations": ["min_weight of <PG> 10% not met: one share is 12%", "cash < 0"]}
    p = RebalanceProposal.from_record(rec | {"portfolio": "Demo"})
    parsed = _parse(proposal_html(p, tmp_path / "v.html").read_text())
    assert parsed.items == ["min_weight of <PG> 10% not met: one share is 12%", "cash < 0"]
    assert "None: whole-share rounding keeps every constraint" in proposal_html(whole, tmp_path / "w.html").read_text()


def test_the_page_is_written_whole_or_not_at_all(whole, tmp_path, monkeypatch):
    out = tmp_path / "out"
    out.mkdir()
    path = out / "p.html"
    path.write_text("the previous page")
    with pytest.raises(InvalidValueError, match="proposal must be"):
        proposal_html("not a proposal", path)
    assert path.read_text() == "the previous page"

    def full_disk(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full_disk)
    with pytest.raises(InvalidValueError, match="No space left"):
        proposal_html(whole, path)
    monkeypatch.undo()
    assert path.read_text() == "the previous page" and sorted(os.listdir(out)) == ["p.html"]
    with pytest.raises(InvalidValueError, match="does not exist"):
        proposal_html(whole, out / "missing" / "p.html")
    with pytest.raises(InvalidValueError, match="it is a folder"):
        proposal_html(whole, out)
    assert not (out / "missing").exists() and sorted(os.listdir(out)) == ["p.html"]
    proposal_html(whole, path)
    assert path.read_text().startswith("<!doctype html>") and sorted(os.listdir(out)) == ["p.html"]
    fresh = proposal_html(whole, tmp_path / "fresh.html")
    umask = os.umask(0)
    os.umask(umask)
    assert fresh.stat().st_mode & 0o777 == 0o666 & ~umask  # as open() creates a file, not mkstemp's 0600


def test_compare_proposals_lays_them_side_by_side(whole, fractional):
    table = compare_proposals({"whole": whole, "fractional": fractional})
    assert list(table.index) == COMPARE_ROWS and list(table.columns) == ["whole", "fractional"]
    for label, p in (("whole", whole), ("fractional", fractional)):
        col = table[label]
        assert col["n_trades"] == len(p.trades) and col["turnover"] == p.turnover
        assert col["total_cost"] == p.total_cost and col["cash_after"] == p.cash_after
        assert col["tracking_error"] == p.comparison.loc["tracking_error", "after"]
        assert col["distance_l1"] == p.distance_to_target["l1"]
    assert table.loc["distance_l1", "fractional"] < table.loc["distance_l1", "whole"] / 5
    with pytest.raises(InvalidValueError, match="non-empty mapping"):
        compare_proposals({})


@pytest.mark.browser
def test_the_page_draws_offline_and_runs_no_script_of_the_name(hostile, tmp_path):
    from tests.browser import TRACES_JS, browser_page

    path = proposal_html(hostile, tmp_path / "proposal.html")
    dialogs, requests = [], []
    with browser_page() as page:
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        page.on("request", lambda r: requests.append(r.url))
        page.route("http*://**", lambda route: route.abort())
        page.goto(path.as_uri())
        page.wait_for_function("() => document.querySelectorAll('.js-plotly-plot').length === 3", timeout=60_000)
        figs = page.evaluate(TRACES_JS)
        title = page.title()
        portfolio = page.inner_text("dl.header dd")
        page.screenshot(path=str(tmp_path / "proposal.png"), full_page=True)
    assert dialogs == [] and [u for u in requests if not u.startswith("file:")] == []
    assert title == f"Rebalance proposal: {HOSTILE}" and portfolio == HOSTILE
    n_names = int((hostile.weights.abs().max(axis=1) > 1e-9).sum())
    assert [f["bars"] for f in figs] == [3 * n_names, len(hostile.trades), 8]
    assert figs[1]["title"] == "Trades: notional by ticker (sells negative)"
