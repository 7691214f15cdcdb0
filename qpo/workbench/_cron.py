"""The cron schedules of the pipelines: checked when a definition is loaded, computed with croniter.

A schedule is a standard five-field cron expression (``minute hour day-of-month month day-of-week``,
day of week 0-7 with 0 and 7 Sunday, names ``jan``-``dec`` and ``sun``-``sat``) or one of cron's
macros (``@hourly``, ``@daily``, ``@weekly``, ``@monthly``, ``@yearly``). croniter's extensions
that cron does not know (seconds and year fields, ``L``, ``#``, ``H``, ``?``) are refused, so that
``qpo schedule crontab`` prints lines cron runs the same way. Times are wall-clock times in
:func:`schedule_timezone` (``QPO_SCHEDULE_TZ``, else the machine's zone, as cron does); when the
clocks go back, a job at a fixed hour runs once (as cron does), one with ``*`` in its hour field
at each of the repeated times.
"""
from __future__ import annotations

import datetime as dt
import os
import re
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from qpo.errors import PipelineError

#: the environment variable naming the schedules' time zone (an IANA name such as Europe/Zurich)
TZ_ENV = "QPO_SCHEDULE_TZ"
MACROS = {"@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *", "@weekly": "0 0 * * 0",
          "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@hourly": "0 * * * *"}
_FIELDS = ("minute", "hour", "day of month", "month", "day of week")
_RANGES = ("valid: 0-59", "valid: 0-23", "valid: 1-31", "valid: 1-12 or jan-dec", "valid: 0-7 (0 and 7 Sunday) or sun-sat")
_NAMES = {3: {"jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"},
          4: {"sun", "mon", "tue", "wed", "thu", "fri", "sat"}}
_TOKEN = re.compile(r"[*]|[0-9]+|[a-z]+")
_EXAMPLE = "five fields 'minute hour day-of-month month day-of-week', e.g. '0 18 * * 1-5' (weekdays 18:00)"


class InvalidScheduleError(PipelineError):
    """A pipeline's ``schedule`` that is not a cron expression; the message gives it and the reason."""

    def __init__(self, where: str, expression: str, reason: str):
        self.expression, self.reason = expression, reason
        super().__init__(f"{where}: schedule {expression!r} is not a valid cron expression: {reason}; "
                         f"expected {_EXAMPLE}, or one of {', '.join(sorted(MACROS))}")


def check_cron(expression: str, where: str = "schedule") -> str:
    """``expression`` as five cron fields (a macro expanded); raises :class:`InvalidScheduleError`."""
    from croniter import croniter
    from croniter.croniter import CroniterError

    text = " ".join(str(expression).split()).lower()
    if text.startswith("@"):
        if text not in MACROS:
            raise InvalidScheduleError(where, expression, f"unknown macro {text!r} (@reboot is not a schedule)")
        return MACROS[text]
    fields = text.split(" ")
    if len(fields) != 5:
        raise InvalidScheduleError(where, expression, f"it has {len(fields)} field(s), not 5")
    for i, value in enumerate(fields):
        bad = set(value) - set("0123456789abcdefghijklmnopqrstuvwxyz*,-/")
        if bad:
            raise InvalidScheduleError(where, expression, f"the {_FIELDS[i]} field {value!r} holds "
                                                          f"{''.join(sorted(bad))!r}, which cron does not know")
        for token in _TOKEN.findall(value):
            if token.isalpha() and token not in _NAMES.get(i, set()):
                names = ", ".join(sorted(_NAMES[i])) if i in _NAMES else "none (numbers only)"
                raise InvalidScheduleError(where, expression, f"the {_FIELDS[i]} field {value!r} names {token!r}; "
                                                              f"names valid there: {names}")
        numeric = _numbered(value, i)  # names as numbers: fri-mon is 5-1, which runs backwards too
        if i == 4:  # Sunday closing a range is day 7: sat-sun is 6-7, mon-sun 1-7
            numeric = re.sub(r"(?<![0-9/])([0-9]+)-0(?![0-9])", r"\1-7", numeric)
        for low, high in re.findall(r"(?<![0-9/])([0-9]+)-([0-9]+)", numeric):
            if int(low) > int(high):
                raise InvalidScheduleError(where, expression, f"the {_FIELDS[i]} field {value!r} has the range "
                                                              f"{low}-{high}, which runs backwards")
        # a range of one value is that value: croniter 7 reads '17-17' as '*' (every hour for one)
        value = re.sub(r"(?<![0-9/])([0-9]+)-\1(?:/[0-9]+)?(?![0-9])", r"\1", numeric)
        fields[i] = value
        single = ["*"] * 5
        single[i] = value
        try:  # each field alone, so that the reason names the field
            croniter(" ".join(single))
        except (CroniterError, ValueError, KeyError) as exc:
            reason = (str(exc).replace(f"[{' '.join(single)}] ", "").replace(f" in field {i}", "").strip()
                      or type(exc).__name__)
            raise InvalidScheduleError(where, expression, f"the {_FIELDS[i]} field {value!r} "
                                                          f"{reason} ({_RANGES[i]})") from None
    text = " ".join(fields)
    try:
        croniter(text, dt.datetime(2000, 1, 1, tzinfo=dt.UTC)).get_next(dt.datetime)
    except (CroniterError, ValueError, KeyError) as exc:
        reason = "no date ever matches it" if "next date" in str(exc) else str(exc).replace(f"[{text}] ", "")
        raise InvalidScheduleError(where, expression, reason) from None
    return text


_NUMBERS = {3: {m: n for n, m in enumerate(("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov",
                                            "dec"), start=1)},
            4: {d: n for n, d in enumerate(("sun", "mon", "tue", "wed", "thu", "fri", "sat"))}}


def _numbered(value: str, field: int) -> str:
    """A cron field with its month or day names as numbers."""
    names = _NUMBERS.get(field)
    return re.sub(r"[a-z]+", lambda m: str(names[m.group(0)]), value) if names else value


def schedule_timezone() -> dt.tzinfo:
    """The zone the schedules' times are in: ``QPO_SCHEDULE_TZ``, else ``TZ``, else the machine's
    (``/etc/localtime``), else UTC."""
    name = os.environ.get(TZ_ENV)
    if name:
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            raise PipelineError(f"{TZ_ENV}={name!r} is not a time zone; give an IANA name such as "
                                f"'Europe/Zurich', 'America/New_York' or 'UTC'") from None
    tz = os.environ.get("TZ", "").lstrip(":")
    if tz:
        try:
            return ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError):
            pass
    local = Path("/etc/localtime")
    try:
        target = str(local.resolve())
        if "zoneinfo/" in target:
            return ZoneInfo(target.split("zoneinfo/", 1)[1])
        with local.open("rb") as fh:
            return ZoneInfo.from_file(fh, key="localtime")
    except (OSError, ZoneInfoNotFoundError, ValueError):
        return dt.UTC


def _fixed_hour(expression: str) -> bool:
    """A job at a fixed time of day: no ``*`` in its minute or hour field (cron's rule for the repeated hour)."""
    minute, hour = expression.split(" ")[:2]
    return "*" not in minute and "*" not in hour


def due_between(expression: str, start: dt.datetime, end: dt.datetime, tz: dt.tzinfo, *,
                limit: int = 1000) -> list[dt.datetime]:
    """The times ``t`` with ``start < t <= end`` at which ``expression`` is due, as wall-clock times
    in ``tz``, at most ``limit`` of them (the latest ones). Compared in UTC: within one zone Python
    compares wall-clock times, which the repeated hour of a change of the clocks makes ambiguous."""
    from collections import deque

    from croniter import croniter

    start_utc, end_utc = start.astimezone(dt.UTC), end.astimezone(dt.UTC)
    if end_utc <= start_utc:
        return []
    it = croniter(expression, start.astimezone(tz))
    out: deque[dt.datetime] = deque(maxlen=limit)
    fixed = _fixed_hour(expression)
    while True:
        t = it.get_next(dt.datetime)
        if t.astimezone(dt.UTC) > end_utc:
            return list(out)
        if t.astimezone(dt.UTC) <= start_utc or (fixed and _repeated(t)):
            continue
        out.append(t)


def _repeated(t: dt.datetime) -> bool:
    """``t`` is the second pass of a wall-clock time the clocks going back repeated (a fixed-time
    job ran in the first pass)."""
    return t.fold == 1 and t.replace(fold=0).astimezone(dt.UTC) != t.astimezone(dt.UTC)


def next_after(expression: str, after: dt.datetime, tz: dt.tzinfo) -> dt.datetime:
    """The first time after ``after`` at which ``expression`` is due (a wall-clock time in ``tz``)."""
    from croniter import croniter

    after_utc = after.astimezone(dt.UTC)
    it = croniter(expression, after.astimezone(tz))
    while True:
        t = it.get_next(dt.datetime)
        if t.astimezone(dt.UTC) <= after_utc:
            continue
        if _fixed_hour(expression) and _repeated(t):
            continue
        return t


def last_at_or_before(expression: str, when: dt.datetime) -> dt.datetime:
    """The last time at or before ``when`` (in ``when``'s zone) at which ``expression`` is due."""
    from croniter import croniter

    return croniter(expression, when + dt.timedelta(microseconds=1)).get_prev(dt.datetime)


#: what ``missed`` may say in a pipeline file (and ``qpo schedule run --missed``)
MISSED_POLICIES = ("run_once", "skip")


def check_schedule_keys(raw: dict, where: str, name: str, pipelines) -> dict:
    """The scheduling keys of a pipeline file (``schedule``, ``after``, ``missed``), checked:
    raises :class:`~qpo.errors.PipelineError` naming the file, the value and what is valid."""
    from qpo.errors import UnknownOptionError

    schedule = raw.get("schedule", "")
    if not isinstance(schedule, str):
        raise InvalidScheduleError(where, str(schedule), "it is not a text")
    schedule = schedule.strip()
    if schedule:
        check_cron(schedule, where)
    after = raw.get("after")
    if after is not None:
        if not isinstance(after, str) or not after:
            raise PipelineError(f"{where}: after must name another pipeline, e.g. after = \"valuation\"; got {after!r}")
        if after == name:
            raise PipelineError(f"{where}: after = {after!r} names the pipeline itself; name the pipeline whose run "
                                f"of the same date it waits for")
        if after not in pipelines:
            raise UnknownOptionError(f"pipeline in {where} (after =)", after, [p for p in pipelines if p != name])
        if not schedule:
            raise PipelineError(f"{where}: after = {after!r} needs a schedule of its own (the run of a date waits "
                                f"for that date's {after} run)")
    missed = raw.get("missed")
    if missed is not None and missed not in MISSED_POLICIES:
        raise UnknownOptionError(f"missed-run policy in {where} (missed =)", missed, MISSED_POLICIES)
    return {"schedule": schedule, "after": after, "missed": missed}
