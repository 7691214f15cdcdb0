"""The installed ``qpo`` console script (and ``python -m qpo.cli``) as a shell meets it: exit
statuses, one JSON document on stdout, the password piped on stdin, text that is not ASCII."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT
from tests.test_cli.conftest import ADMIN, ANA, BEN

EXE = ROOT / ".venv" / "bin" / "qpo"


def qpo(*args, env, stdin: str = "", module: bool = False):
    cmd = [sys.executable, "-m", "qpo.cli"] if module or not EXE.exists() else [str(EXE)]
    return subprocess.run(cmd + [str(a) for a in args], input=stdin, capture_output=True, text=True, env=env,
                          timeout=120, encoding="utf-8")


@pytest.fixture
def env(store_url):
    e = {k: v for k, v in os.environ.items() if k != "QPO_USER"}
    e["QPO_DATABASE_URL"] = store_url
    e["PYTHONIOENCODING"] = "utf-8"
    return e


def test_a_session_in_the_shell(env, tmp_path):
    secret = "piped-Secret-4711"
    r = qpo("user", "list", "--as", ADMIN, "--json", env=env)
    assert r.returncode == 3 and json.loads(r.stdout)["kind"] == "MissingStoreError"
    r = qpo("user", "add", ADMIN, "--name", "Ada ✓", "--role", "admin", "--password-stdin", env=env,
            stdin=secret + "\n")
    assert r.returncode == 0 and r.stdout == f"added admin Ada ✓ <{ADMIN}> with a password\n", r.stderr
    assert qpo("user", "add", ANA, "--name", "Ana", "--role", "advisor", "--as", ADMIN, env=env).returncode == 0
    assert qpo("user", "add", BEN, "--name", "Ben", "--role", "advisor", "--as", ADMIN, env=env, module=True).returncode == 0
    ledger = tmp_path / "l.csv"
    ledger.write_text("kind,trade_date,ticker,quantity,price,fees,amount,note\n"
                      "buy,2022-12-05,KO,10,60,1,,première 🦄\n", encoding="utf-8")
    from qpo.store import connect, create_portfolio, session_scope

    with session_scope(connect(env["QPO_DATABASE_URL"])) as s:
        create_portfolio(s, ANA, "Emoji 🦄 'quoted'", "Client", ANA, cash=1000, trade_date="2022-12-01")
    r = qpo("portfolio", "transactions", "Emoji 🦄 'quoted'", "--import", ledger, "--json", env={**env, "QPO_USER": ANA})
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["cash"] == 1000 - 601 and doc["transactions"][-1]["note"] == "première 🦄"
    r = qpo("portfolio", "transactions", "Emoji 🦄 'quoted'", "--import", ledger, "--as", BEN, "--json", env=env)
    assert r.returncode == 4 and r.stdout.count("\n") == 1 and json.loads(r.stdout)["kind"] == "AccessDenied"
    assert r.stderr.startswith(f"qpo: error: {BEN} (advisor) may not add transactions") and "Traceback" not in r.stderr
    r = qpo("portfolio", "show", "nope", "--as", ANA, env=env)
    assert r.returncode == 2 and r.stdout == "" and "no portfolio named 'nope'" in r.stderr
    r = qpo("audit", "--as", ADMIN, "--json", env=env)
    assert r.returncode == 0 and secret not in r.stdout
    assert [e["action"] for e in json.loads(r.stdout)["audit"]] == ["user_add", "user_add", "user_add", "create", "transaction"]
    r = qpo("portfolio", "list", "--as", ANA, env=env)
    assert r.returncode == 0 and "Emoji 🦄 'quoted'" in r.stdout and "399.00" in r.stdout


def test_usage_errors_keep_argparses_status_and_the_book_adds_json(env):
    r = qpo("rebalance", "reject", "--json", env=env)
    assert r.returncode == 2 and json.loads(r.stdout)["kind"] == "UsageError" and "usage: qpo rebalance reject" in r.stderr
    r = qpo("validate", env=env)  # an older command: argparse as before, nothing on stdout
    assert r.returncode == 2 and r.stdout == "" and "the following arguments are required: path" in r.stderr


def test_a_mistyped_option_gets_its_commands_usage_and_the_option_meant(capsys):
    """argparse reports unrecognized arguments from the top parser: the whole `qpo` usage, no hint.
    Now the command's own usage and the closest option (before: `usage: qpo [-h] [--as EMAIL]
    {validate,pipeline,...}` and no word of --max-turnover)."""
    from qpo.cli import main

    assert main(["rebalance", "propose", "X", "--max-turnvoer", "0.1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: qpo rebalance propose")
    assert err.rstrip().endswith("qpo rebalance propose: error: unrecognized arguments: --max-turnvoer 0.1 (did you "
                                 "mean --max-turnover?)")
    assert main(["pipeline", "run", "backtest", "--wrokers", "2"]) == 2  # nothing close: no guess
    assert capsys.readouterr().err.rstrip().endswith("qpo pipeline run: error: unrecognized arguments: --wrokers 2")
    # no abbreviations: --as after `nightly value` was taken for --as-of ("'adm@x.com' is not a date")
    assert main(["nightly", "value", "--as", "adm@x.com"]) == 2
    assert capsys.readouterr().err.rstrip().endswith("qpo nightly value: error: unrecognized arguments: --as adm@x.com")
