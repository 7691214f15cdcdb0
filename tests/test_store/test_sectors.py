"""The book's sector map (qpo.store.sectors, `qpo data sectors FILE`), on SQLite and PostgreSQL:
stored all or nothing, read over the bundled map, and used by the nightly risk run, proposals and
strategies; names without a sector are not one made-up sector under a cap on every sector."""
from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from qpo.book.strategy import Strategy
from qpo.errors import StoreError
from qpo.store import connect
from qpo.store.models import SectorOf
from qpo.store.sectors import book_sectors, stored_sectors, upsert_sectors
from tests.conftest import database_urls
from tests.test_store.test_store import fresh_store_url


@pytest.fixture(params=database_urls())
def engine(request, tmp_path, monkeypatch):
    with fresh_store_url(request.param, tmp_path) as url:
        monkeypatch.setenv("QPO_DATABASE_URL", url)
        yield connect(url)


def test_a_map_is_stored_all_or_nothing_and_read_over_the_bundled_one(engine):
    assert stored_sectors(engine) == {} and book_sectors(engine)["AAPL"] == "Information Technology"
    assert upsert_sectors(engine, {"NVDA": "Information Technology", "AAPL": "Communication Services"}) == 2
    assert upsert_sectors(engine, {"NVDA": "Information Technology"}) == 0  # the same again: nothing changed
    assert upsert_sectors(engine, {"NVDA": "Information Technology"}, source="gics-2026") == 1  # a new source
    with engine.connect() as conn:
        assert conn.execute(select(SectorOf.source).where(SectorOf.ticker == "NVDA")).scalar_one() == "gics-2026"
    sectors = book_sectors(engine)
    assert sectors["NVDA"] == "Information Technology" and sectors["AAPL"] == "Communication Services"
    assert sectors["KO"] == "Consumer Staples"  # bundled, not overridden
    before = stored_sectors(engine)
    bad = {"MSFT": "Information technology", "XOM": "Unclassified", "A B": "Energy", "JPM": "", "GE": "Industrials"}
    with pytest.raises(StoreError) as info:
        upsert_sectors(engine, bad)
    text = str(info.value)
    assert "XOM is given the sector 'Unclassified'" in text and "not a ticker symbol" in text and len(text) < 400
    assert stored_sectors(engine) == before  # nothing of it written, not even GE's good row
    with pytest.raises(StoreError, match="'Information technology' is a near miss of 'Information Technology'"):
        upsert_sectors(engine, {"MSFT": "Information technology"})
    with pytest.raises(StoreError, match="tickers given twice: AAPL"):  # one ticker once its spaces are stripped
        upsert_sectors(engine, {"AAPL": "Information Technology", " AAPL": "Energy"})
    with pytest.raises(StoreError, match="holds no ticker"):
        upsert_sectors(engine, {})


def test_the_command_line_loads_a_file_and_says_what_has_no_sector(engine, tmp_path, capsys):
    from qpo.cli import main

    path = tmp_path / "sectors.csv"
    path.write_text("ticker,name,sector\nNVDA,NVIDIA,Information Technology\nTSLA,Tesla,Consumer Discretionary\n")
    assert main(["data", "sectors", str(path), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["tickers"] == 2 and out["written"] == 2
    assert out["sectors"] == ["Consumer Discretionary", "Information Technology"]
    path.write_text("ticker,sector\nNVDA,Information Technology\nNVDA,Energy\n")
    assert main(["data", "sectors", str(path)]) == 2
    assert "gives NVDA more than once" in capsys.readouterr().err
    assert stored_sectors(engine)["NVDA"] == "Information Technology"


def test_a_cap_on_every_sector_caps_the_named_sectors_not_the_names_without_one():
    """A 40 % cap on every sector grouped 280 names without a sector as one 'Unclassified' group
    capped at 40 %, so a proposal put 60 % into the few names the map knew."""
    names = ["AAPL", "MSFT", "KO", "NEW1", "NEW2", "NEW3"]
    sectors = {"AAPL": "Information Technology", "MSFT": "Information Technology", "KO": "Consumer Staples"}
    c = Strategy(sector_max=0.4).constraints_for(names, sectors)
    assert dict(c.group_max) == {"Information Technology": 0.4, "Consumer Staples": 0.4}
    named = Strategy(sector_max={"Unclassified": 0.1}).constraints_for(names, sectors)  # asked for by name: kept
    assert dict(named.group_max) == {"Unclassified": 0.1}
