"""People: advisors, researchers and admins, their roles and (argon2-hashed) passwords."""
from __future__ import annotations

import os

import pandas as pd
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from qpo._checks import quote
from qpo.errors import AccessDenied, StoreError
from qpo.store import _inputs as check
from qpo.store import audit
from qpo.store._repo import ActorLike, _collect
from qpo.store.access import USER_ENV, Actor, actor_for, user_named, who_to_name
from qpo.store.db import PG_PEOPLE_LOCK, one_writer
from qpo.store.models import (
    ClientPortfolio,
    User,
)
from qpo.store.passwords import hash_password, verify_password


# -- people ---------------------------------------------------------------------------------------
def _user_row(u: User) -> dict:
    return {"email": u.email, "name": u.name, "role": u.role, "has_password": u.password_hash is not None}


def add_user(session: Session, actor: ActorLike, email: str, name: str, role: str = "advisor", *,
             password: str | None = None) -> User:
    """Add a person. Only an admin (or a system actor) may, except for the first person of an
    EMPTY store, an admin, whom anyone may add (the bootstrap). A store that has people but no admin
    (an old store upgraded) gets its first admin from a system actor only: on the command line the
    local operator's ``qpo user add EMAIL --name N --role admin --as system``. The password, when
    given, is stored as an argon2 hash."""
    problems: list[str] = []
    address = _collect(problems, check.email, email, "user e-mail")
    uname = _collect(problems, check.label, name, "user name")
    urole = _collect(problems, check.role, role)
    if problems:
        raise check.report("user", problems)
    one_writer(session, PG_PEOPLE_LOCK)  # one addition at a time: two first admins of an empty store make one
    if isinstance(actor, Actor) and actor.is_system:
        who = actor
    elif urole == "admin" and not session.scalar(select(func.count(User.id))):
        who = Actor.system("bootstrap") if actor is None else _bootstrap_actor(session, actor, address)
    else:
        who = _admin_actor(session, actor, f"add the user {quote(address)}")
    same = session.scalar(select(User.email).where(func.lower(User.email) == address.lower()).limit(1))
    if same is not None:  # one mailbox, one user: the sign-in page matches e-mails whatever their case
        also = "" if same == address else f" as {quote(same)}"
        raise check.fail(f"user {quote(address)} exists already{also} (`qpo user list`)")
    hashed = hash_password(password) if password is not None else None
    user = User(email=address, name=uname, role=urole, password_hash=hashed)
    session.add(user)
    session.flush()
    audit.record(session, who, "user_add", "user", entity_id=address, after=_user_row(user))
    return user


#: how the first admin of a store with people and no admin (an older store upgraded) is added
#: (in Python: ``add_user(session, Actor.system("operator"), ...)``)
FIRST_ADMIN_HINT = ("this store has people but no admin: its operator adds the first with "
                    "`qpo user add EMAIL --name N --role admin --as system`")


def _admin_actor(session: Session, actor: ActorLike, what: str) -> Actor:
    """The admin (or system) actor ``actor`` is, else AccessDenied; when the store has no admin at
    all the refusal says how its operator adds the first one."""
    if isinstance(actor, Actor) and actor.is_system:
        return actor
    has_admin = session.scalar(select(func.count(User.id)).where(User.role == "admin"))
    if not has_admin and actor is None and not os.environ.get(USER_ENV):
        raise AccessDenied(f"no actor named, and {FIRST_ADMIN_HINT}")
    try:
        who = actor_for(session, actor)
        who.require_admin(what)
    except AccessDenied as exc:
        if has_admin:
            raise
        first = str(exc).split(";")[0].split(": only an admin")[0]  # who was refused what, without the advice
        raise AccessDenied(f"{first}; {FIRST_ADMIN_HINT}") from None
    return who


def _bootstrap_actor(session: Session, actor: Actor | str, address: str) -> Actor:
    email = actor.email if isinstance(actor, Actor) else check.email(actor, "actor e-mail")
    known = user_named(session, email)
    if known is not None:
        return Actor(email=known.email, role=known.role, name=known.name, user_id=known.id)
    return Actor(email=email, role="system", name="bootstrap") if email != address else Actor.system("bootstrap")


def update_user(session: Session, actor: ActorLike, email: str, *, name: str | None = None,
                role: str | None = None) -> User:
    """Change a person's name and/or role (an admin's job, or a system actor's). Refused, nothing
    written, when it would leave the store without an admin (demoting the last one), or a portfolio
    managed by someone who manages none (a researcher): move the person's portfolios first. Audited as
    ``user_update`` with the person before and after."""
    problems: list[str] = []
    address = _collect(problems, check.email, email, "user e-mail")
    uname = _collect(problems, check.label, name, "user name") if name is not None else None
    urole = _collect(problems, check.role, role) if role is not None else None
    if name is None and role is None:
        problems.append("nothing to change: give a new name and/or role")
    if problems:
        raise check.report("user", problems)
    who = _admin_actor(session, actor, f"change the user {quote(address)}")
    user = user_named(session, address)
    if user is None:
        raise check.fail(f"no user {quote(address)} (`qpo user list`)")
    if user.role == "admin" and urole is not None and urole != "admin":
        admins = session.scalars(select(User.id).where(User.role == "admin").with_for_update()).all()  # PG: one at a time
        if len(admins) <= 1:
            raise check.fail(f"{quote(address)} is the store's last admin: make another person admin first "
                             "(`qpo user update EMAIL --role admin`)")
    if urole is not None and urole not in ("advisor", "admin") and user.role in ("advisor", "admin"):
        managed = session.scalars(select(ClientPortfolio.name).where(ClientPortfolio.advisor_id == user.id)
                                  .order_by(ClientPortfolio.name)).all()
        if managed:
            raise check.fail(f"{quote(address)} manages {len(managed)} portfolio(s) ({check.names_list(managed)}); a "
                             f"{urole} manages none: move them to another advisor first (`qpo portfolio update NAME "
                             "--advisor OTHER`)")
    before = _user_row(user)
    if uname is not None:
        user.name = uname
    if urole is not None:
        user.role = urole
    session.flush()
    audit.record(session, who, "user_update", "user", entity_id=address, before=before, after=_user_row(user))
    return user


def get_or_create_user(session: Session, actor: ActorLike, email: str, name: str, role: str = "advisor") -> User:
    """The user with this e-mail, added (by ``actor``, see :func:`add_user`) when the store has none."""
    address = check.email(email, "user e-mail")
    user = user_named(session, address)
    return user if user is not None else add_user(session, actor, address, name, role)


def list_users(session: Session, actor: ActorLike) -> pd.DataFrame:
    """The people of the store (e-mail, name, role, whether a password is set; never the hash).
    Any user may list them."""
    if actor is None and not os.environ.get(USER_ENV):
        raise AccessDenied(_who_lists_hint(session))
    actor_for(session, actor)
    rows = session.scalars(select(User).order_by(User.email)).all()
    return pd.DataFrame([_user_row(u) for u in rows], columns=["email", "name", "role", "has_password"])


#: the demo book's admin (``qpo db seed``; qpo.workbench.demo.DEMO_USERS)
DEMO_ADMIN = "admin@example.com"


def _who_lists_hint(session: Session) -> str:
    """Why ``qpo user list`` with no actor is refused, and how to find an e-mail to name."""
    if not session.scalar(select(func.count(User.id))):
        return ("no actor named, and this store has no people yet: add its first admin with `qpo user add EMAIL "
                "--name NAME --role admin` (no --as needed in an empty store), or seed the demo book with "
                f"`qpo db seed` and name its admin: `qpo user list --as {DEMO_ADMIN}`")
    return (f"no actor named: who lists the people must say who they are (--as EMAIL or {USER_ENV}=EMAIL, the "
            f"e-mail an admin added you with); {who_to_name(session)}")


def set_password(session: Session, actor: ActorLike, email: str, password: str) -> None:
    """Set a user's password (their own, or anyone's for an admin)."""
    who = actor_for(session, actor)
    address = check.email(email, "user e-mail")
    if who.email.lower() != address.lower():
        who.require_admin(f"set the password of {quote(address)}")
    user = user_named(session, address)
    if user is None:
        raise check.fail(f"no user {quote(address)} (`qpo user list`)")
    user.password_hash = hash_password(password)
    session.flush()
    audit.record(session, who, "password", "user", entity_id=address)


def authenticate(session: Session, email: object, password: object) -> Actor | None:
    """The actor whose e-mail and password these are, or None (an unknown e-mail, a user without a
    password, a wrong password: the caller cannot tell which)."""
    try:
        address = check.email(email, "e-mail")
    except StoreError:
        return None
    user = user_named(session, address)  # e-mails are typed in any case
    if user is None or not verify_password(user.password_hash, password):
        return None
    return Actor(email=user.email, role=user.role, name=user.name, user_id=user.id)
