"""`qpo user add / list / passwd`: people, roles, passwords read from stdin only and never shown."""
from __future__ import annotations

import pytest
from sqlalchemy import create_engine, text

from qpo.store import authenticate, connect, session_scope
from tests.test_cli.conftest import ADMIN, ANA, BEN, RITA

PASSWORD = "correct-horse-battery-9f3"


def _everything_said(cli, *results) -> str:
    """All the command line printed, and every row of the store's audit trail, as text."""
    engine = create_engine(cli.url)
    with engine.connect() as conn:
        trail = [str(tuple(r)) for r in conn.execute(text("SELECT * FROM audit_log"))]
        users = [str(tuple(r)) for r in conn.execute(text("SELECT * FROM advisors"))]
    engine.dispose()
    return "\n".join([r.text for r in results] + trail + users)


def test_the_first_admin_bootstraps_then_only_an_admin_adds_people(cli):
    r = cli.ok("user", "add", ADMIN, "--name", "Ada Admin", "--role", "admin", "--json")
    assert r.json == {"user": {"email": ADMIN, "name": "Ada Admin", "role": "admin", "has_password": False}}
    # a second admin without an actor: the bootstrap is over
    r = cli.refused("user", "add", "eve@example.com", "--name", "Eve", "--role", "admin", code=4)
    assert "no actor named" in r.json["error"] and "--as EMAIL" in r.json["error"]
    cli.ok("user", "add", ANA, "--name", "Ana Silva", "--role", "advisor", actor=ADMIN)
    r = cli.refused("user", "add", BEN, "--name", "Ben", "--role", "advisor", actor=ANA, code=4)
    assert r.json["error"] == f"{ANA} (advisor) may not add the user '{BEN}': only an admin may"
    r = cli.refused("user", "add", BEN, "--name", "Ben", "--role", "admin", actor="nobody@example.com", code=4)
    assert "'nobody@example.com' is not a user of this store" in r.json["error"]
    r = cli.refused("user", "add", ANA, "--name", "Ana again", "--role", "advisor", actor=ADMIN)
    assert r.json["error"] == f"user '{ANA}' exists already (`qpo user list`)"
    listing = cli.ok("user", "list", "--json", actor=ANA).json["users"]
    assert [(u["email"], u["role"]) for u in listing] == [(ADMIN, "admin"), (ANA, "advisor")]
    human = cli.ok("user", "list", actor=ANA).out.splitlines()
    assert human[0].split() == ["email", "name", "role", "has_password"]
    assert human[2].split() == [ANA, "Ana", "Silva", "advisor", "no"]


def test_qpo_user_env_names_the_actor_and_as_overrides_it(people, monkeypatch):
    monkeypatch.setenv("QPO_USER", RITA)
    assert people.ok("user", "list", "--json").json["users"][0]["email"] == ADMIN
    r = people.refused("user", "add", "new@example.com", "--name", "N", "--role", "advisor", code=4)
    assert r.json["error"].startswith(f"{RITA} (researcher) may not add the user")
    people.ok("user", "add", "new@example.com", "--name", "N", "--role", "advisor", "--as", ADMIN)  # after the command
    people.ok("--as", ADMIN, "user", "add", "new2@example.com", "--name", "N", "--role", "advisor")  # before it


@pytest.mark.parametrize("args, message", [
    (["not-an-email", "--name", "X", "--role", "advisor"],
     "user e-mail must look like an e-mail address (name@example.com), got 'not-an-email'"),
    (["x@example.com", "--name", "N" * 201, "--role", "advisor"], "(201 characters)"),
    (["x@example.com", "--name", "Bad\x07Name", "--role", "advisor"], "with a control character"),
    (["x@example.com", "--name", "Nul\x00" + "z" * 500, "--role", "advisor"], "(504 characters)"),
    (["x@exa\x00mple.com", "--name", "N", "--role", "advisor"], "user e-mail must be text"),
    (["x@example.com", "--name", "   ", "--role", "advisor"], "empty once spaces are stripped"),
])
def test_bad_people_are_refused_naming_the_field_and_quoting_only_the_start(people, args, message):
    r = people.refused("user", "add", *args, actor=ADMIN)
    assert message in r.json["error"]
    assert "z" * 100 not in r.json["error"] and "N" * 100 not in r.json["error"]


def test_an_unknown_role_is_a_usage_error_with_json(people):
    r = people("user", "add", "x@example.com", "--name", "X", "--role", "superuser", "--json", actor=ADMIN)
    assert r.code == 2 and r.json["kind"] == "UsageError" and "invalid choice: 'superuser'" in r.json["error"]


def test_quotes_emoji_and_sql_round_trip(people):
    name = "O'Brien \"Bobby\" 🦄 Robert'); DROP TABLE advisors;--"
    people.ok("user", "add", "bobby@example.com", "--name", name, "--role", "advisor", actor=ADMIN)
    users = {u["email"]: u for u in people.ok("user", "list", "--json", actor=ADMIN).json["users"]}
    assert users["bobby@example.com"]["name"] == name and len(users) == 5


def test_passwords_come_from_stdin_only_are_hashed_and_never_shown(people):
    results = [people.ok("user", "add", "pat@example.com", "--name", "Pat", "--role", "advisor",
                         "--password-stdin", "--json", actor=ADMIN, stdin=PASSWORD + "\n")]
    assert results[0].json["user"]["has_password"] is True
    with session_scope(connect()) as s:
        actor = authenticate(s, "pat@example.com", PASSWORD)
        assert actor is not None and actor.email == "pat@example.com" and actor.role == "advisor"
        assert authenticate(s, "pat@example.com", PASSWORD + "\n") is None  # the line break is not part of it
    # one's own password, with the line's CRLF end (a Windows pipe)
    new = "another-Secret-77"
    results.append(people.ok("user", "passwd", "pat@example.com", "--password-stdin", actor="pat@example.com",
                             stdin=new + "\r\n"))
    assert results[-1].out.strip() == "password set for pat@example.com"
    # an advisor may not set another's; the admin may
    results.append(people.refused("user", "passwd", ANA, "--password-stdin", actor="pat@example.com", code=4,
                                  stdin="hijack-Attempt-123\n"))
    assert results[-1].json["error"] == "pat@example.com (advisor) may not set the password of 'ana@example.com': only an admin may"
    results.append(people.ok("user", "passwd", ANA, "--password-stdin", actor=ADMIN, stdin=PASSWORD + "\n"))
    # a short one is refused without being quoted
    results.append(people.refused("user", "passwd", ANA, "--password-stdin", actor=ANA, stdin="short7\n"))
    assert results[-1].json["error"] == "a password must have at least 8 characters (this one has 6)"
    # on the command line: refused, and not echoed (not even by argparse)
    results.append(people.refused("user", "add", "q@example.com", "--name", "Q", "--role", "advisor",
                                  "--password", "argv-Secret-999", actor=ADMIN))
    assert "--password-stdin" in results[-1].json["error"]
    results.append(people("user", "add", "q@example.com", "--name", "Q", "--role", "advisor", "argv-Secret-998",
                          "--json", actor=ADMIN))
    assert results[-1].code == 2 and "not shown" in results[-1].json["error"]
    results.append(people.refused("user", "passwd", ANA, "--password-stdin", actor=ANA, stdin="\n"))
    assert "no password on standard input" in results[-1].json["error"]
    results.append(people.refused("user", "passwd", ANA, actor=ANA, stdin=PASSWORD + "\n"))
    assert "--password-stdin" in results[-1].json["error"]
    results.append(people.ok("audit", "--json", actor=ADMIN))
    said = _everything_said(people, *results)
    for secret in (PASSWORD, new, "hijack-Attempt-123", "short7", "argv-Secret-999", "argv-Secret-998"):
        assert secret not in said
    actions = [e["action"] for e in results[-1].json["audit"]]
    assert actions.count("password") == 2 and actions.count("user_add") == 5
    with session_scope(connect()) as s:
        assert authenticate(s, "pat@example.com", new) is not None
        assert authenticate(s, ANA, PASSWORD) is not None
        assert authenticate(s, "pat@example.com", PASSWORD) is None


def test_readers_refuse_a_missing_store_and_create_none(cli, store_url):
    from qpo.store import store_exists

    for argv in (["user", "list"], ["portfolio", "list"], ["portfolio", "show", "X"], ["audit"],
                 ["rebalance", "list"], ["portfolio", "transactions", "X"]):
        r = cli(*argv, "--json", actor=ADMIN)
        assert r.code == 3 and r.json["kind"] == "MissingStoreError", (argv, r.text)
        assert "`qpo db upgrade`" in r.json["error"]
    assert not store_exists(store_url)


def test_an_emails_case_names_the_same_person(book):
    """`--as ANA@...` was 'not a user of this store' while add_user already refused a second person
    differing only in case: the same person now, acting as the stored address (the audit names it)."""
    shouting = ANA.upper()
    r = book.ok("portfolio", "list", "--json", actor=shouting)
    assert "Harper" in [p["name"] for p in r.json["portfolios"]]
    book.ok("portfolio", "update", "Harper", "--description", "case", actor=shouting)
    trail = book.ok("audit", "--portfolio", "Harper", "--json", actor=ADMIN).json["audit"]
    assert (trail[-1]["actor"], trail[-1]["action"]) == (ANA, "update")
    with session_scope(connect()) as s:
        assert authenticate(s, shouting, "nope") is None  # no password set: refused, not an error


def test_two_people_differing_only_in_case_from_an_older_store_are_each_named_exactly(book):
    """A store from before a second address differing only in case was refused may hold both: the
    exact address names each; the lower-case form, matching both, names neither (before the
    review: either one, at random)."""
    from sqlalchemy import create_engine

    engine = create_engine(book.url)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO advisors (email, name, role, created_at) VALUES "
                          "('Twin@Example.com', 'Twin Upper', 'admin', CURRENT_TIMESTAMP), "
                          "('twin@example.COM', 'Twin Lower', 'researcher', CURRENT_TIMESTAMP)"))
    engine.dispose()
    users = {u["email"]: u["role"] for u in book.ok("user", "list", "--json", actor="Twin@Example.com").json["users"]}
    assert users["Twin@Example.com"] == "admin"
    r = book.refused("portfolio", "list", actor="twin@example.com", code=4)
    assert "is not a user of this store" in r.json["error"]
