"""The advisor dashboard's price snapshot (qpo.workbench.price_snapshot): the server writes the
store's panel once, each visit's kernel loads it instead of reading the store while the store's
bars are those it holds, and reads the store (the same frames) when they are not: a day ingested,
a bar corrected, a file missing, corrupt or not a snapshot at all."""
from __future__ import annotations

import pandas as pd
import pytest


@pytest.fixture
def store(qpo_home, sp500, monkeypatch):
    """A store with the demo book and market data: the panel since 2018, the S&P 500, and one
    name's last bars from a vendor (actual closes other than the adjusted ones)."""
    import qpo
    from qpo.store import connect
    from qpo.store.market_data import upsert_bars, upsert_panel
    from qpo.workbench.demo import seed_demo

    monkeypatch.delenv("QPO_USER", raising=False)
    engine = connect()
    seed_demo(engine, prices=sp500)
    panel = sp500.loc["2018-01-01":].join(qpo.load_prices("sp500_index")[["SP500"]], how="left")
    assert upsert_panel(engine, panel, source="test") > 0
    last = sp500["AAPL"].iloc[-3:]
    bars = pd.DataFrame({"date": last.index, "ticker": "AAPL", "adjusted_close": last.to_numpy(),
                         "close": last.to_numpy() * 4.0})  # a split after: the actual closes four times the adjusted
    upsert_bars(engine, bars, source="vendor")
    return engine


@pytest.fixture
def panel_reads(monkeypatch):
    """The store's panel reads (every price read of the dashboard goes through prices_panel)."""
    from qpo.store import market_data

    calls: list[tuple] = []
    real = market_data.prices_panel

    def counted(engine, tickers=None, *args, **kwargs):
        calls.append((tuple(tickers or ()), kwargs.get("actual", False)))
        return real(engine, tickers, *args, **kwargs)

    monkeypatch.setattr(market_data, "prices_panel", counted)
    return calls


def _board():
    from qpo.workbench.advisor import AdvisorDashboard

    return AdvisorDashboard(initial="Tech Tilt", lookback_days=60)


def _same_as_the_store(board, engine) -> None:
    from qpo.data import prices_to_returns
    from qpo.workbench.price_snapshot import read_store

    stored = read_store(engine, board.history_start)
    assert board.prices_origin == stored.origin == "store"
    pd.testing.assert_frame_equal(board.prices, stored.prices)
    pd.testing.assert_frame_equal(board.closes, stored.closes)
    returns = prices_to_returns(stored.benchmark.rename("SP500").to_frame())["SP500"]
    pd.testing.assert_series_equal(board.benchmark_history, returns)


def test_the_servers_snapshot_is_loaded_instead_of_the_store_and_gives_the_same_prices(store, panel_reads, qpo_home):
    from qpo.workbench import price_snapshot as snap

    assert snap.main() == 0  # what the server runs before it serves
    path = snap.snapshot_path(store)
    assert path.parent == qpo_home / "cache" and path.is_file()
    assert not list(path.parent.glob(".*.tmp"))  # written whole, then renamed
    reads = len(panel_reads)
    board = _board()
    assert len(panel_reads) == reads  # no panel read from the store: the snapshot's
    _same_as_the_store(board, store)
    assert not board.closes.equals(board.prices)  # the vendor's actual closes came through the snapshot
    kept = snap.load(path, snap.fingerprint(store))
    stored = snap.read_store(store)
    pd.testing.assert_series_equal(kept.benchmark, stored.benchmark)
    assert kept.benchmark.attrs == stored.benchmark.attrs == {"origin": "store"}
    # another first date is another file: read from the store
    from qpo.workbench.advisor import AdvisorDashboard

    later = AdvisorDashboard(initial="Tech Tilt", lookback_days=60, history_start="2020-01-01")
    assert len(panel_reads) > reads and later.prices.index[0] >= pd.Timestamp("2020-01-01")


def test_a_day_ingested_after_the_snapshot_is_the_day_shown(store, panel_reads, sp500):
    from qpo.store.market_data import upsert_panel
    from qpo.workbench import price_snapshot as snap

    first = _board()  # no snapshot yet: read from the store, and written for the next visits
    assert snap.snapshot_path(store).is_file() and panel_reads
    reads = len(panel_reads)
    _board()
    assert len(panel_reads) == reads
    day = pd.Timestamp("2022-12-30")
    assert first.prices.index[-1] < day
    new = (sp500.iloc[[-1]] * 1.01).set_axis(pd.DatetimeIndex([day], name="date"))
    assert upsert_panel(store, new, source="test") == new.shape[1]
    board = _board()
    assert len(panel_reads) > reads  # the snapshot held the older bars: the store was read
    assert board.prices.index[-1] == day and board.prices.loc[day, "AAPL"] == pytest.approx(sp500["AAPL"].iloc[-1] * 1.01)
    _same_as_the_store(board, store)
    reads = len(panel_reads)
    again = _board()  # the snapshot was written again, with the new day
    assert len(panel_reads) == reads and again.prices.index[-1] == day
    # a close corrected on a day already held (no new bar, no new date, maybe the same second)
    fixed = new.copy()
    fixed.loc[day, "MSFT"] *= 1.02
    assert upsert_panel(store, fixed, source="test") == 1
    board = _board()
    assert len(panel_reads) > reads and board.prices.loc[day, "MSFT"] == pytest.approx(fixed.loc[day, "MSFT"])
    _same_as_the_store(board, store)


@pytest.mark.parametrize("damage", ["garbage", "truncated", "flipped", "empty", "other store's"])
def test_a_corrupt_or_foreign_snapshot_falls_back_to_the_store(store, panel_reads, damage):
    from qpo.workbench import price_snapshot as snap

    _board()
    path = snap.snapshot_path(store)
    data = path.read_bytes()
    if damage == "garbage":
        path.write_bytes(b"not a snapshot at all" * 100)
    elif damage == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif damage == "flipped":  # one byte of the prices changed, the file otherwise whole
        middle = len(data) // 2
        path.write_bytes(data[:middle] + bytes([data[middle] ^ 0x55]) + data[middle + 1:])
    elif damage == "empty":
        path.write_bytes(b"")
    else:  # a whole snapshot of other prices, under another fingerprint
        other = snap.read_store(store)
        snap.save(snap.BookPanel(other.prices * 2, other.origin, other.closes * 2, other.benchmark), "another", path)
    reads = len(panel_reads)
    board = _board()
    assert len(panel_reads) > reads  # read from the store, silently
    _same_as_the_store(board, store)
    assert board.notice.value == ""
    reads = len(panel_reads)
    _board()  # and the file was written again, whole
    assert len(panel_reads) == reads


def test_no_snapshot_without_a_store_or_without_market_data(qpo_home, sp500, capsys, monkeypatch):
    from qpo.store import connect
    from qpo.workbench import price_snapshot as snap
    from qpo.workbench.demo import seed_demo

    assert snap.main() == 0
    assert "there is no store" in capsys.readouterr().out
    assert list(qpo_home.iterdir()) == []  # no store, no cache folder: nothing created
    monkeypatch.delenv("QPO_USER", raising=False)
    seed_demo(connect(), prices=sp500)  # a store without market data: the bundled panel
    assert snap.main() == 0 and "holds no market data" in capsys.readouterr().out
    board = _board()
    assert board.prices_origin == "bundled" and not (qpo_home / "cache").exists()


def test_the_server_writes_the_snapshot_before_it_serves(store, caplog):
    """dashboard_server's child process (as main runs it) writes the file and the server logs it."""
    import logging

    from qpo.workbench import dashboard_server
    from qpo.workbench.price_snapshot import snapshot_path

    log = logging.getLogger("qpo-test-server")
    with caplog.at_level(logging.INFO, logger="qpo-test-server"):
        dashboard_server._finish_snapshot(dashboard_server._start_snapshot(), log)
    said = [r.getMessage() for r in caplog.records]
    assert any(s.startswith("price snapshot: ") and "x 20 tickers to 2022-12-28" in s for s in said), said
    assert snapshot_path(store).is_file()
