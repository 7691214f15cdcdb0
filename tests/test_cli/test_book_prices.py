"""The book's commands and services read the book's prices (issue 17, audit gap G2): the store's
market data when it holds any bar, else the bundled panel, as the dashboard and the nightly run do.
A close ingested after a proposal was built makes the proposal stale: accept refuses it and says to
rebuild it; `portfolio show` and `rebalance check` value at that close."""
from __future__ import annotations

import pandas as pd
import pytest

from qpo.book import accept_rebalance, check_rebalance, propose_rebalance
from qpo.errors import StoreError
from qpo.store import connect, position, session_scope
from tests.test_cli.conftest import ANA

NEWER = ("2022-12-29", "2022-12-30")
UP = 1.02  # every close of the newer days: 2% above the bundled panel's last (2022-12-28)


#: days of the bundled panel loaded into the store (enough for the strategy's lookback; `qpo data
#: seed` loads all 8,313, which the same code reads, only slower)
HISTORY = 400


def _store_closes(sp500, path) -> pd.DataFrame:
    """The bundled panel's last :data:`HISTORY` days and two newer ones, written as a price panel."""
    last = sp500.iloc[-1]
    newer = pd.DataFrame([last * UP, last * UP * UP], index=pd.DatetimeIndex(NEWER, name="date"))
    frame = pd.concat([sp500.iloc[-HISTORY:], newer])
    frame.index.name = "date"
    frame.to_csv(path)
    return newer


@pytest.fixture
def ingested(book, sp500, tmp_path):
    """Harper's proposal built on the bundled panel's last closes (2022-12-28), then the store
    given market data: the bundled closes and two newer days ingested. (book, proposal id, newer
    closes)."""
    doc = book.ok("rebalance", "propose", "Harper", "--json", actor=ANA).json["proposal"]
    assert doc["prices_as_of"] == "2022-12-28"
    newer = _store_closes(sp500, tmp_path / "closes.csv")
    r = book.ok("data", "ingest", str(tmp_path / "closes.csv"), "--kind", "prices", "--json")
    assert r.json["status"] == "INGESTED" and r.json["last"] == "2022-12-30"
    return book, doc["id"], newer


def test_accept_refuses_a_proposal_built_before_a_newer_close_in_the_store(ingested, sp500):
    cli, pid, _ = ingested
    r = cli.refused("rebalance", "accept", str(pid), actor=ANA)
    message = r.json["error"]
    assert f"proposal {pid} was built on prices of 2022-12-28; prices up to 2022-12-30 exist" in message
    assert "rebuild it (`qpo rebalance propose Harper`)" in message
    # the Python service's default reads the same prices, and older prices given do not hide them
    with pytest.raises(StoreError, match="prices up to 2022-12-30 exist: rebuild it"):
        accept_rebalance(pid, actor=ANA, engine=connect())
    with pytest.raises(StoreError, match="prices up to 2022-12-30 exist: rebuild it"):
        accept_rebalance(pid, actor=ANA, engine=connect(), prices=sp500)
    # rebuilt on the newest closes it is accepted, at those closes
    doc = cli.ok("rebalance", "propose", "Harper", "--json", actor=ANA).json["proposal"]
    assert doc["prices_as_of"] == "2022-12-30"
    cli.ok("rebalance", "accept", str(doc["id"]), actor=ANA)
    trades = {t["ticker"]: t["price"] for t in doc["trades"]}
    assert trades and all(p > 0 for p in trades.values())
    assert trades == pytest.approx({t: ingested[2].loc["2022-12-30", t] for t in trades}, rel=1e-9)


def test_accept_refuses_a_proposal_whose_close_was_corrected_in_the_store(book, sp500, tmp_path):
    """A bar of the proposal's own price date ingested again with another close (a vendor's
    correction): no newer date exists, but the trades would be booked at the old close."""
    doc = book.ok("rebalance", "propose", "Harper", "--json", actor=ANA).json["proposal"]
    name = doc["trades"][0]["ticker"]
    fixed = sp500.iloc[-HISTORY:].copy()
    fixed.loc[fixed.index[-1], name] = float(sp500[name].iloc[-1]) - 4.28
    fixed.index.name = "date"
    fixed.to_csv(tmp_path / "fixed.csv")
    book.ok("data", "ingest", str(tmp_path / "fixed.csv"), "--kind", "prices")
    r = book.refused("rebalance", "accept", str(doc["id"]), actor=ANA)
    assert f"proposal {doc['id']} was built on closes of 2022-12-28 that have changed since ({name} " in r.json["error"]
    assert "rebuild it (`qpo rebalance propose Harper`)" in r.json["error"]
    again = book.ok("rebalance", "propose", "Harper", "--json", actor=ANA).json["proposal"]
    book.ok("rebalance", "accept", str(again["id"]), actor=ANA)
    prices = {t["ticker"]: t["price"] for t in again["trades"]}
    if name in prices:
        assert prices[name] == pytest.approx(float(sp500[name].iloc[-1]) - 4.28, rel=1e-12)


def test_show_and_check_value_at_the_stores_newest_close(ingested, sp500):
    cli, _, newer = ingested
    shown = cli.ok("portfolio", "show", "Harper", "--json", actor=ANA).json["portfolio"]
    assert shown["prices_as_of"] == "2022-12-30" and shown["price_source"] == "store"
    held = {h["ticker"]: h for h in shown["holdings"]}
    assert held["AAPL"]["last_price"] == pytest.approx(sp500["AAPL"].iloc[-1] * UP * UP, abs=5e-9)  # --json: 1e-8
    # Harper: 100 AAPL, 50 KO, 10,000 cash
    expected = 100 * newer.loc["2022-12-30", "AAPL"] + 50 * newer.loc["2022-12-30", "KO"] + 10_000
    assert shown["total_value"] == pytest.approx(expected, abs=0.005)  # --json: money to cents
    human = cli.ok("portfolio", "show", "Harper", actor=ANA).out
    assert "holdings at the closes of 2022-12-30 (the store's market data)" in human

    check = {r["portfolio"]: r for r in cli.ok("rebalance", "check", "--json", actor=ANA).json["check"]}
    assert check["Harper"]["prices_as_of"] == "2022-12-30"
    assert check["Harper"]["value"] == pytest.approx(expected, abs=0.005)
    frame = check_rebalance(actor=ANA, engine=connect())  # the Python default: the same prices
    assert frame.set_index("portfolio").loc["Harper", "value"] == pytest.approx(expected, rel=1e-12)


def test_the_python_services_default_to_the_book_prices(ingested):
    cli, _, _ = ingested
    engine = connect()
    draft = propose_rebalance("Harper", actor=ANA, engine=engine, save=False)
    assert draft.prices_as_of.date().isoformat() == "2022-12-30"
    with session_scope(engine) as s:
        assert position(s, ANA, "Harper").shares.to_dict() == {"AAPL": 100.0, "KO": 50.0}


def test_without_market_data_in_the_store_the_bundled_panel_is_used(book, sp500):
    shown = book.ok("portfolio", "show", "Harper", "--json", actor=ANA).json["portfolio"]
    assert shown["prices_as_of"] == "2022-12-28" and shown["price_source"] == "bundled"
    assert "(the bundled sp500 price panel)" in book.ok("portfolio", "show", "Harper", actor=ANA).out
    doc = book.ok("rebalance", "propose", "Harper", "--json", actor=ANA).json["proposal"]
    book.ok("rebalance", "accept", str(doc["id"]), actor=ANA)
