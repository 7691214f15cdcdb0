"""Fuzzing the rest of the store's client-data writes (hypothesis), as test_store_inputs.py does for
add_user, create_portfolio and the recorded numbers: ``update_portfolio``, ``add_transaction`` and
``import_transactions``, ``save_proposal`` and ``reject_proposal`` (with its reason) and
``set_password``, one argument fuzzed at a time, the others valid.

Every case ends either written and read back as given (labels without their surrounding spaces,
text verbatim, numbers as floats), or refused with a StoreError under 300 characters naming the
field, every table keeping its row count (``attempt``: nothing half-written); never a raw driver
error. Labels, texts, amounts and passwords are held to oracles restated here from the rules. On
SQLite, and on PostgreSQL when QPO_TEST_DATABASE_URL is set. Cases: ``CASES`` a function a
database (fewer for set_password: argon2 is slow on purpose).
"""
from __future__ import annotations

import datetime as dt
import math
import re

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qpo.store import (
    add_transaction,
    authenticate,
    get_or_create_user,
    get_portfolio,
    get_proposal,
    import_transactions,
    list_proposals,
    list_transactions,
    position,
    reject_proposal,
    save_proposal,
    session_scope,
    set_password,
    update_portfolio,
)
from qpo.store import create_portfolio as _create
from tests.reliability import test_store_inputs
from tests.reliability.test_store_inputs import (
    NUMBERS,
    RUN,
    SETTINGS,
    _as_json,
    amount_ok,
    anything,
    attempt,
    dates,
    json_values,
    label_ok,
    numbers_,
    texts,
)
from tests.test_store.book_stores import minimal_record, trade
from tests.test_store.test_store import SYSTEM

engine = test_store_inputs.engine  # the module's store, on SQLite and PostgreSQL
CASES = 40
FUZZ = {**SETTINGS, "max_examples": CASES}
DAY = dt.date(2023, 1, 3)
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")


def text_ok(value, max_len: int = 100_000) -> bool:
    """The long-text rule, restated: text of at most max_len characters, no control character but
    tab and line breaks, no lone surrogate."""
    return isinstance(value, str) and len(value) <= max_len and not _CONTROL.search(value)


def _portfolio(engine, cash: float = 1_000_000.0, holdings=None) -> str:
    name = f"Fuzz {next(RUN)}"
    with session_scope(engine) as s:
        get_or_create_user(s, SYSTEM, "ana@example.com", "Ana")
        _create(s, SYSTEM, name, "Client", "ana@example.com", cash=cash, holdings=holdings, trade_date="2022-12-01")
    return name


# -- update_portfolio --------------------------------------------------------------------------------
@settings(**FUZZ)
@given(field=st.sampled_from(["name", "client_name", "benchmark", "account", "description", "advisor_email",
                              "strategy"]),
       value=st.one_of(texts, anything, st.dictionaries(texts, json_values, max_size=3),
                       st.fixed_dictionaries({"schema_version": st.sampled_from([1, 2, "1", True, None])})))
def test_update_portfolio(engine, field, value):
    name = _portfolio(engine)
    names = {"name": ("portfolio name", "exists already"), "client_name": ("client name",),
             "benchmark": ("benchmark",), "account": ("account",), "description": ("description",),
             "advisor_email": ("advisor", "e-mail", "user"), "strategy": ("strategy",)}
    renamed, stored = attempt(engine, lambda s: update_portfolio(s, SYSTEM, name, **{field: value}).name, names[field])
    if field == "client_name":
        assert stored == label_ok(value)
    if field in ("benchmark", "account"):
        assert stored == (value is None or label_ok(value, 64))
    if field == "description":
        assert stored == (value is None or text_ok(value))
    if field == "name" and not label_ok(value):
        assert not stored
    if not stored:
        with session_scope(engine) as s:  # the portfolio is as it was
            p = get_portfolio(s, SYSTEM, name)
            assert (p.name, p.client_name, p.description, p.advisor.email) == (name, "Client", None, "ana@example.com")
        return
    with session_scope(engine) as s:
        p = get_portfolio(s, SYSTEM, renamed)
        got = {"advisor_email": p.advisor.email if p.advisor is not None else None}.get(field, getattr(p, field, None))
    if field in ("name", "client_name", "benchmark", "account", "advisor_email"):
        assert got == (None if value is None else value.strip())
    elif field == "description":
        assert got == value
    else:  # strategy: the JSON object as given (or None)
        assert got == (None if value is None else _as_json(dict(value)))


# -- add_transaction / import_transactions --------------------------------------------------------
VALID = {
    "buy": dict(kind="buy", trade_date=DAY, ticker="KO", quantity=2, price=50.0, fees=1.0, amount=None, note="n"),
    "deposit": dict(kind="deposit", trade_date=DAY, ticker=None, quantity=None, price=None, fees=0.0, amount=500.0,
                    note=None),
}
TX_NAMES = {"kind": ("kind",), "trade_date": ("date",), "ticker": ("ticker", "symbol"), "quantity": ("quantity",),
            "price": ("price",), "fees": ("fees",), "amount": ("amount",), "note": ("note",)}
#: what a refusal by the ledger's replay names instead of a field: the cash or shares it lacks
LEDGER = ("row 1", "needs", "holds")


def _blank(v) -> bool:
    """What a ledger row treats as not given: None, NaN, NaT or blank text."""
    return v is None or v is pd.NaT or (isinstance(v, float) and math.isnan(v)) or (isinstance(v, str) and not v.strip())


def _check_written(engine, name, ids, rows):
    with session_scope(engine) as s:
        ledger = list_transactions(s, SYSTEM, name)
        pos = position(s, SYSTEM, name)
    assert math.isfinite(pos.cash), pos.cash
    mine = ledger.set_index("id").loc[ids].reset_index().to_dict("records")
    for got, row in zip(mine, rows, strict=True):
        assert got["kind"] == row["kind"].strip().lower() or got["kind"] == row["kind"]
        for k in ("quantity", "price", "fees", "amount"):
            v = row[k]
            if not _blank(v):
                assert got[k] == float(v), (k, got[k], v)
        if not _blank(row["note"]):
            assert got["note"] == row["note"]


@settings(**FUZZ)
@given(base=st.sampled_from(sorted(VALID)), field=st.sampled_from(sorted(TX_NAMES)),
       value=st.one_of(texts, anything, dates, st.sampled_from(NUMBERS)))
def test_add_transaction(engine, base, field, value):
    name = _portfolio(engine)
    row = dict(VALID[base]) | {field: value}
    args = {k: v for k, v in row.items() if k not in ("kind",)}
    written, stored = attempt(engine, lambda s: [add_transaction(s, SYSTEM, name, row["kind"], **args).id],
                              TX_NAMES[field] + LEDGER)
    if field in ("quantity", "price") and base == "buy":
        assert not stored or (amount_ok(value) and float(value) > 0)
    if field == "note":
        assert stored == (_blank(value) or text_ok(value))
    if field == "amount" and base == "deposit":
        assert not stored or (amount_ok(value) and float(value) > 0)
    if stored:
        _check_written(engine, name, written, [row])


@st.composite
def tx_rows(draw):
    rows = []
    for _ in range(draw(st.integers(1, 3))):
        row = dict(VALID[draw(st.sampled_from(sorted(VALID)))])
        if draw(st.booleans()):
            row[draw(st.sampled_from(sorted(TX_NAMES)))] = draw(st.one_of(texts, anything, dates))
        rows.append(row)
    return rows


@settings(**FUZZ)
@given(rows=tx_rows())
def test_import_transactions_all_or_nothing(engine, rows):
    name = _portfolio(engine)
    with session_scope(engine) as s:
        before = len(list_transactions(s, SYSTEM, name))
    fields = tuple(n for names in TX_NAMES.values() for n in names) + LEDGER
    written, stored = attempt(engine, lambda s: [t.id for t in import_transactions(s, SYSTEM, name, rows)], fields)
    with session_scope(engine) as s:
        after = len(list_transactions(s, SYSTEM, name))
    assert after == before + (len(rows) if stored else 0)  # all of them or none
    if stored:
        _check_written(engine, name, written, rows)


# -- proposals --------------------------------------------------------------------------------------
RECORD_FIELDS = ["summary", "target", "parameters", "trades", "result", "as_of", "prices_as_of", "strategy"]
#: two gaps the fuzz found in the store, each with its own test below: a proposal's ledger_version was
#: passed to int() unchecked, and a password with a lone surrogate reached argon2 (UnicodeEncodeError)
LEDGER_VERSIONS = [None, "", "12", [], 2.7, math.inf, True, 2**63]
_SURROGATE = re.compile("[\ud800-\udfff]")


@settings(**FUZZ)
@given(field=st.sampled_from(RECORD_FIELDS),
       value=st.one_of(json_values, anything, dates,
                       st.lists(st.fixed_dictionaries({"side": st.sampled_from(["buy", "sell", "hold"]),
                                                       "ticker": st.one_of(st.just("KO"), texts),
                                                       "shares": numbers_, "price": numbers_}), max_size=2)))
def test_save_proposal(engine, field, value):
    name = _portfolio(engine, holdings={"KO": 10})
    record = minimal_record(engine, name, [trade("sell", "KO", 1.0, 50.0)], prices_as_of=DAY)
    record[field] = value
    proposal, stored = attempt(engine, lambda s: save_proposal(s, SYSTEM, name, record).id,
                               (field.replace("_", " "), field, "proposal"))
    if not stored:
        return
    with session_scope(engine) as s:
        p = get_proposal(s, SYSTEM, proposal)
        if field in ("summary", "target", "parameters", "strategy"):
            expected = _as_json(value)
            if field == "parameters" and not value or field in ("summary", "strategy") and value is None:
                expected = {}  # the store keeps an empty object for parameters, a summary or strategy not given
            assert getattr(p, field) == expected
        if field == "trades":
            assert p.trades == _as_json(list(value))


def test_save_proposal_ledger_version_is_checked(engine):
    if engine.dialect.name != "sqlite":
        pytest.skip("one database is enough: the check comes before any SQL")
    name = _portfolio(engine, holdings={"KO": 10})
    for value in LEDGER_VERSIONS:
        record = minimal_record(engine, name, [trade("sell", "KO", 1.0, 50.0)], prices_as_of=DAY)
        record["ledger_version"] = value
        _, stored = attempt(engine, lambda s, r=record: save_proposal(s, SYSTEM, name, r),
                            ("ledger_version", "ledger version"))
        assert not stored, value  # a whole number >= 0 only
        with session_scope(engine) as s:
            assert list_proposals(s, SYSTEM, name).empty, value


@settings(**FUZZ)
@given(reason=st.one_of(texts, anything))
def test_reject_proposal(engine, reason):
    name = _portfolio(engine, holdings={"KO": 10})
    with session_scope(engine) as s:
        pid = save_proposal(s, SYSTEM, name, minimal_record(engine, name, [trade("sell", "KO", 1.0, 50.0)],
                                                            prices_as_of=DAY)).id
    _, stored = attempt(engine, lambda s: reject_proposal(s, SYSTEM, pid, reason).id, ("reason",))
    assert stored == (text_ok(reason) and bool(reason.strip()))
    with session_scope(engine) as s:
        p = get_proposal(s, SYSTEM, pid)
        assert (p.status, p.reason) == (("rejected", reason) if stored else ("open", None))


# -- set_password -----------------------------------------------------------------------------------
@settings(**{**SETTINGS, "max_examples": 12})
@given(password=st.one_of(texts, anything, st.text(min_size=8, max_size=40), st.sampled_from(
    ["x" * 1024, "x" * 1025, "pass\x00word", "pässwörd🙂", "        "])).filter(
    lambda p: not (isinstance(p, str) and _SURROGATE.search(p))))  # see test_a_password_with_a_lone_surrogate
def test_set_password(engine, password):
    email = f"pw{next(RUN)}@example.com"
    with session_scope(engine) as s:
        get_or_create_user(s, SYSTEM, email, "Pat")
    _, stored = attempt(engine, lambda s: set_password(s, SYSTEM, email, password), ("password",))
    ok = isinstance(password, str) and 8 <= len(password) <= 1024 and "\x00" not in password
    assert stored == ok
    with session_scope(engine) as s:
        assert (authenticate(s, email, password) is not None) == ok
    if not stored and isinstance(password, str) and len(password) >= 4:
        with pytest.raises(Exception) as info:  # noqa: PT011 - the message must not quote the password
            with session_scope(engine) as s:
                set_password(s, SYSTEM, email, password)
        assert password not in str(info.value)


def test_a_password_with_a_lone_surrogate_is_refused(engine):
    email = f"pw{next(RUN)}@example.com"
    with session_scope(engine) as s:
        get_or_create_user(s, SYSTEM, email, "Pat")
    _, stored = attempt(engine, lambda s: set_password(s, SYSTEM, email, "secret\ud800word"), ("password",))
    assert not stored
    with session_scope(engine) as s:
        assert authenticate(s, email, "secret\ud800word") is None  # and signing in with it is a plain "no"
