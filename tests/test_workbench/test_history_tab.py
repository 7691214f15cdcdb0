"""The dashboard's History tab (issue 18, tab 5) on a real store: the value from the ledger, the
attribution by sector against the equal-weighted panel, the recorded risk numbers, the audit trail,
what an advisor may not see, and figures updated in place."""
import datetime as dt
import io

import numpy as np
import pandas as pd
import pytest

import qpo
from qpo.store import Actor
from tests.test_workbench import DEMO_BOOK_OPENED, seed_demo_book, tab_board

SYSTEM = Actor.system("tests")
ANA, BEN, RITA = "ana.silva@example.com", "ben.okafor@example.com", "rita.chen@example.com"


@pytest.fixture
def book(qpo_home, sp500):
    """The demo book bought at the closes of DEMO_BOOK_OPENED; Ana later sells 100 KO on a Saturday
    and withdraws cash."""
    from qpo.store import add_transaction, connect, session_scope

    engine = connect()
    assert seed_demo_book(engine, prices=sp500) == 4
    with session_scope(engine) as s:
        add_transaction(s, ANA, "Balanced Growth", "sell", trade_date="2021-06-05", ticker="KO", quantity=100,
                        price=55.0, fees=1.0, note="client asked for cash")
        add_transaction(s, ANA, "Balanced Growth", "withdrawal", trade_date="2022-01-03", amount=3_000.0)
    return engine


@pytest.fixture(scope="module")
def index_returns():
    return qpo.prices_to_returns(qpo.load_prices("sp500_index", start="2000-01-01"))["SP500"]


@pytest.fixture
def tab_for(book, sp500, index_returns):
    """A History tab on a tiny board, as ``email`` reads."""
    from qpo.workbench.tabs.history import HistoryTab

    def make(email):
        return HistoryTab(tab_board(book, email, sp500.loc["2000-01-01":], benchmark=index_returns))

    return make


def _position(engine, name, day):
    from qpo.store import position, session_scope

    with session_scope(engine) as s:
        return position(s, SYSTEM, name, pd.Timestamp(day).date())


def test_the_value_is_shares_times_closes_plus_cash(book, tab_for, sp500):
    from qpo.store import list_transactions, session_scope

    tab = tab_for(ANA)
    tab.show("Balanced Growth")
    assert tab.message.value == ""
    v = tab.values
    assert v.index[0] == pd.Timestamp(DEMO_BOOK_OPENED) and v.index[-1] == sp500.index[-1]
    assert v.index.equals(sp500.loc[DEMO_BOOK_OPENED:].index)
    # on the opening day the book is worth its deposit less the buys' costs
    with session_scope(book) as s:
        ledger = list_transactions(s, SYSTEM, "Balanced Growth")
    opening_fees = ledger.loc[ledger["trade_date"] == pd.Timestamp(DEMO_BOOK_OPENED).date(), "fees"].sum()
    assert v.iloc[0] == pytest.approx(1_000_000 - opening_fees, abs=1e-6)
    # the Saturday sale counts from Monday; the withdrawal from its own day
    for day in (DEMO_BOOK_OPENED, "2021-06-04", "2021-06-07", "2021-12-31", "2022-01-03", sp500.index[-1]):
        pos = _position(book, "Balanced Growth", day)
        closes = sp500.loc[pd.Timestamp(day), pos.shares.index]
        assert v.loc[pd.Timestamp(day)] == pytest.approx(float((pos.shares * closes).sum()) + pos.cash, rel=1e-12)
        assert tab.cash.loc[pd.Timestamp(day)] == pytest.approx(pos.cash, abs=1e-6)
    assert tab.shares.loc["2021-06-04", "KO"] - tab.shares.loc["2021-06-07", "KO"] == 100
    assert tab.cash.loc["2021-12-31"] - tab.cash.loc["2022-01-03"] == pytest.approx(3_000.0)
    fig = tab.value_fig.data[0]
    assert len(fig.x) == len(v) and fig.y[-1] == pytest.approx(v.iloc[-1])
    assert f"${v.iloc[-1]:,.0f} on {sp500.index[-1].date()}" in tab.value_note.value


def _brinson_one_period(wp, wb, r, sectors):
    """Brinson-Fachler for one period, by hand: wp and wb over the same tickers (wp may leave cash)."""
    labels = np.array([sectors[t] for t in wp.index] + ["Cash"])
    wp = np.append(wp.to_numpy(), 1 - wp.sum())
    wb = np.append(wb.to_numpy(), 0.0)
    r = np.append(r, 0.0)
    rb = wb @ r
    out = {}
    for s in sorted(set(labels)):
        m = labels == s
        wpj, wbj = wp[m].sum(), wb[m].sum()
        rpj = wp[m] @ r[m] / wpj if wpj > 1e-12 else None
        rbj = wb[m] @ r[m] / wbj if wbj > 1e-12 else None
        rpj, rbj = (rbj if rpj is None else rpj), (rpj if rbj is None else rbj)
        out[s] = ((wpj - wbj) * (rbj - rb), wbj * (rpj - rbj), (wpj - wbj) * (rpj - rbj))
    return out


def _start_weights(book, name, day, sp500):
    pos = _position(book, name, day)
    closes = sp500.loc[pd.Timestamp(day), pos.shares.index]
    value = pos.shares * closes
    return value / (value.sum() + pos.cash)


def test_the_attribution_adds_up_to_the_active_return(book, tab_for, sp500):
    sectors = qpo.load_sectors()
    tab = tab_for(ANA)
    tab.show("Balanced Growth")
    assert tab.period.value == "1Y" and tab.window == (pd.Timestamp("2021-12-28"), pd.Timestamp("2022-12-28"))
    attr = tab.attribution
    total = attr.loc["Total"]
    effects = attr.drop("Total")[["allocation", "selection", "interaction"]].to_numpy().sum()
    assert effects == pytest.approx(total["portfolio_return"] - total["benchmark_return"], rel=1e-10)
    # independently: the ledger's weights at the first close (cash earns nothing) against 1/20 each, daily
    wp = _start_weights(book, "Balanced Growth", "2021-12-28", sp500)
    rets = sp500.loc["2021-12-28":"2022-12-28"].pct_change().iloc[1:]
    rp = rets[wp.index].to_numpy() @ wp.to_numpy()
    rb = rets.to_numpy().mean(axis=1)
    active = np.prod(1 + rp) - np.prod(1 + rb)
    assert total["portfolio_return"] == pytest.approx(np.prod(1 + rp) - 1, rel=1e-10)
    assert total["benchmark_return"] == pytest.approx(np.prod(1 + rb) - 1, rel=1e-10)
    assert effects == pytest.approx(active, rel=1e-10) and total["total"] == pytest.approx(active, rel=1e-10)
    by_sector = wp.groupby(wp.index.map(sectors)).sum()
    for s, w in by_sector.items():
        assert attr.loc[s, "portfolio_weight"] == pytest.approx(w, rel=1e-12)
    assert attr.loc["Health Care", "benchmark_weight"] == pytest.approx(5 / 20)
    assert attr.loc["Industrials", "portfolio_weight"] == 0 and attr.loc["Industrials", "selection"] == 0
    assert "equal-weighted" in tab.attribution_note.value and "not the S&amp;P 500 index" in tab.attribution_note.value
    bars = {t.name: t for t in tab.attribution_fig.data}
    assert list(bars["selection"].x) == attr.drop("Total").index.tolist()
    assert list(bars["selection"].y) == pytest.approx(attr.drop("Total")["selection"].tolist())
    assert f"active {active:+.2%}" in tab.attribution_fig.layout.title.text

    # one period (two consecutive closes): Carino's link is 1, the effects are Brinson-Fachler's own
    tab.start.value, tab.end.value = dt.date(2022, 3, 1), dt.date(2022, 3, 2)
    assert tab.period.value == "Custom" and tab.window == (pd.Timestamp("2022-03-01"), pd.Timestamp("2022-03-02"))
    wp = _start_weights(book, "Balanced Growth", "2022-03-01", sp500).reindex(sp500.columns, fill_value=0.0)
    wb = pd.Series(1 / 20, index=sp500.columns)
    r = (sp500.loc["2022-03-02"] / sp500.loc["2022-03-01"] - 1).to_numpy()
    hand = _brinson_one_period(wp, wb, r, sectors)
    assert set(hand) == set(tab.attribution.drop("Total").index)
    for s, expected in hand.items():
        got = tab.attribution.loc[s, ["allocation", "selection", "interaction"]].tolist()
        assert got == pytest.approx(list(expected), abs=1e-15), s
    assert tab.attribution.loc["Total", "total"] == pytest.approx(wp.to_numpy() @ r - wb.to_numpy() @ r, rel=1e-12)

    # the periods: YTD from the last close of the year before; 3Y from the ledger's first day (later)
    tab.period.value = "YTD"
    assert tab.window == (pd.Timestamp("2021-12-31"), pd.Timestamp("2022-12-28"))
    assert (tab.start.value, tab.end.value) == (dt.date(2021, 12, 31), dt.date(2022, 12, 28))
    tab.period.value = "3Y"
    assert tab.window[0] == pd.Timestamp(DEMO_BOOK_OPENED)
    assert f"before the ledger's first entry: it starts on {DEMO_BOOK_OPENED}" in tab.attribution_note.value
    moved = tab.values.iloc[-1] / tab.values.iloc[0] - 1
    assert f"The ledger's own value changed {moved:+.2%}" in tab.attribution_note.value
    # a start after the end is refused in words, in the tab
    tab.start.value = dt.date(2022, 6, 1)
    tab.end.value = dt.date(2022, 5, 1)
    assert tab.attribution is None and "must be before its end" in tab.attribution_note.value
    assert "Traceback" not in tab.attribution_note.value and list(tab.attribution_fig.data[0].x) == []


def test_recorded_risk_numbers_are_shown(book, tab_for):
    from qpo.store import record_risk_metrics, session_scope

    tab = tab_for(ANA)
    tab.show("Balanced Growth")
    assert "no risk numbers recorded yet (the daily report records them)" in tab.risk_table.value
    assert tab.metric.options == () and list(tab.risk_fig.data[0].y) == []
    with session_scope(book) as s:
        record_risk_metrics(s, SYSTEM, "Balanced Growth", "2022-12-27", {"var_95": 0.0213, "volatility": 0.1811})
        record_risk_metrics(s, SYSTEM, "Balanced Growth", "2022-12-28", {"var_95": 0.0225, "volatility": 0.1794},
                            mlflow_run_id="run-abc")
    tab.show("Balanced Growth")
    assert tab.metric.options == ("var_95", "volatility") and tab.metric.value == "var_95"
    assert list(tab.risk_fig.data[0].y) == [0.0213, 0.0225]
    assert [pd.Timestamp(x) for x in tab.risk_fig.data[0].x] == [pd.Timestamp("2022-12-27"), pd.Timestamp("2022-12-28")]
    tab.metric.value = "volatility"
    assert list(tab.risk_fig.data[0].y) == [0.1811, 0.1794] and "volatility" in tab.risk_fig.layout.title.text
    for text in ("0.0213", "0.0225", "0.1811", "0.1794", "run-abc", "2022-12-28"):
        assert text in tab.risk_table.value
    # newest first
    assert tab.risk_table.value.index("2022-12-28") < tab.risk_table.value.index("2022-12-27")


def test_the_audit_trail_newest_first_escaped(book, tab_for):
    from qpo.store import session_scope, update_portfolio

    with session_scope(book) as s:
        update_portfolio(s, ANA, "Balanced Growth", description="<script>alert(1)</script>")
    tab = tab_for(ANA)
    tab.show("Balanced Growth")
    audit = tab.audit
    assert audit["action"].tolist() == ["update", "transaction", "transaction", "import", "create"]
    assert audit["actor"].tolist() == [ANA, ANA, ANA, "system:seed", "system:seed"]
    assert audit.loc[audit.index[2], "change"].startswith("1 entry: sell 100 KO at 55.00 plus 1.00 cost on 2021-06-05")
    assert "withdrawal of 3,000.00 on 2022-01-03" in audit.loc[audit.index[1], "change"]
    assert audit.loc[audit.index[3], "change"].startswith("10 entries: buy ")
    assert "and 7 more" in audit.loc[audit.index[3], "change"]
    assert "created for Harper Family Trust, advisor ana.silva@example.com" in audit.loc[audit.index[4], "change"]
    html = tab.audit_table.value
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert html.index("update") < html.index("sell 100 KO") < html.index("created for Harper")


def test_an_advisor_cannot_show_another_advisors_portfolio(tab_for):
    tab = tab_for(ANA)
    tab.show("Balanced Growth")
    assert len(tab.value_fig.data[0].x) > 0
    tab.show("Tech Tilt")  # Ben's client
    assert "may not see portfolio &#x27;Tech Tilt&#x27;" in tab.message.value
    assert "Traceback" not in tab.message.value
    # nothing of the portfolio shown before stays, and nothing of Tech Tilt is shown
    assert tab.values.empty and tab.attribution is None and tab.audit.empty
    for fig in (tab.value_fig, tab.risk_fig, tab.attribution_fig):
        assert all(len(t.x or ()) == 0 for t in fig.data)
    assert tab.audit_table.value == "" and tab.attribution_table.value == ""
    tab.period.value = "3M"  # a period chosen then draws nothing either
    assert tab.attribution is None and tab.attribution_table.value == ""
    tab.show("No Such Portfolio")
    assert "No Such Portfolio" in tab.message.value


def test_figures_are_updated_in_place(tab_for, sp500):
    tab = tab_for(RITA)  # a researcher reads every portfolio
    figures = (tab.risk_fig, tab.value_fig, tab.attribution_fig)
    traces = [t for f in figures for t in f.data]
    tab.show("Tech Tilt")
    tech_values, tech_bars = list(tab.value_fig.data[0].y), list(tab.attribution_fig.data[0].y)
    tech_title = tab.value_fig.layout.title.text
    tab.show("Min-Variance Core")
    assert (tab.risk_fig, tab.value_fig, tab.attribution_fig) == figures
    assert all(a is b for a, b in zip([t for f in figures for t in f.data], traces, strict=True))
    assert tab.widget.children[3] is tab.risk_fig and tab.widget.children[7] is tab.value_fig
    assert list(tab.value_fig.data[0].y) != tech_values and list(tab.attribution_fig.data[0].y) != tech_bars
    assert tab.value_fig.layout.title.text.startswith("Min-Variance Core") and tech_title.startswith("Tech Tilt")
    assert tab.value_fig.data[0].y[-1] == pytest.approx(tab.values.iloc[-1])


def test_the_nightly_valuations_recorded_are_shown(book, tab_for):
    """The valuations the nightly book run stored for the portfolio: the table newest first, the
    market value over time (a night that could not be priced is a gap, not a zero); another
    advisor's valuations are never shown."""
    from qpo.store import get_portfolio, session_scope
    from qpo.store.operations import write_valuations
    from qpo.workbench.tabs.history import NO_VALUATIONS

    tab = tab_for(ANA)
    tab.show("Balanced Growth")
    assert tab.valuations.empty and NO_VALUATIONS in tab.valuations_table.value
    with session_scope(book) as s:
        ids = {n: get_portfolio(s, SYSTEM, n).id for n in ("Balanced Growth", "Tech Tilt")}
    nights = {"2022-12-27": (1_012_345.6, 12_000.0, 0.0123, "valued", None),
              "2022-12-28": (float("nan"), 12_000.0, float("nan"), "unpriced", ["KO"]),
              "2022-12-29": (1_000_000.4, 12_500.0, -0.0051, "valued", None)}
    for day, (value, cash, ret, status, unpriced) in nights.items():
        rows = pd.DataFrame([
            {"portfolio_id": ids["Balanced Growth"], "market_value": value, "cash": cash,
             "holdings_value": value - cash, "daily_return": ret, "mtd_return": 0.02, "ytd_return": -0.1,
             "inception_return": 0.35, "status": status, "unpriced": unpriced, "stale": None},
            {"portfolio_id": ids["Tech Tilt"], "market_value": 777_777.0, "cash": 7.0, "holdings_value": 777_770.0,
             "daily_return": 0.0, "mtd_return": 0.0, "ytd_return": 0.0, "inception_return": 0.0, "status": "valued",
             "unpriced": None, "stale": None}])
        assert write_valuations(book, day, rows, run_id=None) == 2
    tab.show("Balanced Growth")
    assert pd.to_datetime(tab.valuations["as_of"]).dt.strftime("%Y-%m-%d").tolist() == list(nights)
    trace = tab.valuations_fig.data[0]
    assert [pd.Timestamp(x).strftime("%Y-%m-%d") for x in trace.x] == list(nights)
    assert trace.y[0] == pytest.approx(1_012_345.6) and trace.y[1] is None and trace.y[2] == pytest.approx(1_000_000.4)
    assert tab.valuations_fig.layout.title.text.startswith("Balanced Growth: market value")
    table = pd.read_html(io.StringIO(tab.valuations_table.value))[0]
    assert table["as of"].tolist() == ["2022-12-29", "2022-12-28", "2022-12-27"]  # newest first
    assert table["market value"].tolist()[0] == "$1,000,000" and table["day"].tolist()[0] == "-0.51%"
    assert table["status"].tolist() == ["valued", "unpriced", "valued"]
    assert table["not priced / stale"].fillna("").tolist()[1] == "KO"
    assert "777,777" not in tab.valuations_table.value  # Ben's client's nights are not hers
    tab.show("Tech Tilt")  # and his portfolio itself is refused, its valuations unread
    assert "may not see portfolio" in tab.message.value and tab.valuations.empty
    assert tab.valuations_table.value == "" and list(tab.valuations_fig.data[0].y or []) == []


def _write_nightly_risk(engine):
    """Three nights of book_risk rows for Balanced Growth (the middle one without numbers: the run
    could not compute them) and Ben's Tech Tilt with numbers of its own."""
    from qpo.store import get_portfolio, session_scope
    from qpo.store.operations import RISK_COLUMNS, write_book_risk

    with session_scope(engine) as s:
        ids = {n: get_portfolio(s, SYSTEM, n).id for n in ("Balanced Growth", "Tech Tilt")}
    nan = float("nan")
    nights = {"2022-12-27": ((0.151, 0.0201, 0.0302, 0.0199, 0.0251, 0.93, -0.21, 0.187), True, 0),
              "2022-12-28": ((nan,) * 8, None, 0),
              "2022-12-29": ((0.162, 0.0215, 0.0318, 0.0210, 0.0262, 0.97, -0.22, 0.193), False, 2)}
    for day, (numbers, compliant, breaches) in nights.items():
        table = pd.DataFrame([{"portfolio_id": ids["Balanced Growth"], **dict(zip(RISK_COLUMNS, numbers)),
                               "compliant": compliant, "breaches": breaches},
                              {"portfolio_id": ids["Tech Tilt"], **dict.fromkeys(RISK_COLUMNS, 0.777),
                               "compliant": True, "breaches": 0}])
        write_book_risk(engine, day, table, None, None, run_id=None)
    return ids, nights


def test_book_risk_history_reads_one_portfolio_as_its_actor(book):
    from qpo.errors import AccessDenied, StoreError
    from qpo.store.book_history import BOOK_RISK_HISTORY_COLUMNS, book_risk_history

    ids, nights = _write_nightly_risk(book)
    rows = book_risk_history(book, ids["Balanced Growth"], actor=ANA)
    assert tuple(rows.columns) == BOOK_RISK_HISTORY_COLUMNS
    assert [d.isoformat() for d in rows["as_of"]] == list(nights)  # oldest first
    assert rows["volatility"].tolist()[0] == pytest.approx(0.151) and np.isnan(rows["volatility"].iloc[1])
    assert rows["worst_stress"].iloc[2] == pytest.approx(0.193) and rows["beta"].iloc[2] == pytest.approx(0.97)
    assert rows["compliant"].tolist() == [True, None, False] and rows["breaches"].tolist() == [0, 0, 2]
    assert set(rows["portfolio"]) == {"Balanced Growth"} and set(rows["advisor_email"]) == {ANA}
    assert len(book_risk_history(book, ids["Tech Tilt"], actor=RITA)) == 3  # a researcher reads every portfolio
    with pytest.raises(AccessDenied, match="may not see portfolio 'Balanced Growth'"):
        book_risk_history(book, ids["Balanced Growth"], actor=BEN)
    with pytest.raises(StoreError, match="no portfolio with id 987654"):
        book_risk_history(book, 987654, actor=SYSTEM)
    with pytest.raises(StoreError, match="portfolio_id must be a portfolio's id"):
        book_risk_history(book, "Balanced Growth", actor=ANA)


def test_the_nightly_risk_numbers_are_shown(book, tab_for):
    """The History tab shows the book_risk rows of the portfolio: the table newest first with
    compliance and breaches, the loss measures over time (a night without numbers is a gap); Ben's
    client's numbers are never in Ana's tab."""
    from qpo.workbench.tabs.history import NO_BOOK_RISK

    tab = tab_for(ANA)
    tab.show("Balanced Growth")
    assert tab.book_risk.empty and NO_BOOK_RISK in tab.book_risk_table.value
    _, nights = _write_nightly_risk(book)
    tab.show("Balanced Growth")
    assert tab.message.value == ""
    table = pd.read_html(io.StringIO(tab.book_risk_table.value))[0]
    assert table["as of"].tolist() == ["2022-12-29", "2022-12-28", "2022-12-27"]
    assert table["volatility"].tolist()[0] == "16.20%" and table["VaR (historical)"].tolist()[0] == "2.15%"
    assert table["CVaR (historical)"].tolist()[2] == "3.02%" and table["beta"].tolist()[0] == pytest.approx(0.97)
    assert table["worst stress loss"].tolist()[0] == "19.30%" and table["max drawdown"].tolist()[0] == "-22.00%"
    assert table["compliant"].tolist() == ["no", "not checked", "yes"] and table["breaches"].tolist() == [2, 0, 0]
    assert "77.70%" not in tab.book_risk_table.value and "0.78" not in tab.book_risk_table.value
    vol, var, cvar, stress = tab.book_risk_fig.data
    assert [pd.Timestamp(x).strftime("%Y-%m-%d") for x in vol.x] == list(nights)
    assert vol.y[0] == pytest.approx(0.151) and vol.y[1] is None and var.y[2] == pytest.approx(0.0215)
    assert cvar.y[0] == pytest.approx(0.0302) and stress.y[2] == pytest.approx(0.193)
    assert tab.book_risk_fig.layout.title.text == "Balanced Growth: risk, as measured each night"
    tab.show("Tech Tilt")  # refused: nothing of Ben's client, and Ana's numbers cleared
    assert "may not see portfolio" in tab.message.value and tab.book_risk.empty
    assert tab.book_risk_table.value == "" and list(tab.book_risk_fig.data[0].y or []) == []
