"""The advisor dashboard, served by Voila and used in a real headless Chromium."""
import sys

import pytest

from tests.browser import TRACES_JS, browser_page, chromium_path, sign_in
from tests.servers import PASSWORDS, free_port, give_passwords, serving, signed_in_opener, visit_dashboard


@pytest.fixture
def dashboard(qpo_home):
    chromium_path()  # skip early when there is no browser
    from qpo.store import connect
    from qpo.workbench.demo import seed_demo

    seed_demo(connect())  # `qpo db seed` (make run does it): the dashboard only reads the store
    give_passwords()  # `qpo user passwd`: the dashboard is behind a login
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    # probe a static file: a GET of the dashboard itself would start a kernel of its own
    with serving([sys.executable, "-m", "qpo.cli", "dashboard", "advisor", "--port", str(port)],
                 url + "voila/static/voila.js", qpo_home / "voila.log"):
        yield url


def test_advisor_dashboard_in_chromium(dashboard):
    with browser_page() as page:
        bundles, received = [], []  # plotly's widget bundle fetched; the bytes of the kernel's websocket
        page.on("response", lambda r: bundles.append(r) if "/qpo/static/plotly-widget-" in r.url else None)
        page.on("websocket", lambda ws: ws.on("framereceived", lambda payload: received.append(len(payload))))
        sign_in(page, dashboard, "admin@example.com", PASSWORDS["admin@example.com"])  # an admin sees every client
        page.wait_for_selector(".js-plotly-plot path.js-line", timeout=180_000)
        page.wait_for_function("() => document.querySelectorAll('.js-plotly-plot .bars path').length > 0",
                               timeout=60_000)
        page.wait_for_function("() => document.body.innerText.includes('Worst stress:')", timeout=60_000)
        # the two figures' JavaScript came once, by HTTP (cached for good), not in each figure's state
        assert len(bundles) == 1 and bundles[0].status == 200, [(r.url, r.status) for r in bundles]
        assert bundles[0].headers["cache-control"] == "private, max-age=31536000, immutable"
        assert sum(received) < 2_000_000, f"{sum(received):,} bytes through the websocket for the first page"
        body = page.inner_text("body")
        assert "Traceback" not in body and "Error" not in body
        assert page.locator("[data-mime-type='application/vnd.jupyter.stderr']").count() == 0
        assert page.locator(".jp-CodeCell .jp-InputArea").count() == 0  # sources stripped
        assert "AdvisorDashboard" not in page.content()
        assert "Balanced Growth" in body and "Harper Family Trust" in body and "VaR 95% (1 day)" in body
        assert "Beta vs the S&P 500" in body and "Worst stress: Global financial crisis 2008" in body
        assert page.locator(".qpo-compliant").count() == 1  # Balanced Growth holds its own limits (its strategy's)
        assert "Limits, the portfolio's own (its stored strategy)" in body
        before = page.evaluate(TRACES_JS)
        assert before[0]["title"] == "Balanced Growth: growth of $1 vs the S&P 500"
        assert len(before[0]["lines"]) == 2 and all(len(d) > 1000 for d in before[0]["lines"])  # 756 days drawn
        assert before[1]["bars"] == 10  # one bar per holding

        page.locator("select").first.select_option("Tech Tilt")
        page.wait_for_function(
            "() => [...document.querySelectorAll('.js-plotly-plot .gtitle')].some(t => t.textContent.startsWith('Tech Tilt'))",
            timeout=60_000)
        page.wait_for_function("() => document.querySelectorAll('.js-plotly-plot .bars path').length === 5",
                               timeout=60_000)
        # each figure (and each HTML widget) is drawn on its own: the title and the bars may show the
        # new portfolio before the growth line is redrawn, so its path is waited for, not assumed
        page.wait_for_function(
            "old => { const p = document.querySelector('.js-plotly-plot .scatterlayer path.js-line');"
            " return p !== null && p.getAttribute('d') !== old; }", arg=before[0]["lines"][0], timeout=60_000)
        page.wait_for_function("() => document.body.innerText.includes('Nakamura Ventures LLC')"
                               " && document.body.innerText.includes('Compliance breach')", timeout=60_000)
        after = page.evaluate(TRACES_JS)
        assert after[0]["lines"][0] != before[0]["lines"][0]  # the portfolio's curve changed
        body = page.inner_text("body")
        assert "Nakamura Ventures LLC" in body and "Traceback" not in body
        # Tech Tilt is 80 % Information Technology: over its own sector limit, shown as a breach
        assert "Compliance breach" in body and "sector Information Technology" in body

        # a period chosen: the growth line is redrawn from 1 over the last year
        line = after[0]["lines"][0]
        page.get_by_role("button", name="1Y", exact=True).click()
        page.wait_for_function(
            "old => { const p = document.querySelector('.js-plotly-plot .scatterlayer path.js-line');"
            " return p !== null && p.getAttribute('d') !== old; }", arg=line, timeout=60_000)
        # a tab with a figure of its own: no second fetch of the bundle
        page.get_by_role("tab", name="Risk").click()
        page.wait_for_function("() => [...document.querySelectorAll('.js-plotly-plot .gtitle')]"
                               ".some(t => /drawdown/i.test(t.textContent))", timeout=120_000)
        assert len(bundles) == 1
        assert "Traceback" not in page.inner_text("body")
        # the bundle is for a signed-in person only
        import urllib.error
        import urllib.request

        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(bundles[0].url, timeout=60)
        assert refused.value.code == 403


def test_a_store_deleted_while_serving_is_refused_on_the_next_visit(qpo_home, sp500):
    """The store goes while the server runs: the next visit says so, with the command that
    creates it, and neither creates a store nor seeds the demo portfolios into one."""

    from qpo.store import connect
    from qpo.workbench.demo import seed_demo

    db = qpo_home / "qpo.db"
    seed_demo(connect(), prices=sp500)  # `qpo db seed`
    give_passwords()
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    with serving([sys.executable, "-m", "qpo.cli", "dashboard", "advisor", "--port", str(port)],
                 url + "voila/static/voila.js", qpo_home / "voila.log"):
        opener = signed_in_opener(url, "ana.silva@example.com")
        db.unlink()
        page = visit_dashboard(opener, url)
    assert "The dashboard cannot open." in page
    assert f"no store at sqlite:///{db}: the file {db} does not exist, and nothing was created" in page
    assert "`qpo db seed`" in page and "Harper Family Trust" not in page
    assert not db.exists()


def test_idle_kernels_are_culled_by_default_and_configurable(monkeypatch):
    from qpo.errors import InvalidValueError
    from qpo.workbench.dashboard import voila_command

    def culling(cmd):
        return {a.split("=")[0].split(".")[1]: a.split("=")[1] for a in cmd
                if a.startswith("--MappingKernelManager.cull")}

    monkeypatch.delenv("QPO_DASHBOARD_CULL_IDLE", raising=False)
    monkeypatch.delenv("QPO_DASHBOARD_CULL_INTERVAL", raising=False)
    assert culling(voila_command("advisor", 8866)) == {"cull_idle_timeout": "300", "cull_interval": "60",
                                                       "cull_connected": "True", "cull_busy": "False"}
    monkeypatch.setenv("QPO_DASHBOARD_CULL_IDLE", "900")
    monkeypatch.setenv("QPO_DASHBOARD_CULL_INTERVAL", " 30 ")
    assert culling(voila_command("advisor"))["cull_idle_timeout"] == "900"
    assert culling(voila_command("advisor"))["cull_interval"] == "30"
    # an argument wins over the environment; 0 keeps kernels forever (Jupyter's own meaning)
    assert culling(voila_command("advisor", cull_idle_timeout=0, cull_interval=5)) == {
        "cull_idle_timeout": "0", "cull_interval": "5", "cull_connected": "True", "cull_busy": "False"}
    monkeypatch.setenv("QPO_DASHBOARD_CULL_IDLE", "5m")
    with pytest.raises(InvalidValueError, match=r"QPO_DASHBOARD_CULL_IDLE must be a whole number of seconds >= 0, "
                                                r"got '5m'"):
        voila_command("advisor")
    with pytest.raises(InvalidValueError, match=r"cull_interval must be a whole number >= 1 \(whole seconds\), got 0"):
        voila_command("advisor", cull_idle_timeout=10, cull_interval=0)
    with pytest.raises(InvalidValueError, match=r"cull_idle_timeout must be a whole number >= 0 \(whole seconds\), "
                                                r"got 2.5"):
        voila_command("advisor", cull_idle_timeout=2.5)


def test_the_kernels_figures_name_the_bundle_the_server_serves(monkeypatch):
    """The visit's kernel is told the bundle's address as its browser reaches the server; its figures
    then carry that address, not the 5 MB bundle; without it (a notebook by hand), the bundle inline."""
    from types import SimpleNamespace

    import plotly
    import plotly.graph_objects as go

    from qpo.errors import InvalidValueError
    from qpo.workbench.auth import widget_bundle_url
    from qpo.workbench.figure_widgets import BUNDLE_URL_ENV, bundle_path, figure_widget, widget_class

    def req(protocol, host, base="/"):
        return SimpleNamespace(request=SimpleNamespace(protocol=protocol, host=host), settings={"base_url": base})

    route = f"qpo/static/plotly-widget-{plotly.__version__}.js"
    assert widget_bundle_url(req("http", "127.0.0.1:8866")) == f"http://127.0.0.1:8866/{route}"
    assert widget_bundle_url(req("https", "book.example.com", "/advisors")) == f"https://book.example.com/advisors/{route}"
    assert widget_bundle_url(req("http", "[::1]:8866")) == f"http://[::1]:8866/{route}"
    for host in ("evil.com/x", "a b", "x'\"", ""):
        assert widget_bundle_url(req("http", host)) is None, host
    assert widget_bundle_url(req("file", "127.0.0.1")) is None
    monkeypatch.setenv("QPO_WIDGET_BUNDLE", "inline")  # the server told to let figures carry it
    assert widget_bundle_url(req("http", "127.0.0.1:8866")) is None
    monkeypatch.delenv("QPO_WIDGET_BUNDLE")

    url = f"http://127.0.0.1:8866/{route}"
    monkeypatch.setenv(BUNDLE_URL_ENV, url)
    fig = figure_widget(go.Figure(go.Scatter(x=[1, 2], y=[3, 4])))
    assert isinstance(fig, go.FigureWidget) and fig.get_state()["_esm"] == url
    assert isinstance(fig, widget_class()) and widget_class() is widget_class(url)  # one class per address
    monkeypatch.delenv(BUNDLE_URL_ENV)
    inline = figure_widget(layout=dict(height=300)).get_state()["_esm"]
    assert len(inline) > 1_000_000 and inline == bundle_path().read_text()
    monkeypatch.setenv(BUNDLE_URL_ENV, "/qpo/static/x.js")
    with pytest.raises(InvalidValueError, match="must be an http:// or https:// address"):
        figure_widget()


def test_a_kernels_first_figure_widget_skips_the_iri_grammars():
    """Importing plotly's FigureWidget (its renderers import nbformat, so jsonschema) must not compile
    rfc3987_syntax's 38 lark grammars (about 1 s of every dashboard kernel's start), and jsonschema
    must still validate afterwards; the module stays importable for whoever wants it."""
    import subprocess

    code = ("import sys\n"
            "from qpo.workbench.figure_widgets import widget_class\n"
            "cls = widget_class('')\n"
            "import plotly.graph_objects as go, jsonschema\n"
            "assert cls is go.FigureWidget\n"
            "print('rfc3987_syntax' in sys.modules)\n"
            "jsonschema.validate({'a': 1}, {'type': 'object', 'properties': {'a': {'type': 'integer'}}})\n"
            "try:\n"
            "    jsonschema.validate({'a': 'x'}, {'type': 'object', 'properties': {'a': {'type': 'integer'}}})\n"
            "except jsonschema.ValidationError:\n"
            "    print('refused')\n"
            "import rfc3987_syntax\n"
            "print(rfc3987_syntax.is_valid_syntax('iri', 'http://example.com/\u00e9'))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["False", "refused", "True"]


def test_a_busy_port_is_an_error_not_another_port(qpo_home):
    """Voila moves to the next free port when the one asked for is busy, while `qpo dashboard`
    had announced the one asked for: a user opened the wrong address (and a test's free port, taken
    in between, served elsewhere). The server now stops, saying the port could not be had."""
    import socket
    import subprocess

    from qpo.store import connect
    from qpo.workbench.dashboard import voila_command
    from qpo.workbench.demo import seed_demo

    assert "--Voila.port_retries=0" in voila_command("advisor", 8866)
    seed_demo(connect())
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = subprocess.run([sys.executable, "-m", "qpo.cli", "dashboard", "advisor", "--port", str(port)],
                              capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    out = done.stdout + done.stderr
    assert done.returncode != 0 and "is already in use" in out and "could not be started" in out, out[-2000:]
    assert "Voilà is running" not in out
