"""The dashboard's login (qpo.workbench.auth), served by `qpo dashboard advisor` as a user starts it
and used over HTTP and in headless Chromium: nothing without a session, wrong passwords refused
and slowed down, each advisor sees only their own clients (two at once), a session ends with its
password, and no secret of the store's URL reaches a page."""
from __future__ import annotations

import json
import re
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

from tests.browser import browser_page, chromium_path, sign_in
from tests.servers import PASSWORDS, free_port, give_passwords, serving, signed_in_opener, visit_dashboard

ANA, BEN, RITA, ADMIN = "ana.silva@example.com", "ben.okafor@example.com", "rita.chen@example.com", "admin@example.com"
OWN = {ANA: {"Balanced Growth", "Conservative Income"}, BEN: {"Min-Variance Core", "Tech Tilt"}}
CLIENTS = {"Balanced Growth": "Harper Family Trust", "Conservative Income": "Dr. L. Moreau",
           "Min-Variance Core": "Okafor Endowment", "Tech Tilt": "Nakamura Ventures LLC"}


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def _raw(url: str, data: bytes | None = None, headers: dict | None = None, opener=None):
    """(status, headers, body) of one request, redirects not followed."""
    opener = opener or urllib.request.build_opener(_NoRedirect)
    req = urllib.request.Request(url, data=data, headers=headers or {})
    try:
        with opener.open(req, timeout=120) as resp:
            return resp.status, dict(resp.headers), resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read().decode()


def _login_form(email: str, password: str) -> bytes:
    return urllib.parse.urlencode({"email": email, "password": password, "next": "/"}).encode()


def _bundle_path() -> str:
    from qpo.workbench.figure_widgets import bundle_route

    return bundle_route()


def _records(page: str) -> dict:
    return {m[0]: json.loads(m[1]) for m in re.findall(r'"name": "(\w+)", "value": ([^}]*)\}', page)}


def _page_problems(page: str) -> str:
    """What a dashboard page says went wrong: its cells' error and stream outputs, its qpo error
    messages (for a test's failure message)."""
    said = []
    for raw in re.findall(r'<script type="application/vnd.voila.cell-output\+json">\s*(.*?)\s*</script>', page, re.S):
        try:
            out = json.loads(raw)
        except ValueError:
            continue
        if out.get("output_type") == "error":
            said.append(f"error {out.get('ename')}: {out.get('evalue')} {' '.join(out.get('traceback') or [])[:500]}")
        elif out.get("output_type") == "stream":
            said.append(f"{out.get('name')}: {str(out.get('text'))[:500]}")
    said += [html_text[:500] for html_text in re.findall(r"qpo-error[^>]*>(.*?)</div>", page, re.S)]
    return "\n".join(said) or f"(no error output; the page's last 1500 characters: {page[-1500:]})"


def _visit_records(url: str, who: str, log_path, *names: str) -> tuple[str, dict]:
    """The dashboard page of ``who`` and its recorded values, which must hold ``names``. A visit
    whose page lacks them is made once more (a warning says what the first page showed); a second
    such page fails the test with what the page and the server's log said."""
    import warnings

    for attempt in (1, 2):
        page = visit_dashboard(signed_in_opener(url, who), url, timeout=300)
        rec = _records(page)
        if all(n in rec for n in names):
            return page, rec
        problems = _page_problems(page)
        if attempt == 1:
            warnings.warn(f"{who}'s page lacked {names} (visited again): {problems}", stacklevel=2)
    log = log_path.read_text()[-3000:] if log_path.exists() else "(no log)"
    pytest.fail(f"{who}'s dashboard page lacks the recorded {[n for n in names if n not in rec]} twice; it says:\n"
                f"{problems}\nthe server's log ends with:\n{log}")


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
            yield url, engine, home
    finally:
        if old is None:
            os.environ.pop("QPO_HOME", None)
        else:
            os.environ["QPO_HOME"] = old


def test_without_a_session_every_url_is_the_login_page_or_403(served):
    url, _, _ = served
    kernel = "0b7f4c8e-4a57-4f7a-9d53-6c3f1d2e9a10"
    for path in ("", "?portfolio=Tech+Tilt", "advisor.ipynb", "voila/render/advisor.ipynb"):
        status, headers, body = _raw(url + path)
        assert status == 302 and headers["Location"].startswith("/login?next="), (path, status)
        assert "Harper" not in body and "Nakamura" not in body
    for path in (f"api/kernels/{kernel}", f"api/kernels/{kernel}/channels", "voila/files/advisor.ipynb",
                 "voila/files/advisor.py", "voila/files/logo.png", f"voila/api/shutdown/{kernel}",
                 "api/kernels", "api/sessions", f"voila/execution/{kernel}", _bundle_path()):
        status, _, body = _raw(url + path)
        assert status in (302, 403), (path, status)
        assert "Harper" not in body and "import" not in body and '"id"' not in body, (path, body[:300])
    # the websockets asked for as a browser asks (an upgrade): refused before any opens
    upgrade = {"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
               "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}
    for path in (f"api/kernels/{kernel}/channels", f"voila/execution/{kernel}"):
        assert _raw(url + path, headers=upgrade)[0] in (302, 403), path
    # a POST to the API is 403 (never a redirect to follow)
    status, _, _ = _raw(url + f"voila/api/shutdown/{kernel}", data=b"")
    assert status == 403
    # the login page itself: the form, no data
    status, _, page = _raw(url + "login")
    assert status == 200 and 'name="email"' in page and 'type="password"' in page and "Harper" not in page
    # a forged cookie is no session
    status, headers, _ = _raw(url, headers={"Cookie": 'qpo-dashboard-session="{\\"email\\": \\"admin@example.com\\"}"'})
    assert status == 302 and headers["Location"].startswith("/login")


def test_a_wrong_password_gets_the_page_again_and_repeated_failures_are_slowed(served):
    url, _, _ = served
    took = []
    for _ in range(5):
        start = time.perf_counter()
        status, headers, page = _raw(url + "login", data=_login_form(BEN, "not ben's password"))
        took.append(time.perf_counter() - start)
        assert status == 401 and "Wrong e-mail or password" in page and "qpo-dashboard-session=" not in str(headers)
        assert 'value="ben.okafor@example.com"' in page  # the e-mail kept, escaped; the password never
        assert "not ben&#x27;s password" not in page and "not ben's password" not in page
    # delays of 0, 0, 0.5, 1 and 2 s: the lower bounds are the server's sleeps; the first two are not
    # delayed (compared with the fifth rather than a fixed bound: a loaded machine checks slowly)
    assert took[3] >= 0.9 and took[4] >= 1.9 and max(took[:2]) < took[4] - 1.0, took
    # an unknown person and an empty form: the same page, the same words
    status, _, page = _raw(url + "login", data=_login_form("nobody@example.com", "x"))
    assert status == 401 and "Wrong e-mail or password" in page
    # the right password still works (after the delay) and clears the count
    start = time.perf_counter()
    status, headers, _ = _raw(url + "login", data=_login_form(BEN, PASSWORDS[BEN]))
    assert status == 302 and headers["Location"] == "/" and time.perf_counter() - start >= 3.5
    status, _, _ = _raw(url + "login", data=_login_form(BEN, PASSWORDS[BEN]))
    assert status == 302
    # a person without a password cannot sign in at all
    from qpo.store import add_user, session_scope

    with session_scope(served[1]) as s:
        add_user(s, ADMIN, "nopw@example.com", "No Password", "advisor")
    status, _, _ = _raw(url + "login", data=_login_form("nopw@example.com", ""))
    assert status == 401


def test_a_flood_of_sign_ins_is_refused_at_once_rather_than_queued(served):
    """More than MAX_WAITING attempts waiting for one e-mail (or address) are answered 429 at once:
    a flood neither queues without bound nor gets past the delays; a right password still works."""
    from concurrent.futures import ThreadPoolExecutor

    from qpo.workbench.auth import MAX_WAITING

    url, _, _ = served
    n = MAX_WAITING + 6

    def attempt(_):
        start = time.perf_counter()
        status, headers, page = _raw(url + "login", data=_login_form("flood@example.com", "guess"))
        return status, time.perf_counter() - start, page, str(headers)

    with ThreadPoolExecutor(n) as pool:
        answers = list(pool.map(attempt, range(n)))
    statuses = [a[0] for a in answers]
    assert set(statuses) <= {401, 429} and statuses.count(401) <= MAX_WAITING + 2, statuses
    refused = [a for a in answers if a[0] == 429]
    assert refused, statuses  # the queue holds at most MAX_WAITING: the rest are refused
    assert all(a[1] < 5.0 and "Too many sign-in attempts" in a[2] and "qpo-dashboard-session=" not in a[3]
               and "guess" not in a[2] for a in refused)
    # the delays still applied to those that waited: the last to be answered 401 waited seconds
    assert max(a[1] for a in answers if a[0] == 401) >= 1.5
    # the right password still signs in (after this address's delay) and clears the count
    status, headers, _ = _raw(url + "login", data=_login_form(BEN, PASSWORDS[BEN]))
    assert status == 302 and headers["Location"] == "/"


def test_each_advisor_sees_only_their_own_clients(served):
    url, _, home = served
    for who in (ANA, BEN):
        page, rec = _visit_records(url, who, home / "voila.log", "n_portfolios", "portfolio")
        assert rec["n_portfolios"] == 2 and rec["portfolio"] in OWN[who], rec
        others = {c for p, c in CLIENTS.items() if p not in OWN[who]}
        assert not any(c in page for c in others)
    _, admin = _visit_records(url, ADMIN, home / "voila.log", "n_portfolios")
    assert admin["n_portfolios"] == 4


def test_two_advisors_at_once_in_two_browsers(served):
    chromium_path()
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import sync_playwright

    from tests.browser import CHROMIUM_ARGS

    url, _, _ = served
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        try:
            pages = {}
            for who in (ANA, BEN):  # two contexts: two cookie jars, as two browsers
                page = browser.new_context(viewport={"width": 1280, "height": 1600}).new_page()
                sign_in(page, url, who, PASSWORDS[who])
                pages[who] = page
            for who, page in pages.items():
                page.wait_for_selector(".js-plotly-plot", timeout=180_000)
                options = {t.replace("\xa0", " ") for t in page.locator("select").first.locator("option").all_inner_texts()}
                assert options == OWN[who], (who, options)
                body = page.inner_text("body")
                assert not any(c in body for p, c in CLIENTS.items() if p not in OWN[who])
                assert "Traceback" not in body
            # Ana switches: still only hers; Ben's page is unchanged
            # (the widgets answer once the page's kernel connection is up: under load that can follow
            # the first drawing, so the choice is made again if the first one went before it)
            for attempt in range(3):
                pages[ANA].locator("select").first.select_option("Conservative Income")
                try:
                    pages[ANA].wait_for_function("() => document.body.innerText.includes('Dr. L. Moreau')",
                                                 timeout=60_000)
                    break
                except PlaywrightTimeout:
                    if attempt == 2:
                        raise
                    pages[ANA].locator("select").first.select_option("Balanced Growth")
            assert "Dr. L. Moreau" in pages[ANA].inner_text("body")
            assert "Dr. L. Moreau" not in pages[BEN].inner_text("body")
            # a forged choice of another advisor's portfolio is refused by the widget, never drawn
            from playwright.sync_api import Error as PlaywrightError

            with pytest.raises(PlaywrightError):
                pages[BEN].locator("select").first.select_option("Balanced Growth", timeout=3_000)
            assert "Harper Family Trust" not in pages[BEN].inner_text("body")
        finally:
            browser.close()


def test_a_new_password_ends_the_old_sessions(served):
    url, engine, _ = served
    from qpo.store import session_scope, set_password

    opener = signed_in_opener(url, RITA)
    status, _, _ = _raw(url + "login", opener=opener)  # signed in: the login page sends her on
    assert status in (200, 302)
    with session_scope(engine) as s:
        set_password(s, RITA, RITA, "rita's newer pw")
    try:
        class NoRedirectWithJar(urllib.request.HTTPRedirectHandler):
            def redirect_request(self, *args, **kwargs):
                return None

        jar = next(h.cookiejar for h in opener.handlers if hasattr(h, "cookiejar"))
        raw = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar), NoRedirectWithJar)
        status, headers, _ = _raw(url, opener=raw)
        assert status == 302 and headers["Location"].startswith("/login")
    finally:
        with session_scope(engine) as s:
            set_password(s, RITA, RITA, PASSWORDS[RITA])


def test_an_unreachable_store_shows_a_banner_and_never_its_password(tmp_path):
    """A PostgreSQL URL with a password, on a port where nothing listens: the login page says the
    book cannot be read, a login is refused, and the password appears nowhere (pages, log)."""
    import os

    secret = "s3cret-Pa55word"
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    env_before = dict(os.environ)
    os.environ["QPO_HOME"] = str(tmp_path)
    os.environ["QPO_DATABASE_URL"] = f"postgresql+psycopg://qpo:{secret}@127.0.0.1:{free_port()}/nowhere"
    try:
        with serving([sys.executable, "-m", "qpo.cli", "dashboard", "advisor", "--port", str(port)],
                     url + "voila/static/voila.js", tmp_path / "voila.log"):
            status, _, page = _raw(url + "login")
            assert status == 200 and "The dashboard cannot open." in page and secret not in page
            status, _, page = _raw(url + "login", data=_login_form(ANA, PASSWORDS[ANA]))
            assert status == 401 and secret not in page and "The dashboard cannot open." in page
            status, headers, page = _raw(url)
            assert status == 302 and secret not in page
        assert secret not in (tmp_path / "voila.log").read_text()
    finally:
        os.environ.clear()
        os.environ.update(env_before)


def test_the_kernel_reads_as_the_person_signed_in(served):
    """The visit's kernel is told who signed in: the store reads of the page are made as them (a
    researcher reads every portfolio), and the signed-in cell shows nothing."""
    url, _, home = served
    page, rec = _visit_records(url, RITA, home / "voila.log", "n_portfolios")
    assert rec["n_portfolios"] == 4
    assert "QPO_USER'] =" not in page and "rita.chen@example.com" not in page.split("</head>", 1)[1]
    # the page's head asks for plotly's widget bundle (compiled while the notebook runs) and links no CDN
    from qpo.workbench.figure_widgets import bundle_route

    head = page.split("</head>", 1)[0]
    assert f'<link rel="modulepreload" href="/{bundle_route()}">' in head
    assert "cdn.jsdelivr.net" not in page and "cdnjs.cloudflare.com" not in page


def test_the_dashboard_binds_to_localhost_and_says_tls_for_a_team():
    from qpo.workbench.dashboard import voila_command

    cmd = voila_command("advisor", 9999)
    assert "--Voila.ip=127.0.0.1" in cmd and "qpo.workbench.dashboard_server" in cmd
    assert "--Voila.identity_provider_class=qpo.workbench.auth.BookIdentityProvider" in cmd
    assert "--Voila.ip=0.0.0.0" in voila_command("advisor", 9999, ip="0.0.0.0")
    # a loaded machine: Voila's executor waits for a finished cell's outputs 120 s, not its 4 s
    # (after which they were dropped without a word: the page lacked the recorded values)
    assert "--VoilaExecutor.iopub_timeout=120" in cmd and "--VoilaExecutor.startup_timeout=180" in cmd
    # a page may send its kernel only the widgets' messages (never an execute_request): Voila's own
    # kernel manager says so (the forged-message test below holds it over the real websocket)
    import inspect

    from voila.app import Voila

    from qpo.workbench.dashboard import ALLOWED_MESSAGE_TYPES

    source = inspect.getsource(Voila)
    listed = source[source.index("allowed_message_types=["):].split("]", 1)[0]
    assert sorted(t.strip(' "\n,') for t in listed.split("[", 1)[1].split(",") if t.strip(' "\n,')) == sorted(
        ALLOWED_MESSAGE_TYPES) and "execute_request" not in listed


@pytest.mark.parametrize("drop", ["files", "kernel", "page"])
def test_a_voila_whose_routes_changed_is_refused_not_served_without_the_login(monkeypatch, drop):
    """The login wraps Voila's own routes (its files, its kernels' URLs, its page): a Voila whose
    routes no longer match (a new version) makes the server refuse to start, naming the route,
    rather than serve that route unchecked."""
    from jupyter_server.services.kernels.handlers import _kernel_id_regex
    from voila.app import Voila
    from voila.static_file_handler import AllowListFileHandler
    from voila.tornado.handler import TornadoVoilaHandler

    from qpo.workbench.dashboard_server import _book_voila

    routes = {"files": ("/voila/files/(.*)", AllowListFileHandler),
              "kernel": (rf"/api/kernels/{_kernel_id_regex}/channels", object),
              "page": ("/(.*)", TornadoVoilaHandler)}
    book_voila = _book_voila()
    app = book_voila()
    app.server_url = "/"
    monkeypatch.setattr(Voila, "init_handlers", lambda self: [v for k, v in routes.items() if k != drop])
    with pytest.raises(RuntimeError, match=rf"cannot wrap this Voila's {drop} route\(s\) \(voila 0\.5"):
        book_voila.init_handlers(app)
    monkeypatch.setattr(Voila, "init_handlers", lambda self: list(routes.values()))
    wrapped = book_voila.init_handlers(app)
    assert {h[1].__name__ for h in wrapped} >= {"SignedInFiles", "OwnedPage", "Ownedobject", "WidgetBundle"}


def test_behind_a_trusted_proxy_each_client_is_counted_by_its_own_address(monkeypatch, capsys):
    """Behind a reverse proxy every connection comes from the proxy: the sign-in delay would make one
    guesser slow everyone down. The proxies named in QPO_DASHBOARD_TRUSTED_PROXIES are believed for
    the hops they add to X-Forwarded-For; a client's own forged hops are not, nor is anyone else."""
    from qpo.errors import InvalidValueError
    from qpo.workbench import dashboard
    from qpo.workbench._auth_state import client_address, trusted_proxies

    proxies = trusted_proxies(" 10.0.0.5, ::1 ,")
    assert proxies == {"10.0.0.5", "::1"}
    assert client_address("10.0.0.5", "203.0.113.7", proxies) == "203.0.113.7"
    assert client_address("10.0.0.5", "6.6.6.6, 203.0.113.7", proxies) == "203.0.113.7"  # the forged first hop
    assert client_address("10.0.0.5", "203.0.113.7, ::1", proxies) == "203.0.113.7"  # two proxies in a row
    assert client_address("198.51.100.9", "203.0.113.7", proxies) == "198.51.100.9"  # not a proxy: not believed
    assert client_address("10.0.0.5", None, proxies) == "10.0.0.5"
    assert client_address("10.0.0.5", "203.0.113.7", frozenset()) == "10.0.0.5"
    with pytest.raises(InvalidValueError, match="QPO_DASHBOARD_TRUSTED_PROXIES must list IP addresses"):
        trusted_proxies("proxy.example.com")

    ran = []
    monkeypatch.setattr(dashboard, "exec_server", lambda cmd, cwd: ran.append(cmd))
    monkeypatch.setenv("QPO_DASHBOARD_TRUSTED_PROXIES", "not-an-address")
    with pytest.raises(InvalidValueError):
        dashboard.serve("advisor", 9999, ip="0.0.0.0")
    assert ran == []  # refused before serving
    monkeypatch.setenv("QPO_DASHBOARD_TRUSTED_PROXIES", "10.0.0.5")
    dashboard.serve("advisor", 9999, ip="0.0.0.0")
    said = capsys.readouterr().out
    assert len(ran) == 1 and "passwords and client data cross the network in clear unless TLS" in said
    assert "X-Forwarded-For of 10.0.0.5" in said


def test_the_page_problems_name_a_failed_cell():
    page = ('<script type="application/vnd.voila.cell-output+json">\n{"output_type": "error", "ename": '
            '"ExecutionError", "evalue": "Execution error", "traceback": ["There was an error when executing cell [3]."]}'
            "\n</script><div class='qpo-error' style='x'>the store at sqlite:///x is missing</div>")
    said = _page_problems(page)
    assert "There was an error when executing cell [3]." in said and "the store at sqlite:///x is missing" in said


def test_browser_login_refused_then_accepted(served):
    chromium_path()
    url, _, _ = served
    with browser_page() as page:
        page.goto(url, timeout=60_000)
        assert "/login" in page.url and page.locator("#email").count() == 1
        sign_in(page, url, ANA, "wrong password")
        assert "Wrong e-mail or password" in page.inner_text("body")
        sign_in(page, url, ANA, PASSWORDS[ANA])
        page.wait_for_selector(".js-plotly-plot", timeout=180_000)
        page.wait_for_function("() => document.body.innerText.includes('Harper Family Trust')", timeout=60_000)


def _open_rebalance(page):
    page.get_by_role("tab", name="Rebalance").click()
    page.get_by_role("button", name="Propose").wait_for(timeout=120_000)


def test_propose_and_accept_in_the_browser_records_the_trades_and_the_audit_row(served):
    """Ana proposes for her client in the Rebalance tab and accepts: the ledger holds the trades (with
    the proposal's id), one audit row says she accepted it; Rita (a researcher) computes a dry run
    and cannot accept."""
    chromium_path()
    url, engine, _ = served
    from qpo.store import audit_trail, list_proposals, list_transactions, session_scope

    with session_scope(engine) as s:
        before = len(list_proposals(s, ADMIN))
    with browser_page() as page:
        sign_in(page, url, ANA, PASSWORDS[ANA])
        page.wait_for_selector(".js-plotly-plot", timeout=180_000)
        _open_rebalance(page)
        page.get_by_role("button", name="Propose").click()
        page.wait_for_selector("table.qpo-trades, .qpo-no-trades, .qpo-error", timeout=120_000)
        assert page.locator(".qpo-error").count() == 0, page.inner_text("body")[-2000:]
        rows = page.locator("table.qpo-trades tbody tr").count()
        with session_scope(engine) as s:
            proposals = list_proposals(s, ANA)
            assert len(list_proposals(s, ADMIN)) == before + 1  # one proposal stored, by this click
        pid = int(proposals["id"].max())
        assert proposals.set_index("id").loc[pid, "n_trades"] == rows and rows > 0
        page.get_by_role("button", name="Accept").click()
        page.wait_for_selector(".qpo-recorded", timeout=120_000)
        assert "Traceback" not in page.inner_text("body")
    with session_scope(engine) as s:
        name = list_proposals(s, ANA).set_index("id").loc[pid, "portfolio"]
        ledger = list_transactions(s, ANA, name)
        trail = audit_trail(s, ADMIN, portfolio=name)
    assert (ledger["proposal_id"] == pid).sum() == rows
    accepted = trail[(trail["action"] == "accept") & (trail["entity_id"] == str(pid))]
    assert len(accepted) == 1 and accepted.iloc[0]["actor"] == ANA
    with browser_page() as page:  # a researcher: a dry run, nothing stored, no decision
        sign_in(page, url, RITA, PASSWORDS[RITA])
        page.wait_for_selector(".js-plotly-plot", timeout=180_000)
        _open_rebalance(page)
        page.get_by_role("button", name="Propose").click()
        page.wait_for_selector("table.qpo-trades, .qpo-no-trades, .qpo-error", timeout=120_000)
        assert page.get_by_role("button", name="Accept").is_disabled()
        assert page.get_by_role("button", name="Reject").is_disabled()
        assert "Researchers may only compute proposals" in page.inner_text("body")
    with session_scope(engine) as s:
        assert int(list_proposals(s, ADMIN)["id"].max()) == pid  # nothing stored for her


def _plot_title(page, words: str, timeout: int = 120_000) -> None:
    """Wait until a drawn plotly chart's title holds ``words`` (set with the chart's data)."""
    page.wait_for_function("(w) => [...document.querySelectorAll('.js-plotly-plot .gtitle')]"
                           ".some(t => t.textContent.includes(w))", arg=words, timeout=timeout)


def test_every_tab_draws_in_the_browser(served):
    """Ben opens each tab in turn: each draws its tables and charts for his client (titles set with
    the data, not the empty figures' own), with no error and no traceback; Rebalance proposes and
    shows the before/after and compliance tables; the Report tab's HTML download holds his
    client's report."""
    import base64

    chromium_path()
    url, _, _ = served
    with browser_page() as page:
        sign_in(page, url, BEN, PASSWORDS[BEN])
        page.wait_for_selector(".js-plotly-plot", timeout=180_000)
        name = page.locator("select").first.input_value()
        assert name in OWN[BEN]
        expect = {"Risk": (["table.qpo-var", "table.qpo-contrib", "table.qpo-sector-contrib", "table.qpo-stress"],
                           [f"{name}: drawdown (max "]),
                  "Frontier": (["table.qpo-frontier"], [f"{name}: efficient frontier"]),
                  "History": (["table.qpo-audit", "table.qpo-attribution"],
                              [f"{name}: value (holdings at the closes + cash)", f"{name}: active "]),
                  "Report": (["button:has-text('Client report (HTML)')"], [])}
        for title, (selectors, charts) in expect.items():
            page.get_by_role("tab", name=title).click()
            for selector in selectors:
                page.wait_for_selector(selector, timeout=120_000)
            for words in charts:
                _plot_title(page, words)
            body = page.inner_text("body")
            assert "Traceback" not in body and page.locator(".qpo-error:visible").count() == 0, (title, body[-1500:])
        assert page.locator("table.qpo-stress tbody tr").count() > 0 and page.locator("table.qpo-attribution tbody tr").count() > 1
        page.get_by_role("tab", name="Report").click()
        page.get_by_role("button", name="Client report (HTML)").click()
        link = page.wait_for_selector("a.qpo-download[download$='.html']", state="attached", timeout=240_000)
        data = link.get_attribute("href").split(",", 1)[1]
        report = base64.b64decode(data).decode()
        assert CLIENTS[name] in report and not any(c in report for p, c in CLIENTS.items() if p not in OWN[BEN])
        # Rebalance: a proposal's before/after and compliance tables, then rejected (the book left as it was)
        _open_rebalance(page)
        page.get_by_role("button", name="Propose").click()
        page.wait_for_selector("table.qpo-comparison", timeout=120_000)
        page.wait_for_selector("table.qpo-compliance", timeout=60_000)
        assert page.locator(".qpo-error:visible").count() == 0, page.inner_text("body")[-1500:]
        assert page.locator("table.qpo-compliance tbody tr").count() > 0
        page.get_by_placeholder("Why the proposal is rejected", exact=False).fill("browser test: drawn, not wanted")
        page.get_by_role("button", name="Reject").click()
        page.wait_for_selector(".qpo-recorded", timeout=120_000)
        assert "Rejected proposal" in page.inner_text("body")


def test_logout_without_a_session_is_the_sign_in_page(served):
    """``/logout`` is the book's page (Jupyter Server's needs templates Voila lacks: it answered 500
    with an empty body)."""
    url, _, _ = served
    status, headers, page = _raw(url + "logout")
    assert status == 200 and "You have signed out." in page and 'name="email"' in page
    assert 'action="/login"' in page and "qpo-dashboard-session=" in headers.get("Set-Cookie", "")


def test_sign_out_ends_the_session_in_the_browser_and_on_the_server(served):
    """Ben signs in, then clicks the page's "Sign out": the sign-in page says he signed out, the
    dashboard's address asks him to sign in again, and his old cookie, replayed, opens neither the
    page nor its kernel (the server ended the session, not only the browser's cookie)."""
    chromium_path()
    url, _, home = served
    with browser_page() as page:
        sign_in(page, url, BEN, PASSWORDS[BEN])
        page.wait_for_selector(".js-plotly-plot", timeout=180_000)
        cookie = next(c for c in page.context.cookies() if c["name"] == "qpo-dashboard-session")
        old = {"Cookie": f"qpo-dashboard-session={cookie['value']}"}
        kernel = page.evaluate("() => JSON.parse(document.getElementById('jupyter-config-data').textContent).kernelId")
        status, _, body = _raw(url + f"api/kernels/{kernel}", headers=old)
        assert status == 200 and kernel in body  # the cookie opens the kernel while signed in
        link = page.locator("#qpo-sign-out")
        assert link.inner_text() == "Sign out" and link.is_visible()
        link.click()
        page.wait_for_selector(".qpo-signed-out", timeout=60_000)
        assert page.url.endswith("/logout") and page.locator("#email").count() == 1
        assert "You have signed out." in page.inner_text("body")
        assert not any(c["name"] == "qpo-dashboard-session" for c in page.context.cookies())
        page.goto(url, timeout=60_000)
        assert "/login" in page.url and page.locator("#email").count() == 1
        assert "Okafor Endowment" not in page.content()
    status, headers, body = _raw(url, headers=old)
    assert status == 302 and headers["Location"].startswith("/login") and "Okafor" not in body
    for path in (f"api/kernels/{kernel}", f"api/kernels/{kernel}/channels", "api/kernels"):
        status, _, body = _raw(url + path, headers=old)
        assert status in (302, 403) and kernel not in body, (path, status)
    # signing in again opens a new session; the old cookie stays ended
    opener = signed_in_opener(url, BEN)
    assert opener is not None
    assert _raw(url, headers=old)[0] == 302
    assert "ben.okafor@example.com signed out" in (home / "voila.log").read_text()


#: a page's script talking to its own kernel over the real websocket (what a forger can do from the
#: page): lists the widget comms, asks each for its state, then sends ``forged`` messages, each
#: {"to": a model's description or "dropdown", "data": the comm message's data} or {"execute": code};
#: then waits ``wait`` ms. Returns the states seen and every message the socket received.
FORGE_JS = """async ([kernel, forged, wait]) => {
  const ws = new WebSocket(`ws://${location.host}/api/kernels/${kernel}/channels?session_id=forger`);
  const got = [];
  ws.onmessage = e => { try { got.push(JSON.parse(e.data)); } catch (err) { got.push({text: String(e.data)}); } };
  await new Promise((ok, bad) => { ws.onopen = ok; ws.onerror = () => bad(new Error('no websocket')); });
  const sleep = ms => new Promise(r => setTimeout(r, ms));
  const type = m => (m.header || {}).msg_type || m.msg_type;
  const send = (msg_type, content) => {
    const msg_id = crypto.randomUUID();
    ws.send(JSON.stringify({header: {msg_id, msg_type, username: 'forger', session: 'forger',
      date: new Date().toISOString(), version: '5.3'}, parent_header: {}, metadata: {}, content,
      channel: 'shell', buffers: []}));
    return msg_id;
  };
  const until = async (pred, ms) => { for (let t = 0; t < ms; t += 100) { if (pred()) return true; await sleep(100); } return false; };
  send('comm_info_request', {target_name: 'jupyter.widget'});
  await until(() => got.some(m => type(m) === 'comm_info_reply'), 60000);
  const info = got.find(m => type(m) === 'comm_info_reply');
  const comms = Object.keys(((info || {}).content || {}).comms || {});
  const before = {};
  const matches = (to, st) => st && (to === 'dropdown'
      ? st._model_name === 'DropdownModel' && (st._options_labels || []).length > 0
      : st._model_name === 'ButtonModel' && st.description === to);
  const find = async to => {  // every widget asked for its state at once; the first that matches
    const start = got.length;
    // (answered in the order asked: the dropdown is among the first widgets made, a tab's buttons among the last)
    for (const c of (to === 'dropdown' ? comms : [...comms].reverse())) {
      send('comm_msg', {comm_id: c, data: {method: 'request_state'}});
    }
    let found = null;
    await until(() => {
      for (const m of got.slice(start)) {
        if (type(m) === 'comm_msg' && m.content.data.method === 'update') before[m.content.comm_id] = m.content.data.state;
      }
      found = Object.keys(before).find(c => matches(to, before[c])) || null;
      return found !== null;
    }, 240000);
    return found;
  };
  const targets = {};
  const sent = [];
  for (const f of forged) {
    if (f.execute) { sent.push(send('execute_request', {code: f.execute, silent: false, store_history: false,
                     user_expressions: {}, allow_stdin: false, stop_on_error: true})); continue; }
    const comm_id = targets[f.to] = targets[f.to] || await find(f.to);
    if (!comm_id) throw new Error('no widget ' + f.to + ' among ' + comms.length + ' comms');
    sent.push(send('comm_msg', {comm_id, data: f.data}));
  }
  await sleep(wait);
  ws.close();
  return {n_comms: comms.length, before, sent, dropdown: targets.dropdown || null,
          accept: targets.Accept || null,
          received: got.map(m => ({type: type(m), parent: ((m.parent_header || {}).msg_id) || null,
                                   content: JSON.stringify(m.content || m.text || '').slice(0, 2000)}))};
}"""


def _kernel_id(page) -> str:
    return page.evaluate("() => JSON.parse(document.getElementById('jupyter-config-data').textContent).kernelId")


def test_forged_messages_over_the_real_websocket_are_refused(served):
    """Ana's page's script sends her kernel forged widget messages (another advisor's portfolio as
    the dropdown's index, value, label or options) and an execute_request that would run code as
    the server: the kernel keeps showing her own clients, never Ben's, and the server drops the
    code unrun (no reply, no output)."""
    chromium_path()
    url, _, _ = served
    with browser_page() as page:
        sign_in(page, url, ANA, PASSWORDS[ANA])
        page.wait_for_selector(".js-plotly-plot", timeout=180_000)
        page.wait_for_function("() => document.body.innerText.includes('Harper Family Trust')", timeout=60_000)
        forged = [{"to": "dropdown", "data": {"method": "update", "state": {"index": 3}, "buffer_paths": []}},
                  {"to": "dropdown", "data": {"method": "update", "state": {"value": "Tech Tilt"}, "buffer_paths": []}},
                  {"to": "dropdown", "data": {"method": "update", "state": {"label": "Min-Variance Core"},
                                              "buffer_paths": []}},
                  {"to": "dropdown", "data": {"method": "update", "buffer_paths": [], "state": {
                      "_options_labels": ["Balanced Growth", "Conservative Income", "Tech Tilt"], "index": 2}}},
                  {"execute": "import os\nprint('FORGED-RUN', os.environ.get('QPO_DATABASE_URL'))"}]
        out = page.evaluate(FORGE_JS, [_kernel_id(page), forged, 8_000])
        assert out["n_comms"] > 10 and out["dropdown"], out["n_comms"]
        assert out["before"][out["dropdown"]]["_options_labels"] == ["Balanced Growth", "Conservative Income"]
        # the kernel changed nothing: the page's dropdown (synced from the kernel) still offers and shows hers
        options = page.locator("select").first.evaluate("s => [...s.options].map(o => o.value)")
        assert options == ["Balanced Growth", "Conservative Income"], options
        assert page.locator("select").first.input_value() == "Balanced Growth"
        received = json.dumps(out["received"])
        assert not any(c in received for p, c in CLIENTS.items() if p not in OWN[ANA])
        assert "FORGED-RUN" not in received and "postgresql" not in received
        execute = out["sent"][-1]
        assert not [m for m in out["received"] if m["parent"] == execute], "the execute_request was answered"
        body = page.inner_text("body")
        assert "Harper Family Trust" in body and not any(c in body for p, c in CLIENTS.items() if p not in OWN[ANA])


def test_a_reachable_postgres_store_never_shows_its_password(tmp_path):
    """The dashboard served on a real PostgreSQL store whose URL holds a password (a private schema
    of QPO_TEST_DATABASE_URL's database): the signed-in page, a tab's error (the store's nightly
    risk table made unreadable) and the server's log never show the password."""
    import os

    from sqlalchemy import text
    from sqlalchemy.engine import make_url

    from qpo.store import connect
    from qpo.workbench.demo import seed_demo
    from tests.test_store.test_store import fresh_store_url

    pg = os.environ.get("QPO_TEST_DATABASE_URL")
    if not pg:
        pytest.skip("QPO_TEST_DATABASE_URL is not set (CI sets it to a real PostgreSQL)")
    password = make_url(pg).password
    assert password, "QPO_TEST_DATABASE_URL has no password: this test needs one"
    # the password as a URL holds it (a short one, such as "qpo", is also a word of every page)
    secrets = [f":{password}@", make_url(pg).render_as_string(hide_password=False)]
    if len(password) >= 8:
        secrets.append(password)
    chromium_path()
    env_before = dict(os.environ)
    with fresh_store_url(pg, tmp_path) as store:
        os.environ["QPO_HOME"] = str(tmp_path)
        os.environ["QPO_DATABASE_URL"] = store
        try:
            engine = connect(store)
            seed_demo(engine)
            give_passwords(engine)
            port = free_port()
            url = f"http://127.0.0.1:{port}/"
            with serving([sys.executable, "-m", "qpo.cli", "dashboard", "advisor", "--port", str(port)],
                         url + "voila/static/voila.js", tmp_path / "voila.log"):
                status, _, page = _raw(url + "login")
                assert not any(x in page for x in secrets)
                assert status == 200 and "The dashboard cannot open." not in page, re.findall(r"banner.*?</div>", page)
                page_html, rec = _visit_records(url, ANA, tmp_path / "voila.log", "n_portfolios")
                assert rec["n_portfolios"] == 2 and not any(x in page_html for x in secrets)
                with browser_page() as page:
                    sign_in(page, url, ANA, PASSWORDS[ANA])
                    page.wait_for_selector(".js-plotly-plot", timeout=180_000)
                    with engine.begin() as conn:  # the History tab's nightly risk read now fails in the driver
                        conn.execute(text("ALTER TABLE book_risk RENAME TO book_risk_away"))
                    try:
                        page.get_by_role("tab", name="History").click()
                        page.wait_for_selector(".qpo-error", timeout=180_000)
                        body = page.inner_text("body")
                        assert "the store cannot be read just now" in body, body[-1500:]
                        content = page.content()
                        assert not any(x in body or x in content for x in secrets)
                    finally:
                        with engine.begin() as conn:
                            conn.execute(text("ALTER TABLE book_risk_away RENAME TO book_risk"))
            log = (tmp_path / "voila.log").read_text()
            assert "signed in" in log and not any(x in log for x in secrets)
        finally:
            engine.dispose()
            os.environ.clear()
            os.environ.update(env_before)
