"""The client book's command line, run in-process through ``qpo.cli.main`` on a fresh store per
test: a SQLite file, and (when QPO_TEST_DATABASE_URL is set, as CI does) a private schema of the
real PostgreSQL."""
from __future__ import annotations

import io
import json
import sys
from dataclasses import dataclass

import pytest
from sqlalchemy import create_engine, text

from tests.conftest import database_urls
from tests.test_store.test_store import fresh_store_url

ADMIN, ANA, BEN, RITA = "admin@example.com", "ana@example.com", "ben@example.com", "rita@example.com"
#: the book's tables, each dumped whole (ordered by id) to prove a refused command wrote nothing
BOOK_TABLES = ("advisors", "portfolios", "transactions", "proposals", "audit_log", "optimization_runs")


@dataclass
class Result:
    code: int
    out: str
    err: str

    @property
    def json(self):
        """The one JSON document on stdout (fails the test when there is not exactly one)."""
        lines = [line for line in self.out.splitlines() if line.strip()]
        assert len(lines) == 1, f"expected one JSON line on stdout, got {self.out!r} (stderr {self.err!r})"
        return json.loads(lines[0])

    @property
    def text(self) -> str:
        return self.out + self.err


class Cli:
    """``qpo ...`` in this process, with stdout and stderr captured and stdin given."""

    def __init__(self, capsys, monkeypatch, url: str):
        self.capsys, self.monkeypatch, self.url = capsys, monkeypatch, url

    def __call__(self, *argv: str, stdin: str = "", actor: str | None = None) -> Result:
        from qpo.cli import main

        args = [str(a) for a in argv]
        if actor is not None:
            args = ["--as", actor, *args]
        self.capsys.readouterr()
        self.monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
        code = main(args)
        captured = self.capsys.readouterr()
        return Result(code, captured.out, captured.err)

    def ok(self, *argv: str, **kw) -> Result:
        r = self(*argv, **kw)
        assert r.code == 0, (argv, r.out, r.err)
        return r

    def dump(self) -> dict:
        """Every row of the book's tables, to compare before and after a refused command."""
        engine = create_engine(self.url)
        try:
            with engine.connect() as conn:
                return {t: [tuple(r) for r in conn.execute(text(f"SELECT * FROM {t} ORDER BY id"))] for t in BOOK_TABLES}
        finally:
            engine.dispose()

    def refused(self, *argv: str, code: int = 2, **kw) -> Result:
        """Run a command that must be refused: exit ``code``, the message on stderr and as JSON on
        stdout, no traceback, and the store exactly as it was."""
        before = self.dump()
        r = self(*argv, "--json", **kw)
        assert r.code == code, (argv, r.code, r.out, r.err)
        doc = r.json
        assert set(doc) == {"error", "kind", "exit"} and doc["exit"] == code
        assert r.err.strip() == f"qpo: error: {doc['error']}" or doc["kind"] == "UsageError", r.err
        assert "Traceback" not in r.text and len(doc["error"]) < 300
        assert self.dump() == before, f"{argv} wrote to the store"
        return r


@pytest.fixture(params=database_urls())
def store_url(request, tmp_path, monkeypatch):
    with fresh_store_url(request.param, tmp_path) as url:
        monkeypatch.setenv("QPO_DATABASE_URL", url)
        monkeypatch.delenv("QPO_USER", raising=False)
        yield url


@pytest.fixture
def cli(capsys, monkeypatch, store_url) -> Cli:
    return Cli(capsys, monkeypatch, store_url)


@pytest.fixture
def people(cli) -> Cli:
    """A store with its people: an admin (the bootstrap), two advisors and a researcher."""
    cli.ok("user", "add", ADMIN, "--name", "Ada Admin", "--role", "admin")
    cli.ok("user", "add", ANA, "--name", "Ana Silva", "--role", "advisor", actor=ADMIN)
    cli.ok("user", "add", BEN, "--name", "Ben Okafor", "--role", "advisor", actor=ADMIN)
    cli.ok("user", "add", RITA, "--name", "Rita Chen", "--role", "researcher", actor=ADMIN)
    return cli


@pytest.fixture
def book(people) -> Cli:
    """People and two portfolios made through the store (not the command line under test): Ana's
    'Harper' (100 AAPL, 50 KO and 10,000 cash) and Ben's 'Tech' (25,000 cash)."""
    from qpo.store import add_transaction, connect, create_portfolio, session_scope

    with session_scope(connect()) as s:
        create_portfolio(s, ANA, "Harper", "Harper Family Trust", ANA, holdings={"AAPL": 100, "KO": 50},
                         trade_date="2022-12-01")
        create_portfolio(s, BEN, "Tech", "Nakamura Ventures", BEN, cash=25_000, trade_date="2022-12-01")
    with session_scope(connect()) as s:
        add_transaction(s, ANA, "Harper", "deposit", trade_date="2022-12-01", amount=10_000)
    return people
