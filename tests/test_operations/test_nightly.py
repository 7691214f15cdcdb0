"""The nightly runs on Dask (qpo.operations.nightly): a seeded book of 60 portfolios valued and then
risk-checked on a LocalCluster of two worker processes, on SQLite and PostgreSQL; the stored
numbers are the ones qpo.risk_report (through the daily report) gives each portfolio; a risk run
needs the date's valuation; a rerun replaces; alerts follow a breach through its life; the CLI's
--fail-on-breach exit status."""
from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import func, select

import qpo
from qpo.book.strategy import Strategy
from qpo.book.synthetic import seed_book
from qpo.operations.cluster import dask_client
from qpo.operations.nightly import NotValuedError, run_risk, run_valuation
from qpo.store import Actor, OpsRun, Valuation, connect, position, session_scope, update_portfolio
from qpo.store.operations import book_risk_on, valuations_on
from tests.conftest import database_urls
from tests.test_operations import test_delivery
from tests.test_store.book_stores import fresh_store_url

N = 60
ADMIN = Actor.system("test-nightly")
TOL = 1e-10


@pytest.fixture(scope="module")
def client():
    """One LocalCluster of two one-thread worker processes for the module's runs."""
    with dask_client(2) as c:
        yield c


@pytest.fixture(params=database_urls())
def book(request, tmp_path):
    """A store (SQLite file, or a private schema of the test PostgreSQL) holding a seeded book."""
    with fresh_store_url(request.param, tmp_path) as url:
        engine = connect(url)
        summary = seed_book(engine, N, seed=7)
        yield engine, url, summary


def _names(engine) -> dict[int, str]:
    with session_scope(engine) as s:
        from qpo.store import ClientPortfolio

        return dict(s.execute(select(ClientPortfolio.id, ClientPortfolio.name)).all())


def test_value_then_risk_equals_the_daily_report(book, client):
    engine, _, summary = book
    prices = qpo.load_prices("sp500")
    day = prices.index[-1]
    val = run_valuation(engine=engine, client=client)
    assert (val.as_of, val.portfolios, val.price_source) == (day.date(), N, "bundled")
    assert val.valued == N and val.unpriced == 0 and val.workers == 2
    stored = valuations_on(engine, day.date()).set_index("portfolio_id")
    assert len(stored) == N and (stored["status"] == "valued").all()
    names = _names(engine)
    # market value = the ledger's shares at the day's closes + its cash, by hand for a sample
    for pid in list(stored.index)[::15]:
        with session_scope(engine) as s:
            pos = position(s, ADMIN, names[pid], day.date())
        value = float((pos.shares * prices.loc[day, pos.shares.index]).sum()) + float(pos.cash)
        assert stored.loc[pid, "market_value"] == pytest.approx(value, rel=1e-12)
        assert stored.loc[pid, "cash"] == pytest.approx(float(pos.cash), abs=1e-6)

    risk = run_risk(engine=engine, client=client)
    assert risk.as_of == day.date() and risk.portfolios == N and risk.skipped == {}
    table = book_risk_on(engine, day.date()).set_index("portfolio_id")
    assert len(table) == N and int(table["breaches"].sum()) == risk.breaches
    assert risk.new_alerts == risk.breaches > 0  # the synthetic book's tight mandates: breaches, each a new alert
    # the numbers the daily report (qpo.risk_report) gives each portfolio of a sample, to 1e-10
    from qpo.reporting.daily import daily_report

    index = qpo.load_prices("sp500_index")["SP500"]
    for pid in list(table.index)[::20]:
        rep = daily_report(names[pid], prices, benchmark=index, engine=engine, sectors=qpo.load_sectors(),
                           n_scenarios=2000, actor=ADMIN).risk
        vt = rep.var_table
        want = {"volatility": rep.volatility, "var_historical": vt.loc["historical", "var"],
                "cvar_historical": vt.loc["historical", "cvar"], "var_parametric": vt.loc["normal", "var"],
                "cvar_parametric": vt.loc["normal", "cvar"], "beta": rep.benchmark["beta"],
                "max_drawdown": rep.max_drawdown, "worst_stress": float(np.nanmax(rep.stress["loss"]))}
        for column, value in want.items():
            assert abs(table.loc[pid, column] - value) <= TOL, (pid, column, table.loc[pid, column], value)
        assert int(table.loc[pid, "breaches"]) == len(rep.breaches)
        assert bool(table.loc[pid, "compliant"]) == (not rep.breaches)
    # the book report: breaches first, then the distribution, the worst, the changes, the pricing
    page = open(risk.report, encoding="utf-8").read()
    order = [page.index(h) for h in ("COMPLIANCE BREACHES", "Risk across the book", "Worst portfolios",
                                     "Changes since the previous risk date", "Unpriced and stale portfolios")]
    assert order == sorted(order) and "<script src=" not in page  # plotly.js inlined
    assert "No earlier risk run is stored" in page
    # each run recorded as FINISHED with its counts
    with session_scope(engine) as s:
        runs = s.execute(select(OpsRun.kind, OpsRun.status, OpsRun.portfolios).order_by(OpsRun.id)).all()
    assert [tuple(r) for r in runs] == [("valuation", "FINISHED", N), ("risk", "FINISHED", N)]


def test_risk_needs_the_valuation_and_a_rerun_replaces(book, client):
    engine, _, _ = book
    prices = qpo.load_prices("sp500")
    day = prices.index[-2].date()
    with pytest.raises(NotValuedError, match=rf"no valuation of {day}.*run `qpo nightly value --as-of {day}` first"):
        run_risk(day, engine=engine, client=client)
    with session_scope(engine) as s:  # refused before anything was written: not even a run row
        assert s.scalar(select(func.count(OpsRun.id))) == 0
    first = run_valuation(day, engine=engine, client=client, chunk_size=7)
    assert first.chunks == math.ceil(N / 7)
    again = run_valuation(day, engine=engine, client=client)
    with session_scope(engine) as s:
        assert s.scalar(select(func.count(Valuation.id)).where(Valuation.as_of == day)) == N
        assert set(s.scalars(select(Valuation.run_id).where(Valuation.as_of == day))) == {again.run_id}
    # a date outside the prices: said, with what to do
    with pytest.raises(qpo.errors.DataError, match="outside the data.*ingest newer prices"):
        run_valuation("2030-01-02", engine=engine, client=client)


def test_a_breach_is_one_alert_until_the_limit_is_fixed(book, client, tmp_path):
    engine, _, _ = book
    prices = qpo.load_prices("sp500")
    d1, d2 = prices.index[-2].date(), prices.index[-1].date()
    names = _names(engine)
    pid = min(names)
    tight = Strategy.default().with_overrides(limits={"var_limit": 0.0005})  # a VaR of 0.05 %: surely breached
    loose = Strategy.default().with_overrides(limits={"var_limit": 0.5})
    with session_scope(engine) as s:
        update_portfolio(s, ADMIN, names[pid], strategy=tight.to_json())

    def alerts_of(p):
        from qpo.store import Alert

        with session_scope(engine) as s:
            return [tuple(r) for r in s.execute(select(Alert.id, Alert.check_name, Alert.state, Alert.first_seen,
                                                       Alert.last_seen).where(Alert.portfolio_id == p)
                                                .order_by(Alert.id)).all()]

    for day in (d1, d2):
        run_valuation(day, engine=engine, client=client)
    r1 = run_risk(d1, engine=engine, client=client, report_dir=tmp_path)
    [(aid, check, state, first, last)] = alerts_of(pid)
    assert (check, state, first, last) == ("VaR (historical)", "new", d1, d1)
    assert any(a["id"] == aid for a in r1.alerts["new"])
    r2 = run_risk(d2, engine=engine, client=client, report_dir=tmp_path)  # the next day: the same alert, persisting
    assert alerts_of(pid) == [(aid, check, "new", d1, d2)]
    assert any(a["id"] == aid for a in r2.alerts["persisting"]) and not any(a["id"] == aid for a in r2.alerts["new"])
    assert r2.new_alerts + r2.persisting_alerts == r2.breaches  # each breach of the day: one alert, new or not
    page = (tmp_path / f"book-risk-{d2}.html").read_text(encoding="utf-8")
    assert f"Against the risk run of {d1}" in page
    with session_scope(engine) as s:
        update_portfolio(s, ADMIN, names[pid], strategy=loose.to_json())
    r3 = run_risk(d2, engine=engine, client=client, report_dir=tmp_path)  # the rerun of the day, the limit fixed
    assert alerts_of(pid) == [(aid, check, "resolved", d1, d2)]
    assert [a["id"] for a in r3.alerts["resolved"]] == [aid]


def test_cli_fail_on_breach(book, monkeypatch, capsys):
    engine, url, _ = book
    if engine.dialect.name != "sqlite":
        pytest.skip("the command line is the same on either store; once is enough")
    from qpo.cli import main

    monkeypatch.setenv("QPO_DATABASE_URL", url)
    for var in ("QPO_SMTP_HOST", "QPO_ALERT_WEBHOOK", "QPO_DASK_SCHEDULER"):
        monkeypatch.delenv(var, raising=False)
    assert main(["nightly", "risk", "--workers", "1"]) == 2  # before the valuation: refused, and said
    err = capsys.readouterr().err
    assert "run `qpo nightly value --as-of 2022-12-28` first" in err
    assert main(["nightly", "value", "--workers", "1", "--json"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["kind"] == "valuation" and out["valued"] == N
    assert main(["nightly", "risk", "--workers", "1", "--fail-on-breach", "--json"]) == 1  # new breaches: exit 1
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["new_alerts"] > 0 and out["report"].endswith("book-risk-2022-12-28.html")
    assert "no delivery is configured" in out["delivery"]
    # the rerun finds the same breaches, now persisting: nothing new, exit 0
    assert main(["nightly", "risk", "--workers", "1", "--fail-on-breach"]) == 0
    text = capsys.readouterr().out
    assert "0 new" in text and "persisting" in text
    assert main(["nightly", "value", "--as-of", "not-a-date"]) == 2
    assert "not a date" in capsys.readouterr().err
    assert pd.Timestamp("2022-12-28")  # the bundled panel's last date, the default as_of above


smtp, webhook, SECRET = test_delivery.smtp, test_delivery.webhook, test_delivery.SECRET  # the real local servers


def test_a_nightly_risk_run_delivers_its_new_alerts_to_real_servers(book, monkeypatch, capsys, smtp, webhook):
    """`qpo nightly risk` end to end with delivery configured from the environment: each advisor with
    a new alert gets one e-mail about their own clients, the ops desk one about all, the webhook one
    POST with every new alert; the rerun sends nothing; the SMTP password is never printed."""
    engine, url, _ = book
    if engine.dialect.name != "sqlite":
        pytest.skip("delivery does not depend on the store's database; once is enough")
    from qpo.cli import main
    from qpo.store.alerts import undelivered_alerts

    monkeypatch.setenv("QPO_DATABASE_URL", url)
    monkeypatch.delenv("QPO_DASK_SCHEDULER", raising=False)
    for var, value in {"QPO_SMTP_HOST": "127.0.0.1", "QPO_SMTP_PORT": str(smtp.port), "QPO_SMTP_USER": "qpo",
                       "QPO_SMTP_PASSWORD": SECRET, "QPO_SMTP_SENDER": "risk@bank.test",
                       "QPO_ALERT_RECIPIENTS": "ops@bank.test", "QPO_ALERT_WEBHOOK": webhook.url}.items():
        monkeypatch.setenv(var, value)
    assert main(["nightly", "value", "--workers", "1", "--json"]) == 0
    capsys.readouterr()
    assert main(["nightly", "risk", "--workers", "1", "--json"]) == 0
    out, err = capsys.readouterr()
    doc = json.loads(out.strip().splitlines()[-1])
    assert doc["new_alerts"] > 0 and SECRET not in out + err
    (path, post, _), = webhook.posts
    assert post["event"] == "alerts" and post["count"] == doc["new_alerts"] == len(post["alerts"])
    advisors = {a["advisor_email"] for a in post["alerts"]}
    assert len(smtp.messages) == len(advisors) + 1  # one per advisor with a new alert, one to the desk
    for advisor in advisors:
        (mail,) = smtp.to(advisor)
        body = mail.get_content()
        mine = {a["portfolio"] for a in post["alerts"] if a["advisor_email"] == advisor}
        others = {a["portfolio"] for a in post["alerts"]} - mine
        assert all(p in body for p in mine) and not any(p in body for p in others)
    (desk,) = smtp.to("ops@bank.test")
    assert all(a["portfolio"] in desk.get_content() for a in post["alerts"])
    assert undelivered_alerts(engine) == []
    assert main(["nightly", "risk", "--workers", "1", "--json"]) == 0  # the same breaches: nothing new, nothing sent
    assert len(smtp.messages) == len(advisors) + 1 and len(webhook.posts) == 1
