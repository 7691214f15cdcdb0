"""The weights of many portfolios at once from their shares and the prices (:func:`weights_at`),
for :func:`qpo.book.valuation.book_weights`."""
from __future__ import annotations

import numpy as np
import pandas as pd

from qpo.book._book_reads import names_list as _names_list


def weights_at(held: pd.DataFrame, px: pd.DataFrame, info: dict, day: pd.Timestamp,
             act: pd.DataFrame | None = None) -> pd.DataFrame:
    if held.empty:
        return pd.DataFrame(index=pd.Index([], dtype=np.int64), dtype=float)
    ports = np.sort(held["portfolio_id"].unique())
    tickers = sorted(held["ticker"].unique())
    row = pd.Index(ports).get_indexer(held["portfolio_id"])
    col = pd.Index(tickers).get_indexer(held["ticker"])
    Q = np.zeros((len(ports), len(tickers)))
    Q[row, col] = held["shares"].to_numpy()
    H = Q != 0
    n_held = H.sum(axis=1)
    avail = px[tickers].notna().to_numpy()  # dates x names
    prices = px[tickers].to_numpy(dtype=float)
    # the last date on which every held name has a price, found from as_of backwards in blocks
    when = np.full(len(ports), -1, dtype=np.int64)
    todo = np.arange(len(ports))
    end = len(px.index)
    step = 32
    while len(todo) and end > 0:
        start = max(0, end - step)
        counts = H[todo].astype(float) @ avail[start:end].T.astype(float)  # portfolios x dates (exact: whole numbers)
        full = counts == n_held[todo][:, None]
        found = full.any(axis=1)
        last = full.shape[1] - 1 - np.argmax(full[:, ::-1], axis=1)
        when[todo[found]] = start + last[found]
        todo = todo[~found]
        end = start
        step *= 4
    for k in todo:
        pid = int(ports[k])
        info[pid]["skipped"] = (f"no date on or before {day.date()} prices all of "
                                f"{_names_list([tickers[j] for j in np.flatnonzero(H[k])])}")
    ok = np.flatnonzero(when >= 0)
    at = prices[when[ok]]
    if act is not None and "adjusted" in held.columns:  # actual-basis positions at the actual closes
        A = np.zeros((len(ports), len(tickers)), dtype=bool)
        A[row, col] = held["adjusted"].to_numpy(dtype=bool)
        actual_px = act.reindex(columns=tickers).to_numpy(dtype=float)[when[ok]]
        at = np.where(A[ok] | np.isnan(actual_px), at, actual_px)
    value = np.where(H[ok], Q[ok] * at, 0.0)
    invested = value.sum(axis=1)
    cash = np.array([info[int(p)]["cash"] for p in ports[ok]])
    total = invested + cash
    # the daily report's arithmetic: (v / invested) * (invested / total)
    w = (value / invested[:, None]) * (invested / total)[:, None]
    for k, i in enumerate(ok):  # type: ignore[assignment]
        item = info[int(ports[i])]
        item["invested"] = float(invested[k])
        item["prices_as_of"] = px.index[when[i]].date()
    return pd.DataFrame(w, index=pd.Index(ports[ok].astype(np.int64)), columns=tickers)
