"""The served dashboard's price snapshot, end to end: `qpo dashboard advisor` writes it before it
serves, a visit's kernel loads it (the file is not written again), and a day ingested while the
server runs is the day the next visit shows (its kernel reads the store and writes the file again)."""
from __future__ import annotations

import sys

import pandas as pd
import pytest

from tests.servers import free_port, give_passwords, serving, signed_in_opener, visit_dashboard
from tests.test_workbench.test_dashboard_login import ANA, _records


def _volatility(url: str) -> float:
    page = visit_dashboard(signed_in_opener(url, ANA), url, timeout=300)
    rec = _records(page)
    assert rec.get("portfolio") == "Balanced Growth", page[-2000:]
    return float(rec["volatility"])


def test_a_visit_loads_the_servers_snapshot_and_a_newer_day_is_still_the_day_shown(qpo_home, sp500, monkeypatch):
    import qpo
    from qpo.store import connect
    from qpo.store.market_data import upsert_panel
    from qpo.workbench import price_snapshot as snap
    from qpo.workbench.advisor import AdvisorDashboard
    from qpo.workbench.demo import seed_demo

    monkeypatch.delenv("QPO_USER", raising=False)
    engine = connect()
    seed_demo(engine, prices=sp500)
    upsert_panel(engine, sp500.loc["2018-01-01":].join(qpo.load_prices("sp500_index")[["SP500"]], how="left"))
    give_passwords(engine)
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    log = qpo_home / "voila.log"
    path = snap.snapshot_path(engine)
    with serving([sys.executable, "-m", "qpo.cli", "dashboard", "advisor", "--port", str(port)],
                 url + "voila/static/voila.js", log):
        assert "price snapshot: " in log.read_text() and path.is_file()  # written before it served
        written = path.stat().st_mtime_ns
        before = _volatility(url)
        assert path.stat().st_mtime_ns == written  # loaded, not read from the store and written again
        # a newer day, ingested while the server runs (a big move: the risk numbers change)
        day = pd.Timestamp("2022-12-30")
        upsert_panel(engine, (sp500.iloc[[-1]] * 1.15).set_axis(pd.DatetimeIndex([day], name="date")))
        after = _volatility(url)
        assert path.stat().st_mtime_ns != written  # the visit read the store and wrote the file again
        assert snap.load(path, snap.fingerprint(engine)) is not None
    board = AdvisorDashboard(initial="Balanced Growth", lookback_days=756, actor=ANA)
    assert board.prices.index[-1] == day
    assert after == pytest.approx(board.report.volatility, rel=1e-9) and after != pytest.approx(before, rel=1e-6)
