"""The return forecasters in MLflow's model registry: reading it.

Every training registers its forecaster as ``qpo-return-forecaster`` (:mod:`qpo.tracking.registration`)
and gives the new version the alias ``champion`` or ``challenger``; the decision, its reason and
the out-of-sample figures are tags of the version (``qpo.promotion``, ``qpo.promotion_reason``,
``qpo.oos_mean_ic``, ...; :func:`numeric_tag` reads the numbers back). Aliases, not the deprecated
stages.

:func:`load_forecaster` loads any ``models:/name@alias`` or ``models:/name/version`` as a
:class:`qpo.forecasting.TrainedForecaster`; an unknown name, alias or version is an error that
lists what the registry holds. MLflow is imported only when the registry is read.
"""
from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING

import pandas as pd

from qpo.errors import DataError
from qpo.tracking.mlflow_run import configure, missing_store

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities.model_registry import ModelVersion

    from qpo.forecasting import Forecast, TrainedForecaster

MODEL_NAME = "qpo-return-forecaster"
DEFAULT_MODEL_URI = f"models:/{MODEL_NAME}@champion"
CHAMPION, CHALLENGER = "champion", "challenger"


def registry_client(tracking_uri: str | None = None) -> MlflowClient:
    """An MLflow client of the tracking server and model registry at ``tracking_uri`` (default
    from the environment / ``QPO_HOME``; see :func:`qpo.tracking.configure`)."""
    import os

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    from mlflow import MlflowClient

    uri = configure(tracking_uri)
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def numeric_tag(tags: Mapping[str, str], key: str) -> float | None:
    """The tag ``key`` of a model version or run (``tags``: its tag mapping) as a finite number,
    or None when it is missing, not a number, NaN or infinite (e.g. ``qpo.oos_mean_ic``)."""
    try:
        v = float(tags[key])
    except (KeyError, TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None



def current_champion(model_name: str = MODEL_NAME, *, tracking_uri: str | None = None) -> ModelVersion | None:
    """The ``champion`` model version (an MLflow ``ModelVersion``), or None."""
    client = registry_client(tracking_uri)
    if not _registered(client, model_name):
        return None
    aliases = client.get_registered_model(model_name).aliases
    if CHAMPION not in aliases:
        return None
    return client.get_model_version(model_name, aliases[CHAMPION])



# -- loading -------------------------------------------------------------------------------------
_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:@(?P<alias>[^/]+)|/(?P<version>\d+))?$")


def _registered(client, name: str) -> bool:
    from mlflow.exceptions import MlflowException

    try:
        client.get_registered_model(name)
        return True
    except MlflowException:
        return False


def _resolve(client, uri: str) -> tuple[str, str, str | None]:
    """``(name, version, alias)`` of a models:/ URI, or an error listing what exists."""
    m = _URI.match(uri) if isinstance(uri, str) else None
    if not m:
        names = sorted(r.name for r in client.search_registered_models())
        raise DataError(f"model URI {uri!r} is not of the form models:/<name>@<alias> or models:/<name>/<version> "
                        f"(the default is {DEFAULT_MODEL_URI}); registered models: {names or 'none'}")
    name, alias, version = m["name"], m["alias"], m["version"]
    if not _registered(client, name):
        names = sorted(r.name for r in client.search_registered_models())
        raise DataError(f"no registered model {name!r} in the MLflow registry at {client.tracking_uri}; "
                        + (f"registered models: {names}" if names else
                           "the registry is empty: train one with `qpo pipeline run weekly-retrain`"))
    reg = client.get_registered_model(name)
    versions = sorted(int(v.version) for v in client.search_model_versions(f"name='{name}'"))
    if alias is not None:
        if alias not in reg.aliases:
            have = ", ".join(f"@{a} -> version {v}" for a, v in sorted(reg.aliases.items())) or "none"
            raise DataError(f"model {name!r} has no alias {alias!r}; its aliases: {have}; its versions: {versions}")
        return name, str(reg.aliases[alias]), alias
    if version is None:
        if not versions:
            raise DataError(f"model {name!r} has no versions")
        version = str(versions[-1])
    elif int(version) not in versions:
        raise DataError(f"model {name!r} has no version {version}; its versions: {versions}; aliases: "
                        f"{ {a: v for a, v in sorted(reg.aliases.items())} }")
    return name, version, alias


def load_forecaster(model_uri: str = DEFAULT_MODEL_URI, *, tracking_uri: str | None = None) -> TrainedForecaster:
    """The forecaster a registry URI names (``models:/name@alias``, ``models:/name/version`` or
    ``models:/name`` for its latest version), with ``metadata`` holding its version, aliases,
    tags and out-of-sample figures. Its signature must match the features qpo computes for its
    configuration."""
    import mlflow.pyfunc

    client = registry_client(tracking_uri)
    name, version, alias = _resolve(client, model_uri)
    mv = client.get_model_version(name, version)
    from mlflow.exceptions import MlflowException

    try:
        pyfunc_model = mlflow.pyfunc.load_model(f"models:/{name}/{version}")
    except (MlflowException, OSError, ImportError) as exc:
        raise DataError(f"models:/{name}/{version} could not be loaded ({type(exc).__name__}: {exc}); its "
                        "artifacts may be missing or it needs packages that are not installed") from exc
    try:
        wrapped = pyfunc_model.unwrap_python_model()
    except MlflowException:  # another flavour (sklearn, ...): no python model inside
        wrapped = None
    forecaster = getattr(wrapped, "forecaster", None)
    if forecaster is None:
        raise DataError(f"models:/{name}/{version} is not a qpo forecaster (it has no qpo forecaster artifact)")
    schema = pyfunc_model.metadata.get_input_schema()
    expected = ["date", "ticker", *forecaster.config.features.names]
    if schema is None or schema.input_names() != expected:
        got = schema.input_names() if schema is not None else None
        raise DataError(f"models:/{name}/{version}'s signature does not match the features qpo computes for it: "
                        f"signature inputs {got}, features {expected}; retrain it with this version of qpo")
    if list(forecaster.feature_names) != expected[2:]:
        raise DataError(f"models:/{name}/{version} was trained on features {forecaster.feature_names}, but its "
                        f"feature spec gives {expected[2:]}")
    reg = client.get_registered_model(name)
    forecaster.metadata.update({"model_uri": f"models:/{name}/{version}", "model_name": name, "version": version,
                                "alias": alias, "aliases": [a for a, v in reg.aliases.items() if str(v) == version],
                                "tags": dict(mv.tags), "run_id": mv.run_id})
    return forecaster


def registry_table(model_name: str = MODEL_NAME, *, tracking_uri: str | None = None) -> pd.DataFrame:
    """Every version of ``model_name``: aliases, model and horizon, out-of-sample IC, baseline IC, promotion and
    reason (empty when nothing is registered, and when there is no tracking store yet: it is not
    created)."""
    cols = ["version", "aliases", "model", "horizon", "oos_mean_ic", "baseline_mean_ic", "promotion", "reason",
            "train_end", "run_id"]
    if missing_store(tracking_uri) is not None:
        return pd.DataFrame(columns=cols)
    client = registry_client(tracking_uri)
    if not _registered(client, model_name):
        return pd.DataFrame(columns=cols)
    aliases = client.get_registered_model(model_name).aliases
    rows = []
    for mv in client.search_model_versions(f"name='{model_name}'"):
        t = mv.tags
        rows.append({"version": int(mv.version),
                     "aliases": ", ".join(a for a, v in aliases.items() if str(v) == str(mv.version)),
                     "model": t.get("qpo.model"),
                     "horizon": None if numeric_tag(t, "qpo.horizon") is None else int(numeric_tag(t, "qpo.horizon") or 0),
                     "oos_mean_ic": numeric_tag(t, "qpo.oos_mean_ic"),
                     "baseline_mean_ic": numeric_tag(t, "qpo.baseline_mean_ic"), "promotion": t.get("qpo.promotion"),
                     "reason": t.get("qpo.promotion_reason"), "train_end": t.get("qpo.train_end"),
                     "run_id": mv.run_id})
    return pd.DataFrame(rows, columns=cols).sort_values("version").reset_index(drop=True)


def champion_forecast(prices: pd.DataFrame, *, as_of=None, model_name: str = MODEL_NAME,
                      tracking_uri: str | None = None) -> Forecast | None:
    """The champion's forecast for ``prices``' tickers at ``as_of``, or None when no champion is
    registered (errors, e.g. tickers it was not trained on, propagate)."""
    if current_champion(model_name, tracking_uri=tracking_uri) is None:
        return None
    return load_forecaster(f"models:/{model_name}@{CHAMPION}", tracking_uri=tracking_uri).predict(prices, as_of)

