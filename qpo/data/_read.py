"""Reading the CSV files users bring (any of the ways spreadsheets and pandas write them), then
finding and parsing the dates and the numbers of a CSV or Parquet file (Parquet is read, with the
index pandas records, in :mod:`qpo.data.loaders`).

Everything here either returns a frame whose dates are datetimes and whose numbers are floats, or
raises :class:`~qpo.errors.DataError` with a message (under ~300 characters) that names the file,
the column and example rows. Rows are counted from 1, the first row below the header.
"""
from __future__ import annotations

import csv
import gzip
import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from qpo.errors import DataError

MAX_MESSAGE = 300
_SEPARATORS = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}
_DECIMAL_COMMA = re.compile(r'^\s*"?[+-]?\d+,\d+(?:[eE][+-]?\d+)?"?\s*$')
_COMMA_NUMBER = re.compile(r"^[+-]?(\d+(,\d*)?|,\d+)([eE][+-]?\d+)?$|^[+-]?(inf|Inf|INF)$")
_DATE_NAMES = ("date", "timestamp", "datetime")
_UNNAMED = re.compile(r"^(unnamed: \d+|index|)$", re.I)
SUFFIXES = ".csv, .csv.gz, .parquet, .pq"


def short(message: str, limit: int = MAX_MESSAGE) -> str:
    """``message`` cut to ``limit`` characters (an ellipsis says it was cut)."""
    return message if len(message) <= limit else message[: limit - 3] + "..."


def listing(items, n: int = 6, width: int = 24) -> str:
    """Up to ``n`` items, each cut to ``width`` characters, then "... and N more"."""
    items = list(items)
    shown = ", ".join(short(str(i), width) for i in items[:n])
    return shown + (f" ... and {len(items) - n} more" if len(items) > n else "")


def fail(message: str) -> DataError:
    return DataError(short(message))


def is_unnamed(name: str) -> bool:
    """A column pandas named for a missing header cell (``Unnamed: 0``), or an index's stand-in."""
    return bool(_UNNAMED.match(str(name).strip()))


def kind_of(path: Path) -> str:
    name = path.name.lower()
    if name.endswith((".parquet", ".pq")):
        return "parquet"
    if name.endswith((".csv", ".csv.gz")):
        return "csv"
    raise fail(f"unsupported file type {path.name!r}; valid: {SUFFIXES}")


# ------------------------------------------------------------------ CSV dialect
def _head(path: Path, size: int = 65536) -> bytes:
    try:
        if path.name.lower().endswith(".gz"):
            with gzip.open(path, "rb") as fh:
                return fh.read(size)
        with open(path, "rb") as fh:
            return fh.read(size)
    except (OSError, EOFError) as exc:
        raise fail(f"could not read {path.name}: {exc}") from exc


def _count_outside_quotes(line: str, sep: str) -> int:
    count, quoted = 0, False
    for ch in line:
        if ch == '"':
            quoted = not quoted
        elif ch == sep and not quoted:
            count += 1
    return count


class Dialect:
    """How a CSV is written: encoding, separator, decimal mark; ``notes`` say what was unusual."""

    def __init__(self, path: Path):
        raw = _head(path)
        if not raw.strip():
            raise fail(f"{path.name} is empty; a price file needs a header line and one row per date")
        self.notes: list[str] = []
        if raw.startswith(b"\xef\xbb\xbf"):
            self.encoding = "utf-8-sig"
            self.notes.append("UTF-8 with a byte-order mark")
        elif raw.startswith((b"\xff\xfe", b"\xfe\xff")):
            self.encoding = "utf-16"
            self.notes.append("UTF-16")
        else:
            self.encoding = "utf-8"
        try:
            text = raw.decode(self.encoding)
        except UnicodeDecodeError as exc:
            if exc.start < len(raw) - 4:  # not merely a character cut at the end of the sample
                raise fail(f"{path.name} is not UTF-8 text (byte {exc.start}); save it as UTF-8 CSV") from exc
            text = raw[: exc.start].decode(self.encoding)
        lines = [ln for ln in text.splitlines() if ln.strip()]
        if not lines:
            raise fail(f"{path.name} holds no text (only a byte-order mark or blank lines): a CSV needs a header "
                       "row and at least one row of data")
        header = lines[0]
        counts = {sep: _count_outside_quotes(header, sep) for sep in _SEPARATORS}
        best = max(counts.values())
        seps = [s for s, c in counts.items() if c == best and c > 0]
        if len(seps) > 1:
            raise fail(f"{path.name}: the header line {short(header, 60)!r} mixes "
                       f"{' and '.join(_SEPARATORS[s] for s in seps)} separators; use one separator")
        self.sep = seps[0] if seps else ","
        self.decimal = "."
        if self.sep != ",":
            self.notes.append(f"{_SEPARATORS[self.sep]}-separated")
        if self.sep == ";" and any(_DECIMAL_COMMA.match(cell) for ln in lines[1:2000] for cell in ln.split(";")):
            self.decimal = ","
            self.notes.append("with decimal commas")
        self.header = next(csv.reader([header], delimiter=self.sep))

    def describe(self) -> str:
        return "read as " + ", ".join(self.notes) if self.notes else ""


def read_csv(path: Path) -> pd.DataFrame:
    dialect = Dialect(path)
    names = [h.strip() for h in dialect.header]
    named = [n for n in names if n]
    dup = sorted({n for n in named if named.count(n) > 1})
    if dup:
        raise fail(f"{path.name}: columns named twice: {listing(dup)}; give each column its own name")
    try:
        df = pd.read_csv(path, sep=dialect.sep, decimal=dialect.decimal, encoding=dialect.encoding)
    except pd.errors.EmptyDataError as exc:
        raise fail(f"{path.name} is empty; a price file needs a header line and one row per date") from exc
    except UnicodeDecodeError as exc:
        raise fail(f"{path.name} is not {dialect.encoding} text ({exc.reason} at byte {exc.start}); "
                   "save it as UTF-8 CSV") from exc
    except (pd.errors.ParserError, ValueError, OSError, EOFError) as exc:
        wide = _wide_rows(path, dialect)[0] if "fields in line" in str(exc) else None
        if wide is not None:  # "Expected 3 fields in line 4, saw 5": a row wider than those before it
            raise _too_many_fields(path, dialect, *wide) from exc
        raise fail(f"could not read {path.name} ({dialect.describe() or 'comma-separated'}): "
                   f"{' '.join(str(exc).split())}") from exc
    if not isinstance(df.index, pd.RangeIndex):  # rows wider than the header: pandas made their first fields an index
        df = _leading_dates(df, path, dialect)
    df.columns = [str(c).strip() for c in df.columns]
    df.attrs["qpo_read"] = dialect.describe()
    df.attrs["qpo_decimal"] = dialect.decimal
    df.attrs["qpo_sep"] = dialect.sep
    return df


#: a header naming a date column has no date before its first column (no field more in each row)
_DATE_HEADERS = {*_DATE_NAMES, "time", "day", "datum", "fecha"}


def _wide_rows(path: Path, dialect: Dialect) -> tuple[tuple[int, int, list[str]] | None, bool]:
    """The first row with more fields than the header (its row and line numbers, its fields), or None
    (a row wider still after rows of one field more: that one); and whether every row has exactly
    one field more than the header."""
    width, first, one_more, row = len(dialect.header), None, True, -1
    enc, gz = dialect.encoding, path.name.lower().endswith(".gz")
    try:
        with (gzip.open(path, "rt", encoding=enc, errors="replace", newline="") if gz
              else open(path, encoding=enc, errors="replace", newline="")) as fh:
            reader = csv.reader(fh, delimiter=dialect.sep)
            for fields in reader:
                if not fields or (len(fields) == 1 and not fields[0].strip()):
                    continue  # a blank line (pandas skips them)
                row += 1
                if row and (first is None or one_more and len(fields) > width + 1):  # (row 0: the header)
                    first = (row, reader.line_num, fields) if len(fields) > width else first
                one_more = one_more and (row == 0 or len(fields) == width + 1)
                if first is not None and not one_more:
                    break
    except (OSError, EOFError, csv.Error):  # unreadable the second time, or a field beyond csv's size limit
        return None, False
    return first, one_more and first is not None


def _too_many_fields(path: Path, dialect: Dialect, row: int, line: int, fields: list[str]) -> DataError:
    trailing = "a separator at the end of each row (remove it)"
    if dialect.sep == ",":
        commas = ("decimal commas in a comma-separated file (use ';' as the separator with decimal commas, or quote "
                  'the numbers: "1,5")')
        cause = f"{trailing} or {commas}" if not fields[-1].strip() else f"{commas} or {trailing}"
    else:
        cause = f"{trailing} or a value holding a {_SEPARATORS[dialect.sep]} (quote it)"
    where = f"{path.name} ({dialect.describe()})" if dialect.describe() else path.name
    return fail(f"{where}: row {row} (line {line}) has {len(fields)} fields but the header {len(dialect.header)}: "
                f"likely {cause}")


def _leading_dates(df: pd.DataFrame, path: Path, dialect: Dialect) -> pd.DataFrame:
    """Rows with more fields than the header (pandas made their first fields the index): read when
    they are pandas' ``to_csv(index_label=False)`` (each row a date, then one field per header name;
    the dates become the column ``date``), else refused, naming the first wide row. Decimal commas or
    a separator ending each row leave dates in the header's first column, whole numbers only or an
    empty last column: refused."""
    wide, one_more = _wide_rows(path, dialect)
    if wide is None:
        raise fail(f"{path.name}: rows have more fields than the header ({len(dialect.header)} names)")
    names = [str(c).strip() for c in df.columns]
    first = df.iloc[:, 0].dropna()
    numbers = df.select_dtypes("number").to_numpy(dtype="float64", na_value=np.nan)
    numbers = numbers[np.isfinite(numbers)]
    ok = (one_more and not isinstance(df.index, pd.MultiIndex)
          and not any(n.lower() in _DATE_HEADERS or is_unnamed(n) for n in names)
          and not (len(first) and isinstance(first.iloc[0], str) and _guess(first.iloc[0]) is not None)
          and not df.iloc[:, -1].isna().all()
          and not (dialect.sep == "," and len(numbers) and not (numbers % 1).any()))  # all whole: cut in two
    if ok:
        try:
            dates = parse_dates(pd.Series(df.index), path.name, "date")
        except DataError:
            ok = False
    if not ok:
        raise _too_many_fields(path, dialect, *wide)
    out = df.reset_index(drop=True)
    out.insert(0, "date", dates.to_numpy())
    return out


# ------------------------------------------------------------------ files
def _shown(path: Path, n: int = 120) -> str:
    """``path`` for a message: a long one keeps its start and end and says how long it was."""
    text = str(path)
    return text if len(text) <= n else f"{text[:n // 2]}...{text[-(n // 2):]} ({len(text)} characters)"


def require_file(path: Path) -> None:
    """Refuse a path that does not name an existing file: absent, or one the system cannot even
    look up (a name too long, a folder in its way, no permission), with a DataError of bounded size."""
    try:
        found = path.exists()
    except OSError as exc:  # ENAMETOOLONG, ENOTDIR, EACCES, ELOOP: stat() itself failed
        raise fail(f"cannot open the file {_shown(path)}: {exc.strerror or exc.__class__.__name__}; "
                   "give the path of an existing .csv, .csv.gz or .parquet file") from exc
    if not found:
        raise fail(f"file not found: {_shown(path)}")


def header_of(path: Path) -> list[str]:
    """The column names, reading only the header (CSV) or the schema (Parquet)."""
    require_file(path)
    if kind_of(path) == "csv":
        return [h.strip() for h in Dialect(path).header]
    try:
        import pyarrow.parquet as pq

        return list(pq.read_schema(path).names)
    except Exception as exc:  # noqa: BLE001 - pyarrow raises many types; turned into a clear message
        raise fail(f"could not read {path.name} as Parquet: {' '.join(str(exc).split())}") from exc


# ------------------------------------------------------------------ dates
def find_date_column(df: pd.DataFrame, label: str, *, first_column: bool = True) -> str:
    """The column that holds the dates: one named date/timestamp/datetime (any case), else an
    unnamed first column (the index ``to_csv()`` writes), else the one datetime-typed column,
    else (``first_column``) a first column of text that reads as dates. Never a column of numbers."""
    names = [str(c) for c in df.columns]
    lower = {n.lower(): n for n in names}
    for key in _DATE_NAMES:
        if key in lower:
            return lower[key]
    if names and is_unnamed(names[0]) and not _is_row_numbers(df[names[0]]):
        return names[0]
    typed = [n for n in names if pd.api.types.is_datetime64_any_dtype(df[n])]
    if len(typed) == 1:
        return typed[0]
    if first_column and names and not pd.api.types.is_numeric_dtype(df[names[0]]):
        first = df[names[0]].dropna()
        if len(first) and isinstance(first.iloc[0], str) and _guess(first.iloc[0]) is not None:
            return names[0]
    raise fail(f"{label}: no dates found; columns seen: {listing(names)}. A price file needs a 'date' column "
               "(or the date index pandas writes with to_csv()/to_parquet())")


def _is_row_numbers(s: pd.Series) -> bool:
    """0, 1, 2, ...: the RangeIndex ``to_csv()`` writes unless told ``index=False``."""
    return pd.api.types.is_integer_dtype(s) and bool((s.to_numpy() == np.arange(len(s))).all())


def drop_row_numbers(df: pd.DataFrame, date_col: str) -> pd.DataFrame:
    """Drop unnamed columns that are row numbers or empty; refuse an unnamed column with values."""
    drop = []
    for i, c in enumerate(df.columns):
        if c == date_col or not is_unnamed(c):
            continue
        if (i == 0 and _is_row_numbers(df[c])) or df[c].isna().all():
            drop.append(c)
    return df.drop(columns=drop)


#: a date written day.month.year (01.02.2020): the European convention, read day first
_DOTTED = re.compile(r"^\d{1,2}\.\d{1,2}\.\d{4}\b")
#: a UTC offset at the end of a time stamp (+01:00, -0500, Z)
_OFFSET = re.compile(r"\s*(?:[+-]\d{2}:?\d{2}|Z)$")


def _guess(text: str) -> str | None:
    from pandas.tseries.api import guess_datetime_format

    text = text.strip()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if _DOTTED.match(text):  # 01.02.2020 is 1 February where dates are written with dots
            return guess_datetime_format(text, dayfirst=True) or guess_datetime_format(text)
        return guess_datetime_format(text) or guess_datetime_format(text, dayfirst=True)


def _wall_time(value):
    """A time stamp's own wall time: its UTC offset dropped (text or a datetime)."""
    if isinstance(value, str):
        return _OFFSET.sub("", value.strip())
    if getattr(value, "tzinfo", None) is not None:
        return value.replace(tzinfo=None)
    return value


def _swap_day_month(fmt: str) -> str | None:
    if "%m" not in fmt or "%d" not in fmt:
        return None
    return fmt.replace("%m", "\x00").replace("%d", "%m").replace("\x00", "%d")


def _rows(positions, values=None, n: int = 3) -> str:
    positions = list(positions)
    shown = [f"row {p + 1}" + (f" {short(str(values[k]), 24)!r}" if values is not None else "")
             for k, p in enumerate(positions[:n])]
    return ", ".join(shown) + (f" ... and {len(positions) - n} more" if len(positions) > n else "")


def _to_datetime(values: pd.Series, fmt: str | None) -> pd.Series:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            out = pd.to_datetime(values, format=fmt, errors="coerce")
        except (ValueError, TypeError, OverflowError):  # mixed UTC offsets raise (pandas 2.x warned instead)
            out = None
    if out is None or not pd.api.types.is_datetime64_any_dtype(out):
        # mixed UTC offsets (a daylight-saving change: +01:00 in winter, +02:00 in summer) come back as
        # objects: each date keeps its own wall time, as one offset does (converting to UTC would move
        # midnight dates to the day before)
        wall_fmt = fmt.replace("%z", "").rstrip() if fmt else None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = pd.to_datetime(values.map(_wall_time), format=wall_fmt or None, errors="coerce")
        if not pd.api.types.is_datetime64_any_dtype(out):
            out = pd.to_datetime(values, format=fmt, errors="coerce", utc=True)
    if getattr(out.dt, "tz", None) is not None:
        out = out.dt.tz_localize(None)
    return out


def _numbers_refused(label: str, column: str, example) -> DataError:
    return fail(f"{label}: column {column!r} holds numbers (e.g. {short(str(example), 20)}), not dates; numbers are "
                "never read as dates: write dates as YYYY-MM-DD")


def parse_dates(values: pd.Series, label: str, column: str) -> pd.Series:
    """``values`` as datetimes (time zones dropped, wall time kept). Refused: numbers, text that is
    not a date (examples named), dates written two ways (two example rows named), missing dates."""
    s = values.reset_index(drop=True)
    present = s.notna().to_numpy()
    if not present.any():
        raise fail(f"{label}: column {column!r} holds no dates (every cell is empty)")
    if pd.api.types.is_datetime64_any_dtype(s):
        out = s.dt.tz_localize(None) if getattr(s.dt, "tz", None) is not None else s
    elif pd.api.types.is_bool_dtype(s) or pd.api.types.is_numeric_dtype(s):
        raise _numbers_refused(label, column, s[present].iloc[0])
    else:
        kinds = {type(v) for v in s[present].iloc[:1000]}
        if any(issubclass(k, (int, float, np.number)) and not issubclass(k, bool) for k in kinds):
            raise _numbers_refused(label, column, next(v for v in s[present] if not isinstance(v, str)))
        out = _parse_text_dates(s, present, label, column) if kinds <= {str} else _to_datetime(s, None)
    missing = np.flatnonzero(out.isna().to_numpy())
    if len(missing):
        bad = [p for p in missing if present[p]]
        if bad:
            raise fail(f"{label}: column {column!r} holds values that are not dates: {_rows(bad, s.iloc[bad].to_numpy())}")
        raise fail(f"{label}: rows without a date: {_rows(missing)}; every row needs a date")
    return out


def _parse_text_dates(s: pd.Series, present: np.ndarray, label: str, column: str) -> pd.Series:
    text = s.astype(object).where(present, None)
    first_pos = int(np.flatnonzero(present)[0])
    first = str(text.iloc[first_pos])
    fmt = _guess(first)
    if fmt is None:
        try:
            float(first)
        except ValueError:
            raise fail(f"{label}: column {column!r} holds text that is not a date: {_rows([first_pos], [first])}; "
                       "write dates as YYYY-MM-DD") from None
        raise _numbers_refused(label, column, first) from None
    out = _to_datetime(text, fmt)
    bad = np.flatnonzero(present & out.isna().to_numpy())
    if not len(bad):
        return _day_or_month_first(out, text, present, fmt)
    swapped = _swap_day_month(fmt)
    if swapped:  # month-first guessed from an ambiguous first date, but the file is day-first
        alt = _to_datetime(text, swapped)
        if not (present & alt.isna().to_numpy()).any():
            return alt
    other = str(text.iloc[bad[0]])
    other_fmt = _guess(other)
    if other_fmt is not None and other_fmt != fmt:
        raise fail(f"{label}: column {column!r} mixes date formats: {_rows([first_pos], [first])} and "
                   f"{_rows([bad[0]], [other])} ({len(bad)} row(s) differ from the first); write every date "
                   "one way, e.g. YYYY-MM-DD")
    raise fail(f"{label}: column {column!r} holds text that is not a date: "
               f"{_rows(bad, text.iloc[bad].to_numpy())}; write dates as YYYY-MM-DD")


def _day_or_month_first(out: pd.Series, text: pd.Series, present: np.ndarray, fmt: str) -> pd.Series:
    """Dates that read both ways (no day above 12: 01/02/2010 is 2 January or 1 February): the
    guessed order, unless it puts the dates in runs with long gaps between them (month-start prices
    written day-first read month-first: 1 to 12 January of each year) while the other order gives
    dates at one spacing."""
    from qpo.data.calendar import comes_in_runs

    swapped = _swap_day_month(fmt)
    if not swapped or fmt.startswith("%Y") or not comes_in_runs(out[present]):  # year first: ISO, never swapped
        return out
    alt = _to_datetime(text, swapped)
    if (present & alt.isna().to_numpy()).any() or comes_in_runs(alt[present]):
        return out
    return alt


# ------------------------------------------------------------------ numbers
def _float_or_nan(cell) -> float:
    """One cell as a float (a number too large for one is infinite: the checks refuse it), NaN when
    it is no number."""
    if cell is None:
        return float("nan")
    text = str(cell).strip()
    if not re.fullmatch(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?|[+-]?(inf|infinity|nan)", text, flags=re.IGNORECASE):
        return float("nan")
    return float(text)


def to_numbers(df: pd.DataFrame, columns: list[str], label: str, *, as_float: bool = True) -> pd.DataFrame:
    """``columns`` as numbers (float64 when ``as_float``; numeric columns otherwise keep their type).
    Text where a number belongs, true/false and dates are refused, naming column, rows and text."""
    out = {}
    examples: list[str] = []
    n_bad, bad_cols = 0, []
    for c in columns:
        s = df[c]
        if pd.api.types.is_bool_dtype(s):
            raise fail(f"{label}: column {c!r} holds true/false values, not numbers")
        if pd.api.types.is_datetime64_any_dtype(s) or pd.api.types.is_timedelta64_dtype(s):
            raise fail(f"{label}: column {c!r} holds dates, not numbers; a file has one date column")
        if pd.api.types.is_numeric_dtype(s):
            out[c] = s.to_numpy(dtype="float64", na_value=np.nan) if as_float else s
            continue
        present = s.notna().to_numpy()
        cells = s.astype(object).where(present, None)
        if df.attrs.get("qpo_decimal") == ",":  # only plain numbers with a decimal comma, never a point
            cells = s.astype(str).str.strip()
            cells = cells.where(cells.str.match(_COMMA_NUMBER), None).str.replace(",", ".", regex=False)
        try:
            values = pd.to_numeric(cells, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
        except (OverflowError, TypeError, ValueError):  # an integer of hundreds of digits: infinite as a float
            values = np.array([_float_or_nan(x) for x in cells], dtype="float64")
        bad = np.flatnonzero(present & np.isnan(values))
        if len(bad):
            n_bad += len(bad)
            bad_cols.append(c)
            examples += [f"{c!r} row {p + 1} {short(str(s.iloc[p]), 16)!r}" for p in bad[: 3 - len(examples)]]
            continue
        out[c] = values
    if n_bad:
        more = f" ... and {n_bad - len(examples)} more" if n_bad > len(examples) else ""
        hint = "; write numbers with a decimal point, missing ones as empty cells"
        if df.attrs.get("qpo_decimal") == ",":
            hint = "; with decimal commas, a decimal point or thousands separator is not read (write 1234,5)"
        elif any(re.search(r"\d,\d", e) for e in examples) and df.attrs.get("qpo_sep") == ";":
            hint = ("; no cell is a plain decimal-comma number, so decimal points were assumed: a thousands "
                    "separator is not read (write 1234,5 or 1234.5, not 1.234,5)")
        elif any(re.search(r"\d,\d", e) for e in examples):
            hint = "; decimal commas are read only in semicolon-separated files"
        raise fail(f"{label}: text where numbers belong in {listing(bad_cols, 3)}: {', '.join(examples)}{more}{hint}")
    if as_float and list(out) == list(df.columns):  # a wide panel: one new frame, no per-column copies
        result = pd.DataFrame(out, index=df.index)
    else:
        result = df.copy()
        for c, v in out.items():
            result[c] = v
    result.attrs = dict(df.attrs)
    return result
