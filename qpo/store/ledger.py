"""The ledger: a portfolio's holdings and cash are derived from its transactions, never kept apart.

:func:`replay` walks the entries in order (trade date, then entry order) and refuses the first one
that sells more shares than the portfolio holds, or spends cash it lacks, with the numbers. Every
write of a transaction replays the whole ledger with the new entries in place, so an entry dated
in the past cannot make an earlier day's balance negative either.

A ``split`` entry is a stock split or reverse split: ``quantity`` is the change in the shares held
(a 2-for-1 split of 10 shares is +10, a 1-for-4 reverse split of 8 shares is -6), no cash. The
nightly valuation books them from the market data's split coefficients
(:func:`qpo.book.corporate_actions.book_splits`), so that shares and actual closes stay on the same
basis; a split on a broker's statement may be imported the same way. A split's quantity follows
the shares held before it: an entry dated before a split, written later (a statement's late line),
re-scales the split at its own ratio (:func:`rescaled_splits`), and a sale of every share before it
leaves no split to book.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import math
from collections.abc import Iterable
from dataclasses import dataclass

import pandas as pd

from qpo._checks import quote
from qpo.errors import StoreError
from qpo.store._inputs import FIRST_TRADE_DATE, MAX_MONEY  # noqa: F401 - the ledger's bounds, for readers of its files

#: tolerances: floating sums of prices x shares are not exact
SHARE_TOLERANCE = 1e-9
#: the smallest quantity of shares an entry may carry (a millionth of a share)
MIN_QUANTITY = 1e-6
CASH_TOLERANCE = 1e-6
SHARE_KINDS_IN = ("buy", "transfer_in")
SHARE_KINDS_OUT = ("sell", "transfer_out")
CASH_IN = ("deposit", "dividend")
CASH_OUT = ("withdrawal", "fee")
#: what each kind needs (the rest must be empty)
NEEDS = {
    "buy": ("ticker", "quantity", "price"),
    "sell": ("ticker", "quantity", "price"),
    "transfer_in": ("ticker", "quantity"),
    "transfer_out": ("ticker", "quantity"),
    "deposit": ("amount",),
    "withdrawal": ("amount",),
    "fee": ("amount",),
    "dividend": ("ticker", "amount"),
    "split": ("ticker", "quantity"),
}
MAY = {"transfer_in": ("price",), "transfer_out": ("price",)}


class LedgerError(StoreError):
    """A ledger entry that would sell shares not held or spend cash the portfolio lacks."""


@dataclass(frozen=True)
class Entry:
    """One ledger entry as the replay sees it (a stored :class:`~qpo.store.models.Transaction`, or
    one about to be written, ``id`` None)."""

    kind: str
    trade_date: dt.date
    ticker: str | None = None
    quantity: float | None = None
    price: float | None = None
    fees: float = 0.0
    amount: float | None = None
    id: int | None = None

    def cash_effect(self) -> float:
        # check_entry makes sure the fields a kind needs are there
        q, p, a = self.quantity or 0.0, self.price or 0.0, self.amount or 0.0
        if self.kind == "buy":
            return -(q * p + self.fees)
        if self.kind == "sell":
            return q * p - self.fees
        if self.kind in CASH_IN:
            return a - self.fees
        if self.kind in CASH_OUT:
            return -(a + self.fees)
        return -self.fees  # transfers move shares, not cash

    def describe(self) -> str:
        if self.kind == "split":
            return f"split of {self.ticker}: {(self.quantity or 0.0):+,.6g} shares on {self.trade_date}"
        if self.kind in SHARE_KINDS_IN + SHARE_KINDS_OUT:
            at = f" at {_m(self.price)}" if self.price is not None else ""
            cost = f" plus {_m(self.fees)} cost" if self.fees else ""
            return f"{self.kind} {_n(self.quantity or 0.0)} {self.ticker}{at}{cost} on {self.trade_date}"
        what = f" of {self.ticker}" if self.ticker else ""
        return f"{self.kind} of {_m(self.amount or 0.0)}{what} on {self.trade_date}"


def _n(x: float) -> str:
    """A quantity as a person reads it (digits beyond 1e15 as an exponent: a message stays short)."""
    if abs(x) >= 1e15:
        return f"{x:.6g}"
    return f"{x:,.0f}" if float(x).is_integer() else f"{x:,.6g}"


def _m(x: float) -> str:
    """An amount of money: two decimals (an exponent beyond 1e15)."""
    return f"{x:.6g}" if abs(x) >= 1e15 else f"{0.0 if abs(x) < 0.005 else x:,.2f}"  # never "-0.00"


@dataclass(frozen=True)
class Position:
    """What a portfolio holds after its ledger: shares by ticker (positions > 0 only), cash, and
    the id of the last entry (the ledger's version: 0 for an empty ledger)."""

    shares: pd.Series
    cash: float
    last_transaction_id: int = 0
    as_of: dt.date | None = None
    first_date: dt.date | None = None
    n_transactions: int = 0

    def value(self, prices: pd.Series) -> float:
        """Market value at ``prices`` (ticker -> price), cash included."""
        px = prices.reindex(self.shares.index)
        return float((self.shares * px).sum() + self.cash)


def check_entry(entry: Entry) -> None:
    """The fields an entry of its kind needs, and no others."""
    needs = NEEDS[entry.kind]
    missing = [f for f in needs if getattr(entry, f) is None]
    if missing:
        raise StoreError(f"a {entry.kind} needs {', '.join(needs)}; missing {', '.join(missing)}")
    extra = [f for f in ("ticker", "quantity", "price", "amount")
             if f not in needs and f not in MAY.get(entry.kind, ()) and getattr(entry, f) is not None]
    if extra:
        raise StoreError(f"a {entry.kind} takes {', '.join(needs + MAY.get(entry.kind, ()))}, not "
                         f"{', '.join(extra)} (got {', '.join(f'{f}={quote(getattr(entry, f), 20)}' for f in extra)})")


def check_splits_once(existing: Iterable[Entry], new: Iterable[Entry], portfolio: str) -> None:
    """Refuse a split of a name on a date the ledger (or the entries written with it) already has:
    a split is booked once (the store's unique index would refuse it without saying why)."""
    seen = {(e.ticker, e.trade_date) for e in existing if e.kind == "split"}
    for e in new:
        if e.kind != "split":
            continue
        if (e.ticker, e.trade_date) in seen:
            raise LedgerError(f"{e.describe()}: the ledger of {quote(portfolio)} already has a split of {e.ticker} on "
                              f"{e.trade_date}; nothing written")
        seen.add((e.ticker, e.trade_date))


def _held_before(entries: Iterable[Entry], ticker: str, day: dt.date) -> float:
    """The shares of ``ticker`` the entries dated before ``day`` add up to (a split counts)."""
    held = 0.0
    for e in entries:
        if e.ticker != ticker or e.trade_date >= day:
            continue
        q = e.quantity or 0.0
        held += -q if e.kind in SHARE_KINDS_OUT else q if e.kind in (*SHARE_KINDS_IN, "split") else 0.0
    return held


def rescaled_splits(existing: list[Entry], new: Iterable[Entry]) -> list[tuple[Entry, float]]:
    """The split entries of ``existing`` that ``new`` entries dated before them change: each with
    the quantity that keeps its ratio on the shares then held (0.0: none are held then, the split
    goes). The ratio is the split's own, ``1 + quantity / shares held before it`` in ``existing``,
    so a 2-for-1 split of 10 shares (+10) becomes +14 when a buy of 4 before it arrives late. In
    date order, each split re-scaled on the ones before it."""
    first: dict[str, dt.date] = {}
    for e in new:
        if e.ticker is not None:  # a split booked before a later one re-scales that one too
            first[e.ticker] = min(first.get(e.ticker, e.trade_date), e.trade_date)
    splits = sorted((e for e in existing if e.kind == "split" and e.ticker in first
                     and e.trade_date > first[e.ticker]), key=lambda e: e.trade_date)
    changed: list[tuple[Entry, float]] = []
    now = [*existing, *new]
    for s in splits:
        ticker = s.ticker or ""
        before = _held_before(existing, ticker, s.trade_date)
        if before <= SHARE_TOLERANCE:
            continue  # not a split of held shares in the ledger as it was: not ours to re-scale
        held = _held_before(now, ticker, s.trade_date)
        quantity = 0.0 if held <= SHARE_TOLERANCE * max(1.0, before) else held * (s.quantity or 0.0) / before
        if abs(quantity - (s.quantity or 0.0)) <= SHARE_TOLERANCE * max(1.0, abs(quantity)):
            continue
        changed.append((s, quantity))
        now = [e for e in now if e is not s] + ([dataclasses.replace(s, quantity=quantity)] if quantity else [])
    return changed


def replay(entries: Iterable[Entry], *, as_of: dt.date | None = None,
           broken: list[tuple[Entry, str]] | None = None) -> Position:
    """The position after ``entries`` (in trade-date order, a split first within its date, then id,
    new entries last within their date), up to ``as_of`` when given. Refuses the first entry that oversells or overdraws; or, given
    a ``broken`` list, notes each such entry there (with why) and replays on without it, so that a
    caller can report every one."""
    # a split takes effect at the start of its day: that day's trades are at post-split quantities
    # (new entries of a date: a dividend after the buys and transfers in, which may bring its name)
    ordered = sorted(entries, key=lambda e: (e.trade_date, e.kind != "split", math.inf if e.id is None else e.id,
                                             e.id is None and e.kind == "dividend"))
    shares: dict[str, float] = {}
    ever: set[str] = set()  # the names held at some time so far: a dividend needs one of them
    cash = 0.0
    last_id = 0
    first = None
    n = 0
    for e in ordered:
        if as_of is not None and e.trade_date > as_of:
            break
        first = first or e.trade_date
        n += 1
        if e.id is not None:
            last_id = max(last_id, e.id)
        ticker, quantity = e.ticker or "", e.quantity or 0.0  # share kinds have both (check_entry)
        if e.kind in SHARE_KINDS_OUT:
            held = shares.get(ticker, 0.0)
            if quantity > held + SHARE_TOLERANCE * max(1.0, held):
                why = f"{e.describe()}: the portfolio holds {_n(held)} {ticker} then; nothing written"
                if broken is None:
                    raise LedgerError(why)
                broken.append((e, why))
                continue
            left = held - quantity
            if abs(left) <= SHARE_TOLERANCE * max(1.0, held):
                shares.pop(ticker, None)
            else:
                shares[ticker] = left
        elif e.kind in SHARE_KINDS_IN:
            shares[ticker] = shares.get(ticker, 0.0) + quantity
            ever.add(ticker)
        elif e.kind == "dividend" and ticker not in ever and e.id is None:
            # paid after a sale is fine; a new one on a name never held is refused (a stored one is read as it is)
            why = f"{e.describe()}: the portfolio has held no {ticker} on or before then; nothing written"
            if broken is None:
                raise LedgerError(why)
            broken.append((e, why))
            continue
        elif e.kind == "split":
            held = shares.get(ticker, 0.0)
            after = held + quantity
            if after < -SHARE_TOLERANCE * max(1.0, held) or held <= SHARE_TOLERANCE:
                why = f"{e.describe()}: the portfolio holds {_n(held)} {ticker} then; nothing written"
                if broken is None:
                    raise LedgerError(why)
                broken.append((e, why))
                continue
            if abs(after) <= SHARE_TOLERANCE * max(1.0, held):
                shares.pop(ticker, None)
            else:
                shares[ticker] = after
        effect = e.cash_effect()
        if effect < 0 and cash + effect < -CASH_TOLERANCE:
            why = (f"{e.describe()} needs {_m(-effect)} cash: the portfolio has {_m(cash)} then; "
                   "nothing written (deposit cash first, or sell)")
            if broken is None:
                raise LedgerError(why)
            if e.kind in SHARE_KINDS_IN:  # undo its shares: it is left out
                shares[ticker] -= quantity
                if abs(shares[ticker]) <= SHARE_TOLERANCE * max(1.0, quantity):
                    shares.pop(ticker)
            broken.append((e, why))
            continue
        cash += effect
    if abs(cash) < CASH_TOLERANCE:
        cash = 0.0
    series = pd.Series(dict(sorted(shares.items())), dtype=float, name="shares")
    series.index.name = "ticker"
    return Position(shares=series, cash=cash, last_transaction_id=last_id,
                    as_of=as_of or (ordered[-1].trade_date if ordered else None), first_date=first, n_transactions=n)
