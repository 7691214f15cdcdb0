"""Issue 18's dashboard gaps, on a real store (SQLite in a temporary QPO_HOME) and the real
dashboard object: a proposal built on older closes than the store's is refused at Accept (the page
reads the newer day before Propose and Accept); a client holding only cash is shown (its cash, a
note, no risk yet) and never keeps the dashboard from opening; the History tab's attribution leaves
out a name priced over only part of the period and says so."""
from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from qpo.store import Actor
from tests.test_workbench import seed_demo_book

SYSTEM = Actor.system("tests")
ANA = "ana.silva@example.com"
BG = "Balanced Growth"
CASH = "Aardvark Cash"  # first in the dashboard's list (by name)
START = "2019-01-01"
LAST, NEW = pd.Timestamp("2022-12-28"), pd.Timestamp("2022-12-29")


@pytest.fixture
def store(qpo_home, sp500):
    """The demo book, and the panel from 2019 on as the store's market data (up to 2022-12-28)."""
    from qpo.store import connect
    from qpo.store.market_data import upsert_panel

    engine = connect()
    assert seed_demo_book(engine, sp500) == 4
    upsert_panel(engine, sp500.loc[START:])
    return engine


def _board(**kwargs):
    from qpo.workbench.advisor import AdvisorDashboard, add_standard_tabs

    board = AdvisorDashboard(lookback_days=60, history_start=START, **kwargs)
    add_standard_tabs(board)
    return board


def _open(board, title: str):
    board.tab_widget.selected_index = 1 + list(board.tabs).index(title)
    return board.tab(title)


def _read(fn, *args, **kwargs):
    from qpo.store import connect, session_scope

    with session_scope(connect()) as s:
        return fn(s, SYSTEM, *args, **kwargs)


def _new_day(engine, sp500, day=NEW, move=1.01):
    from qpo.store.market_data import upsert_panel

    upsert_panel(engine, pd.DataFrame([sp500.iloc[-1] * move], index=pd.DatetimeIndex([day], name="date")))


# -- 1. a proposal on older closes than the store's -----------------------------------------------
def test_a_proposal_built_before_a_newer_day_is_refused_and_the_next_uses_it(store, sp500, monkeypatch):
    from qpo.store import get_proposal, list_transactions

    monkeypatch.setenv("QPO_USER", ANA)
    board = _board(initial=BG)
    tab = _open(board, "Rebalance")
    first = tab.propose()
    assert first is not None and first.prices_as_of == LAST and not tab.accept_button.disabled
    before = _read(list_transactions, BG)
    _new_day(store, sp500)  # the nightly load adds 2022-12-29 while the page is open
    assert tab.accept() is False
    text = tab.status.value
    assert "qpo-error" in text and f"proposal {first.id} was built on prices of 2022-12-28" in text
    assert "prices up to 2022-12-29 exist: rebuild it" in text
    assert _read(get_proposal, first.id).status == "open" and len(_read(list_transactions, BG)) == len(before)
    # the page now holds the new day: the Overview is valued at it, and the next proposal is built on it
    assert board.prices.index[-1] == NEW and "on 2022-12-29" in board.header.value
    assert board.market_value == pytest.approx(
        board.cash + float((board.holdings_frame["shares"] * sp500.iloc[-1] * 1.01).dropna().sum()))
    second = tab.propose()
    assert second is not None and second.prices_as_of == NEW
    assert second.trades["price"].to_numpy() == pytest.approx(
        (sp500.iloc[-1] * 1.01)[second.trades["ticker"]].to_numpy())
    assert tab.accept() is True and _read(get_proposal, second.id).status == "accepted"


def test_propose_reads_a_newer_day_and_nothing_when_none_came(store, sp500, monkeypatch):
    monkeypatch.setenv("QPO_USER", ANA)
    board = _board(initial=BG)
    tab = _open(board, "Rebalance")
    prices = board.prices
    assert board.refresh_prices() is False and board.prices is prices  # nothing newer: nothing read
    _new_day(store, sp500, move=0.98)
    proposal = tab.propose()
    assert proposal is not None and proposal.prices_as_of == NEW and board.prices.index[-1] == NEW
    assert board.refresh_prices() is False


# -- 2. a client holding only cash ----------------------------------------------------------------
@pytest.fixture
def cash_client(store):
    from qpo.store import create_portfolio, session_scope

    with session_scope(store) as s:
        create_portfolio(s, SYSTEM, CASH, "Ada Aardvark", ANA, cash=250_000.0, trade_date="2022-06-01")
    return store


def test_a_cash_only_client_is_shown_first_with_its_cash_and_no_risk_yet(cash_client, monkeypatch):
    monkeypatch.delenv("QPO_USER", raising=False)
    board = _board()  # the cash-only portfolio is the first of the list: the dashboard opens on it
    assert board.selected == CASH and board.notice.value == ""
    assert board.market_value == board.cash == 250_000.0 and board.report is None
    assert board.holdings_frame.empty and (board.day_change, board.day_change_pct) == (0.0, 0.0)
    assert "Market value $250,000 (cash $250,000)" in board.header.value
    assert ("holds only cash: propose its first investment in the Rebalance tab" in board.holdings.value
            and "<table" not in board.holdings.value)
    assert "there is no risk to report yet" in board.risk.value
    growth = board.growth
    assert growth is not None and (growth[CASH] == 1.0).all()  # cash grows by nothing
    risk = _open(board, "Risk")
    assert "holds only cash: there is no risk to report yet" in risk.message.value
    assert "qpo-error" not in risk.message.value and risk.report is None
    history = _open(board, "History")
    assert history.values.iloc[-1] == 250_000.0 and (history.values == 250_000.0).all()
    assert "there is no risk to report yet" in history.attribution_note.value
    assert "qpo-error" not in history.attribution_note.value
    assert "there is no risk to report yet" in history.risk_table.value
    # another portfolio, then back: each shown as it is
    board.select(BG)
    assert board.report is not None and len(board.holdings_frame) > 0 and board.notice.value == ""
    board.select(CASH)
    assert board.selected == CASH and board.report is None and board.notice.value == ""


def test_a_cash_only_client_gets_its_first_investment_proposed(cash_client, monkeypatch):
    monkeypatch.setenv("QPO_USER", ANA)
    board = _board(initial=CASH)
    tab = _open(board, "Rebalance")
    proposal = tab.propose()
    assert proposal is not None, tab.status.value
    assert proposal.cash_before == 250_000.0 and (proposal.trades["side"] == "buy").all()
    assert len(proposal.trades) == 10 and "10 buys" in tab.summary.value
    assert proposal.value_after == pytest.approx(250_000.0 - proposal.total_cost, abs=0.01)


def test_one_portfolio_that_cannot_be_shown_never_keeps_the_dashboard_from_opening(cash_client, monkeypatch):
    from qpo.store import add_transaction, session_scope

    # the first portfolio of the list holds a name the prices lack (an imported ticker never loaded)
    with session_scope(cash_client) as s:
        add_transaction(s, SYSTEM, CASH, "buy", trade_date="2022-06-02", ticker="ZZZZ", quantity=10, price=10.0,
                        known_tickers=["ZZZZ"])
    monkeypatch.delenv("QPO_USER", raising=False)
    board = _board()
    assert board.selected == "Balanced Growth" and board.dropdown.value == "Balanced Growth"
    assert board.report is not None and "Balanced Growth" in board.header.value
    assert f"{CASH} could not be shown" in board.notice.value and "ZZZZ" in board.notice.value
    assert "showing Balanced Growth" in board.notice.value


# -- 3. the attribution's benchmark -----------------------------------------------------------------
def test_a_short_history_name_is_left_out_of_the_benchmark_not_fatal(store, sp500, monkeypatch):
    from qpo.store.market_data import upsert_panel

    newco = sp500["KO"].loc["2022-06-01":] * 0.5
    upsert_panel(store, newco.rename("NEWCO").to_frame())
    monkeypatch.setenv("QPO_USER", ANA)
    board = _board(initial=BG)
    assert "NEWCO" in board.prices.columns and board.prices_origin == "store"
    history = _open(board, "History")
    assert history.period.value == "1Y" and history.attribution is not None, history.attribution_note.value
    first, last = history.window
    assert last == LAST and first == pd.Timestamp("2021-12-28")
    note = history.attribution_note.value
    assert "portfolio of the 20 names of the store&#x27;s market data" in note or \
        "portfolio of the 20 names of the store's market data" in note
    assert "1 name without a price on every day of the period is left out (NEWCO)" in note
    assert "bundled" not in note
    # the benchmark is the 20 names at 1/20 each: its return is theirs, equal-weighted, rebalanced daily
    rets = sp500.loc[first:last].pct_change().iloc[1:]
    expected = float((1 + rets.mean(axis=1)).prod() - 1)
    assert history.attribution.loc["Total", "benchmark_return"] == pytest.approx(expected, rel=1e-9)
    assert history.left_out == ["NEWCO"]
    # a period NEWCO covers wholly: it is in the benchmark (21 names)
    history.start.value, history.end.value = dt.date(2022, 7, 1), dt.date(2022, 12, 28)
    assert history.left_out == [] and "the 21 names of the store" in history.attribution_note.value.replace(
        "&#x27;", "'")


def test_the_bundled_panel_is_named_as_the_source(qpo_home, sp500, monkeypatch):
    from qpo.store import connect

    seed_demo_book(connect(), sp500)
    monkeypatch.setenv("QPO_USER", ANA)
    board = _board(initial=BG)
    assert board.prices_origin == "bundled"
    history = _open(board, "History")
    assert "the 20 names of the bundled S&amp;P 500 panel priced on every day of the period" in \
        history.attribution_note.value
    assert history.left_out == []


# -- 4. a new selection redraws the open tab only ---------------------------------------------------
def test_a_new_selection_redraws_only_the_open_tab(store, monkeypatch):
    monkeypatch.setenv("QPO_USER", ANA)
    board = _board(initial=BG)
    history = _open(board, "History")
    risk = _open(board, "Risk")
    assert history.name == risk.name == BG
    drawn = []
    for title in ("History", "Risk"):
        tab = board.tab(title)
        monkeypatch.setattr(tab, "show", lambda name, t=title, f=tab.show: (drawn.append((t, name)), f(name)))
    board.select("Conservative Income")  # the Risk tab is open: it alone is redrawn, now
    assert drawn == [("Risk", "Conservative Income")] and risk.name == "Conservative Income"
    assert history.name == BG  # stale: drawn when next opened
    _open(board, "History")
    assert drawn[-1] == ("History", "Conservative Income") and history.name == "Conservative Income"
    _open(board, "Risk")  # drawn for this portfolio already: not again
    assert len(drawn) == 2


def test_a_store_out_of_reach_mid_session_is_said_in_plain_words():
    """Each tab's message when the store stops answering: plain words, never the driver's text
    (it may hold the store's URL and password), and other errors by their kind only."""
    from sqlalchemy.exc import OperationalError

    from qpo.workbench._overview import STORE_DOWN, failure_text

    down = OperationalError("SELECT 1", {}, Exception("connection to postgresql://qpo:s3cret@db:5432 refused"))
    text = failure_text(down, "the risk of Tech Tilt could not be computed")
    assert text == f"the risk of Tech Tilt could not be computed: {STORE_DOWN}" and "s3cret" not in text
    assert failure_text(ConnectionResetError("reset by db:5432"), "x") == f"x: {STORE_DOWN}"
    assert failure_text(KeyError("secret-key"), "the frontier could not be computed") == \
        "the frontier could not be computed (KeyError)"
