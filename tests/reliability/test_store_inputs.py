"""Fuzzing the store's public write functions (hypothesis): random text (control characters, lone
surrogates, NUL, huge strings, empty) and random numbers (nan, inf, huge, negative, bools, text)
into each argument of ``add_user``, ``create_portfolio``, ``record_risk_metrics`` and
``record_optimization_run``, one argument at a time, the others valid.

Every case ends either stored and read back as written (labels without their surrounding spaces,
numbers as floats, a statistic that is not finite as NULL), or refused with a StoreError whose
message is under 300 characters and names the argument; never another exception; on refusal every
table keeps its row count. Labels and amounts are also held to an oracle written here from the
rules (so a check that refuses too much fails as well as one that refuses too little). On SQLite,
and on PostgreSQL when QPO_TEST_DATABASE_URL is set. Cases run: 4 x 125 a database (``CASES``).
"""
from __future__ import annotations

import datetime as dt
import itertools
import math
import numbers
import unicodedata

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import event

from qpo.errors import StoreError
from qpo.optimization.result import OptimizationResult
from qpo.store import (
    OptimizationRun,
    add_user,
    create_portfolio,
    get_or_create_user,
    get_portfolio,
    portfolio_holdings,
    record_optimization_run,
    record_risk_metrics,
    risk_history,
    session_scope,
)
from qpo.store.ledger import MIN_QUANTITY
from tests.conftest import database_urls
from tests.test_store.test_inputs import counts, private_store
from tests.test_store.test_store import SYSTEM

CASES = 125
SETTINGS = dict(max_examples=CASES, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                       HealthCheck.data_too_large])
RUN = itertools.count()  # unique names, so that one case's row never decides the next one's outcome
RAN: dict[str, int] = {}

SPECIAL = ["\x00", "\t", "\n", "\r", "\x1b", "\x7f", "\x85", "\u200b", "\u200d", "\u202e", "\ufeff", "\ud800",
           "\udfff", "\u00a0", "\u2028", " ", "é", "日", "🙂", "'", '"', "\\", "%", "_"]
chars = st.one_of(st.characters(codec=None, exclude_categories=()), st.sampled_from(SPECIAL))
texts = st.one_of(
    st.text(chars, max_size=30),
    st.text(chars, min_size=190, max_size=210),
    st.sampled_from(["", " ", "  x  ", "x" * 200, "x" * 201, "y" * 10_000, "Tech Tilt", "a\x00b"]),
)
NUMBERS = [math.nan, math.inf, -math.inf, 0, -0.0, -1, 1e308, -1e308, 5e-324, 10 ** 400, 2 ** 63, True, False, "1",
           None, np.float32("nan"), np.int64(7), np.float64(2.5)]
numbers_ = st.one_of(st.floats(), st.integers(), st.sampled_from(NUMBERS))
anything = st.one_of(texts, numbers_, st.none(), st.lists(st.integers(), max_size=2))


def label_ok(value, max_len: int = 200) -> bool:
    """The rule, restated: text, 1..max_len characters, not blank, no Cc/Cf/Cs but the space."""
    return (isinstance(value, str) and len(value) <= max_len and bool(value.strip())
            and all(c == " " or unicodedata.category(c) not in ("Cc", "Cf", "Cs") for c in value))


def amount_ok(value, sign: str = "any") -> bool:
    if not isinstance(value, numbers.Real) or isinstance(value, bool):
        return False
    try:
        x = float(value)
    except OverflowError:
        return False
    return math.isfinite(x) and (sign == "any" or x > 0)


def money_ok(value) -> bool:
    """A ledger's shares, price or money: an amount of at most 1e12."""
    return amount_ok(value) and abs(float(value)) <= 1e12


@pytest.fixture(scope="module", params=database_urls())
def engine(request, tmp_path_factory):
    with private_store(request.param, tmp_path_factory.mktemp("store")) as eng:
        if eng.dialect.name == "sqlite":  # a throwaway file: no fsync at each of the ~1,000 commits
            event.listen(eng, "connect", lambda conn, _record: conn.execute("PRAGMA synchronous=OFF"))
            eng.dispose()
        with session_scope(eng) as s:
            get_or_create_user(s, SYSTEM, "ana@example.com", "Ana")
            create_portfolio(s, SYSTEM, "Base", "Client", "ana@example.com", holdings={"KO": 1})
        yield eng


def attempt(engine, write, names: tuple[str, ...], *, error: type[Exception] = StoreError, own_session: bool = True):
    """``write(session)`` in its own transaction (``own_session=False``: ``write()``, a write that
    opens its own on ``engine``); returns its result, or None when it was refused with a short
    ``error`` naming one of ``names`` and nothing was written."""
    before = counts(engine)
    try:
        if not own_session:
            return write(), True
        with session_scope(engine) as s:
            return write(s), True
    except error as exc:
        message = str(exc)
        assert len(message) < 300, message
        assert any(n in message for n in names), (names, message)
        assert counts(engine) == before
        return None, False


def _count(name: str) -> None:
    RAN[name] = RAN.get(name, 0) + 1


@settings(**SETTINGS)
@given(field=st.sampled_from(["email", "name", "role"]), value=st.one_of(texts, anything))
def test_add_user(engine, field, value):
    _count("user")
    args = {"email": f"user{next(RUN)}@example.com", "name": "Ana", "role": "researcher"} | {field: value}
    names = {"email": "user e-mail", "name": "user name", "role": "role must be one of"}
    advisor, stored = attempt(engine, lambda s: add_user(s, SYSTEM, **args), (names[field],))
    if field == "name":
        assert stored == label_ok(value)
    if field == "role":
        assert stored == (value in ("advisor", "researcher", "admin"))
    if stored:
        assert (advisor.email, advisor.name, advisor.role) == (args["email"].strip(), args["name"].strip(), args["role"])


@st.composite
def holdings(draw):
    tickers = st.one_of(st.sampled_from(["KO", "PEP", "AAPL", "ko", "ZZZZ", "BRK.B"]), texts)
    return draw(st.dictionaries(tickers, numbers_, min_size=0, max_size=4))


@settings(**SETTINGS)
@given(field=st.sampled_from(["name", "client_name", "benchmark", "description", "holdings"]),
       value=st.one_of(texts, anything), book=holdings())
def test_create_portfolio(engine, field, value, book):
    _count("portfolio")
    args = {"name": f"Portfolio {next(RUN)}", "client_name": "Client", "benchmark": "SP500",
            "description": "a note\nover two lines", "holdings": {"KO": 10, "PEP": 2.5}}
    args[field] = book if field == "holdings" else value
    names = {"name": ("portfolio name", "exists already"), "client_name": ("client name",), "benchmark": ("benchmark",),
             "description": ("description",), "holdings": ("shares", "ticker", "symbol", "holdings", "given twice")}

    def write(s):
        get_or_create_user(s, SYSTEM, "ana@example.com", "Ana")
        p = create_portfolio(s, SYSTEM, args["name"], args["client_name"], "ana@example.com",
                             holdings=args["holdings"], benchmark=args["benchmark"], description=args["description"])
        return p.name

    name, stored = attempt(engine, write, names[field])
    if field == "client_name":
        assert stored == label_ok(value)
    if field == "benchmark":
        assert stored == (value is None or label_ok(value, 64))
    if field == "holdings":
        known = {"KO", "PEP", "AAPL", "BRK.B"}  # BRK.B is not in the bundled panel
        # the ledger's smallest quantity of shares (a millionth): 2.9e-218 shares is refused, not stored
        ok = bool(book) and all(t in known - {"BRK.B"} and money_ok(q) and float(q) >= MIN_QUANTITY
                                for t, q in book.items())
        assert stored == ok, book
    if not stored:
        return
    with session_scope(engine) as s:
        p = get_portfolio(s, SYSTEM, name)
        assert (p.client_name, p.benchmark, p.description) == (
            args["client_name"].strip(), args["benchmark"] and args["benchmark"].strip(), args["description"])
        # the holdings come back from the ledger, one opening entry each
        assert portfolio_holdings(s, SYSTEM, name).to_dict() == {t: float(q) for t, q in args["holdings"].items()}


dates = st.one_of(st.dates(min_value=dt.date(1900, 1, 1)), st.dates().map(str), st.datetimes().map(pd.Timestamp),
                  texts, anything)


@settings(**SETTINGS)
@given(field=st.sampled_from(["as_of", "metric", "value", "mlflow_run_id"]), value=st.one_of(texts, anything, dates))
def test_record_risk_metrics(engine, field, value):
    _count("risk metrics")
    args = {"as_of": dt.date(2022, 12, 28), "metric": "var", "value": 0.031, "mlflow_run_id": f"run-{next(RUN)}"}
    args[field] = tuple(value) if field == "metric" and isinstance(value, list) else value  # a key: hashable
    names = {"as_of": ("as_of",), "metric": ("metric name",), "value": ("not finite numbers",),
             "mlflow_run_id": ("mlflow_run_id",)}

    def write(s):
        return record_risk_metrics(s, SYSTEM, "Base", args["as_of"], {args["metric"]: args["value"]},
                                   mlflow_run_id=args["mlflow_run_id"])

    rows, stored = attempt(engine, write, names[field])
    if field == "metric":
        assert stored == label_ok(value, 64)
    if field == "value":
        assert stored == amount_ok(value)
    if field == "mlflow_run_id":
        assert stored == (value is None or label_ok(value, 64))
    if not stored:
        return
    with session_scope(engine) as s:
        hist = risk_history(s, SYSTEM, "Base")
        run_id = None if args["mlflow_run_id"] is None else args["mlflow_run_id"].strip()
        mine = hist[(hist["metric"] == args["metric"].strip()) & (hist["as_of"] == rows[0].as_of)
                    & (hist["mlflow_run_id"].isna() if run_id is None else hist["mlflow_run_id"] == run_id)]
        assert mine["value"].tolist() == [float(args["value"])]
    if isinstance(value, dt.date) and field == "as_of":
        assert rows[0].as_of == (value.date() if isinstance(value, dt.datetime) else value)


json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), texts, st.sampled_from(NUMBERS)),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.one_of(texts, st.integers()), inner, max_size=3)),
    max_leaves=6)


@settings(**SETTINGS)
@given(field=st.sampled_from(["objective", "method", "solver", "status", "expected_return", "sharpe", "weights",
                              "fallback_reason", "parameters", "mlflow_run_id"]),
       value=st.one_of(texts, anything), weights=st.dictionaries(st.one_of(st.sampled_from(["KO", "PEP"]), texts),
                                                                  numbers_, max_size=3),
       parameters=st.dictionaries(st.one_of(texts, st.integers()), json_values, max_size=3))
def test_record_optimization_run(engine, field, value, weights, parameters):
    _count("optimization run")
    fields = dict(weights=pd.Series({"KO": 0.6, "PEP": 0.4}, dtype=float), expected_return=0.08, volatility=0.15,
                  sharpe=0.53, objective="min_variance", method="classical", solver="CLARABEL", status="optimal",
                  periods_per_year=252, fallback_reason=None)
    extra = {"parameters": {"window": 500}, "mlflow_run_id": f"run-{next(RUN)}"}
    if field == "weights":
        fields["weights"] = weights
    elif field == "parameters":
        extra["parameters"] = parameters
    elif field == "mlflow_run_id":
        extra["mlflow_run_id"] = value
    else:
        fields[field] = value
    names = {"weights": ("weights",), "parameters": ("parameters",), "fallback_reason": ("fallback reason",),
             "mlflow_run_id": ("mlflow_run_id",)}
    result = OptimizationResult(**fields)
    run, stored = attempt(engine, lambda s: record_optimization_run(s, SYSTEM, result, portfolio="Base", **extra),
                          names.get(field, (field,)))
    if field in ("objective", "solver", "method", "status"):
        assert stored == label_ok(value, 32 if field in ("method", "status") else 64)
    if field in ("expected_return", "sharpe"):
        assert stored == (value is None or (isinstance(value, numbers.Real) and not isinstance(value, bool)))
    if not stored:
        return
    with session_scope(engine) as s:
        back = s.get(OptimizationRun, run.id)
        for f in ("objective", "method", "solver", "status"):
            assert getattr(back, f) == fields[f].strip()
        for f in ("expected_return", "volatility", "sharpe"):
            v = fields[f]
            expected = None if v is None or not amount_ok(v) else float(v)
            assert getattr(back, f) == expected
        assert back.weights == {k: float(v) for k, v in dict(fields["weights"]).items()}
        assert back.fallback_reason == fields["fallback_reason"]
        assert back.mlflow_run_id == (None if extra["mlflow_run_id"] is None else extra["mlflow_run_id"].strip())
        assert back.parameters == _as_json(extra["parameters"])


def _as_json(value):
    if isinstance(value, dict):
        return {k: _as_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_as_json(v) for v in value]
    if isinstance(value, bool | np.bool_) or value is None:
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    return value

