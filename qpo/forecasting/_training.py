"""Training a return forecaster (PyTorch, CPU).

Training minimizes the mean squared error on a target winsorized at the training set's
``target_clip`` quantiles, with Adam, on minibatches drawn by a seeded generator, and stops early
on a validation split made of the *last* dates of the training period (purged: no training label
overlaps a validation label). The same seed and data give the same weights
(``torch.manual_seed`` plus a seeded ``torch.Generator``; CPU kernels are deterministic).
"""
from __future__ import annotations

import time

import numpy as np
import pandas as pd

from qpo._checks import number, whole
from qpo.errors import DataError, InvalidValueError
from qpo.forecasting._config import ForecasterConfig
from qpo.forecasting._networks import build_net
from qpo.forecasting.features import FeaturePanel, compute_features, forward_returns
from qpo.forecasting.model import TrainedForecaster


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


def _set_threads(threads: int | None) -> None:
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
    torch.set_num_threads(whole("threads", threads, 1))


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

    number("max_missing_fraction", max_missing_fraction, 0.0, 1.0)
    _set_threads(threads)
    started = time.perf_counter()
    T, N, F = panel.values.shape
    h, w = config.horizon, config.window
    end = T - 1 if end_position is None else int(end_position)
    last_sample = end - h
    first = max(start_position, config.min_history)
    if last_sample - first < 10:
        raise DataError(f"too little history to train: samples from {panel.dates[min(first, T - 1)].date()} need "
                        f"their {h}-period label by {panel.dates[end].date()}; give more prices before the "
                        f"training end (features need {config.features.lookback} periods, window {w})")
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
    net = build_net(config, F)
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
                        f"prices (features look back {config.features.lookback} periods, window {config.window}, "
                        f"{config.horizon}-period target, 60 sample dates); got {len(px)}")
    panel = compute_features(px, config.features, volume)
    target = forward_returns(px, config.horizon).to_numpy(dtype=float)
    return fit(panel, target, config, threads=threads, max_missing_fraction=max_missing_fraction)
