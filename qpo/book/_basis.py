"""Which basis a position's shares are counted on: a ledger that traded at a vendor's adjusted
prices (the bundled panel's, a demo book's) counts split-adjusted shares from the start, one that
traded at the actual prices (a broker's statement) counts the shares actually held. The valuation
values each at its own closes and the split booking splits only the second
(:mod:`qpo.book.valuation`, :mod:`qpo.book.corporate_actions`)."""
from __future__ import annotations

import numpy as np
import pandas as pd

#: a trade price within this ratio of the day's actual close is on the actual basis, whatever the
#: adjusted close (intraday prices stray from the close; a 5 % stock dividend cannot be told apart)
BASIS_TOLERANCE = 1.05


def adjusted_is_nearer(off_actual: float, off_adjusted: float) -> bool:
    """Whether trade prices ``off_actual`` and ``off_adjusted`` away (|log| of price / close, their
    median) from the actual and the adjusted closes of their days were made at the adjusted ones:
    nearer to them, and beyond :data:`BASIS_TOLERANCE` of the actual ones. NaN (no close): no."""
    return bool(off_adjusted < off_actual and off_actual > np.log(BASIS_TOLERANCE))


def adjusted_basis(entries: pd.DataFrame, px: pd.DataFrame, adj: pd.DataFrame) -> set[tuple[int, str]]:
    """The (portfolio id, ticker) positions whose ledger traded at ``adj``'s prices rather than at
    ``px``'s (the median distance of their trade prices from each panel's close of the trade day:
    :func:`adjusted_is_nearer`). Positions without a priced trade, or
    whose days have no close, are on the actual basis."""
    rows = entries[entries["ticker"].notna() & entries["price"].notna() & (entries["dq"] != 0)
                   & (entries["kind"] != "split")]
    if rows.empty:
        return set()
    days = px.index.get_indexer(pd.DatetimeIndex(rows["trade_date"]))
    out = []
    for panel in (px, adj.reindex(index=px.index, columns=px.columns)):
        cols = panel.columns.get_indexer(rows["ticker"].astype(str))
        ok = (days >= 0) & (cols >= 0)
        close = np.full(len(rows), np.nan)
        close[ok] = panel.to_numpy(dtype=float)[days[ok], cols[ok]]
        with np.errstate(divide="ignore", invalid="ignore"):
            out.append(np.abs(np.log(rows["price"].to_numpy(dtype=float) / close)))
    frame = pd.DataFrame({"p": rows["portfolio_id"].to_numpy(), "t": rows["ticker"].astype(str).to_numpy(),
                          "act": out[0], "adj": out[1]})
    med = frame.groupby(["p", "t"])[["act", "adj"]].median()
    return {(int(p), str(t)) for (p, t), act, adj in zip(med.index, med["act"], med["adj"], strict=True)
            if adjusted_is_nearer(act, adj)}
