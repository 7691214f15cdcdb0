"""Start a workbench server as a user would (its documented command) and stop it."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.conftest import ROOT


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def serving(cmd: list[str], probe: str, log_path, timeout: float = 120):
    """Run ``cmd`` until ``probe`` answers; yield the probe's body; stop the server after."""
    log = open(log_path, "w")
    # its own process group: the server's helpers (uvicorn, huey workers) are stopped with it;
    # Jupyter kernels start sessions of their own and are shut down by the server on SIGTERM
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            env=dict(os.environ), cwd=ROOT, start_new_session=True)
    try:
        deadline = time.time() + timeout
        body = None
        while time.time() < deadline:
            try:
                with urllib.request.urlopen(probe, timeout=5) as resp:
                    body = resp.read().decode()
                break
            except OSError:
                if proc.poll() is not None:
                    break
                time.sleep(0.5)
        if body is None:
            pytest.fail(f"{' '.join(cmd)} did not serve {probe}: {open(log_path).read()[-3000:]}")
        yield body
    finally:
        _stop_group(proc)
        log.close()


@contextmanager
def team_dask_cluster(folder: Path, env: dict[str, str] | None = None, worker_env: dict[str, str] | None = None,
                      worker_name: str | None = None):
    """``dask scheduler`` and one ``dask worker`` (one thread) started as a team would, on 127.0.0.1
    at free ports, each in its own process group with its log in ``folder``; yields the scheduler's
    address, its dashboard port and the two processes, and stops both after."""
    import sys

    dask = str(Path(sys.executable).with_name("dask"))
    env = dict(os.environ) if env is None else env
    port, board = free_port(), free_port()
    address = f"tcp://127.0.0.1:{port}"

    def start(cmd: list[str], log: Path, environ: dict[str, str]) -> subprocess.Popen:
        return subprocess.Popen(cmd, stdout=log.open("w"), stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True, cwd=folder, env={**environ, "PYTHONUNBUFFERED": "1"})

    scheduler = start([dask, "scheduler", "--host", "127.0.0.1", "--port", str(port), "--dashboard-address",
                       f"127.0.0.1:{board}"], folder / "scheduler.log", env)
    worker = None
    try:
        worker = start([dask, "worker", address, "--host", "127.0.0.1", "--nthreads", "1", "--nworkers", "1",
                        "--no-dashboard", *(["--name", worker_name] if worker_name else [])],
                       folder / "worker.log", env if worker_env is None else worker_env)
        yield address, board, scheduler, worker
    finally:
        if worker is not None:
            _stop_group(worker)
        _stop_group(scheduler)


class Webhook:
    """What :func:`webhook_server` received: ``posts`` as (path, JSON body, content type), ``bodies``
    the JSON bodies alone (both filled as requests arrive); ``status`` is what it answers (settable)."""

    def __init__(self):
        self.posts: list[tuple[str, object, str | None]] = []
        self.bodies: list = []
        self.status = 200
        self.url = ""


@contextmanager
def webhook_server(path: str = "/hook/T0KEN"):
    """A real webhook (http.server) on 127.0.0.1 recording each POST's JSON; yields a :class:`Webhook`
    whose ``url`` ends in ``path``."""
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    hook = Webhook()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - http.server's hook name
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
            hook.posts.append((self.path, body, self.headers.get("Content-Type")))
            hook.bodies.append(body)
            self.send_response(hook.status)
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    hook.url = f"http://127.0.0.1:{server.server_address[1]}{path}"
    try:
        yield hook
    finally:
        server.shutdown()
        server.server_close()


def _alive(pgid: int) -> bool:
    """Whether a process of the group still runs (zombies, which a container's init may never
    reap, do not count)."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":  # fields: state, ppid, pgrp, ...
            return True
    return False


def _stop_group(proc: subprocess.Popen, grace: float = 20) -> None:
    """SIGTERM to the server's whole process group, SIGKILL to whatever is left after ``grace`` s.
    Nothing may outlive a test: a stray server holds the suite's output open and stalls CI."""
    pgid = proc.pid
    try:
        os.killpg(pgid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.time() + grace
    while time.time() < deadline:
        proc.poll()
        if not _alive(pgid):
            return
        time.sleep(0.2)
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(timeout=10)


#: the demo book's people and the passwords the dashboard tests give them
PASSWORDS = {"ana.silva@example.com": "ana's own pw 1", "ben.okafor@example.com": "ben's own pw 2",
             "rita.chen@example.com": "rita's own pw 3", "admin@example.com": "the admin's pw 4"}


def give_passwords(engine=None) -> dict[str, str]:
    """Set :data:`PASSWORDS` for the demo people (``qpo user passwd`` as each one): the login needs one."""
    from qpo.store import connect, session_scope, set_password

    with session_scope(engine or connect()) as s:
        for email, password in PASSWORDS.items():
            set_password(s, email, email, password)
    return PASSWORDS


def signed_in_opener(base_url: str, email: str, password: str | None = None):
    """A urllib opener holding the session of ``email`` (signed in through ``/login``)."""
    import http.cookiejar
    import urllib.error
    import urllib.parse

    class _Stay(urllib.request.HTTPRedirectHandler):  # signing in must not visit the dashboard (a kernel)
        def redirect_request(self, *args, **kwargs):
            return None

    jar = http.cookiejar.CookieJar()
    login = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar), _Stay)
    form = urllib.parse.urlencode({"email": email, "password": password or PASSWORDS[email], "next": "/"}).encode()
    try:
        login.open(base_url + "login", data=form, timeout=60).close()
        status = 200
    except urllib.error.HTTPError as exc:
        status = exc.code
    assert status == 302, f"signing in as {email} answered {status}"
    assert any(c.name == "qpo-dashboard-session" for c in jar), "no session cookie after signing in"
    return urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))


def visit_dashboard(opener, base_url: str, timeout: float = 240) -> str:
    """A signed-in visit of the dashboard as a browser makes it, without the browser: the page
    (Voila answers at once and starts the visit's kernel; the dashboard renders progressively), then
    Voila's execution websocket asked to run the notebook, as the page's script does. Returns the
    page with each cell's outputs appended as Voila writes them into a page it renders whole
    (``<script type="application/vnd.voila.cell-output+json">``), so that a test reads the outputs
    of either mode the same way."""
    import json
    import re

    import websocket  # websocket-client, a jupyter_server dependency

    with opener.open(base_url, timeout=timeout) as resp:
        page = resp.read().decode()
    kernel = re.search(r'"kernelId": *"([0-9a-f-]+)"', page)
    if kernel is None:  # the login page, or an error page: nothing runs
        return page
    jar = next(h.cookiejar for h in opener.handlers if hasattr(h, "cookiejar"))
    ws = websocket.create_connection(f"{base_url.replace('http', 'ws', 1)}voila/execution/{kernel[1]}",
                                     timeout=timeout, cookie="; ".join(f"{c.name}={c.value}" for c in jar))
    outputs = []
    try:
        while json.loads(ws.recv()).get("action") != "initialized":
            pass
        ws.send(json.dumps({"action": "execute", "payload": {"kernel_id": kernel[1]}}))
        while True:
            msg = json.loads(ws.recv())
            if msg.get("action") == "execution_error":
                raise AssertionError(f"the dashboard's execution was refused: {msg.get('payload')}")
            if msg.get("action") != "execution_result":
                continue
            payload = msg["payload"]
            outputs += payload["output_cell"].get("outputs", [])
            if payload["cell_index"] >= payload["total_cell"] - 1:
                break
    finally:
        ws.close()
    return page + "".join(f'\n<script type="application/vnd.voila.cell-output+json">\n{json.dumps(o)}\n</script>'
                          for o in outputs)
