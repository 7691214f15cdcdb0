"""The MLflow ``pyfunc`` flavour of a qpo forecaster (imported only when a model is logged or
loaded: it imports MLflow).

Input: a long feature frame, one row per (date, ticker), with the columns ``date``, ``ticker`` and
the model's features, as ``qpo.forecasting.compute_features(...).to_frame()`` gives. Output: the
same rows' ``date``, ``ticker`` and ``forecast`` (the return over the next ``horizon`` trading
days; NaN where the ticker has fewer than ``window`` complete rows up to that date). Logged as a
model from code (this file; no pickled object); loading needs qpo installed (the weights and
config are artifacts; the code is qpo's).
"""
from __future__ import annotations

import warnings

import pandas as pd
from mlflow.models import set_model
from mlflow.pyfunc import PythonModel

# the input is a DataFrame checked against the logged signature; type hints would not add to that
warnings.filterwarnings("ignore", message="Add type hints to the `predict` method")


class ForecasterModel(PythonModel):
    def load_context(self, context):
        from qpo.forecasting.model import TrainedForecaster

        self.forecaster = TrainedForecaster.load(context.artifacts["forecaster"])

    def predict(self, context, model_input, params=None):
        frame = pd.DataFrame(model_input)
        if "date" in frame.columns:
            frame["date"] = pd.to_datetime(frame["date"])
        forecast = self.forecaster.predict_frame(frame)
        return pd.DataFrame({"date": frame["date"].to_numpy(), "ticker": frame["ticker"].astype(str).to_numpy(),
                             "forecast": forecast.to_numpy(dtype=float)})


set_model(ForecasterModel())
