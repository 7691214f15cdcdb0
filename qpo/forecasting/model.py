"""The trained return forecaster: its forecasts and its persistence.

:class:`TrainedForecaster` holds a trained network (:mod:`qpo.forecasting._networks`) with its
configuration, feature names, tickers and training record; it forecasts from prices
(:meth:`~TrainedForecaster.predict`, a :class:`Forecast`) or from a long feature frame
(:meth:`~TrainedForecaster.predict_frame`, what the MLflow model serves), and saves to and loads
from a directory (``weights.pt`` and ``forecaster.json``). Training is
:func:`qpo.forecasting.train_forecaster`.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    import torch

from qpo._checks import number
from qpo.data.calendar import BUSINESS_DAYS_PER_YEAR, infer_frequency
from qpo.errors import DataError, InvalidValueError, UnknownOptionError
from qpo.forecasting._config import ForecasterConfig
from qpo.forecasting._networks import build_net
from qpo.forecasting.features import FeaturePanel, compute_features


@dataclass
class Forecast:
    """Forecasts of the ``horizon``-period return of each ticker made at ``as_of`` (periods of the
    prices it forecast from: trading days for business-daily prices); ``periods_per_year`` of those
    prices annualizes them (``annualized``)."""

    values: pd.Series  # ticker -> forecast return over the next `horizon` periods (trading days for daily prices)
    as_of: pd.Timestamp
    horizon: int
    dropped: dict[str, str]  # ticker -> why it has no forecast
    model: str = ""
    periods_per_year: int = BUSINESS_DAYS_PER_YEAR

    @property
    def per_period(self) -> pd.Series:
        """The forecast as a mean per period (``forecast / horizon``)."""
        return self.values / self.horizon

    @property
    def annualized(self) -> pd.Series:
        """The forecast as an arithmetic annual return (``forecast x periods_per_year / horizon``)."""
        return self.values * self.periods_per_year / self.horizon


@dataclass(eq=False)
class TrainedForecaster:
    """A trained network with everything needed to predict: its config, feature names, the
    tickers it was trained on and the training record."""

    net: torch.nn.Module
    config: ForecasterConfig
    tickers: list[str]
    feature_names: list[str]
    train_start: pd.Timestamp
    train_end: pd.Timestamp  # last date whose label was known (the model saw nothing after it)
    history: list[dict[str, float]]  # per epoch: train_loss, val_loss
    best_epoch: int
    n_train: int
    n_validation: int
    n_dropped_nan: int
    fit_seconds: float
    metadata: dict[str, Any] = field(default_factory=dict)  # OOS metrics etc., added by evaluation

    # -- prediction ---------------------------------------------------------------------------
    def _predict_array(self, x: np.ndarray) -> np.ndarray:
        import torch

        self.net.eval()
        out = np.empty(len(x))
        with torch.no_grad():
            for s in range(0, len(x), 8192):
                out[s:s + 8192] = self.net(torch.from_numpy(np.ascontiguousarray(x[s:s + 8192], dtype=np.float32))
                                           ).numpy()
        return out

    def predict_frame(self, features: pd.DataFrame) -> pd.Series:
        """Forecasts for the rows of a long feature frame (``date``, ``ticker`` and the feature
        columns, as :meth:`FeaturePanel.to_frame` gives): each row's forecast from its features
        and those of the same ticker on the ``window - 1`` dates before it in the frame's calendar
        (the dates of all its rows); NaN when a row of that window is missing or incomplete, as
        :meth:`predict` does. One row per (date, ticker); the index may be anything."""
        missing = [c for c in ["date", "ticker", *self.feature_names] if c not in features.columns]
        if missing:
            raise DataError(f"the feature frame does not match the model's schema: missing columns {missing}; "
                            f"the model takes date, ticker and {self.feature_names}")
        tickers = features["ticker"].astype(str).to_numpy()
        unknown = sorted(set(tickers) - set(self.tickers))
        if unknown:
            raise DataError(f"the model was not trained on tickers {unknown[:20]}"
                            f"{' ...' if len(unknown) > 20 else ''}; it knows {self.tickers}")
        try:
            dates = pd.DatetimeIndex(pd.to_datetime(features["date"]))
            values = features[self.feature_names].to_numpy(dtype=float)
        except (TypeError, ValueError) as exc:
            raise DataError(f"the feature frame's dates or features are not dates and numbers: {exc}") from exc
        out = np.full(len(features), np.nan)
        if len(features):
            keys = pd.MultiIndex.from_arrays([dates, tickers])
            if keys.has_duplicates:
                dup = keys[keys.duplicated()]
                raise DataError(f"the feature frame has {len(dup)} duplicate (date, ticker) rows, e.g. "
                                f"{[(str(d.date()), t) for d, t in dup[:3]]}; give one row per date and ticker")
            calendar = dates.unique().sort_values()
            d_pos = calendar.get_indexer(dates)
            names = sorted(set(tickers))
            t_pos = pd.Index(names).get_indexer(tickers)
            cube = np.full((len(calendar), len(names), values.shape[1]), np.nan)
            cube[d_pos, t_pos] = values
            w = self.config.window
            assert w is not None  # set by ForecasterConfig.__post_init__
            has = d_pos >= w - 1
            rows = np.nonzero(has)[0]
            if len(rows):
                if w == 1:
                    x = cube[d_pos[rows], t_pos[rows]][:, None, :]
                else:
                    view = np.lib.stride_tricks.sliding_window_view(cube, w, axis=0)  # (D-w+1, N, F, w)
                    x = view[d_pos[rows] - w + 1, t_pos[rows]].transpose(0, 2, 1)  # (rows, w, F)
                good = np.isfinite(x).all(axis=(1, 2))
                if good.any():
                    out[rows[good]] = self._predict_array(x[good])
        return pd.Series(out, index=features.index, name="forecast")

    def in_sample(self, day) -> bool:
        """Whether a forecast as of ``day`` comes from a model trained on what followed it (``day``
        before :attr:`train_end`): an in-sample number, not a forecast."""
        return pd.Timestamp(day) < self.train_end

    def in_sample_text(self, day) -> str:
        return (f"look-ahead: the forecaster was trained on prices up to {self.train_end.date()}, after "
                f"{pd.Timestamp(day).date()}; it has seen what followed, so its numbers as of that date are "
                f"in-sample, not forecasts (train one on prices up to the date: qpo.train_forecaster)")

    def predict(self, prices: pd.DataFrame, as_of=None, *, volume: pd.DataFrame | None = None,
                max_missing_fraction: float = 0.25) -> Forecast:
        """Forecast each ticker of ``prices`` from its features at ``as_of`` (default: the last
        date); only prices up to ``as_of`` are used. Tickers without the history the features
        need are dropped and named in ``Forecast.dropped``; more than ``max_missing_fraction``
        of them is an error. A date before the model's :attr:`train_end` gives its numbers with
        a :class:`~qpo.errors.DataWarning` (look-ahead: :meth:`in_sample`)."""
        from qpo.data.loaders import as_date

        number("max_missing_fraction", max_missing_fraction, 0.0, 1.0)
        if not isinstance(prices, pd.DataFrame):
            raise DataError("prices must be a DataFrame indexed by date (DatetimeIndex) with one column per ticker")
        unknown = sorted(set(map(str, prices.columns)) - set(self.tickers))  # tickers are kept as str
        if unknown:
            raise DataError(f"the model was not trained on tickers {unknown[:20]}"
                            f"{' ...' if len(unknown) > 20 else ''}; it was trained on {self.tickers}")
        as_of = as_date(as_of, "as_of")
        px = prices.loc[:as_of] if as_of is not None else prices
        if len(px) == 0:
            raise DataError(f"no prices on or before as_of {as_of.date()}")
        need = self.config.min_history + 1
        if len(px) < need:
            raise DataError(f"too little history: the {self.config.model} forecaster needs {need} prices per ticker "
                            f"(features look back {self.config.features.lookback} days, window "
                            f"{self.config.window}), got {len(px)} up to {px.index[-1].date()}")
        px = px.iloc[-(need + 5):]  # enough for every feature of the last window
        vol = volume.reindex(index=px.index, columns=px.columns) if volume is not None else None
        panel = compute_features(px, self.config.features, vol)
        assert self.config.window is not None  # set by ForecasterConfig.__post_init__
        x, ok = window_at(panel, len(panel.dates) - 1, self.config.window)
        dropped = {t: "no price on the forecast date" if not panel.listed[-1, i] else
                   f"features undefined (needs {need} consecutive prices)"
                   for i, t in enumerate(panel.tickers) if not ok[i]}
        if len(dropped) > max_missing_fraction * len(panel.tickers):
            raise DataError(f"{len(dropped)} of {len(panel.tickers)} tickers have no features on "
                            f"{panel.dates[-1].date()} (more than max_missing_fraction={max_missing_fraction}): "
                            f"{dict(list(dropped.items())[:10])}")
        values = pd.Series(np.nan, index=panel.tickers, name="forecast")
        if ok.any():
            values[ok] = self._predict_array(x[ok])
        if self.in_sample(panel.dates[-1]):
            import warnings

            from qpo.errors import DataWarning

            warnings.warn(DataWarning(self.in_sample_text(panel.dates[-1])), stacklevel=2)
        return Forecast(values.dropna(), panel.dates[-1], self.config.horizon, dropped,
                        self.metadata.get("model_uri", self.config.model), infer_frequency(px.index).periods_per_year)

    # -- persistence --------------------------------------------------------------------------
    def save(self, directory: str | Path) -> Path:
        """Write ``weights.pt`` (the state dict) and ``forecaster.json`` (everything else)."""
        import torch

        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        torch.save(self.net.state_dict(), d / "weights.pt")
        meta = {"config": self.config.to_dict(), "tickers": self.tickers, "feature_names": self.feature_names,
                "train_start": str(self.train_start.date()), "train_end": str(self.train_end.date()),
                "history": self.history, "best_epoch": self.best_epoch, "n_train": self.n_train,
                "n_validation": self.n_validation, "n_dropped_nan": self.n_dropped_nan,
                "fit_seconds": self.fit_seconds, "metadata": self.metadata}
        (d / "forecaster.json").write_text(json.dumps(meta, indent=1, default=_json_default))
        return d

    @classmethod
    def load(cls, directory: str | Path) -> TrainedForecaster:
        import torch

        d = Path(directory)
        if not (d / "weights.pt").exists() or not (d / "forecaster.json").exists():
            raise DataError(f"{d} is not a saved qpo forecaster (it needs weights.pt and forecaster.json)")
        try:
            meta = json.loads((d / "forecaster.json").read_text())
            config = ForecasterConfig.from_dict(meta["config"])
            net = build_net(config, len(meta["feature_names"]))
            net.load_state_dict(torch.load(d / "weights.pt", weights_only=True))
            net.eval()
            return cls(net, config, meta["tickers"], meta["feature_names"], pd.Timestamp(meta["train_start"]),
                       pd.Timestamp(meta["train_end"]), meta["history"], meta["best_epoch"], meta["n_train"],
                       meta["n_validation"], meta["n_dropped_nan"], meta["fit_seconds"], meta.get("metadata", {}))
        except (ValueError, KeyError, TypeError, RuntimeError, OSError, EOFError) as exc:
            if isinstance(exc, (DataError, InvalidValueError, UnknownOptionError)):
                raise
            raise DataError(f"{d} holds a damaged or incompatible qpo forecaster: {type(exc).__name__}: {exc}") \
                from exc


def _json_default(o):
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    if isinstance(o, pd.Timestamp):
        return str(o.date())
    raise TypeError(f"not JSON serializable: {type(o).__name__}")


def window_at(panel: FeaturePanel, t: int, window: int) -> tuple[np.ndarray, np.ndarray]:
    """The (tickers, window, features) inputs ending at date position ``t`` and which tickers
    have every value in them."""
    if t - window + 1 < 0:
        x = np.full((len(panel.tickers), window, len(panel.names)), np.nan)
        return x, np.zeros(len(panel.tickers), dtype=bool)
    x = panel.values[t - window + 1:t + 1].transpose(1, 0, 2)  # (N, W, F)
    return x, np.isfinite(x).all(axis=(1, 2))
