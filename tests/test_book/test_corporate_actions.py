"""Splits and dividends valued right (issue 19's valuation, on SQLite and the real PostgreSQL).

The nightly valuation values shares at the actual closes, and books the market data's splits into
the ledgers of the names' holders first (qpo.book.corporate_actions.book_splits). Before, the
adjusted closes were multiplied by the ledger's shares: a client who bought 10 shares at 100,
received a booked dividend of 2 a share and then a 2-for-1 split showed a market value of 510 and
-49 % since inception, where the truth is 1000 and 0 %.
"""
from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from qpo.book.corporate_actions import BOOKED_COLUMNS, book_splits
from qpo.book.valuation import value_book
from qpo.errors import StoreError
from qpo.store import (
    Actor,
    AuditEntry,
    Transaction,
    add_user,
    create_portfolio,
    import_transactions,
    position,
    session_scope,
)
from qpo.store.market_data import book_prices, prices_panel, upsert_bars
from tests.test_store import book_stores

store_url, engine = book_stores.store_url, book_stores.engine

SYSTEM = Actor.system("test")
ANA = "ana@ca.test"
DATES = pd.to_datetime(["2024-01-02", "2024-01-03", "2024-01-04", "2024-01-05", "2024-01-08"])
#: ZZZ: 100, then a dividend of 2 (ex 3 Jan, close 98), a 2-for-1 split on 5 Jan (close 49), 50.
#: YYY: 10 a share, a 1-for-4 reverse split on 4 Jan (close 40). The adjusted closes are what a
#: vendor gives after both: the history scaled by the dividend's and the split's factors.
BARS = pd.DataFrame({
    "date": list(DATES) * 2,
    "ticker": ["ZZZ"] * 5 + ["YYY"] * 5,
    "close": [100.0, 98.0, 98.0, 49.0, 50.0] + [10.0, 10.0, 40.0, 40.0, 41.0],
    "adjusted_close": [49.0, 49.0, 49.0, 49.0, 50.0] + [40.0, 40.0, 40.0, 40.0, 41.0],
    "dividend_amount": [0.0, 2.0, 0.0, 0.0, 0.0] + [0.0] * 5,
    "split_coefficient": [1.0, 1.0, 1.0, 2.0, 1.0] + [1.0, 1.0, 0.25, 1.0, 1.0],
})
KNOWN = {"ZZZ", "YYY"}


def _book(engine) -> dict[str, int]:
    upsert_bars(engine, BARS, source="vendor")
    with session_scope(engine) as s:
        add_user(s, SYSTEM, ANA, "Ana", "advisor")
        # P: 10 ZZZ at 100; the dividend of 2 a share booked from the statement
        create_portfolio(s, SYSTEM, "P", "Client P", ANA, cash=1000.0, trade_date="2024-01-02", known_tickers=KNOWN)
        import_transactions(s, SYSTEM, "P", [
            {"kind": "buy", "trade_date": "2024-01-02", "ticker": "ZZZ", "quantity": 10, "price": 100.0},
            {"kind": "dividend", "trade_date": "2024-01-03", "ticker": "ZZZ", "amount": 20.0}], known_tickers=KNOWN)
        # Q: buys ZZZ on the split's day, at the post-split price: nothing to book
        create_portfolio(s, SYSTEM, "Q", "Client Q", ANA, cash=500.0, trade_date="2024-01-02", known_tickers=KNOWN)
        import_transactions(s, SYSTEM, "Q", [
            {"kind": "buy", "trade_date": "2024-01-05", "ticker": "ZZZ", "quantity": 4, "price": 49.0}],
            known_tickers=KNOWN)
        # R: 8 YYY (a 1-for-4 reverse split: 2 left), and 3 ZZZ sold before the split
        create_portfolio(s, SYSTEM, "R", "Client R", ANA, cash=1000.0, trade_date="2024-01-02", known_tickers=KNOWN)
        import_transactions(s, SYSTEM, "R", [
            {"kind": "buy", "trade_date": "2024-01-02", "ticker": "YYY", "quantity": 8, "price": 10.0},
            {"kind": "buy", "trade_date": "2024-01-02", "ticker": "ZZZ", "quantity": 3, "price": 100.0},
            {"kind": "sell", "trade_date": "2024-01-04", "ticker": "ZZZ", "quantity": 3, "price": 98.0}],
            known_tickers=KNOWN)
        return {n: s.query(Transaction.portfolio_id).join(Transaction.portfolio)
                .filter_by(name=n).first()[0] for n in ("P", "Q", "R")}


def test_splits_are_booked_once_and_values_are_at_actual_closes(engine):
    ids = _book(engine)
    booked = book_splits(engine, "2024-01-08", actor=SYSTEM)
    assert list(booked.columns) == BOOKED_COLUMNS
    got = {(r.portfolio, r.ticker): r.quantity for r in booked.itertuples()}
    assert got == {("P", "ZZZ"): pytest.approx(10.0), ("R", "YYY"): pytest.approx(-6.0)}
    assert book_splits(engine, "2024-01-08", actor=SYSTEM).empty  # idempotent
    with session_scope(engine) as s:
        assert position(s, SYSTEM, "P").shares.to_dict() == {"ZZZ": pytest.approx(20.0)}
        assert position(s, SYSTEM, "R").shares.to_dict() == {"YYY": pytest.approx(2.0)}
        assert position(s, SYSTEM, "Q").shares.to_dict() == {"ZZZ": pytest.approx(4.0)}
        audit = [a.action for a in s.query(AuditEntry).filter(AuditEntry.actor == "system:test").all()]
        assert audit.count("transaction") >= 2  # each booking is an audited write

    closes, _ = book_prices(engine, actual=True)
    pd.testing.assert_series_equal(closes["ZZZ"], prices_panel(engine, ["ZZZ"], actual=True)["ZZZ"])
    rows = {r["portfolio_id"]: r for r in value_book(engine, "2024-01-08", closes, actor=SYSTEM).to_dict("records")}
    p = rows[ids["P"]]  # 20 x 50 + the dividend's 20 of cash: 1020, 2 % since 1000 went in
    assert p["market_value"] == pytest.approx(1020.0) and p["cash"] == pytest.approx(20.0)
    assert p["inception_return"] == pytest.approx(0.02, abs=1e-12)
    assert p["daily_return"] == pytest.approx(1020 / 1000 - 1, abs=1e-12)
    on_split = {r["portfolio_id"]: r for r in value_book(engine, "2024-01-05", closes, actor=SYSTEM).to_dict("records")}
    assert on_split[ids["P"]]["market_value"] == pytest.approx(1000.0)  # the split's day: no loss
    assert on_split[ids["P"]]["inception_return"] == pytest.approx(0.0, abs=1e-12)  # the dividend: once
    r = rows[ids["R"]]  # 2 YYY at 41, cash 1000 - 80 - 300 + 294
    assert r["market_value"] == pytest.approx(82.0 + 914.0)
    assert r["inception_return"] == pytest.approx((914 + 82) / 1000 - 1, abs=1e-12)
    assert rows[ids["Q"]]["market_value"] == pytest.approx(4 * 50.0 + 500.0 - 196.0)
    # the adjusted closes times the ledger's shares: the defect this replaces
    adjusted, _ = book_prices(engine)
    assert value_book(engine, "2024-01-08", adjusted, actor=SYSTEM).set_index("portfolio_id").loc[
        ids["P"], "inception_return"] == pytest.approx(0.02, abs=1e-12)  # 50 is 50 both ways on the last day...
    assert on_split[ids["P"]]["daily_return"] == pytest.approx(0.0, abs=1e-12)
    early = value_book(engine, "2024-01-03", adjusted, actor=SYSTEM).set_index("portfolio_id")
    assert early.loc[ids["P"], "market_value"] < 600  # ...but not before the split: 10 x 49 + 20


def test_a_ledger_already_on_split_adjusted_prices_is_not_split_again(engine):
    """Shares bought at a vendor's adjusted prices (the bundled panel's, a demo book's) count
    post-split shares from the start: booking the split would double them."""
    _book(engine)
    with session_scope(engine) as s:
        create_portfolio(s, SYSTEM, "Adj", "Client Adj", ANA, cash=1000.0, trade_date="2024-01-02",
                         known_tickers=KNOWN)
        import_transactions(s, SYSTEM, "Adj", [  # 20 ZZZ at the adjusted 49: the same money as P's 10 at 100
            {"kind": "buy", "trade_date": "2024-01-02", "ticker": "ZZZ", "quantity": 20, "price": 49.0}],
            known_tickers=KNOWN)
    booked = book_splits(engine, "2024-01-08", actor=SYSTEM)
    assert sorted(booked["portfolio"]) == ["P", "R"]
    assert booked.attrs["skipped"][["portfolio", "ticker"]].values.tolist() == [["Adj", "ZZZ"]]
    with session_scope(engine) as s:
        assert position(s, SYSTEM, "Adj").shares.to_dict() == {"ZZZ": pytest.approx(20.0)}
    # valued at the closes of its own basis: the adjusted ones (at the actual 100, 98, 98 before the split
    # its value would have doubled); the others at the actual closes, their splits booked
    closes, _ = book_prices(engine, actual=True)
    adjusted, _ = book_prices(engine)
    ids = {}
    with session_scope(engine) as s:
        from qpo.store import get_portfolio
        ids = {n: get_portfolio(s, SYSTEM, n).id for n in ("P", "Adj")}
    for day, adj_value in (("2024-01-03", 20 * 49.0 + 20), ("2024-01-08", 20 * 50.0 + 20)):
        rows = value_book(engine, day, closes, actor=SYSTEM, adjusted=adjusted).set_index("portfolio_id")
        assert rows.loc[ids["Adj"], "market_value"] == pytest.approx(adj_value)
    assert rows.loc[ids["Adj"], "inception_return"] == pytest.approx(0.02, abs=1e-12)
    assert rows.loc[ids["P"], "market_value"] == pytest.approx(1020.0)  # 20 x 50 + its dividend
    assert rows.loc[ids["P"], "inception_return"] == pytest.approx(0.02, abs=1e-12)


def test_a_split_imported_by_hand(engine):
    _book(engine)
    with session_scope(engine) as s:
        import_transactions(s, SYSTEM, "P", [{"kind": "split", "trade_date": "2024-01-05", "ticker": "ZZZ",
                                              "quantity": 10, "note": "from the statement"}], known_tickers=KNOWN)
    assert book_splits(engine, "2024-01-08", actor=SYSTEM)["portfolio"].tolist() == ["R"]  # P's is there
    with session_scope(engine) as s:
        with pytest.raises(StoreError, match="holds 0 YYY"):
            import_transactions(s, SYSTEM, "P", [{"kind": "split", "trade_date": "2024-01-05", "ticker": "YYY",
                                                  "quantity": 5}], known_tickers=KNOWN)
    with session_scope(engine) as s:
        with pytest.raises(StoreError, match="not 0"):
            import_transactions(s, SYSTEM, "P", [{"kind": "split", "trade_date": "2024-01-05", "ticker": "ZZZ",
                                                  "quantity": 0}], known_tickers=KNOWN)
    with session_scope(engine) as s:
        with pytest.raises(StoreError, match="holds 20 ZZZ"):  # a reverse split cannot take more than is held
            import_transactions(s, SYSTEM, "P", [{"kind": "split", "trade_date": "2024-01-08", "ticker": "ZZZ",
                                                  "quantity": -25}], known_tickers=KNOWN)


def test_the_nightly_valuation_books_the_split_and_values_each_basis(engine, monkeypatch):
    """`qpo nightly value` on vendor bars: the split booked before valuing (said in the result),
    a statement's ledger valued at actual closes, a ledger bought at adjusted prices at adjusted ones."""
    from qpo.operations.cluster import dask_client
    from qpo.operations.nightly import run_valuation
    from qpo.store.operations import valuations_on

    for var in ("QPO_SMTP_HOST", "QPO_ALERT_WEBHOOK", "QPO_ALERT_RECIPIENTS", "QPO_DASK_SCHEDULER"):
        monkeypatch.delenv(var, raising=False)
    _book(engine)
    with session_scope(engine) as s:
        create_portfolio(s, SYSTEM, "Adj", "Client Adj", ANA, cash=1000.0, trade_date="2024-01-02",
                         known_tickers=KNOWN)
        import_transactions(s, SYSTEM, "Adj", [
            {"kind": "buy", "trade_date": "2024-01-02", "ticker": "ZZZ", "quantity": 20, "price": 49.0}],
            known_tickers=KNOWN)
        from qpo.store import get_portfolio
        ids = {n: get_portfolio(s, SYSTEM, n).id for n in ("P", "R", "Adj")}
    lines: list[str] = []
    with dask_client(1) as client:
        result = run_valuation("2024-01-08", engine=engine, client=client, log=lines.append)
    assert result.splits_booked == 2 and result.metrics()["splits_booked"] == 2
    assert any("not split: their ledgers' prices are already split-adjusted" in line and "'Adj'" in line
               for line in lines), lines
    rows = valuations_on(engine, dt.date(2024, 1, 8)).set_index("portfolio_id")
    assert rows.loc[ids["P"], "market_value"] == pytest.approx(1020.0)
    assert rows.loc[ids["P"], "inception_return"] == pytest.approx(0.02, abs=1e-12)
    assert rows.loc[ids["Adj"], "market_value"] == pytest.approx(1020.0)
    assert rows.loc[ids["R"], "market_value"] == pytest.approx(82.0 + 914.0)


def test_a_sale_on_the_splits_day_and_a_split_booked_once(engine):
    """The split takes effect at the start of its day (that day's trades are post-split): selling
    the post-split half that day must not break the booking; a split is booked once per name and
    date, by hand or by two runs at once."""
    _book(engine)
    with session_scope(engine) as s:  # P sells 10 of its (post-split) 20 ZZZ on the split's day, at 49
        import_transactions(s, SYSTEM, "P", [{"kind": "sell", "trade_date": "2024-01-05", "ticker": "ZZZ",
                                              "quantity": 10, "price": 49.0}], known_tickers=KNOWN)
    booked = book_splits(engine, "2024-01-08", actor=SYSTEM)
    assert {(r.portfolio, r.quantity) for r in booked.itertuples()} >= {("P", 10.0)}
    with session_scope(engine) as s:
        assert position(s, SYSTEM, "P").shares.to_dict() == {"ZZZ": pytest.approx(10.0)}
        with pytest.raises(StoreError, match="already has a split of ZZZ on 2024-01-05"):
            import_transactions(s, SYSTEM, "P", [{"kind": "split", "trade_date": "2024-01-05", "ticker": "ZZZ",
                                                  "quantity": 10}], known_tickers=KNOWN)


def test_a_small_split_on_adjusted_prices_is_not_booked_again(engine):
    """A 5-for-4 split: the adjusted price is within 25 % of the actual one, but nearer the adjusted."""
    bars = pd.DataFrame({"date": pd.to_datetime(["2024-01-02", "2024-01-03", "2024-01-04"]), "ticker": "FFF",
                         "close": [100.0, 80.0, 81.0], "adjusted_close": [80.0, 80.0, 81.0],
                         "split_coefficient": [1.0, 1.25, 1.0]})
    upsert_bars(engine, bars, source="vendor")
    with session_scope(engine) as s:
        add_user(s, SYSTEM, ANA, "Ana", "advisor")
        for name, price, qty in (("Raw", 100.0, 10), ("Adjusted", 80.0, 12.5)):
            create_portfolio(s, SYSTEM, name, "C", ANA, cash=1000.0, trade_date="2024-01-02", known_tickers={"FFF"})
            import_transactions(s, SYSTEM, name, [{"kind": "buy", "trade_date": "2024-01-02", "ticker": "FFF",
                                                   "quantity": qty, "price": price}], known_tickers={"FFF"})
    booked = book_splits(engine, "2024-01-04", actor=SYSTEM)
    assert booked[["portfolio", "quantity"]].values.tolist() == [["Raw", 2.5]]
    assert booked.attrs["skipped"]["portfolio"].tolist() == ["Adjusted"]


def test_weights_of_a_date_before_a_split_are_the_valuations(engine):
    """The risk run of a date before a later split priced the ledger's shares of that date (before
    the split) at adjusted closes the split had since halved: a 43 % position read as 27 %, under its
    30 % limit. With the actual closes given, each position is priced at the closes of its basis."""
    from qpo.book.valuation import book_weights

    ids = _book(engine)
    with session_scope(engine) as s:
        create_portfolio(s, SYSTEM, "Adj", "Client Adj", ANA, cash=1000.0, trade_date="2024-01-02",
                         known_tickers=KNOWN)
        import_transactions(s, SYSTEM, "Adj", [  # bought at the adjusted price: split-adjusted shares
            {"kind": "buy", "trade_date": "2024-01-02", "ticker": "ZZZ", "quantity": 20, "price": 49.0}],
            known_tickers=KNOWN)
        from qpo.store import get_portfolio
        ids["Adj"] = get_portfolio(s, SYSTEM, "Adj").id
    book_splits(engine, "2024-01-08", actor=SYSTEM)
    adjusted, _ = book_prices(engine)
    actual, _ = book_prices(engine, actual=True)
    w, info = book_weights(engine, "2024-01-04", adjusted, actor=SYSTEM, actual=actual)
    # P on 4 Jan: 10 ZZZ (the split comes on the 5th) at the actual 98, and 20 of cash
    assert w.loc[ids["P"], "ZZZ"] == pytest.approx(980.0 / 1000.0, abs=1e-12)
    assert info[ids["P"]]["invested"] == pytest.approx(980.0)
    # Adj: 20 split-adjusted shares at the adjusted 49, and 20 of cash
    assert w.loc[ids["Adj"], "ZZZ"] == pytest.approx(980.0 / 1000.0, abs=1e-12)
    value = {r["portfolio_id"]: r for r in value_book(engine, "2024-01-04", actual, actor=SYSTEM,
                                                      adjusted=adjusted).to_dict("records")}
    for name in ("P", "Adj", "R"):  # the valuation's market values, the same shares at the same closes
        pid = ids[name]
        assert info[pid]["invested"] + info[pid]["cash"] == pytest.approx(value[pid]["market_value"], abs=1e-9), name
    old, _ = book_weights(engine, "2024-01-04", adjusted, actor=SYSTEM)  # without the actual closes: the defect
    assert old.loc[ids["P"], "ZZZ"] == pytest.approx(490.0 / 510.0, abs=1e-12)


def test_a_late_entry_before_a_booked_split_rescales_it_at_its_ratio(engine):
    """A statement's late line dated before a split already booked: the split follows the shares
    then held, at its own ratio (P: 10 ZZZ split +10; a late buy of 4 on 3 Jan makes it +14, and
    28 ZZZ, not 24 (before: the split stayed +10 and the portfolio was short 4 shares' value for
    good)); a late sale of every share before it removes the split (R's YYY: before, the sale was
    refused, "the portfolio holds 0 YYY then", and the ledger could not be put right). The audit row
    names each split changed; the nightly run books nothing again."""
    ids = _book(engine)
    book_splits(engine, "2024-01-08", actor=SYSTEM)
    with session_scope(engine) as s:
        import_transactions(s, SYSTEM, "P", [
            {"kind": "deposit", "trade_date": "2024-01-03", "amount": 400.0},
            {"kind": "buy", "trade_date": "2024-01-03", "ticker": "ZZZ", "quantity": 4, "price": 98.0}],
            known_tickers=KNOWN)
        import_transactions(s, SYSTEM, "R", [
            {"kind": "sell", "trade_date": "2024-01-03", "ticker": "YYY", "quantity": 8, "price": 10.0}],
            known_tickers=KNOWN)
    with session_scope(engine, write=False) as s:
        assert position(s, SYSTEM, "P").shares.to_dict() == {"ZZZ": 28.0}
        assert position(s, SYSTEM, "P").cash == pytest.approx(1000.0 - 1000.0 + 20.0 + 400.0 - 392.0)
        splits = {(t.portfolio_id, t.ticker): t for t in s.query(Transaction).filter_by(kind="split")}
        assert splits[(ids["P"], "ZZZ")].quantity == 14.0 and "re-scaled from +10 shares" in splits[(ids["P"], "ZZZ")].note
        assert (ids["R"], "YYY") not in splits and "YYY" not in position(s, SYSTEM, "R").shares
        audit = s.query(AuditEntry).filter_by(portfolio_id=ids["P"]).order_by(AuditEntry.id.desc()).first()
        assert audit.after["splits_rescaled"] == [{"id": splits[(ids["P"], "ZZZ")].id, "ticker": "ZZZ",
                                                   "trade_date": "2024-01-05", "quantity_before": 10.0,
                                                   "quantity_after": 14.0}]
    assert book_splits(engine, "2024-01-08", actor=SYSTEM).empty
    # a 1-for-4 reverse split re-scales the same way: 8 YYY (-6) and a late buy of 4 make 12 -> 3 (-9)
    with session_scope(engine) as s:
        create_portfolio(s, SYSTEM, "S", "Client S", ANA, cash=1000.0, trade_date="2024-01-02", known_tickers=KNOWN)
        import_transactions(s, SYSTEM, "S", [
            {"kind": "buy", "trade_date": "2024-01-02", "ticker": "YYY", "quantity": 8, "price": 10.0}],
            known_tickers=KNOWN)
    book_splits(engine, "2024-01-08", actor=SYSTEM)
    with session_scope(engine) as s:
        import_transactions(s, SYSTEM, "S", [
            {"kind": "buy", "trade_date": "2024-01-03", "ticker": "YYY", "quantity": 4, "price": 10.0}],
            known_tickers=KNOWN)
        assert position(s, SYSTEM, "S").shares.to_dict() == {"YYY": 3.0}


def test_a_split_not_booked_yet_is_booked_by_a_stored_proposal_refused_by_a_dry_run_and_shown(engine, monkeypatch,
                                                                                                capsys):
    """Before the nightly run books a split, P's 10 ZZZ are pre-split shares and the closes post-
    split: a proposal sized on them would value ZZZ at half and buy it past its cap (the audit's
    60.7 % under a 0.6 cap). A dry run is refused naming the split; a stored proposal books it first
    (as its actor); ``portfolio show`` warns (text and --json)."""
    from qpo.book.proposals import _splits_first, propose_rebalance
    from qpo.cli import main
    from qpo.errors import InvalidValueError

    ids = _book(engine)
    monkeypatch.setenv("QPO_DATABASE_URL", engine.url.render_as_string(hide_password=False))
    assert main(["--as", ANA, "portfolio", "show", "P", "--json"]) == 0
    import json
    shown = json.loads(capsys.readouterr().out)["portfolio"]
    assert shown["pending_splits"] == [{"ticker": "ZZZ", "date": "2024-01-05", "ratio": 2.0, "shares": 10.0}]
    assert main(["--as", ANA, "portfolio", "show", "P"]) == 0
    assert "warning: the ledger lacks a 2-for-1 split of ZZZ on 2024-01-05 (+10 shares)" in capsys.readouterr().out
    with pytest.raises(InvalidValueError, match=r"lacks a 2-for-1 split of ZZZ on 2024-01-05 \(\+10 shares\)"):
        propose_rebalance("P", actor=ANA, engine=engine, prices=book_prices(engine)[0], save=False)
    _splits_first(engine, "P", ANA, pd.Timestamp("2024-01-08"), True)
    with session_scope(engine, write=False) as s:
        assert position(s, SYSTEM, "P").shares.to_dict() == {"ZZZ": 20.0}
        split = s.query(Transaction).filter_by(portfolio_id=ids["P"], kind="split").one()
        assert split.created_by == ANA
    assert main(["--as", ANA, "portfolio", "show", "P"]) == 0
    assert "lacks" not in capsys.readouterr().out


def test_a_split_written_before_a_later_one_rescales_it():
    """10 shares, a 2-for-1 split booked on day 5 (+10); a 2-for-1 split of day 3 arriving later
    (book_splits after a statement's split) makes the day-5 split +20: 40 shares, not 30."""
    import datetime as dt

    from qpo.store import ledger

    d = dt.date
    existing = [ledger.Entry("deposit", d(2024, 1, 1), amount=1000.0, id=1),
                ledger.Entry("buy", d(2024, 1, 1), "AAA", 10.0, 10.0, id=2),
                ledger.Entry("split", d(2024, 1, 5), "AAA", 10.0, id=3)]
    new = [ledger.Entry("split", d(2024, 1, 3), "AAA", 10.0)]
    ((split, quantity),) = ledger.rescaled_splits(existing, new)
    assert split.id == 3 and quantity == 20.0
    rest = [e for e in existing if e.id != 3] + [ledger.Entry("split", d(2024, 1, 5), "AAA", quantity, id=3)]
    assert ledger.replay(rest + new).shares.to_dict() == {"AAA": 40.0}
