"""The report a reviewer reads (the daily-report pipeline's ``report.html``) shows the prices'
data warnings and the what-if rebalance proposal, and the run stores no proposal."""
from __future__ import annotations

import html
import re

import pytest

from qpo.workbench.notebook import read_records
from qpo.workbench.pipelines import run_pipeline
from tests.test_store.test_store import SYSTEM

WARNING = "large one-day moves to review (|return| &gt; 40 %)"


def _text(page: str) -> str:
    """The page's visible text, roughly: tags dropped, entities decoded, spaces collapsed."""
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", page)))


def test_report_html_shows_data_warnings_and_the_what_if(qpo_home, sp500, sp500_clean):
    import sqlalchemy as sa

    from qpo.book import propose_rebalance
    from qpo.store import Proposal, connect
    from tests.test_workbench import seed_demo_book

    seed_demo_book(prices=sp500)  # bought on 2019-12-31
    run = run_pipeline("daily-report", {"portfolio": "Tech Tilt", "as_of": "2020-03-31", "lookback_days": 120,
                                        "max_weight": 0.3})
    assert run.status == "FINISHED" and run.ok, run.error
    assert len(run.data_warnings) == 1
    page = open(run.html, encoding="utf-8").read()
    text = _text(page)
    # the data warnings: the same rows the run's JSON names, Tech Tilt's own names marked
    assert "Data warnings" in text and "2 data warning row(s) to review" in text
    assert WARNING in page
    assert re.search(r"<td>AAPL</td><td>2000-09-29</td><td>simple_return</td><td>-51\.85%</td><td>yes</td>", page)
    assert re.search(r"<td>AMD</td><td>2016-04-22</td><td>simple_return</td><td>\+52\.29%</td><td>yes</td>", page)
    # the what-if: Tech Tilt's own strategy with the run's max_weight, as a dry run
    direct = propose_rebalance("Tech Tilt", as_of="2020-03-31", actor=SYSTEM, prices=sp500_clean, engine=connect(),
                               save=False, max_weight=0.3)
    assert "not stored" in text and "qpo rebalance propose Tech Tilt" in text
    assert f"turnover {direct.turnover:.1%}" in text and f"estimated cost {direct.total_cost:,.2f}" in text
    for t in direct.trades.itertuples(index=False):
        assert f"<td>{t.side}</td><td>{t.ticker}</td><td>{t.shares:,.6g}</td>" in page
    rec = read_records(run.notebook)
    assert rec["what_if_status"] == "proposal" and rec["what_if_turnover"] == pytest.approx(direct.turnover)
    assert rec["data_warning_rows"] == 2
    assert [(t["side"], t["ticker"]) for t in rec["what_if_trades"]] == [
        (t.side, t.ticker) for t in direct.trades.sort_values("notional", ascending=False, kind="stable").itertuples()]
    with connect().connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(Proposal)).scalar_one() == 0
