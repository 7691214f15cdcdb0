"""The documented commands that start the MLflow UI and JupyterLab serve what they promise."""
import json
import sys
import urllib.request

from tests.servers import free_port, serving


def test_mlflow_ui_shows_the_workbench_runs(qpo_home):
    from qpo.tracking import tracked_run

    with tracked_run("ui-check", "r") as run:
        run.log_metrics({"var": 0.0123})
    port = free_port()
    url = f"http://127.0.0.1:{port}/api/2.0/mlflow/runs/get?run_id={run.run_id}"
    with serving([sys.executable, "-m", "qpo.cli", "ui", "mlflow", "--port", str(port)], url,
                 qpo_home / "mlflow-ui.log") as body:
        metrics = {m["key"]: m["value"] for m in json.loads(body)["run"]["data"]["metrics"]}
    assert metrics == {"var": 0.0123}


def test_jupyterlab_serves_the_notebooks(qpo_home):
    port = free_port()
    token = "qpo-test"
    cmd = [sys.executable, "-m", "qpo.cli", "lab", "--port", str(port), "--",
           f"--IdentityProvider.token={token}"]
    probe = f"http://127.0.0.1:{port}/api/contents?token={token}"
    with serving(cmd, probe, qpo_home / "lab.log") as body:
        names = {item["name"] for item in json.loads(body)["content"]}
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/contents/notebooks?token={token}",
                                    timeout=30) as resp:
            names |= {item["name"] for item in json.loads(resp.read().decode())["content"]}
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/lab?token={token}", timeout=30) as resp:
            status, page = resp.status, resp.read().decode()
    assert {"notebooks", "voila_apps", "01_daily_risk_report.ipynb"} <= names
    assert status == 200 and "JupyterLab" in page
