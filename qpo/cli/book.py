"""``qpo user``, ``qpo portfolio`` and ``qpo audit``: the client book's people, portfolios, ledgers
and trail. Each command is one transaction on the store, made for its actor (``--as EMAIL``, default
``QPO_USER``); commands that only read refuse a missing store instead of creating one. Exit
statuses and the ``--json`` contract: :mod:`qpo.cli._common`."""
from __future__ import annotations

import argparse
import sys

from qpo.cli import _common as c
from qpo.cli import _files as files


# -- people ---------------------------------------------------------------------------------------
def _read_password(args) -> str | None:
    """One line of stdin (without echo on a terminal), or None without ``--password-stdin``."""
    from qpo.errors import InvalidValueError

    if not args.password_stdin:
        return None
    if sys.stdin is None:
        raise InvalidValueError("--password-stdin: there is no standard input to read the password from")
    if sys.stdin.isatty():
        import getpass

        password = getpass.getpass("password: ")
    else:
        password = sys.stdin.readline()
        password = password[:-1] if password.endswith("\n") else password
        password = password[:-1] if password.endswith("\r") else password
    if not password:
        raise InvalidValueError("--password-stdin: no password on standard input (give it as one line, e.g. "
                                "from a password manager: `pass show qpo | qpo user passwd EMAIL --password-stdin`)")
    return password


def _refuse_password_argument(args) -> None:
    from qpo.errors import InvalidValueError

    if getattr(args, "password_argv", None) is not None:
        raise InvalidValueError("a password is never taken on the command line (it would stay in the shell's "
                                "history and the process list): give it on standard input with --password-stdin")


def _cmd_user_add(args) -> int:
    from qpo.store import add_user, session_scope

    _refuse_password_argument(args)
    password = _read_password(args)
    with session_scope(c.writer()) as s:
        user = add_user(s, _people_actor(args), args.email, args.name, args.role, password=password)
        row = {"email": user.email, "name": user.name, "role": user.role, "has_password": user.password_hash is not None}
    if args.json:
        c.emit_json({"user": row}, rounded_numbers=True)
    else:
        c.say(f"added {row['role']} {row['name']} <{row['email']}>" + (" with a password" if row["has_password"] else ""))
    return 0


#: ``--as system`` on ``qpo user add``/``update``: the local operator, who holds the store itself
OPERATOR = "system"


def _people_actor(args):
    """The actor of a change to the people: ``--as system`` is the store's local operator
    (``Actor.system("operator")``, e.g. to add the first admin of an upgraded store that has
    advisors and no admin); otherwise the e-mail of :func:`qpo.cli._common.actor`."""
    if getattr(args, "actor", None) == OPERATOR:
        from qpo.store import Actor

        return Actor.system("operator")
    return c.actor(args)


def _cmd_user_update(args) -> int:
    from qpo.store import session_scope
    from qpo.store.people import update_user

    with session_scope(c.updater()) as s:
        user = update_user(s, _people_actor(args), args.email, name=args.name, role=args.role)
        row = {"email": user.email, "name": user.name, "role": user.role, "has_password": user.password_hash is not None}
    if args.json:
        c.emit_json({"user": row}, rounded_numbers=True)
    else:
        c.say(f"updated {row['email']}: {row['name']}, {row['role']}")
    return 0


def _cmd_user_list(args) -> int:
    from qpo.store import list_users, session_scope

    with session_scope(c.reader(), write=False) as s:
        users = list_users(s, c.actor(args))
    if args.json:
        c.emit_json({"users": users}, rounded_numbers=True)
    else:
        c.say(c.table(users, {"has_password": lambda b: "yes" if b else "no"}, empty="no users"))
    return 0


def _cmd_user_passwd(args) -> int:
    from qpo.errors import InvalidValueError
    from qpo.store import session_scope, set_password

    _refuse_password_argument(args)
    if not args.password_stdin:
        raise InvalidValueError("qpo user passwd reads the new password from standard input: add --password-stdin")
    password = _read_password(args)
    assert password is not None  # --password-stdin was given
    with session_scope(c.updater()) as s:
        set_password(s, c.actor(args), args.email, password)
    if args.json:
        c.emit_json({"user": args.email.strip(), "password": "set"}, rounded_numbers=True)
    else:
        c.say(f"password set for {args.email.strip()}")
    return 0


# -- portfolios -----------------------------------------------------------------------------------
def _cmd_portfolio_create(args) -> int:
    from qpo.store import create_portfolio, session_scope, store_tickers

    strategy = files.load_strategy(args.strategy) if args.strategy is not None else None  # checked before any write
    engine = c.writer()
    book_panel, origin = c.book_prices(engine)
    if strategy is not None:
        files.strategy_tickers_priced(strategy, args.strategy, book_panel.columns, _prices_named(origin))
    dated = args.date or book_panel.index[-1].date()
    with session_scope(engine) as s:
        holdings = None
        if args.holdings is not None:
            from qpo.book.holdings_file import read_holdings_file

            # the book's prices' tickers and the ledgers' (what the store checks with known_tickers None)
            holdings = read_holdings_file(args.holdings, store_tickers(s), source=_prices_named(origin))
            if strategy is not None:
                files.strategy_tickers_priced(strategy, args.strategy, book_panel.columns, _prices_named(origin),
                                              held=holdings["ticker"].tolist())
        p = create_portfolio(s, c.actor(args), args.name, args.client, args.advisor, holdings=holdings,
                             cash=args.cash, strategy=None if strategy is None else strategy.to_json(),
                             benchmark=args.benchmark, description=args.description, account=args.account,
                             trade_date=dated)
        name = p.name
    with session_scope(engine, write=False) as s:  # after the commit: what the store now holds (its splits too)
        summary = _summary(s, c.actor(args), name, (book_panel, origin))
    note = (f"dated {dated} (the last date of {c.price_origin(origin)}; --date to change)"
            if args.date is None else f"dated {args.date}")
    if args.json:
        c.emit_json({"created": name, "trade_date": str(dated), "trade_date_default": args.date is None,
                     "portfolio": summary}, rounded_numbers=True)
    else:
        c.say(f"created portfolio {name!r}: opening ledger {note}")
        _print_summary(summary)
    return 0


def _prices_named(origin: str) -> str:
    """The book's prices in a message that refuses a ticker they lack."""
    if origin == "store":
        return "the book's price data (the store's market data: `qpo data ingest`)"
    return f"the book's price data (the bundled {c.PRICE_SOURCE} panel; `qpo data ingest` adds others)"


def _cmd_portfolio_list(args) -> int:
    from qpo.store import list_portfolios, session_scope

    with session_scope(c.reader(), write=False) as s:
        frame = list_portfolios(s, c.actor(args))
    if args.json:
        c.emit_json({"portfolios": frame}, rounded_numbers=True)
    else:
        c.say(c.table(frame.drop(columns=["advisor"]), {"cash": c.money}, empty="no portfolios you may see"))
    return 0


def _holdings_table(pos, panel):
    """Holdings valued at the panel's last prices: shares, last price, value, weight (of the total
    value, cash included)."""
    import pandas as pd

    last = panel.ffill().iloc[-1]
    frame = pd.DataFrame({"ticker": pos.shares.index, "shares": pos.shares.to_numpy(dtype=float)})
    frame["last_price"] = [float(last[t]) if t in last.index and pd.notna(last[t]) else None for t in frame["ticker"]]
    frame["value"] = [q * p if p is not None else None for q, p in zip(frame["shares"], frame["last_price"], strict=True)]
    invested = float(pd.Series(frame["value"], dtype=float).sum(skipna=True))
    total = invested + pos.cash
    frame["weight"] = [v / total if v is not None and total > 0 else None for v in frame["value"]]
    dated = panel.apply(pd.Series.last_valid_index)  # the date of each name's last price (carried since)
    frame["price_date"] = [dated[t].date() if t in dated.index and pd.notna(dated[t]) else None
                           for t in frame["ticker"]]
    return frame, invested, total


def _summary(session, who, name: str, book_prices) -> dict:
    """What ``portfolio show`` shows, as plain data, valued at ``book_prices`` ((panel, origin) of
    :func:`qpo.cli._common.book_prices`)."""
    from qpo.book.corporate_actions import describe_pending, pending_splits
    from qpo.book.strategy import Strategy
    from qpo.store import get_portfolio, list_proposals, position
    from qpo.store.portfolios import portfolio_benchmark

    p = get_portfolio(session, who, name)
    pos = position(session, who, name)
    panel, origin = book_prices
    holdings, invested, total = _holdings_table(pos, panel)
    strategy = Strategy.from_json(p.strategy, check_builds=False) if p.strategy is not None else Strategy.default()
    proposals = list_proposals(session, who, name, status="open")
    unpriced = [t for t, px in zip(holdings["ticker"], holdings["last_price"], strict=True) if px is None]
    pending = pending_splits(session.get_bind(), panel.index[-1], actor=who, portfolio_ids=[p.id])
    return {"name": p.name, "client": p.client_name, "advisor": p.advisor.name, "advisor_email": p.advisor.email,
            "benchmark": portfolio_benchmark(p), "account": p.account, "description": p.description,
            "base_currency": p.base_currency, "created_at": p.created_at,
            "strategy": strategy.to_json(), "strategy_is_default": p.strategy is None,
            "prices_as_of": panel.index[-1], "price_source": origin,
            "holdings": holdings, "invested_value": invested, "cash": pos.cash, "total_value": total,
            "cash_weight": pos.cash / total if total > 0 else None, "unpriced": unpriced,
            "pending_splits": [{"ticker": r.ticker, "date": r.trade_date.date(), "ratio": r.ratio,
                                "shares": r.quantity} for r in pending.itertuples(index=False)],
            "pending_splits_text": describe_pending(pending),
            "ledger": {"n_transactions": pos.n_transactions, "first_date": pos.first_date, "last_date": pos.as_of,
                       "version": pos.last_transaction_id},
            "open_proposals": proposals[["id", "as_of", "prices_as_of", "n_trades", "turnover", "total_cost",
                                         "created_by", "created_at"]]}


def _print_summary(d: dict) -> None:
    fields = [("name", d["name"]), ("client", d["client"]), ("advisor", f"{d['advisor']} <{d['advisor_email']}>"),
              ("benchmark", d["benchmark"] or "-"), ("account", d["account"] or f"- (order tickets use {d['name']!r})"),
              ("description", c.cell(d["description"], 100) if d["description"] else "-")]
    width = max(len(k) for k, _ in fields)
    for key, value in fields:
        c.say(f"{key:<{width}}  {value}")
    st = d["strategy"]
    c.say(f"{'strategy':<{width}}  {'(the default strategy) ' if d['strategy_is_default'] else ''}"
          f"objective {st.get('objective')}, covariance {st.get('covariance')}, mean {st.get('mean')}, "
          f"lookback {st.get('lookback')}, band {st.get('rebalance_band')}, "
          f"{'fractional' if st.get('fractional') else 'whole'} shares, commission {c.money(st.get('commission'))}, "
          f"spread {st.get('spread_bps')} bps")
    constraints = {k: v for k, v in (st.get("constraints") or {}).items() if v not in (None, [], {})}
    if constraints or st.get("sector_max") is not None:
        extra = {**constraints, **({"sector_max": st["sector_max"]} if st.get("sector_max") is not None else {})}
        c.say(f"{'':<{width}}  constraints {c.cell(extra, 200)}")
    limits = {k: v for k, v in (st.get("limits") or {}).items() if v is not None}
    if limits:
        c.say(f"{'':<{width}}  limits {', '.join(f'{k} {v}' for k, v in limits.items())}")
    c.say("")
    when = d["prices_as_of"]
    c.say(f"holdings at the closes of {when.date() if hasattr(when, 'date') else when} "
          f"({c.price_origin(d['price_source'])}):")
    table = d["holdings"].drop(columns=["price_date"])
    c.say(c.table(table, {"shares": c.shares, "last_price": c.money, "value": c.money, "weight": c.pct},
                  empty="(no shares held)"))
    day = when.date() if hasattr(when, "date") else when
    older = [f"{t} {p}" for t, p in zip(d["holdings"]["ticker"], d["holdings"]["price_date"], strict=True)
             if p is not None and p < day]
    if older:
        c.say(f"stale: no close on {day} for {', '.join(older[:10])}{' ...' if len(older) > 10 else ''} (the last "
              "close carried forward; ingest the bars, or `qpo data fetch`)")
    if d["unpriced"]:
        c.say(f"no price in {c.price_origin(d['price_source'])} for {', '.join(d['unpriced'])}: left out of the value")
    c.say(f"cash         {c.money(d['cash'])}" + (f" ({c.pct(d['cash_weight'])})" if d["cash_weight"] is not None else ""))
    c.say(f"total value  {c.money(d['total_value'])}")
    if d["pending_splits"]:
        c.say(f"warning: the ledger lacks {d['pending_splits_text']} that the market data records: the values "
              "above count pre-split shares at post-split closes; `qpo nightly value` books it")
    led = d["ledger"]
    c.say(f"ledger       {led['n_transactions']} transaction(s)"
          + (f", {led['first_date']} to {led['last_date']}" if led["n_transactions"] else ""))
    props = d["open_proposals"]
    if len(props):
        c.say("open proposals:")
        c.say(c.table(props, {"turnover": c.pct, "total_cost": c.money}))
    else:
        c.say("open proposals: none")


def _cmd_portfolio_show(args) -> int:
    from qpo.store import session_scope

    engine = c.reader()
    book_prices = c.book_prices(engine)
    with session_scope(engine, write=False) as s:
        summary = _summary(s, c.actor(args), args.name, book_prices)
    if args.json:
        c.emit_json({"portfolio": summary}, rounded_numbers=True)
    else:
        _print_summary(summary)
    return 0


def _cmd_portfolio_update(args) -> int:
    from qpo.errors import InvalidValueError
    from qpo.store import session_scope, update_portfolio

    changes = {key: getattr(args, attr) for key, attr in (
        ("name", "new_name"), ("client_name", "client"), ("advisor_email", "advisor"), ("benchmark", "benchmark"),
        ("account", "account"), ("description", "description")) if getattr(args, attr) is not None}
    engine = c.updater() if changes or args.strategy is not None else None
    if args.strategy is not None:
        from qpo.store import position
        from qpo.store.portfolios import book_price_tickers

        loaded = files.load_strategy(args.strategy)
        with session_scope(engine, write=False) as s:
            priced, origin = book_price_tickers(s)
            held = position(s, c.actor(args), args.name).shares.index.tolist()
        files.strategy_tickers_priced(loaded, args.strategy, priced, _prices_named(origin), held=held)
        changes["strategy"] = loaded.to_json()
    if not changes:
        raise InvalidValueError("nothing to update: give --name, --client, --advisor, --benchmark, --account, "
                                "--description or --strategy FILE")
    with session_scope(engine) as s:
        from qpo.store import audit as trail

        p = update_portfolio(s, c.actor(args), args.name, **changes)
        after = trail.snapshot(p)
    if args.json:
        c.emit_json({"updated": args.name.strip(), "changed": sorted(changes), "portfolio": after},
                    rounded_numbers=True)
    else:
        c.say(f"updated portfolio {after['name']!r}: {', '.join(sorted(changes))}")
    return 0


def _cmd_portfolio_delete(args) -> int:
    from qpo.store import delete_portfolio, session_scope

    with session_scope(c.updater()) as s:
        before = delete_portfolio(s, c.actor(args), args.name, force=args.force)
    if args.json:
        c.emit_json({"deleted": before["name"], "portfolio": before}, rounded_numbers=True)
    else:
        held = ", ".join(f"{c.shares(q)} {t}" for t, q in before["holdings"].items()) or "no shares"
        extra = f"; open proposals {before['open_proposals']} went with it" if before["open_proposals"] else ""
        c.say(f"deleted portfolio {before['name']!r} ({before['n_transactions']} transaction(s); it held {held} and "
              f"{c.money(before['cash'])} cash{extra}); the audit trail keeps it")
    return 0


def _cmd_portfolio_transactions(args) -> int:
    from qpo.errors import StoreError
    from qpo.store import import_transactions, list_transactions, position, session_scope

    imported = None
    if args.import_file is not None:
        rows = files.read_ledger_file(args.import_file)
        lines = [r.pop("_line") for r in rows]  # each row's line in the file (blank lines are skipped)
        with session_scope(c.updater()) as s:
            # known_tickers None: the book's prices' tickers and the ledgers' (store_tickers)
            try:
                written = import_transactions(s, c.actor(args), args.name, rows)
            except StoreError as exc:
                raise files.with_lines(exc, lines) from None
            imported = [t.id for t in written]
            frame = list_transactions(s, c.actor(args), args.name)
            pos = position(s, c.actor(args), args.name)
    else:
        with session_scope(c.reader(), write=False) as s:
            frame = list_transactions(s, c.actor(args), args.name)
            pos = position(s, c.actor(args), args.name)
    if args.json:
        c.emit_json({"portfolio": args.name.strip(), "transactions": frame, "imported": imported,
                     "holdings": pos.shares, "cash": pos.cash}, rounded_numbers=True)
        return 0
    if imported is not None:
        c.say(f"imported {len(imported)} transaction(s) into {args.name.strip()!r}")
    shown = frame.drop(columns=["id"]) if imported is None else frame
    c.say(c.table(shown, {"quantity": c.shares, "price": c.money, "fees": c.money, "amount": c.money,
                          "cash_after": c.money, "proposal_id": lambda v: "" if v is None else str(int(v))},
                  empty="no transactions"))
    held = ", ".join(f"{c.shares(q)} {t}" for t, q in pos.shares.items()) or "no shares"
    c.say(f"holds {held}; cash {c.money(pos.cash)}")
    return 0


# -- the trail --------------------------------------------------------------------------------------
def _cmd_audit(args) -> int:
    from qpo.store import audit_trail, session_scope

    with session_scope(c.reader(), write=False) as s:
        frame = audit_trail(s, c.actor(args), portfolio=args.portfolio, since=args.since)
    if args.json:
        c.emit_json({"audit": frame}, rounded_numbers=True)
        return 0
    shown = frame.drop(columns=["id", "before", "after"]).assign(
        at=[t.strftime("%Y-%m-%d %H:%M:%S") if t is not None else "" for t in frame["at"]],
        change=[_change(b, a) for b, a in zip(frame["before"], frame["after"], strict=True)])
    c.say(c.table(shown, {"change": lambda v: c.cell(v, 90)}, empty="no audit entries you may see"))
    return 0


def _change(before, after) -> str:
    """What an audit row changed, on one line: the fields that differ (``key: old -> new``), else
    what was written or removed."""
    if isinstance(before, dict) and isinstance(after, dict):
        keys = [k for k in after if before.get(k) != after.get(k)] + [k for k in before if k not in after]
        return "; ".join(f"{k}: {c.cell(before.get(k), 24) or '-'} -> {c.cell(after.get(k), 24) or '-'}"
                         for k in keys) or "(no change)"
    if after:
        return c.cell(after, 200)
    if before:
        return "was " + c.cell(before, 200)
    return ""


# -- the parser -------------------------------------------------------------------------------------
def _sub(subparsers, name: str, help: str, func, *, reads: bool) -> argparse.ArgumentParser:
    p = subparsers.add_parser(name, help=help, description=help, allow_abbrev=False)
    c.add_actor_option(p)
    c.add_json_option(p)
    p.set_defaults(func=func, book=True, reads=reads)
    return p


def _password_options(p) -> None:
    p.add_argument("--password-stdin", action="store_true",
                   help="read the password as one line of standard input (never from the command line)")
    p.add_argument("--password", dest="password_argv", nargs="?", const="", default=None, help=argparse.SUPPRESS)


def register(sub) -> None:
    """Add ``user``, ``portfolio`` and ``audit`` to the top-level subparsers."""
    user = sub.add_parser("user", help="the people of the book: add, update, list, set a password")
    usub = user.add_subparsers(dest="action", required=True)
    ua = _sub(usub, "add", "add a person (an admin's job; the first admin of an empty store adds themself; "
                           "the store's operator adds an admin to a store without one with --as system)",
              _cmd_user_add, reads=False)
    ua.add_argument("email")
    ua.add_argument("--name", required=True, help="the person's name")
    ua.add_argument("--role", required=True, choices=["advisor", "researcher", "admin"])
    _password_options(ua)
    uu = _sub(usub, "update", "change a person's name or role (an admin's job; the last admin is never demoted)",
              _cmd_user_update, reads=False)
    uu.add_argument("email")
    uu.add_argument("--name", help="the person's new name")
    uu.add_argument("--role", choices=["advisor", "researcher", "admin"], help="the person's new role")
    _sub(usub, "list", "the people of the book (e-mail, name, role, whether a password is set)",
         _cmd_user_list, reads=True)
    up = _sub(usub, "passwd", "set a password (your own; an admin anyone's), read from standard input",
              _cmd_user_passwd, reads=False)
    up.add_argument("email")
    _password_options(up)

    pf = sub.add_parser("portfolio", help="client portfolios: create, list, show, update, delete, their ledgers")
    psub = pf.add_subparsers(dest="action", required=True)
    pc = _sub(psub, "create", "create a portfolio from a holdings file or an opening cash deposit",
              _cmd_portfolio_create, reads=False)
    pc.add_argument("name")
    pc.add_argument("--client", required=True, help="the client's name")
    pc.add_argument("--advisor", required=True, metavar="EMAIL", help="the advisor managing it")
    opening = pc.add_mutually_exclusive_group(required=True)
    opening.add_argument("--holdings", metavar="FILE",
                         help="CSV with ticker,shares[,price,date]: the opening holdings (each a transfer in)")
    opening.add_argument("--cash", type=float, metavar="N", help="an opening cash deposit")
    pc.add_argument("--strategy", metavar="FILE.json", help="the portfolio's strategy (default: the default strategy)")
    pc.add_argument("--benchmark", help="benchmark name, e.g. SP500")
    pc.add_argument("--account", help="the account order tickets name (default: the portfolio's name)")
    pc.add_argument("--date", metavar="YYYY-MM-DD",
                    help="date of the opening entries (default: the last date of the book's prices: the store's "
                         "market data, else the bundled panel)")
    pc.add_argument("--description")
    _sub(psub, "list", "the portfolios you may see, with their number of names and cash", _cmd_portfolio_list,
         reads=True)
    ps = _sub(psub, "show", "a portfolio: fields, strategy, holdings valued, cash, open proposals",
              _cmd_portfolio_show, reads=True)
    ps.add_argument("name")
    pu = _sub(psub, "update", "change a portfolio's own fields (holdings change through its ledger)",
              _cmd_portfolio_update, reads=False)
    pu.add_argument("name")
    pu.add_argument("--name", dest="new_name", metavar="NEW_NAME", help="rename it")
    pu.add_argument("--client")
    pu.add_argument("--advisor", metavar="EMAIL", help="move it to another advisor (an admin's job)")
    pu.add_argument("--benchmark")
    pu.add_argument("--account")
    pu.add_argument("--description")
    pu.add_argument("--strategy", metavar="FILE.json", help="replace its strategy")
    pd_ = _sub(psub, "delete", "delete a portfolio and its ledger (refused while it has open proposals)",
               _cmd_portfolio_delete, reads=False)
    pd_.add_argument("name")
    pd_.add_argument("--force", action="store_true", help="delete even with open proposals")
    pt = _sub(psub, "transactions", "a portfolio's ledger; --import FILE appends entries (all or nothing)",
              _cmd_portfolio_transactions, reads=True)
    pt.add_argument("name")
    pt.add_argument("--import", dest="import_file", metavar="FILE",
                    help=f"CSV with columns {','.join(files.LEDGER_COLUMNS)} (kind and trade_date required; row 1 is the "
                         "first line after the header)")

    au = _sub(sub, "audit", "the audit trail: who changed what, when, before and after", _cmd_audit, reads=True)
    au.add_argument("--portfolio", metavar="NAME", help="only this portfolio's entries (a deleted one's too)")
    au.add_argument("--since", metavar="YYYY-MM-DD", help="only entries from this date on (UTC)")
