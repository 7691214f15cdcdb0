"""Serving the Voila advisor dashboards on localhost.

Each visit starts a Jupyter kernel (about 300 MB with qpo loaded). Kernels idle for longer than
``cull_idle_timeout`` seconds are shut down, checked every ``cull_interval`` seconds, also while a
tab still holds them (a closed or forgotten tab may stay "connected" until its websocket times
out): a dashboard left idle that long needs a reload. Defaults: 300 s and 60 s, or the
environment's ``QPO_DASHBOARD_CULL_IDLE`` / ``QPO_DASHBOARD_CULL_INTERVAL`` (whole seconds;
an idle timeout of 0 keeps kernels forever). Voila keeps no pool of preheated kernels here, so
an idle server runs none.

A visit's notebook runs on the server with generous waits (:data:`EXECUTION_OPTIONS`): Voila's
executor by default waits only 4 s for a cell's outputs once the kernel says the cell finished, and
on a loaded machine the outputs that came later were dropped without a word (the page then lacked
what the cell displayed); it now waits :data:`IOPUB_TIMEOUT` s, and :data:`KERNEL_STARTUP_TIMEOUT`
s for a new kernel (60 by default).

The page is rendered progressively (Voila's ``progressive_rendering``): the server answers with
the page at once and starts the visit's kernel, the browser loads the page's scripts meanwhile,
then asks the server (over Voila's execution websocket, signed-in people only) to run the
notebook and shows each cell's outputs as they come. Without it the server ran the whole
notebook before sending the page, and the browser's 1-2 s of scripts came after: the first
chart came 5.05 s after login here (median), now 4.40 s (``benchmarks/dashboard_browser.py``).

A visit's page talks to its kernel only through widget messages: Voila makes its kernel manager
with ``allowed_message_types`` of the comms, ``kernel_info_request`` and ``shutdown_request``
(:data:`ALLOWED_MESSAGE_TYPES`), so a signed-in person's script can never send an
``execute_request`` and run code in the kernel (as the server's user, with the store's URL); the
suite holds it over the real websocket (tests/test_workbench/test_dashboard_login.py). Each visit's kernel is its session's only
(:mod:`qpo.workbench.dashboard_server`): any URL naming another session's kernel answers 403
(tests/test_workbench/test_dashboard_owner.py).
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

from qpo import _checks, config
from qpo.errors import InvalidValueError, UnknownOptionError

CULL_IDLE_ENV = "QPO_DASHBOARD_CULL_IDLE"
CULL_INTERVAL_ENV = "QPO_DASHBOARD_CULL_INTERVAL"
DEFAULT_CULL_IDLE = 300
DEFAULT_CULL_INTERVAL = 60
#: seconds Voila's executor waits for a finished cell's outputs (its default, 4, loses them under load)
IOPUB_TIMEOUT = 120
#: seconds Voila waits for a visit's new kernel to answer
KERNEL_STARTUP_TIMEOUT = 180
#: the only messages a page may send its kernel (Voila's own list, set where it makes its kernel
#: manager, which a command-line option cannot widen or narrow): the widgets' comms, the kernel's
#: description and its shutdown
ALLOWED_MESSAGE_TYPES = ("comm_open", "comm_close", "comm_msg", "comm_info_request", "kernel_info_request",
                         "shutdown_request")
#: the executor's options of :func:`voila_command`
EXECUTION_OPTIONS = (f"--VoilaExecutor.iopub_timeout={IOPUB_TIMEOUT}",
                     f"--VoilaExecutor.startup_timeout={KERNEL_STARTUP_TIMEOUT}",
                     "--VoilaConfiguration.progressive_rendering=True")


def available_dashboards() -> dict[str, Path]:
    d = config.project_root() / "voila_apps"
    return {p.stem: p for p in sorted(d.glob("*.ipynb"))} if d.is_dir() else {}


def _seconds(name: str, value: object, env: str, default: int, lo: int) -> int:
    """``value`` as whole seconds >= ``lo``; None means the environment variable ``env`` or ``default``."""
    if value is None:
        raw = os.environ.get(env, "").strip()
        if not raw:
            return default
        try:
            value = int(raw)
        except ValueError:
            raise InvalidValueError(f"{env} must be a whole number of seconds >= {lo}, got {raw!r}") from None
        name = env
    return _checks.whole(name, value, lo, hint="whole seconds")


def cull_options(cull_idle_timeout: int | None = None, cull_interval: int | None = None) -> list[str]:
    """Voila's options that shut down kernels idle longer than ``cull_idle_timeout`` seconds (0:
    never), checked every ``cull_interval`` seconds, connected or not (see the module's docstring)."""
    idle = _seconds("cull_idle_timeout", cull_idle_timeout, CULL_IDLE_ENV, DEFAULT_CULL_IDLE, 0)
    interval = _seconds("cull_interval", cull_interval, CULL_INTERVAL_ENV, DEFAULT_CULL_INTERVAL, 1)
    return [f"--MappingKernelManager.cull_idle_timeout={idle}", f"--MappingKernelManager.cull_interval={interval}",
            "--MappingKernelManager.cull_connected=True", "--MappingKernelManager.cull_busy=False"]


def voila_command(name: str, port: int = 8866, *, open_browser: bool = False, cull_idle_timeout: int | None = None,
                  cull_interval: int | None = None, ip: str = "127.0.0.1") -> list[str]:
    """The command line that serves dashboard ``name``: Voila behind the book's login
    (:mod:`qpo.workbench.dashboard_server`, :mod:`qpo.workbench.auth`), sources stripped,
    tracebacks hidden, the ``lab`` template (no CDN), bound to ``ip`` (127.0.0.1 by default),
    culling idle kernels (:func:`cull_options`), waiting generously for a cell's outputs
    (:data:`EXECUTION_OPTIONS`)."""
    apps = available_dashboards()
    if name not in apps:
        raise UnknownOptionError("dashboard", name, apps)
    return [sys.executable, "-m", "qpo.workbench.dashboard_server", str(apps[name]), f"--port={port}",
            "--template=lab", f"--Voila.ip={ip}", "--no-browser" if not open_browser else "--Voila.open_browser=True",
            "--show_tracebacks=False", "--strip_sources=True",
            "--Voila.port_retries=0",  # a busy port is an error: never served on another than the one announced
            "--Voila.identity_provider_class=qpo.workbench.auth.BookIdentityProvider",
            *cull_options(cull_idle_timeout, cull_interval), *EXECUTION_OPTIONS]


def exec_server(cmd: list[str], cwd: str | None = None) -> None:
    """Replace this process with the server ``cmd``: signals (Ctrl-C, a scheduler's SIGTERM) then
    reach the server itself, and no orphaned server outlives a stopped ``qpo`` command."""
    import os

    sys.stdout.flush()
    sys.stderr.flush()
    if cwd:
        os.chdir(cwd)
    os.execv(cmd[0], cmd)


def serve(name: str, port: int = 8866, *, open_browser: bool = False, cull_idle_timeout: int | None = None,
          cull_interval: int | None = None, ip: str = "127.0.0.1") -> None:
    """Serve dashboard ``name`` until interrupted (this process becomes the Voila server)."""
    import os

    from qpo.workbench._auth_state import TRUSTED_PROXIES_ENV, trusted_proxies

    proxies = trusted_proxies(os.environ.get(TRUSTED_PROXIES_ENV))  # a bad value refused now, not at each sign-in
    cmd = voila_command(name, port, open_browser=open_browser, cull_idle_timeout=cull_idle_timeout,
                        cull_interval=cull_interval, ip=ip)
    host = "127.0.0.1" if ip in ("127.0.0.1", "localhost") else ip
    print(f"serving {name} on http://{host}:{port}/ behind a login (the people of `qpo user list`; Ctrl-C stops)",
          flush=True)
    if host != "127.0.0.1":
        print(f"the dashboard listens on {ip}: passwords and client data cross the network in clear unless TLS "
              "(a reverse proxy such as nginx or Caddy with a certificate) is put in front of it", flush=True)
    if proxies:
        print(f"sign-in delays count each client by the X-Forwarded-For of {', '.join(sorted(proxies))} "
              f"({TRUSTED_PROXIES_ENV})", flush=True)
    exec_server(cmd, cwd=str(config.project_root() / "voila_apps"))
