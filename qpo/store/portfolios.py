"""Client portfolios and their ledgers: create, list, update, delete; holdings and cash derived
from the ledger, new entries replayed against it first."""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping

import pandas as pd
from sqlalchemy import case, func, select, update
from sqlalchemy.orm import Session, selectinload

from qpo._checks import quote
from qpo.errors import AccessDenied, StoreError
from qpo.store import _inputs as check
from qpo.store import audit, ledger
from qpo.store._opening import opening_entries as _opening_entries
from qpo.store._repo import ActorLike, _collect
from qpo.store._tickers import _universe
from qpo.store._tickers import book_price_tickers as book_price_tickers  # re-exported: the book's tickers
from qpo.store._tickers import store_tickers as store_tickers  # re-exported
from qpo.store.access import Actor, actor_for, user_named
from qpo.store.db import PG_PORTFOLIO_NAMES_LOCK, one_writer
from qpo.store.models import (
    ClientPortfolio,
    Proposal,
    Transaction,
    User,
)

#: set the check a strategy passes before it is stored (:mod:`qpo.book.strategy` registers
#: ``Strategy.from_json`` on import; the store runs no optimizer itself)
register_strategy_check = check.register_strategy_check


# -- portfolios -----------------------------------------------------------------------------------
def portfolio_benchmark(portfolio: ClientPortfolio) -> str | None:
    """The benchmark of a portfolio, the one answer every reader uses: its own ``benchmark`` column
    (set by ``create_portfolio``/``update_portfolio``, ``qpo portfolio create/update --benchmark``)
    is the source of truth; when that is empty, its stored strategy's ``benchmark``
    (:attr:`qpo.book.Strategy.benchmark`, a default for portfolios made with one); else None."""
    return benchmark_of(portfolio.benchmark, portfolio.strategy)


def benchmark_of(own: object, strategy: object) -> str | None:
    """:func:`portfolio_benchmark` from a portfolio's ``benchmark`` and ``strategy`` columns (as a
    bulk read gives them: a missing benchmark may come as NaN)."""
    if isinstance(own, str) and own.strip():
        return own
    named = strategy.get("benchmark") if isinstance(strategy, Mapping) else None
    return named if isinstance(named, str) and named.strip() else None


def _find(session: Session, name: str) -> ClientPortfolio:
    name = check.label(name, "portfolio name")
    portfolio = session.scalar(select(ClientPortfolio).options(selectinload(ClientPortfolio.advisor))
                               .where(ClientPortfolio.name == name))
    if portfolio is None:
        raise check.fail(f"no portfolio named {quote(name)}; `qpo portfolio list` shows the ones you may see")
    return portfolio


def get_portfolio(session: Session, actor: ActorLike, name: str) -> ClientPortfolio:
    """The portfolio named ``name``, if ``actor`` may see it (an advisor is told of no other
    advisor's portfolio beyond that it is not theirs)."""
    who = actor_for(session, actor)
    portfolio = _find(session, name)
    who.require_read(portfolio)
    return portfolio


def _owner(session: Session, who: Actor, advisor_email: str) -> User:
    address = check.email(advisor_email, "advisor e-mail")
    owner = user_named(session, address)
    if owner is None:
        raise check.fail(f"no user {quote(address)} to manage the portfolio (`qpo user add {address} --name ... "
                         "--role advisor`)")
    if owner.role not in ("advisor", "admin"):
        raise check.fail(f"{quote(address)} is a {owner.role}; a portfolio is managed by an advisor (or an admin)")
    if who.role == "advisor" and owner.id != who.user_id:
        raise AccessDenied(f"{who} may not create or move a portfolio for another advisor ({quote(address)})")
    if who.role == "researcher":
        raise AccessDenied(f"{who} may not create or change portfolios: a researcher reads them and changes none")
    return owner


def create_portfolio(session: Session, actor: ActorLike, name: str, client_name: str, advisor_email: str, *,
                     holdings=None, cash: float | None = None, strategy=None, benchmark: str | None = None,
                     description: str | None = None, account: str | None = None, trade_date=None,
                     known_tickers: Iterable[str] | None = None) -> ClientPortfolio:
    """Create a portfolio, all or nothing: its own fields, and its opening ledger (each holding a
    ``transfer_in`` of its shares, at its cost-basis price and date when given, and the cash a
    ``deposit``), dated ``trade_date`` (default: today) where the holding gives no date.

    Every input is checked before anything is written, and every problem is reported at once:
    names (1 to 200 characters, no control characters), tickers (symbols of ``known_tickers``, the
    price data's columns, or by default the bundled panel's and those the store holds), shares
    (finite, > 0, each ticker once), cash (> 0), the strategy (a JSON object with its schema version;
    :class:`qpo.book.Strategy` checks what it means before it gets here).
    """
    who = actor_for(session, actor)
    problems: list[str] = []
    pname = _collect(problems, check.label, name, "portfolio name")
    client = _collect(problems, check.label, client_name, "client name")
    bench = _collect(problems, check.optional_label, benchmark, "benchmark", check.LABEL64)
    acct = _collect(problems, check.optional_label, account, "account", check.LABEL64)
    _collect(problems, check.optional_text, description, "description")
    strat = _collect(problems, check.strategy_json, strategy)
    owner = _owner(session, who, advisor_email)
    one_writer(session, PG_PORTFOLIO_NAMES_LOCK)  # two creations of one name at once: the second sees the first
    if pname is not None and session.scalar(select(ClientPortfolio.id).where(ClientPortfolio.name == pname)) is not None:
        problems.append(f"a portfolio named {quote(pname)} exists already")
    entries = _opening_entries(session, holdings, cash, trade_date, known_tickers, problems)
    if problems:
        raise check.report(f"portfolio {quote(pname)}" if pname is not None else "portfolio", problems)
    ledger.replay(entries)  # opening entries only add
    portfolio = ClientPortfolio(name=pname, client_name=client, advisor=owner, benchmark=bench, account=acct,
                                description=description, base_currency="USD", strategy=strat)
    session.add(portfolio)
    session.flush()
    rows = [_row(portfolio.id, e, who, note="opening position") for e in entries]
    session.add_all(rows)
    session.flush()
    after = audit.snapshot(portfolio) | {"opening": [_entry_json(e) for e in entries]}
    audit.record(session, who, "create", "portfolio", entity_id=portfolio.id, portfolio=portfolio, after=after)
    return portfolio


def list_portfolios(session: Session, actor: ActorLike) -> pd.DataFrame:
    """One row per portfolio ``actor`` may see: name, client, advisor, advisor_email, benchmark,
    n_holdings, cash (from the ledgers, in one query), description."""
    who = actor_for(session, actor)
    q = select(ClientPortfolio).options(selectinload(ClientPortfolio.advisor)).order_by(ClientPortfolio.name)
    if who.role == "advisor":
        q = q.where(ClientPortfolio.advisor_id == who.user_id)
    rows = session.scalars(q).all()
    shares, cash = _book_positions(session, [p.id for p in rows])
    return pd.DataFrame([{"name": p.name, "client": p.client_name, "advisor": p.advisor.name,
                          "advisor_email": p.advisor.email, "benchmark": p.benchmark,
                          "n_holdings": int(shares.get(p.id, 0)), "cash": float(cash.get(p.id, 0.0)),
                          "description": p.description} for p in rows],
                        columns=["name", "client", "advisor", "advisor_email", "benchmark", "n_holdings", "cash",
                                 "description"])


_SIGNED_SHARES = case((Transaction.kind.in_((*ledger.SHARE_KINDS_IN, "split")), Transaction.quantity),
                      (Transaction.kind.in_(ledger.SHARE_KINDS_OUT), -Transaction.quantity), else_=0.0)
_CASH = case((Transaction.kind == "buy", -(Transaction.quantity * Transaction.price) - Transaction.fees),
             (Transaction.kind == "sell", Transaction.quantity * Transaction.price - Transaction.fees),
             (Transaction.kind.in_(ledger.CASH_IN), Transaction.amount - Transaction.fees),
             (Transaction.kind.in_(ledger.CASH_OUT), -Transaction.amount - Transaction.fees),
             else_=-Transaction.fees)


def _book_positions(session: Session, ids: list[int]) -> tuple[dict[int, int], dict[int, float]]:
    """Number of names held and cash of many portfolios, summed by the database."""
    if not ids:
        return {}, {}
    per_name = (select(Transaction.portfolio_id, Transaction.ticker, func.sum(_SIGNED_SHARES).label("q"))
                .where(Transaction.portfolio_id.in_(ids), Transaction.ticker.is_not(None))
                .group_by(Transaction.portfolio_id, Transaction.ticker).subquery())
    names: dict[int, int] = dict(session.execute(select(per_name.c.portfolio_id, func.count())
                                 .where(per_name.c.q > ledger.SHARE_TOLERANCE).group_by(per_name.c.portfolio_id)).all())
    cash: dict[int, float] = dict(session.execute(select(Transaction.portfolio_id, func.sum(_CASH))
                                .where(Transaction.portfolio_id.in_(ids)).group_by(Transaction.portfolio_id)).all())
    return names, {k: float(v or 0.0) for k, v in cash.items()}


def update_portfolio(session: Session, actor: ActorLike, name: str, /, **changes) -> ClientPortfolio:
    """Change a portfolio's own fields: ``name``, ``client_name``, ``advisor_email``, ``benchmark``,
    ``description``, ``account``, ``strategy`` (holdings and cash change only through the ledger)."""
    valid = ("name", "client_name", "advisor_email", "benchmark", "description", "account", "strategy")
    unknown = sorted(set(changes) - set(valid))
    if unknown:
        raise check.fail(f"cannot update {', '.join(unknown)}: a portfolio's updatable fields are {', '.join(valid)} "
                         "(holdings and cash change through transactions)")
    if not changes:
        raise check.fail(f"nothing to update: give one of {', '.join(valid)}")
    who = actor_for(session, actor)
    portfolio = _find(session, name)
    who.require_change(portfolio, "update")
    _lock(session, portfolio)  # one change of a portfolio at a time; a deletion meanwhile is refused by name
    who.require_change(portfolio, "update")  # and a reassignment meanwhile to another advisor is theirs now
    before = audit.snapshot(portfolio)
    problems: list[str] = []
    values: dict = {}
    if "name" in changes:
        new = _collect(problems, check.label, changes["name"], "portfolio name")
        one_writer(session, PG_PORTFOLIO_NAMES_LOCK)
        if new is not None and new != portfolio.name and session.scalar(
                select(ClientPortfolio.id).where(ClientPortfolio.name == new)) is not None:
            problems.append(f"a portfolio named {quote(new)} exists already")
        values["name"] = new
    if "client_name" in changes:
        values["client_name"] = _collect(problems, check.label, changes["client_name"], "client name")
    for key, fn in (("benchmark", check.optional_label), ("account", check.optional_label)):
        if key in changes:
            values[key] = _collect(problems, fn, changes[key], key, check.LABEL64)
    if "description" in changes:
        values["description"] = _collect(problems, check.optional_text, changes["description"], "description")
    if "strategy" in changes:
        values["strategy"] = _collect(problems, check.strategy_json, changes["strategy"])
    if problems:
        raise check.report(f"portfolio {quote(portfolio.name)}", problems)
    if "advisor_email" in changes:
        owner = _owner(session, who, changes["advisor_email"])
        portfolio.advisor = owner
    for key, value in values.items():
        setattr(portfolio, key, value)
    session.flush()
    audit.record(session, who, "update", "portfolio", entity_id=portfolio.id, portfolio=portfolio, before=before,
                 after=audit.snapshot(portfolio))
    return portfolio


def delete_portfolio(session: Session, actor: ActorLike, name: str, *, force: bool = False) -> dict:
    """Delete a portfolio and its ledger; refused while it has open proposals unless ``force``.
    The audit row keeps what was deleted (its fields, its holdings and cash, its ledger's size)."""
    who = actor_for(session, actor)
    portfolio = _find(session, name)
    who.require_change(portfolio, "delete")
    _lock(session, portfolio)  # a proposal saved, a trade or a second deletion meanwhile: this waits, or is refused
    who.require_change(portfolio, "delete")
    open_ids = session.scalars(select(Proposal.id).where(Proposal.portfolio_id == portfolio.id,
                                                         Proposal.status == "open").order_by(Proposal.id)).all()
    if open_ids and not force:
        raise check.fail(f"portfolio {quote(portfolio.name)} has open proposals ({', '.join(map(str, open_ids))}): "
                         "accept or reject them first, or delete with --force")
    pos = _position(session, portfolio)
    before = audit.snapshot(portfolio) | {"holdings": pos.shares.to_dict(), "cash": pos.cash,
                                          "n_transactions": pos.n_transactions, "open_proposals": list(open_ids)}
    audit.record(session, who, "delete", "portfolio", entity_id=portfolio.id, portfolio=portfolio, before=before)
    session.delete(portfolio)
    session.flush()
    return before


# -- the ledger -----------------------------------------------------------------------------------
def _entries(session: Session, portfolio: ClientPortfolio) -> list[ledger.Entry]:
    rows = session.execute(select(Transaction.kind, Transaction.trade_date, Transaction.ticker, Transaction.quantity,
                                  Transaction.price, Transaction.fees, Transaction.amount, Transaction.id)
                           .where(Transaction.portfolio_id == portfolio.id)).all()
    return [ledger.Entry(*r) for r in rows]


def _position(session: Session, portfolio: ClientPortfolio, as_of=None) -> ledger.Position:
    return ledger.replay(_entries(session, portfolio), as_of=None if as_of is None else check.day(as_of, "as_of"))


def position(session: Session, actor: ActorLike, name: str, as_of=None) -> ledger.Position:
    """Shares by ticker, cash and the ledger's version, from the ledger up to ``as_of`` (default:
    all of it)."""
    return _position(session, get_portfolio(session, actor, name), as_of)


def positions(session: Session, actor: ActorLike, name: str, as_of) -> tuple[ledger.Position, ledger.Position]:
    """The position as of ``as_of`` and after the whole ledger, from one read of it (so that the
    ledger's version and the holdings of a proposal agree, whatever commits in between)."""
    entries = _entries(session, get_portfolio(session, actor, name))
    return ledger.replay(entries, as_of=check.day(as_of, "as_of")), ledger.replay(entries)


def portfolio_holdings(session: Session, actor: ActorLike, name: str, as_of=None) -> pd.Series:
    """Share quantities by ticker, from the ledger."""
    return position(session, actor, name, as_of).shares.rename("quantity")


def portfolio_cash(session: Session, actor: ActorLike, name: str, as_of=None) -> float:
    return position(session, actor, name, as_of).cash


def portfolio_weights(session: Session, actor: ActorLike, name: str, prices: pd.DataFrame,
                      as_of: str | pd.Timestamp | None = None) -> pd.Series:
    """Market-value weights of the portfolio's holdings (from its ledger up to ``as_of``) at the
    last price on or before ``as_of``; they sum to 1 (cash is left out)."""
    day = None if as_of is None else pd.Timestamp(as_of)
    qty = position(session, actor, name, None if day is None else day.date()).shares
    if qty.empty:
        when = f" on or before {day.date()}" if day is not None else ""
        raise check.fail(f"portfolio {quote(name)} holds no shares{when} (its ledger holds only cash, or starts later)")
    missing = [t for t in qty.index if t not in prices.columns]
    if missing:
        raise check.fail(f"portfolio {quote(name)} holds {check.names_list(missing)}, which the price data lacks")
    px = prices[qty.index]
    if day is not None:
        px = px.loc[:day]
    px = px.dropna(how="any")
    if px.empty:
        raise check.fail(f"no prices for all of {check.names_list(qty.index)} on or before {quote(as_of)}")
    value = qty * px.iloc[-1]
    return (value / value.sum()).rename("weight")


def _entry_json(e: ledger.Entry) -> dict:
    return {k: v for k, v in (("kind", e.kind), ("trade_date", str(e.trade_date)), ("ticker", e.ticker),
                              ("quantity", e.quantity), ("price", e.price), ("fees", e.fees or None),
                              ("amount", e.amount)) if v is not None}


def _row(pid: int, e: ledger.Entry, who: Actor, note=None, proposal_id=None) -> Transaction:
    return Transaction(portfolio_id=pid, kind=e.kind, trade_date=e.trade_date, ticker=e.ticker, quantity=e.quantity,
                       price=e.price, fees=e.fees, amount=e.amount, note=note, proposal_id=proposal_id,
                       created_by=who.email)


def _entry(kind, trade_date, ticker, quantity, price, fees, amount, universe=None) -> ledger.Entry:
    """One checked ledger entry (every problem at once)."""
    problems: list[str] = []
    k = _collect(problems, check.transaction_kind, kind)
    day = _collect(problems, check.trade_day, trade_date, "trade date")
    t = None if ticker is None else _collect(problems, check.ticker, ticker, "ticker")
    if t is not None and universe is not None and t not in universe[0]:
        hint = f" (did you mean {t.upper()!r}?)" if t.upper() in universe[0] else ""
        problems.append(f"{t}: {universe[1]}{hint}")
    q = None if quantity is None else _collect(problems, check.money, quantity, "quantity (shares)",
                                               "any" if k == "split" else "positive")
    if k == "split" and q == 0.0:
        problems.append("quantity (shares) of a split is the change in the shares held (+10 for 2-for-1 on 10), not 0")
    elif k in ("buy", "transfer_in") and q is not None and 0.0 < abs(q) < ledger.MIN_QUANTITY:  # what adds shares:
        # a sale or a split may carry a residual of an older ledger
        problems.append(f"quantity (shares) {q:.3g} is below {ledger.MIN_QUANTITY:g}, the smallest a ledger records "
                        "(a smaller one would hold a name worth nothing)")
    p = None if price is None else _collect(problems, check.money, price, "price", "positive")
    f = _collect(problems, check.money, 0.0 if fees is None else fees, "cost (fees)", "nonnegative")
    a = None if amount is None else _collect(problems, check.money, amount, "amount", "positive")
    if problems:
        raise check.report("transaction", problems)
    e = ledger.Entry(k, day, t, q, p, f, a)
    ledger.check_entry(e)
    return e


def add_transaction(session: Session, actor: ActorLike, name: str, kind: str, *, trade_date, ticker=None,
                    quantity=None, price=None, fees=0.0, amount=None, note=None,
                    known_tickers: Iterable[str] | None = None) -> Transaction:
    """Append one entry to a portfolio's ledger, after replaying the ledger with it: selling more
    than held or spending cash the portfolio lacks (on that date or any later one) is refused with
    the numbers."""
    return import_transactions(session, actor, name, [dict(kind=kind, trade_date=trade_date, ticker=ticker,
                                                           quantity=quantity, price=price, fees=fees, amount=amount,
                                                           note=note)], known_tickers=known_tickers)[0]


_TX_FIELDS = ("kind", "trade_date", "ticker", "quantity", "price", "fees", "amount", "note")


def import_transactions(session: Session, actor: ActorLike, name: str, rows, *,
                        known_tickers: Iterable[str] | None = None) -> list[Transaction]:
    """Append entries (a DataFrame or a list of dicts with kind, trade_date, ticker, quantity,
    price, fees, amount, note), all or nothing: each checked (problems reported by row, 1-based),
    then the ledger replayed with all of them. One audit row records them."""
    who = actor_for(session, actor)
    portfolio = _find(session, name)
    who.require_change(portfolio, "add transactions to")
    written, change = _append(session, who, portfolio, rows, known_tickers)
    ids = ",".join(str(t.id) for t in written)[:64]
    audit.record(session, who, "transaction" if len(written) == 1 else "import", "transaction", entity_id=ids,
                 portfolio=portfolio, before=change["before"], after=change["after"])
    return written


def _lock(session: Session, portfolio: ClientPortfolio) -> None:
    """Hold the portfolio's row until the transaction ends (PostgreSQL: a row lock, so two writers
    of one ledger replay it one after the other; SQLite: the write lock of the database). A
    portfolio deleted by another transaction while this one waited for it is refused by name."""
    held = session.execute(update(ClientPortfolio).where(ClientPortfolio.id == portfolio.id)
                           .values(id=ClientPortfolio.id).execution_options(synchronize_session=False))
    if held.rowcount == 0:  # type: ignore[attr-defined]  # an UPDATE gives a CursorResult
        raise StoreError(f"portfolio {quote(portfolio.name)} was deleted while this change waited for it; "
                         "nothing was written")
    session.refresh(portfolio)  # what another change committed while this one waited (PostgreSQL)


def _append(session: Session, who: Actor, portfolio: ClientPortfolio, rows, known_tickers,
            proposal_id: int | None = None) -> tuple[list[Transaction], dict]:
    """Check ``rows``, replay the ledger with them (under the portfolio's lock) and write them; the
    change (holdings and cash before, entries and holdings and cash after) for the audit row."""
    records = rows.to_dict("records") if isinstance(rows, pd.DataFrame) else list(rows)
    if not records:
        raise check.fail("no transactions given")
    universe = _universe(session, known_tickers)
    problems: list[str] = []
    unknown: list[str] = []  # "row (ticker)" of each ticker outside the universe: one problem for all of them
    entries: list[tuple[ledger.Entry, str | None]] = []
    for i, r in enumerate(records, start=1):
        if not isinstance(r, Mapping):
            problems.append(f"row {i}: not a record of {', '.join(_TX_FIELDS)}")
            continue
        extra = sorted(set(map(str, r)) - set(_TX_FIELDS))
        if extra:
            problems.append(f"row {i}: unknown field(s) {', '.join(extra)} (valid: {', '.join(_TX_FIELDS)})")
            continue
        vals = {k: (None if _blank(r.get(k)) else r.get(k)) for k in _TX_FIELDS}
        _unknown_ticker(vals["ticker"], i, universe[0], unknown)
        try:
            e = _entry(vals["kind"], vals["trade_date"], vals["ticker"], vals["quantity"], vals["price"],
                       vals["fees"], vals["amount"])
            note = check.optional_text(vals["note"], "note")
        except StoreError as exc:
            problems.append(f"row {i}: {str(exc).removeprefix('transaction not written: ')}")
            continue
        entries.append((e, note))
    if unknown:
        problems.insert(0, f"unknown ticker ({universe[1]}): row{'s' if len(unknown) > 1 else ''} "
                           + ", ".join(unknown[:5]) + (f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""))
    if problems:
        raise check.report(f"{len(records)} transaction(s) for {quote(portfolio.name)}", problems)
    _lock(session, portfolio)
    before = _position(session, portfolio)
    existing = _entries(session, portfolio)
    ledger.check_splits_once(existing, [e for e, _ in entries], portfolio.name)
    rescaled = ledger.rescaled_splits(existing, [e for e, _ in entries])  # a late entry before a split
    existing = [e for e in existing if e not in {s for s, _ in rescaled}]
    existing += [dataclasses.replace(s, quantity=q) for s, q in rescaled if q]
    after = _replay_all(existing, [e for e, _ in entries])
    for s, q in rescaled:  # the split's quantity on the shares then held, at its own ratio (none held: gone)
        row = session.get_one(Transaction, s.id)
        if q:
            row.quantity, row.note = q, f"{row.note or 'split'} [re-scaled from {s.quantity:+,.6g} shares]"[:500]
        else:
            session.delete(row)
    written = [_row(portfolio.id, e, who, note=n, proposal_id=proposal_id) for e, n in entries]
    session.add_all(written)
    session.flush()
    return written, {"before": {"holdings": before.shares.to_dict(), "cash": before.cash},
                     "after": {"entries": [_entry_json(e) for e, _ in entries], "holdings": after.shares.to_dict(),
                               "cash": after.cash, **({"splits_rescaled": [
                                   {"id": s.id, "ticker": s.ticker, "trade_date": str(s.trade_date),
                                    "quantity_before": s.quantity, "quantity_after": q} for s, q in rescaled]}
                                   if rescaled else {})}}


def _replay_all(existing: list[ledger.Entry], new: list[ledger.Entry]) -> ledger.Position:
    """The ledger replayed with ``new`` entries; every entry that oversells or overdraws refused at
    once (a new one by its row, 1-based), or the one alone with its own message."""
    broken: list[tuple[ledger.Entry, str]] = []
    after = ledger.replay(existing + new, broken=broken)
    if len(broken) == 1:
        raise ledger.LedgerError(broken[0][1])
    if broken:
        rows = {id(e): i for i, e in enumerate(new, start=1)}
        parts = [(f"row {rows[id(e)]}: " if id(e) in rows else "") + why.split("; nothing written")[0]
                 for e, why in broken]
        more = f"; and {len(parts) - 4} more" if len(parts) > 4 else ""
        raise ledger.LedgerError(str(check.fail(f"{len(broken)} entries break the ledger, nothing written: "
                                                + "; ".join(parts[:4]) + more)))
    return after


def _unknown_ticker(value, row: int, universe: set[str], unknown: list[str]) -> None:
    """Note ``row`` in ``unknown`` when ``value`` is a well-formed ticker outside ``universe`` (a
    malformed one is the row's own problem)."""
    if value is None:
        return
    try:
        t = check.ticker(value, "ticker")
    except StoreError:
        return
    if t not in universe:
        hint = f", did you mean {t.upper()}?" if t.upper() in universe else ""
        unknown.append(f"{row} ({t}{hint})")


def _blank(v) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v)) or (isinstance(v, str) and not v.strip()) or (
        v is pd.NaT)


def list_transactions(session: Session, actor: ActorLike, name: str) -> pd.DataFrame:
    """The ledger, in the order it is replayed, with the cash balance after each entry."""
    portfolio = get_portfolio(session, actor, name)
    rows = session.scalars(select(Transaction).where(Transaction.portfolio_id == portfolio.id)
                           .order_by(Transaction.trade_date, Transaction.id)).all()
    # the replay's order: a split first within its date (it takes effect at the start of its day)
    rows = sorted(rows, key=lambda t: (t.trade_date, t.kind != "split", t.id))
    frame = pd.DataFrame([{"id": t.id, "trade_date": t.trade_date, "kind": t.kind, "ticker": t.ticker,
                           "quantity": t.quantity, "price": t.price, "fees": t.fees, "amount": t.amount,
                           "note": t.note, "proposal_id": t.proposal_id, "created_by": t.created_by} for t in rows],
                         columns=["id", "trade_date", "kind", "ticker", "quantity", "price", "fees", "amount", "note",
                                  "proposal_id", "created_by"])
    frame["proposal_id"] = pd.Series([t.proposal_id for t in rows], index=frame.index, dtype=object)  # ids, not 1.0
    frame["cash_after"] = [ledger.Entry(t.kind, t.trade_date, t.ticker, t.quantity, t.price, t.fees, t.amount)
                           .cash_effect() for t in rows]
    frame["cash_after"] = frame["cash_after"].cumsum()
    return frame
