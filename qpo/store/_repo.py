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


def _amount_ok(value: object, sign: str, *, money: bool = False) -> bool:
    """Whether ``value`` passes ``check.amount`` (``money``: ``check.money``, a ledger's shares,
    prices and money, at most ``MAX_MONEY``)."""
    try:
        (check.money if money else check.amount)(value, "amount", sign)
    except StoreError:
        return False
    return True
