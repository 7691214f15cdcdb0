"""Who may see and change what. Every repository function takes an **actor**; these rules decide.

- an **advisor** reads and changes only the portfolios of their own clients (``portfolio.advisor``);
- a **researcher** reads every portfolio and changes none;
- an **admin** reads and changes everything, people included;
- a **system** actor (``Actor.system("seed")``: seeding, scheduled pipelines) is not a person: it
  reads and changes everything, and the audit trail names it ``system:<purpose>``.

A refusal is an :class:`~qpo.errors.AccessDenied` that says who was refused what; it is raised
before anything is read or written.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from qpo._checks import quote
from qpo.errors import AccessDenied
from qpo.store import _inputs as check
from qpo.store.models import ClientPortfolio, User

#: the environment variable naming the actor of a command when ``--as`` is not given
USER_ENV = "QPO_USER"


@dataclass(frozen=True)
class Actor:
    """The person (or system job) a request is made for."""

    email: str
    role: str
    name: str = ""
    user_id: int | None = None

    @classmethod
    def system(cls, purpose: str) -> Actor:
        """A system actor: seeding, migrations, scheduled pipelines (``system:<purpose>``)."""
        purpose = check.label(purpose, "system actor purpose", 40)
        return cls(email=f"system:{purpose}", role="system", name=f"qpo {purpose}")

    @property
    def is_system(self) -> bool:
        return self.role == "system"

    def __str__(self) -> str:
        return f"{self.email} ({self.role})"

    # -- the rules ----------------------------------------------------------------------------
    def may_read(self, portfolio: ClientPortfolio) -> bool:
        return self.role in ("admin", "system", "researcher") or (
            self.role == "advisor" and portfolio.advisor_id == self.user_id)

    def may_change(self, portfolio: ClientPortfolio) -> bool:
        return self.role in ("admin", "system") or (self.role == "advisor" and portfolio.advisor_id == self.user_id)

    def require_read(self, portfolio: ClientPortfolio) -> None:
        if not self.may_read(portfolio):
            raise AccessDenied(f"{self} may not see portfolio {quote(portfolio.name)}: it belongs to another "
                               "advisor's client")

    def require_change(self, portfolio: ClientPortfolio, what: str = "change") -> None:
        if not self.may_change(portfolio):
            why = ("a researcher reads portfolios and changes none" if self.role == "researcher"
                   else "it belongs to another advisor's client")
            raise AccessDenied(f"{self} may not {what} portfolio {quote(portfolio.name)}: {why}")

    def require_admin(self, what: str) -> None:
        if self.role not in ("admin", "system"):
            raise AccessDenied(f"{self} may not {what}: only an admin may")


def who_to_name(session: Session) -> str:
    """Which e-mail to name with ``--as``: one of the store's admins (they see the whole book), or,
    in a store without an admin, how to add one (never an e-mail that is not a user here)."""
    admins = session.scalars(select(User.email).where(User.role == "admin").order_by(User.email).limit(3)).all()
    if admins:
        more = f" (admins: {', '.join(admins)})" if len(admins) > 1 else ""
        return f"an admin of this store sees the whole book: --as {admins[0]}{more}; `qpo user list --as {admins[0]}` " \
               "shows the users"
    anyone = session.scalar(select(User.email).order_by(User.email).limit(1))
    if anyone is None:
        return ("this store has no users yet: add its first admin with `qpo user add EMAIL --name NAME --role admin` "
                "(or seed the demo book with `qpo db seed`)")
    return (f"this store has no admin: its operator adds one with `qpo user add EMAIL --name NAME --role admin --as "
            f"system`; or name a user, such as --as {anyone}")


def user_named(session: Session, address: str) -> User | None:
    """The user of e-mail ``address``: the exact address, else the one user whose address differs
    from it only in case (e-mails are typed in any case: Ana.Silva@Example.com is
    ana.silva@example.com); None when there is none, or two such (a store from before a second
    person differing only in case was refused: only the exact address names one of them)."""
    exact = session.scalar(select(User).where(User.email == address))
    if exact is not None:
        return exact
    alike = session.scalars(select(User).where(func.lower(User.email) == address.lower()).limit(2)).all()
    return alike[0] if len(alike) == 1 else None


def actor_for(session: Session, actor: Actor | str | None) -> Actor:
    """The :class:`Actor` for ``actor`` (an Actor, or a user's e-mail), read afresh from the store
    so that a changed role or a removed user counts at once. ``None`` reads ``QPO_USER``. An unknown
    e-mail, or none at all, is refused."""
    if actor is None:
        actor = os.environ.get(USER_ENV) or None
        if actor is None:
            raise AccessDenied(f"no actor named: every read and write of the book names who makes it (--as EMAIL, "
                               f"or {USER_ENV}=EMAIL); {who_to_name(session)}")
    if isinstance(actor, Actor):
        if actor.is_system:
            return actor
        email = actor.email
    elif isinstance(actor, str):
        email = actor
    else:
        raise AccessDenied(f"the actor must be a user's e-mail or an Actor, got {quote(actor)}")
    address = check.email(email, "actor e-mail")
    user = user_named(session, address)
    if user is None:
        raise AccessDenied(f"{quote(address)} is not a user of this store; an admin adds one with "
                           "`qpo user add EMAIL --name N --role advisor|researcher|admin` (`qpo user list` shows them)")
    return Actor(email=user.email, role=user.role, name=user.name, user_id=user.id)
