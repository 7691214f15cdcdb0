"""The nightly book's edges found by issue 19's audit: an empty book (a fresh store) valued and
risk-checked without a failure every night, and a name whose bars stopped long ago treated as
unpriced (not carried at a frozen price that drags VaR and volatility down) past the staleness cap,
while a name stale within the cap is carried as before."""
from __future__ import annotations

import datetime as dt
import json

import pandas as pd
import pytest
from sqlalchemy import text

import qpo
from qpo.book.synthetic import seed_book
from qpo.operations.cluster import dask_client
from qpo.operations.nightly import run_risk, run_valuation
from qpo.store import Actor, connect, position, session_scope
from qpo.store.market_data import upsert_panel
from qpo.store.operations import book_risk_on, get_run, valuations_on
from tests.conftest import database_urls
from tests.test_store.book_stores import fresh_store_url

N = 24
ADMIN = Actor.system("test-nightly-edges")
D0 = dt.date(2022, 12, 28)
PANEL = qpo.load_prices("sp500").iloc[-800:]
INDEX = qpo.load_prices("sp500_index")[["SP500"]].iloc[-800:]


@pytest.fixture(scope="module")
def client():
    with dask_client(2) as c:
        yield c


@pytest.fixture
def no_delivery(monkeypatch):
    for var in ("QPO_SMTP_HOST", "QPO_ALERT_WEBHOOK", "QPO_ALERT_RECIPIENTS", "QPO_DASK_SCHEDULER"):
        monkeypatch.delenv(var, raising=False)


# -- an empty book ------------------------------------------------------------------------------------
def test_an_empty_book_is_valued_and_risk_checked_with_exit_0(tmp_path, monkeypatch, capsys, no_delivery):
    """A fresh `qpo db upgrade`: `qpo nightly value` finishes with 0 portfolios, and `qpo nightly risk`
    then accepts the date (its valuation run FINISHED, with no row) and reports an empty book, exit 0
    (it used to exit 2, "run qpo nightly value first", every night under the scheduler)."""
    from qpo.cli import main

    monkeypatch.setenv("QPO_DATABASE_URL", f"sqlite:///{tmp_path / 'store.db'}")
    monkeypatch.setenv("QPO_RUNS_DIR", str(tmp_path / "runs"))
    assert main(["db", "upgrade"]) == 0
    capsys.readouterr()
    # a risk run before any valuation is still refused
    assert main(["nightly", "risk", "--workers", "1"]) == 2
    assert "run `qpo nightly value --as-of 2022-12-28` first" in capsys.readouterr().err
    assert main(["nightly", "value", "--workers", "1"]) == 0
    out = capsys.readouterr().out
    assert "the book is empty: no portfolio to value on 2022-12-28" in out and "valued 0" in out
    assert main(["nightly", "risk", "--workers", "1", "--json", "--fail-on-breach"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["kind"] == "risk" and result["portfolios"] == 0 and result["checked"] == 0
    assert result["unchecked"] == {} and result["new_alerts"] == 0
    page = open(result["report"], encoding="utf-8").read()
    assert "the book is empty: no portfolio to risk-check on 2022-12-28" in page
    assert main(["nightly", "risk", "--workers", "1"]) == 0
    assert "the book is empty: no portfolio to risk-check on 2022-12-28" in capsys.readouterr().out
    engine = connect()
    assert get_run(engine, result["run_id"])["status"] == "FINISHED"


# -- the staleness cap --------------------------------------------------------------------------------
@pytest.fixture(params=database_urls())
def book(request, tmp_path):
    """The bundled market data's last 800 days and a seeded book; then the most held name loses its
    last 10 bars (its bars stop 10 trading days before D0) and the second most held its last 3."""
    with fresh_store_url(request.param, tmp_path) as url:
        engine = connect(url)
        upsert_panel(engine, PANEL.join(INDEX), source="bundled")
        seed_book(engine, N, seed=11)
        with session_scope(engine) as s:
            names = dict(s.execute(text("SELECT id, name FROM portfolios")).all())
            held = {pid: position(s, ADMIN, name, D0).shares for pid, name in names.items()}
        counts = pd.Series([t for shares in held.values() for t in shares[shares != 0].index]).value_counts()
        gone, late = str(counts.index[0]), str(counts.index[1])
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM market_data WHERE ticker = :t AND date > :d"),
                         {"t": gone, "d": PANEL.index[-11].date()})
            conn.execute(text("DELETE FROM market_data WHERE ticker = :t AND date > :d"),
                         {"t": late, "d": PANEL.index[-4].date()})
        holders = {pid for pid, shares in held.items() if shares.get(gone, 0) != 0}
        late_only = {pid for pid, shares in held.items() if shares.get(late, 0) != 0} - holders
        yield engine, gone, late, holders, late_only


def test_a_name_without_bars_for_10_days_is_unpriced_not_frozen(book, client, tmp_path, no_delivery):
    engine, gone, late, holders, late_only = book
    last_gone, last_late = PANEL.index[-11].date().isoformat(), PANEL.index[-4].date().isoformat()
    assert holders and late_only
    val = run_valuation(D0, engine=engine, client=client)
    assert val.unpriced_stale == {gone: last_gone} and val.max_stale_days == 5
    assert val.unpriced == len(holders) and val.valued == N - len(holders)
    assert val.stale_tickers == {late: last_late}  # 3 days: within the cap, carried and flagged as before
    note = next(w for w in val.warnings if w.startswith("no price for more than 5 trading days"))
    assert f"{gone} (last bar {last_gone}, 10 trading days before)" in note
    assert f"{len(holders)} portfolio(s) holding them are unpriced" in note
    rows = valuations_on(engine, D0).set_index("portfolio_id")
    for pid in holders:
        assert rows.loc[pid, "status"] == "unpriced" and rows.loc[pid, "market_value"] is None or \
            pd.isna(rows.loc[pid, "market_value"])
        assert gone in rows.loc[pid, "unpriced"]
    for pid in late_only:
        assert rows.loc[pid, "status"] == "valued" and late in rows.loc[pid, "stale"]
    assert get_run(engine, val.run_id)["details"]["unpriced_stale"] == {gone: last_gone}

    risk = run_risk(D0, engine=engine, client=client, report_dir=tmp_path, deliver=False)
    assert set(risk.unchecked) == holders
    for pid in holders:
        assert f"{gone} (last {last_gone})" in risk.unchecked[pid] and "frozen price" in risk.unchecked[pid]
    assert risk.checked == N - len(holders) and risk.unpriced_stale == {gone: last_gone}
    stored = book_risk_on(engine, D0).set_index("portfolio_id")
    assert not (set(stored.index[stored["compliant"].notna()]) & holders)  # none checked at a frozen price
    assert set(late_only) <= set(stored.index[stored["compliant"].notna()])  # within the cap: checked as before
    as_json = json.loads(risk.to_json())
    assert as_json["unpriced_stale"] == {gone: last_gone} and as_json["max_stale_days"] == 5
    page = open(risk.report, encoding="utf-8").read()
    assert gone in page and last_gone in page

    # a wider cap: the name is carried at its last price again (stale), its portfolios valued and checked
    val = run_valuation(D0, engine=engine, client=client, max_stale_days=10)
    assert val.unpriced_stale == {} and val.unpriced == 0 and val.stale_tickers == {gone: last_gone, late: last_late}
    risk = run_risk(D0, engine=engine, client=client, report_dir=tmp_path, deliver=False, max_stale_days=10)
    assert risk.checked == N and not risk.unchecked


def test_the_cli_takes_max_stale_days(tmp_path, monkeypatch, capsys):
    from qpo.cli import main
    from qpo.cli.nightly import MAX_STALE_DAYS
    from qpo.operations._tasks import MAX_STALE_DAYS as DEFAULT

    assert MAX_STALE_DAYS == DEFAULT == 5
    assert main(["nightly", "value", "--max-stale-days", "-1"]) == 2
    assert "argument --max-stale-days: must be a whole number of trading days of at least 0, got '-1'" in capsys.readouterr().err
    from qpo.errors import InvalidValueError

    with pytest.raises(InvalidValueError, match="max_stale_days must be a whole number"):
        run_valuation(max_stale_days=2.5)


# -- who to name with --as after `qpo db seed --book N` --------------------------------------------------
def test_the_seed_names_its_users_and_the_hint_an_existing_admin(tmp_path, monkeypatch, capsys):
    """`qpo db seed --book N` on a fresh home adds advisors and no admin: its summary (text and
    --json) names them and says how to get an admin; `qpo alerts` without --as then names no
    e-mail that does not exist (it used to hint admin@example.com), and an admin once there is one."""
    from qpo.cli import main

    monkeypatch.setenv("QPO_DATABASE_URL", f"sqlite:///{tmp_path / 'store.db'}")
    monkeypatch.delenv("QPO_USER", raising=False)
    assert main(["db", "seed", "--book", "3"]) == 0
    out = capsys.readouterr().out
    advisors = [f"advisor0{i}@book.example.com" for i in (1, 2, 3)]
    assert f"users added: {', '.join(advisors)}" in out
    assert "this store has no admin" in out and "qpo user add EMAIL --name NAME --role admin --as system" in out
    assert f"`--as {advisors[0]}` sees that advisor's clients" in out
    assert main(["alerts"]) == 4
    err = capsys.readouterr().err
    assert "admin@example.com" not in err
    assert "this store has no admin: its operator adds one with `qpo user add EMAIL --name NAME --role admin --as " \
           "system`" in err and advisors[0] in err
    # the advice works: the advisor named sees the alerts (none yet)
    assert main(["alerts", "--as", advisors[0], "--json"]) == 0
    capsys.readouterr()
    assert main(["user", "add", "boss@example.com", "--name", "Boss", "--role", "admin", "--as", "system"]) == 0
    capsys.readouterr()
    assert main(["alerts"]) == 4
    assert "an admin of this store sees the whole book: --as boss@example.com" in capsys.readouterr().err
    assert main(["db", "seed", "--book", "2", "--seed", "5", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["users_added"] == [] and doc["admins"] == ["boss@example.com"] and doc["use_as"] == "boss@example.com"
    assert doc["advisors"] == advisors and "--as boss@example.com" in doc["hint"]
    assert main(["db", "url", "--json"]) == 2
    assert "--json goes with `qpo db seed --book N`" in capsys.readouterr().err


def test_an_empty_store_hint_says_to_add_the_first_admin(tmp_path, monkeypatch, capsys):
    from qpo.cli import main

    monkeypatch.setenv("QPO_DATABASE_URL", f"sqlite:///{tmp_path / 'store.db'}")
    monkeypatch.delenv("QPO_USER", raising=False)
    assert main(["db", "upgrade"]) == 0
    assert main(["alerts"]) == 4
    err = capsys.readouterr().err
    assert "no users yet: add its first admin with `qpo user add EMAIL --name NAME --role admin`" in err


# -- each portfolio's own benchmark -------------------------------------------------------------------
@pytest.fixture
def bench_book(tmp_path):
    with fresh_store_url("sqlite", tmp_path) as url:
        engine = connect(url)
        upsert_panel(engine, PANEL.join(INDEX), source="bundled")
        seed_book(engine, 12, seed=3)
        yield engine


def test_beta_is_against_the_portfolios_own_benchmark_where_it_has_prices(bench_book, client, tmp_path,
                                                                          no_delivery):
    """Two portfolios benchmarked to AAPL (prices in the store) get their beta and market shocks
    against AAPL: the numbers the daily report gives with benchmark=AAPL, to 1e-10; one to a
    benchmark without prices is measured against the SP500, said; the rest against the SP500 as before."""
    from qpo.reporting.daily import daily_report

    engine = bench_book
    with engine.begin() as conn:
        ids = [int(i) for i in conn.execute(text("SELECT id FROM portfolios ORDER BY id")).scalars()]
        conn.execute(text("UPDATE portfolios SET benchmark = 'AAPL' WHERE id IN (:a, :b)"), {"a": ids[0], "b": ids[1]})
        conn.execute(text("UPDATE portfolios SET benchmark = 'NOPRICES' WHERE id = :c"), {"c": ids[2]})
        names = dict(conn.execute(text("SELECT id, name FROM portfolios")).all())
    from qpo.store import ClientPortfolio

    with session_scope(engine) as s:  # no benchmark of its own, its strategy's: MSFT (it was measured to the SP500)
        held = s.get(ClientPortfolio, ids[4])
        held.benchmark, held.strategy = None, {**(held.strategy or {"schema_version": 1}), "benchmark": "MSFT"}
    run_valuation(D0, engine=engine, client=client)
    risk = run_risk(D0, engine=engine, client=client, report_dir=tmp_path, deliver=False)
    assert risk.benchmarks == {"AAPL": 2, "MSFT": 1, "SP500": 9}
    assert not any("(nan)" in w or "nan" in w.split("instead")[0] for w in risk.warnings), risk.warnings
    note = next(w for w in risk.warnings if w.startswith("1 portfolio(s) have a benchmark without prices"))
    assert "NOPRICES" in note and "against the SP500 instead" in note
    assert "beta and market shocks against AAPL (2), MSFT (1), SP500 (9)" in risk.summary()
    table = book_risk_on(engine, D0).set_index("portfolio_id")
    assert table.loc[ids[0], "details"]["benchmark"] == "AAPL" and table.loc[ids[3], "details"]["benchmark"] == "SP500"
    prices = PANEL
    for pid, bench in ((ids[0], PANEL["AAPL"]), (ids[1], PANEL["AAPL"]), (ids[2], INDEX["SP500"]),
                       (ids[3], INDEX["SP500"]), (ids[4], PANEL["MSFT"])):
        rep = daily_report(names[pid], prices, benchmark=bench, engine=engine, sectors=qpo.load_sectors(),
                           n_scenarios=2000, actor=ADMIN).risk
        assert abs(table.loc[pid, "beta"] - rep.benchmark["beta"]) <= 1e-10, (pid, table.loc[pid, "beta"])
        assert abs(table.loc[pid, "worst_stress"] - float(max(rep.stress["loss"].dropna()))) <= 1e-10
    # AAPL's beta differs from the SP500's: the benchmark used matters
    sp = daily_report(names[ids[0]], prices, benchmark=INDEX["SP500"], engine=engine, sectors=qpo.load_sectors(),
                      n_scenarios=2000, actor=ADMIN).risk.benchmark["beta"]
    assert abs(table.loc[ids[0], "beta"] - sp) > 0.01
    page = open(risk.report, encoding="utf-8").read()
    assert "beta to its benchmark: AAPL (2 portfolios), MSFT (1 portfolios), SP500 (9 portfolios)" in page


def test_a_portfolio_that_sells_everything_has_its_alerts_checked_on_cash(tmp_path, client, no_delivery):
    """A portfolio that sold its last shares was skipped ("holds no shares") and its open alerts
    stayed open for good: its 100 % in one name, long sold, was still a breach to acknowledge."""
    from qpo.store import add_transaction, add_user, create_portfolio
    from qpo.store.alerts import list_alerts

    engine = connect(f"sqlite:///{tmp_path / 'store.db'}")
    upsert_panel(engine, PANEL.join(INDEX), source="bundled")
    d_prev = PANEL.index[-2].date()
    with session_scope(engine) as s:
        add_user(s, ADMIN, "ana@edges.test", "Ana", "advisor")
        create_portfolio(s, ADMIN, "Solo", "Client Solo", "ana@edges.test", holdings={"AAPL": 100.0},
                         trade_date=PANEL.index[-40].date())
    run_valuation(d_prev, engine=engine, client=client)
    run_risk(d_prev, engine=engine, client=client, report_dir=tmp_path, deliver=False)
    opened = {a["check"]: a["state"] for a in list_alerts(engine, actor=ADMIN)}
    assert opened == {"max single name": "new", "min names": "new", "sector Information Technology": "new",
                      "VaR (historical)": "new"}, opened
    with session_scope(engine) as s:
        add_transaction(s, ADMIN, "Solo", "sell", trade_date=D0, ticker="AAPL", quantity=100.0,
                        price=float(PANEL["AAPL"].iloc[-1]))
    run_valuation(D0, engine=engine, client=client)
    result = run_risk(D0, engine=engine, client=client, report_dir=tmp_path, deliver=False)
    assert result.unchecked == {}
    states = {a["check"]: a["state"] for a in list_alerts(engine, actor=ADMIN)}
    assert states == {"max single name": "resolved", "min names": "new", "sector Information Technology": "resolved",
                      "VaR (historical)": "resolved"}, states  # cash holds no name at all: min names stays
    row = book_risk_on(engine, D0).iloc[0]
    assert row["volatility"] == 0.0 and row["var_historical"] == 0.0 and not row["compliant"]


def test_names_without_a_sector_are_said_not_alerted_and_a_stored_map_caps_them(tmp_path, client, no_delivery):
    """A book of names the bundled map does not know had every portfolio breach 'sector
    Unclassified' (1,989 alerts of 2,000 portfolios on 300 real tickers). Now: no such alert, a
    warning with the way out; once `qpo data sectors` has stored the map, the real sector caps act."""
    from qpo.store import add_user, create_portfolio
    from qpo.store.alerts import list_alerts
    from qpo.store.sectors import upsert_sectors

    engine = connect(f"sqlite:///{tmp_path / 'store.db'}")
    renamed = PANEL[["AAPL", "MSFT", "AMD", "KO"]].rename(columns=lambda t: f"X{t}")  # names no map knows
    upsert_panel(engine, renamed.join(INDEX), source="file")
    with session_scope(engine) as s:
        add_user(s, ADMIN, "ana@edges.test", "Ana", "advisor")
        create_portfolio(s, ADMIN, "Unmapped", "Client U", "ana@edges.test",
                         holdings={"XAAPL": 100.0, "XMSFT": 100.0, "XAMD": 100.0, "XKO": 50.0},
                         trade_date=PANEL.index[-40].date(), strategy={"schema_version": 1, "limits": {
                             "sector_max": 0.4, "max_weight": 0.9}})
    run_valuation(D0, engine=engine, client=client)
    result = run_risk(D0, engine=engine, client=client, report_dir=tmp_path, deliver=False)
    assert [a["check"] for a in list_alerts(engine, actor=ADMIN)] == []
    assert any("hold names without a sector" in w and "qpo data sectors FILE" in w for w in result.warnings)
    compliance = book_risk_on(engine, D0).iloc[0]["details"]["compliance"]
    assert [(c["check"], c["passed"]) for c in compliance if c["check"].startswith("sector")] == [
        ("sector Unclassified", None)]
    upsert_sectors(engine, {"XAAPL": "Information Technology", "XMSFT": "Information Technology",
                            "XAMD": "Information Technology", "XKO": "Consumer Staples"})
    result = run_risk(D0, engine=engine, client=client, report_dir=tmp_path, deliver=False)
    assert [a["check"] for a in list_alerts(engine, actor=ADMIN)] == ["sector Information Technology"]
    assert not any("without a sector" in w for w in result.warnings)


def test_the_staleness_cap_counts_the_weekdays_a_store_missed_not_a_holiday():
    """A store that missed three weeks of bars (only one name came in on 2023-01-20): a name last
    priced on 2022-12-28 is 17 trading days old, not 2 panel dates; an exchange holiday (no date on
    Thanksgiving) is not a trading day."""
    import pandas as pd

    from qpo.operations._tasks import past_stale_cap

    days = pd.bdate_range("2022-12-01", "2022-12-30").append(pd.DatetimeIndex(["2023-01-20"]))
    prices = pd.DataFrame({"A": 1.0, "B": 1.0}, index=days)
    prices.loc["2022-12-29":, "A"] = float("nan")
    prices.loc["2022-12-30", "B"] = float("nan")
    assert past_stale_cap(prices, pd.Timestamp("2023-01-20"), 5) == {"A": {"last": "2022-12-28", "days": 17}}
    assert past_stale_cap(prices, pd.Timestamp("2022-12-30"), 5) == {}  # two dates old: carried
    autumn = pd.bdate_range("2022-11-14", "2022-11-30").drop(pd.Timestamp("2022-11-24"))
    held = pd.DataFrame({"A": 1.0}, index=autumn)
    held.loc["2022-11-22":, "A"] = float("nan")
    assert past_stale_cap(held, autumn[-1], 6) == {}  # 6 trading days: 22, 23, 25, 28, 29, 30
    assert past_stale_cap(held, autumn[-1], 5) == {"A": {"last": "2022-11-21", "days": 6}}


def test_a_stored_strategy_this_qpo_refuses_leaves_its_portfolio_unchecked_not_the_run(tmp_path, client, no_delivery):
    """A strategy stored by an older qpo with a limit of 3 (meant as 3 %: it never breached), which
    this one refuses on reading: its portfolio is reported not checked, with why and the way out;
    the others are checked (before the refusal it crashed the whole chunk's risk run)."""
    from sqlalchemy import update

    from qpo.store import ClientPortfolio, add_user, create_portfolio

    engine = connect(f"sqlite:///{tmp_path / 'store.db'}")
    upsert_panel(engine, PANEL.join(INDEX), source="bundled")
    with session_scope(engine) as s:
        add_user(s, ADMIN, "ana@edges.test", "Ana", "advisor")
        for name, held in (("Old", {"AAPL": 10.0, "KO": 50.0}), ("New", {"MSFT": 10.0, "PEP": 20.0})):
            create_portfolio(s, ADMIN, name, f"Client {name}", "ana@edges.test", holdings=held,
                             trade_date=PANEL.index[-40].date())
    with engine.begin() as conn:
        conn.execute(update(ClientPortfolio).where(ClientPortfolio.name == "Old")
                     .values(strategy={"schema_version": 1, "limits": {"var_limit": 3}}))
    run_valuation(D0, engine=engine, client=client)
    result = run_risk(D0, engine=engine, client=client, report_dir=tmp_path, deliver=False)
    assert result.checked == 1 and len(result.unchecked) == 1
    why = next(iter(result.unchecked.values()))
    assert "its stored strategy does not read (strategy limits.var_limit: must be a finite number > 0 and <= 1" in why
    assert "`qpo portfolio update Old --strategy FILE`" in why
