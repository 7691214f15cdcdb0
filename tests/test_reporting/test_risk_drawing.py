"""The risk report drawn (qpo.reporting.risk) and the daily report's tables: every number a reader
sees is formatted for what it is, and nothing shows 'nan' where a number can be computed."""
from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

import qpo
from qpo.reporting.risk import distribution_figure, format_value, risk_figures, style_table


@pytest.fixture(scope="module")
def book(tmp_path_factory):
    from qpo.store import connect
    from tests.test_workbench import seed_demo_book

    engine = connect(f"sqlite:///{tmp_path_factory.mktemp('store') / 'qpo.db'}")
    seed_demo_book(engine)  # bought on 2019-12-31: the ledger holds the book on the report's date
    return engine


@pytest.fixture(scope="module")
def daily(book, sp500_clean):
    from qpo.reporting import daily_report

    engine = book
    index = qpo.load_prices("sp500_index", start="2000-01-01")["SP500"]
    limits = qpo.Limits(max_weight=0.30, sector_max=0.40, min_names=5, var_limit=0.03)
    return daily_report("Tech Tilt", sp500_clean, as_of="2020-03-31", lookback_days=120, benchmark=index,
                        engine=engine, limits=limits, sectors=qpo.load_sectors(), n_scenarios=2_000)


def test_what_if_has_its_benchmark_statistics(daily):
    table = daily.risk_table()
    bench_rows = [i for i in table.index if i.endswith("vs benchmark")]
    assert len(bench_rows) >= 5
    what_if = table.loc[bench_rows, "what-if rebalance"]
    assert what_if.notna().all(), what_if  # was NaN in every row
    # the what-if's beta is the regression slope of its returns on the index
    r = qpo.portfolio_returns(daily.what_if.weights, daily.what_if_returns).to_numpy()
    b = daily.benchmark_returns.to_numpy()
    beta = np.cov(r, b)[0, 1] / np.var(b, ddof=1)
    assert table.loc["Beta vs benchmark", "what-if rebalance"] == pytest.approx(beta, rel=1e-9)
    # the index against itself is left empty, and the table says why
    html = daily.styled_risk_table().to_html()
    assert not re.search(r">\s*nan\s*<", html, re.IGNORECASE), "a cell shows nan"
    assert "against itself is left empty" in html


def test_durations_print_whole_and_percentages_as_percent(daily):
    html = daily.styled_risk_table().to_html()
    duration = int(daily.risk.drawdown.duration)
    assert f">{duration:,}<" in html and f"{duration}.0000" not in html
    vol = daily.risk.volatility
    assert f">{vol:.2%}<" in html
    assert format_value("Max drawdown duration (periods below the peak)", 105.0) == "105"
    assert format_value("Hit rate (share of periods > 0)", 0.5234) == "52.34%"
    assert format_value("Sharpe ratio", 1.23456) == "1.235"
    assert format_value("Beta vs benchmark", float("nan")) == ""


def test_stress_and_compliance_rows_are_named(daily):
    stress = daily.styled_table("stress").to_html()
    compliance = daily.styled_table("compliance").to_html()
    first = daily.risk.stress["scenario"].iloc[0]
    assert f">{first}<" in stress
    assert ">0<" not in stress and ">0<" not in compliance  # no bare 0..n index
    assert ">sector Information Technology<" in compliance
    with pytest.raises(qpo.DataError, match="has no 'nope' table"):
        daily.styled_table("nope")


def test_var_labels_do_not_overlap(daily):
    fig = distribution_figure(daily.risk)
    notes = [a for a in fig.layout.annotations if "%" in (a.text or "")]
    assert len(notes) == len(daily.risk.var_table) >= 5
    # each label sits on its own line, and says its method and its number
    assert len({round(a.y, 6) for a in notes}) == len(notes)
    for (method, row) in daily.risk.var_table.iterrows():
        assert any(a.text == f"{method} {row['var']:.2%}" and a.x == pytest.approx(-row["var"]) for a in notes)
    assert set(risk_figures(daily.risk)) >= {"wealth", "drawdown", "distribution", "contributions", "sectors",
                                             "stress"}


def test_compliance_status_is_an_enum(daily):
    from qpo.risk import ComplianceStatus

    assert daily.risk.compliance_status is ComplianceStatus.BREACH  # 83 % technology > 40 %
    assert all(isinstance(s, ComplianceStatus) for s in daily.risk.compliance["status"])
    plain = qpo.risk_report(daily.weights, daily.asset_returns, n_scenarios=1_000)
    assert plain.compliance_status is ComplianceStatus.NOT_CHECKED
    assert str(ComplianceStatus.BREACH) == "breach"  # prints and logs as its value
    styled = style_table("compliance", daily.risk.tables()["compliance"]).to_html()
    assert "color:#c0392b" in styled.replace(" ", "")


def test_the_report_reads_the_ledger_and_the_portfolios_own_limits(book, sp500_clean, daily):
    import dataclasses

    from qpo.book.strategy import Strategy
    from qpo.errors import AccessDenied, StoreError, UnknownOptionError
    from qpo.reporting import daily_report
    from qpo.store import get_portfolio, position, session_scope
    from tests.test_store.test_store import SYSTEM

    # the fixture's report was given its limits: those were checked, and it says so
    assert daily.limits == qpo.Limits(max_weight=0.30, sector_max=0.40, min_names=5, var_limit=0.03)
    assert daily.limits_source == "given for this report"
    with session_scope(book) as s:
        own = Strategy.from_json(get_portfolio(s, SYSTEM, "Tech Tilt").strategy).limits
        pos = position(s, SYSTEM, "Tech Tilt", "2020-03-31")
    kw = dict(as_of="2020-03-31", lookback_days=60, engine=book, sectors=qpo.load_sectors(), n_scenarios=1_000)
    rep = daily_report("Tech Tilt", sp500_clean, **kw)
    assert rep.limits == own and rep.limits_source == "the portfolio's own (its stored strategy)"
    assert rep.risk.compliance is not None and "Limits: the portfolio&#x27;s own" in rep.status_html()
    if own.max_weight is not None:
        assert rep.risk.compliance.set_index("check").loc["max single name", "limit"] == own.max_weight
    # the weights are the ledger's shares on that date at that day's closes, of the whole value (cash included)
    px = sp500_clean.loc[:"2020-03-31"].iloc[-1][pos.shares.index]
    value = pos.shares * px
    pd.testing.assert_series_equal(rep.weights, value / (value.sum() + pos.cash), check_names=False)
    assert rep.weights.sum() < 1 and rep.weights.sum() == pytest.approx(1 - pos.cash / (value.sum() + pos.cash))
    assert rep.cash == pytest.approx(pos.cash) and pos.cash >= 0
    # one field given: the others stay the portfolio's own (None keeps the portfolio's own)
    one = daily_report("Tech Tilt", sp500_clean, limits={"max_weight": 0.9, "sector_max": None}, **kw)
    assert one.limits == dataclasses.replace(own, max_weight=0.9)
    assert one.limits_source == "the portfolio's own, with max_weight given for this report"
    with pytest.raises(UnknownOptionError, match="max_wieght"):
        daily_report("Tech Tilt", sp500_clean, limits={"max_wieght": 0.3}, **kw)
    # a date before the book was bought: refused, naming the first date the ledger holds shares
    with pytest.raises(StoreError, match=r"held no shares on 2019-06-28: its first holding in the ledger is dated "
                                         r"2019-12-31; report as of that date or later"):
        daily_report("Tech Tilt", sp500_clean, as_of="2019-06-28", lookback_days=60, engine=book)
    # a person reads under the store's rules: Tech Tilt is Ben's client's, not Ana's
    with pytest.raises(AccessDenied, match=r"ana.silva@example.com \(advisor\) may not see portfolio 'Tech Tilt'"):
        daily_report("Tech Tilt", sp500_clean, actor="ana.silva@example.com", **kw)
    ben = daily_report("Tech Tilt", sp500_clean, actor="ben.okafor@example.com", **kw)
    pd.testing.assert_series_equal(ben.weights, rep.weights)


def test_summary_styles_every_row():
    table = pd.DataFrame({"a": [0.1234, 12.0, float("nan")]},
                         index=["Annualized volatility", "Max drawdown duration (periods below the peak)", "Skew"])
    html = style_table("summary", table).to_html()
    assert ">12.34%<" in html and ">12<" in html and not re.search(r">\s*nan\s*<", html, re.IGNORECASE)
