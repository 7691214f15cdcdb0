"""Who may add an admin (issue 17, audit gap G1), and what `qpo user list` says with no actor (G7).

An old store (revision 0001: advisors, no admin) upgraded with `qpo db upgrade` has people and no
admin. Nobody may then make themselves admin, with or without naming an actor: only the store's
operator, explicitly (`--as system`), adds its first admin. The empty store's bootstrap stays.
"""
from __future__ import annotations

import pytest
from sqlalchemy import create_engine, text

from qpo.errors import AccessDenied
from qpo.store import Actor, add_user, audit_trail, connect, list_users, session_scope
from qpo.store.db import upgrade
from tests.test_cli.conftest import ADMIN

ALICE, BOB, EVE = "alice@wealth.test", "bob@wealth.test", "eve@evil.test"


def _old_store_without_admin(url: str) -> None:
    """Revision 0001 with two advisors and no admin, written as the old code did (raw SQL)."""
    engine = create_engine(url)
    try:
        upgrade(engine, "0001")
        with engine.begin() as conn:
            for email, name in ((ALICE, "Alice Old"), (BOB, "Bob Old")):
                conn.execute(text("INSERT INTO advisors (email, name, role) VALUES (:e, :n, 'advisor')"),
                             {"e": email, "n": name})
    finally:
        engine.dispose()


@pytest.fixture
def upgraded(cli):
    _old_store_without_admin(cli.url)
    cli.ok("db", "upgrade")
    return cli


def test_nobody_makes_themself_admin_of_an_upgraded_store_without_one(upgraded):
    cli = upgraded
    # no actor: the bootstrap is for an EMPTY store only
    r = cli.refused("user", "add", EVE, "--name", "Eve", "--role", "admin", code=4)
    assert "no actor named" in r.json["error"]
    assert "--role admin --as system" in r.json["error"]  # the refusal says how the operator does it
    # an unknown e-mail, and an existing advisor, neither
    r = cli.refused("user", "add", EVE, "--name", "Eve", "--role", "admin", actor=EVE, code=4)
    assert f"'{EVE}' is not a user of this store" in r.json["error"] and "--as system" in r.json["error"]
    r = cli.refused("user", "add", ALICE.replace("alice", "alice2"), "--name", "A2", "--role", "admin", actor=ALICE,
                    code=4)
    assert r.json["error"].startswith(f"{ALICE} (advisor) may not add the user") and "--as system" in r.json["error"]
    # nor an advisor added by an advisor
    cli.refused("user", "add", EVE, "--name", "Eve", "--role", "advisor", actor=BOB, code=4)

    # the operator, explicitly
    r = cli.ok("user", "add", ADMIN, "--name", "Ada Admin", "--role", "admin", "--as", "system", "--json")
    assert r.json["user"] == {"email": ADMIN, "name": "Ada Admin", "role": "admin", "has_password": False}
    with session_scope(connect()) as s:
        trail = audit_trail(s, ADMIN)
        assert list(zip(trail["actor"], trail["action"], trail["entity_id"], strict=True)) == [
            ("system:operator", "user_add", ADMIN)]
        assert list_users(s, ADMIN)[["email", "role"]].values.tolist() == [
            [ADMIN, "admin"], [ALICE, "advisor"], [BOB, "advisor"]]
    # from now on the admin adds people; the advisor still may not, and the hint is gone
    cli.ok("user", "add", "carol@wealth.test", "--name", "Carol", "--role", "admin", actor=ADMIN)
    r = cli.refused("user", "add", EVE, "--name", "Eve", "--role", "admin", actor=ALICE, code=4)
    assert r.json["error"] == f"{ALICE} (advisor) may not add the user '{EVE}': only an admin may"


def test_the_store_refuses_the_same_in_python(upgraded):
    engine = connect(upgraded.url)
    for actor in (None, EVE, ALICE, Actor(email=ALICE, role="admin")):  # a forged Actor is read afresh
        with pytest.raises(AccessDenied, match="--as system"):
            with session_scope(engine) as s:
                add_user(s, actor, EVE, "Eve", "admin")
    with session_scope(engine) as s:
        assert list(list_users(s, ALICE)["email"]) == [ALICE, BOB]
        add_user(s, Actor.system("operator"), "root@wealth.test", "Root", "admin")
    with session_scope(engine) as s:
        assert list(list_users(s, "root@wealth.test")["role"]) == ["advisor", "advisor", "admin"]


def test_the_empty_store_still_bootstraps_its_first_admin(cli):
    cli.ok("user", "add", ADMIN, "--name", "Ada Admin", "--role", "admin")
    with session_scope(connect()) as s:
        assert list(audit_trail(s, ADMIN)["actor"]) == ["system:bootstrap"]
    # only the first person: an advisor first, then nobody bootstraps an admin
    cli.refused("user", "add", EVE, "--name", "Eve", "--role", "admin", code=4)


def test_the_first_person_of_an_empty_store_must_be_an_admin(cli):
    cli.ok("db", "upgrade")
    r = cli.refused("user", "add", ALICE, "--name", "Alice", "--role", "advisor", code=4)
    assert "no actor named" in r.json["error"]


def test_user_list_without_an_actor_says_how_to_find_an_email(cli):
    cli.ok("db", "upgrade")
    r = cli.refused("user", "list", code=4)
    assert "no people yet" in r.json["error"] and "--role admin" in r.json["error"]
    assert f"qpo user list --as {ADMIN}" in r.json["error"]
    boss = "boss@firm.example"  # the hint names the store's own admin, not the demo book's
    cli.ok("user", "add", boss, "--name", "The Boss", "--role", "admin")
    cli.ok("user", "add", ADMIN, "--name", "Ada Admin", "--role", "advisor", actor=boss)
    r = cli.refused("user", "list", code=4)
    message = r.json["error"]
    assert f"`qpo user list --as {boss}`" in message and "QPO_USER" in message
    assert f"--as {ADMIN}" not in message
    assert "`qpo user list` shows the users" not in message  # not the circular advice
    assert [u["email"] for u in cli.ok("user", "list", "--json", actor=boss).json["users"]] == [ADMIN, boss]


def test_user_update_is_an_admins_job_audited_and_keeps_an_admin(cli):
    from tests.test_cli.conftest import ANA

    cli.ok("user", "add", ADMIN, "--name", "Ada Admin", "--role", "admin")
    cli.ok("user", "add", ANA, "--name", "Ana Silva", "--role", "advisor", actor=ADMIN)
    r = cli.refused("user", "update", ANA, "--role", "admin", actor=ANA, code=4)
    assert r.json["error"] == f"{ANA} (advisor) may not change the user '{ANA}': only an admin may"
    r = cli.refused("user", "update", ADMIN, "--role", "advisor", actor=ADMIN)
    assert "the store's last admin" in r.json["error"]
    cli.refused("user", "update", "ghost@example.com", "--name", "G", actor=ADMIN)
    cli.refused("user", "update", ANA, actor=ADMIN)  # nothing to change
    doc = cli.ok("user", "update", ANA, "--name", "Ana Silva-Ng", "--role", "admin", "--json", actor=ADMIN).json
    assert doc["user"] == {"email": ANA, "name": "Ana Silva-Ng", "role": "admin", "has_password": False}
    cli.ok("user", "update", ADMIN, "--role", "researcher", actor=ANA)  # two admins: one may step down
    with session_scope(connect()) as s:
        trail = audit_trail(s, ANA)
        updates = trail[trail["action"] == "user_update"]
        assert list(zip(updates["actor"], updates["entity_id"], strict=True)) == [(ADMIN, ANA), (ANA, ADMIN)]
        first = updates.iloc[0]
        assert (first["before"]["role"], first["after"]["role"]) == ("advisor", "admin")
        assert (first["before"]["name"], first["after"]["name"]) == ("Ana Silva", "Ana Silva-Ng")
        assert list_users(s, ANA)[["email", "role"]].values.tolist() == [[ADMIN, "researcher"], [ANA, "admin"]]
