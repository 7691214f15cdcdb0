"""Market data: bundled real panels and loaders for files a user brings."""
from qpo.data.calendar import BUSINESS_DAYS_PER_YEAR, Frequency, check_as_of, infer_frequency, periods_per_year
from qpo.data.loaders import (
    OHLCV_COLUMNS,
    PRICE_SOURCES,
    data_hash,
    load_ohlcv,
    load_price_file,
    load_prices,
    ohlcv_to_prices,
)
from qpo.data.returns import prices_to_returns
from qpo.data.sectors import BUNDLED_SECTORS, GICS_SECTORS, load_sectors

__all__ = [
    "BUSINESS_DAYS_PER_YEAR",
    "Frequency",
    "check_as_of",
    "infer_frequency",
    "periods_per_year",
    "BUNDLED_SECTORS",
    "GICS_SECTORS",
    "load_sectors",
    "OHLCV_COLUMNS",
    "PRICE_SOURCES",
    "data_hash",
    "load_ohlcv",
    "load_price_file",
    "load_prices",
    "ohlcv_to_prices",
    "prices_to_returns",
]
