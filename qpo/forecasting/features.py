"""The one feature function that training, walk-forward evaluation and inference all call.

Every feature at date ``t`` is computed from prices (and volume) on or before ``t`` only:
rolling windows look back, cross-sectional ranks compare tickers on the same date. The target is
the only forward-looking quantity and is never an input.

Features (for a :class:`FeatureSpec` with the defaults)

Windows count periods of the prices (trading days for business-daily prices, whose convention,
252 a year, the defaults follow):

``ret_{h}d``
    the return over the last ``h`` periods, ``P_t / P_{t-h} - 1`` (h = 1, 5, 21, 63);
``vol_{w}d``
    annualized volatility of the last ``w`` period returns (``ddof=1``; w = 21, 63), times the
    square root of the prices' periods a year (read from their dates: 252 for business days);
``mom_12_1``
    12-1 momentum: the return from ``t-252`` to ``t-21``, ``P_{t-21} / P_{t-252} - 1``;
``volume_ratio``
    (only when a volume panel is given) ``log`` of the 21-day mean volume over the 252-day mean;
``rank_<feature>``
    the cross-sectional rank of each feature above on that date, scaled to [-0.5, 0.5]
    (0 when a single ticker has a value).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from qpo._checks import quote, whole
from qpo.data.calendar import BUSINESS_DAYS_PER_YEAR, infer_frequency
from qpo.errors import DataError, InvalidValueError


def _positive_ints(name: str, values) -> tuple[int, ...]:
    vals = tuple(values) if isinstance(values, (list, tuple)) else (values,)
    if not vals:
        raise InvalidValueError(f"{name} must be positive whole numbers of trading days, got {values!r}")
    return tuple(whole(f"each of {name}={quote(values)}", v, 1, hint="trading days") for v in vals)


@dataclass(frozen=True)
class FeatureSpec:
    """Which features to compute (all windows in trading days)."""

    return_horizons: tuple[int, ...] = (1, 5, 21, 63)
    vol_windows: tuple[int, ...] = (21, 63)
    momentum: tuple[int, int] | None = (BUSINESS_DAYS_PER_YEAR, 21)
    volume: bool = False
    ranks: bool = True

    def __post_init__(self):
        object.__setattr__(self, "return_horizons", _positive_ints("return_horizons", self.return_horizons))
        vols = _positive_ints("vol_windows", self.vol_windows)
        if min(vols) < 2:
            raise InvalidValueError(f"vol_windows need at least 2 returns each, got {self.vol_windows!r}")
        object.__setattr__(self, "vol_windows", vols)
        if self.momentum is not None:
            mom = _positive_ints("momentum", self.momentum)
            if len(mom) != 2:
                raise InvalidValueError(f"momentum must be (lookback, skip) in trading days, e.g. (252, 21), "
                                        f"got {self.momentum!r}")
            long, skip = mom
            if skip >= long:
                raise InvalidValueError(f"momentum=(lookback, skip) needs skip < lookback, got {self.momentum!r}")
            object.__setattr__(self, "momentum", (long, skip))

    @property
    def base_names(self) -> list[str]:
        names = [f"ret_{h}d" for h in self.return_horizons] + [f"vol_{w}d" for w in self.vol_windows]
        if self.momentum is not None:
            long, skip = self.momentum
            names.append("mom_12_1" if (long, skip) == (BUSINESS_DAYS_PER_YEAR, 21) else f"mom_{long}_{skip}")
        if self.volume:
            names.append("volume_ratio")
        return names

    @property
    def names(self) -> list[str]:
        base = self.base_names
        return base + ([f"rank_{n}" for n in base] if self.ranks else [])

    @property
    def lookback(self) -> int:
        """Prices before ``t`` a ticker needs for every feature at ``t`` to exist."""
        need = [max(self.return_horizons), max(self.vol_windows)]
        if self.momentum is not None:
            need.append(self.momentum[0])
        if self.volume:
            need.append(251)
        return max(need)

    def to_dict(self) -> dict:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict) -> FeatureSpec:
        d = dict(d)
        for k in ("return_horizons", "vol_windows", "momentum"):
            if d.get(k) is not None:
                d[k] = tuple(d[k])
        return cls(**d)


@dataclass
class FeaturePanel:
    """Features as a (dates x tickers x features) array with its labels."""

    dates: pd.DatetimeIndex
    tickers: list[str]
    names: list[str]
    values: np.ndarray  # float64, (T, N, F); NaN where a feature does not exist yet
    listed: np.ndarray = field(repr=False)  # bool (T, N): the ticker has a price at t

    def to_frame(self, dates=None) -> pd.DataFrame:
        """Long frame: one row per (date, ticker) with a price, columns ``date``, ``ticker`` and
        the features; ``dates`` (optional) keeps those dates only."""
        idx = np.arange(len(self.dates)) if dates is None else self.dates.get_indexer(pd.DatetimeIndex(dates))
        if (idx < 0).any():
            raise DataError("asked for feature dates that are not in the prices")
        t, i = np.nonzero(self.listed[idx])
        frame = pd.DataFrame(self.values[idx][t, i], columns=self.names)
        frame.insert(0, "ticker", np.asarray(self.tickers, dtype=object)[i])
        frame.insert(0, "date", self.dates[idx][t])
        return frame


def _check_prices(prices: pd.DataFrame, name: str = "prices") -> pd.DataFrame:
    if not isinstance(prices, pd.DataFrame) or not isinstance(prices.index, pd.DatetimeIndex):
        raise DataError(f"{name} must be a DataFrame indexed by date (DatetimeIndex) with one column per ticker")
    if prices.shape[1] == 0 or len(prices) == 0:
        raise DataError(f"{name} is empty")
    if not prices.index.is_monotonic_increasing or prices.index.has_duplicates:
        raise DataError(f"{name}' dates must be increasing and unique; sort and de-duplicate them first")
    if prices.columns.has_duplicates:
        raise DataError(f"duplicate tickers in {name}: {prices.columns[prices.columns.duplicated()].tolist()}")
    try:
        values = prices.to_numpy(dtype=float)
    except (TypeError, ValueError) as exc:
        raise DataError(f"{name} must be numeric: {exc}") from exc
    if (values[np.isfinite(values)] <= 0).any():
        bad = prices.columns[(prices <= 0).any()].tolist()
        raise DataError(f"{name} must be positive; tickers {bad} have a price <= 0")
    if np.isinf(values).any():
        raise DataError(f"{name} hold inf")
    return prices


def compute_features(prices: pd.DataFrame, spec: FeatureSpec | None = None,
                     volume: pd.DataFrame | None = None) -> FeaturePanel:
    """Every feature of ``spec`` on every date of ``prices`` (dates x tickers, adjusted close;
    NaN before a listing). ``volume`` (same shape) is needed when ``spec.volume`` is set."""
    spec = spec or FeatureSpec()
    _check_prices(prices)
    if len(prices) <= spec.lookback:
        raise DataError(f"too little history for the features: they need {spec.lookback + 1} prices per ticker "
                        f"(lookback {spec.lookback} trading days), the prices hold {len(prices)} dates "
                        f"({prices.index[0].date()} to {prices.index[-1].date()})")
    px = prices.astype(float)
    daily = px / px.shift(1) - 1.0
    cols: list[np.ndarray] = []
    root_ppy = np.sqrt(float(infer_frequency(px.index).periods_per_year))
    for h in spec.return_horizons:
        cols.append((px / px.shift(h) - 1.0).to_numpy())
    for w in spec.vol_windows:
        cols.append((daily.rolling(w, min_periods=w).std() * root_ppy).to_numpy())
    if spec.momentum is not None:
        long, skip = spec.momentum
        cols.append((px.shift(skip) / px.shift(long) - 1.0).to_numpy())
    if spec.volume:
        if volume is None:
            raise DataError("the feature spec uses volume (volume=True) but no volume panel was given")
        if not isinstance(volume, pd.DataFrame):
            raise DataError(f"volume must be a DataFrame (dates x tickers, like the prices), got {type(volume).__name__}")
        vol = volume.reindex(index=px.index, columns=px.columns).astype(float).where(lambda v: v > 0)
        ratio = vol.rolling(21, min_periods=21).mean() / vol.rolling(BUSINESS_DAYS_PER_YEAR, min_periods=BUSINESS_DAYS_PER_YEAR).mean()
        cols.append(np.log(ratio).to_numpy())
    base = np.stack(cols, axis=-1)  # (T, N, B)
    base[~np.isfinite(base)] = np.nan
    listed = np.isfinite(px.to_numpy())
    base[~listed] = np.nan
    if spec.ranks:
        ranks = np.full_like(base, np.nan)
        for j in range(base.shape[2]):
            r = pd.DataFrame(base[:, :, j]).rank(axis=1, method="average").to_numpy()
            n = np.isfinite(base[:, :, j]).sum(axis=1, keepdims=True).astype(float)
            with np.errstate(invalid="ignore", divide="ignore"):
                ranks[:, :, j] = np.where(n > 1, (r - 1.0) / (n - 1.0) - 0.5, 0.0)
            ranks[:, :, j][~np.isfinite(base[:, :, j])] = np.nan
        values = np.concatenate([base, ranks], axis=-1)
    else:
        values = base
    return FeaturePanel(pd.DatetimeIndex(px.index), [str(c) for c in px.columns], spec.names, values, listed)


def forward_returns(prices: pd.DataFrame, horizon: int) -> pd.DataFrame:
    """The target: the return over the next ``horizon`` trading days, ``P_{t+h} / P_t - 1`` at
    date ``t`` (NaN for the last ``horizon`` dates)."""
    return prices.shift(-horizon) / prices - 1.0
