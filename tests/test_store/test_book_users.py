"""People and passwords (issue 17), on SQLite and on the real PostgreSQL: passwords are stored as
argon2 hashes, never in clear (not in the users table, not in the audit trail, not in any message);
authentication answers right, wrong, unknown and no password alike with None; a password is set by
its owner or an admin only."""
from __future__ import annotations

import pytest
from sqlalchemy import select, text

from qpo.errors import AccessDenied, StoreError
from qpo.store import (
    Actor,
    User,
    add_user,
    audit_trail,
    authenticate,
    connect,
    list_users,
    session_scope,
    set_password,
)
from qpo.store.passwords import hash_password, verify_password
from tests.test_store import book_stores
from tests.test_store.book_stores import ADMIN, ANA, BEN, RITA, table_dump

store_url, engine, book = book_stores.store_url, book_stores.engine, book_stores.book
SECRET = "correct horse battery staple"


def _hash_of(engine, email: str) -> str | None:
    with engine.connect() as conn:
        return conn.execute(text("SELECT password_hash FROM advisors WHERE email = :e"), {"e": email}).scalar_one()


def _everything(engine) -> str:
    return repr(table_dump(engine))


def test_a_password_is_stored_as_an_argon2_hash_and_never_in_clear(book):
    with session_scope(book.engine) as s:
        add_user(s, ADMIN, "carl@qpo.test", "Carl", "advisor", password=SECRET)
        add_user(s, ADMIN, "dora@qpo.test", "Dora", "researcher", password=SECRET)
    carl, dora = _hash_of(book.engine, "carl@qpo.test"), _hash_of(book.engine, "dora@qpo.test")
    assert carl.startswith("$argon2id$v=19$") and dora.startswith("$argon2id$v=19$")
    assert carl != dora  # salted: one password, two hashes
    assert verify_password(carl, SECRET) and verify_password(dora, SECRET)
    assert SECRET not in _everything(book.engine)  # no table, the trail included, holds it
    with session_scope(book.engine) as s:
        users = list_users(s, RITA)
        assert list(users.columns) == ["email", "name", "role", "has_password"]
        assert users.set_index("email")["has_password"].to_dict() == {
            ADMIN: False, ANA: False, BEN: False, RITA: False, "carl@qpo.test": True, "dora@qpo.test": True}
        trail = audit_trail(s, ADMIN)
    assert "argon2" not in repr(trail.to_dict("records"))


def test_the_hash_column_takes_only_a_hash(book):
    with pytest.raises(StoreError) as info:
        User(email="x@qpo.test", name="X", role="advisor", password_hash=SECRET)
    assert SECRET not in str(info.value) and "argon2" in str(info.value)
    assert not verify_password("$2b$12$notargon2hashatall", SECRET)
    assert not verify_password(hash_password(SECRET), SECRET.upper())


def test_authenticate_right_wrong_unknown_and_no_password(book):
    with session_scope(book.engine) as s:
        set_password(s, ANA, ANA, SECRET)
    with session_scope(book.engine) as s:
        who = authenticate(s, ANA, SECRET)
        assert isinstance(who, Actor) and (who.email, who.role, who.name) == (ANA, "advisor", "Ana Advisor")
        assert who.user_id == s.scalar(select(User.id).where(User.email == ANA))
        for email, password in ((ANA, SECRET + " "), (ANA, SECRET.upper()), (ANA, ""), (ANA, None), (ANA, 12345678),
                                ("nobody@qpo.test", SECRET), (BEN, SECRET), (BEN, ""), (None, SECRET),
                                (ANA + "\x00", SECRET), ("not an address", SECRET), (ANA, SECRET + "\x00")):
            assert authenticate(s, email, password) is None, (email, password)
        # the address in another case is the same person (the password is still exact)
        again = authenticate(s, ANA.upper(), SECRET)
        assert again is not None and again.email == ANA
        assert authenticate(s, ANA.upper(), SECRET.upper()) is None


def test_a_password_too_short_too_long_or_with_nul_is_refused_without_quoting_it(book):
    for password, needle in (("short7!", "at least 8 characters"), ("", "at least 8 characters"),
                             ("p" * 1025, "at most 1024 characters"), ("secret\x00word!", "NUL"),
                             (b"bytes-password", "must be text")):
        for call in (lambda s, p=password: add_user(s, ADMIN, "carl@qpo.test", "Carl", "advisor", password=p),
                     lambda s, p=password: set_password(s, ADMIN, ANA, p)):
            before = table_dump(book.engine)
            with session_scope(book.engine) as s:
                with pytest.raises(StoreError) as info:
                    call(s)
            message = str(info.value)
            assert needle in message and len(message) < 300
            if password:
                assert str(password)[:6] not in message.replace("password", "")
            assert table_dump(book.engine) == before


def test_a_password_is_set_by_its_owner_or_an_admin_only(book):
    with session_scope(book.engine) as s:
        set_password(s, ANA, ANA, "ana's first password")  # her own
        set_password(s, RITA, RITA, "rita's own password")  # a researcher's own
        set_password(s, ADMIN, BEN, "set by the admin")  # an admin: anyone's
        set_password(s, Actor.system("test"), RITA, "set by a pipeline")
    for actor, target in ((ANA, BEN), (BEN, ANA), (RITA, ANA), (ANA, ADMIN), ("nobody@qpo.test", ANA)):
        before = table_dump(book.engine)
        with session_scope(book.engine) as s:
            with pytest.raises(AccessDenied) as info:
                set_password(s, actor, target, "taken over!")
        assert actor in str(info.value) and len(str(info.value)) < 300
        assert table_dump(book.engine) == before
    with session_scope(book.engine) as s:
        assert authenticate(s, ANA, "ana's first password").email == ANA
        assert authenticate(s, BEN, "set by the admin").email == BEN
        assert authenticate(s, RITA, "set by a pipeline").email == RITA
        assert authenticate(s, RITA, "rita's own password") is None  # replaced
        set_password(s, ANA, ANA, "ana's second password")
    with session_scope(book.engine) as s:
        assert authenticate(s, ANA, "ana's first password") is None
        assert authenticate(s, ANA, "ana's second password").role == "advisor"
        rows = audit_trail(s, ADMIN)
        rows = rows[rows["action"] == "password"]
        assert list(zip(rows["actor"], rows["entity_id"], strict=True)) == [
            (ANA, ANA), (RITA, RITA), (ADMIN, BEN), ("system:test", RITA), (ANA, ANA)]
    with pytest.raises(StoreError, match="no user"):
        with session_scope(book.engine) as s:
            set_password(s, ADMIN, "ghost@qpo.test", "whatever pw")


def test_people_are_added_once_with_a_known_role(book):
    for email, name, role, needle in (("ana@qpo.test", "Ana Again", "advisor", "exists already"),
                                      ("eve@qpo.test", "Eve", "superuser", "role must be one of"),
                                      ("not-an-address", "Eve", "advisor", "e-mail"),
                                      ("eve@qpo.test", "", "advisor", "user name")):
        before = table_dump(book.engine)
        with session_scope(book.engine) as s:
            with pytest.raises(StoreError) as info:
                add_user(s, ADMIN, email, name, role)
        assert needle in str(info.value) and len(str(info.value)) < 300
        assert table_dump(book.engine) == before


def test_the_first_admin_of_an_empty_store_and_no_other_is_added_by_anyone(store_url):
    engine = connect(store_url)
    with session_scope(engine) as s:
        add_user(s, None, "boss@qpo.test", "Boss", "admin", password=SECRET)
    with session_scope(engine) as s:
        assert authenticate(s, "boss@qpo.test", SECRET).role == "admin"
        assert list(audit_trail(s, "boss@qpo.test")["actor"]) == ["system:bootstrap"]
    for actor in (None, "nobody@qpo.test"):
        with pytest.raises(AccessDenied):
            with session_scope(engine) as s:
                add_user(s, actor, "eve@qpo.test", "Eve", "admin")
    with session_scope(engine) as s:
        add_user(s, "boss@qpo.test", "ana@qpo.test", "Ana", "advisor")
        assert list(list_users(s, "ana@qpo.test")["email"]) == ["ana@qpo.test", "boss@qpo.test"]


def test_an_email_in_another_case_is_the_same_person(book):
    """The sign-in page matches e-mails whatever their case: a second user 'Ana@QPO.test' was added."""
    before = table_dump(book.engine)
    with pytest.raises(StoreError, match=f"user 'Ana@QPO.test' exists already as '{ANA}'"):
        with session_scope(book.engine) as s:
            add_user(s, ADMIN, "Ana@QPO.test", "Impostor", "advisor")
    assert table_dump(book.engine) == before


def _at_once(engine, first, second):
    """``first`` runs in a transaction held open while ``second`` starts in another thread; what
    ``second`` met (None: it committed)."""
    import threading

    met: dict = {}

    def run():
        try:
            with session_scope(engine) as s2:
                second(s2)
            met["second"] = None
        except Exception as exc:  # noqa: BLE001 - the result
            met["second"] = exc

    with session_scope(engine) as s1:
        first(s1)
        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        thread.join(1.0)  # unlocked, the second is done by now, having read the first's rows as they were
    thread.join(60.0)
    assert not thread.is_alive()
    return met["second"]


def test_two_admins_demoting_each_other_at_once_leave_one_admin(book):
    """On SQLite both read two admins, both demoted the other: no admin left (3 rounds of 6 here)."""
    from qpo.store import update_user

    with session_scope(book.engine) as s:
        add_user(s, ADMIN, "second@qpo.test", "Second", "admin")
    met = _at_once(book.engine, lambda s: update_user(s, ADMIN, "second@qpo.test", role="advisor"),
                   lambda s: update_user(s, "second@qpo.test", ADMIN, role="advisor"))
    assert isinstance(met, (StoreError, AccessDenied)), met  # the second sees it is no admin now
    with session_scope(book.engine) as s:
        users = list_users(s, ADMIN).set_index("email")["role"]
    assert users[ADMIN] == "admin" and users["second@qpo.test"] == "advisor"


def test_two_first_admins_of_an_empty_store_at_once_make_one(store_url):
    engine = connect(store_url)
    met = _at_once(engine, lambda s: add_user(s, None, "first@qpo.test", "First", "admin"),
                   lambda s: add_user(s, None, "mallory@qpo.test", "Mallory", "admin"))
    assert isinstance(met, AccessDenied), met
    with session_scope(engine) as s:
        assert list(list_users(s, "first@qpo.test")["email"]) == ["first@qpo.test"]
