"""Refusals stay short whatever the input: an unknown option quotes at most 60 characters of the
value and lists at most 20 valid names ("... and N more"), while ``.valid`` keeps every name."""
from __future__ import annotations

import os
import subprocess
import sys

from qpo.errors import LISTED_NAMES, VALUE_CHARS, UnknownOptionError, quoted
from tests.conftest import ROOT

NAMES = [f"Client {i:05d} Growth" for i in range(10_000)]
HUGE = "x" * 10_000


def test_a_huge_value_against_a_huge_list_is_a_short_message():
    err = UnknownOptionError("portfolio", HUGE, NAMES, see="see `qpo portfolio list`")
    msg = str(err)
    assert len(msg) < 700, len(msg)  # was 230,000 characters
    echoed = msg[msg.index("'x"):msg.index("; valid:")]
    assert echoed == repr("x" * VALUE_CHARS) + "... (10000 characters)" and len(echoed) < 300
    listed = msg.split("; valid: ", 1)[1]
    assert listed.endswith(f" ... and {10_000 - LISTED_NAMES} more (see `qpo portfolio list`)")
    assert listed.count("Client ") == LISTED_NAMES == 20
    assert err.valid == sorted(NAMES) and len(err.valid) == 10_000 and err.value == HUGE  # all kept for code


def test_a_typo_in_a_long_list_shows_its_neighbours_first():
    msg = str(UnknownOptionError("portfolio", "Client 04242 Growht", NAMES))
    first = msg.split("; valid: ", 1)[1].split(", ")[:5]
    assert "Client 04242 Growth" in first and all(n.startswith("Client 042") for n in first)
    small = [f"Fund {c}" for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZ"]
    assert str(UnknownOptionError("fund", "Fund Q!", small)).split("; valid: ")[1].startswith("Fund Q, ")


def test_a_short_list_and_value_read_as_before():
    assert str(UnknownOptionError("solver", "GUROBI", ["OSQP", "CLARABEL"])) == "unknown solver 'GUROBI'; valid: CLARABEL, OSQP"
    assert str(UnknownOptionError("x", 3, ["a"])) == "unknown x 3; valid: a"


def test_long_names_kinds_and_odd_values_are_cut_too():
    msg = str(UnknownOptionError("k" * 5000, ("y" * 5000,), ["n" * 5000] * 3))
    assert len(msg) < 600 and "(5005 characters)" in msg and "n" * 37 + "..." in msg
    assert quoted(10 ** 5000) == "a value of type int"  # too many digits to print


class _Unprintable:
    def __repr__(self):
        raise RuntimeError("no")


def test_a_value_whose_repr_fails_is_named_by_its_type():
    assert str(UnknownOptionError("thing", _Unprintable(), ["a"])) == "unknown thing a value of type _Unprintable; valid: a"


def test_the_cli_refusal_of_a_10000_character_portfolio_is_short(tmp_path):
    """``qpo pipeline run daily-report -p portfolio <10,000 characters>`` on the demo store: one
    short line (it printed the value in full, 10,157 characters)."""
    exe = ROOT / ".venv" / "bin" / "qpo"
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "qpo.cli"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("QPO_")} | {"QPO_HOME": str(tmp_path)}
    seed = subprocess.run(cmd + ["db", "seed"], env=env, capture_output=True, text=True, timeout=300)
    assert seed.returncode == 0, seed.stderr
    r = subprocess.run(cmd + ["pipeline", "run", "daily-report", "-p", "portfolio", HUGE], env=env,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode != 0 and "Traceback" not in r.stderr
    assert len(r.stdout + r.stderr) < 600, len(r.stdout + r.stderr)
    assert "(10000 characters)" in r.stderr and "Balanced Growth" in r.stderr
