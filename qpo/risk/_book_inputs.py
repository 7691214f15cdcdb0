"""Input checks of :func:`qpo.risk.book.book_risk`: the weights, returns, limits and benchmark of a book."""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from qpo._checks import check_dated, finite_or_none
from qpo.errors import DataError, InvalidValueError, UnknownOptionError
from qpo.risk.compliance import Limits

num = finite_or_none  # a table cell as a float, None when missing or not finite


def signed(x: float) -> str:
    from qpo.risk.stress import _signed

    return _signed(x)


def check_weights(weights, returns: pd.DataFrame) -> pd.DataFrame:
    if not isinstance(weights, pd.DataFrame):
        raise DataError(f"weights must be a DataFrame, one row per portfolio and one column per ticker, got "
                        f"{type(weights).__name__}")
    if weights.shape[0] == 0:
        raise DataError("the book is empty: weights has no portfolio (row); give one row of weights per portfolio")
    if weights.index.has_duplicates:
        dup = weights.index[weights.index.duplicated()].unique().tolist()[:10]
        raise DataError(f"weights name portfolios more than once: {dup}; give one row per portfolio")
    try:
        values = weights.to_numpy(dtype=float)
    except (TypeError, ValueError) as exc:
        raise DataError(f"weights must be numbers: {exc}") from exc
    bad = ~np.isfinite(values)
    if bad.any():
        rows = np.flatnonzero(bad.any(axis=1))
        where = {weights.index[r]: weights.columns[bad[r]].tolist()[:5] for r in rows[:5]}
        raise DataError(f"weights hold NaN/inf for {len(rows)} portfolio(s), e.g. {where}; a name not held "
                        "has weight 0")
    unknown = [c for c in weights.columns if c not in returns.columns]
    if unknown:
        held = weights[unknown].ne(0.0).any()
        unknown = [c for c in unknown if held[c]]
    if unknown:
        who = weights.index[weights[unknown].ne(0.0).any(axis=1)].tolist()
        raise DataError(f"weights hold tickers the returns do not have: {unknown[:20]}"
                        f"{' ...' if len(unknown) > 20 else ''} (held by {len(who)} portfolio(s), e.g. {who[:5]}); "
                        f"the returns have {len(returns.columns)} tickers, e.g. {list(returns.columns[:10])}")
    return weights


def check_returns(returns, as_of, name: str = "returns") -> pd.DataFrame:
    if not isinstance(returns, pd.DataFrame) or not isinstance(returns.index, pd.DatetimeIndex):
        raise DataError(f"{name} must be a DataFrame of asset returns indexed by date (a pandas DatetimeIndex), one "
                        "column per ticker")
    check_dated(returns, name)
    if as_of is not None:
        returns = returns.loc[:pd.Timestamp(as_of)]
    return returns


def limits_list(limits, index: pd.Index) -> list[Limits | None]:
    if limits is None:
        return [None] * len(index)
    if isinstance(limits, Mapping):
        items = [limits.get(pid) for pid in index]
    elif isinstance(limits, Sequence) and not isinstance(limits, str):
        if len(limits) != len(index):
            raise InvalidValueError(f"limits has {len(limits)} entries for {len(index)} portfolios: give one Limits "
                                    "(or None) per row of weights, in their order, or a mapping by portfolio id")
        items = list(limits)
    else:
        raise InvalidValueError(f"limits must be a sequence of qpo.Limits (or None), one per portfolio, or a mapping "
                                f"portfolio id -> Limits; got {type(limits).__name__}")
    out = []
    for pid, lim in zip(index, items, strict=True):
        try:
            out.append(Limits.coerce(lim))
        except (InvalidValueError, UnknownOptionError) as exc:
            raise InvalidValueError(f"limits of portfolio {pid!r}: {exc}") from exc
    return out


def benchmark_array(benchmark_returns, index: pd.DatetimeIndex) -> np.ndarray | None:
    if benchmark_returns is None:
        return None
    if not isinstance(benchmark_returns, pd.Series) or not isinstance(benchmark_returns.index, pd.DatetimeIndex):
        raise DataError("benchmark_returns must be a Series of benchmark returns indexed by date (or None)")
    b = pd.Series(benchmark_returns, dtype=float).reindex(index)
    if b.isna().any():
        missing = b.index[b.isna()]
        raise DataError(f"the benchmark has no return on {len(missing)} of the {len(index)} dates of the returns "
                        f"(first {missing[0].date()}); give benchmark returns on the same dates (qpo aligns by "
                        "date and does not fill)")
    if not np.isfinite(b.to_numpy()).all():
        raise DataError("the benchmark returns hold inf values")
    return b.to_numpy()
