"""Paths the system refuses (too long, a folder name over 255 bytes, bytes that are not UTF-8) and
files with a blank line before their header: one bounded line and exit 2, never a traceback; and
the ledger listed in the order it is replayed, proposal ids as whole numbers."""
from __future__ import annotations

import pytest

from tests.test_cli.conftest import ADMIN, ANA


@pytest.mark.parametrize("argv", [
    ("portfolio", "create", "X", "--client", "c", "--advisor", ANA, "--holdings", "b" * 10_000),
    ("portfolio", "transactions", "Harper", "--import", "b" * 10_000),
    ("portfolio", "update", "Harper", "--strategy", "b" * 10_000),
])
def test_a_path_the_system_refuses_is_one_bounded_line(book, argv):
    """Each ended in `OSError: [Errno 36] File name too long` with the 10,000 characters, exit 1."""
    r = book.refused(*argv, actor=ADMIN)
    assert r.json["error"].startswith("the system refused the file 'bbbb") and "(10000 characters)" in r.json["error"]
    assert "File name too long" in r.json["error"]


def test_an_export_to_a_path_the_system_refuses_writes_nothing(book, tmp_path):
    out = tmp_path / "exports"
    out.mkdir()
    doc = book.ok("rebalance", "propose", "Harper", "--json", actor=ANA).json
    pid = str(doc["proposal"]["id"])
    for flag, path in (("--csv", out / ("c" * 300) / "t.csv"), ("--html", out / "t\udcff.html")):
        r = book("rebalance", "export", pid, flag, str(path), "--json", actor=ANA)
        assert r.code == 2 and "Traceback" not in r.text, r.text
        assert len(r.json["error"]) < 300 and ("File name too long" in r.json["error"] or "UTF-8" in r.json["error"])
    assert [p.name for p in out.iterdir()] == []


def test_a_blank_line_before_the_holdings_header_is_skipped(book, tmp_path):
    (tmp_path / "h.csv").write_text("\n\nticker,shares\nAAPL,10\n")
    doc = book.ok("portfolio", "create", "Lead", "--client", "c", "--advisor", ANA, "--holdings", tmp_path / "h.csv",
                  "--json", actor=ADMIN).json
    assert doc["created"] == "Lead"
    listed = book.ok("portfolio", "transactions", "Lead", "--json", actor=ADMIN).json
    assert listed["holdings"] == {"AAPL": 10.0}


def test_the_ledger_is_listed_in_replay_order_with_whole_proposal_ids(book, tmp_path):
    (tmp_path / "l.csv").write_text("kind,trade_date,ticker,quantity,price\nsell,2022-12-05,AAPL,20,125\n"
                                    "split,2022-12-05,AAPL,300,\n")
    doc = book.ok("portfolio", "transactions", "Harper", "--import", tmp_path / "l.csv", "--json", actor=ANA).json
    kinds = [(t["trade_date"], t["kind"]) for t in doc["transactions"]]
    assert kinds[-2:] == [("2022-12-05", "split"), ("2022-12-05", "sell")]  # the split first, as replayed
    assert doc["holdings"]["AAPL"] == 380.0  # 100 + 300, then 20 sold
    assert all(t["proposal_id"] is None or isinstance(t["proposal_id"], int) for t in doc["transactions"])
