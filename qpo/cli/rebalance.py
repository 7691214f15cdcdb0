"""``qpo rebalance``: proposals as trade lists (propose, list, show, accept, reject, check, export).

``propose`` builds the target from the portfolio's strategy (with the options given here changing
it for this proposal only) and stores it as an open proposal; ``--dry-run`` computes it and stores
nothing (the one way a researcher may propose). ``accept`` writes its trades to the ledger, the
optimization run and the audit entry in one transaction; ``reject`` records the reason. Exit
statuses and the ``--json`` contract: :mod:`qpo.cli._common`."""
from __future__ import annotations

import argparse

from qpo.cli import _common as c

OBJECTIVES_HELP = ("min_variance, max_sharpe, efficient_return, efficient_risk, max_utility, min_cvar, risk_parity "
                   "or max_diversification")


def _proposal_id(text: str) -> int:
    from qpo._checks import quote
    from qpo.errors import InvalidValueError

    t = text.strip() if isinstance(text, str) else text
    if not isinstance(t, str) or not t.isascii() or not t.isdigit() or int(t) < 1 or len(t) > 18:
        raise InvalidValueError(f"a proposal id is a whole number >= 1 (`qpo rebalance list` shows them), got {quote(text)}")
    return int(t)


def _overrides(args) -> dict:
    """The strategy changes given on the command line (only those given)."""
    given = {key: getattr(args, key) for key in ("objective", "max_weight", "max_turnover", "spread_bps", "commission",
                                                 "fractional")}
    return {k: v for k, v in given.items() if v is not None}


# -- printing a proposal ----------------------------------------------------------------------------
def _weights_frame(proposal):
    frame = proposal.weights.copy()
    frame.index.name = "ticker"
    frame = frame.reset_index()
    return frame


def _why_no_trade(proposal) -> str:
    """Why a proposal has no trade: at its target, or as near as whole shares and the cash allow."""
    gap = float((proposal.distance_to_target or {}).get("max_abs", 0.0) or 0.0)
    if gap <= 1e-4:
        return "the portfolio is at its target"
    return (f"no trade brings it nearer its target: weights stay up to {gap:.1%} from it (whole shares, the cash "
            "and the constraints allow no closer)")


def _print_proposal(proposal, *, stored: bool) -> None:
    result = proposal.result
    pid = f"proposal {proposal.id}" if proposal.id is not None else "draft proposal (not stored)"
    c.say(f"{pid} for {proposal.portfolio!r}: {proposal.status}")
    if proposal.parameters.get("share_override"):
        c.say(f"shares: {proposal.parameters['share_override']}")
    c.say(f"as of {_day(proposal.as_of)}, prices of {_day(proposal.prices_as_of)}; target: {result.objective} "
          f"({result.method}, {result.solver}, {result.status})"
          + (f"; fallback: {result.fallback_reason}" if getattr(result, "fallback_reason", None) else ""))
    c.say("")
    c.say("trades:")
    c.say(c.table(proposal.trades, {"shares": c.shares, "price": c.money, "notional": c.money, "cost": c.money},
                  empty=f"  (none: {_why_no_trade(proposal)})"))
    c.say("")
    c.say("weights (of the total value, cash included):")
    c.say(c.table(_weights_frame(proposal), {k: c.pct for k in ("before", "target", "after")}))
    c.say("")
    c.say("before and after:")
    c.say(c.table(_rows_formatted(proposal.comparison, "metric", ("before", "after", "target"))))
    if proposal.compliance is not None and len(proposal.compliance):
        c.say("")
        c.say("compliance:")
        comp = proposal.compliance.set_index("check")
        shown = _rows_formatted(comp[["limit", "before", "after"]], "check", ("limit", "before", "after"))
        shown["ok_before"] = [_yes(b) for b in comp["passed_before"]]
        shown["ok_after"] = [_yes(b) for b in comp["passed_after"]]
        c.say(c.table(shown))
    if getattr(proposal, "violations", None):
        c.say("")
        c.say("constraints whole shares cannot meet: " + "; ".join(map(str, proposal.violations)))
    breached = proposal.breaches_after()
    if breached:
        c.say("")
        c.say(f"LIMITS BREACHED AFTER THE TRADES ({len(breached)}): " + "; ".join(breached))
    c.say("")
    dist = proposal.distance_to_target or {}
    rows = [("cash", f"{c.money(proposal.cash_before)} -> {c.money(proposal.cash_after)}"),
            ("value", f"{c.money(proposal.value_before)} -> {c.money(proposal.value_after)}"),
            ("turnover", c.pct(proposal.turnover)),
            ("total cost", c.money(proposal.total_cost)),
            ("after vs target", f"max |difference| {c.pct(dist.get('max_abs'))}, sum {c.pct(dist.get('l1'))}"),
            ("account", proposal.account)]
    for key, value in rows:
        c.say(f"{key:<16} {value}")
    if stored and proposal.id is not None and proposal.status == "open":
        c.say("")
        c.say(f"accept: qpo rebalance accept {proposal.id}    reject: qpo rebalance reject {proposal.id} --reason TEXT")


def _day(x) -> str:
    return str(x.date()) if hasattr(x, "date") and callable(x.date) else str(x)


def _counts(label: str) -> bool:
    """Whether a comparison metric or compliance check counts names (else it is a fraction)."""
    return "names" in str(label)


def _rows_formatted(frame, label: str, columns):
    """A table of ``frame``'s rows (metrics or checks) with each value as text: counts as whole
    numbers, fractions as percentages."""
    import pandas as pd

    out = pd.DataFrame({label: [str(i) for i in frame.index]})
    for col in columns:
        out[col] = [("" if v is None or pd.isna(v) else f"{float(v):,.0f}") if _counts(i) else c.pct(v)
                    for i, v in zip(frame.index, frame[col], strict=True)]
    return out


def _yes(b) -> str:
    return "not checked" if b is None else ("pass" if bool(b) else "FAIL")


# -- the commands -----------------------------------------------------------------------------------
def _cmd_propose(args) -> int:
    from qpo.book import propose_rebalance
    from qpo.errors import AccessDenied

    engine = c.reader() if args.dry_run else c.updater()
    try:  # prices None: the book's prices (the store's market data, else the bundled panel)
        proposal = propose_rebalance(args.name, as_of=args.as_of, actor=c.actor(args), prices=None,
                                          engine=engine, save=not args.dry_run, **_overrides(args))
    except AccessDenied as exc:
        if "researcher" in str(exc) and not args.dry_run:
            raise AccessDenied(f"{exc} (--dry-run computes a proposal without storing it)") from None
        raise
    override = proposal.parameters.get("share_override")
    if args.json:
        c.emit_json({"proposal": proposal.to_dict(), "stored": not args.dry_run, "share_override": override},
                    rounded_numbers=True)
    else:
        _print_proposal(proposal, stored=not args.dry_run)
        if args.dry_run:
            c.say("")
            c.say("dry run: nothing stored")
    return 0


def _stored(session, who, proposal_id: int):
    from qpo.book import RebalanceProposal
    from qpo.store import get_proposal

    return RebalanceProposal.from_record(get_proposal(session, who, proposal_id))


def _cmd_list(args) -> int:
    from qpo.store import list_proposals, session_scope

    with session_scope(c.reader(), write=False) as s:
        frame = list_proposals(s, c.actor(args), args.name, status=args.status)
    if args.json:
        c.emit_json({"proposals": frame}, rounded_numbers=True)
    else:
        shown = frame.assign(created_at=[t.strftime("%Y-%m-%d %H:%M") if t is not None else "" for t in frame["created_at"]])
        c.say(c.table(shown, {"turnover": c.pct, "total_cost": c.money}, empty="no proposals you may see"))
    return 0


def _cmd_show(args) -> int:
    from qpo.store import session_scope

    pid = _proposal_id(args.id)
    with session_scope(c.reader(), write=False) as s:
        proposal = _stored(s, c.actor(args), pid)
    if args.json:
        c.emit_json({"proposal": proposal.to_dict()}, rounded_numbers=True)
    else:
        _print_proposal(proposal, stored=True)
    return 0


def _cmd_accept(args) -> int:
    from qpo.book import accept_rebalance
    from qpo.store import get_proposal, position, session_scope

    pid = _proposal_id(args.id)
    engine = c.updater()
    accepted = accept_rebalance(pid, actor=c.actor(args), prices=None, engine=engine)  # the book's prices
    with session_scope(engine) as s:
        row = get_proposal(s, c.actor(args), pid)
        name, n_trades, run_id = row.portfolio.name, len(row.trades), row.optimization_run_id
        pos = position(s, c.actor(args), name)
    if args.json:
        c.emit_json({"accepted": pid, "portfolio": name, "n_trades": n_trades, "optimization_run_id": run_id,
                     "holdings": pos.shares, "cash": pos.cash, "breaches_after": accepted.breaches_after()}, rounded_numbers=True)
    else:
        c.say(f"accepted proposal {pid} for {name!r}: {n_trades} trade(s) written to its ledger "
              f"(optimization run {run_id}); cash now {c.money(pos.cash)}")
        if accepted.breaches_after():
            c.say("limits breached after these trades: " + "; ".join(accepted.breaches_after()))
    return 0


def _cmd_reject(args) -> int:
    from qpo.errors import InvalidValueError

    pid = _proposal_id(args.id)
    if args.reason is None or not args.reason.strip():
        raise InvalidValueError(f"a rejection needs a reason: qpo rebalance reject {pid} --reason TEXT")
    from qpo.book import reject_rebalance

    reject_rebalance(pid, args.reason, actor=c.actor(args), engine=c.updater())
    if args.json:
        c.emit_json({"rejected": pid, "reason": args.reason}, rounded_numbers=True)
    else:
        c.say(f"rejected proposal {pid}: {c.cell(args.reason, 100)}")
    return 0


def _cmd_check(args) -> int:
    import pandas as pd

    from qpo.book import check_rebalance

    frame = check_rebalance(actor=c.actor(args), prices=None, as_of=args.as_of, engine=c.reader())
    if args.json:
        c.emit_json({"check": frame}, rounded_numbers=True)
        return 0
    fmt = {col: c.pct for col in frame.columns if col in ("drift", "band", "max_drift", "rebalance_band", "cash_weight")}
    if "value" in frame.columns:
        fmt["value"] = c.money
    if "target_proposal" in frame.columns:
        fmt["target_proposal"] = lambda x: "" if x is None or x is pd.NA or x != x else str(int(x))
    c.say(c.table(frame, fmt, empty="no portfolios you may see"))
    return 0


def _cmd_export(args) -> int:
    from pathlib import Path

    from qpo.errors import InvalidValueError
    from qpo.store import session_scope

    pid = _proposal_id(args.id)
    if args.csv is None and args.html is None:
        raise InvalidValueError("say what to export: --csv FILE (the order ticket) and/or --html FILE (the proposal page)")
    if args.csv is not None and args.html is not None and \
            Path(args.csv).expanduser().resolve() == Path(args.html).expanduser().resolve():
        raise InvalidValueError(f"--csv and --html name the same file ({args.csv}): the page would overwrite the "
                                "order ticket; give each its own file")
    with session_scope(c.reader(), write=False) as s:
        proposal = _stored(s, c.actor(args), pid)
    from qpo.reporting.rebalance import order_ticket_csv, proposal_html
    written = {}
    if args.csv is not None:
        written["csv"] = str(order_ticket_csv(proposal, args.csv) or Path(args.csv))
    if args.html is not None:
        written["html"] = str(proposal_html(proposal, args.html) or args.html)
    if args.json:
        c.emit_json({"exported": pid, **written}, rounded_numbers=True)
    else:
        for kind, path in written.items():
            c.say(f"{'order ticket' if kind == 'csv' else 'proposal page'}: {path}")
    return 0


# -- the parser -------------------------------------------------------------------------------------
def _sub(subparsers, name: str, help: str, func) -> argparse.ArgumentParser:
    p = subparsers.add_parser(name, help=help, description=help, allow_abbrev=False)
    c.add_actor_option(p)
    c.add_json_option(p)
    p.set_defaults(func=func, book=True)
    return p


def register(sub) -> None:
    """Add ``rebalance`` to the top-level subparsers."""
    rb = sub.add_parser("rebalance", help="rebalance proposals: propose, list, show, accept, reject, check, export")
    rsub = rb.add_subparsers(dest="action", required=True)
    pr = _sub(rsub, "propose", "propose a rebalance of a portfolio: the trade list, before and after", _cmd_propose)
    pr.add_argument("name")
    pr.add_argument("--objective", help=f"the target's objective for this proposal ({OBJECTIVES_HELP})")
    pr.add_argument("--max-weight", type=float, help="largest weight of one name (0.2 for 20%%)")
    pr.add_argument("--max-turnover", type=float, help="largest turnover, sum |after - before| (0.3 for 30%%)")
    pr.add_argument("--spread-bps", type=float, help="estimated spread cost in basis points of the notional")
    pr.add_argument("--commission", type=float, help="commission per trade, in the portfolio's currency")
    pr.add_argument("--fractional", action=argparse.BooleanOptionalAction, default=None,
                    help="trade fractional shares, or with --no-fractional whole ones (default: the strategy's "
                         "setting, whole shares unless it says otherwise); an advisor's override of the strategy "
                         "for this proposal, which the proposal then says: \"fractional shares (overriding the "
                         "strategy's whole shares)\"")
    pr.add_argument("--as-of", metavar="YYYY-MM-DD", help="the date of the prices and holdings (default: the last)")
    pr.add_argument("--dry-run", action="store_true", help="compute the proposal and store nothing")
    ls = _sub(rsub, "list", "the proposals you may see", _cmd_list)
    ls.add_argument("name", nargs="?", help="only this portfolio's")
    ls.add_argument("--status", choices=["open", "accepted", "rejected"])
    sh = _sub(rsub, "show", "one proposal: its trades, before and after", _cmd_show)
    sh.add_argument("id")
    ac = _sub(rsub, "accept", "accept an open proposal: its trades become ledger entries", _cmd_accept)
    ac.add_argument("id")
    rj = _sub(rsub, "reject", "reject an open proposal, with the reason", _cmd_reject)
    rj.add_argument("id")
    rj.add_argument("--reason", metavar="TEXT", help="why (required)")
    ck = _sub(rsub, "check", "the portfolios whose weights drifted outside their rebalance band", _cmd_check)
    ck.add_argument("--as-of", metavar="YYYY-MM-DD", help="the date of the prices and holdings (default: the last)")
    ex = _sub(rsub, "export", "a proposal as an order ticket (CSV) or an offline HTML page", _cmd_export)
    ex.add_argument("id")
    ex.add_argument("--csv", metavar="FILE", help="the order ticket: side, ticker, shares, limit price, account")
    ex.add_argument("--html", metavar="FILE", help="the proposal with its before/after figures")
