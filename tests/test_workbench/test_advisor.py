"""The advisor dashboard reads the store and never creates or seeds one (issue 16: a store deleted
while the dashboard ran came back, on the next visit, as the four demo portfolios)."""
import dataclasses

import pytest

from qpo import config
from qpo.errors import AccessDenied, MissingStoreError, StoreError
from tests.test_store.test_store import SYSTEM


@pytest.fixture
def small_dashboard():
    from qpo.workbench.advisor import AdvisorDashboard

    return lambda: AdvisorDashboard(initial="Tech Tilt", lookback_days=60)


def test_a_deleted_store_is_refused_not_reseeded(qpo_home, small_dashboard, sp500):
    from qpo.store import connect, list_portfolios, session_scope
    from qpo.workbench.demo import seed_demo

    db = qpo_home / "qpo.db"
    assert seed_demo(connect(), prices=sp500) == 4  # what `qpo db seed` does
    app = small_dashboard()
    assert app.selected == "Tech Tilt" and len(app.portfolios) == 4
    db.unlink()  # the operator deletes the store while the server runs
    with pytest.raises(MissingStoreError) as info:
        small_dashboard()  # the next visit
    assert str(info.value).startswith(f"no store at {config.database_url()}: the file {db} does not exist")
    assert "`qpo db seed`" in str(info.value)
    assert not db.exists()
    # and a writer that later creates the store creates it empty: nothing was seeded behind its back
    with session_scope(connect()) as s:
        assert list_portfolios(s, SYSTEM).empty


def test_a_store_never_created_is_refused(qpo_home, small_dashboard):
    with pytest.raises(MissingStoreError, match="does not exist, and nothing was created"):
        small_dashboard()
    assert list(qpo_home.iterdir()) == []


def test_an_empty_store_is_refused_with_what_to_do(qpo_home, small_dashboard):
    from qpo.store import connect

    connect()  # `qpo db upgrade`: the schema, no portfolio
    with pytest.raises(StoreError, match=r"holds no client portfolio: add one, or run `qpo db seed`"):
        small_dashboard()


def test_the_dashboard_reads_the_ledger_and_each_portfolios_own_limits(qpo_home, small_dashboard, sp500, monkeypatch):
    """Holdings, cash and market value come from the ledger; the compliance checks are the
    portfolio's own limits (its stored strategy), unless the dashboard is given others."""
    from qpo.book.strategy import Strategy
    from qpo.store import connect, get_portfolio, position, session_scope, update_portfolio
    from qpo.workbench.advisor import AdvisorDashboard
    from qpo.workbench.demo import seed_demo

    monkeypatch.delenv("QPO_USER", raising=False)
    engine = connect()
    seed_demo(engine, prices=sp500)
    with session_scope(engine) as s:
        pos = position(s, SYSTEM, "Tech Tilt")
        own = Strategy.from_json(get_portfolio(s, SYSTEM, "Tech Tilt").strategy).limits
    app = small_dashboard()
    assert app.actor.email == "system:dashboard" and app.selected == "Tech Tilt"
    last = sp500.iloc[-1]
    invested = float((pos.shares * last[pos.shares.index]).sum())
    assert app.cash == pytest.approx(pos.cash) and app.market_value == pytest.approx(invested + pos.cash)
    assert f"${invested + pos.cash:,.0f} (cash ${pos.cash:,.0f})" in app.header.value
    assert app.limits == own and app.report.weights.index.tolist() == pos.shares.index.tolist()
    assert "the portfolio&#x27;s own (its stored strategy)" in app.risk.value
    checked = app.report.compliance.set_index("check")["limit"]
    assert checked["max single name"] == own.max_weight
    # a stricter cap stored with the portfolio is the one checked at the next visit
    with session_scope(engine) as s:
        stored = Strategy.from_json(get_portfolio(s, SYSTEM, "Tech Tilt").strategy)
        stricter = dataclasses.replace(stored, limits=dataclasses.replace(own, max_weight=0.05))
        update_portfolio(s, SYSTEM, "Tech Tilt", strategy=stricter.to_json())
    again = small_dashboard()
    assert again.limits.max_weight == 0.05 and "max single name" in " ".join(again.report.breaches)
    # limits given to the dashboard override the portfolio's own, field by field
    given = AdvisorDashboard(initial="Tech Tilt", lookback_days=60, limits={"max_weight": 0.9})
    assert given.limits.max_weight == 0.9 and given.limits.sector_max == own.sector_max


def test_the_dashboard_reads_as_qpo_user(qpo_home, small_dashboard, sp500, monkeypatch):
    """QPO_USER names who reads: an advisor sees only their own clients' portfolios; an unknown
    e-mail is refused, with nothing shown."""
    from qpo.store import connect
    from qpo.workbench.demo import seed_demo

    seed_demo(connect(), prices=sp500)
    monkeypatch.setenv("QPO_USER", "ben.okafor@example.com")
    app = small_dashboard()
    assert app.actor.email == "ben.okafor@example.com" and app.actor.role == "advisor"
    assert app.portfolios["name"].tolist() == ["Min-Variance Core", "Tech Tilt"] and app.selected == "Tech Tilt"
    monkeypatch.setenv("QPO_USER", "ana.silva@example.com")
    app = small_dashboard()  # Tech Tilt is Ben's: Ana's first portfolio is shown instead
    assert app.portfolios["name"].tolist() == ["Balanced Growth", "Conservative Income"]
    assert app.selected == "Balanced Growth" and "Tech Tilt" not in app.dropdown.options
    monkeypatch.setenv("QPO_USER", "rita.chen@example.com")  # a researcher reads every portfolio
    assert len(small_dashboard().portfolios) == 4
    monkeypatch.setenv("QPO_USER", "nobody@example.com")
    with pytest.raises(AccessDenied, match="'nobody@example.com' is not a user of this store"):
        small_dashboard()
