"""The rebalance services on the store: propose (plan on the portfolio's ledger and strategy, and
store the proposal as open), accept (its trades into the ledger, the optimization run and the audit
row in one database transaction), reject (with a reason), and check (which portfolios drifted
outside their band).

Every function names its **actor** (an e-mail, an :class:`qpo.store.Actor`, or None for
``QPO_USER``); the store's rules decide what it may read and change (:mod:`qpo.store.access`).
``prices`` default to the book's prices, :func:`qpo.store.market_data.book_prices` of ``engine``
(the store's market data when it holds any bar, else the bundled panel: what the dashboard and the
nightly run read, so that a newer close ingested into the store is seen), ``engine`` to the
configured store (:func:`qpo.store.connect`).
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from qpo.book.rebalance import RebalanceProposal, plan_rebalance
from qpo.book.strategy import Strategy
from qpo.errors import InvalidValueError

#: the columns of :func:`check_rebalance`
CHECK_COLUMNS = ["portfolio", "client", "advisor", "status", "due", "max_drift", "ticker", "band", "value",
                 "cash_weight", "target_proposal", "prices_as_of", "reason"]
#: the order ``check_rebalance`` lists the statuses in
CHECK_STATUSES = ("drifted", "no_target", "strategy_invalid", "unpriced", "within_band")


def _prices(prices, engine) -> pd.DataFrame:
    """The price panel (default the book's: :func:`qpo.store.market_data.book_prices` of ``engine``),
    checked and in date order (oldest first)."""
    from qpo.book.rebalance import _price_panel

    if prices is None:
        from qpo.store.market_data import book_prices

        prices, _ = book_prices(engine)
    return _price_panel(prices)


def _trading_closes(engine, end) -> pd.DataFrame | None:
    """The store's actual closes (the price a share traded at) over the last weeks up to ``end``,
    when its bars have them apart from the adjusted ones (a vendor's); None otherwise (the adjusted
    closes are the only ones). A proposal is valued and its trades priced at them."""
    from qpo.store.market_data import book_prices, closes_differ, has_market_data

    if engine is None or not has_market_data(engine) or not closes_differ(engine):
        return None
    day = pd.Timestamp(end)
    actual, _ = book_prices(engine, start=(day - pd.Timedelta(days=40)).date(), end=day.date(), actual=True)
    return actual


def _plain(value):
    """An override as JSON data (a Constraints or Limits as its fields)."""
    import dataclasses

    from qpo.book.rebalance import _jsonable

    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, pd.Series):
        return _jsonable(value.to_dict())
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return _jsonable(value)


def _engine(engine, *, create: bool):
    if engine is None:
        from qpo.store import connect

        return connect(create=create)
    return engine


def _as_day(as_of, prices: pd.DataFrame) -> pd.Timestamp:
    from qpo.data.calendar import check_as_of

    return pd.Timestamp(check_as_of(prices.index, as_of))


def _strategy_of(row_strategy, strategy, overrides: Mapping[str, Any]) -> Strategy:
    if strategy is None:
        base = Strategy.from_json(row_strategy, check_builds=False) if row_strategy else Strategy.default()
    elif isinstance(strategy, Strategy):
        base = strategy
    elif isinstance(strategy, (Mapping, str, bytes)):
        base = Strategy.from_json(strategy)
    else:
        raise InvalidValueError(f"strategy must be a qpo.book.Strategy or its JSON, got {type(strategy).__name__}")
    return base.with_overrides(**overrides) if overrides else base


def share_override(fractional: bool) -> str:
    """What a proposal says when its shares override its strategy's (``fractional=`` given)."""
    return ("fractional shares (overriding the strategy's whole shares)" if fractional
            else "whole shares (overriding the strategy's fractional shares)")


#: a name with no close on a *partial* day (bars still arriving) is carried at its last close for at
#: most this many dates of the panel, as the nightly runs carry a held name
CARRY_DATES = 5


def _tradable(prices: pd.DataFrame, when: pd.Timestamp, lookback: int) -> list[str]:
    """The names priced on every one of the last ``lookback`` dates up to ``when`` (the universe of a
    portfolio of cash whose strategy names no ticker). A date where fewer than half of the window's
    most-priced date's names have a close is a partial day (the rest of its bars have not arrived):
    a name whose closes stop just before a run of at most :data:`CARRY_DATES` partial days up to
    ``when`` still counts, priced at its last close. A name without a close on a full day did not
    trade there (halted, delisted) and is left out."""
    window = prices.loc[:when].iloc[-(lookback + 1):]
    if not len(window):
        return []
    priced = window.notna().to_numpy()
    counts = priced.sum(axis=1)
    partial = counts < 0.5 * counts.max()
    n = len(priced)
    tail = 0  # the partial days at the end of the window
    while tail < min(CARRY_DATES, n - 1) and partial[n - 1 - tail]:
        tail += 1
    seen = priced.any(axis=0)
    last = np.where(seen, n - 1 - np.argmax(priced[::-1], axis=0), -1)
    complete_to_last = np.array([priced[:last[j] + 1, j].all() if seen[j] else False for j in range(priced.shape[1])])
    ok = complete_to_last & (last >= n - 1 - tail)
    closes = window.ffill().iloc[-1].to_numpy(dtype=float)
    ok &= np.where(np.isnan(closes), False, closes > 0)
    return sorted(str(t) for t, good in zip(window.columns, ok) if good)


def propose_rebalance(portfolio: str, strategy=None, as_of=None, *, actor=None, prices=None, engine=None,
                      save: bool = True, sectors: Mapping[str, str] | None = None, universe=None,
                      **overrides) -> RebalanceProposal:
    """A rebalance proposal for the client portfolio named ``portfolio``: its holdings and cash
    from its ledger up to ``as_of`` (default: the prices' last date), the target from its stored
    strategy (or ``strategy``, a :class:`~qpo.book.Strategy` or its JSON) with ``overrides``
    (``objective=``, ``max_weight=``, ``max_turnover=``, ``spread_bps=``, ``commission=``,
    ``fractional=``, ...: :meth:`Strategy.with_overrides`) for this proposal only, planned by
    :func:`~qpo.book.rebalance.plan_rebalance`.

    With ``save`` (the default) the proposal is stored as open (the actor must be allowed to change
    the portfolio: its advisor or an admin) and its ``id`` set; ``save=False`` computes it and
    stores nothing (what a researcher may do).

    ``sectors`` (ticker -> sector) groups the names for sector caps; default the book's map
    (:func:`qpo.store.sectors.book_sectors`: the store's over the bundled one). ``universe`` adds
    names the target may buy; a portfolio of cash only whose strategy names no
    ticker may buy the names of its last accepted target, else every name priced over the whole
    lookback window.
    """
    from qpo.store import actor_for, last_accepted_target, session_scope
    from qpo.store.repository import get_portfolio, positions, save_proposal

    eng = _engine(engine, create=save)
    given_prices = prices is not None
    prices = _prices(prices, eng)
    when = _as_day(as_of, prices)
    _splits_first(eng, portfolio, actor, when, save)
    closes = None if given_prices else _trading_closes(eng, when)  # shares trade at the actual closes
    with session_scope(eng, write=save) as s:  # a dry run only reads: no write lock held while it optimizes
        who = actor_for(s, actor)
        row = get_portfolio(s, who, portfolio)
        if save:
            who.require_change(row, "propose a rebalance of")
        base = _strategy_of(row.strategy, strategy, {})
        plan = base.with_overrides(**overrides) if overrides else base
        pos, whole = positions(s, who, row.name, when.date())
        if pos.n_transactions == 0:
            raise InvalidValueError(f"portfolio {row.name!r} has no ledger entry on or before {when.date()}"
                                    + (f" (its ledger starts on {whole.first_date})" if whole.first_date
                                       else " (its ledger is empty)"))
        if save and whole.n_transactions > pos.n_transactions:
            last = whole.as_of
            raise InvalidValueError(f"the ledger of {row.name!r} has entries after {when.date()} (up to {last}): a "
                                    f"proposal as of {when.date()} could not be accepted; propose as of {last} or "
                                    "later (prices for that date are needed), or compute it without storing it "
                                    "(save=False, --dry-run)")
        ledger_version = whole.last_transaction_id or 0
        extra = [] if universe is None else [universe] if isinstance(universe, str) else list(universe)
        if pos.shares.empty and not extra:
            from qpo.book.rebalance import universe_of

            if not universe_of(pos.shares, plan.constraints):
                target = last_accepted_target(s, who, row.name)
                extra = list(target.index) if target is not None else _tradable(prices, when, plan.lookback)
        if sectors is None:  # the book's map: the store's sectors over the bundled ones
            from qpo.store.sectors import book_sectors

            sectors = book_sectors(eng)
        proposal = plan_rebalance(pos.shares, pos.cash, prices, plan, as_of=when, portfolio=row.name,
                                  account=row.account or row.name, sectors=sectors, universe=extra or None,
                                  ledger_version=ledger_version, closes=closes)
        proposal.parameters["overrides"] = _plain(dict(overrides))
        proposal.parameters["strategy_source"] = "given" if strategy is not None else "portfolio"
        if plan.fractional != base.fractional:
            proposal.parameters["share_override"] = share_override(plan.fractional)
        if save:
            stored = save_proposal(s, who, row.name, proposal.to_record())
            proposal.id = stored.id
            proposal.status = stored.status
    return proposal


def _splits_first(engine, portfolio: str, actor, when: pd.Timestamp, save: bool) -> None:
    """The market data's splits up to ``when`` that the portfolio's ledger lacks: booked first when
    the proposal is stored (as its actor), else refused by name. Pre-split shares at a post-split
    close would be valued at half (a 2-for-1) and the trades sized on it."""
    from qpo.book.corporate_actions import book_splits, describe_pending, pending_splits
    from qpo.store import actor_for, session_scope
    from qpo.store.repository import get_portfolio

    with session_scope(engine, write=False) as s:
        pid = get_portfolio(s, actor_for(s, actor), portfolio).id
    if save:
        book_splits(engine, when, actor=actor, portfolio_ids=[pid])
        return
    pending = pending_splits(engine, when, actor=actor, portfolio_ids=[pid])
    if not pending.empty:
        raise InvalidValueError(f"the ledger of {portfolio!r} lacks {describe_pending(pending)} that the market "
                                "data records: its shares are pre-split, the closes post-split; the nightly "
                                "valuation books it (`qpo nightly value`), as does a stored proposal")


def _latest_price_date(prices: pd.DataFrame, names) -> dt.date:
    cols = [t for t in names if t in prices.columns]
    if not cols:
        return prices.index[-1].date()
    seen = prices[cols].notna().any(axis=1)
    return prices.index[seen.to_numpy()][-1].date() if seen.any() else prices.index[-1].date()


def _over(actual: pd.DataFrame, prices: pd.DataFrame) -> pd.DataFrame:
    """``prices`` with the ``actual`` closes over them where there are some (a proposal's basis)."""
    return actual.reindex(index=actual.index, columns=prices.columns).combine_first(prices)


def _changed_closes(prices: pd.DataFrame, row) -> list[str]:
    """The names whose close on or before the proposal's price date is no longer the one it was
    built on (a corrected or backfilled bar): ``TICKER built -> now``."""
    built = (row.parameters or {}).get("closes") or {t["ticker"]: t["price"] for t in row.trades or []}
    cols = [t for t in built if t in prices.columns]
    upto = prices.loc[:pd.Timestamp(row.prices_as_of), cols]
    if upto.empty:
        return []
    last = upto.ffill().iloc[-1]
    out = []
    for t in cols:
        was, now = float(built[t]), float(last[t])
        if np.isfinite(now) and abs(now - was) > 1e-9 * max(1.0, abs(was)):
            out.append(f"{t} {was:,.4g} -> {now:,.4g}")
    return out


def accept_rebalance(proposal_id: int, *, actor=None, prices=None, engine=None, trade_date=None) -> RebalanceProposal:
    """Accept an open proposal: its trades become the portfolio's ledger entries (sells first, dated
    ``trade_date``, default the proposal's date), the optimization run is recorded and the
    audit row written, in one database transaction. Refused (nothing written) when it is not open,
    when the book's prices (the store's market data, else the bundled panel) or ``prices`` when given
    hold a newer close of any of its names than the one it was built on, or a different close on
    its price date (a corrected bar; rebuild it: prices given cannot hide the store's newer or
    corrected closes), or when the ledger moved since."""
    from qpo.store import accept_proposal, get_proposal, session_scope
    from qpo.store.market_data import book_prices, has_market_data

    eng = _engine(engine, create=False)
    given = prices is not None
    prices = _prices(prices, eng)
    with session_scope(eng) as s:
        row = get_proposal(s, actor, proposal_id)
        names = set((row.target or {}).keys()) | {t["ticker"] for t in row.trades or []}
        latest = _latest_price_date(prices, sorted(names))
        traded = None if given else _trading_closes(eng, row.prices_as_of)  # what it was priced at
        changed = _changed_closes(prices if traded is None else _over(traded, prices), row)
        if given and has_market_data(eng):
            stored, _ = book_prices(eng, tickers=sorted(names | set((row.parameters or {}).get("closes") or {})))
            if len(stored.index) and stored.notna().any().any():
                latest = max(latest, _latest_price_date(stored, sorted(names)))
                actual = _trading_closes(eng, row.prices_as_of)
                changed += [c for c in _changed_closes(stored if actual is None else _over(actual, stored), row)
                            if c not in changed]
        accepted = accept_proposal(s, actor, proposal_id, latest_price_date=latest, trade_date=trade_date,
                                   changed_closes=changed)
        return RebalanceProposal.from_record(accepted)


def reject_rebalance(proposal_id: int, reason: str, *, actor=None, engine=None) -> RebalanceProposal:
    """Reject an open proposal with a reason (kept verbatim)."""
    from qpo.store import reject_proposal, session_scope

    with session_scope(_engine(engine, create=False)) as s:
        return RebalanceProposal.from_record(reject_proposal(s, actor, proposal_id, reason))


def _drift_row(row, pos, target: pd.Series | None, target_id, band: float, prices: pd.DataFrame,
               when: pd.Timestamp) -> dict:
    out: dict[str, Any] = {"portfolio": row.name, "client": row.client_name, "advisor": row.advisor.email,
                           "band": band, "target_proposal": target_id, "max_drift": np.nan, "ticker": None,
                           "value": np.nan, "cash_weight": np.nan, "prices_as_of": None, "reason": ""}
    shares = pos.shares
    missing = [t for t in shares.index if t not in prices.columns]
    upto = prices.loc[:when, [t for t in shares.index if t in prices.columns]]
    last = upto.ffill().iloc[-1] if len(upto) else pd.Series(dtype=float)
    unpriced = missing + [t for t in last.index if not (last[t] > 0)]
    if unpriced:
        return out | {"status": "unpriced", "due": False,
                      "reason": f"no price on or before {when.date()} for {', '.join(sorted(unpriced)[:10])}"}
    value = float(pos.cash + (shares * last.reindex(shares.index)).sum())
    out["value"] = value
    out["prices_as_of"] = None if upto.empty else upto.index[-1].date().isoformat()
    if value <= 0:
        reason = (f"its ledger has no entry on or before {when.date()}" if pos.n_transactions == 0
                  else "the portfolio is worth nothing")
        return out | {"status": "unpriced", "due": False, "reason": reason}
    weights = shares * last.reindex(shares.index) / value
    out["cash_weight"] = float(pos.cash / value)
    if target is None:
        return out | {"status": "no_target", "due": True,
                      "reason": "no accepted proposal yet: propose one to set the target"}
    names = sorted(set(weights.index) | set(target.index))
    drift = (weights.reindex(names).fillna(0.0) - target.reindex(names).fillna(0.0)).abs()
    worst = str(drift.idxmax()) if len(drift) else None
    out["max_drift"] = float(drift.max()) if len(drift) else 0.0
    out["ticker"] = worst
    due = out["max_drift"] > band + 1e-12
    reason = (f"{worst} is {out['max_drift']:.2%} from its target, beyond the {band:.2%} band" if due
              else f"every weight within {band:.2%} of the target")
    return out | {"status": "drifted" if due else "within_band", "due": bool(due), "reason": reason}


def check_rebalance(*, actor=None, prices=None, as_of=None, engine=None) -> pd.DataFrame:
    """Every portfolio the actor may read, with how far its weights (of value including cash, at the
    last close on or before ``as_of``) drifted from the target of its last accepted proposal, and
    whether a proposal is due (the target is that of the last proposal accepted on prices of
    ``as_of`` or before): ``status`` is ``drifted`` (the largest |weight - target| exceeds the
    strategy's ``rebalance_band``), ``no_target`` (never rebalanced: a proposal is due),
    ``strategy_invalid`` (its stored strategy no longer reads: ``reason`` says why; no proposal can be
    built until a valid one is stored), ``unpriced`` (a holding has no price: nothing can be said) or
    ``within_band``. Sorted by status in
    that order, then by drift, largest first. Columns: :data:`CHECK_COLUMNS`."""
    from sqlalchemy import select

    from qpo.store import actor_for, session_scope
    from qpo.store.models import ClientPortfolio, Proposal
    from qpo.store.repository import position

    eng = _engine(engine, create=False)
    prices = _prices(prices, eng)
    when = _as_day(as_of, prices)
    rows = []
    with session_scope(eng, write=False) as s:
        who = actor_for(s, actor)
        for p in s.scalars(select(ClientPortfolio).order_by(ClientPortfolio.name)).all():
            if not who.may_read(p):
                continue
            try:
                stored = Strategy.from_json(p.strategy, check_builds=False) if p.strategy else Strategy.default()
                band = float(stored.rebalance_band)
            except InvalidValueError as exc:
                rows.append({"portfolio": p.name, "client": p.client_name, "advisor": p.advisor.email,
                             "status": "strategy_invalid", "due": False,
                             "reason": f"its stored strategy is refused: {exc}; store a valid one "
                                       f"(`qpo portfolio update {p.name} --strategy FILE`)"})
                continue
            accepted = s.scalars(select(Proposal).where(Proposal.portfolio_id == p.id, Proposal.status == "accepted",
                                                        Proposal.prices_as_of <= when.date())
                                 .order_by(Proposal.prices_as_of.desc(), Proposal.id.desc()).limit(1)).first()
            target = None if accepted is None else pd.Series(accepted.target, dtype=float)
            target_id = None if accepted is None else accepted.id
            pos = position(s, who, p.name, when.date())
            rows.append(_drift_row(p, pos, target, target_id, band, prices, when))
    frame = pd.DataFrame(rows, columns=CHECK_COLUMNS)
    order = {k: i for i, k in enumerate(CHECK_STATUSES)}
    frame["_o"] = frame["status"].map(order)
    frame = frame.sort_values(["_o", "max_drift", "portfolio"], ascending=[True, False, True], na_position="last",
                              kind="stable").drop(columns="_o").reset_index(drop=True)
    frame["due"] = frame["due"].astype(bool)
    frame["target_proposal"] = frame["target_proposal"].astype("Int64")
    return frame

