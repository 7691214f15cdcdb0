"""PyTorch return forecasters (CPU), their training, and the trained model that predicts.

Models (``ForecasterConfig.model``)

``mlp``
    a feed-forward network on the features of the forecast date (``window=1``), or on the
    flattened last ``window`` days of features;
``lstm`` / ``gru``
    a recurrent network over the last ``window`` days of features (default 21), read out from
    its last hidden state.

Every network standardizes its inputs with the training set's feature means and standard
deviations (clipped to +-5 sd) and predicts ``y_mean + y_scale * head(...)``, so the normalization
travels with the weights. Training minimizes the mean squared error on a target winsorized at
the training set's ``target_clip`` quantiles, with Adam, on minibatches drawn by a seeded
generator, and stops early on a validation split made of the *last* dates of the training period
(purged: no training label overlaps a validation label). The same seed and data give the same
weights (``torch.manual_seed`` plus a seeded ``torch.Generator``; CPU kernels are deterministic).
"""
from __future__ import annotations

import json
import numbers
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from qpo.errors import DataError, InvalidValueError, UnknownOptionError
from qpo.forecasting.features import (
    FeaturePanel,
    FeatureSpec,
    compute_features,
    forward_returns,
)

MODELS = {"mlp": "feed-forward network", "lstm": "LSTM over a window of days", "gru": "GRU over a window of days"}


def _check_number(name, value, low, high=None, integer=False, low_open=False):
    ok = isinstance(value, numbers.Integral) if integer else isinstance(value, numbers.Real)
    if isinstance(value, bool) or not ok or not np.isfinite(value) or (value <= low if low_open else value < low) \
            or (high is not None and value > high):
        kind = "a whole number" if integer else "a number"
        bound = f"> {low}" if low_open else f">= {low}"
        raise InvalidValueError(f"{name} must be {kind} {bound}" + (f" and <= {high}" if high is not None else "")
                                + f", got {value!r}")


@dataclass(frozen=True)
class ForecasterConfig:
    """Everything that defines a forecaster and its training (logged as the run's parameters)."""

    model: str = "mlp"
    horizon: int = 21
    window: int | None = None  # days of features per sample: 1 for the MLP, 21 for LSTM/GRU
    hidden: int = 32
    layers: int = 2
    dropout: float = 0.1
    learning_rate: float = 1e-3
    weight_decay: float = 1e-4
    batch_size: int = 512
    max_epochs: int = 40
    patience: int = 5
    validation_fraction: float = 0.2
    sample_stride: int = 5  # training samples every `sample_stride` days (21-day targets overlap anyway)
    target_clip: float = 0.01  # winsorize the training target at this quantile and 1 - it
    seed: int = 0
    features: FeatureSpec = field(default_factory=FeatureSpec)

    def __post_init__(self):
        if self.model not in MODELS:
            raise UnknownOptionError("forecaster model", self.model, list(MODELS))
        if self.window is None:
            object.__setattr__(self, "window", 1 if self.model == "mlp" else 21)
        for name in ("horizon", "window", "hidden", "layers", "batch_size", "max_epochs", "patience",
                     "sample_stride"):
            _check_number(name, getattr(self, name), 1, integer=True)
        _check_number("seed", self.seed, 0, integer=True)
        _check_number("dropout", self.dropout, 0.0, 0.9)
        _check_number("learning_rate", self.learning_rate, 0.0, 1.0, low_open=True)
        _check_number("weight_decay", self.weight_decay, 0.0)
        _check_number("validation_fraction", self.validation_fraction, 0.0, 0.5, low_open=True)
        _check_number("target_clip", self.target_clip, 0.0, 0.25)
        if isinstance(self.features, dict):
            object.__setattr__(self, "features", FeatureSpec.from_dict(self.features))
        if not isinstance(self.features, FeatureSpec):
            raise InvalidValueError("features must be a qpo.forecasting.FeatureSpec")

    @property
    def min_history(self) -> int:
        """Prices a ticker needs before the first date it can be forecast."""
        return self.features.lookback + self.window - 1

    def to_dict(self) -> dict:
        d = asdict(self)
        d["features"] = self.features.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict) -> ForecasterConfig:
        d = dict(d)
        d["features"] = FeatureSpec.from_dict(d.get("features", {}))
        return cls(**d)

    def params(self) -> dict[str, Any]:
        """Flat parameters for MLflow."""
        out = {k: v for k, v in self.to_dict().items() if k != "features"}
        out.update({f"features.{k}": v for k, v in self.features.to_dict().items()})
        return out


def _build_net(config: ForecasterConfig, n_features: int):
    import torch
    from torch import nn

    class ForecastNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.kind = config.model
            self.register_buffer("x_mean", torch.zeros(n_features))
            self.register_buffer("x_scale", torch.ones(n_features))
            self.register_buffer("y_mean", torch.zeros(()))
            self.register_buffer("y_scale", torch.ones(()))
            h = config.hidden
            if config.model == "mlp":
                layers: list[nn.Module] = []
                width = n_features * config.window
                for _ in range(config.layers):
                    layers += [nn.Linear(width, h), nn.ReLU(), nn.Dropout(config.dropout)]
                    width = h
                self.body = nn.Sequential(*layers)
            else:
                rnn = nn.LSTM if config.model == "lstm" else nn.GRU
                self.body = rnn(n_features, h, num_layers=config.layers, batch_first=True,
                                dropout=config.dropout if config.layers > 1 else 0.0)
            self.head = nn.Linear(h, 1)
            nn.init.zeros_(self.head.bias)
            with torch.no_grad():
                self.head.weight.mul_(0.1)

        def forward(self, x):  # x: (batch, window, features)
            z = ((x - self.x_mean) / self.x_scale).clamp(-5.0, 5.0)
            if self.kind == "mlp":
                out = self.body(z.flatten(1))
            else:
                seq, _ = self.body(z)
                out = seq[:, -1, :]
            return self.y_mean + self.y_scale * self.head(out).squeeze(-1)

    return ForecastNet()


@dataclass
class Forecast:
    """Forecasts of the ``horizon``-day return of each ticker made at ``as_of``."""

    values: pd.Series  # ticker -> forecast return over the next `horizon` trading days
    as_of: pd.Timestamp
    horizon: int
    dropped: dict[str, str]  # ticker -> why it has no forecast
    model: str = ""

    @property
    def per_period(self) -> pd.Series:
        """The forecast as a mean per trading day (``forecast / horizon``)."""
        return self.values / self.horizon


@dataclass(eq=False)
class TrainedForecaster:
    """A trained network with everything needed to predict: its config, feature names, the
    tickers it was trained on and the training record."""

    net: Any
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

    def predict(self, prices: pd.DataFrame, as_of=None, *, volume: pd.DataFrame | None = None,
                max_missing_fraction: float = 0.25) -> Forecast:
        """Forecast each ticker of ``prices`` from its features at ``as_of`` (default: the last
        date); only prices up to ``as_of`` are used. Tickers without the history the features
        need are dropped and named in ``Forecast.dropped``; more than ``max_missing_fraction``
        of them is an error."""
        from qpo.data.loaders import as_date

        _check_number("max_missing_fraction", max_missing_fraction, 0.0, 1.0)
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
        return Forecast(values.dropna(), panel.dates[-1], self.config.horizon, dropped,
                        self.metadata.get("model_uri", self.config.model))

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
            net = _build_net(config, len(meta["feature_names"]))
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


def samples(panel: FeaturePanel, positions: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Inputs for every (date position in ``positions``, ticker): ``x`` (S, window, F), the date
    positions and ticker positions of the S samples, and a mask of those with complete inputs."""
    T, N, F = panel.values.shape
    positions = np.asarray(positions, dtype=int)
    positions = positions[positions >= window - 1]
    if window == 1:
        x = panel.values[positions][:, :, None, :]  # (P, N, 1, F)
    else:
        view = np.lib.stride_tricks.sliding_window_view(panel.values, window, axis=0)  # (T-W+1, N, F, W)
        x = view[positions - window + 1].transpose(0, 1, 3, 2)  # (P, N, W, F)
    x = x.reshape(len(positions) * N, window, F)
    t_pos = np.repeat(positions, N)
    i_pos = np.tile(np.arange(N), len(positions))
    return x, t_pos, i_pos


def _set_threads(threads: int | None):
    """torch's intra-op threads for training: ``threads``, else ``QPO_TORCH_THREADS``, else 1.
    These networks are small: on a 2-core machine with other work, torch's default (one thread
    per core) made the same LSTM fit 7-14x slower than one thread
    (``benchmarks/results/return_forecaster.md``)."""
    import os

    import torch

    if threads is None:
        env = os.environ.get("QPO_TORCH_THREADS", "1")
        try:
            threads = int(env)
        except ValueError:
            raise InvalidValueError(f"QPO_TORCH_THREADS must be a whole number >= 1, got {env!r}") from None
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise InvalidValueError(f"threads must be a whole number >= 1, got {threads!r}")
    torch.set_num_threads(threads)


def fit(panel: FeaturePanel, target: np.ndarray, config: ForecasterConfig, *, end_position: int | None = None,
        start_position: int = 0, threads: int | None = None,
        max_missing_fraction: float = 0.25) -> TrainedForecaster:
    """Train on the samples whose label is known at date position ``end_position`` (default:
    the last date): sample dates ``t`` with ``t + horizon <= end_position`` and ``t >=
    start_position``. ``target`` is the (T, N) array of forward returns. The last
    ``validation_fraction`` of those dates is the early-stopping split, purged of overlap.

    Samples of listed tickers whose features or label are NaN (a gap in the prices, a ticker
    listed too recently) are dropped and counted (``n_dropped_nan``); more than
    ``max_missing_fraction`` of the samples of tickers listed for ``min_history`` days or more
    (gaps, not the warm-up after a listing) is an error."""
    import torch

    _check_number("max_missing_fraction", max_missing_fraction, 0.0, 1.0)
    _set_threads(threads)
    started = time.perf_counter()
    T, N, F = panel.values.shape
    h, w = config.horizon, config.window
    end = T - 1 if end_position is None else int(end_position)
    last_sample = end - h
    first = max(start_position, config.min_history)
    if last_sample - first < 10:
        raise DataError(f"too little history to train: samples from {panel.dates[min(first, T - 1)].date()} need "
                        f"their {h}-day label by {panel.dates[end].date()}; give more prices before the "
                        f"training end (features need {config.features.lookback} days, window {w})")
    n_val_dates = max(1, int(round((last_sample - first + 1) * config.validation_fraction)))
    val_first = last_sample - n_val_dates + 1
    train_last = val_first - h - 1  # purge: a training label ends before the first validation date
    if train_last - first < 5:
        raise DataError("too little history to split training and validation: "
                        f"{last_sample - first + 1} sample dates before {panel.dates[end].date()}")
    stride = config.sample_stride
    train_pos = np.arange(train_last, first - 1, -stride)[::-1]
    val_pos = np.arange(last_sample, val_first - 1, -stride)[::-1]

    # a ticker's first `min_history` prices after its listing give no features yet: those samples are
    # dropped and counted, but they are not gaps, so they do not count against max_missing_fraction
    has_price = panel.listed.any(axis=0)
    seasoned_from = np.where(has_price, panel.listed.argmax(axis=0), T) + config.min_history

    panel32 = FeaturePanel(panel.dates, panel.tickers, panel.names, panel.values.astype(np.float32), panel.listed)

    def build(pos):  # float32 windows: half the memory of the float64 panel's (the network runs in float32)
        x, tp, ip = samples(panel32, pos, w)
        y = target[tp, ip]
        listed = panel.listed[tp, ip]
        ok = np.isfinite(x).all(axis=(1, 2)) & np.isfinite(y) & listed
        seasoned = listed & (tp >= seasoned_from[ip])
        return (x[ok].astype(np.float32), y[ok], int((listed & ~ok).sum()), int((seasoned & ~ok).sum()),
                int(seasoned.sum()))

    xt, yt, drop_t, gap_t, seasoned_t = build(train_pos)
    xv, yv, drop_v, gap_v, seasoned_v = build(val_pos)
    gaps, seasoned_total = gap_t + gap_v, seasoned_t + seasoned_v
    if seasoned_total and gaps > max_missing_fraction * seasoned_total:
        raise DataError(f"{gaps} of {seasoned_total} training samples (of tickers listed for at least "
                        f"{config.min_history} days) have NaN features or labels (more than "
                        f"max_missing_fraction={max_missing_fraction}): the prices have gaps; "
                        "fill or drop the tickers with gaps (qpo.validate_prices lists them)")
    if len(xt) < 50 or len(xv) < 10:
        raise DataError(f"too few complete training samples ({len(xt)} train, {len(xv)} validation) up to "
                        f"{panel.dates[end].date()}; give more history or tickers")
    lo, hi = np.quantile(yt, [config.target_clip, 1 - config.target_clip]) if config.target_clip > 0 else (-np.inf,
                                                                                                           np.inf)
    yt_c, yv_c = np.clip(yt, lo, hi).astype(np.float32), np.clip(yv, lo, hi).astype(np.float32)

    torch.manual_seed(config.seed)
    net = _build_net(config, F)
    flat = xt.reshape(-1, F)
    sd = flat.std(axis=0)
    net.x_mean.copy_(torch.from_numpy(flat.mean(axis=0)))
    net.x_scale.copy_(torch.from_numpy(np.where(sd > 1e-12, sd, 1.0).astype(np.float32)))
    net.y_mean.fill_(float(yt_c.mean()))
    net.y_scale.fill_(float(max(yt_c.std(), 1e-8)))
    opt = torch.optim.Adam(net.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    gen = torch.Generator().manual_seed(config.seed)
    Xt, Yt = torch.from_numpy(xt), torch.from_numpy(yt_c)
    Xv, Yv = torch.from_numpy(xv), torch.from_numpy(yv_c)
    scale2 = float(net.y_scale) ** 2
    best, best_epoch, best_state, waited, history = np.inf, 0, None, 0, []
    for epoch in range(1, config.max_epochs + 1):
        net.train()
        order = torch.randperm(len(Xt), generator=gen)
        total = 0.0
        for s in range(0, len(Xt), config.batch_size):
            idx = order[s:s + config.batch_size]
            opt.zero_grad()
            loss = torch.mean((net(Xt[idx]) - Yt[idx]) ** 2) / scale2
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(idx)
        net.eval()
        with torch.no_grad():
            val = float(torch.mean((net(Xv) - Yv) ** 2) / scale2)
        history.append({"epoch": epoch, "train_loss": total / len(Xt), "val_loss": val})
        if val < best - 1e-7:
            best, best_epoch, waited = val, epoch, 0
            best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
        else:
            waited += 1
            if waited >= config.patience:
                break
    if best_state is None:  # the loss was never finite: the weights diverged
        raise InvalidValueError(f"training diverged: the validation loss was not finite in any of {len(history)} "
                                f"epochs (learning_rate={config.learning_rate}); lower the learning rate")
    net.load_state_dict(best_state)
    net.eval()
    return TrainedForecaster(net, config, list(panel.tickers), list(panel.names), panel.dates[first],
                             panel.dates[end], history, best_epoch, len(xt), len(xv), drop_t + drop_v,
                             time.perf_counter() - started)


def train_forecaster(prices: pd.DataFrame, config: ForecasterConfig | None = None, *, end=None,
                     volume: pd.DataFrame | None = None, threads: int | None = None,
                     max_missing_fraction: float = 0.25) -> TrainedForecaster:
    """Train one forecaster on ``prices`` with every label known by ``end`` (default: the last
    date); ``max_missing_fraction`` as in :func:`fit`."""
    from qpo.data.loaders import as_date

    config = config or ForecasterConfig()
    end = as_date(end, "end")
    px = prices.loc[:end] if end is not None else prices
    need = config.min_history + config.horizon + 60
    if len(px) < need:
        raise DataError(f"too little history to train a {config.model} forecaster: it needs at least {need} "
                        f"prices (features look back {config.features.lookback} days, window {config.window}, "
                        f"{config.horizon}-day target, 60 sample dates); got {len(px)}")
    panel = compute_features(px, config.features, volume)
    target = forward_returns(px, config.horizon).to_numpy(dtype=float)
    return fit(panel, target, config, threads=threads, max_missing_fraction=max_missing_fraction)
