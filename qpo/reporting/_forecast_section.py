"""The daily report's return forecasts: the registered champion forecaster's forecasts of the held
names at the report's date, next to their historical mean (:func:`forecast_section`)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pandas as pd

from qpo._checks import finite_or_none
from qpo.errors import DataError

if TYPE_CHECKING:
    from qpo.forecasting import Forecast

#: the registered model whose ``champion`` the report shows (qpo.tracking.MODEL_NAME, without importing it)
FORECASTER_NAME = "qpo-return-forecaster"


@dataclass
class ForecastSection:
    """What the daily report says about return forecasts: ``status`` is ``forecast`` (a table of
    the champion's forecasts), ``no_champion`` or ``unavailable`` (the champion exists but cannot
    forecast the held names, or could not be read; ``message`` says why)."""

    status: str
    message: str
    model_name: str
    table: pd.DataFrame | None = None  # qpo.reporting.forecast.forecast_comparison
    version: str | None = None
    oos_mean_ic: float | None = None
    baseline_mean_ic: float | None = None
    train_end: pd.Timestamp | None = None
    forecast: Forecast | None = field(default=None, repr=False)

    @property
    def available(self) -> bool:
        return self.status == "forecast"

    def html(self) -> str:
        import html

        css = {"forecast": "qpo-forecast", "no_champion": "qpo-no-forecast"}.get(self.status, "qpo-forecast-unavailable")
        text = f'<p class="{css}">{html.escape(self.message)}</p>'
        if self.table is None:
            return text
        pct = {c: "{:.2%}" for c in self.table.columns if c not in ("weight", "note")}
        styled = self.table.style.format({**pct, "weight": "{:.1%}"} if "weight" in self.table else pct, na_rep="–")
        return text + styled.to_html()

    def metrics(self) -> dict:
        """Flat values to record (numbers go to MLflow): availability, the champion's version and
        IC, and the portfolio's forecast and historical mean (annualized), with each name's."""
        out: dict = {"forecast_available": int(self.available), "forecast_status": self.status}
        if self.version is not None:
            out["champion_version"] = int(self.version)
        if self.oos_mean_ic is not None:
            out["champion_oos_mean_ic"] = self.oos_mean_ic
        if self.table is not None:
            t = self.table
            names = [i for i in t.index if i != "portfolio"]
            h = self.forecast.horizon if self.forecast is not None else None
            if h is not None:
                out["forecast_horizon"] = h
                out["forecast_horizon_returns"] = {n: finite_or_none(t.loc[n, f"forecast {h}d"]) for n in names}
            out["forecast_annual"] = {n: finite_or_none(t.loc[n, "forecast (annualized)"]) for n in names}
            out["historical_mean_annual"] = {n: finite_or_none(t.loc[n, "historical mean (annualized)"]) for n in names}
            if "portfolio" in t.index:
                out["forecast_portfolio_annual"] = float(t.loc["portfolio", "forecast (annualized)"])
                out["historical_mean_portfolio_annual"] = float(t.loc["portfolio", "historical mean (annualized)"])
        return out




def _surely_no_champion(tracking_uri: str | None, model_name: str) -> bool:
    """True when the tracking store certainly holds no ``champion`` alias of ``model_name``: a
    SQLite file that does not exist yet, or an SQL store whose alias table has no such row. Checked
    with SQLAlchemy, without importing MLflow (seconds) or creating the file; anything else (another
    kind of store, a table that is not what MLflow 3 writes) is False, and MLflow itself is asked."""
    from pathlib import Path

    import sqlalchemy as sa

    from qpo import config

    uri = tracking_uri or config.tracking_uri()
    try:
        url = sa.engine.make_url(uri)
    except Exception:  # noqa: BLE001 - not a database URL (a file store, a server): MLflow decides
        return False
    if url.get_backend_name() == "sqlite":
        if not url.database or url.database == ":memory:":
            return False
        if not Path(url.database).exists():
            return True
    try:
        engine = sa.create_engine(url)
        try:
            with engine.connect() as conn:
                row = conn.execute(sa.text("SELECT version FROM registered_model_aliases WHERE name = :name "
                                           "AND alias = 'champion'"), {"name": model_name}).first()
        finally:
            engine.dispose()
    except Exception:  # noqa: BLE001 - no such table or columns, no driver: MLflow decides
        return False
    return row is None


def forecast_section(weights: pd.Series, prices: pd.DataFrame, as_of, historical_mean: pd.Series, *,
                     model_name: str = FORECASTER_NAME, tracking_uri: str | None = None,
                     periods_per_year: int | None = None) -> ForecastSection:
    """The registered ``champion`` of ``model_name`` forecasting the held names (``weights``' index)
    from ``prices`` up to ``as_of``, next to ``historical_mean`` (annualized at ``periods_per_year``,
    per name; None: the prices' own, read from their dates). The forecasts are annualized at the
    same periods a year. Never raises: without a champion, or when it cannot forecast these names
    (not trained on them, too little history, a registry or model that cannot be read), the
    section says so and why."""
    try:
        return _forecast_section(weights, prices, as_of, historical_mean, model_name, tracking_uri, periods_per_year)
    except Exception as exc:  # noqa: BLE001 - the report never fails because of the forecaster
        return ForecastSection("unavailable", f"No forecasts are shown: the forecast section failed "
                                              f"({type(exc).__name__}: {exc}).", model_name)


def _forecast_section(weights, prices, as_of, historical_mean, model_name, tracking_uri,
                      periods_per_year=None) -> ForecastSection:
    from qpo.reporting.forecast import forecast_comparison
    from qpo.risk import period_adjective, period_name

    uri = f"models:/{model_name}@champion"
    none = ForecastSection("no_champion", f"No champion return forecaster is registered ({uri}); train one with "
                                          "`qpo pipeline run weekly-retrain`.", model_name)
    if _surely_no_champion(tracking_uri, model_name):
        return none
    try:
        from qpo.tracking import current_champion

        champion = current_champion(model_name, tracking_uri=tracking_uri)
    except Exception as exc:  # noqa: BLE001 - the report never fails because of the forecaster
        return ForecastSection("unavailable", f"The model registry could not be read, so no forecasts are shown "
                                              f"({type(exc).__name__}: {exc}).", model_name)
    if champion is None:
        return none
    version = str(champion.version)

    from qpo.tracking import numeric_tag

    ic, base_ic = numeric_tag(champion.tags, "qpo.oos_mean_ic"), numeric_tag(champion.tags, "qpo.baseline_mean_ic")
    try:
        train_end = pd.Timestamp(champion.tags["qpo.train_end"])
    except (KeyError, TypeError, ValueError):
        train_end = None
    kw = dict(model_name=model_name, version=version, oos_mean_ic=ic, baseline_mean_ic=base_ic, train_end=train_end)
    held = list(weights.index)
    as_of = pd.Timestamp(as_of)
    try:
        from qpo.tracking import load_forecaster

        forecaster = load_forecaster(f"models:/{model_name}/{version}", tracking_uri=tracking_uri)
    except Exception as exc:  # noqa: BLE001
        return ForecastSection("unavailable", f"The champion {model_name} version {version} could not be loaded, so "
                                              f"no forecasts are shown ({type(exc).__name__}: {exc}).", **kw)
    try:
        # the rank features compare names on a date: forecast the whole universe the model knows (as it was
        # trained), then keep the held names; names it does not know are an error that names them
        known = set(forecaster.tickers)
        unknown = [t for t in held if str(t) not in known]
        if unknown:
            raise DataError(f"the model was not trained on tickers {unknown}; it knows {sorted(known)}")
        universe = [t for t in prices.columns if str(t) in known]
        import warnings

        with warnings.catch_warnings():  # a look-ahead is the section's own caution (below), not a data warning
            warnings.filterwarnings("ignore", message="look-ahead")
            forecast = forecaster.predict(prices.loc[:as_of, universe], as_of)
        forecast.values = forecast.values.reindex([t for t in held if t in forecast.values.index])
        forecast.dropped = {t: why for t, why in forecast.dropped.items() if t in held}
    except Exception as exc:  # noqa: BLE001 - DataError: names it was not trained on, too little history
        return ForecastSection("unavailable", f"The champion {model_name} version {version} cannot forecast the held "
                                              f"names on {as_of.date()}: {exc}", **kw)
    ppy = int(periods_per_year) if periods_per_year is not None else forecast.periods_per_year
    table = forecast_comparison(forecast, historical_mean.reindex(held), weights.reindex(held), periods_per_year=ppy)
    ic_text = f"out-of-sample mean rank IC {ic:.4f}" if ic is not None else "no recorded out-of-sample IC"
    if base_ic is not None:
        ic_text += f" against the historical mean's {base_ic:.4f}"
    msg = (f"Return forecasts of the champion {model_name} version {version} ({forecaster.config.model.upper()}, "
           f"{ic_text}): the next {forecast.horizon} {period_name(ppy)}s from {forecast.as_of.date()}, annualized "
           f"(x {ppy}/{forecast.horizon}), next to each name's historical mean over the report's lookback "
           f"({ppy} x the mean {period_adjective(ppy)} return).")
    if train_end is not None:
        if train_end > forecast.as_of:
            msg += (f" Caution: the champion was trained on prices up to {train_end.date()}, after this date; it has "
                    f"seen what followed, so these are in-sample numbers, not forecasts.")
        else:
            msg += f" The champion was trained on prices up to {train_end.date()}."
    if forecast.dropped:
        msg += " No forecast for " + "; ".join(f"{t}: {why}" for t, why in forecast.dropped.items()) + "."
    return ForecastSection("forecast", msg, table=table, forecast=forecast, **kw)

