"""A database password never reaches a message, whichever way the URL carries it: before the host
(``user:pw@``) or as a query key (``?password=``, which libpq and SQLAlchemy take too); a URL that
does not parse is one line, not a traceback."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from qpo.store.db import safe_url, url_secrets
from tests.servers import free_port

SECRET = "S3CRET-pw/x"


@pytest.mark.parametrize("url, shown", [
    ("postgresql+psycopg://qpo:S3CRET-pw%2Fx@db.example:5432/book", "postgresql+psycopg://qpo:***@db.example:5432/book"),
    ("postgresql://qpo@db.example:5432/book?password=S3CRET-pw%2Fx&sslmode=require",
     "postgresql://qpo@db.example:5432/book?password=***&sslmode=require"),
    ("postgresql://qpo@db.example/book?PassWord=S3CRET-pw%2Fx", "postgresql://qpo@db.example/book?PassWord=***"),
    ("postgresql://qpo:S3CRET-pw@db.example:notaport/book?password=S3CRET-pw", "db.example:notaport/book"),
])
def test_safe_url_hides_the_password_before_the_host_and_in_the_query(url, shown):
    assert safe_url(url) == shown
    assert "S3CRET" not in safe_url(url)


def test_url_secrets_are_the_password_as_written_and_quoted():
    found = url_secrets("postgresql://qpo@h/book?password=S3CRET-pw%2Fx&sslmode=require")
    assert SECRET in found and "S3CRET-pw%2Fx" in found and "require" not in found
    assert url_secrets("not a url") == [] and url_secrets("sqlite:///x.db") == []


def _qpo(*argv, url, tmp_path):
    env = {**os.environ, "QPO_HOME": str(tmp_path), "QPO_DATABASE_URL": url}
    return subprocess.run([sys.executable, "-m", "qpo.cli", *argv], env=env, capture_output=True, text=True,
                          timeout=120)


def test_the_cli_and_the_login_page_never_show_a_query_password(tmp_path, monkeypatch):
    url = f"postgresql+psycopg://qpo@127.0.0.1:{free_port()}/nowhere?password=S3CRET-pw%2Fx"
    shown = _qpo("db", "url", url=url, tmp_path=tmp_path)
    assert shown.returncode == 0 and shown.stdout.strip().endswith("/nowhere?password=***")
    listed = _qpo("portfolio", "list", "--json", url=url, tmp_path=tmp_path)
    assert listed.returncode == 2 and "cannot open the store at" in listed.stdout
    monkeypatch.setenv("QPO_HOME", str(tmp_path))
    monkeypatch.setenv("QPO_DATABASE_URL", url)
    from qpo.workbench.auth import store_problem

    banner = store_problem()
    assert banner and "cannot open the store" in banner
    for said in (shown.stdout + shown.stderr, listed.stdout + listed.stderr, banner):
        assert "S3CRET" not in said


def test_a_url_that_does_not_parse_is_one_line(tmp_path):
    for url in ("postgresql://u:S3CRET@127.0.0.1:notaport/db", "postgresql://u:S3CRET@[::1/db"):
        r = _qpo("db", "url", url=url, tmp_path=tmp_path)
        assert r.returncode == 2 and "Traceback" not in r.stderr and "S3CRET" not in r.stdout + r.stderr
        assert "QPO_DATABASE_URL is not a database URL" in r.stderr
