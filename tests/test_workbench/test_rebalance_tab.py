"""The dashboard's Rebalance tab on a real store (the demo book, SQLite in a temporary QPO_HOME),
real prices and the real optimizer: the form is the stored strategy, Propose fills the tables and
figures with what the store keeps, Accept and Reject write through the store as the person signed
in, a researcher computes dry runs only, and errors are shown in words (never a traceback, never a
secret)."""
from __future__ import annotations

from io import StringIO
from types import SimpleNamespace

import pandas as pd
import pytest

from tests.test_workbench import seed_demo_book, tab_board

ANA, BEN, RITA = "ana.silva@example.com", "ben.okafor@example.com", "rita.chen@example.com"
BG = "Balanced Growth"


@pytest.fixture
def book(qpo_home, sp500):
    from qpo.store import connect

    engine = connect()
    assert seed_demo_book(engine, sp500) == 4
    return engine


@pytest.fixture
def tab_for(book, sp500):
    """A Rebalance tab for the person with this e-mail, showing ``name``."""
    from qpo.workbench.tabs.rebalance import RebalanceTab

    def make(email: str, name: str = BG):
        tab = RebalanceTab(tab_board(book, email, sp500, selected=name))
        tab.show(name)
        return tab
    return make


def read(fn, *args, **kwargs):
    from qpo.store import Actor, connect, session_scope

    with session_scope(connect()) as s:
        return fn(s, Actor.system("tests"), *args, **kwargs)


def page_text(widget) -> str:
    """Every text the tab shows (HTML values, descriptions), walking its children."""
    parts = [str(getattr(widget, "value", "") or ""), str(getattr(widget, "description", "") or "")]
    for child in getattr(widget, "children", ()):
        parts.append(page_text(child))
    return "\n".join(parts)


def shown_table(html_text: str, css: str) -> pd.DataFrame:
    (frame,) = pd.read_html(StringIO(html_text), attrs={"class": f"dataframe {css}"} if css == "qpo-trades"
                            else {"class": css})
    return frame


def test_the_form_is_the_stored_strategy_and_propose_shows_the_stored_proposal(tab_for):
    from qpo.book import Strategy
    from qpo.store import get_portfolio, get_proposal, list_proposals

    tab = tab_for(ANA)
    stored = Strategy.from_json(read(get_portfolio, BG).strategy)
    assert (stored.objective, stored.constraints.max_weight, stored.sector_max, stored.constraints.max_turnover) == (
        "max_sharpe", 0.2, 0.4, 0.3)
    assert (tab.objective.value, tab.max_weight.value, tab.sector_max.value, tab.max_turnover.value) == (
        "max_sharpe", "0.2", "0.4", "0.3")
    assert (tab.spread_bps.value, tab.commission.value, tab.fractional.value) == (5.0, 1.0, False)
    assert tab.option.layout.display == "none"  # max_sharpe takes no option
    assert tab.overrides() == {}
    assert tab.accept_button.disabled and tab.reject_button.disabled and not tab.propose_button.disabled
    assert tab.result.layout.display == "none"

    tab.propose_button.click()
    p = tab.proposal
    assert p is not None and p.id is not None and p.status == "open", tab.status.value
    listed = read(list_proposals, BG)
    assert listed["id"].tolist() == [p.id] and listed["status"].tolist() == ["open"]
    trades = pd.DataFrame(read(get_proposal, p.id).trades)
    assert len(trades) >= 2
    shown = shown_table(tab.trades_table.value, "qpo-trades")
    assert shown["side"].tolist() == trades["side"].tolist()
    assert shown["ticker"].tolist() == trades["ticker"].tolist()
    assert shown["shares"].astype(float).tolist() == trades["shares"].astype(float).tolist()
    notional = shown["notional"].str.replace(r"[$,]", "", regex=True).astype(float)
    assert notional.to_numpy() == pytest.approx((trades["shares"] * trades["price"]).to_numpy(), abs=0.006)
    # the before/after table is the proposal's numbers
    comp = shown_table(tab.comparison_table.value, "qpo-comparison").set_index("Unnamed: 0")
    assert comp.loc["volatility (a year)", "after"] == f"{p.comparison.loc['volatility', 'after']:.2%}"
    assert comp.loc["names held", "before"] == f"{p.comparison.loc['n_names', 'before']:,.0f}"
    assert f"Proposal #{p.id} (open)" in tab.summary.value
    assert f"${p.cash_before:,.2f} \u2192 ${p.cash_after:,.2f}" in tab.summary.value
    compliance = shown_table(tab.compliance_table.value, "qpo-compliance")
    assert compliance["check"].tolist() == p.compliance["check"].tolist() and p.breaches_after() == []
    assert "Every limit holds after the trades" in tab.compliance_table.value
    assert not tab.accept_button.disabled and not tab.reject_button.disabled
    assert tab.result.layout.display is None and tab.status.value == ""
    assert list(tab.figures) == ["weights", "trades", "comparison"]
    assert list(tab.figures["trades"].data[0].x) == trades["ticker"].tolist()


def test_accept_writes_the_ledger_the_run_and_one_audit_row(tab_for):
    from qpo.store import audit_trail, get_proposal, list_transactions, position

    changed = []
    tab = tab_for(ANA)
    tab.on_change = changed.append
    before = read(list_transactions, BG)
    tab.propose_button.click()
    p = tab.proposal
    tab.accept_button.click()
    row = read(get_proposal, p.id)
    assert row.status == "accepted" and row.decided_by == ANA and row.optimization_run_id is not None
    ledger = read(list_transactions, BG)
    written = ledger[ledger["proposal_id"] == p.id]
    assert len(ledger) == len(before) + len(p.trades) == len(before) + len(written)
    assert sorted(zip(written["ticker"], written["kind"], written["quantity"])) == sorted(
        zip(p.trades["ticker"], p.trades["side"], p.trades["shares"]))
    assert (written["created_by"] == ANA).all()
    audit = read(audit_trail, BG)
    accepts = audit[(audit["action"] == "accept") & (audit["entity_id"].astype(str) == str(p.id))]
    assert len(accepts) == 1 and accepts["actor"].tolist() == [ANA]
    cash = read(position, BG).cash
    assert cash == pytest.approx(p.cash_after, abs=0.01)  # the ledger's cash is what the proposal said it would be
    message = tab.status.value
    assert "qpo-recorded" in message and "qpo-error" not in message
    assert (f"Accepted proposal #{p.id}: {len(p.trades)} trades written to the ledger of {BG}" in message
            and f"optimization run #{row.optimization_run_id} recorded" in message and f"cash now ${cash:,.2f}" in message)
    assert tab.accept_button.disabled and tab.reject_button.disabled and changed == [BG]
    assert tab.accept() is False  # decided: nothing more is written
    audit = read(audit_trail, BG)
    assert int((audit["action"] == "accept").sum()) == 1 and len(read(list_transactions, BG)) == len(ledger)


def test_reject_needs_a_reason_and_stores_it_verbatim(tab_for):
    from qpo.store import audit_trail, get_proposal, list_transactions

    tab = tab_for(ANA)
    tab.propose_button.click()
    p = tab.proposal
    tab.reject_button.click()  # no reason
    assert "A rejection needs a reason" in tab.status.value and read(get_proposal, p.id).status == "open"
    assert not tab.reject_button.disabled
    reason = "Client asks to wait for January <b>tax</b> lots"
    tab.reason.value = reason
    tab.reject_button.click()
    row = read(get_proposal, p.id)
    assert (row.status, row.reason, row.decided_by) == ("rejected", reason, ANA)
    assert "<b>tax</b>" not in tab.status.value and "&lt;b&gt;tax&lt;/b&gt;" in tab.status.value
    assert f"Rejected proposal #{p.id} of {BG}; the reason recorded" in tab.status.value
    assert tab.accept_button.disabled and tab.reject_button.disabled and tab.reason.value == ""
    ledger = read(list_transactions, BG)
    assert not (ledger["proposal_id"] == p.id).any()
    audit = read(audit_trail, BG)
    assert audit.loc[audit["action"] == "reject", "after"].tolist() == [{"status": "rejected", "reason": reason}]


def test_a_researcher_computes_a_dry_run_and_cannot_decide(tab_for):
    from qpo.store import list_proposals, list_transactions
    from qpo.workbench.tabs.rebalance import RESEARCHER_NOTE

    ledger = read(list_transactions, BG)
    tab = tab_for(RITA)
    assert RESEARCHER_NOTE in tab.note.value and tab.reason.disabled
    tab.propose_button.click()
    p = tab.proposal
    assert p is not None and p.id is None and len(p.trades) > 0, tab.status.value
    assert "Dry run (not stored" in tab.summary.value
    assert len(shown_table(tab.trades_table.value, "qpo-trades")) == len(p.trades)
    assert tab.accept_button.disabled and tab.reject_button.disabled
    assert tab.accept() is False and tab.reject() is False
    assert read(list_proposals).empty and len(read(list_transactions, BG)) == len(ledger)


def test_an_infeasible_proposal_shows_the_optimizers_own_message(tab_for, sp500):
    from qpo.book import propose_rebalance
    from qpo.errors import InfeasibleError, QpoError
    from qpo.store import list_proposals

    tab = tab_for(ANA)
    tab.max_weight.value = "1%"  # ten names at 1 % cannot be fully invested
    tab.propose_button.click()
    with pytest.raises(InfeasibleError) as direct:
        propose_rebalance(BG, actor=tab.board.actor, prices=sp500, engine=tab.board.engine, save=False, max_weight=0.01)
    assert "allow at most" in str(direct.value)
    assert "qpo-error" in tab.status.value and f"The proposal could not be built: {direct.value}" in tab.status.value
    assert tab.proposal is None and tab.result.layout.display == "none" and tab.accept_button.disabled

    tab.max_weight.value = "0.2"
    tab.objective.value = "efficient_return"
    assert tab.option.layout.display is None and tab.option.description == "Target return (a year)"
    tab.propose_button.click()  # no target given
    assert "target return (a year): efficient_return needs it" in tab.status.value
    tab.option.value = "5"  # 500 % a year
    tab.propose_button.click()
    with pytest.raises(QpoError) as impossible:
        propose_rebalance(BG, actor=tab.board.actor, prices=sp500, engine=tab.board.engine, save=False,
                          objective="efficient_return", target_return=5.0)
    assert "target_return 5 is above the highest expected return" in str(impossible.value)
    assert f"The proposal could not be built: {impossible.value}" in tab.status.value
    tab.max_turnover.value = "thirty"
    tab.propose_button.click()
    assert "turnover cap: &#x27;thirty&#x27; is not a number" in tab.status.value
    tab.max_turnover.value = "30"  # a percentage without its sign
    tab.propose_button.click()
    assert "turnover cap: 30 is outside 0 to 2; it is a fraction" in tab.status.value
    text = page_text(tab.widget)
    assert "Traceback" not in text and 'File "' not in text
    assert read(list_proposals).empty  # nothing half-written


def test_the_form_changes_this_proposal_only(tab_for):
    from qpo.book import Strategy
    from qpo.store import get_portfolio, get_proposal

    stored = read(get_portfolio, BG).strategy
    tab = tab_for(ANA)
    tab.max_weight.value = "15%"
    tab.spread_bps.value = 10.0
    tab.fractional.value = True
    assert tab.overrides() == {"max_weight": 0.15, "spread_bps": 10.0, "fractional": True}
    tab.propose_button.click()
    p = tab.proposal
    assert p is not None, tab.status.value
    kept = Strategy.from_json(read(get_proposal, p.id).strategy)
    assert (kept.constraints.max_weight, kept.spread_bps, kept.fractional, kept.sector_max) == (0.15, 10.0, True, 0.4)
    assert p.target.max() <= 0.15 + 1e-6 and p.weights["after"].max() <= 0.15 + 1e-6
    assert p.parameters["overrides"] == {"max_weight": 0.15, "spread_bps": 10.0, "fractional": True}
    costs = p.trades["notional"] * 10.0 / 1e4 + 1.0  # the 10 bp spread and the stored $1 commission
    assert p.trades["cost"].to_numpy() == pytest.approx(costs.to_numpy(), rel=1e-9)
    assert read(get_portfolio, BG).strategy == stored  # the stored strategy is unchanged
    tab.show(BG)  # a new visit: the form is the stored strategy again, no proposal
    assert (tab.max_weight.value, tab.spread_bps.value, tab.fractional.value) == ("0.2", 5.0, False)
    assert tab.proposal is None and tab.overrides() == {} and tab.accept_button.disabled
    assert tab.result.layout.display == "none" and tab.trades_table.value == ""


def test_figures_are_built_once_and_updated_in_place(tab_for):
    tab = tab_for(ANA)
    tab.propose_button.click()
    first = tab.proposal
    figures, children = dict(tab.figures), tab.charts.children
    tab.max_weight.value = "0.12"
    tab.max_turnover.value = ""  # no turnover cap: a different target
    tab.propose_button.click()
    second = tab.proposal
    assert second is not None and second.id != first.id, tab.status.value
    assert list(second.trades["ticker"]) != list(first.trades["ticker"])
    assert all(tab.figures[k] is figures[k] for k in figures) and tab.charts.children == children
    assert all(a is b for a, b in zip(tab.charts.children, children))
    assert list(tab.figures["trades"].data[0].x) == second.trades["ticker"].tolist()
    signed = second.trades["notional"].where(second.trades["side"] == "buy", -second.trades["notional"])
    assert list(tab.figures["trades"].data[0].y) == pytest.approx(signed.tolist())
    after = tab.figures["weights"].data[2]
    assert after.name == "after"
    shown = pd.Series(list(after.y), index=list(after.x))
    assert shown.to_numpy() == pytest.approx(second.weights["after"].reindex(shown.index).to_numpy())
    vol = tab.figures["comparison"].data[1]
    assert vol.name == "after" and vol.y[0] == pytest.approx(second.comparison.loc["volatility", "after"])


def test_breaches_after_the_trades_are_red(tab_for):
    tab = tab_for(BEN, "Tech Tilt")
    tab.objective.value = "max_utility"
    assert tab.option.description == "Risk aversion" and tab.option.value == "1"
    tab.option.value = "0.01"  # chase return: few names, more risk
    tab.propose_button.click()
    p = tab.proposal
    assert p is not None and p.strategy.objective_options == {"risk_aversion": 0.01}, tab.status.value
    breaches = p.breaches_after()
    assert any(b.startswith("min names") for b in breaches)
    html_text = tab.compliance_table.value
    assert f"{len(breaches)} limits breached after the trades" in html_text
    rows = html_text.split("<tr")[2:]  # the body's rows
    assert len(rows) == len(p.compliance)
    for row, passed in zip(rows, p.compliance["passed_after"]):
        assert ("color:#c0392b" in row) is (not passed)


def test_an_unreachable_store_shows_no_secret(tab_for, sp500):
    import sqlalchemy as sa

    from qpo.store import Actor
    from qpo.workbench.tabs.rebalance import RebalanceTab

    secret = "s3cret-pa55word"
    bad = sa.create_engine(f"postgresql://qpo:{secret}@127.0.0.1:1/qpo")
    cold = RebalanceTab(SimpleNamespace(engine=bad, actor=Actor.system("tests"), prices=sp500, benchmark=None,
                                        selected=BG))
    cold.show(BG)
    assert ("The portfolio&#x27;s strategy could not be read: the store cannot be read just now (it may be "
            "restarting)") in cold.status.value
    assert cold.propose_button.disabled
    tab = tab_for(ANA)  # the store goes away between showing and proposing
    tab.board.engine = bad
    tab.propose_button.click()
    assert "The proposal could not be built: the store cannot be read just now" in tab.status.value
    for t in (cold, tab):
        text = page_text(t.widget)
        assert secret not in text and "127.0.0.1" not in text and "Traceback" not in text


def test_every_field_of_the_strategy_form_shows_for_an_objective_without_a_target(tab_for):
    """max_sharpe and min_variance take no target: the Target box is hidden. Its layout was shared
    by the seven fields, so Objective, Max weight, Sector cap, Turnover cap, Spread and Commission
    were hidden with it (0 x 0 px in Chromium: the pre-filled strategy could not be seen or
    edited). Each field now has a layout of its own."""
    tab = tab_for(ANA)
    assert tab.objective.value in ("max_sharpe", "min_variance")
    fields = [tab.objective, tab.max_weight, tab.sector_max, tab.max_turnover, tab.spread_bps, tab.commission]
    assert tab.option.layout.display == "none"
    assert all(f.layout.display != "none" for f in fields)
    assert len({id(f.layout) for f in [*fields, tab.option]}) == 7
    tab.objective.value = "efficient_return"  # a target: the box shows, the others stay
    assert tab.option.layout.display != "none" and all(f.layout.display != "none" for f in fields)
