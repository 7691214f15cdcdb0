"""What the dashboard's server remembers of sign-ins (:mod:`qpo.workbench.auth` uses it): recent
failures by e-mail and client address (for the delay), the attempts in flight (one at a time per
key), and the sessions it opened and that were not signed out."""
from __future__ import annotations

import asyncio
import contextlib
import secrets
import threading
import time

#: failures (per e-mail and per client address) allowed before each next attempt is delayed
FREE_FAILURES = 2
#: the longest delay of an attempt after repeated failures, in seconds
MAX_DELAY = 8.0
#: failures are forgotten after this many seconds without one
FAILURE_MEMORY = 900.0
#: sign-in attempts that may hold or wait for one key (an e-mail, an address); more are refused (429)
MAX_WAITING = 8
#: a session is forgotten by the server after this many days (Tornado's signed cookies last 31)
SESSION_DAYS = 31


class _Failures:
    """Recent login failures by key (an e-mail or a client address), for the delay."""

    def __init__(self):
        self._lock = threading.Lock()
        self._seen: dict[str, tuple[int, float]] = {}

    def delay(self, *keys: str) -> float:
        now = time.monotonic()
        with self._lock:
            worst = 0
            for k in keys:
                n, last = self._seen.get(k, (0, 0.0))
                if now - last > FAILURE_MEMORY:
                    self._seen.pop(k, None)
                    n = 0
                worst = max(worst, n)
        return 0.0 if worst < FREE_FAILURES else min(MAX_DELAY, 0.5 * 2 ** (worst - FREE_FAILURES))

    def reserve(self, *keys: str) -> float:
        """The delay of an attempt for ``keys`` now (:meth:`delay`), the attempt counted as a
        failure meanwhile (:meth:`succeeded` clears it)."""
        wait = self.delay(*keys)
        self.failed(*keys)
        return wait

    def failed(self, *keys: str) -> None:
        now = time.monotonic()
        with self._lock:
            for k in keys:
                n, last = self._seen.get(k, (0, 0.0))
                self._seen[k] = (1 if now - last > FAILURE_MEMORY else n + 1, now)

    def succeeded(self, *keys: str) -> None:
        with self._lock:
            for k in keys:
                self._seen.pop(k, None)


FAILURES = _Failures()


class _InFlight:
    """One sign-in attempt at a time per key (an e-mail, a client address): the others wait their
    turn. Used on the server's event loop only."""

    def __init__(self):
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    @contextlib.asynccontextmanager
    async def turn(self, *keys: str):
        keys = tuple(sorted(set(keys)))  # always in one order: two attempts never wait on each other
        for k in keys:
            lock, users = self._locks.get(k) or (asyncio.Lock(), 0)
            self._locks[k] = (lock, users + 1)
        taken: list[str] = []
        try:
            for k in keys:
                await self._locks[k][0].acquire()
                taken.append(k)
            yield
        finally:
            for k in taken:
                self._locks[k][0].release()
            for k in keys:
                lock, users = self._locks[k]
                if users <= 1:
                    del self._locks[k]
                else:
                    self._locks[k] = (lock, users - 1)

    def waiting(self, key: str) -> int:
        """Attempts holding or waiting for ``key``."""
        return self._locks.get(key, (None, 0))[1]


IN_FLIGHT = _InFlight()


class _Sessions:
    """The sessions this server opened and that were not signed out, by random id (the cookie
    only names one: a signed-out cookie, even kept and replayed, opens nothing)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._open: dict[str, tuple[str, float]] = {}

    def open(self, email: str) -> str:
        now = time.time()
        sid = secrets.token_urlsafe(24)
        with self._lock:
            for old in [k for k, (_, t) in self._open.items() if now - t > SESSION_DAYS * 86400]:
                del self._open[old]
            self._open[sid] = (email, now)
        return sid

    def is_open(self, sid: str, email: str) -> bool:
        with self._lock:
            found = self._open.get(sid)
        return found is not None and found[0] == email and time.time() - found[1] <= SESSION_DAYS * 86400

    def close(self, sid: str) -> bool:
        """End session ``sid``; whether it was open."""
        with self._lock:
            return self._open.pop(sid, None) is not None

    def count(self, email: str) -> int:
        with self._lock:
            return sum(1 for e, _ in self._open.values() if e == email)


SESSIONS = _Sessions()


#: the environment variable naming the reverse proxies (comma-separated addresses) whose
#: ``X-Forwarded-For`` tells the client's address
TRUSTED_PROXIES_ENV = "QPO_DASHBOARD_TRUSTED_PROXIES"


def trusted_proxies(value: str | None) -> frozenset[str]:
    """The addresses of ``QPO_DASHBOARD_TRUSTED_PROXIES`` (``"127.0.0.1, 10.0.0.5"``); a value
    that is not a list of IP addresses is refused, naming it."""
    import ipaddress

    from qpo.errors import InvalidValueError

    out = set()
    for part in (value or "").split(","):
        part = part.strip()
        if not part:
            continue
        try:
            out.add(str(ipaddress.ip_address(part)))
        except ValueError:
            raise InvalidValueError(f"{TRUSTED_PROXIES_ENV} must list IP addresses (comma-separated), got "
                                    f"{part[:60]!r}") from None
    return frozenset(out)


def client_address(remote_ip: str, forwarded_for: str | None, trusted: frozenset[str]) -> str:
    """The client's address for the sign-in delay: the connection's, unless it comes from a trusted
    proxy, then the last address of ``X-Forwarded-For`` that is not a trusted proxy (a client may
    write any hops before the proxy's own; only those the proxies added are believed)."""
    if remote_ip not in trusted or not forwarded_for:
        return remote_ip
    for hop in reversed([h.strip() for h in forwarded_for.split(",")]):
        if hop and hop not in trusted:
            return hop[:64]
    return remote_ip
