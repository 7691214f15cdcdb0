"""Great Expectations suites for price panels and OHLCV bars; every check has a severity."""
from qpo.validation.report import FailedExpectation, Severity, ValidationReport
from qpo.validation.suites import (
    DEFAULT_MAX_ABS_LOG_RETURN,
    DEFAULT_MAX_ADJUSTMENT_GAP,
    DEFAULT_MAX_STALE_DAYS,
    DEFAULT_REVIEW_ABS_RETURN,
    MAX_SPLIT_SHORTFALL,
    validate_file,
    validate_ohlcv,
    validate_prices,
    validate_source,
)

__all__ = [
    "DEFAULT_MAX_ABS_LOG_RETURN",
    "DEFAULT_MAX_ADJUSTMENT_GAP",
    "DEFAULT_MAX_STALE_DAYS",
    "DEFAULT_REVIEW_ABS_RETURN",
    "MAX_SPLIT_SHORTFALL",
    "FailedExpectation",
    "Severity",
    "ValidationReport",
    "validate_file",
    "validate_ohlcv",
    "validate_prices",
    "validate_source",
]
