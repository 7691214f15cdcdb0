"""The daily report's what-if is the portfolio's own rebalance proposal (a dry run, never stored),
and its "Data warnings" section lists the prices' validation warnings."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from tests.test_store.test_store import SYSTEM

AS_OF = "2020-03-31"


@pytest.fixture(scope="module")
def book(tmp_path_factory, sp500_clean):
    from qpo.store import connect
    from tests.test_workbench import seed_demo_book

    engine = connect(f"sqlite:///{tmp_path_factory.mktemp('store') / 'qpo.db'}")
    seed_demo_book(engine, prices=sp500_clean)  # bought on 2019-12-31
    return engine


def _report(book, prices, name="Tech Tilt", **kw):
    from qpo.reporting import daily_report

    kw = {"as_of": AS_OF, "lookback_days": 120, "engine": book, "n_scenarios": 1_000, **kw}
    return daily_report(name, prices, **kw)


def _n_proposals(engine) -> int:
    import sqlalchemy as sa

    from qpo.store import Proposal

    with engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(Proposal)).scalar_one())


@pytest.mark.parametrize("name", ["Tech Tilt", "Conservative Income"])
def test_the_what_if_is_the_portfolios_own_proposal_not_stored(book, sp500_clean, name):
    from qpo.book import propose_rebalance
    from qpo.book.strategy import Strategy
    from qpo.store import get_portfolio, session_scope

    stored_before = _n_proposals(book)
    rep = _report(book, sp500_clean, name=name)
    assert _n_proposals(book) == stored_before  # a dry run: nothing stored
    wi = rep.what_if
    assert wi.status == "proposal" and wi.proposal is not None and wi.proposal.id is None
    with session_scope(book) as s:
        own = Strategy.from_json(get_portfolio(s, SYSTEM, name).strategy)
    # the same proposal the advisor's `qpo rebalance propose --dry-run` makes that day: same trades, same numbers
    direct = propose_rebalance(name, as_of=AS_OF, actor=SYSTEM, prices=sp500_clean, engine=book, save=False)
    assert wi.proposal.strategy.to_json() == own.to_json() == direct.strategy.to_json()
    pd.testing.assert_frame_equal(wi.proposal.trades, direct.trades)
    assert wi.proposal.turnover == pytest.approx(direct.turnover, abs=1e-12)
    assert wi.proposal.total_cost == pytest.approx(direct.total_cost, abs=1e-9) and wi.proposal.total_cost > 0
    # it starts from the report's own holdings (the ledger, cash included) and trades from there
    held = wi.proposal.weights["before"]
    pd.testing.assert_series_equal(held[held > 0], rep.weights, check_names=False, atol=1e-12)
    assert len(wi.proposal.trades) > 0 and wi.proposal.turnover > 0.05
    # the what-if weights are those after the whole-share trades: cash left, so they sum below 1
    after = wi.weights
    assert 0.99 < after.sum() < 1 and after.sum() == pytest.approx(1 - wi.proposal.cash_after / wi.proposal.value_after)
    # the risk table's what-if column: those weights over the report's window (plain numpy here)
    names = list(after.index)
    px = sp500_clean.loc[:AS_OF, names].iloc[-121:].to_numpy()
    r = (px[1:] / px[:-1] - 1) @ after.to_numpy()
    table = rep.risk_table()
    assert table.loc["Annualized volatility", "what-if rebalance"] == pytest.approx(
        np.std(r, ddof=1) * math.sqrt(252), rel=1e-9)
    # the numbers recorded: the proposal's, before and after
    m = rep.metrics()
    assert m["what_if_available"] == 1 and m["what_if_n_trades"] == len(direct.trades)
    assert m["what_if_turnover"] == pytest.approx(direct.turnover)
    assert m["what_if_total_cost"] == pytest.approx(direct.total_cost)
    for k in ("volatility", "var", "cvar", "expected_return"):
        assert m[f"what_if_proposal_{k}_before"] == pytest.approx(direct.comparison.loc[k, "before"])
        assert m[f"what_if_proposal_{k}_after"] == pytest.approx(direct.comparison.loc[k, "after"])
    # the section says what it is and that it is not stored, with the trades (largest first)
    page = wi.html()
    assert "not stored" in page and f"qpo rebalance propose {name}" in page.replace("&#x27;", "'")
    assert f"objective {own.objective}" in page
    biggest = direct.trades.loc[direct.trades["notional"].idxmax()]
    assert wi.trades_table().iloc[0]["ticker"] == biggest["ticker"]
    assert f"<td>{biggest['ticker']}</td>" in page and f"{direct.turnover:.2%}" in page
    fig = rep.figures()["weights"]
    assert [t.name for t in fig.data] == ["current", "what-if rebalance"]


def test_max_weight_overrides_the_strategys_cap_for_the_what_if_only(book, sp500_clean):
    from qpo.book.strategy import StrategyError

    rep = _report(book, sp500_clean, max_weight=0.3)
    assert rep.what_if.overrides == {"max_weight": 0.3}
    assert rep.what_if.proposal.strategy.constraints.max_weight == 0.3
    assert rep.what_if.proposal.weights["target"].max() <= 0.3 + 1e-6
    assert rep.what_if.proposal.parameters["overrides"] == {"max_weight": 0.3}
    assert "max_weight=0.3 given for this report" in rep.what_if.message
    own = _report(book, sp500_clean)
    assert own.what_if.overrides == {} and own.what_if.proposal.weights["target"].max() > 0.3  # its own cap is looser
    with pytest.raises(StrategyError, match="max_weight"):
        _report(book, sp500_clean, max_weight="x")


def test_a_what_if_that_cannot_be_built_never_fails_the_report(book, sp500_clean):
    rep = _report(book, sp500_clean, max_weight=0.1)  # 5 names at 10 % cannot be fully invested
    assert rep.what_if.status == "unavailable" and rep.what_if.proposal is None and rep.what_if_risk is None
    assert "InfeasibleError" in rep.what_if.message and "cannot be fully invested" in rep.what_if.message
    assert list(rep.risk_table().columns) == ["portfolio"]
    assert rep.metrics()["what_if_available"] == 0 and "what_if_volatility" not in rep.metrics()
    assert "qpo-what-if-unavailable" in rep.what_if.html()
    assert [t.name for t in rep.figures()["weights"].data] == ["current"]


# -- data warnings --------------------------------------------------------------------------------
def test_the_data_warnings_of_the_prices_are_in_the_report(book, sp500_clean):
    from qpo.validation import validate_prices

    validation = validate_prices(sp500_clean)
    assert validation.success and len(validation.warnings) == 1
    rep = _report(book, sp500_clean, validation=validation)
    dw = rep.data_warnings
    assert dw.total == 2 and dw.counts == {"large one-day moves to review (|return| > 40 %)": 2}
    rows = dw.table.set_index("ticker")
    assert list(rows.index) == ["AAPL", "AMD"] and rows["held"].all()  # Tech Tilt holds both
    assert rows.loc["AAPL", "date"] == "2000-09-29" and rows.loc["AMD", "date"] == "2016-04-22"
    aapl = sp500_clean["AAPL"]
    move = aapl.loc["2000-09-29"] / aapl.loc[:"2000-09-28"].iloc[-1] - 1
    assert rows.loc["AAPL", "value"] == pytest.approx(move, rel=1e-9)
    page = dw.html()
    assert "<td>AAPL</td><td>2000-09-29</td>" in page and f"{move:+.2%}" in page and "+52.29%" in page
    assert "2 data warning row(s) to review" in page
    assert rep.metrics()["data_warning_rows"] == 2
    # the pipeline's validation.json (the report as JSON) gives the same section
    same = _report(book, sp500_clean, validation=validation.to_dict()).data_warnings
    pd.testing.assert_frame_equal(same.table, dw.table)
    assert _report(book, sp500_clean).data_warnings is None  # no validation given: no section


def test_data_warnings_are_bounded_and_the_held_names_come_first():
    from qpo.reporting.daily import ROWS_SHOWN, data_warnings

    examples = [{"ticker": f"T{i:02d}", "date": f"2020-01-{i + 1:02d}", "simple_return": 0.5 + i / 100}
                for i in range(30)]
    validation = {"warnings": [{"check": "large one-day moves to review (|return| > 40 %)", "columns": ["simple_return"],
                                "unexpected_count": 75, "examples": examples}]}
    dw = data_warnings(validation, held=["T29", "T17"])
    assert len(dw.table) == ROWS_SHOWN == 20 and dw.total == 75
    assert list(dw.table["ticker"][:3]) == ["T17", "T29", "T00"]  # held first, then by date
    assert dw.table["held"].sum() == 2
    page = dw.html()
    assert "75 data warning row(s) to review" in page and "55 more are not shown" in page
    assert page.count("<tr>") == 1 + 20  # the header and 20 rows
    clean = data_warnings({"warnings": []}, held=["AAPL"])
    assert clean.total == 0 and "No data warnings" in clean.html()
    hostile = data_warnings({"warnings": [{"check": "<script>x</script>", "columns": ["v"], "unexpected_count": 1,
                                           "examples": [{"ticker": "<b>", "date": "2020-01-02", "v": 0.5}]}]})
    assert "<script>" not in hostile.html() and "&lt;b&gt;" in hostile.html()


def test_a_last_day_that_came_in_for_only_some_names_is_not_the_reports_date(book, sp500_clean):
    """A day's bars ingested for two names only (the store's last date): the report is as of the last
    date that prices every held name, and says so; a date given is still that date (and refused
    there, as before, for the names it lacks)."""
    from qpo.errors import DataError, DataWarning
    from qpo.store import position, session_scope

    prices = sp500_clean.loc[:AS_OF]
    with session_scope(book) as s:
        held = position(s, SYSTEM, "Tech Tilt", AS_OF).shares.index.tolist()
    partial = pd.Timestamp(AS_OF) + pd.offsets.BDay(1)
    extra = pd.DataFrame({held[0]: [float(prices[held[0]].iloc[-1]) * 1.01]}, index=[partial])
    ragged = pd.concat([prices, extra])
    with pytest.warns(DataWarning, match=f"the prices' last date {partial.date()} has no price for {len(held) - 1} of "
                                         f"the {len(held)} names 'Tech Tilt' holds .*the report is as of {AS_OF}"):
        report = _report(book, ragged, as_of=None)
    assert report.as_of == pd.Timestamp(AS_OF)
    assert report.risk.volatility == pytest.approx(_report(book, prices).risk.volatility, rel=1e-12)
    with pytest.raises(DataError, match="have no price on some of the"):
        _report(book, ragged, as_of=str(partial.date()))
