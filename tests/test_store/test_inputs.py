"""Every input is checked at the store's boundary, whatever calls it (issue 16): the repository
functions and the models themselves (``@validates``) refuse bad names, text, numbers, dates,
tickers and e-mails with a StoreError under 300 characters that names the field, and nothing is
written. On SQLite and, when QPO_TEST_DATABASE_URL is set, on a real PostgreSQL."""
from __future__ import annotations

import contextlib
import datetime as dt

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import func, select

import qpo
from qpo.errors import StoreError
from qpo.store import (
    AuditEntry,
    ClientPortfolio,
    OptimizationRun,
    RiskMetric,
    Transaction,
    User,
    connect,
    create_portfolio,
    get_or_create_user,
    get_portfolio,
    portfolio_holdings,
    record_optimization_run,
    record_risk_metrics,
    risk_history,
    session_scope,
)
from tests.conftest import database_urls
from tests.test_store.test_store import SYSTEM, fresh_store_url

MODELS = (User, ClientPortfolio, Transaction, OptimizationRun, RiskMetric, AuditEntry)
Advisor = User  # the people of the store (the table is still named advisors)


def get_or_create_advisor(s, email, name, role="advisor"):
    """The advisor with this e-mail, added by the tests' system actor when the store has none."""
    return get_or_create_user(s, SYSTEM, email, name, role)


def portfolio_of(s, name, client, advisor, holdings, **kw):
    """``create_portfolio`` by the tests' system actor, its opening holdings a dict of shares."""
    return create_portfolio(s, SYSTEM, name, client, advisor.email, holdings=holdings, **kw)


@contextlib.contextmanager
def private_store(param: str, folder):
    """An engine on a fresh store (``test_store.fresh_store_url``: a SQLite file in ``folder`` or a
    private PostgreSQL schema, dropped afterwards)."""
    with fresh_store_url(param, folder) as url:
        yield connect(url)


@pytest.fixture(params=database_urls())
def engine(request, tmp_path):
    with private_store(request.param, tmp_path) as eng:
        yield eng


def counts(engine) -> dict[str, int]:
    """Rows in each table (one query)."""
    query = select(*(select(func.count()).select_from(m).scalar_subquery().label(m.__tablename__) for m in MODELS))
    with engine.connect() as conn:
        return dict(conn.execute(query).one()._mapping)


def refused(engine, write, *fields: str, case: object = None) -> str:
    """Run ``write(session)`` in its own transaction: it must raise a StoreError under 300
    characters naming each of ``fields``, and leave every table as it was."""
    before = counts(engine)
    with pytest.raises(StoreError) as info:
        with session_scope(engine) as s:
            write(s)
    message = str(info.value)
    assert len(message) < 300, (case, message)
    for field in fields:
        assert field in message, (case, message)
    assert counts(engine) == before, case
    return message


@pytest.fixture
def book(engine):
    """An advisor and one portfolio (KO, PEP) in the store."""
    with session_scope(engine) as s:
        advisor = get_or_create_advisor(s, "ana@example.com", "Ana")
        portfolio_of(s, "P", "Client", advisor, {"KO": 10, "PEP": 5}, trade_date="2022-12-01")
    return engine


def test_a_huge_name_is_refused_with_a_short_message(engine):
    with session_scope(engine) as s:
        get_or_create_advisor(s, "ana@example.com", "Ana")
    huge = "N" * 10_000

    def write(s):
        advisor = get_or_create_advisor(s, "ana@example.com", "Ana")
        portfolio_of(s, huge, "Client", advisor, {"KO": 1})

    message = refused(engine, write, "portfolio name", "1 to 200 characters", "(10000 characters)")
    assert huge[:41] not in message
    refused(engine, lambda s: get_or_create_advisor(s, "bob@example.com", huge), "user name", "(10000 characters)")


BAD_LABELS = {
    "empty": "", "spaces": "   ", "nul": "a\x00b", "tab": "a\tb", "newline": "Ana\n", "escape": "\x1b[31mred",
    "lone surrogate": "x\ud800y", "zero-width space (Cf)": "a\u200bb", "bidi override (Cf)": "a\u202eb",
    "line separator (Zl)": "Ana\u2028Silva", "paragraph separator (Zp)": "Ana\u2029",
    "201 characters": "a" * 201, "not text": 42, "none": None,
}


@pytest.mark.parametrize("field", ["portfolio name", "client name", "user name"])
def test_names_are_checked(engine, field):
    with session_scope(engine) as s:
        get_or_create_advisor(s, "ana@example.com", "Ana")
    for case, value in BAD_LABELS.items():
        def write(s, value=value):
            advisor = s.scalar(select(Advisor))
            if field == "user name":
                get_or_create_advisor(s, "new@example.com", value)
            else:
                names = {"portfolio name": "P", "client name": "C"} | {field: value}
                portfolio_of(s, names["portfolio name"], names["client name"], advisor, {"KO": 1})

        message = refused(engine, write, field, "1 to 200 characters without control characters", case=case)
        if isinstance(value, str) and value.strip() and len(value) <= 200:
            assert "U+" in message and "at position" in message, case  # says which character and where


def test_names_keep_ordinary_unicode_and_lose_surrounding_spaces(engine):
    name = "Ålesund Fonds — 日本株 ★ café\u00a0Q"  # letters, symbols, a no-break space: all fine
    with session_scope(engine) as s:
        advisor = get_or_create_advisor(s, "  ana@example.com ", " Ana Silva ")
        portfolio_of(s, f"  {name} ", "Ø. Client", advisor, {"KO": 1}, description="line 1\n\tline 2\r\n")
    with session_scope(engine) as s:
        p = get_portfolio(s, SYSTEM, f" {name}  ")
        assert (p.name, p.client_name, p.advisor.name, p.advisor.email) == (name, "Ø. Client", "Ana Silva",
                                                                             "ana@example.com")
        assert p.description == "line 1\n\tline 2\r\n"


def test_long_text_refuses_nul_surrogates_and_pages_beyond_the_limit(engine):
    """PostgreSQL itself refuses NUL in text (with a driver error): the store's check comes first."""
    for description in ["a\x00b", "x\udfff", "\x07bell", "d" * 100_001, b"bytes"]:
        def write(s, description=description):
            portfolio_of(s, "P", "C", get_or_create_advisor(s, "ana@example.com", "Ana"), {"KO": 1},
                             description=description)

        refused(engine, write, "description", "NUL", case=description[:10])


BAD_QUANTITIES = {"nan": float("nan"), "inf": float("inf"), "-inf": -np.inf, "negative": -1.0, "zero": 0,
                  "bool": True, "text": "10", "huge int": 10 ** 400, "none": None, "numpy nan": np.float32("nan")}


def test_holding_quantities_are_finite_positive_numbers(engine):
    for case, qty in BAD_QUANTITIES.items():
        def write(s, qty=qty):
            portfolio_of(s, "P", "C", get_or_create_advisor(s, "ana@example.com", "Ana"), {"KO": 1, "PEP": qty})

        refused(engine, write, "PEP: shares", "must be a positive finite number", case=case)

    def tiny(s):  # a holding worth nothing that `portfolio show` listed at 100 % (the ledger's tolerance is 1e-9)
        portfolio_of(s, "P", "C", get_or_create_advisor(s, "ana@example.com", "Ana"), {"KO": 1, "PEP": 1e-300})

    refused(engine, tiny, "PEP: shares 1e-300 are below 1e-06, the smallest a ledger records", case="1e-300")


def test_emails_look_like_emails(engine):
    for email in ["not-an-email", "a@b", "a b@example.com", "@example.com", "ana@", "a@@b.com", "ana@example.com\n",
                  "", 7, "a@b." + "c" * 300]:
        refused(engine, lambda s, email=email: get_or_create_advisor(s, email, "Ana"), "user e-mail", case=email)


def test_an_unknown_role_is_a_store_error_not_a_constraint_violation(engine):
    message = refused(engine, lambda s: get_or_create_advisor(s, "ana@example.com", "Ana", role="boss"), "role must be one of")
    assert "advisor, researcher, admin" in message


def test_an_existing_advisor_is_still_checked(book):
    from qpo.store import add_user

    # the name is checked before the e-mail is found taken: the refusal says what is wrong with it
    refused(book, lambda s: add_user(s, SYSTEM, "ana@example.com", "\x00"), "user name")
    refused(book, lambda s: add_user(s, SYSTEM, "ana@example.com", "Ana"), "exists already")


def test_tickers_match_the_universe(engine, sp500):
    assert set(qpo.data.BUNDLED_SECTORS) == set(sp500.columns)  # the default universe is the bundled panel's

    def portfolio(holdings, name="P", **kw):
        return lambda s: portfolio_of(s, name, "C", get_or_create_advisor(s, "ana@example.com", "Ana"), holdings, **kw)

    refused(engine, portfolio({"KO": 1, "ZZZZ": 2}), "ZZZZ: not a ticker of the bundled panel or the store")
    assert "did you mean 'KO'?" in refused(engine, portfolio({"ko": 1}), "ko: not a ticker")
    for bad in ("K O", " KO", "KO\n", "WAY-TOO-LONG-A-SYMBOL", "", "\ud800"):
        refused(engine, portfolio({bad: 1}), "is not a symbol of 1 to 16 characters")
    refused(engine, portfolio({"BTC-USD": 1}, known_tickers=["ETH-USD"]), "BTC-USD: not in the price data")
    # the caller's own universe (its prices' columns), then the store knows the ticker
    with session_scope(engine) as s:
        portfolio({"BTC-USD": 0.5}, known_tickers=pd.Index(["BTC-USD", "ETH-USD"]))(s)
    with session_scope(engine) as s:
        portfolio({"BTC-USD": 1.5, "KO": 3}, name="Q")(s)
        assert portfolio_holdings(s, SYSTEM, "Q").to_dict() == {"BTC-USD": 1.5, "KO": 3.0}


def test_many_problems_make_one_short_message(engine):
    holdings = {f"T{i:03d}": -i for i in range(100)}

    def write(s):
        portfolio_of(s, "P", "C", get_or_create_advisor(s, "ana@example.com", "Ana"), holdings)

    message = refused(engine, write, "T000: shares 0 must be a positive", "more")
    assert "; and 197 more" in message  # 100 bad quantities and 100 unknown tickers, three shown


def test_an_unknown_portfolio_is_a_short_message_that_lists_no_names(book):
    with session_scope(book) as s:
        advisor = s.scalar(select(Advisor))
        for i in range(60):
            portfolio_of(s, f"Portfolio number {i:02d} with a long name", "C", advisor, {"KO": 1})
    message = refused(book, lambda s: get_portfolio(s, SYSTEM, "Nope" * 50), "no portfolio named 'NopeNope",
                      "`qpo portfolio list` shows the ones you may see")
    assert "Portfolio number" not in message  # no name is listed: an advisor learns no other advisor's portfolios
    assert "(200 characters)" in message


MAKERS = [
    lambda: Transaction(portfolio_id=1, kind="transfer_in", trade_date=dt.date(2022, 12, 28), ticker="KO",
                        quantity=float("inf")),
    lambda: Transaction(portfolio_id=1, kind="transfer_in", trade_date=dt.date(2022, 12, 28), ticker="K\x00", quantity=1),
    lambda: Transaction(portfolio_id=1, kind="buy", trade_date=dt.date(2022, 12, 28), ticker="KO", quantity=1,
                        price=float("nan")),
    lambda: Transaction(portfolio_id=1, kind="buy", trade_date=dt.date(2022, 12, 28), ticker="KO", quantity=1, price=-5),
    lambda: Transaction(portfolio_id=1, kind="buy", trade_date=dt.date(2022, 12, 28), ticker="KO", quantity=0, price=5),
    lambda: Transaction(portfolio_id=1, kind="buy", trade_date=dt.date(2022, 12, 28), ticker="KO", quantity=1, price=5,
                        fees=-1),
    lambda: Transaction(portfolio_id=1, kind="buy", trade_date="yesterday-ish", ticker="KO", quantity=1, price=5),
    lambda: Transaction(portfolio_id=1, kind="short", trade_date=dt.date(2022, 12, 28), ticker="KO", quantity=1, price=5),
    lambda: Transaction(portfolio_id=1, kind="deposit", trade_date=dt.date(2022, 12, 28), amount=float("nan")),
    lambda: Advisor(email="ana@example.com", name="Ana", role="root"),
    lambda: ClientPortfolio(name="P", client_name="C", advisor_id=1, base_currency="usd"),
    lambda: RiskMetric(portfolio_id=1, as_of=dt.date(2022, 12, 28), metric="var", value=float("-inf")),
    lambda: OptimizationRun(objective="o", method="m", solver="s", status="optimal", weights={"KO": float("nan")}),
]


def test_models_refuse_bad_values_on_every_orm_path(book):
    """Building a model directly (as the demo seeding does for transactions) goes through the same
    checks: nothing can bypass them through the ORM."""
    for i, make in enumerate(MAKERS):
        refused(book, lambda s, make=make: s.add(make()), case=i)


def test_models_take_numpy_numbers_and_dates(book):
    with session_scope(book) as s:
        pid = get_portfolio(s, SYSTEM, "P").id
        s.add(Transaction(portfolio_id=pid, kind="sell", trade_date=pd.Timestamp("2022-12-28"), ticker="KO",
                          quantity=np.int64(3), price=np.float32(60.5), fees=np.float64(0.5)))
    with session_scope(book) as s:
        t = s.scalar(select(Transaction).where(Transaction.kind == "sell"))
        assert (t.trade_date, t.quantity, t.price, t.fees) == (dt.date(2022, 12, 28), 3.0, 60.5, 0.5)
        assert type(t.quantity) is float
        assert portfolio_holdings(s, SYSTEM, "P").to_dict() == {"KO": 7.0, "PEP": 5.0}


def test_risk_metric_dates_are_checked(book):
    for as_of in ["not a date", "2022-13-45", "", None, 20221228, pd.NaT, "2022-12-28\x00", np.datetime64("NaT")]:
        refused(book, lambda s, as_of=as_of: record_risk_metrics(s, SYSTEM, "P", as_of, {"var": 0.02}), "as_of", "YYYY-MM-DD",
                case=as_of)


def test_risk_metrics_are_checked(book):
    for metrics, field in [
        ({"var\n": 0.02}, "metric name"), ({"": 0.02}, "metric name"), ({"m" * 65: 0.02}, "1 to 64 characters"),
        ({"var": "0.02"}, "not finite numbers"), ({"var": True}, "not finite numbers"), ({"var": 10 ** 400}, "not finite"),
        ({"var": 0.01, " var ": 0.02}, "given twice"), ([("var", 0.02)], "metrics must be a mapping"),
    ]:
        refused(book, lambda s, metrics=metrics: record_risk_metrics(s, SYSTEM, "P", "2022-12-28", metrics), field, case=metrics)
    refused(book, lambda s: record_risk_metrics(s, SYSTEM, "P", "2022-12-28", {"var": 1.0}, mlflow_run_id="r\x00"), "mlflow_run_id")
    refused(book, lambda s: record_risk_metrics(s, SYSTEM, "Nope", "2022-12-28", {"var": 1.0}), "no portfolio named 'Nope'")


def test_recording_a_runs_metrics_again_replaces_them(book):
    """Before: the second call broke the unique constraint with a raw IntegrityError."""
    for value in (0.02, 0.03):
        with session_scope(book) as s:
            record_risk_metrics(s, SYSTEM, "P", dt.date(2022, 12, 28), {"var": value, "es": -0.5}, mlflow_run_id="run-1")
    with session_scope(book) as s:
        assert risk_history(s, SYSTEM, "P").set_index("metric")["value"].to_dict() == {"es": -0.5, "var": 0.03}


def _result(**changes):
    from qpo.optimization.result import OptimizationResult

    fields = dict(weights=pd.Series({"KO": 0.6, "PEP": 0.4}), expected_return=0.08, volatility=0.15, sharpe=0.53,
                  objective="min_variance", method="classical", solver="CLARABEL", status="optimal", periods_per_year=252)
    return OptimizationResult(**(fields | changes))


RUN_CASES = [
    ({"weights": pd.Series({"KO": np.nan, "PEP": 1.0})}, None, "weights['KO']"),
    ({"weights": pd.Series({"KO": 1.0, 3: 0.0})}, None, "weights ticker"),
    ({"objective": "x" * 65}, None, "objective"),
    ({"status": ""}, None, "status"),
    ({"fallback_reason": "solver said \x00"}, None, "fallback reason"),
    ({"sharpe": "high"}, None, "sharpe"),
    ({}, {"window": float("nan")}, "parameters['window']"),
    ({}, {"as_of": pd.Timestamp("2022-12-28")}, "parameters['as_of']"),
    ({}, {1: "one"}, "parameters keys must be text"),
    ({}, {"nested": {"deeper": ["ok", "\ud800"]}}, "parameters['nested']['deeper'][1]"),
    ({}, {"n": 10 ** 30}, "parameters['n']"),
]


def test_optimization_runs_are_checked(book):
    for i, (changes, parameters, field) in enumerate(RUN_CASES):
        refused(book, lambda s, c=changes, p=parameters: record_optimization_run(s, SYSTEM, _result(**c), portfolio="P", parameters=p),
                field, case=i)


def test_optimization_runs_store_numpy_parameters_and_undefined_statistics(book):
    """Before: a numpy integer among the parameters ended in a TypeError from the JSON encoder."""
    params = {"window": np.int64(500), "alpha": np.float64(0.95), "flags": (True, None), "note": "two\nlines"}
    with session_scope(book) as s:
        run_id = record_optimization_run(s, SYSTEM, _result(sharpe=float("inf")), portfolio="P", parameters=params).id
    with session_scope(book) as s:
        run = s.get(OptimizationRun, run_id)
        assert run.parameters == {"window": 500, "alpha": 0.95, "flags": [True, None], "note": "two\nlines"}
        assert run.sharpe is None and run.volatility == 0.15 and run.weights == {"KO": 0.6, "PEP": 0.4}


def test_record_optimization_run_needs_a_result(book):
    refused(book, lambda s: record_optimization_run(s, SYSTEM, {"weights": {}}, portfolio="P"), "result must be an OptimizationResult")
