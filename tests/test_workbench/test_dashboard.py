"""The advisor dashboard, served by Voila and used in a real headless Chromium."""
import sys

import pytest

from tests.browser import TRACES_JS, browser_page, chromium_path, sign_in
from tests.servers import PASSWORDS, free_port, give_passwords, serving, signed_in_opener


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
        sign_in(page, dashboard, "admin@example.com", PASSWORDS["admin@example.com"])  # an admin sees every client
        page.wait_for_selector(".js-plotly-plot path.js-line", timeout=180_000)
        page.wait_for_function("() => document.querySelectorAll('.js-plotly-plot .bars path').length > 0",
                               timeout=60_000)
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
        after = page.evaluate(TRACES_JS)
        assert after[0]["lines"][0] != before[0]["lines"][0]  # the portfolio's curve changed
        body = page.inner_text("body")
        assert "Nakamura Ventures LLC" in body and "Traceback" not in body
        # Tech Tilt is 80 % Information Technology: over its own sector limit, shown as a breach
        assert "Compliance breach" in body and "sector Information Technology" in body


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
        with opener.open(url, timeout=240) as resp:
            page = resp.read().decode()
    assert "The dashboard cannot open." in page
    assert f"no store at sqlite:///{db}: the file {db} does not exist, and nothing was created" in page
    assert "`qpo db seed`" in page and "Harper Family Trust" not in page
    assert not db.exists()


def test_idle_kernels_are_culled_by_default_and_configurable(monkeypatch):
    from qpo.errors import InvalidValueError
    from qpo.workbench.dashboard import voila_command

    def culling(cmd):
        return {a.split("=")[0].split(".")[1]: a.split("=")[1] for a in cmd if a.startswith("--MappingKernelManager.")}

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
