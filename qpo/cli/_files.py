"""The files the book's commands read: a strategy (JSON) and a ledger (CSV). Each is checked
whole before the store is touched; a problem is a :class:`~qpo.errors.QpoError` that names the file
(its name only, when the path is long) and, for a ledger, the rows."""
from __future__ import annotations

import json
import numbers
from pathlib import Path

#: the columns of a ledger file for ``qpo portfolio transactions NAME --import FILE``
LEDGER_COLUMNS = ("kind", "trade_date", "ticker", "quantity", "price", "fees", "amount", "note")
_LEDGER_NUMBERS = ("quantity", "price", "fees", "amount")


def file_label(path) -> str:
    """A file's path for a message: quoted, or only its name when the path is long."""
    from qpo._checks import quote

    text = str(path)
    return quote(text, 60) if len(text) <= 60 else quote(Path(text).name, 60)


def read_text_file(path, what: str) -> str:
    """A small text file's content (UTF-8), or a DataError naming the file and what is wrong."""
    from qpo.errors import DataError

    p = Path(path)
    if not p.is_file():
        raise DataError(f"{what} {file_label(path)} is not a file")
    try:
        return p.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(f"{what} {file_label(path)} is not UTF-8 text (byte {exc.start}: {exc.reason})") from None
    except OSError as exc:
        raise DataError(f"{what} {file_label(path)} cannot be read: {exc.strerror}") from None


def load_strategy(path: str):
    """The :class:`qpo.book.Strategy` of a JSON file, checked whole before anything is written."""
    from qpo.book.strategy import Strategy
    from qpo.errors import InvalidValueError

    text = read_text_file(path, "strategy file")
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidValueError(f"strategy file {file_label(path)} is not JSON: {exc.msg} at line {exc.lineno}, column "
                                f"{exc.colno} (a strategy is a JSON object: see qpo.book.Strategy)") from None
    except RecursionError:
        raise InvalidValueError(f"strategy file {file_label(path)} nests too deeply to be a strategy (a strategy is a "
                                "JSON object of a few levels: see qpo.book.Strategy)") from None
    try:
        return Strategy.from_json(obj)
    except RecursionError:
        raise InvalidValueError(f"strategy file {file_label(path)} nests too deeply to be a strategy") from None
    except (TypeError, ValueError, KeyError) as exc:
        from qpo.errors import QpoError

        if isinstance(exc, QpoError):
            raise type(exc)(f"strategy file {file_label(path)}: {exc}") from None
        raise InvalidValueError(f"strategy file {file_label(path)}: {exc}") from None


def strategy_tickers_priced(strategy, path: str, priced, source: str = "the price data", held=None) -> None:
    """Refuse a strategy that names a ticker the price data (``priced``, described by ``source``)
    lacks, or whose weight cap cannot invest the budget over the names a proposal trades (``held``,
    the portfolio's names, when it holds any; else every priced ticker): every proposal of it
    would fail."""
    import pandas as pd

    from qpo.book.rebalance import universe_of
    from qpo.errors import InvalidValueError

    named = universe_of(pd.Series(dtype=float), strategy.constraints)
    missing = sorted(set(named) - set(priced))
    if missing:
        shown = ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else "")
        raise InvalidValueError(f"strategy file {file_label(path)} names {shown}, which {source} lacks: no "
                                "proposal could be built; name tickers it holds")
    cap, budget, n = strategy.constraints.max_weight, float(strategy.constraints.budget), len(set(priced))
    over = f"the {n} tickers of {source}"
    if held is not None and len(held):  # a proposal trades the names held (and those the strategy names)
        n = len(set(universe_of(pd.Series(1.0, index=[str(t) for t in held]), strategy.constraints)) & set(priced))
        over = f"the {n} names the portfolio holds (and its strategy names)"
    if n > 0 and isinstance(cap, numbers.Real) and float(cap) * n < budget - 1e-9:
        raise InvalidValueError(
            f"strategy file {file_label(path)}: max_weight {float(cap):.1%} over {over} holds at "
            f"most {float(cap) * n:.1%}, below the budget {budget:.1%}: no proposal could be fully invested (it "
            f"depends on the number of names: max_weight must be at least {budget / n:.2%} here)")


def read_ledger_file(path: str):
    """The rows of a ledger CSV (columns among kind, trade_date, ticker, quantity, price, fees,
    amount, note; kind and trade_date required) as records for ``import_transactions``: numbers
    parsed, blanks None, text kept verbatim (the store checks each row and names it)."""
    import csv
    import io

    from qpo._checks import quote
    from qpo.errors import DataError

    text = read_text_file(path, "ledger file")
    if "\x00" in text:
        raise DataError(f"ledger file {file_label(path)} holds a NUL character (line {text[:text.index(chr(0))].count(chr(10)) + 1}): "
                        "it is not a CSV text file")
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        raise DataError(f"ledger file {file_label(path)} is empty: it needs a header line "
                        f"({','.join(LEDGER_COLUMNS)}) and one line per transaction") from None
    except csv.Error as exc:
        raise DataError(f"ledger file {file_label(path)} is not CSV: {exc}") from None
    header = [h.strip() for h in header]
    unknown = [h for h in header if h not in LEDGER_COLUMNS]
    missing = [h for h in ("kind", "trade_date") if h not in header]
    twice = sorted({h for h in header if header.count(h) > 1})
    if unknown or missing or twice:
        parts = ([f"unknown column(s) {', '.join(quote(h, 20) for h in unknown[:4])}"] if unknown else []) + (
            [f"missing {', '.join(missing)}"] if missing else []) + ([f"{', '.join(twice)} given twice"] if twice else [])
        raise DataError(f"ledger file {file_label(path)}: {'; '.join(parts)}; its columns are {','.join(LEDGER_COLUMNS)} "
                        "(kind and trade_date required)")
    rows: list[dict] = []
    try:
        for line in reader:
            if not any(v.strip() for v in line):
                continue
            if len(line) != len(header):
                raise DataError(f"ledger file {file_label(path)}, row {len(rows) + 1} (line {reader.line_num}): {len(line)} "
                                f"field(s) for {len(header)} column(s)")
            rec = {}
            for key, value in zip(header, line, strict=True):
                if key in _LEDGER_NUMBERS:
                    rec[key] = _number(value)
                elif key == "note":
                    rec[key] = value if value != "" else None
                else:
                    rec[key] = value.strip() or None
            rec["_line"] = reader.line_num
            rows.append(rec)
    except csv.Error as exc:
        raise DataError(f"ledger file {file_label(path)} is not CSV at line {reader.line_num}: {exc}") from None
    if not rows:
        raise DataError(f"ledger file {file_label(path)} has a header and no transactions")
    return rows


def with_lines(exc: Exception, lines: list[int]) -> Exception:
    """``exc`` (the store's refusal of an import) with each "row N" naming its line of the file too:
    blank lines are skipped, so the N-th transaction may lie further down."""
    import re

    def at(m: re.Match) -> str:
        n = int(m.group(1))
        return f"row {n} (line {lines[n - 1]})" if 0 < n <= len(lines) and lines[n - 1] != n + 1 else m.group(0)

    new = type(exc)(re.sub(r"\brow (\d+)(?! \(line)", at, str(exc)))
    return new


def _number(text: str):
    """A number of a CSV cell, or the text itself (the store then says the row's value is not a
    number), or None for a blank cell."""
    import re

    t = text.strip()
    if not t:
        return None
    if not re.fullmatch(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?", t):
        return text  # 'nan', 'inf', '1_0', '0x10', '1,000': not a plain number; the store names the row
    return float(t)
