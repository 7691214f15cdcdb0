"""The scheduler's parts (:mod:`qpo.workbench.scheduler`): a job (one pipeline's run due at one
time), the clock, the options, the order of the pipelines' ``after`` lines, and the times as the
state file keeps them (ISO text)."""
from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from qpo.errors import PipelineError
from qpo.workbench._cron import MISSED_POLICIES, schedule_timezone
from qpo.workbench._schedule_runner import RUN_TIMEOUT_S

#: job outcomes that make a ``qpo schedule run --once`` exit 1
BAD = ("FAILED", "KILLED", "INVALID_DATA", "ERROR")
#: a job claimed by a scheduler on another host is taken as abandoned this long after its run's limit
LEASE_MARGIN_S = 900.0


@dataclass(frozen=True)
class Job:
    pipeline: str
    due: dt.datetime  # aware, in the schedules' zone
    missed: bool = False  # the latest run missed while no scheduler ran, run once on start

    @property
    def key(self) -> str:
        return f"{self.pipeline}@{self.due.astimezone(dt.UTC):%Y-%m-%dT%H:%MZ}"

    @property
    def date(self) -> dt.date:
        return self.due.date()

    @property
    def label(self) -> str:
        return f"{self.pipeline} {self.due:%Y-%m-%d %H:%M}"


class SystemClock:
    """The wall clock in the schedules' zone; :meth:`sleep` ends early when :attr:`stop` is set."""

    def __init__(self, tz: dt.tzinfo | None = None):
        self.tz = tz or schedule_timezone()
        self.stop = threading.Event()

    def now(self) -> dt.datetime:
        return dt.datetime.now(self.tz)

    def sleep(self, seconds: float) -> None:
        self.stop.wait(max(0.0, seconds))


@dataclass
class ScheduleOptions:
    retries: int = 3  # attempts after the first, for a run that could not start
    backoff: float = 60.0  # seconds before the first retry
    backoff_factor: float = 2.0  # each further retry waits this many times longer
    grace: float = 300.0  # a run due this many seconds before the start is late, not missed
    poll: float = 60.0  # the longest sleep: dependencies and other schedulers are looked at this often
    missed: str | None = None  # "run_once" or "skip" for every pipeline (default: each definition's, else run_once)
    lookback_days: int = 35  # runs missed longer ago than this are not looked for
    keep_days: int = 90  # decided jobs are kept in the state this long
    run_timeout: float | None = RUN_TIMEOUT_S  # the longest a whole run may take (SubprocessRunner's timeout)
    lease_margin: float = LEASE_MARGIN_S  # a claim from another host expires run_timeout + this after its start

    def __post_init__(self) -> None:
        from qpo.errors import InvalidValueError, UnknownOptionError

        if self.missed is not None and self.missed not in MISSED_POLICIES:
            raise UnknownOptionError("missed-run policy", self.missed, MISSED_POLICIES)
        if self.run_timeout is not None and self.run_timeout <= 0:
            raise InvalidValueError(f"the run timeout must be more than 0 seconds, got {self.run_timeout}")
        if self.retries < 0 or self.backoff < 0 or self.backoff_factor < 1 or self.grace < 0 or self.poll <= 0:
            raise InvalidValueError(f"scheduler options out of range: retries {self.retries} (0 or more), backoff "
                                    f"{self.backoff} s (0 or more), backoff factor {self.backoff_factor} (1 or more), "
                                    f"grace {self.grace} s (0 or more), poll {self.poll} s (more than 0)")


def iso(t: dt.datetime | None) -> str | None:
    return t.isoformat() if t is not None else None


def parse(text: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(text) if text else None


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


@dataclass
class Pending:
    job: Job
    logged: set[str] = field(default_factory=set)


def dependency_depths(specs: Mapping[str, Any]) -> dict[str, int]:
    """How many ``after`` links each of ``specs`` waits through; a link to a pipeline with no
    schedule, or a cycle, is a PipelineError."""
    depths: dict[str, int] = {}
    for name in specs:
        chain = [name]
        while specs[chain[-1]].after:
            up = specs[chain[-1]].after
            if up not in specs:
                raise PipelineError(f"pipelines/{chain[-1]}.toml: after = {up!r} names a pipeline with no schedule; "
                                    f"give {up} a schedule, or remove the after line")
            if up in chain:
                raise PipelineError(f"the pipelines' after lines form a cycle: {' -> '.join([*chain, up])}; "
                                    f"one of them must not wait for the other")
            chain.append(up)
        depths[name] = len(chain) - 1
    return depths
