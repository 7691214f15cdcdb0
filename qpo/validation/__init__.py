"""Great Expectations suites for price panels and OHLCV bars."""
from qpo.validation.report import FailedExpectation, ValidationReport
from qpo.validation.suites import (
    DEFAULT_MAX_ABS_LOG_RETURN,
    DEFAULT_MAX_ADJUSTMENT_GAP,
    DEFAULT_MAX_STALE_DAYS,
    validate_file,
    validate_ohlcv,
    validate_prices,
    validate_source,
)

__all__ = [
    "DEFAULT_MAX_ABS_LOG_RETURN",
    "DEFAULT_MAX_ADJUSTMENT_GAP",
    "DEFAULT_MAX_STALE_DAYS",
    "FailedExpectation",
    "ValidationReport",
    "validate_file",
    "validate_ohlcv",
    "validate_prices",
    "validate_source",
]
