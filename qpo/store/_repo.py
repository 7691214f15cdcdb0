"""What the repository's modules share: the actor a request names, and collecting problems."""
from __future__ import annotations

from qpo.errors import StoreError
from qpo.store import _inputs as check
from qpo.store.access import Actor

ActorLike = Actor | str | None


def _collect(problems: list[str], fn, *args):
    try:
        return fn(*args)
    except StoreError as exc:
        problems.append(str(exc))
        return None


def _amount_ok(value: object, sign: str) -> bool:
    try:
        check.amount(value, "amount", sign)
    except StoreError:
        return False
    return True


def _money_ok(value: object, sign: str) -> bool:
    """:func:`_amount_ok` for a ledger's shares, prices and money (at most ``MAX_MONEY``)."""
    try:
        check.money(value, "amount", sign)
    except StoreError:
        return False
    return True
