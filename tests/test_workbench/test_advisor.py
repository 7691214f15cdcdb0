"""The advisor dashboard reads the store and never creates or seeds one (issue 16: a store deleted
while the dashboard ran came back, on the next visit, as the four demo portfolios)."""
import dataclasses
from types import SimpleNamespace

import pytest

from qpo import config
from qpo.errors import AccessDenied, MissingStoreError, StoreError
from tests.test_store.test_store import SYSTEM


@pytest.fixture
def small_dashboard():
    from qpo.workbench.advisor import AdvisorDashboard

    return lambda: AdvisorDashboard(initial="Tech Tilt", lookback_days=60)


def test_a_deleted_store_is_refused_not_reseeded(qpo_home, small_dashboard, sp500):
    from qpo.store import connect, list_portfolios, session_scope
    from qpo.workbench.demo import seed_demo

    db = qpo_home / "qpo.db"
    assert seed_demo(connect(), prices=sp500) == 4  # what `qpo db seed` does
    app = small_dashboard()
    assert app.selected == "Tech Tilt" and len(app.portfolios) == 4
    db.unlink()  # the operator deletes the store while the server runs
    with pytest.raises(MissingStoreError) as info:
        small_dashboard()  # the next visit
    assert str(info.value).startswith(f"no store at {config.database_url()}: the file {db} does not exist")
    assert "`qpo db seed`" in str(info.value)
    assert not db.exists()
    # and a writer that later creates the store creates it empty: nothing was seeded behind its back
    with session_scope(connect()) as s:
        assert list_portfolios(s, SYSTEM).empty


def test_a_store_never_created_is_refused(qpo_home, small_dashboard):
    with pytest.raises(MissingStoreError, match="does not exist, and nothing was created"):
        small_dashboard()
    assert list(qpo_home.iterdir()) == []


def test_an_empty_store_is_refused_with_what_to_do(qpo_home, small_dashboard):
    from qpo.store import connect

    connect()  # `qpo db upgrade`: the schema, no portfolio
    with pytest.raises(StoreError, match=r"holds no client portfolio: add one, or run `qpo db seed`"):
        small_dashboard()


def test_the_dashboard_reads_the_ledger_and_each_portfolios_own_limits(qpo_home, small_dashboard, sp500, monkeypatch):
    """Holdings, cash and market value come from the ledger; the compliance checks are the
    portfolio's own limits (its stored strategy), unless the dashboard is given others."""
    from qpo.book.strategy import Strategy
    from qpo.store import connect, get_portfolio, position, session_scope, update_portfolio
    from qpo.workbench.advisor import AdvisorDashboard
    from qpo.workbench.demo import seed_demo

    monkeypatch.delenv("QPO_USER", raising=False)
    engine = connect()
    seed_demo(engine, prices=sp500)
    with session_scope(engine) as s:
        pos = position(s, SYSTEM, "Tech Tilt")
        own = Strategy.from_json(get_portfolio(s, SYSTEM, "Tech Tilt").strategy).limits
    app = small_dashboard()
    assert app.actor.email == "system:dashboard" and app.selected == "Tech Tilt"
    last = sp500.iloc[-1]
    invested = float((pos.shares * last[pos.shares.index]).sum())
    assert app.cash == pytest.approx(pos.cash) and app.market_value == pytest.approx(invested + pos.cash)
    assert f"${invested + pos.cash:,.0f} (cash ${pos.cash:,.0f})" in app.header.value
    assert app.limits == own and app.report.weights.index.tolist() == pos.shares.index.tolist()
    assert "the portfolio&#x27;s own (its stored strategy)" in app.risk.value
    checked = app.report.compliance.set_index("check")["limit"]
    assert checked["max single name"] == own.max_weight
    # a stricter cap stored with the portfolio is the one checked at the next visit
    with session_scope(engine) as s:
        stored = Strategy.from_json(get_portfolio(s, SYSTEM, "Tech Tilt").strategy)
        stricter = dataclasses.replace(stored, limits=dataclasses.replace(own, max_weight=0.05))
        update_portfolio(s, SYSTEM, "Tech Tilt", strategy=stricter.to_json())
    again = small_dashboard()
    assert again.limits.max_weight == 0.05 and "max single name" in " ".join(again.report.breaches)
    # limits given to the dashboard override the portfolio's own, field by field
    given = AdvisorDashboard(initial="Tech Tilt", lookback_days=60, limits={"max_weight": 0.9})
    assert given.limits.max_weight == 0.9 and given.limits.sector_max == own.sector_max


def test_the_dashboard_reads_as_qpo_user(qpo_home, small_dashboard, sp500, monkeypatch):
    """QPO_USER names who reads: an advisor sees only their own clients' portfolios; an unknown
    e-mail is refused, with nothing shown."""
    from qpo.store import connect
    from qpo.workbench.demo import seed_demo

    seed_demo(connect(), prices=sp500)
    monkeypatch.setenv("QPO_USER", "ben.okafor@example.com")
    app = small_dashboard()
    assert app.actor.email == "ben.okafor@example.com" and app.actor.role == "advisor"
    assert app.portfolios["name"].tolist() == ["Min-Variance Core", "Tech Tilt"] and app.selected == "Tech Tilt"
    monkeypatch.setenv("QPO_USER", "ana.silva@example.com")
    app = small_dashboard()  # Tech Tilt is Ben's: Ana's first portfolio is shown instead
    assert app.portfolios["name"].tolist() == ["Balanced Growth", "Conservative Income"]
    assert app.selected == "Balanced Growth" and "Tech Tilt" not in app.dropdown.options
    monkeypatch.setenv("QPO_USER", "rita.chen@example.com")  # a researcher reads every portfolio
    assert len(small_dashboard().portfolios) == 4
    monkeypatch.setenv("QPO_USER", "nobody@example.com")
    with pytest.raises(AccessDenied, match="'nobody@example.com' is not a user of this store"):
        small_dashboard()


def test_holdings_table_values_each_holding_and_its_day_change():
    import pandas as pd

    from qpo.errors import DataError
    from qpo.workbench.advisor import day_change, holdings_table

    prices = pd.DataFrame({"AAA": [100.0, 98.0, 101.0], "BBB": [50.0, 52.0, float("nan")], "CCC": [1.0, 2.0, 3.0]},
                          index=pd.to_datetime(["2024-03-01", "2024-03-04", "2024-03-05"]))
    table = holdings_table(pd.Series({"BBB": 5, "AAA": 10}), prices, cash=100.0)
    assert table.index.tolist() == ["AAA", "BBB"]  # largest value first; CCC is not held
    assert table.loc["AAA", "market value"] == pytest.approx(1010.0)
    assert table.loc["BBB", "market value"] == pytest.approx(260.0)  # BBB's missing close carried forward
    assert table.loc["AAA", "weight"] == pytest.approx(1010.0 / 1370.0)  # of the whole value, cash included
    assert table.loc["BBB", "weight"] == pytest.approx(260.0 / 1370.0)
    assert table.loc["AAA", "day change"] == pytest.approx(30.0)  # 10 shares x (101 - 98)
    assert table.loc["AAA", "day change %"] == pytest.approx(3.0 / 98.0)
    assert table.loc["BBB", "day change"] == 0.0 and table.loc["BBB", "day change %"] == 0.0
    held = SimpleNamespace(shares=pd.Series({"BBB": 5.0, "AAA": 10.0}), cash=100.0)
    per_name, change, pct = day_change(prices, held, held)  # nothing traded: shares x the closes' change
    assert change == pytest.approx(30.0) and pct == pytest.approx(30.0 / 1340.0)  # of yesterday's 1240 + 100 cash
    assert per_name.to_dict() == pytest.approx({"AAA": 30.0, "BBB": 0.0})
    with pytest.raises(DataError, match="no prices for the held ZZZ"):
        holdings_table(pd.Series({"ZZZ": 1.0}), prices)
    with pytest.raises(DataError, match="two dates of prices"):
        holdings_table(pd.Series({"AAA": 1.0}), prices.iloc[:1])


def test_the_days_change_counts_what_the_days_trades_and_flows_did():
    """Shares bought today at 99 moved to the close of 101 (not from yesterday's 98); a name sold out
    today counts its sale against yesterday's close; a deposit is not a gain, a dividend and a fee
    are; the return is the nightly valuation's (V_t + O_t) / (V_t-1 + I_t) - 1."""
    import pandas as pd

    from qpo.workbench.advisor import day_change, holdings_table

    prices = pd.DataFrame({"AAA": [100.0, 98.0, 101.0], "BBB": [50.0, 52.0, 51.0], "CCC": [10.0, 20.0, 21.0]},
                          index=pd.to_datetime(["2024-03-01", "2024-03-04", "2024-03-05"]))
    before = SimpleNamespace(shares=pd.Series({"AAA": 10.0, "CCC": 5.0}), cash=1_000.0)
    day = pd.Timestamp("2024-03-05").date()
    entries = pd.DataFrame([
        {"kind": "deposit", "ticker": None, "quantity": None, "price": None, "fees": 0.0, "amount": 500.0},
        {"kind": "sell", "ticker": "CCC", "quantity": 5.0, "price": 20.5, "fees": 1.0, "amount": None},
        {"kind": "buy", "ticker": "AAA", "quantity": 4.0, "price": 99.0, "fees": 2.0, "amount": None},
        {"kind": "buy", "ticker": "BBB", "quantity": 10.0, "price": 51.5, "fees": 0.0, "amount": None},
        {"kind": "dividend", "ticker": "AAA", "quantity": None, "price": None, "fees": 0.0, "amount": 3.0},
        {"kind": "fee", "ticker": None, "quantity": None, "price": None, "fees": 0.0, "amount": 4.0},
        {"kind": "withdrawal", "ticker": None, "quantity": None, "price": None, "fees": 0.0, "amount": 100.0},
    ]).assign(trade_date=day)
    cash = 1_000.0 + 500.0 + (5 * 20.5 - 1.0) - (4 * 99.0 + 2.0) - 10 * 51.5 + 3.0 - 4.0 - 100.0
    now = SimpleNamespace(shares=pd.Series({"AAA": 14.0, "BBB": 10.0}), cash=cash)
    per_name, change, pct = day_change(prices, before, now, entries)
    assert per_name["AAA"] == pytest.approx(10 * (101 - 98) + 4 * (101 - 99) - 2.0 + 3.0)  # 39
    assert per_name["BBB"] == pytest.approx(10 * (51 - 51.5))  # bought at 51.5, closed at 51: -5, not 10 x -1
    assert per_name["CCC"] == pytest.approx(5 * (20.5 - 20) - 1.0)  # sold out at 20.5 against 20
    v0, v1 = 10 * 98 + 5 * 20 + 1_000.0, 14 * 101 + 10 * 51 + cash
    assert change == pytest.approx(v1 + 100.0 - v0 - 500.0) == pytest.approx(per_name.sum() - 4.0)
    assert pct == pytest.approx((v1 + 100.0) / (v0 + 500.0) - 1)
    # a 2:1 split booked today, in actual closes (100 before, 51 after): +2 %, not +104 % nor the adjusted move
    split = pd.DataFrame([{"kind": "split", "ticker": "AAA", "quantity": 100.0, "price": None, "fees": 0.0,
                           "amount": None, "trade_date": day}])
    actual = pd.DataFrame({"AAA": [99.0, 100.0, 51.0]}, index=prices.index)
    _, gained, ret = day_change(actual, SimpleNamespace(shares=pd.Series({"AAA": 100.0}), cash=0.0),
                                SimpleNamespace(shares=pd.Series({"AAA": 200.0}), cash=0.0), split)
    assert gained == pytest.approx(200.0) and ret == pytest.approx(0.02)
    table = holdings_table(now.shares, prices, cash, day_pnl=per_name)
    assert table["day change"].to_dict() == pytest.approx({"AAA": 39.0, "BBB": -5.0})
    assert table.loc["BBB", "day change %"] == pytest.approx(51 / 52 - 1)  # the close's own change


def test_the_overviews_day_change_after_an_accepted_rebalance_is_the_nightly_valuations(qpo_home, sp500,
                                                                                        monkeypatch):
    """A rebalance accepted at the last close and a deposit the same day: the Overview's day change
    is the nightly valuation's daily return of the same ledger and prices (an independent path),
    not today's shares times the whole day's move."""
    from qpo.book.proposals import accept_rebalance, propose_rebalance
    from qpo.book.valuation import value_book
    from qpo.store import add_transaction, connect, get_portfolio, session_scope
    from qpo.workbench.advisor import AdvisorDashboard
    from qpo.workbench.demo import seed_demo

    monkeypatch.delenv("QPO_USER", raising=False)
    monkeypatch.delenv("QPO_WIDGET_BUNDLE_URL", raising=False)
    engine = connect()
    seed_demo(engine, prices=sp500)
    proposal = propose_rebalance("Balanced Growth", actor=SYSTEM, prices=sp500, engine=engine, max_weight=0.2)
    assert len(proposal.trades) >= 2
    accept_rebalance(proposal.id, actor=SYSTEM, prices=sp500, engine=engine)
    day = sp500.index[-1].date()
    with session_scope(engine) as s:
        add_transaction(s, SYSTEM, "Balanced Growth", "deposit", trade_date=day, amount=25_000.0)
        pid = get_portfolio(s, SYSTEM, "Balanced Growth").id
    app = AdvisorDashboard(initial="Balanced Growth", lookback_days=60)
    nightly = value_book(engine, day, app.prices, actor=SYSTEM, portfolio_ids=[pid]).iloc[0]
    assert app.market_value == pytest.approx(nightly["market_value"], rel=1e-12)
    assert app.day_change_pct == pytest.approx(nightly["daily_return"], abs=1e-12)
    naive = float((app.holdings_frame["shares"] * (app.holdings_frame["price"] - app.holdings_frame["previous close"])).sum())
    assert abs(naive - app.day_change) > 1.0  # the trades' shares did not all see the day's move


def test_growth_of_one_over_each_period():
    import numpy as np
    import pandas as pd

    from qpo.errors import UnknownOptionError
    from qpo.workbench.advisor import GROWTH_PERIODS, growth_of_one, growth_start

    days = pd.date_range("2023-12-25", "2024-03-05", freq="D")
    returns = pd.DataFrame({"p": 0.01, "b": 0.0}, index=days)
    returns.loc["2024-03-01", "b"] = np.nan  # a missing benchmark day counts as 0
    returns.loc["2024-03-04", "b"] = 0.05
    ytd = growth_of_one(returns, "YTD")
    assert ytd.index[0] == pd.Timestamp("2023-12-31") and ytd.iloc[0].tolist() == [1.0, 1.0]
    assert ytd["p"].iloc[-1] == pytest.approx(1.01 ** 65)  # Jan 1 to Mar 5 2024: 31 + 29 + 5 days
    assert ytd["b"].iloc[-1] == pytest.approx(1.05) and not ytd.isna().any().any()
    month = growth_of_one(returns, "1M")
    assert month.index[0] == pd.Timestamp("2024-02-05") and month["p"].iloc[-1] == pytest.approx(1.01 ** 29)
    most = growth_of_one(returns, "Max")
    assert most.index[0] == days[0] and most["p"].iloc[-1] == pytest.approx(1.01 ** (len(days) - 1))
    # a period longer than the data starts at its first date, as Max does
    assert growth_of_one(returns, "5Y").equals(most)
    assert growth_start("3Y", pd.Timestamp("2024-03-05"), pd.Timestamp("2000-01-03")) == pd.Timestamp("2021-03-05")
    assert growth_start("6M", pd.Timestamp("2024-08-31"), pd.Timestamp("2000-01-03")) == pd.Timestamp("2024-02-29")
    # a start on a day without data: the last date before it is the base
    weekdays = returns.loc[returns.index.day_of_week < 5]
    assert growth_of_one(weekdays, "1Y").index[0] == weekdays.index[0]
    assert growth_of_one(weekdays, "YTD").index[0] == pd.Timestamp("2023-12-29")  # the Friday
    assert GROWTH_PERIODS == ("1M", "3M", "6M", "YTD", "1Y", "3Y", "5Y", "Max")
    with pytest.raises(UnknownOptionError, match="2W"):
        growth_of_one(returns, "2W")


def test_the_overview_shows_the_days_change_and_the_growth_over_a_chosen_period(qpo_home, sp500, monkeypatch):
    """Per holding its value and the day's change; the portfolio's day change in the header; a
    period chosen redraws the growth of $1 in place, in one update of the same figure."""
    import pandas as pd

    from qpo import portfolio_returns, prices_to_returns
    from qpo.store import connect, position, session_scope
    from qpo.workbench.advisor import AdvisorDashboard
    from qpo.workbench.demo import seed_demo

    monkeypatch.delenv("QPO_USER", raising=False)
    monkeypatch.delenv("QPO_WIDGET_BUNDLE_URL", raising=False)
    seed_demo(connect(), prices=sp500)
    app = AdvisorDashboard(initial="Balanced Growth", lookback_days=60)
    with session_scope(app.engine) as s:
        shares = position(s, SYSTEM, "Balanced Growth").shares
    px = app.prices[shares.index].ffill()
    change = float((shares * (px.iloc[-1] - px.iloc[-2])).sum())
    assert app.day_change == pytest.approx(change)
    assert app.day_change_pct == pytest.approx(change / (app.market_value - change))
    sign = "+" if change >= 0 else "-"
    assert f"Day change {sign}${abs(change):,.0f} ({change / (app.market_value - change):+.2%})" in app.header.value
    biggest = app.holdings_frame.index[0]
    assert f"${app.holdings_frame.loc[biggest, 'market value']:,.0f}" in app.holdings.value
    assert app.holdings_frame["market value"].sum() == pytest.approx(app.market_value - app.cash)

    # the default period: 3 years back from the last price date, growing from 1
    fig = app.wealth_fig
    end = app.prices.index[-1]
    assert app.period.value == "3Y" and pd.Timestamp(fig.data[0].x[0]) <= end - pd.DateOffset(years=3)
    assert fig.data[0].y[0] == 1.0 and fig.data[1].y[0] == 1.0
    sent = []
    monkeypatch.setattr(fig, "_send", lambda msg, buffers=None: sent.append(msg))
    app.period.value = "1Y"
    assert app.wealth_fig is fig and len(fig.data) == 2  # the same figure, its data replaced
    updates = [m for m in sent if m.get("state", {}).get("_py2js_update")]
    assert len(updates) == 1 and not any(k in m.get("state", {}) for m in sent
                                         for k in ("_py2js_restyle", "_py2js_relayout", "_py2js_addTraces"))
    x = pd.DatetimeIndex(fig.data[0].x)
    assert x[0] <= end - pd.DateOffset(years=1) < x[1] and x[-1] == end
    weights = app.report.weights
    grown = portfolio_returns(weights, prices_to_returns(app.prices[weights.index]))
    expected = float((1.0 + grown.loc[grown.index > x[0]]).prod())
    assert fig.data[0].y[-1] == pytest.approx(expected) and fig.data[0].y[0] == 1.0
    bench = app.benchmark_history
    assert fig.data[1].y[-1] == pytest.approx(float((1.0 + bench.loc[(bench.index > x[0]) & (bench.index <= end)]).prod()))
    app.period.value = "Max"  # since every held name has a price
    assert pd.Timestamp(fig.data[0].x[0]) == grown.index[0]
    # a new portfolio keeps the period chosen
    app.select("Conservative Income")
    assert app.period.value == "Max" and fig.layout.title.text.startswith("Conservative Income")


def test_a_forged_widget_message_never_shows_another_advisors_client(qpo_home, sp500, monkeypatch):
    """Ana's kernel gets messages a page's script could forge: an index past her options, new
    option labels, a value or label; and the kernel-side equivalent (a selection of Ben's
    portfolio). The repository refuses it as her; nothing of Ben's client is shown."""
    from qpo.store import connect
    from qpo.workbench.advisor import AdvisorDashboard
    from qpo.workbench.demo import seed_demo

    seed_demo(connect(), prices=sp500)
    monkeypatch.setenv("QPO_USER", "ana.silva@example.com")
    app = AdvisorDashboard(initial="Balanced Growth", lookback_days=60)
    shown = app.header.value
    forged = ({"index": 3}, {"index": -1}, {"_options_labels": ["Balanced Growth", "Tech Tilt"], "index": 1},
              {"value": "Tech Tilt"}, {"label": "Tech Tilt"}, {"options": ["Tech Tilt"], "index": 0})

    def everything() -> str:
        return " ".join(str(w.value) for w in (app.notice, app.header, app.holdings, app.risk)) + str(
            app.wealth_fig.layout.title.text) + str(app.dropdown.get_state())

    for state in forged:
        message = {"content": {"data": {"method": "update", "state": state, "buffer_paths": []}}, "buffers": []}
        try:
            app.dropdown._handle_msg(message)  # what ipywidgets does with the page's message
        except Exception:  # noqa: BLE001, S110 - a refused value may raise: what matters is what is shown
            pass
        assert app.dropdown.options == ("Balanced Growth", "Conservative Income"), state
        assert app.dropdown._options_labels == ("Balanced Growth", "Conservative Income"), state
        assert app.selected in ("Balanced Growth", "Conservative Income"), state
        assert "Tech Tilt" not in everything() and "Nakamura" not in everything(), state
    app.dropdown._handle_msg({"content": {"data": {"method": "update", "state": {"index": 0},
                                                   "buffer_paths": []}}, "buffers": []})
    assert app.selected == "Balanced Growth" and app.header.value == shown
    # the kernel-side equivalent: the repository refuses her, the page says so and keeps her client
    app.select("Tech Tilt")
    assert app.selected == "Balanced Growth" and app.header.value == shown
    assert "may not see portfolio &#x27;Tech Tilt&#x27;" in app.notice.value
    assert "Nakamura" not in everything() and app.wealth_fig.layout.title.text.startswith("Balanced Growth")
    with pytest.raises(Exception, match="Invalid selection"):  # the widget itself refuses a value it does not offer
        app.dropdown.value = "Tech Tilt"
    app.select("Conservative Income")  # her own: shown, the message gone
    assert app.notice.value == "" and "Dr. L. Moreau" in app.header.value


def test_the_dashboard_reads_the_books_prices_from_the_store(qpo_home, sp500, monkeypatch):
    """With market data in the store, the dashboard values the book at the store's closes (here a
    close the bundled panel does not have); without any, at the bundled panel's."""
    from qpo.store import connect, position, session_scope
    from qpo.store.market_data import upsert_panel
    from qpo.workbench.advisor import AdvisorDashboard
    from qpo.workbench.demo import seed_demo

    monkeypatch.delenv("QPO_USER", raising=False)
    engine = connect()
    seed_demo(engine, prices=sp500)
    bundled = AdvisorDashboard(initial="Tech Tilt", lookback_days=60)
    assert bundled.prices_origin == "bundled" and bundled.prices.index[0].year == 2000
    with session_scope(engine) as s:
        shares = position(s, SYSTEM, "Tech Tilt").shares
    held = shares.index[0]
    stored = sp500.iloc[-300:].copy()
    stored.loc[stored.index[-1], held] *= 2  # the store's last close of one held name: twice the panel's
    assert upsert_panel(engine, stored, source="test") > 0
    app = AdvisorDashboard(initial="Tech Tilt", lookback_days=60)
    assert app.prices_origin == "store" and app.prices.index[0] == stored.index[0]
    assert app.prices.loc[stored.index[-1], held] == pytest.approx(2 * sp500.iloc[-1][held])
    extra = float(shares[held]) * float(sp500.iloc[-1][held])
    assert app.market_value == pytest.approx(bundled.market_value + extra)
    assert app.holdings_frame.loc[held, "day change %"] == pytest.approx(2 * sp500.iloc[-1][held] / sp500.iloc[-2][held] - 1)


def test_the_growth_is_drawn_against_the_portfolios_own_benchmark(qpo_home, sp500, monkeypatch):
    """A portfolio whose stored benchmark has prices is drawn against it (its growth of $1 from the
    same closes); one whose benchmark has none falls back to the S&P 500, and the title says so."""
    import pandas as pd
    from sqlalchemy import update

    from qpo import prices_to_returns
    from qpo.store import ClientPortfolio, connect, session_scope
    from qpo.workbench.advisor import AdvisorDashboard, growth_benchmark
    from qpo.workbench.demo import seed_demo

    monkeypatch.delenv("QPO_USER", raising=False)
    engine = connect()
    seed_demo(engine, prices=sp500)
    with session_scope(engine) as s:
        s.execute(update(ClientPortfolio).where(ClientPortfolio.name == "Tech Tilt").values(benchmark="MSFT"))
        s.execute(update(ClientPortfolio).where(ClientPortfolio.name == "Min-Variance Core").values(benchmark="NOPE"))
    app = AdvisorDashboard(initial="Balanced Growth", lookback_days=60)
    fig = app.wealth_fig
    assert fig.layout.title.text == "Balanced Growth: growth of $1 vs the S&P 500"  # its benchmark is SP500
    assert list(app.growth.columns) == ["Balanced Growth", "S&P 500"]
    app.select("Tech Tilt")
    assert app.notice.value == ""
    assert fig.layout.title.text == "Tech Tilt: growth of $1 vs MSFT" and fig.data[1].name == "MSFT"
    x = pd.DatetimeIndex(fig.data[1].x)
    msft = prices_to_returns(app.prices[["MSFT"]])["MSFT"]
    expected = float((1.0 + msft.loc[(msft.index > x[0]) & (msft.index <= x[-1])]).prod())
    assert fig.data[1].y[-1] == pytest.approx(expected, rel=1e-9)
    bench = app.benchmark_history
    assert abs(expected - float((1.0 + bench.loc[(bench.index > x[0]) & (bench.index <= x[-1])]).prod())) > 1e-3
    app.select("Min-Variance Core")
    assert fig.layout.title.text == ("Min-Variance Core: growth of $1 vs the S&P 500 (no prices for its benchmark "
                                     "NOPE)")
    assert fig.data[1].name == "S&P 500"
    label, returns, words = growth_benchmark(None, app.prices, bench)
    assert (label, words) == ("S&P 500", "the S&P 500") and returns is bench


def test_a_sector_map_stored_while_the_page_is_open_counts_at_the_next_selection(qpo_home, small_dashboard, sp500,
                                                                                monkeypatch):
    """The Overview, Risk, History and Frontier tabs kept the map read when the page opened while
    the Rebalance tab's proposals read the store's: after `qpo data sectors` they disagreed."""
    from qpo.store import connect
    from qpo.store.sectors import upsert_sectors
    from qpo.workbench.demo import seed_demo

    monkeypatch.delenv("QPO_USER", raising=False)
    engine = connect()
    seed_demo(engine, prices=sp500)
    app = small_dashboard()
    assert app.sectors["AAPL"] == "Information Technology"
    upsert_sectors(engine, {"AAPL": "Communication Services"})
    app.select(app.selected)
    assert app.sectors["AAPL"] == "Communication Services"
    assert "Communication Services" in set(map(str, app.report.sector_contributions.index))
