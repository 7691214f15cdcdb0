"""People: advisors, researchers and admins, their roles and (argon2-hashed) passwords."""
from __future__ import annotations

import pandas as pd
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from qpo._checks import quote
from qpo.errors import StoreError
from qpo.store import _inputs as check
from qpo.store import audit
from qpo.store._repo import ActorLike, _collect
from qpo.store.access import Actor, actor_for
from qpo.store.models import (
    User,
)
from qpo.store.passwords import hash_password, verify_password


# -- people ---------------------------------------------------------------------------------------
def _user_row(u: User) -> dict:
    return {"email": u.email, "name": u.name, "role": u.role, "has_password": u.password_hash is not None}


def add_user(session: Session, actor: ActorLike, email: str, name: str, role: str = "advisor", *,
             password: str | None = None) -> User:
    """Add a person. Only an admin (or a system actor) may, except for the first admin of a store
    that has none, which anyone may add (the bootstrap). The password, when given, is stored as an
    argon2 hash."""
    problems: list[str] = []
    address = _collect(problems, check.email, email, "user e-mail")
    uname = _collect(problems, check.label, name, "user name")
    urole = _collect(problems, check.role, role)
    if problems:
        raise check.report("user", problems)
    has_admin = session.scalar(select(func.count(User.id)).where(User.role == "admin"))
    if isinstance(actor, Actor) and actor.is_system:
        who = actor
    elif not has_admin and urole == "admin":
        who = Actor.system("bootstrap") if actor is None else _bootstrap_actor(session, actor, address)
    else:
        who = actor_for(session, actor)
        who.require_admin(f"add the user {quote(address)}")
    if session.scalar(select(User.id).where(User.email == address)) is not None:
        raise check.fail(f"user {quote(address)} exists already (`qpo user list`)")
    hashed = hash_password(password) if password is not None else None
    user = User(email=address, name=uname, role=urole, password_hash=hashed)
    session.add(user)
    session.flush()
    audit.record(session, who, "user_add", "user", entity_id=address, after=_user_row(user))
    return user


def _bootstrap_actor(session: Session, actor: Actor | str, address: str) -> Actor:
    email = actor.email if isinstance(actor, Actor) else check.email(actor, "actor e-mail")
    known = session.scalar(select(User).where(User.email == email))
    if known is not None:
        return Actor(email=known.email, role=known.role, name=known.name, user_id=known.id)
    return Actor(email=email, role="system", name="bootstrap") if email != address else Actor.system("bootstrap")


def get_or_create_user(session: Session, actor: ActorLike, email: str, name: str, role: str = "advisor") -> User:
    """The user with this e-mail, added (by ``actor``, see :func:`add_user`) when the store has none."""
    address = check.email(email, "user e-mail")
    user = session.scalar(select(User).where(User.email == address))
    return user if user is not None else add_user(session, actor, address, name, role)


def list_users(session: Session, actor: ActorLike) -> pd.DataFrame:
    """The people of the store (e-mail, name, role, whether a password is set; never the hash).
    Any user may list them."""
    actor_for(session, actor)
    rows = session.scalars(select(User).order_by(User.email)).all()
    return pd.DataFrame([_user_row(u) for u in rows], columns=["email", "name", "role", "has_password"])


def set_password(session: Session, actor: ActorLike, email: str, password: str) -> None:
    """Set a user's password (their own, or anyone's for an admin)."""
    who = actor_for(session, actor)
    address = check.email(email, "user e-mail")
    if who.email != address:
        who.require_admin(f"set the password of {quote(address)}")
    user = session.scalar(select(User).where(User.email == address))
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
    user = session.scalar(select(User).where(User.email == address))
    if user is None or not verify_password(user.password_hash, password):
        return None
    return Actor(email=user.email, role=user.role, name=user.name, user_id=user.id)
