"""A command that changes what must already be in the store (a person, a portfolio, a proposal, an
alert) finds no store: refused with exit 3 and how to create one, and no store is created only for
the command to find nothing to change. Adding a person or a portfolio, or loading market data,
creates the store as before."""
from __future__ import annotations

import pytest

from tests.test_cli.conftest import ADMIN


@pytest.fixture
def home(qpo_home, monkeypatch, capsys, tmp_path):
    from tests.test_cli.conftest import Cli

    monkeypatch.delenv("QPO_DATABASE_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "t.csv").write_text("kind,trade_date,ticker,quantity,price,fees,amount,note\n"
                                    "deposit,2022-12-01,,,,,1000,\n")
    return qpo_home, Cli(capsys, monkeypatch, f"sqlite:///{qpo_home / 'qpo.db'}")


@pytest.mark.parametrize("argv", [
    ("user", "update", "x@example.com", "--name", "X"),
    ("user", "passwd", "x@example.com", "--password-stdin"),
    ("portfolio", "update", "P", "--client", "C"),
    ("portfolio", "delete", "P"),
    ("portfolio", "transactions", "P", "--import", "t.csv"),
    ("rebalance", "propose", "P"),
    ("rebalance", "accept", "1"),
    ("rebalance", "reject", "1", "--reason", "no"),
    ("alerts", "ack", "1"),
])
def test_a_change_to_a_missing_store_is_refused_and_creates_nothing(home, argv):
    qpo_home, cli = home
    r = cli(*argv, "--json", actor=ADMIN, stdin="a password 12345\n")
    assert r.code == 3, (argv, r.code, r.out, r.err)
    doc = r.json
    assert doc["kind"] == "MissingStoreError" and "no store at" in doc["error"], doc
    assert "Traceback" not in r.text
    assert not (qpo_home / "qpo.db").exists(), f"{argv} created a store"


def test_adding_a_person_still_creates_the_store(home):
    qpo_home, cli = home
    r = cli("user", "add", ADMIN, "--name", "Ada", "--role", "admin")
    assert r.code == 0, r.err
    assert (qpo_home / "qpo.db").exists()
