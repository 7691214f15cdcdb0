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
    ratio = prices / prices.shift(1)
    rets = np.log(ratio) if kind == "log" else ratio - 1.0
    rets = rets.iloc[1:]
    if dropna != "none":
        rets = rets.dropna(how=dropna)
    return rets
