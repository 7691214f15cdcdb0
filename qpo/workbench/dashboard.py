"""Serving the Voila advisor dashboards on localhost."""
from __future__ import annotations

import sys
from pathlib import Path

from qpo import config
from qpo.errors import UnknownOptionError


def available_dashboards() -> dict[str, Path]:
    d = config.project_root() / "voila_apps"
    return {p.stem: p for p in sorted(d.glob("*.ipynb"))} if d.is_dir() else {}


def voila_command(name: str, port: int = 8866, *, open_browser: bool = False) -> list[str]:
    """The ``voila`` command line that serves dashboard ``name`` (sources stripped, tracebacks
    hidden: Voila's defaults; the ``lab`` template, which needs no CDN)."""
    apps = available_dashboards()
    if name not in apps:
        raise UnknownOptionError("dashboard", name, apps)
    return [sys.executable, "-m", "voila", str(apps[name]), f"--port={port}", "--template=lab",
            "--Voila.ip=127.0.0.1", "--no-browser" if not open_browser else "--Voila.open_browser=True",
            "--show_tracebacks=False", "--strip_sources=True"]


def exec_server(cmd: list[str], cwd: str | None = None) -> None:
    """Replace this process with the server ``cmd``: signals (Ctrl-C, a scheduler's SIGTERM) then
    reach the server itself, and no orphaned server outlives a stopped ``qpo`` command."""
    import os

    sys.stdout.flush()
    sys.stderr.flush()
    if cwd:
        os.chdir(cwd)
    os.execv(cmd[0], cmd)


def serve(name: str, port: int = 8866, *, open_browser: bool = False) -> None:
    """Serve dashboard ``name`` until interrupted (this process becomes the Voila server)."""
    cmd = voila_command(name, port, open_browser=open_browser)
    print(f"serving {name} on http://127.0.0.1:{port}/ (Ctrl-C stops)", flush=True)
    exec_server(cmd, cwd=str(config.project_root() / "voila_apps"))
