"""``qpo pipeline run --json`` stopped by SIGTERM or SIGINT at any moment, even while it is still
importing (the first seconds, before the run's own handler exists), prints its one JSON line and
exits 143 / 130. It used to die silently with 143 and no line when the signal came in those seconds."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from tests.conftest import ROOT

EXE = ROOT / ".venv" / "bin" / "qpo"

#: a process that sends itself ``SIG`` the moment it starts importing the pipeline machinery (the
#: heavy import that took the first ~2 s), then runs the ordinary command line
SELF_SIGNAL = """
import importlib.abc, os, signal, sys

class Hook(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "qpo.workbench.pipelines":
            sys.meta_path.remove(self)
            os.kill(os.getpid(), getattr(signal, os.environ["SIG"]))
        return None

sys.meta_path.insert(0, Hook())
from qpo.cli import main
sys.exit(main())
"""


def _env(tmp_path) -> dict[str, str]:
    """The environment of a user with a fresh, empty qpo home (``tmp_path / "qpo"``)."""
    (tmp_path / "qpo").mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("QPO_")}
    return env | {"QPO_HOME": str(tmp_path / "qpo"), "PYTHONIOENCODING": "utf-8"}


@pytest.mark.parametrize(("sig", "status"), [("SIGTERM", 143), ("SIGINT", 130)])
def test_a_signal_during_the_imports_gives_the_json_line(tmp_path, sig, status):
    r = subprocess.run([sys.executable, "-c", SELF_SIGNAL, "pipeline", "run", "daily-report", "--json"],
                       env=_env(tmp_path) | {"SIG": sig}, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert r.returncode == status, (r.returncode, r.stdout, r.stderr)
    lines = r.stdout.splitlines()
    assert len(lines) == 1, r.stdout
    doc = json.loads(lines[0])
    assert doc == {"pipeline": "daily-report", "status": "KILLED", "signal": sig, "run_id": None,
                   "error": f"interrupted by {sig} before the run started; no MLflow run was made"}
    assert "Traceback" not in r.stderr and sig in r.stderr
    assert list((tmp_path / "qpo").iterdir()) == []  # nothing was created: no store, no mlflow.db


def test_without_json_the_reason_goes_to_stderr(tmp_path):
    r = subprocess.run([sys.executable, "-c", SELF_SIGNAL, "pipeline", "run", "daily-report"],
                       env=_env(tmp_path) | {"SIG": "SIGTERM"}, capture_output=True, text=True, timeout=300,
                       cwd=tmp_path)
    assert r.returncode == 143 and r.stdout == ""
    assert r.stderr.strip() == "qpo: pipeline daily-report: interrupted by SIGTERM before the run started; no MLflow run was made"


def _catches(pid: int, signum: int) -> bool:
    """Whether process ``pid`` has a handler for ``signum`` (its SigCgt mask in /proc)."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("SigCgt:"):
                    return bool(int(line.split()[1], 16) >> (signum - 1) & 1)
    except FileNotFoundError:
        pass
    return False


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="reads the handler mask from /proc")
def test_sigterm_as_soon_as_the_console_script_listens(tmp_path):
    """The real ``qpo`` script: SIGTERM the moment it has a SIGTERM handler (polled in /proc, no
    guess at how long imports take), which is now before its heavy imports."""
    cmd = [str(EXE)] if EXE.exists() else [sys.executable, "-m", "qpo.cli"]
    proc = subprocess.Popen(cmd + ["pipeline", "run", "daily-report", "--json"], env=_env(tmp_path), cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not _catches(proc.pid, signal.SIGTERM) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.001)
    assert proc.poll() is None, "the command ended before it listened for SIGTERM"
    modules_loaded = open(f"/proc/{proc.pid}/maps").read()  # noqa: SIM115 - one read
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 143, (proc.returncode, out, err)
    lines = out.splitlines()
    assert len(lines) == 1 and json.loads(lines[0])["status"] == "KILLED", (out, err)
    assert json.loads(lines[0])["signal"] == "SIGTERM" and "Traceback" not in err
    assert "torch" not in modules_loaded and "_sqlite3" not in modules_loaded  # it listened before heavy imports
