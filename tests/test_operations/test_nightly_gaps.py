"""The nightly book on the nights real data brings (issue 19's audit): a partial day of prices
(half the names without a bar, no S&P 500 bar), a name listed inside the risk window, a night with
no new data (the failures: test_nightly_failures.py).

The partial day: stale names are risk-checked at their last price (return 0 on the day without a
bar: the numbers of the daily report on the carried-forward panel, to 1e-10), flagged stale in the
stored row, the summary and the report; a portfolio that cannot be checked is counted apart, never
as checked nor as "stopped breaching", and ``--fail-on-breach`` exits 1 for it."""
from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import select

import qpo
from qpo.book.synthetic import seed_book
from qpo.operations.cluster import dask_client
from qpo.operations.nightly import run_risk, run_valuation
from qpo.store import Actor, ClientPortfolio, connect, position, session_scope
from qpo.store.market_data import ingest_file, upsert_panel
from qpo.store.operations import book_risk_on, get_run, valuations_on
from tests.conftest import database_urls
from tests.test_store.book_stores import fresh_store_url

N = 24
ADMIN = Actor.system("test-nightly-gaps")
D0, D1 = dt.date(2022, 12, 28), dt.date(2022, 12, 29)
TOL = 1e-10
#: the last 800 days of the bundled panel (three years of risk window and a little more): a quick store
PANEL = qpo.load_prices("sp500").iloc[-800:]
INDEX = qpo.load_prices("sp500_index")[["SP500"]].iloc[-800:]
FRESH = list(PANEL.columns[:10])  # the names with a bar on D1
STALE = list(PANEL.columns[10:])  # the names without one (and no SP500 bar either)

@pytest.fixture(scope="module")
def client():
    with dask_client(2) as c:
        yield c


@pytest.fixture(params=database_urls())
def book(request, tmp_path):
    """A store holding the bundled market data (through the store) and a seeded book."""
    with fresh_store_url(request.param, tmp_path) as url:
        engine = connect(url)
        upsert_panel(engine, PANEL.join(INDEX), source="bundled")
        seed_book(engine, N, seed=11)
        yield engine, url


@pytest.fixture
def no_delivery(monkeypatch):
    for var in ("QPO_SMTP_HOST", "QPO_ALERT_WEBHOOK", "QPO_ALERT_RECIPIENTS", "QPO_DASK_SCHEDULER"):
        monkeypatch.delenv(var, raising=False)


def _names(engine) -> dict[int, str]:
    with session_scope(engine, write=False) as s:
        return dict(s.execute(select(ClientPortfolio.id, ClientPortfolio.name)).all())


def _holdings(engine, day) -> dict[int, pd.Series]:
    out = {}
    with session_scope(engine, write=False) as s:
        for pid, name in _names(engine).items():
            out[pid] = position(s, ADMIN, name, day).shares
    return out


def _ingest_partial_day(engine, tmp_path):
    """A bar on D1 for the first 10 names only (through `qpo data ingest`'s code: validated, then upserted)."""
    row = PANEL.iloc[-1][FRESH] * np.linspace(1.01, 1.03, len(FRESH))
    frame = pd.DataFrame([row.to_numpy()], columns=FRESH, index=pd.DatetimeIndex([pd.Timestamp(D1)], name="date"))
    path = tmp_path / "d1.csv"
    frame.to_csv(path)
    result = ingest_file(engine, path)
    assert result.ok and result.written == len(FRESH)
    return frame


def _text(path) -> str:
    import html
    import re

    page = open(path, encoding="utf-8").read()
    page = re.sub(r"<script.*?</script>|<style.*?</style>", "", page, flags=re.S)
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", page)))


def test_a_partial_day_is_checked_at_stale_prices_and_flagged(book, client, tmp_path, no_delivery):
    engine, _ = book
    names = _names(engine)
    run_valuation(D0, engine=engine, client=client)
    r0 = run_risk(D0, engine=engine, client=client, report_dir=tmp_path, deliver=False)
    assert r0.checked == N and r0.unchecked == {} and r0.breaches > 0 and r0.warnings == []
    before = book_risk_on(engine, D0).set_index("portfolio_id")
    breaching0 = set(before.index[before["breaches"] > 0])

    bar = _ingest_partial_day(engine, tmp_path)
    held = _holdings(engine, D1)
    with_stale = {pid for pid, sh in held.items() if set(sh.index) & set(STALE)}
    assert 0 < len(with_stale)

    val = run_valuation(engine=engine, client=client)  # the prices' last date is now D1
    assert val.as_of == D1 and val.valued == N and val.unpriced == 0 and val.stale == len(with_stale)
    held_stale = sorted(set().union(*(set(held[p].index) & set(STALE) for p in with_stale)))
    assert val.stale_tickers == {t: str(D0) for t in held_stale}
    assert any(w.startswith(f"stale prices: {len(held_stale)} held name(s) have no bar on {D1}") for w in val.warnings)
    # not valued at zero: a stale name at its last price (D0's close), a fresh one at D1's bar
    stored = valuations_on(engine, D1).set_index("portfolio_id")
    px = pd.concat([PANEL.iloc[[-1]], bar]).ffill().iloc[-1]
    for pid in sorted(with_stale)[:4]:
        with session_scope(engine) as s:
            pos = position(s, ADMIN, names[pid], D1)
        want = float((pos.shares * px[pos.shares.index]).sum()) + float(pos.cash)
        assert stored.loc[pid, "market_value"] == pytest.approx(want, rel=1e-12)
        assert sorted(stored.loc[pid, "stale"]) == sorted(set(pos.shares.index) & set(STALE))

    risk = run_risk(engine=engine, client=client, report_dir=tmp_path, deliver=False)
    # every portfolio checked (before the fix: each one holding a stale name skipped, "0 failed checks")
    assert risk.as_of == D1 and risk.checked == N and risk.unchecked == {} and risk.skipped == {}
    assert risk.stale == len(with_stale) and risk.breaches > 0
    table = book_risk_on(engine, D1).set_index("portfolio_id")
    assert table["compliant"].notna().all() and int(table["breaches"].sum()) == risk.breaches
    for pid in with_stale:  # flagged in the stored row
        assert table.loc[pid, "details"]["stale"] == {t: str(D0) for t in sorted(set(held[pid].index) & set(STALE))}
    # the numbers: the daily report of the carried-forward panel (a stale name's D1 return is 0), no benchmark
    from qpo.reporting.daily import daily_report

    carried = pd.concat([PANEL, bar]).ffill()
    assert table["beta"].isna().all()
    for pid in sorted(with_stale)[::max(1, len(with_stale) // 3)]:
        rep = daily_report(names[pid], carried, benchmark=None, engine=engine, sectors=qpo.load_sectors(),
                           n_scenarios=2000, actor=ADMIN).risk
        vt = rep.var_table
        want = {"volatility": rep.volatility, "var_historical": vt.loc["historical", "var"],
                "cvar_historical": vt.loc["historical", "cvar"], "var_parametric": vt.loc["normal", "var"],
                "max_drawdown": rep.max_drawdown, "worst_stress": float(np.nanmax(rep.stress["loss"]))}
        for column, value in want.items():
            assert abs(table.loc[pid, column] - value) <= TOL, (pid, column, table.loc[pid, column], value)
        assert int(table.loc[pid, "breaches"]) == len(rep.breaches)
    # beta: said loudly (summary, stored run, report), with the method the market shocks used
    note = f"beta not computed: no SP500 bar on {D1}; last benchmark date {D0}"
    assert any(w.startswith(note) for w in risk.warnings)
    assert note in risk.summary() and any(note in w for w in get_run(engine, risk.run_id)["details"]["warnings"])
    page = _text(risk.report)
    assert note in page and "own names equal-weighted instead of to the SP500" in page
    assert "market shocks -10 % and -20 % on each portfolio's beta to its own names equal-weighted" in page
    assert "market shocks -10 % and -20 % on each portfolio's beta to the SP500" in _text(r0.report)
    assert f"portfolios risk-checked {N} NOT risk-checked 0" in page
    assert f"checked at stale prices {len(with_stale)} portfolios" in page
    # stopped breaching: only a checked portfolio found compliant (here every one is checked)
    after = set(table.index[table["breaches"] > 0])
    stopped = breaching0 - after
    assert f"{len(stopped)} stopped" in page
    assert all(bool(table.loc[p, "compliant"]) for p in stopped)

    # a night with no new data: the same date again is said, and still runs
    again = run_valuation(engine=engine, client=client)
    assert again.as_of == D1 and again.warnings[0].startswith(f"no new market data since {D1}")
    assert "WARNING: no new market data since" in again.summary()
    risk2 = run_risk(engine=engine, client=client, report_dir=tmp_path, deliver=False)
    assert risk2.warnings[0].startswith(f"no new market data since {D1}")
    assert f"no new market data since {D1}" in _text(risk2.report)
    assert not any("no new market data" in w for w in risk.warnings)  # D1 was new then


def test_a_portfolio_that_cannot_be_checked_is_unknown_not_a_pass(book, client, tmp_path, no_delivery, monkeypatch,
                                                                   capsys):
    engine, url = book
    names = _names(engine)
    run_valuation(D0, engine=engine, client=client)
    run_risk(D0, engine=engine, client=client, report_dir=tmp_path, deliver=False)
    before = book_risk_on(engine, D0).set_index("portfolio_id")
    pid = int(before.index[before["breaches"] > 0][0])  # a breaching portfolio ...
    # ... buys a name listed inside the risk window (its returns start on 2022-12-20): it cannot be checked
    listed = pd.DataFrame({"NEWCO": np.linspace(10.0, 11.0, 8)},
                          index=pd.DatetimeIndex(PANEL.index[-8:], name="date"))
    upsert_panel(engine, listed)
    from qpo.store import add_transaction

    with session_scope(engine) as s:
        add_transaction(s, ADMIN, names[pid], "deposit", trade_date=D0, amount=1_000.0)
        add_transaction(s, ADMIN, names[pid], "buy", trade_date=D0, ticker="NEWCO", quantity=10, price=11.0,
                        known_tickers=set(PANEL.columns) | {"NEWCO"})
    val = run_valuation(D0, engine=engine, client=client)
    assert val.valued == N  # priced: NEWCO has a price on D0
    risk = run_risk(D0, engine=engine, client=client, report_dir=tmp_path, deliver=False)
    assert risk.checked == N - 1 and list(risk.unchecked) == [pid] and "NEWCO" in risk.unchecked[pid]
    assert risk.portfolios == N
    assert any(w.startswith(f"1 portfolio(s) holding names were NOT risk-checked on {D0}") for w in risk.warnings)
    stored = book_risk_on(engine, D0).set_index("portfolio_id")
    assert stored.loc[pid, "compliant"] is None or pd.isna(stored.loc[pid, "compliant"])
    page = _text(risk.report)
    assert f"portfolios risk-checked {N - 1} NOT risk-checked 1 (compliance unknown, not a pass)" in page
    assert f"Not risk-checked (1): compliance unknown portfolio advisor why {names[pid]}" in page
    # its open alerts stay as they were (not resolved: nothing was evaluated)
    assert not any(a["portfolio_id"] == pid for a in risk.alerts["resolved"])

    # the report against the previous date: not "stopped breaching", but unknown
    from qpo.reporting.book import book_report

    rep = book_report(D0, stored, previous=before, previous_as_of="2022-12-27", names=None,
                      unchecked=risk.unchecked)
    assert rep.summary["changes_stopped_breaching"] == 0 and rep.summary["changes_unknown_breaching"] == 1
    assert rep.summary["portfolios"] == N - 1 and rep.summary["unchecked"] == 1
    text = _text_of(rep.page)
    assert "1 breaching then and NOT checked now (unknown)" in text
    assert "No compliance breach" not in text

    # the command line: --fail-on-breach exits 1 for a portfolio left unchecked, even with no new alert
    if engine.dialect.name != "sqlite":
        return
    from qpo.cli import main

    monkeypatch.setenv("QPO_DATABASE_URL", url)
    monkeypatch.setenv("QPO_RUNS_DIR", str(tmp_path / "runs"))
    capsys.readouterr()
    assert main(["nightly", "risk", "--as-of", str(D0), "--workers", "1", "--fail-on-breach"]) == 1
    captured = capsys.readouterr()
    assert "0 new breach" not in captured.err
    assert "1 valued portfolio(s) NOT risk-checked (compliance unknown) on 2022-12-28 (--fail-on-breach): exit 1" \
        in captured.err
    assert captured.out.count("risk-checked 23, NOT risk-checked 1") == 1  # the summary once, on stdout
    assert "risk-checked 23, NOT" not in captured.err
    assert main(["nightly", "value", "--workers", "1", "--fail-on-breach"]) == 2
    assert "--fail-on-breach applies to `qpo nightly risk`" in capsys.readouterr().err


def _text_of(page: str) -> str:
    import html
    import re

    page = re.sub(r"<script.*?</script>|<style.*?</style>", "", page, flags=re.S)
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", page)))
