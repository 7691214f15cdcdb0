"""Dashboard kernels are culled once idle (issue 16: each visit kept a ~300 MB kernel alive for
as long as the server ran). The server is started as a user does (`qpo dashboard advisor`), with
the idle timeout and interval from the environment."""
from __future__ import annotations

import os
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.servers import free_port, serving

VISITS = int(os.environ.get("QPO_TEST_DASHBOARD_VISITS", "2"))  # more for a measurement by hand
IDLE, INTERVAL = 5, 2


def kernels_of(pid: int) -> list[int]:
    """The live (not zombie) Jupyter kernel processes that server ``pid`` started."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            cmdline = (stat.parent / "cmdline").read_bytes()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] != "Z" and b"ipykernel" in cmdline:
            found.append(int(stat.parent.name))
    return found


def rss_mb(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


def _visit(url: str) -> str:
    # a plain GET renders the notebook: Voila starts a kernel for the visit and runs every cell
    with urllib.request.urlopen(url, timeout=240) as resp:
        return resp.read().decode()


def test_idle_dashboard_kernels_are_culled(qpo_home, monkeypatch, sp500):
    from qpo.store import connect
    from qpo.workbench.demo import seed_demo

    seed_demo(connect(), prices=sp500)  # `qpo db seed`
    monkeypatch.setenv("QPO_DASHBOARD_CULL_IDLE", str(IDLE))
    monkeypatch.setenv("QPO_DASHBOARD_CULL_INTERVAL", str(INTERVAL))
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    cmd = [sys.executable, "-m", "qpo.cli", "dashboard", "advisor", "--port", str(port)]
    with serving(cmd, url + "voila/static/voila.js", qpo_home / "voila.log") as _, \
            ThreadPoolExecutor(VISITS) as pool:
        server = _server_pid(port)
        assert kernels_of(server) == []  # no pool: an idle server runs no kernel
        started = time.perf_counter()
        pages = list(pool.map(_visit, [url] * VISITS))
        visited = time.perf_counter()
        for page in pages:  # the dashboard ran: its widgets are in the page, no cell failed
            assert "application/vnd.jupyter.widget-view+json" in page and "There was an error" not in page
        alive = kernels_of(server)
        memory = rss_mb(alive)
        assert len(alive) == VISITS, alive  # one kernel per visit, alive after the page was served
        while kernels_of(server) and time.perf_counter() - visited < IDLE + 4 * INTERVAL + 20:
            time.sleep(0.5)
        after = kernels_of(server)
        gone = time.perf_counter() - visited
        assert after == [], f"{len(after)} kernels still alive {gone:.0f} s after the last visit"
        assert gone >= IDLE  # culled for being idle, not at once
    print(f"{VISITS} visits in {visited - started:.1f} s: {len(alive)} kernels alive ({memory:.0f} MB RSS), "
          f"0 alive {gone:.1f} s after the last visit (idle timeout {IDLE} s, interval {INTERVAL} s)")


def _server_pid(port: int) -> int:
    """The process listening on ``port`` (the Voila server: `qpo dashboard` execs into it)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            parts = line.split()
            if int(parts[1].rsplit(":", 1)[1], 16) == port and parts[3] == "0A":  # LISTEN
                inodes.add(parts[9])
    for fd in Path("/proc").glob("[0-9]*/fd/*"):
        try:
            link = fd.readlink().as_posix()
        except OSError:
            continue
        if link.startswith("socket:[") and link[8:-1] in inodes:
            return int(fd.parent.parent.name)
    pytest.fail(f"no process listens on port {port}")
