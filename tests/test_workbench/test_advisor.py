"""The advisor dashboard reads the store and never creates or seeds one (issue 16: a store deleted
while the dashboard ran came back, on the next visit, as the four demo portfolios)."""
import pytest

from qpo import config
from qpo.errors import MissingStoreError, StoreError


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
        assert list_portfolios(s).empty


def test_a_store_never_created_is_refused(qpo_home, small_dashboard):
    with pytest.raises(MissingStoreError, match="does not exist, and nothing was created"):
        small_dashboard()
    assert list(qpo_home.iterdir()) == []


def test_an_empty_store_is_refused_with_what_to_do(qpo_home, small_dashboard):
    from qpo.store import connect

    connect()  # `qpo db upgrade`: the schema, no portfolio
    with pytest.raises(StoreError, match=r"holds no client portfolio: add one, or run `qpo db seed`"):
        small_dashboard()
