"""The MLflow ``pyfunc`` flavour of a qpo forecaster: the model-from-code file that
:func:`qpo.tracking.log_and_register` logs (MLflow copies this file into the model and runs it when
the model is loaded; no qpo module imports it: it imports MLflow at once).

Input: a long feature frame, one row per (date, ticker), with the columns ``date``, ``ticker`` and
the model's features, as ``qpo.forecasting.compute_features(...).to_frame()`` gives. Output: the
same rows' ``date``, ``ticker`` and ``forecast`` (the return over the next ``horizon`` trading
days; NaN where the ticker has fewer than ``window`` complete rows up to that date). Logged as a
model from code (this file; no pickled object); loading needs qpo installed (the weights and
config are artifacts; the code is qpo's).
"""
from __future__ import annotations

import pandas as pd
from mlflow.models import set_model
from mlflow.pyfunc import PythonModel


class ForecasterModel(PythonModel):
    def load_context(self, context):
        from qpo.forecasting import TrainedForecaster

        self.forecaster = TrainedForecaster.load(context.artifacts["forecaster"])

    # the input is a DataFrame checked against the logged signature; the DataFrame type hint tells MLflow
    # so (it infers no schema from it) and stops its "add type hints" warning, which a warnings filter
    # cannot silence (MLflow re-enables UserWarnings around the check)
    def predict(self, context, model_input: pd.DataFrame, params=None):
        frame = pd.DataFrame(model_input)
        if "date" in frame.columns:
            frame["date"] = pd.to_datetime(frame["date"])
        forecast = self.forecaster.predict_frame(frame)
        return pd.DataFrame({"date": frame["date"].to_numpy(), "ticker": frame["ticker"].astype(str).to_numpy(),
                             "forecast": forecast.to_numpy(dtype=float)})


set_model(ForecasterModel())
