"""Who is looking at the dashboard: a login against the client book's people, through Jupyter
Server's and Voila's own extension points.

* :class:`BookIdentityProvider` (``Voila.identity_provider_class``): a request is signed in when it
  carries the signed login cookie of a person of the store whose password has not changed since,
  of a session this server opened and that was not signed out (the cookie holds the e-mail, a stamp
  of the password hash and the session's random id; a new password ends every session of the
  person, signing out ends the session: its cookie, even kept, opens nothing any more). Sessions
  are held by the server process (:data:`SESSIONS`): a restarted server (also a new cookie secret)
  has none, so everyone signs in again. No token, no anonymous user: without a session every page
  answers with the login page (a redirect), and an API or kernel URL with the login page or 403.
  A page already open keeps its kernel (and its websocket) after signing out until it is closed or
  culled; no new page or kernel opens.
* :class:`BookLoginHandler` (``/login``): e-mail and password, checked by
  :func:`qpo.store.authenticate` (argon2). A failure gets the page again with a plain message
  (401); repeated failures for one e-mail or from one address are slowed down (a delay that doubles
  from the third failure, up to :data:`MAX_DELAY` seconds). Attempts for one e-mail or from one
  address are made one at a time (the others wait their turn, :class:`_InFlight`), each counted as
  a failure before its delay and until it succeeds: parallel guesses wait the sum of the delays of
  the same guesses made one after another. The password check and the store's reads run off the
  server's event loop, so a burst of guesses stalls no other person's page or login.
* :class:`BookLogoutHandler` (``/logout``, the page's "Sign out" link): ends the session on the
  server, clears the cookie and shows the sign-in page saying so.
* :func:`prelaunch_hook` (``VoilaConfiguration.prelaunch_hook``): the kernel of a visit is told who
  signed in (``QPO_USER``, set by a cell put before the notebook's first), so every store read of
  the dashboard is made as that person (:mod:`qpo.store.access`).
* :class:`KernelOwners`: each visit's kernel belongs to the session that opened the page (its
  e-mail and session id, :data:`VISITOR` while the page's handler starts it); every URL naming a
  kernel answers 403 to anyone else, an admin too (:mod:`qpo.workbench.dashboard_server`): knowing
  another person's kernel id opens nothing.
"""
from __future__ import annotations

import asyncio
import contextvars
import hashlib
import html
import inspect
import json
import os
import re
import threading
from dataclasses import dataclass

from jupyter_server.auth.decorator import allow_unauthenticated
from jupyter_server.auth.identity import IdentityProvider, User
from jupyter_server.auth.login import LoginFormHandler
from tornado import web

# the server's sign-in state (failures, attempts in flight, sessions), kept in its own module
from qpo.workbench._auth_state import FAILURE_MEMORY as FAILURE_MEMORY
from qpo.workbench._auth_state import FAILURES as FAILURES
from qpo.workbench._auth_state import FREE_FAILURES as FREE_FAILURES
from qpo.workbench._auth_state import IN_FLIGHT as IN_FLIGHT
from qpo.workbench._auth_state import MAX_DELAY as MAX_DELAY
from qpo.workbench._auth_state import MAX_WAITING as MAX_WAITING
from qpo.workbench._auth_state import SESSION_DAYS as SESSION_DAYS
from qpo.workbench._auth_state import SESSIONS as SESSIONS

#: the cookie of a session
COOKIE_NAME = "qpo-dashboard-session"
#: what the sign-in page says after signing out
SIGNED_OUT = "You have signed out."


@dataclass
class BookUser(User):
    """A signed-in person of the book: ``username`` is the e-mail; ``stamp`` ties the session to
    the password it was opened with."""

    role: str = ""
    stamp: str = ""
    session: str = ""


def password_stamp(password_hash: str | None) -> str:
    """A short digest of a stored password hash (a new password makes every old cookie invalid)."""
    return hashlib.sha256((password_hash or "").encode()).hexdigest()[:16]




def _engine():
    from qpo.store import connect

    return connect(create=False)


def _scrub(text: str) -> str:
    """``text`` without the secrets of the configured database URL (its password, a secret query
    value), should a message hold them."""
    import os

    from qpo.store.db import url_secrets

    for secret in url_secrets(os.environ.get("QPO_DATABASE_URL", "")):
        text = text.replace(secret, "***")
    return text


def store_problem() -> str | None:
    """Why the client book cannot be read now, in words safe to show (qpo's own message, its URL's
    password hidden; any other failure named only by its kind), or None when it can."""
    from qpo.errors import QpoError

    try:
        from sqlalchemy import text

        from qpo.store import session_scope

        with session_scope(_engine(), write=False) as s:
            s.execute(text("SELECT 1"))
    except QpoError as exc:
        return _scrub(str(exc))
    except Exception as exc:  # noqa: BLE001 - a driver's text may hold a host or a password: never shown
        return f"the store could not be reached ({type(exc).__name__}); ask whoever runs the dashboard"
    return None


def _lookup(email: str):
    """The store's row for ``email`` as (email, name, role, password hash), or None."""
    from qpo.store import session_scope
    from qpo.store.access import user_named

    with session_scope(_engine(), write=False) as s:  # an e-mail's case does not name another person
        user = user_named(s, email)
        return None if user is None else (user.email, user.name, user.role, user.password_hash)


class BookIdentityProvider(IdentityProvider):
    """Sessions of the store's people (see the module)."""

    @property
    def auth_enabled(self) -> bool:
        return True

    @property
    def login_available(self) -> bool:
        return True

    def get_cookie_name(self, handler) -> str:
        return COOKIE_NAME

    def get_handlers(self) -> list:
        """``/login`` is the book's form (Voila passes its own login handler class, which asks for a
        token); ``/logout`` the book's too (Jupyter Server's needs templates Voila does not serve)."""
        return [(r"/login", BookLoginHandler), (r"/logout", BookLogoutHandler)]

    def user_to_cookie(self, user: User) -> str:
        return json.dumps({"email": user.username, "stamp": getattr(user, "stamp", ""),
                           "session": getattr(user, "session", "")})

    def user_from_cookie(self, cookie_value: str) -> User | None:
        data = json.loads(cookie_value)
        email, stamp, sid = data.get("email"), data.get("stamp"), data.get("session")
        if not isinstance(email, str) or not isinstance(stamp, str) or not isinstance(sid, str):
            return None
        if not SESSIONS.is_open(sid, email):  # signed out, or opened by another run of the server
            return None
        try:
            row = _lookup(email)
        except Exception:  # the store is unreachable: no session (the page says so once signed in)
            self.log.warning("the store could not be read to check a session")
            return None
        if row is None or not row[3] or password_stamp(row[3]) != stamp:
            return None
        return BookUser(username=row[0], name=row[1], display_name=f"{row[1]} ({row[2]})", role=row[2], stamp=stamp,
                        session=sid)

    def end_session(self, handler) -> str | None:
        """Sign out the session of ``handler``'s cookie (if any) and clear the cookie; the e-mail
        it was of, or None."""
        raw = handler.get_secure_cookie(COOKIE_NAME, **self.get_secure_cookie_kwargs)
        email = None
        if raw:
            try:
                data = json.loads(raw.decode())
                sid, email = data.get("session"), data.get("email")
                if isinstance(sid, str):
                    SESSIONS.close(sid)
            except (ValueError, AttributeError):
                email = None
        self.clear_login_cookie(handler)
        return email if isinstance(email, str) else None

    async def get_user(self, handler) -> User | None:
        """The person of the request's login cookie (never a token, never anonymous)."""
        cached = getattr(handler, "_jupyter_current_user", None)
        if cached:
            return cached
        found = self.get_user_cookie(handler)
        user: User | None = await found if inspect.isawaitable(found) else found  # type: ignore[misc]
        if user is None and handler.get_cookie(COOKIE_NAME) is not None:
            self.clear_login_cookie(handler)
        return user

    def process_login_form(self, handler) -> User | None:
        return self.check_login(handler.get_argument("email", default=""),
                                handler.get_argument("password", default=""))

    def check_login(self, email: str, password: str) -> BookUser | None:
        """The person of ``email`` with session opened when ``password`` is theirs, else None
        (blocking: argon2 and the store; the login handler runs it off the event loop)."""
        from qpo.store import authenticate, session_scope

        email = email.strip()
        if not email or not password or len(email) > 320 or len(password) > 1024:
            return None
        try:
            with session_scope(_engine()) as s:
                actor = authenticate(s, email, password)
            row = _lookup(actor.email) if actor is not None else None
        except Exception:  # noqa: BLE001 - the page says why (store_problem), never the driver's text
            self.log.warning("the store could not be read to check a login")
            return None
        if row is None:
            return None
        return BookUser(username=row[0], name=row[1], display_name=f"{row[1]} ({row[2]})", role=row[2],
                        stamp=password_stamp(row[3]), session=SESSIONS.open(row[0]))

    def validate_security(self, app, ssl_options=None) -> None:
        """Sessions need a secret; a server reachable beyond this machine needs TLS in front of it."""
        if getattr(app, "ip", "127.0.0.1") not in ("127.0.0.1", "localhost", "::1") and not ssl_options:
            self.log.warning("the dashboard listens on %s without TLS: put TLS (a reverse proxy) in front of it",
                             getattr(app, "ip", "?"))


_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>qpo: sign in</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;background:#f4f6f8;margin:0}}
main{{max-width:360px;margin:12vh auto;background:#fff;padding:28px 32px;border-radius:8px;
box-shadow:0 1px 4px rgba(0,0,0,.12)}}
h1{{font-size:20px;margin:0 0 4px}} p.sub{{color:#566;margin:0 0 18px;font-size:14px}}
label{{display:block;font-size:14px;margin:12px 0 4px}}
input[type=email],input[type=password]{{width:100%;box-sizing:border-box;padding:8px;font-size:15px;
border:1px solid #bcc;border-radius:4px}}
button{{margin-top:18px;width:100%;padding:9px;font-size:15px;background:#2c3e50;color:#fff;border:0;border-radius:4px}}
.error{{color:#c0392b;font-size:14px;margin:10px 0 0}}
.info{{color:#1e6b3a;background:#eaf7ee;border:1px solid #b9e2c6;padding:10px;border-radius:4px;font-size:14px}}
.banner{{color:#c0392b;background:#fdecea;border:1px solid #f5c6cb;padding:10px;border-radius:4px;font-size:14px}}
</style></head><body><main>
<h1>Client portfolios</h1><p class="sub">Sign in with the e-mail and password of your qpo account.</p>
{banner}{info}
<form method="post" action="{action}">{xsrf}
<input type="hidden" name="next" value="{next}">
<label for="email">E-mail</label><input id="email" name="email" type="email" autocomplete="username"
 value="{email}" required autofocus>
<label for="password">Password</label><input id="password" name="password" type="password"
 autocomplete="current-password" required>
{message}<button type="submit" id="login_submit">Sign in</button></form>
</main></body></html>"""


class BookLoginHandler(LoginFormHandler):
    """``/login``: the sign-in page and its form (see the module)."""

    def _render(self, message=None, problem: str | None | bool = False):
        """The page; ``problem``: what :func:`store_problem` said (False: ask it now)."""
        from jupyter_server.utils import url_path_join

        error, info = (message or {}).get("error"), (message or {}).get("info")
        shown = store_problem() if isinstance(problem, bool) else problem
        self.write(_PAGE.format(
            banner=(f'<div class="qpo-error banner" role="alert"><b>The dashboard cannot open.</b> '
                    f"{html.escape(shown)}</div>" if shown else ""),
            info=f'<p class="info qpo-signed-out" role="status">{html.escape(info)}</p>' if info else "",
            action=html.escape(url_path_join(self.base_url, "login"), quote=True),
            xsrf=self.xsrf_form_html() if self.settings.get("xsrf_cookies") else "",
            next=html.escape(self.get_argument("next", default=self.base_url), quote=True),
            email=html.escape(self.get_argument("email", default="")[:320], quote=True),
            message=f'<p class="error" role="alert">{html.escape(error)}</p>' if error else ""))

    def _keys(self) -> tuple[str, str]:
        email = self.get_argument("email", default="").strip().lower()[:320]
        from qpo.workbench._auth_state import TRUSTED_PROXIES_ENV, client_address, trusted_proxies

        trusted = trusted_proxies(os.environ.get(TRUSTED_PROXIES_ENV))
        ip = client_address(self.request.remote_ip or "", self.request.headers.get("X-Forwarded-For"), trusted)
        return f"email:{email}", f"ip:{ip}"

    @allow_unauthenticated
    async def post(self):
        keys = self._keys()
        email, password = self.get_argument("email", default=""), self.get_argument("password", default="")
        loop = asyncio.get_running_loop()
        if any(IN_FLIGHT.waiting(k) >= MAX_WAITING for k in keys):  # a flood: refused at once, not queued
            self.set_status(429)
            self._render(message={"error": "Too many sign-in attempts at once for this e-mail or from this address. "
                                           "Wait a minute and try again."}, problem=None)
            return
        async with IN_FLIGHT.turn(*keys):  # one attempt at a time per e-mail and per address
            wait = FAILURES.reserve(*keys)  # counted as failed until it succeeds
            if wait:
                await asyncio.sleep(wait)
            user = await loop.run_in_executor(None, self.identity_provider.check_login, email, password)
            if user is not None:
                FAILURES.succeeded(*keys)
        if user is None:
            problem = await loop.run_in_executor(None, store_problem)
            self.set_status(401)
            self._render(message={"error": "Wrong e-mail or password. Try again."}, problem=problem)
            return
        self.current_user = user
        self.log.info("%s signed in", user.username)
        self.identity_provider.set_login_cookie(self, user)
        self._redirect_safe(self.get_argument("next", default=self.base_url))

    def check_xsrf_cookie(self):  # the form posts without a token when the app does not ask for one
        if self.settings.get("xsrf_cookies"):
            super().check_xsrf_cookie()


class BookLogoutHandler(BookLoginHandler):
    """``/logout``: ends the session of the request (on the server: its cookie opens nothing any
    more), clears the cookie and shows the sign-in page saying so (200)."""

    @allow_unauthenticated
    def get(self):
        email = self.identity_provider.end_session(self)
        if email:
            self.log.info("%s signed out", email)
        self.set_header("Cache-Control", "no-store")
        self._render(message={"info": SIGNED_OUT})

    @allow_unauthenticated
    async def post(self):  # a form's "Sign out" button
        self.get()


def signed_in(handler) -> str | None:
    """The e-mail of the person signed in on ``handler``'s request, or None."""
    user = getattr(handler, "current_user", None)
    return getattr(user, "username", None) if user else None


def visitor(handler) -> tuple[str, str] | None:
    """(e-mail, session id) of the person signed in on ``handler``'s request, or None."""
    user = getattr(handler, "current_user", None)
    email = getattr(user, "username", None) if user else None
    return (email, str(getattr(user, "session", "") or "")) if isinstance(email, str) and email else None


#: who the kernel being started is for (:func:`visitor` of the page's request), set by the
#: dashboard's page handler around the visit's kernel start (:mod:`qpo.workbench.dashboard_server`)
VISITOR: contextvars.ContextVar[tuple[str, str] | None] = contextvars.ContextVar("qpo_visitor", default=None)


class KernelOwners:
    """Who each visit's kernel is for: (e-mail, session id), recorded when it starts. A kernel
    started without a signed-in visitor belongs to nobody (no URL opens it)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._owner: dict[str, tuple[str, str]] = {}

    def record(self, kernel_id: str, owner: tuple[str, str], alive=None) -> None:
        """``kernel_id`` is ``owner``'s; kernels not in ``alive`` (a container of the running
        kernels' ids) are forgotten meanwhile."""
        with self._lock:
            if alive is not None:
                for gone in [k for k in self._owner if k not in alive]:
                    del self._owner[gone]
            self._owner[kernel_id] = owner

    def forget(self, kernel_id: str) -> None:
        with self._lock:
            self._owner.pop(kernel_id, None)

    def owner(self, kernel_id: str) -> tuple[str, str] | None:
        with self._lock:
            return self._owner.get(kernel_id)

    def may_use(self, kernel_id: str, handler) -> bool:
        """Whether the request of ``handler`` is of the session that owns ``kernel_id``."""
        who = visitor(handler)
        return who is not None and bool(kernel_id) and self.owner(kernel_id) == who


_HOST = re.compile(r"^[A-Za-z0-9.\-]+(:[0-9]{1,5})?$|^\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?$")


def widget_bundle_url(req) -> str | None:
    """The address of plotly's widget bundle on this server as the visit's browser reaches it (the
    request's scheme and host, the server's base URL; :mod:`qpo.workbench.dashboard_server`), or
    None when the request's host is not a plain host[:port], or the server runs with
    ``QPO_WIDGET_BUNDLE=inline`` (then the figures carry the bundle)."""
    import os

    from qpo.workbench.figure_widgets import BUNDLE_MODE_ENV, bundle_route

    if (os.environ.get(BUNDLE_MODE_ENV) or "").strip().lower() == "inline":
        return None
    request = getattr(req, "request", None)
    scheme, host = getattr(request, "protocol", ""), getattr(request, "host", "")
    if scheme not in ("http", "https") or not isinstance(host, str) or not _HOST.match(host):
        return None
    base = str(getattr(req, "settings", {}).get("base_url", "/") or "/")
    if not base.endswith("/"):
        base += "/"
    return f"{scheme}://{host}{base}{bundle_route()}"


def prelaunch_hook(req, notebook, cwd):
    """Put a first cell in the visit's notebook that tells its kernel who signed in (``QPO_USER``)
    and where this server serves plotly's widget bundle (``QPO_WIDGET_BUNDLE_URL``,
    :func:`widget_bundle_url`).
    The e-mail is written as a JSON string literal (never raw request text); without a signed-in
    person the visit is refused."""
    import nbformat

    email = signed_in(req)
    if not email:
        raise web.HTTPError(403, "sign in first")
    bundle = widget_bundle_url(req)
    cell = nbformat.v4.new_code_cell(
        f"import os as _qpo_os\n_qpo_os.environ['QPO_USER'] = {json.dumps(email)}\n"
        + (f"_qpo_os.environ['QPO_WIDGET_BUNDLE_URL'] = {json.dumps(bundle)}\n" if bundle else "")
        + "del _qpo_os\n"
        # plotly's widgets import nbformat, whose jsonschema loads an optional IRI grammar (1-2 s):
        # the dashboard validates no IRI, so its kernel goes without it
        "import sys as _qpo_sys\n_qpo_sys.modules.setdefault('rfc3987_syntax', None)\ndel _qpo_sys")
    cell.metadata["tags"] = ["qpo-signed-in"]
    notebook.cells.insert(0, cell)
    return notebook
