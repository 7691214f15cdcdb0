"""The PyTorch networks of the return forecasters (CPU).

Models (``ForecasterConfig.model``)

``mlp``
    a feed-forward network on the features of the forecast date (``window=1``), or on the
    flattened last ``window`` days of features;
``lstm`` / ``gru``
    a recurrent network over the last ``window`` days of features (default 21), read out from
    its last hidden state.

Every network standardizes its inputs with the training set's feature means and standard
deviations (clipped to +-5 sd) and predicts ``y_mean + y_scale * head(...)``, so the normalization
travels with the weights. torch is imported only when a network is built.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from qpo.forecasting._config import ForecasterConfig


def build_net(config: ForecasterConfig, n_features: int) -> Any:
    """An untrained network for ``config`` on ``n_features`` features (a ``torch.nn.Module``:
    ``forward(x)`` takes ``(batch, window, features)`` and gives ``(batch,)`` forecasts)."""
    import torch
    from torch import nn

    class ForecastNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.kind = config.model
            self.register_buffer("x_mean", torch.zeros(n_features))
            self.register_buffer("x_scale", torch.ones(n_features))
            self.register_buffer("y_mean", torch.zeros(()))
            self.register_buffer("y_scale", torch.ones(()))
            h = config.hidden
            self.body: nn.Module
            if config.model == "mlp":
                assert config.window is not None  # set by ForecasterConfig.__post_init__
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
