"""The PyTorch forecasters: configuration errors, seeded determinism, the purged train/validation
split, early stopping, prediction (and its look-ahead proof), persistence and bad input."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from qpo.errors import DataError, InvalidValueError, UnknownOptionError
from qpo.forecasting import (
    FeatureSpec,
    ForecasterConfig,
    TrainedForecaster,
    compute_features,
    forward_returns,
    train_forecaster,
)
from qpo.forecasting.features import FeaturePanel
from tests.test_forecasting.conftest import (
    TICKERS,
    perturb_after,
    small_config,
    state_dicts_equal,
)

H = 21
END = "2010-12-31"


@pytest.fixture
def recorded(monkeypatch):
    """Records the sample date positions fit() builds: [train, validation] per call of fit."""
    import qpo.forecasting._training as training  # where fit() builds its samples

    calls, real = [], training.samples

    def spy(panel, positions, window):
        calls.append(np.asarray(positions).copy())
        return real(panel, positions, window)

    monkeypatch.setattr(training, "samples", spy)
    return calls


@pytest.fixture(scope="module")
def panel_target(prices):
    return compute_features(prices), forward_returns(prices, H).to_numpy(dtype=float)


def _fit(panel, target, config, **kw):
    from qpo.forecasting import fit

    return fit(panel, target, config, **kw)


# --------------------------------------------------------------------------- configuration
def test_unknown_model_lists_the_valid_ones():
    with pytest.raises(UnknownOptionError) as err:
        ForecasterConfig(model="transformer")
    assert err.value.valid == ["gru", "lstm", "mlp"]
    assert "transformer" in str(err.value) and "gru, lstm, mlp" in str(err.value)


@pytest.mark.parametrize("name, value", [
    ("horizon", 0), ("horizon", 2.5), ("window", 0), ("hidden", True), ("layers", -1), ("batch_size", 0),
    ("max_epochs", 0), ("patience", 0), ("sample_stride", 0), ("seed", -1), ("dropout", 0.95), ("dropout", -0.1),
    ("learning_rate", 0.0), ("learning_rate", 5.0), ("learning_rate", float("nan")), ("weight_decay", -1e-4),
    ("validation_fraction", 0.0), ("validation_fraction", 0.6), ("target_clip", 0.3), ("hidden", "32"),
])
def test_bad_numbers_are_refused_by_name(name, value):
    with pytest.raises(InvalidValueError, match=name):
        ForecasterConfig(**{name: value})


def test_config_defaults_and_round_trip():
    assert ForecasterConfig().window == 1 and ForecasterConfig(model="gru").window == 21
    assert ForecasterConfig(model="lstm", window=10).min_history == 252 + 10 - 1
    with pytest.raises(InvalidValueError, match="FeatureSpec"):
        ForecasterConfig(features="default")
    cfg = ForecasterConfig(model="gru", window=7, horizon=5, features=FeatureSpec(momentum=None, ranks=False))
    assert ForecasterConfig.from_dict(cfg.to_dict()) == cfg
    assert ForecasterConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    params = cfg.params()
    assert params["model"] == "gru" and params["features.momentum"] is None and "features" not in params


# --------------------------------------------------------------------------- determinism
@pytest.mark.parametrize("model", ["mlp", "gru"])
def test_same_seed_same_weights_other_seed_other_weights(prices, trained_mlp, trained_gru, model):
    first = trained_mlp if model == "mlp" else trained_gru
    again = train_forecaster(prices, first.config, end=END)
    assert state_dicts_equal(first.net, again.net)
    assert again.history == first.history and again.best_epoch == first.best_epoch
    other = train_forecaster(prices, small_config(model, seed=7, max_epochs=first.config.max_epochs), end=END)
    assert not state_dicts_equal(first.net, other.net)
    w1, w2 = first.net.head.weight.detach().numpy(), other.net.head.weight.detach().numpy()
    assert np.abs(w1 - w2).max() > 1e-3
    # the normalization is data, not seed: identical for both seeds
    assert np.array_equal(first.net.x_mean.numpy(), other.net.x_mean.numpy())


# --------------------------------------------------------------------------- the purged split
@pytest.mark.parametrize("stride", [1, 5])
def test_fit_split_is_purged_and_ends_at_end_position(panel_target, recorded, stride):
    panel, target = panel_target
    end, start = 1200, 400
    cfg = small_config(sample_stride=stride, max_epochs=1)
    m = _fit(panel, target, cfg, end_position=end, start_position=start)
    train, val = recorded
    assert train.max() + H < val.min()  # every training label ends strictly before the first validation date
    assert val.max() + H == end  # validation labels end by (exactly at) the training end
    assert train.min() >= start and (np.diff(train) == stride).all() and (np.diff(val) == stride).all()
    assert m.train_end == panel.dates[end] and m.train_start == panel.dates[start]
    assert m.n_train == len(train) * 6 and m.n_validation == len(val) * 6 and m.n_dropped_nan == 0
    if stride == 1:
        n_dates = end - H - start + 1
        assert len(val) == round(n_dates * cfg.validation_fraction)
        assert train.min() == start and val.min() - train.max() == H + 1  # purge gap: exactly the horizon
    # start before the features exist: training starts when they do
    recorded.clear()
    m = _fit(panel, target, cfg, end_position=end, start_position=0)
    assert recorded[0].min() >= cfg.min_history == 252 and m.train_start == panel.dates[252]


def test_fit_never_reads_labels_or_features_after_the_cutoff(panel_target):
    panel, target = panel_target
    end = 1300
    cfg = small_config(max_epochs=3)
    clean = _fit(panel, target, cfg, end_position=end)
    # poison every label not yet known at `end` and every feature of those sample dates
    t2, v2 = target.copy(), panel.values.copy()
    t2[end - H + 1:] = np.nan
    v2[end - H + 1:] = 1e9
    poisoned = _fit(FeaturePanel(panel.dates, panel.tickers, panel.names, v2, panel.listed), t2, cfg,
                    end_position=end)
    assert poisoned.n_dropped_nan == 0 and state_dicts_equal(clean.net, poisoned.net)
    assert poisoned.history == clean.history
    # one day earlier is used: poisoning the last known label drops exactly its 6 samples
    t3 = target.copy()
    t3[end - H] = np.nan
    assert _fit(panel, t3, cfg, end_position=end).n_dropped_nan == 6


def test_train_forecaster_uses_only_prices_up_to_end(prices, trained_mlp):
    other = train_forecaster(perturb_after(prices, END), trained_mlp.config, end=END)
    assert state_dicts_equal(trained_mlp.net, other.net)
    assert trained_mlp.train_end == prices.loc[:END].index[-1]


# --------------------------------------------------------------------------- early stopping
@pytest.mark.parametrize("patience", [1, 2])
def test_early_stopping_returns_the_best_epoch_weights(prices, recorded, patience):
    import torch

    cfg = small_config(hidden=16, max_epochs=30, learning_rate=0.01, patience=patience)
    m = train_forecaster(prices, cfg, end=END)
    losses = [e["val_loss"] for e in m.history]
    assert 1 <= m.best_epoch <= len(m.history) < cfg.max_epochs  # it stopped early
    assert len(m.history) - m.best_epoch == patience  # exactly `patience` epochs without improvement
    assert min(losses) == pytest.approx(losses[m.best_epoch - 1], abs=1e-7)
    assert all(v >= losses[m.best_epoch - 1] - 1e-7 for v in losses[m.best_epoch:])
    assert [e["epoch"] for e in m.history] == list(range(1, len(m.history) + 1))
    # recompute the returned network's validation loss from the samples fit used
    px = prices.loc[:END]
    panel, target = compute_features(px), forward_returns(px, H).to_numpy(dtype=float)
    from qpo.forecasting._training import samples

    def xy(pos):
        x, tp, ip = samples(panel, pos, 1)
        return x.astype(np.float32), target[tp, ip]

    (xt, yt), (xv, yv) = xy(recorded[0]), xy(recorded[1])
    lo, hi = np.quantile(yt, [cfg.target_clip, 1 - cfg.target_clip])
    with torch.no_grad():
        pred = m.net(torch.from_numpy(xv)).numpy()
    loss = float(np.mean((pred - np.clip(yv, lo, hi).astype(np.float32)) ** 2) / float(m.net.y_scale) ** 2)
    assert loss == pytest.approx(min(losses), rel=1e-5)
    assert abs(loss - losses[-1]) > 1e-6  # the last epoch's weights would not pass this test
    assert m.n_validation == len(xv) and m.n_train == len(xt)


def test_normalization_travels_with_the_weights(prices, recorded):
    import torch

    m = train_forecaster(prices, small_config(max_epochs=1), end=END)
    px = prices.loc[:END]
    panel, target = compute_features(px), forward_returns(px, H).to_numpy(dtype=float)
    tp = np.repeat(recorded[0], 6)
    x = panel.values[recorded[0]].reshape(-1, panel.values.shape[2])
    y = target[tp, np.tile(np.arange(6), len(recorded[0]))]
    np.testing.assert_allclose(m.net.x_mean.numpy(), x.mean(axis=0), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(m.net.x_scale.numpy(), x.std(axis=0), rtol=1e-4)
    yc = np.clip(y, *np.quantile(y, [0.01, 0.99]))
    assert float(m.net.y_mean) == pytest.approx(yc.mean(), rel=1e-5)
    assert float(m.net.y_scale) == pytest.approx(yc.std(), rel=1e-5)
    # the forward pass by hand: standardize, clip at 5 sd, Linear-ReLU, head, de-standardize
    xs = torch.from_numpy(x[:50].astype(np.float32))
    z = ((xs - m.net.x_mean) / m.net.x_scale).clamp(-5, 5)
    lin, head = m.net.body[0], m.net.head
    want = m.net.y_mean + m.net.y_scale * head(torch.relu(lin(z))).squeeze(-1)
    np.testing.assert_allclose(m._predict_array(x[:50, None, :]), want.detach().numpy(), rtol=1e-6, atol=1e-9)


# --------------------------------------------------------------------------- prediction
def test_predict_matches_predict_frame(prices, trained_mlp):
    as_of = pd.Timestamp("2011-07-02")  # a Saturday: the forecast is made on Friday's close
    fc = trained_mlp.predict(prices, as_of=as_of)
    assert fc.as_of == pd.Timestamp("2011-07-01") and fc.horizon == H and fc.dropped == {}
    assert list(fc.values.index) == TICKERS and np.isfinite(fc.values).all()
    pd.testing.assert_series_equal(fc.per_period, fc.values / H)
    frame = compute_features(prices).to_frame(dates=[fc.as_of])
    by_frame = trained_mlp.predict_frame(frame)
    np.testing.assert_allclose(by_frame.to_numpy(), fc.values.to_numpy(), rtol=1e-6, atol=1e-8)
    assert fc.values.std() > 0  # a real cross-section, not a constant
    assert trained_mlp.predict(prices).as_of == prices.index[-1]


def test_predict_frame_windows_for_a_recurrent_model(prices, trained_gru):
    frame = compute_features(prices.iloc[-300:], FeatureSpec(momentum=None)).to_frame()
    with pytest.raises(DataError, match="mom_12_1"):
        trained_gru.predict_frame(frame)
    frame = compute_features(prices.iloc[-300:]).to_frame()  # mom_12_1 exists from position 252
    out = trained_gru.predict_frame(frame)
    first_full = prices.index[-300 + 252 + 4]  # five complete days of features
    dates = frame["date"]
    assert out[dates < first_full].isna().all() and out[dates >= first_full].notna().all()
    fc = trained_gru.predict(prices, as_of=prices.index[-1])
    np.testing.assert_allclose(out[dates == prices.index[-1]].to_numpy(), fc.values.to_numpy(), rtol=1e-5)


@pytest.mark.parametrize("which", ["mlp", "gru"])
def test_predictions_never_see_the_future(prices, trained_mlp, trained_gru, which):
    model = trained_mlp if which == "mlp" else trained_gru
    d_pos = 1900
    d = prices.index[d_pos]
    changed = perturb_after(prices, d, seed=3)
    assert model.predict(prices, as_of=d).values.equals(model.predict(changed, as_of=d).values)
    f1, f2 = compute_features(prices).to_frame(), compute_features(changed).to_frame()
    p1, p2 = model.predict_frame(f1), model.predict_frame(f2)
    past = (f1["date"] <= d).to_numpy()
    assert p1[past].notna().sum() > 1000
    assert p1[past].equals(p2[past])
    assert (p1[~past] != p2[~past]).mean() > 0.9  # the future did change, and predictions after d with it


def test_predict_refuses_unknown_tickers_and_short_history(prices, trained_mlp):
    with pytest.raises(DataError, match=r"not trained on tickers \['BAC', 'ZZZ'\]"):
        trained_mlp.predict(prices.assign(ZZZ=prices["KO"], BAC=prices["KO"]))
    with pytest.raises(DataError, match="needs 253 prices per ticker.*got 200"):
        trained_mlp.predict(prices.iloc[:200])
    with pytest.raises(DataError, match="no prices on or before"):
        trained_mlp.predict(prices, as_of="1999-01-01")
    with pytest.raises(DataError, match="not a date"):
        trained_mlp.predict(prices, as_of="yesterday-ish")


def test_predict_frame_refuses_missing_columns_and_unknown_tickers(prices, trained_mlp):
    frame = compute_features(prices.iloc[-260:]).to_frame(dates=[prices.index[-1]])
    with pytest.raises(DataError, match=r"missing columns \['vol_63d', 'rank_mom_12_1'\]"):
        trained_mlp.predict_frame(frame.drop(columns=["vol_63d", "rank_mom_12_1"]))
    with pytest.raises(DataError, match=r"missing columns \['date'\]"):
        trained_mlp.predict_frame(frame.drop(columns=["date"]))
    with pytest.raises(DataError, match=r"not trained on tickers \['ZZZ'\]"):
        trained_mlp.predict_frame(frame.assign(ticker=frame["ticker"].replace("KO", "ZZZ")))


def test_predict_drops_tickers_without_history(prices, trained_mlp):
    px = prices.copy()
    px.iloc[:-100, px.columns.get_loc("KO")] = np.nan  # KO listed 100 days before the end
    px.iloc[-1, px.columns.get_loc("JNJ")] = np.nan  # JNJ has no price on the forecast date
    with pytest.raises(DataError, match="2 of 6 tickers have no features"):
        trained_mlp.predict(px)
    fc = trained_mlp.predict(px, max_missing_fraction=0.5)
    assert sorted(fc.dropped) == ["JNJ", "KO"] and "no price" in fc.dropped["JNJ"]
    assert "needs 253" in fc.dropped["KO"]
    assert list(fc.values.index) == ["AAPL", "JPM", "MSFT", "XOM"]
    with pytest.raises(InvalidValueError, match="max_missing_fraction"):
        trained_mlp.predict(px, max_missing_fraction=2)


# --------------------------------------------------------------------------- persistence
@pytest.mark.parametrize("which", ["mlp", "gru"])
def test_save_load_round_trip(prices, trained_mlp, trained_gru, tmp_path, which):
    model = trained_mlp if which == "mlp" else trained_gru
    model.metadata["oos_mean_ic"] = np.float64(0.01)
    path = model.save(tmp_path / "fc")
    assert sorted(p.name for p in path.iterdir()) == ["forecaster.json", "weights.pt"]
    back = TrainedForecaster.load(path)
    assert state_dicts_equal(model.net, back.net) and back.config == model.config
    assert back.tickers == model.tickers and back.feature_names == model.feature_names
    assert back.history == model.history and back.best_epoch == model.best_epoch
    assert back.train_end == model.train_end and back.metadata["oos_mean_ic"] == 0.01
    assert back.predict(prices).values.equals(model.predict(prices).values)
    frame = compute_features(prices.iloc[-300:]).to_frame()
    assert back.predict_frame(frame).equals(model.predict_frame(frame))


def test_load_refuses_what_is_not_a_forecaster(tmp_path, trained_mlp):
    with pytest.raises(DataError, match="not a saved qpo forecaster"):
        TrainedForecaster.load(tmp_path)
    with pytest.raises(DataError, match="not a saved qpo forecaster"):
        TrainedForecaster.load(tmp_path / "missing")
    path = trained_mlp.save(tmp_path / "damaged")
    (path / "forecaster.json").write_text("{ not json")
    with pytest.raises(DataError, match="damaged"):
        TrainedForecaster.load(path)
    path = trained_mlp.save(tmp_path / "wrong-shape")
    meta = json.loads((path / "forecaster.json").read_text())
    meta["feature_names"] = meta["feature_names"][:5]  # weights no longer fit the network
    (path / "forecaster.json").write_text(json.dumps(meta))
    with pytest.raises(DataError, match="damaged or incompatible"):
        TrainedForecaster.load(path)


# --------------------------------------------------------------------------- bad training input
def test_train_needs_enough_history(prices):
    with pytest.raises(DataError, match="needs at least 333 prices.*got 332"):
        train_forecaster(prices.iloc[:332], small_config())
    with pytest.raises(DataError, match="needs at least 337 prices"):
        train_forecaster(prices.iloc[:336], small_config("gru"))  # window 5: 4 more days
    with pytest.raises(DataError, match="too few complete training samples"):
        train_forecaster(prices.iloc[:340], small_config())


def _with_holes(prices, tickers, every, seed=0):
    rng = np.random.default_rng(seed)
    px = prices.copy()
    for t in tickers:
        holes = rng.choice(np.arange(300, len(px)), size=len(px) // every, replace=False)
        px.iloc[holes, px.columns.get_loc(t)] = np.nan
    return px


def test_nan_features_over_the_threshold_are_an_error_under_it_dropped(prices, recorded):
    cfg = small_config(max_epochs=1)
    gappy = _with_holes(prices.loc[:END], ["AAPL", "JPM", "KO"], every=40)
    with pytest.raises(DataError, match="max_missing_fraction=0.25"):
        train_forecaster(gappy, cfg)
    m = train_forecaster(gappy, cfg, max_missing_fraction=0.9)
    assert m.n_dropped_nan > 0.25 * (m.n_train + m.n_validation + m.n_dropped_nan)
    # one ticker with a single ten-day halt: a few samples dropped, and counted
    recorded.clear()
    px = prices.loc[:END].copy()
    px.iloc[900:910, px.columns.get_loc("XOM")] = np.nan
    m = train_forecaster(px, cfg)
    panel = compute_features(px)
    listed = sum(int(panel.listed[pos].sum()) for pos in recorded)
    assert 0 < m.n_dropped_nan < 0.05 * listed
    assert m.n_train + m.n_validation + m.n_dropped_nan == listed  # every listed sample is used or counted
    with pytest.raises(InvalidValueError, match="max_missing_fraction"):
        train_forecaster(px, cfg, max_missing_fraction=-0.1)


def test_diverged_training_is_a_clear_error(prices, monkeypatch):
    import torch

    real = torch.mean

    def nan_mean(x, *a, **k):  # every loss NaN, as when the weights blow up
        return real(x, *a, **k) * float("nan")

    monkeypatch.setattr(torch, "mean", nan_mean)
    with pytest.raises(InvalidValueError, match="diverged.*learning rate"):
        train_forecaster(prices, small_config(max_epochs=2), end=END)
