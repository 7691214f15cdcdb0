"""Returns from prices, in one place."""
from __future__ import annotations

import numpy as np
import pandas as pd

from qpo.errors import DataError, UnknownOptionError


def prices_to_returns(prices: pd.DataFrame, kind: str = "simple", dropna: str = "any") -> pd.DataFrame:
    """Period returns of a price panel.

    ``kind="simple"`` gives ``p_t / p_{t-1} - 1`` (the convention of every qpo metric),
    ``"log"`` gives ``log(p_t / p_{t-1})``. Rows with a missing return are dropped
    (``dropna="any"``; ``"all"`` drops only rows where every ticker is missing, ``"none"`` keeps all).
    """
    if kind not in ("simple", "log"):
        raise UnknownOptionError("return kind", kind, ["simple", "log"])
    if dropna not in ("any", "all", "none"):
        raise UnknownOptionError("dropna policy", dropna, ["any", "all", "none"])
    if not prices.index.is_monotonic_increasing or prices.index.has_duplicates:
        raise DataError("prices must have sorted, unique dates; validate them first "
                        "(qpo.validate_prices) to see the offending rows")
    values = prices.to_numpy(dtype=float) if isinstance(prices, pd.DataFrame) else np.asarray(prices, dtype=float)
    with np.errstate(invalid="ignore"):
        bad = np.argwhere(values <= 0) if values.ndim == 2 else np.argwhere((values <= 0)[:, None])
    if len(bad):  # a price is positive: zero or below is a defect, or these are returns already
        i, j = bad[0]
        name = prices.columns[j] if isinstance(prices, pd.DataFrame) else getattr(prices, "name", "the series")
        raise DataError(f"prices must be positive: {name} is {values[i, j] if values.ndim == 2 else values[i]:.6g} on "
                        f"{pd.Timestamp(prices.index[i]).date()} ({len(bad):,} value(s) at or below 0); if these "
                        "are returns already, use them as they are; validate prices with qpo.validate_prices")
    ratio = prices / prices.shift(1)
    rets = np.log(ratio) if kind == "log" else ratio - 1.0
    rets = rets.iloc[1:]
    if dropna != "none":
        before = len(rets)
        rets = rets.dropna(how=dropna)
        if dropna == "any" and before >= 20 and len(rets) < 0.9 * before:
            _warn_dropped(prices, before, len(rets))
    return rets


def _warn_dropped(prices: pd.DataFrame, before: int, after: int) -> None:
    """Say which tickers' late starts (or early ends) cost most of the rows ``dropna="any"`` dropped."""
    import warnings

    from qpo.errors import DataWarning

    first = prices.apply(pd.Series.first_valid_index)
    last = prices.apply(pd.Series.last_valid_index)
    late = first[first.notna()].sort_values(ascending=False)
    early = last[last.notna()].sort_values()
    named = [f"{t} starts on {pd.Timestamp(d).date()}" for t, d in late.head(3).items() if d > prices.index[0]]
    named += [f"{t} ends on {pd.Timestamp(d).date()}" for t, d in early.head(2).items() if d < prices.index[-1]]
    why = "; ".join(named) if named else "gaps inside the tickers' histories"
    warnings.warn(f"prices_to_returns(dropna='any') kept {after:,} of {before:,} rows (a row is dropped when any "
                  f"ticker lacks a return): {why}. Select the tickers, start later, or pass dropna='all' to keep "
                  "the rows with their NaNs", DataWarning, stacklevel=3)
