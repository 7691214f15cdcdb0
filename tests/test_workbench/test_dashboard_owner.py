"""A visit's kernel is its session's only, sign-in guesses are not sped up by sending them at once,
and ``qpo dashboard`` refuses a port or address it cannot listen on: the dashboard served by
`qpo dashboard advisor` as a user starts it, used over HTTP and the real websockets by two real
people (and an admin) signed in at once."""
from __future__ import annotations

import http.client
import json
import re
import subprocess
import sys
import threading
import time
import urllib.parse

import pytest

from tests.servers import PASSWORDS, free_port, give_passwords, serving, signed_in_opener, visit_dashboard
from tests.test_workbench.test_dashboard_login import (
    ADMIN,
    ANA,
    BEN,
    CLIENTS,
    OWN,
    _page_problems,
    _raw,
    _records,
)

#: the widgets whose state a test asks a kernel for (the first ones its dashboard made)
FIRST_WIDGETS = 15
#: the delays of the serial rule (qpo.workbench.auth: 2 free failures, then 0.5 s doubling up to 8 s)
SERIAL_DELAYS = [0.0, 0.0, 0.5, 1.0, 2.0, 4.0, 8.0]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    import os

    from qpo.store import connect
    from qpo.workbench.demo import seed_demo

    home = tmp_path_factory.mktemp("qpo_home")
    old = os.environ.get("QPO_HOME")
    os.environ["QPO_HOME"] = str(home)
    try:
        engine = connect()
        seed_demo(engine)
        give_passwords(engine)
        port = free_port()
        url = f"http://127.0.0.1:{port}/"
        with serving([sys.executable, "-m", "qpo.cli", "dashboard", "advisor", "--port", str(port)],
                     url + "voila/static/voila.js", home / "voila.log"):
            yield url, port, home
    finally:
        if old is None:
            os.environ.pop("QPO_HOME", None)
        else:
            os.environ["QPO_HOME"] = old


def _cookie(opener) -> str:
    jar = next(h.cookiejar for h in opener.handlers if hasattr(h, "cookiejar"))
    return "; ".join(f"{c.name}={c.value}" for c in jar)


def _own_visit(url: str, opener) -> tuple[str, dict]:
    """A visit of ``opener``'s session whose page holds its recorded values (visited once more when
    a loaded machine's page lacked them, as test_dashboard_login does)."""
    for _ in (1, 2):
        page = visit_dashboard(opener, url, timeout=300)
        rec = _records(page)
        if {"n_portfolios", "portfolio"} <= set(rec):
            return page, rec
    raise AssertionError(f"the page lacks its recorded values twice: {_page_problems(page)}")


def _delete(url: str, opener) -> int:
    import urllib.error
    import urllib.request

    try:
        with opener.open(urllib.request.Request(url, method="DELETE", headers=_xsrf(opener)), timeout=120) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code


def _socket_status(url: str, path: str, opener) -> int:
    """The status of a websocket handshake to ``path`` with ``opener``'s session (101: opened)."""
    import websocket  # websocket-client, a jupyter_server dependency

    try:
        ws = websocket.create_connection(url.replace("http", "ws", 1) + path, timeout=60, cookie=_cookie(opener))
    except websocket.WebSocketBadStatusException as exc:
        return exc.status_code
    ws.close()
    return 101


def _kernel_state(url: str, kernel: str, opener) -> str:
    """What the kernel's widget channel tells ``opener``'s session: its comms' states (the widgets'
    values, as Ben's forged page read Ana's clients before the fix), as text."""
    import uuid

    import websocket

    ws = websocket.create_connection(f"{url.replace('http', 'ws', 1)}api/kernels/{kernel}/channels?session_id=t",
                                     timeout=60, cookie=_cookie(opener))
    got: list[str] = []
    try:
        def send(msg_type, content):
            ws.send(json.dumps({"header": {"msg_id": uuid.uuid4().hex, "msg_type": msg_type, "username": "t",
                                           "session": "t", "date": "", "version": "5.3"}, "parent_header": {},
                                "metadata": {}, "content": content, "channel": "shell", "buffers": []}))

        send("comm_info_request", {"target_name": "jupyter.widget"})
        comms: list[str] = []
        deadline = time.time() + 60
        while time.time() < deadline and not comms:
            msg = json.loads(ws.recv())
            if msg.get("msg_type") == "comm_info_reply":
                comms = list(msg["content"].get("comms", {}))
        asked = comms[:FIRST_WIDGETS]  # the first widgets made (the portfolio's dropdown among them), not
        for c in asked:  # every figure's data: the test reads what a forger would, not megabytes
            send("comm_msg", {"comm_id": c, "data": {"method": "request_state"}})
        ws.settimeout(30)
        try:
            while len(got) < len(asked):
                msg = json.loads(ws.recv())
                if msg.get("msg_type") == "comm_msg":
                    got.append(json.dumps(msg["content"]))
        except websocket.WebSocketTimeoutException:
            pass
    finally:
        ws.close()
    return "\n".join(got)


def test_a_kernel_is_its_sessions_only(served):
    """Ana's visit starts her kernel; Ben, an admin, and Ana herself in another session get 403 on
    every URL naming it (its model, its widget websocket, its actions, Voila's execution socket and
    shutdown), and so does any kernel id that is nobody's; Ana's own session uses it."""
    url, _, _ = served
    ana = signed_in_opener(url, ANA)
    page, records = _own_visit(url, ana)
    assert records["n_portfolios"] == 2 and records["portfolio"] in OWN[ANA], records
    kernel = re.search(r'"kernelId": *"([0-9a-f-]+)"', page)[1]
    # Ana's own session: the kernel's model, its widgets (her clients), a websocket
    status, _, body = _raw(url + f"api/kernels/{kernel}", opener=ana)
    assert status == 200 and json.loads(body)["id"] == kernel
    assert _socket_status(url, f"api/kernels/{kernel}/channels", ana) == 101
    state = _kernel_state(url, kernel, ana)
    assert "Balanced Growth" in state, state[:500]

    nobody = "0b7f4c8e-4a57-4f7a-9d53-6c3f1d2e9a10"
    for who, opener in ((BEN, signed_in_opener(url, BEN)), (ADMIN, signed_in_opener(url, ADMIN)),
                        ("ana in another session", signed_in_opener(url, ANA))):
        for kid in (kernel, nobody):
            for path in (f"api/kernels/{kid}", f"api/kernels/{kid}/interrupt", f"api/kernels/{kid}/restart"):
                status, _, body = _raw(url + path, opener=opener)
                assert status == 403, (who, path, status)
                assert not any(c in body for c in CLIENTS.values()) and kernel not in body
            for path in (f"api/kernels/{kid}/restart", f"api/kernels/{kid}/interrupt", f"voila/api/shutdown/{kid}"):
                status, _, _ = _raw(url + path, data=b"", opener=opener, headers=_xsrf(opener))
                assert status == 403, (who, "POST", path, status)
            assert _delete(url + f"api/kernels/{kid}", opener) == 403, (who, "DELETE", kid)
            for path in (f"api/kernels/{kid}/channels", f"api/kernels/{kid}/channels?session_id=x",
                         f"voila/execution/{kid}"):
                got = _socket_status(url, path, opener)
                assert got == 403, (who, path, got)
            # Voila's query socket (of preheated kernels) is not served here: the page's route sends
            # the request to the files, which have no such file
            status, _, body = _raw(url + f"voila/query/{kid}", opener=opener)
            assert status in (403, 404) and not any(c in body for c in CLIENTS.values()), (who, status)
    # Ana's kernel survived every try (no shutdown, no restart) and is still hers
    status, _, body = _raw(url + f"api/kernels/{kernel}", opener=ana)
    assert status == 200 and json.loads(body)["id"] == kernel
    assert "Balanced Growth" in _kernel_state(url, kernel, ana)
    # her own page: a kernel action the dashboard does not serve is 404 to her (403 to everyone else)
    assert _raw(url + f"api/kernels/{kernel}/interrupt", opener=ana)[0] == 404
    # and her page's shutdown on leaving (what the others were refused) shuts it down
    assert _raw(url + f"voila/api/shutdown/{kernel}", data=b"", opener=ana, headers=_xsrf(ana))[0] == 204
    assert _raw(url + f"api/kernels/{kernel}", opener=ana)[0] == 403  # gone: nobody's


def _xsrf(opener) -> dict:
    """The XSRF header of ``opener``'s session (as the page's script sends with a POST): a POST
    without it is refused before any kernel is looked at, which would prove nothing here."""
    import http.cookiejar
    import secrets

    jar = next(h.cookiejar for h in opener.handlers if hasattr(h, "cookiejar"))
    token = next((c.value for c in jar if c.name == "_xsrf"), None)
    if token is None:  # the token a page's script would hold: a cookie and the same value in the header
        token = secrets.token_hex(16)
        jar.set_cookie(http.cookiejar.Cookie(0, "_xsrf", token, None, False, "127.0.0.1", False, False, "/", True,
                                             False, None, False, None, None, {}))
    return {"X-XSRFToken": token}


def test_each_page_runs_on_its_own_kernel_and_shows_its_own_book(served):
    """Ben's and Ana's visits at the same time: each page runs its own kernel (two ids) and shows
    its own clients; neither page's execution socket runs the other's kernel."""
    url, _, _ = served
    ana, ben = signed_in_opener(url, ANA), signed_in_opener(url, BEN)
    pages, records = {}, {}

    def visit(who, opener):
        pages[who], records[who] = _own_visit(url, opener)

    threads = [threading.Thread(target=visit, args=a) for a in ((ANA, ana), (BEN, ben))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(400)
    kernels = {w: re.search(r'"kernelId": *"([0-9a-f-]+)"', p)[1] for w, p in pages.items()}
    assert kernels[ANA] != kernels[BEN]
    assert records[ANA]["portfolio"] in OWN[ANA] and records[BEN]["portfolio"] in OWN[BEN], records
    for who, other in ((ANA, BEN), (BEN, ANA)):
        mine = {CLIENTS[p] for p in OWN[who]}
        theirs = {CLIENTS[p] for p in OWN[other]}
        state = _kernel_state(url, kernels[who], ana if who == ANA else ben)
        assert any(c in state or p in state for p, c in CLIENTS.items() if c in mine), (who, state[:300])
        assert not any(p in state for p in OWN[other]) and not any(c in state for c in theirs)
        assert _socket_status(url, f"voila/execution/{kernels[other]}", ana if who == ANA else ben) == 403


def _post_login(port: int, email: str, password: str, source: str) -> tuple[int, float]:
    """(status, seconds) of one sign-in from client address ``source`` (a loopback address)."""
    start = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300, source_address=(source, 0))
    try:
        conn.request("POST", "/login", body=urllib.parse.urlencode({"email": email, "password": password, "next": "/"}),
                     headers={"Content-Type": "application/x-www-form-urlencoded"})
        resp = conn.getresponse()
        resp.read()
        return resp.status, time.perf_counter() - start
    finally:
        conn.close()


def test_parallel_wrong_guesses_wait_the_sum_of_the_serial_delays(served):
    """Seven wrong guesses for one e-mail sent at once (from one address) take at least the sum of
    the delays the same guesses made one by one get (0+0+0.5+1+2+4+8 = 15.5 s; before, they slept
    side by side: ~8 s); another person signing in meanwhile (another address) answers at once."""
    _, port, _ = served
    n = len(SERIAL_DELAYS)
    results: list[tuple[int, float]] = []
    lock = threading.Lock()

    def guess(i):
        got = _post_login(port, "burst.guess@example.com", f"guess {i}", "127.0.0.3")
        with lock:
            results.append(got)

    start = time.perf_counter()
    threads = [threading.Thread(target=guess, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    time.sleep(1.5)  # the burst is waiting its delays: Ana signs in from her own address
    ana_status, ana_took = _post_login(port, ANA, PASSWORDS[ANA], "127.0.0.2")
    for t in threads:
        t.join(300)
    total = time.perf_counter() - start
    assert [s for s, _ in results] == [401] * n, results
    assert total >= 0.95 * sum(SERIAL_DELAYS), (total, sorted(t for _, t in results))
    # the slowest guess waited the whole line: the sum, not the longest single delay
    assert max(t for _, t in results) >= 0.95 * sum(SERIAL_DELAYS)
    assert ana_status == 302 and ana_took < 6.0, (ana_status, ana_took)
    print(f"{n} parallel wrong guesses: {total:.1f} s (serial rule {sum(SERIAL_DELAYS):.1f} s); "
          f"another person's sign-in meanwhile {ana_took:.2f} s")


@pytest.mark.parametrize("args, says", [
    (["--port", "-5"], "--port: must be a port number from 1 to 65535, got '-5'"),
    (["--port", "99999"], "--port: must be a port number from 1 to 65535, got '99999'"),
    (["--port", "0"], "--port: must be a port number from 1 to 65535, got '0'"),
    (["--port", "http"], "--port: must be a port number from 1 to 65535, got 'http'"),
    (["--ip", "bad host!"], "--ip: must be an IP address"),
    (["--ip", "999.1.1.1"], "--ip: must be an IP address"),
])
def test_the_command_refuses_a_port_or_address_it_cannot_listen_on(args, says):
    out = subprocess.run([sys.executable, "-m", "qpo.cli", "dashboard", "advisor", *args], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 2, (out.returncode, out.stdout, out.stderr)
    assert says in out.stderr and "Traceback" not in out.stderr and "gaierror" not in out.stderr, out.stderr
    assert "running at" not in out.stdout and "serving" not in out.stdout
