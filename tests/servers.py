"""Start a workbench server as a user would (its documented command) and stop it."""
from __future__ import annotations

import os
import socket
import subprocess
import time
import urllib.request
from contextlib import contextmanager

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
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ), cwd=ROOT)
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
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
