"""A synthetic client book for scale tests (``qpo db seed --book N``): N realistic portfolios built
through the ledger, seeded (the same seed builds the same book).

Each portfolio: a client, one of several advisors (users with the role ``advisor``,
``advisor01@book.example.com`` ...), 5 to 60 names (at most the universe's size: the bundled
panel has 20) drawn from the real universe (the price panel's tickers, index tickers such as
``^GSPC`` or ``SPY`` left out), random weights, a cash share from a few tenths of a percent to a
half. It opens on a real trading day of the first year of the last three years of the prices: a
cash deposit, then whole-share buys of every name at that day's real close (a 1 USD commission
and a 5 bp spread as their cost), the cash left over kept. Some portfolios later get a top-up
deposit, a withdrawal or an advisory fee, never more than the cash they hold then (a ledger never
goes negative). Strategies are a mix of valid stored strategies (:data:`STRATEGY_MIX`), some with
limits tight enough that the risk run finds breaches; a fifth store none (the house default).

Everything is written in one transaction with bulk (executemany) inserts; the audit trail gets
one ``seed`` row for the whole book (and one per advisor it adds). Portfolio names start with
``SB<seed>-``; seeding a seed twice is refused (delete those portfolios or take another seed).
"""
from __future__ import annotations

import datetime as dt
import math
import time
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd
from sqlalchemy import Engine, func, insert, select

from qpo._checks import quote
from qpo.errors import DataError, InvalidValueError, StoreError
from qpo.store import Actor, ClientPortfolio, Transaction, User, actor_for, add_user, session_scope
from qpo.store import audit as _audit
from qpo.store import ledger as _ledger

#: the largest book one call seeds (a bigger one is almost surely a typo)
MAX_BOOK = 100_000
MIN_NAMES, MAX_NAMES = 5, 60
#: the book opens within the first year of the last three years (756 trading days) of the prices
BOOK_OPEN_PERIODS, OPEN_WINDOW = 756, 252
COMMISSION, SPREAD_BPS = 1.0, 5.0
#: tickers of indices and index funds, never held by a synthetic client
INDEX_LIKE = frozenset({"^GSPC", "^SPX", "SPX", "SP500", "SPY", "IVV", "VOO", "^DJI", "^IXIC", "^NDX", "^RUT"})
ADVISOR_DOMAIN = "book.example.com"
_FIRST = ["Ana", "Ben", "Chloe", "Dev", "Elena", "Farid", "Grace", "Hiro", "Ines", "Jonas", "Kemi", "Luca", "Maya",
          "Noor", "Omar", "Priya", "Quinn", "Rosa", "Sami", "Tess", "Uma", "Victor", "Wen", "Yara", "Zane"]
_LAST = ["Harper", "Moreau", "Nakamura", "Okafor", "Silva", "Chen", "Novak", "Reyes", "Schmidt", "Ivanova", "Haddad",
         "Kowalski", "Lindqvist", "Mensah", "Rossi", "Tanaka", "Walsh", "Yilmaz", "Dubois", "Fischer", "Garcia",
         "Patel", "Kim", "Larsen", "Osei", "Sato", "Weber", "Young", "Zhou", "Bianchi"]
_KINDS = ["Family Trust", "Pension", "Foundation", "Holdings LLC", "Joint Account", "IRA", "Endowment", "Savings"]

#: the strategies of the book: name -> (share of portfolios, Strategy.with_overrides changes or None for none stored)
STRATEGY_MIX: dict[str, tuple[float, dict | None]] = {
    "house default": (0.20, None),
    "min-variance capped": (0.20, {"objective": "min_variance", "max_weight": 0.15}),
    "max-Sharpe growth": (0.20, {"objective": "max_sharpe", "max_weight": 0.30,
                                 "limits": {"max_weight": 0.35, "sector_max": 0.60}}),
    "risk parity": (0.15, {"objective": "risk_parity", "limits": {"max_weight": 0.25, "sector_max": 0.50}}),
    # tight mandates: a concentrated portfolio breaches them
    "income, tight mandate": (0.15, {"objective": "min_variance", "max_weight": 0.08,
                                     "limits": {"max_weight": 0.08, "sector_max": 0.30, "min_names": 15,
                                                "var_limit": 0.012}}),
    "balanced, tight VaR": (0.10, {"objective": "max_utility", "risk_aversion": 3.0,
                                   "limits": {"var_limit": 0.009, "min_names": 8}}),
}
_STRATEGY_JSON: dict[str, dict | None] = {}
#: rows per multi-row INSERT on PostgreSQL (12 columns: under its 65,535 bound parameters)
_PAGE = 5_000
#: who seeds when no actor is named (the audit trail says ``system:seed``)
SEED_ACTOR = Actor.system("seed")


@dataclass(frozen=True)
class SeedSummary:
    """What :func:`seed_book` wrote."""

    seed: int
    portfolios: int
    transactions: int
    advisors: list[str]
    advisors_added: int
    prefix: str  # every portfolio's name starts with it
    first_id: int
    last_id: int
    opened_from: dt.date
    opened_to: dt.date
    names_min: int
    names_max: int
    universe: int
    prices_source: str
    strategies: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    users_added: list[str] = field(default_factory=list)  # the e-mails of the users this seed created
    admins: list[str] = field(default_factory=list)  # the store's admins after the seed (it adds none)
    use_as: str | None = None  # the e-mail to name with --as to see the whole book: an admin's (None: no admin)

    def to_dict(self) -> dict:
        out = asdict(self)
        out["opened_from"], out["opened_to"] = str(self.opened_from), str(self.opened_to)
        return out

    def __str__(self) -> str:
        return self.text()

    def text(self, store: str | None = None) -> str:
        """The summary for a terminal: what was written (``into`` ``store`` when given), the users
        it added, and which e-mail to name with ``--as``."""
        into = f" into {store}" if store else ""
        return (f"seeded {self.portfolios:,} synthetic portfolios ({self.prefix}*, ids {self.first_id}-{self.last_id}) "
                f"with {self.transactions:,} ledger entries in {self.seconds:.1f} s: {self.names_min}-{self.names_max} "
                f"names each from {self.universe} tickers ({self.prices_source} prices), opened {self.opened_from} to "
                f"{self.opened_to}, {len(self.advisors)} advisors ({self.advisors_added} added){into}"
                + (f"\nusers added: {', '.join(self.users_added)} (advisors: `--as` one of them sees their own "
                   "clients)" if self.users_added else "")
                + f"\n{self.as_hint()}")

    def as_hint(self) -> str:
        """Which e-mail to name with ``--as`` (or ``QPO_USER``) to see the book."""
        example = self.advisors[0] if self.advisors else "ADVISOR"
        if self.use_as:
            return (f"use `--as {self.use_as}` (an admin: the whole book, e.g. `qpo alerts --as {self.use_as}`), or "
                    f"`--as {example}` for one advisor's clients")
        return ("this store has no admin, so nobody sees the whole book yet: its operator adds one with `qpo user add "
                f"EMAIL --name NAME --role admin --as system`, then `--as EMAIL`; meanwhile `--as {example}` sees that "
                "advisor's clients")


def strategy_templates() -> dict[str, dict | None]:
    """The stored JSON of each strategy of :data:`STRATEGY_MIX` (each built and checked whole by
    :class:`qpo.book.Strategy` once per process)."""
    if not _STRATEGY_JSON:
        from qpo.book.strategy import Strategy

        for name, (_, changes) in STRATEGY_MIX.items():
            _STRATEGY_JSON[name] = None if changes is None else Strategy.default().with_overrides(
                commission=COMMISSION, spread_bps=SPREAD_BPS, **changes).to_json()
    return dict(_STRATEGY_JSON)


def _check_n(n) -> int:
    if isinstance(n, (bool, np.bool_)) or not isinstance(n, (int, np.integer)):
        raise InvalidValueError(f"the number of portfolios must be a whole number from 1 to {MAX_BOOK:,}, got {quote(n)}")
    if not 1 <= n <= MAX_BOOK:
        raise InvalidValueError(f"the number of portfolios must be from 1 to {MAX_BOOK:,} (a larger book: seed it in "
                                f"parts with different seeds), got {int(n):,}")
    return int(n)


def _check_seed(seed) -> int:
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2 ** 32:
        raise InvalidValueError(f"the seed must be a whole number from 0 to {2 ** 32 - 1}, got {quote(seed)}")
    return int(seed)


def _prices(engine: Engine, prices) -> tuple[pd.DataFrame, str]:
    if prices is not None:
        if not isinstance(prices, pd.DataFrame) or not isinstance(prices.index, pd.DatetimeIndex):
            raise DataError("prices must be a DataFrame of adjusted closes indexed by date (dates x tickers), got "
                            f"{type(prices).__name__}")
        return prices.sort_index(), "given"
    try:  # the store's market data when it holds any (qpo.store.market_data), else the bundled panel
        from qpo.store.market_data import book_prices
    except ImportError:
        book_prices = None  # type: ignore[assignment]
    if book_prices is not None:
        panel, source = book_prices(engine)
        return panel, str(source)
    from qpo.data.loaders import load_prices

    return load_prices("sp500"), "bundled"


def _index_like() -> set[str]:
    try:
        from qpo.store.market_data import INDEX_TICKERS

        extra = set(INDEX_TICKERS.values() if isinstance(INDEX_TICKERS, dict) else INDEX_TICKERS)
    except (ImportError, TypeError):
        extra = set()
    return set(INDEX_LIKE) | {str(t) for t in extra}


def seed_book(engine: Engine, n: int, *, seed: int = 0, prices: pd.DataFrame | None = None,
              actor: Actor | str = SEED_ACTOR) -> SeedSummary:
    """Write a synthetic book of ``n`` client portfolios (see the module), all or nothing, and
    return what was written. ``prices``: the date x ticker adjusted closes the buys are priced at
    and the names drawn from (default: the store's market data, else the bundled panel). ``actor``
    must be an admin or a system actor. Refuses ``n`` outside 1..:data:`MAX_BOOK`, a seed already
    seeded in this store, and prices with fewer than 5 tickers or under a year of dates."""
    started = time.perf_counter()
    n, seed = _check_n(n), _check_seed(seed)
    px, source = _prices(engine, prices)
    index_like = _index_like()
    px = px[[c for c in px.columns if str(c) not in index_like and not str(c).startswith("^")]]
    if px.shape[1] < MIN_NAMES:
        raise DataError(f"the prices hold {px.shape[1]} tickers besides indices; a synthetic book needs at least "
                        f"{MIN_NAMES}")
    px = px.dropna(how="all")
    if len(px.index) < 2:
        raise DataError("the prices hold fewer than two dates; a synthetic book opens on a day of the prices")
    prefix = f"SB{seed}-"
    templates = strategy_templates()
    with session_scope(engine) as session:
        who = actor_for(session, actor)
        who.require_admin("seed a synthetic book")
        taken = session.scalar(select(func.count(ClientPortfolio.id)).where(ClientPortfolio.name.like(f"{prefix}%")))
        if taken:
            raise StoreError(f"the store holds {taken:,} portfolios of the synthetic book of seed {seed} already "
                             f"(named {prefix}...); seed another with --seed, or delete those first")
        rng = np.random.default_rng(seed)
        existing = set(session.scalars(select(User.email)).all())
        advisors, added = _advisors(session, who, max(3, min(40, n // 250)))
        admins = sorted(session.scalars(select(User.email).where(User.role == "admin")).all())
        plan = _plan(rng, n, px, prefix, len(advisors), templates)
        conn = session.connection()
        # the portfolios (Core executemany), then their ids by name
        conn.execute(insert(ClientPortfolio.__table__), [  # type: ignore[arg-type]
            {"name": p["name"], "client_name": p["client"], "advisor_id": advisors[p["advisor"]][0],
             "base_currency": "USD", "benchmark": "SP500", "account": p["account"],
             "description": f"synthetic book, seed {seed}: {p['strategy_name']}", "strategy": templates[p["strategy_name"]]}
            for p in plan["portfolios"]])
        ids = dict(session.execute(select(ClientPortfolio.name, ClientPortfolio.id)
                                   .where(ClientPortfolio.name.like(f"{prefix}%"))).all())
        pid = np.array([ids[p["name"]] for p in plan["portfolios"]], dtype=np.int64)
        cols = plan["columns"]
        _check_ledgers(plan["entries"].assign(portfolio_id=pid[plan["entries"]["portfolio"].to_numpy()]))
        written = 0
        # opening deposits before the buys of the same day (the ledger replays a day in id order)
        for phase in (0, 1, 2):
            records = [{"portfolio_id": int(pid[i]), "trade_date": day, "kind": kind, "ticker": ticker,
                        "quantity": qty, "price": price, "fees": fees, "amount": amount, "note": note,
                        "proposal_id": None, "created_by": who.email}
                       for i, ph, day, kind, ticker, qty, price, fees, amount, note in zip(
                           cols["portfolio"], cols["phase"], cols["trade_date"], cols["kind"], cols["ticker"],
                           cols["quantity"], cols["price"], cols["fees"], cols["amount"], cols["note"], strict=True)
                       if ph == phase]
            if records:
                conn.execute(insert(Transaction.__table__).execution_options(  # type: ignore[arg-type]
                    insertmanyvalues_page_size=_PAGE),
                             records)
                written += len(records)
        names = [len(p["tickers"]) for p in plan["portfolios"]]
        opened = [p["opened"] for p in plan["portfolios"]]
        mix: dict[str, int] = {}
        for p in plan["portfolios"]:
            mix[p["strategy_name"]] = mix.get(p["strategy_name"], 0) + 1
        summary = SeedSummary(
            seed=seed, portfolios=n, transactions=written, advisors=[a[1] for a in advisors], advisors_added=added,
            prefix=prefix, first_id=min(ids.values()), last_id=max(ids.values()), opened_from=min(opened),
            opened_to=max(opened), names_min=min(names), names_max=max(names), universe=int(px.shape[1]),
            prices_source=source, strategies=mix, users_added=[e for _, e in advisors if e not in existing],
            admins=admins, use_as=admins[0] if admins else None)
        _audit.record(session, who, "seed", "book", entity_id=f"synthetic seed {seed}",
                      after={k: v for k, v in summary.to_dict().items() if k != "seconds"})
    return SeedSummary(**{**asdict(summary), "seconds": time.perf_counter() - started})


def _advisors(session, who: Actor, k: int) -> tuple[list[tuple[int, str]], int]:
    """``k`` advisors (id, e-mail): the store's synthetic advisors, added when missing."""
    out, added = [], 0
    for j in range(1, k + 1):
        email = f"advisor{j:02d}@{ADVISOR_DOMAIN}"
        row = session.execute(select(User.id, User.role).where(User.email == email)).first()
        if row is None:
            name = f"{_FIRST[(j - 1) % len(_FIRST)]} {_LAST[(7 * j) % len(_LAST)]}"
            user = add_user(session, who, email, name, "advisor")
            out.append((user.id, email))
            added += 1
        elif row.role not in ("advisor", "admin"):
            raise StoreError(f"{quote(email)} is a {row.role}; the synthetic book's advisors must be advisors")
        else:
            out.append((row.id, email))
    return out, added


def _plan(rng: np.random.Generator, n: int, px: pd.DataFrame, prefix: str, n_advisors: int,
          templates: dict) -> dict:
    """Every portfolio and ledger entry of the book, drawn from ``rng`` (nothing written)."""
    dates = px.index
    last = len(dates) - 1
    first_open = max(0, last - BOOK_OPEN_PERIODS)
    open_hi = min(last, first_open + OPEN_WINDOW)
    values = px.to_numpy(dtype=float)
    tickers = np.array([str(c) for c in px.columns], dtype=object)
    mix_names = list(STRATEGY_MIX)
    shares_mix = np.array([STRATEGY_MIX[k][0] for k in mix_names])
    shares_mix = shares_mix / shares_mix.sum()
    day_idx = rng.integers(first_open, open_hi + 1, size=n)
    strategy_idx = rng.choice(len(mix_names), size=n, p=shares_mix)
    notional = np.clip(np.round(np.exp(rng.normal(math.log(750_000), 0.9, size=n)), -3), 25_000, 50_000_000)
    cash_share = np.where(rng.random(n) < 0.1, rng.uniform(0.20, 0.50, n), rng.uniform(0.002, 0.15, n))
    advisor = rng.integers(0, n_advisors, size=n)
    concentration = rng.choice([0.4, 1.0, 3.0], size=n)
    top_up, withdraw, fee = rng.random(n) < 0.3, rng.random(n) < 0.1, rng.random(n) < 0.2
    portfolios: list[dict] = []
    cols: dict[str, list] = {c: [] for c in ("portfolio", "phase", "trade_date", "kind", "ticker", "quantity", "price",
                                             "fees", "amount", "note")}

    def add(i, phase, day, kind, ticker=None, quantity=None, price=None, fees=0.0, amount=None, note=None):
        cols["portfolio"].append(i)
        cols["phase"].append(phase)
        cols["trade_date"].append(day)
        cols["kind"].append(kind)
        cols["ticker"].append(ticker)
        cols["quantity"].append(quantity)
        cols["price"].append(price)
        cols["fees"].append(fees)
        cols["amount"].append(amount)
        cols["note"].append(note)

    for i in range(n):
        d = int(day_idx[i])
        day = dates[d].date()
        priced = np.flatnonzero(np.isfinite(values[d]) & (values[d] > 0))
        if len(priced) < MIN_NAMES:
            raise DataError(f"only {len(priced)} tickers have a price on {day}; a synthetic portfolio holds at least "
                            f"{MIN_NAMES}")
        k = int(rng.integers(MIN_NAMES, min(MAX_NAMES, len(priced)) + 1))
        chosen = np.sort(rng.choice(priced, size=k, replace=False))
        w = rng.dirichlet(np.full(k, concentration[i]))
        invest = notional[i] * (1.0 - cash_share[i])
        prices = values[d, chosen]
        budget = invest * w / (1 + SPREAD_BPS / 1e4) - COMMISSION
        qty = np.maximum(1.0, np.floor(budget / prices))
        fees = np.round(COMMISSION + qty * prices * SPREAD_BPS / 1e4, 2)
        spent = float(np.sum(qty * prices + fees))
        cash_left = round(notional[i] * cash_share[i], 2)
        deposit = math.ceil((spent + cash_left) * 100 + 1) / 100  # a cent over: sums of floats are not exact
        strategy_name = mix_names[strategy_idx[i]]
        name = f"{prefix}{i + 1:06d} {_LAST[int(rng.integers(len(_LAST)))]} {strategy_name.split(',')[0].title()}"
        client = f"{_FIRST[int(rng.integers(len(_FIRST)))]} {_LAST[int(rng.integers(len(_LAST)))]} " \
                 f"{_KINDS[int(rng.integers(len(_KINDS)))]}"
        portfolios.append({"name": name[:200], "client": client, "advisor": int(advisor[i]),
                           "strategy_name": strategy_name, "account": f"SB{i + 1:06d}", "opened": day,
                           "tickers": tickers[chosen].tolist()})
        add(i, 0, day, "deposit", amount=deposit, note="opening deposit")
        for t, q, p, f in zip(tickers[chosen], qty, prices, fees, strict=True):
            add(i, 1, day, "buy", ticker=str(t), quantity=float(q), price=float(p), fees=float(f), note="opening buy")
        # later cash movements: never more out than the cash kept at opening (the ledger stays >= 0)
        later = max(0.0, deposit - spent)
        if d < last:
            if top_up[i]:
                when = dates[int(rng.integers(d + 1, last + 1))].date()
                add(i, 2, when, "deposit", amount=float(np.round(notional[i] * rng.uniform(0.02, 0.2), 2)),
                    note="top-up")
            if withdraw[i] and later * 0.5 >= 1.0:
                when = dates[int(rng.integers(d + 1, last + 1))].date()
                add(i, 2, when, "withdrawal", amount=float(np.floor(later * rng.uniform(0.1, 0.5) * 100) / 100),
                    note="client withdrawal")
            if fee[i] and later * 0.25 >= 1.0:
                when = dates[int(rng.integers(d + 1, last + 1))].date()
                add(i, 2, when, "fee", amount=float(np.floor(min(notional[i] * 0.001, later * 0.25) * 100) / 100),
                    note="advisory fee")
    return {"portfolios": portfolios, "entries": pd.DataFrame(cols), "columns": cols}


def _check_ledgers(rows: pd.DataFrame) -> None:
    """Every synthetic ledger replayed at once: the cash of no portfolio goes below zero on any day."""
    q, p = rows["quantity"].fillna(0.0), rows["price"].fillna(0.0)
    a, f = rows["amount"].fillna(0.0), rows["fees"]
    effect = np.select([rows["kind"] == "buy", rows["kind"].isin(_ledger.CASH_IN), rows["kind"].isin(_ledger.CASH_OUT)],
                       [-(q * p + f), a - f, -(a + f)], default=-f)
    order = rows.assign(effect=effect).sort_values(["portfolio_id", "trade_date", "phase"], kind="stable")
    low = order.groupby("portfolio_id")["effect"].cumsum().min()
    if low < -_ledger.CASH_TOLERANCE:  # a bug of this module, never the user's input
        raise StoreError(f"the synthetic book would overdraw a ledger (cash {low:,.2f}); nothing written")


__all__ = ["MAX_BOOK", "STRATEGY_MIX", "SeedSummary", "seed_book", "strategy_templates"]
