"""The synthetic book (issue 19, ``qpo db seed --book N``) on SQLite and the real PostgreSQL:
seeded (the same seed, the same book), 5-60 names each from the real universe (index tickers left
out), every ledger valid (replayed: never a negative balance), a mix of valid stored strategies,
several advisors, one audit row per seeding; bad input refused before anything is written."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import func, select

from qpo.book import Strategy
from qpo.book.synthetic import MAX_BOOK, STRATEGY_MIX, seed_book, strategy_templates
from qpo.errors import AccessDenied, DataError, InvalidValueError, StoreError
from qpo.store import Actor, AuditEntry, ClientPortfolio, Transaction, User, add_user, session_scope
from qpo.store import ledger as ledger_mod
from tests.test_store import book_stores

store_url, engine = book_stores.store_url, book_stores.engine


def book_dump(engine, prefix: str) -> tuple[list, list]:
    """The book's portfolios and ledgers, without ids or timestamps (comparable across stores)."""
    with session_scope(engine) as s:
        ports = s.execute(select(ClientPortfolio.id, ClientPortfolio.name, ClientPortfolio.client_name,
                                 User.email, ClientPortfolio.strategy, ClientPortfolio.account)
                          .join(User, User.id == ClientPortfolio.advisor_id)
                          .where(ClientPortfolio.name.like(f"{prefix}%")).order_by(ClientPortfolio.name)).all()
        names = {p.id: p.name for p in ports}
        txs = s.execute(select(Transaction.portfolio_id, Transaction.trade_date, Transaction.kind, Transaction.ticker,
                               Transaction.quantity, Transaction.price, Transaction.fees, Transaction.amount)
                        .where(Transaction.portfolio_id.in_(list(names)))
                        .order_by(Transaction.portfolio_id, Transaction.trade_date, Transaction.id)).all()
    return ([(p.name, p.client_name, p.email, p.strategy, p.account) for p in ports],
            [(names[t[0]],) + tuple(t[1:]) for t in txs])


def test_book_is_valid_and_seeded(engine, sp500):
    summary = seed_book(engine, 120, seed=7, prices=sp500)
    assert summary.portfolios == 120 and summary.prefix == "SB7-" and summary.universe == 20
    ports, txs = book_dump(engine, "SB7-")
    assert len(ports) == 120 and len(txs) == summary.transactions
    ledgers: dict[str, list] = {}
    for name, *t in txs:
        ledgers.setdefault(name, []).append(ledger_mod.Entry(t[1], t[0], t[2], t[3], t[4], t[5], t[6]))
    counts = []
    for entries in ledgers.values():
        # replayed entry by entry in trade-date then id order: raises on any negative cash or shares
        for k in range(1, len(entries) + 1):
            ledger_mod.replay(entries[:k])
        pos = ledger_mod.replay(entries)
        assert pos.cash >= 0
        counts.append(len(pos.shares))
        assert entries[0].kind == "deposit"  # the opening deposit comes before the buys of its day
        assert not set(pos.shares.index) & {"^GSPC", "SPY"}
        opened = entries[0].trade_date
        for e in entries:
            if e.kind == "buy":  # bought at the real close of the opening day
                assert e.trade_date == opened and e.price == sp500.loc[pd.Timestamp(opened), e.ticker]
    assert len(ledgers) == 120
    assert min(counts) >= 5 and max(counts) <= 20  # 5-60, at most the bundled universe's 20
    assert len(set(counts)) > 5  # not all the same size
    # a mix of strategies (each valid), advisors and cash
    strategies = [p[3] for p in ports]
    assert sum(s is None for s in strategies) > 5
    stored = {str(s) for s in strategies}
    assert len(stored) == len(STRATEGY_MIX)
    for s in strategies:
        if s is not None:
            Strategy.from_json(s)
    assert len({p[2] for p in ports}) == 3 and set(summary.advisors) == {p[2] for p in ports}
    with session_scope(engine) as s:
        roles = s.scalars(select(User.role).where(User.email.in_(summary.advisors))).all()
        assert set(roles) == {"advisor"}
        seeds = s.scalars(select(AuditEntry).where(AuditEntry.action == "seed")).all()
        assert len(seeds) == 1 and seeds[0].actor == "system:seed" and seeds[0].after["portfolios"] == 120
    assert summary.opened_from < summary.opened_to


def test_same_seed_same_book(store_url, tmp_path, sp500):
    from qpo.store import connect

    prices = sp500.iloc[-600:]
    first = connect(store_url)
    seed_book(first, 60, seed=11, prices=prices)
    with pytest.raises(StoreError, match="seed 11 already"):
        seed_book(first, 5, seed=11, prices=prices)
    seed_book(first, 60, seed=12, prices=prices)
    # the same seed in a second, fresh SQLite store: the same book
    other = connect(f"sqlite:///{tmp_path / 'other.db'}")
    seed_book(other, 60, seed=11, prices=prices)
    assert book_dump(first, "SB11-") == book_dump(other, "SB11-")
    assert book_dump(first, "SB12-")[0] != [(n.replace("SB11-", "SB12-"), *rest)
                                             for n, *rest in book_dump(first, "SB11-")[0]]
    other.dispose()


def test_a_wider_universe_gives_up_to_60_names(engine, sp500):
    # 120 real-looking series (the bundled 20, each in six scaled copies) and the index: 5-60 names, no index
    rng = np.random.default_rng(0)
    series = {f"{t}{k}": sp500[t] * rng.uniform(0.5, 2) for t in sp500.columns for k in range(6)}
    series |= {"^GSPC": sp500["AAPL"] * 0 + 4000.0, "SPY": sp500["AAPL"] * 0 + 400.0}
    panel = pd.concat(series, axis=1).iloc[-300:]
    summary = seed_book(engine, 80, seed=2, prices=panel)
    assert summary.universe == 120
    with session_scope(engine) as s:
        held = s.execute(select(Transaction.portfolio_id, func.count(func.distinct(Transaction.ticker)))
                         .where(Transaction.kind == "buy").group_by(Transaction.portfolio_id)).all()
        tickers = set(s.scalars(select(Transaction.ticker).where(Transaction.ticker.is_not(None))).all())
    counts = [c for _, c in held]
    assert len(counts) == 80 and min(counts) >= 5 and max(counts) <= 60 and max(counts) > 40
    assert not tickers & {"^GSPC", "SPY"}


def test_some_strategies_are_tight_enough_to_breach(engine, sp500):
    from qpo.book.valuation import book_weights

    seed_book(engine, 60, seed=4, prices=sp500)
    weights, info = book_weights(engine, sp500.index[-1], sp500, actor=Actor.system("test"))
    biggest = weights.max(axis=1)
    breach = [pid for pid in weights.index if info[pid]["limits"].max_weight is not None
              and biggest[pid] > info[pid]["limits"].max_weight]
    assert 0 < len(breach) < len(weights)


def test_bad_input_is_refused(engine, sp500):
    for bad in (0, -3, MAX_BOOK + 1, 2.5, True, "10"):
        with pytest.raises(InvalidValueError, match="number of portfolios"):
            seed_book(engine, bad, prices=sp500)
    with pytest.raises(InvalidValueError, match="seed"):
        seed_book(engine, 5, seed=-1, prices=sp500)
    with pytest.raises(DataError, match="at least 5"):
        seed_book(engine, 5, prices=sp500[["AAPL", "MSFT", "KO"]].assign(SPY=1.0))
    with session_scope(engine) as s:
        add_user(s, Actor.system("test"), "adv@synthetic.test", "Adv", "advisor")
    with pytest.raises(AccessDenied, match="only an admin"):
        seed_book(engine, 5, prices=sp500, actor="adv@synthetic.test")
    with session_scope(engine) as s:
        assert s.scalar(select(func.count(ClientPortfolio.id))) == 0


def test_strategy_templates_are_valid():
    templates = strategy_templates()
    assert set(templates) == set(STRATEGY_MIX)
    tight = Strategy.from_json(templates["income, tight mandate"])
    assert tight.limits.max_weight == 0.08 and tight.limits.min_names == 15


def test_cli_seeds_a_book(capsys, sp500):
    from qpo.cli import main

    assert main(["db", "seed", "--book", "25", "--seed", "3"]) == 0
    out = capsys.readouterr().out
    assert "seeded 25 synthetic portfolios (SB3-*" in out and "names each from 20 tickers" in out
    assert main(["db", "seed", "--book", "25", "--seed", "3"]) == 2
    assert "seed 3 already" in capsys.readouterr().err
    assert main(["db", "seed", "--book", "0"]) == 2
    assert "from 1 to 100,000" in capsys.readouterr().err
    assert main(["db", "upgrade", "--book", "5"]) == 2
    assert main(["db", "seed"]) == 0  # the demo seeding as before: a store with portfolios is left as it is
    assert "seeded 0 demo portfolios" in capsys.readouterr().out
