"""``qpo data``: market data in the store.

- ``qpo data seed``: the bundled panel (20 S&P 500 stocks, 1990-2022) and the S&P 500 index into
  the store (idempotent);
- ``qpo data ingest FILE``: a CSV/Parquet price panel or OHLCV bars, validated first with qpo's
  Great Expectations suites: a failed error-severity check writes nothing and exits 2 with the
  report;
- ``qpo data fetch alphavantage --symbols A B [--full]``: Alpha Vantage's daily adjusted bars
  (key in ``ALPHAVANTAGE_API_KEY``), incremental; exits 2 when a symbol failed;
- ``qpo data show [--json]``: each ticker held, its first and last date and its number of bars.
- ``qpo data sectors FILE [--json]``: the sector map of the book's universe (a CSV of ticker,sector).

Exit statuses: 0 done, 2 refused input or a failed fetch (what was refused wrote nothing), 3 no
store to read (``show`` never creates one).
"""
from __future__ import annotations

import sys


def _say(text: str = "") -> None:
    print(text, flush=True)


def _log(args):
    return (lambda m: print(m, file=sys.stderr, flush=True)) if not args.json else (lambda m: None)


def _cmd_seed(args) -> int:
    from qpo.cli import _common
    from qpo.store.market_data import market_data_summary, seed_market_data

    engine = _common.writer()
    written = seed_market_data(engine, log=_log(args))
    summary = market_data_summary(engine)
    from qpo.store.db import safe_url

    url = safe_url(engine.url.render_as_string(hide_password=False))
    if args.json:
        _common.emit_json({"written": written, "tickers": len(summary), "rows": int(summary["rows"].sum()),
                           "store": url})
    else:
        _say(f"seeded the bundled market data into {url}: {written} bars inserted or changed; the store holds "
             f"{len(summary)} tickers, {int(summary['rows'].sum())} bars")
    return 0


def _hint_if_first(engine_had_data: bool) -> str | None:
    if engine_had_data:
        return None
    return ("the store held no market data before: pipelines now read only what it holds; "
            "`qpo data seed` adds the bundled panel (20 stocks and the S&P 500 index, 1990-2022)")


def _cmd_ingest(args) -> int:
    from qpo.cli import _common
    from qpo.store.market_data import has_market_data, ingest_file

    engine = _common.writer()
    had = has_market_data(engine)
    result = ingest_file(engine, args.file, kind=args.kind, source=args.source, ticker=args.ticker)
    report = result.report
    if not result.ok:
        if args.json:
            _common.emit_json({"file": result.path, "kind": result.kind, "status": "INVALID_DATA", "written": 0,
                               "validation": report.to_dict()})
        else:
            _say(str(report))
        print(f"qpo: error: {result.path}: {report.summary()}; nothing was written", file=sys.stderr, flush=True)
        return _common.EXIT_REFUSED
    hint = _hint_if_first(had)
    if args.json:
        _common.emit_json({"file": result.path, "kind": result.kind, "status": "INGESTED", "written": result.written,
                           "tickers": result.tickers, "first": result.first, "last": result.last,
                           "readjusted": result.readjusted, "warnings": [str(w) for w in report.warnings],
                           "hint": hint})
    else:
        _say(f"{result.path} ({result.kind}): {report.summary()}")
        for w in report.warnings:
            _say(f"warning    {w}")
        _say(f"{result.written} bars inserted or changed: {len(result.tickers)} ticker(s), {result.first} to "
             f"{result.last}")
        for ticker, factor in result.readjusted.items():
            _say(f"re-adjusted {ticker}: its stored adjusted closes before the file x {factor:.6g} (a split or "
                 "dividend where the file meets them)")
        if hint:
            _say(f"note       {hint}")
    return 0


def _cmd_fetch(args) -> int:
    from qpo.cli import _common
    from qpo.data.alphavantage import AlphaVantageClient
    from qpo.store.market_data import has_market_data
    from qpo.store.market_fetch import fetch_alphavantage

    symbols = list(dict.fromkeys(s.strip().upper() for group in args.symbols for s in group.split(",") if s.strip()))
    if not symbols:
        from qpo.errors import InvalidValueError

        raise InvalidValueError("--symbols needs at least one ticker symbol, e.g. --symbols IBM MSFT")
    log = _log(args)
    client = AlphaVantageClient(calls_per_minute=args.calls_per_minute, log=log)
    engine = _common.writer()
    had = has_market_data(engine)
    results = fetch_alphavantage(engine, symbols, client=client, full=args.full, log=log)
    failed = [r for r in results if r.error]
    if args.json:
        _common.emit_json({"source": "alphavantage", "results": [vars(r) for r in results],
                           "failed": len(failed), "hint": _hint_if_first(had) if len(failed) < len(results) else None})
    else:
        for r in results:
            if r.error:
                _say(f"{r.symbol:8s} FAILED   {r.error}")
            else:
                _say(f"{r.symbol:8s} {r.outputsize:8s} {r.received} bars {r.first} to {r.last}, {r.written} inserted "
                     f"or changed ({r.note})")
        hint = _hint_if_first(had) if len(failed) < len(results) else None
        if hint:
            _say(f"note     {hint}")
    if failed:
        print(f"qpo: error: {len(failed)} of {len(results)} symbol(s) failed: {failed[0].error}", file=sys.stderr,
              flush=True)
        return _common.EXIT_REFUSED
    return 0


def _cmd_show(args) -> int:
    from qpo.cli import _common
    from qpo.errors import MissingStoreError
    from qpo.store.market_data import INDEX_TICKERS, market_data_summary

    try:
        engine = _common.reader()
    except MissingStoreError as exc:
        return _common.fail_output(args, exc, _common.EXIT_NO_STORE)
    summary = market_data_summary(engine)
    if args.json:
        _common.emit_json({"tickers": summary, "count": len(summary), "rows": int(summary["rows"].sum()),
                           "indexes": [t for t in summary["ticker"] if t in INDEX_TICKERS]})
        return 0
    if summary.empty:
        _say("the store holds no market data: pipelines read the bundled panel (20 S&P 500 stocks, 1990-2022); "
             "`qpo data seed`, `qpo data ingest FILE` or `qpo data fetch alphavantage --symbols ...` load some")
        return 0
    _say(_common.table(summary, {"rows": lambda n: f"{int(n):,}"}))
    _say(f"{len(summary)} ticker(s), {int(summary['rows'].sum()):,} bars, {summary['first'].min()} to "
         f"{summary['last'].max()}")
    return 0


def _cmd_remove(args) -> int:
    from qpo.cli import _common
    from qpo.store.market_data import remove_bars

    removed = remove_bars(_common.writer(), args.tickers, args.start, args.end)
    span = f"from {args.start}" + (f" to {args.end}" if args.end else " on")
    if args.json:
        _common.emit_json({"tickers": args.tickers, "from": args.start, "to": args.end, "removed": removed})
    else:
        _say(f"{removed:,} bar(s) of {', '.join(args.tickers)} removed, {span}")
    return 0


def _cmd_sectors(args) -> int:
    from qpo.cli import _common
    from qpo.data import load_sectors
    from qpo.store.market_data import INDEX_TICKERS, market_data_summary
    from qpo.store.sectors import book_sectors, upsert_sectors

    mapping = load_sectors(args.file)
    engine = _common.writer()
    written = upsert_sectors(engine, mapping, source=args.source)
    sectors = book_sectors(engine)
    held = market_data_summary(engine)["ticker"].astype(str).tolist()
    without = [t for t in held if t not in sectors and t not in INDEX_TICKERS]
    if args.json:
        _common.emit_json({"file": str(args.file), "tickers": len(mapping), "written": written,
                           "sectors": sorted(set(mapping.values())), "market_data_without_sector": without})
        return 0
    _say(f"{args.file}: {len(mapping):,} ticker(s) in {len(set(mapping.values()))} sector(s); {written:,} inserted or "
         "changed")
    if without:
        _say(f"note       {len(without):,} ticker(s) of the store's market data have no sector: "
             f"{', '.join(without[:10])}{' ...' if len(without) > 10 else ''} (a cap on every sector does not check "
             "them)")
    return 0


def register(sub) -> None:
    """Add ``qpo data ...`` to the top-level subparsers ``sub``."""
    from qpo.cli import _common

    d = sub.add_parser("data", help="market data in the store: seed, ingest a file, fetch from Alpha Vantage, show")
    dsub = d.add_subparsers(dest="action", required=True)

    seed = dsub.add_parser("seed", help="the bundled panel (20 S&P 500 stocks and the index, 1990-2022) into the store")
    _common.add_json_option(seed)
    seed.set_defaults(func=_cmd_seed)

    ing = dsub.add_parser("ingest", help="validate a CSV/Parquet price panel or OHLCV bars, then load it (a failed "
                                         "check writes nothing)")
    ing.add_argument("file", help="CSV or Parquet file: a wide price panel (dates x tickers) or long OHLCV bars")
    ing.add_argument("--kind", choices=["auto", "prices", "ohlcv"], default="auto")
    ing.add_argument("--source", default="file", help="the source name stored with the bars (default: file)")
    ing.add_argument("--ticker", metavar="SYMBOL", help="whose bars a one-ticker OHLCV file without a 'ticker' column "
                                                        "holds (an Alpha Vantage CSV download)")
    _common.add_json_option(ing)
    ing.set_defaults(func=_cmd_ingest)

    fetch = dsub.add_parser("fetch", help="fetch daily bars from a market data vendor")
    fsub = fetch.add_subparsers(dest="vendor", required=True)
    av = fsub.add_parser("alphavantage", help="Alpha Vantage TIME_SERIES_DAILY_ADJUSTED (key in $ALPHAVANTAGE_API_KEY)")
    av.add_argument("--symbols", nargs="+", required=True, metavar="SYMBOL", help="ticker symbols (spaces or commas)")
    av.add_argument("--full", action="store_true",
                    help="the full history for every symbol (default: compact when fewer than 100 trading days "
                         "are missing)")
    av.add_argument("--calls-per-minute", type=float, default=None,
                    help="rate limit (default $QPO_ALPHAVANTAGE_CALLS_PER_MINUTE or 5, the free tier's)")
    _common.add_json_option(av)
    av.set_defaults(func=_cmd_fetch)

    sec = dsub.add_parser("sectors", help="load the sector map of the book's universe (a CSV of ticker,sector): "
                                          "sector caps, risk by sector and attribution group names by it")
    sec.add_argument("file", help="CSV with ticker and sector columns (others, e.g. name, are ignored)")
    sec.add_argument("--source", default="file", help="the source name stored with the map (default: file)")
    _common.add_json_option(sec)
    sec.set_defaults(func=_cmd_sectors)

    rm = dsub.add_parser("remove", help="delete the bars of tickers from a date (a bar stored with a wrong date or "
                                        "price, which a new file cannot replace)")
    rm.add_argument("tickers", nargs="+", metavar="TICKER")
    rm.add_argument("--from", dest="start", required=True, metavar="DATE", help="the first date removed")
    rm.add_argument("--to", dest="end", metavar="DATE", help="the last date removed (default: every later bar)")
    _common.add_json_option(rm)
    rm.set_defaults(func=_cmd_remove)

    show = dsub.add_parser("show", help="the tickers held: first and last date, number of bars")
    _common.add_json_option(show)
    show.set_defaults(func=_cmd_show)
