"""The configuration of a return forecaster: its network, its training and its features
(``ForecasterConfig``, logged flat as an MLflow run's parameters), checked when it is made."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from qpo._checks import number, whole
from qpo.errors import InvalidValueError, UnknownOptionError
from qpo.forecasting.features import FeatureSpec

MODELS = {"mlp": "feed-forward network", "lstm": "LSTM over a window of days", "gru": "GRU over a window of days"}


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
            whole(name, getattr(self, name), 1)
        whole("seed", self.seed, 0)
        number("dropout", self.dropout, 0.0, 0.9)
        number("learning_rate", self.learning_rate, 0.0, 1.0, lo_open=True)
        number("weight_decay", self.weight_decay, 0.0)
        number("validation_fraction", self.validation_fraction, 0.0, 0.5, lo_open=True)
        number("target_clip", self.target_clip, 0.0, 0.25)
        if isinstance(self.features, dict):
            object.__setattr__(self, "features", FeatureSpec.from_dict(self.features))
        if not isinstance(self.features, FeatureSpec):
            raise InvalidValueError("features must be a qpo.forecasting.FeatureSpec")

    @property
    def min_history(self) -> int:
        """Prices a ticker needs before the first date it can be forecast."""
        assert self.window is not None  # set by __post_init__
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
