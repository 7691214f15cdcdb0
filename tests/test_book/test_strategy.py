"""Strategy: a client portfolio's stored strategy, validated JSON that always builds a problem."""
from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import qpo
from qpo.book.strategy import OBJECTIVES, SCHEMA_VERSION, Strategy, StrategyError
from qpo.errors import InfeasibleError, InvalidValueError
from qpo.optimization import Constraints, optimize
from qpo.risk import Limits

SECTORS = qpo.load_sectors()
TICKERS = sorted(SECTORS)  # the bundled panel's 20 names, 7 sectors


@pytest.fixture(scope="module")
def returns() -> pd.DataFrame:
    prices = qpo.load_prices("sp500")[TICKERS].loc[:"2022-12-28"]
    return prices.pct_change(fill_method=None).iloc[-400:]


def doc(**changes) -> dict:
    return {"schema_version": SCHEMA_VERSION, **changes}


# -- the default and the JSON form ------------------------------------------------------------------
def test_the_default_strategy_and_its_json():
    s = Strategy.default()
    assert s.objective == "min_variance" and s.covariance == "ledoit_wolf" and s.mean == "historical"
    assert s.lookback == 756 and s.risk_free_rate == 0.0 and s.rebalance_band == 0.05 and s.fractional is False
    assert s.commission == 0.0 and s.spread_bps == 5.0 and s.confidence == 0.95 and s.sector_max is None
    assert isinstance(s.constraints, Constraints) and s.constraints.describe() == {}
    assert s.limits == Limits(max_weight=0.30, sector_max=0.40, min_names=5, var_limit=0.03)
    j = s.to_json()
    assert j["schema_version"] == 1 and j["constraints"] == {} and j["objective_options"] == {}
    assert json.loads(json.dumps(j, allow_nan=False)) == j  # plain JSON
    assert Strategy.from_json(j) == s and Strategy.from_json(json.dumps(j)) == s
    assert Strategy.from_json({"schema_version": 1}) == s  # every other key is optional
    j["constraints"]["max_weight"] = 0.1  # a new dict each call: changing it changes no strategy
    assert Strategy.default().to_json()["constraints"] == {}


def test_a_full_strategy_round_trips_and_keeps_typed_objects():
    d = doc(objective="max_utility", objective_options={"risk_aversion": 3}, mean="ewma", covariance="oas", lookback=500,
            risk_free_rate=0.02, constraints={"max_weight": {"AAPL": 0.1, "MSFT": 0.2}, "max_turnover": 0.3,
                                              "transaction_costs": 0.002, "benchmark_weights": {"KO": 0.5, "PG": 0.5},
                                              "max_tracking_error": 0.1},
            sector_max={"Energy": 0.1}, limits={"max_weight": 0.25, "min_names": 8}, benchmark="SPY",
            rebalance_band=0.1, fractional=True, commission=1, spread_bps=2, confidence=0.99)
    s = Strategy.from_json(d)
    assert s.constraints.max_turnover == 0.3 and s.constraints.current_weights is None  # the proposal sets them
    assert s.constraints.max_weight == {"AAPL": 0.1, "MSFT": 0.2}
    assert s.limits == Limits(max_weight=0.25, min_names=8) and s.limits.var_limit is None  # {} fields: not checked
    assert s.commission == 1.0 and isinstance(s.commission, float)
    j = s.to_json()
    assert j["constraints"] == d["constraints"] and j["objective_options"] == {"risk_aversion": 3.0}
    assert Strategy.from_json(j) == s and Strategy.from_json(j).to_json() == j
    assert hash(Strategy.from_json(j)) == hash(s)
    assert s != Strategy.default() and s != "a strategy"


def test_dataclasses_replace_validates_like_construction():
    s = Strategy.default()
    stricter = dataclasses.replace(s, limits=dataclasses.replace(s.limits, max_weight=0.05))
    assert stricter.limits.max_weight == 0.05 and stricter.to_json()["limits"]["max_weight"] == 0.05
    with pytest.raises(StrategyError, match="lookback"):
        dataclasses.replace(s, lookback=5)
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.objective = "max_sharpe"


# -- refusals ---------------------------------------------------------------------------------------
BAD = [
    (doc(objective="hrp"), "objective: 'hrp' takes no constraints"),
    (doc(objective="asset_selection"), "objective: unknown"),
    (doc(objective="max_sharp"), "valid: min_variance, max_sharpe"),
    (doc(objective=3), "objective: unknown 3"),
    (doc(objective_options={"target_return": 0.1}), "min_variance does not take 'target_return'; it takes none"),
    (doc(objective="efficient_return"), "efficient_return needs target_return"),
    (doc(objective="efficient_return", objective_options={"target_return": "10%"}), "objective_options.target_return"),
    (doc(objective="efficient_risk", objective_options={"target_volatility": 0}), "target_volatility: must be"),
    (doc(objective="max_utility", objective_options={"risk_aversion": -1}), "risk_aversion: must be"),
    (doc(objective="min_cvar", objective_options={"confidence": 95}), "confidence: must be"),
    (doc(objective="max_utility", objective_options={"gamma": 1}), "does not take 'gamma'; it takes risk_aversion"),
    (doc(objective="risk_parity", objective_options={"risk_budgets": {"AAPL": 1}}), "risk_budgets: is not stored"),
    (doc(objective_options=[1]), "objective_options: must be an object"),
    (doc(mean="forecast"), "mean: unknown 'forecast'; valid: historical, ewma"),
    (doc(covariance="shrunk"), "covariance: unknown 'shrunk'; valid: sample, ewma, ledoit_wolf, oas, factor"),
    (doc(lookback="756"), "lookback: must be a whole number from 20"),
    (doc(lookback=756.0), "lookback: must be a whole number"),
    (doc(lookback=True), "lookback: must be a whole number"),
    (doc(lookback=10), "lookback: must be a whole number from 20"),
    (doc(risk_free_rate=float("nan")), "risk_free_rate: must be a finite number"),
    (doc(risk_free_rate=float("inf")), "risk_free_rate: must be a finite number"),
    (doc(commission=-1), "commission: must be a finite number >= 0"),
    (doc(commission="1"), "commission: must be a finite number"),
    (doc(spread_bps=True), "spread_bps: must be a finite number"),
    (doc(confidence=95), "confidence: must be a finite number > 0 and < 1"),
    (doc(rebalance_band=0), "rebalance_band: must be a finite number > 0"),
    (doc(fractional="yes"), "fractional: must be true or false"),
    (doc(benchmark=""), "benchmark"),
    (doc(benchmark="SPY\x00"), "benchmark"),
    (doc(constraints={"current_weights": {"AAPL": 1.0}}), "current_weights is set by each proposal"),
    (doc(constraints={"max_wieght": 0.1}), "constraints: unknown field 'max_wieght'; valid: long_only, min_weight"),
    (doc(constraints={"max_weight": "0.1"}), "constraints.max_weight: must be a finite number"),
    (doc(constraints={"max_weight": {"AAPL": float("nan")}}), "constraints.max_weight['AAPL']: must be a finite number"),
    (doc(constraints={"min_weight": 0.2, "max_weight": 0.1}), "constraints: min_weight 0.2 > max_weight 0.1"),
    (doc(constraints={"min_weight": {"AAPL": 0.3}, "max_weight": {"AAPL": 0.2}}), "constraints: min_weight > max_weight for AAPL"),
    (doc(constraints={"group_max": {"Tech": 0.3}}), "constraints: group_min/group_max need groups"),
    (doc(constraints={"groups": {"AAPL": "Tech"}, "group_max": {"Energy": 0.3}}), "group_max names groups ['Energy']"),
    (doc(constraints={"max_tracking_error": 0.05}), "max_tracking_error needs benchmark_weights"),
    (doc(constraints={"long_only": False}), "constraints.long_only: must be true"),
    (doc(constraints={"budget": 1.2}), "constraints.budget: must lie in (0, 1]"),
    (doc(constraints={"budget": 0}), "constraints.budget: must lie in (0, 1]"),
    (doc(constraints={"budget": 1, "leverage": 0.8}), "constraints.leverage: 0.8 is below the budget 1"),
    (doc(constraints={"max_assets": 2.5}), "constraints.max_assets: must be a whole number"),
    (doc(constraints={"max_weight": None}), "constraints.max_weight: cannot be null"),
    (doc(constraints={"min_weight": 0.35, "max_weight": 0.45}), "no number of names holds the budget"),
    (doc(constraints="max_weight=0.1"), "constraints: must be an object"),
    (doc(objective="max_sharpe", constraints={"max_assets": 5}), "max_sharpe cannot take max_assets"),
    (doc(objective="max_sharpe", constraints={"market_impact": 0.01}), "max_sharpe cannot take market_impact"),
    (doc(objective="risk_parity", constraints={"transaction_costs": 0.001}), "risk_parity does not charge transaction costs"),
    (doc(sector_max=1.5), "sector_max: must be a finite number > 0 and <= 1"),
    (doc(sector_max={"Energy": -0.1}), "sector_max['Energy']: must be a finite number >= 0"),
    (doc(sector_max=0.4, constraints={"groups": {"AAPL": "Tech"}}), "sector_max: and constraints.groups are both set"),
    (doc(limits=None), "limits: cannot be null"),
    (doc(limits={"max_wieght": 0.3}), "limits: unknown field 'max_wieght'; valid: max_weight, sector_max"),
    (doc(limits={"var_method": "garch"}), "limits: unknown Limits.var_method 'garch'"),
    (doc(limits={"min_names": 0}), "limits.min_names: must be a whole number from 1"),
    (doc(limits={"max_weight": float("inf")}), "limits.max_weight: must be a finite number > 0"),
    ({"objective": "min_variance"}, "schema_version is missing; this qpo reads schema_version 1"),
    (doc(schema_version=2), "schema_version 2 is not supported; this qpo reads schema_version 1"),
    (doc(schema_version="1"), "schema_version '1' is not supported"),
    (doc(schema_version=True), "schema_version True is not supported"),
    (doc(name="mine"), "unknown key 'name'; valid: schema_version, objective, objective_options"),
    ([1, 2], "a strategy is a JSON object"),
    ("{not json", "this text is not JSON at line 1, column 2"),
    ("[]", "a strategy is a JSON object"),
]


@pytest.mark.parametrize("obj, expected", BAD, ids=[str(i) for i in range(len(BAD))])
def test_what_the_optimizer_would_not_take_is_refused_with_the_key_and_what_is_valid(obj, expected):
    with pytest.raises(StrategyError) as info:
        Strategy.from_json(obj)
    message = str(info.value)
    assert isinstance(info.value, InvalidValueError)
    assert expected in message, message
    assert len(message) < 300


def test_the_cli_can_prefix_a_strategy_error():
    """qpo.cli's load_strategy re-raises ``type(exc)(f"strategy file ...: {exc}")``: the error
    type must take one message."""
    with pytest.raises(StrategyError) as info:
        Strategy.from_json(doc(objective="nope"))
    again = type(info.value)(f"strategy file 'x.json': {info.value}")
    assert str(again).startswith("strategy file 'x.json': strategy objective: unknown 'nope'")


def test_every_accepted_objective_is_one_the_engine_takes(returns):
    options = {"efficient_return": {"target_return": 0.05}, "efficient_risk": {"target_volatility": 0.2}}
    for objective in OBJECTIVES:
        s = Strategy.from_json(doc(objective=objective, objective_options=options.get(objective, {}), lookback=250))
        result = optimize(s.problem(returns[TICKERS[:8]]), **s.optimize_kwargs(), confidence_level=None)
        assert result.objective == objective and abs(result.weights.sum() - 1) < 1e-6


# -- building problems ------------------------------------------------------------------------------
def test_problem_estimates_from_the_last_lookback_returns(returns):
    s = Strategy.from_json(doc(mean="historical", covariance="sample", lookback=120, risk_free_rate=0.01))
    p = s.problem(returns)
    window = returns.iloc[-120:]
    pd.testing.assert_frame_equal(p.returns, window)
    np.testing.assert_allclose(p.mu.to_numpy(), window.mean().to_numpy(), rtol=1e-12)
    np.testing.assert_allclose(p.cov.to_numpy(), np.cov(window.to_numpy(), rowvar=False, ddof=1), rtol=1e-10)
    assert p.risk_free_rate == 0.01 and p.periods_per_year == 252
    lw = Strategy.default().problem(returns)
    assert len(lw.returns) == len(returns)  # 756 asked, 400 there: all of them
    from sklearn.covariance import ledoit_wolf

    np.testing.assert_allclose(lw.cov.to_numpy(), ledoit_wolf(returns.to_numpy())[0], rtol=1e-6, atol=1e-12)
    with pytest.raises(qpo.errors.DataError, match="at least 20"):
        s.problem(returns.iloc[:10])


def test_sector_caps_become_group_caps_the_optimizer_keeps(returns):
    s = Strategy.from_json(doc(objective="max_sharpe", sector_max=0.25, lookback=400))
    c = s.constraints_for(TICKERS, SECTORS)
    assert c.groups == {t: SECTORS[t] for t in TICKERS}
    assert c.group_max == {g: 0.25 for g in set(SECTORS.values())} and c.transaction_costs == 5e-4
    w = optimize(s.problem(returns, sectors=SECTORS), **s.optimize_kwargs(), confidence_level=None).weights
    totals = w.groupby(pd.Series(SECTORS)).sum()
    assert totals.max() <= 0.25 + 1e-6 and abs(w.sum() - 1) < 1e-6
    free = optimize(Strategy.from_json(doc(objective="max_sharpe", lookback=400)).problem(returns),
                    "max_sharpe", confidence_level=None).weights
    assert free.groupby(pd.Series(SECTORS)).sum().max() > 0.25 + 1e-3  # the cap binds: it changed the answer
    # a dict caps only the sectors it names (and only those present); default sectors: qpo.load_sectors()
    capped = Strategy.from_json(doc(sector_max={"Energy": 0.05, "Utilities": 0.1}))
    one = capped.constraints_for(TICKERS, within_limits=False)
    assert one.group_max == {"Energy": 0.05}
    # with the compliance limits (the house's 40 % per sector, 30 % per name) as caps too: the tighter wins
    both = capped.constraints_for(TICKERS)
    present = {SECTORS[t] for t in TICKERS}
    assert both.group_max == {g: 0.05 if g == "Energy" else 0.40 for g in present} and both.max_weight == 0.30
    # a ticker without a sector is Unclassified
    other = s.constraints_for(["AAPL", "ZZZ", "KO", "XOM", "JPM"], SECTORS)
    assert other.groups["ZZZ"] == "Unclassified"


def test_caps_that_cannot_hold_the_budget_are_refused_never_loosened(returns):
    s = Strategy.from_json(doc(constraints={"max_weight": 0.1}))
    with pytest.raises(InfeasibleError, match=r"max_weight allow at most 50.0% in the 5 tickers given, below the budget 100.0%"):
        s.constraints_for(TICKERS[:5])
    assert s.constraints_for(TICKERS[:10]).max_weight == 0.1  # 10 names x 10 % hold it exactly
    tight = Strategy.from_json(doc(sector_max=0.2))
    with pytest.raises(InfeasibleError, match="sector caps allow at most"):
        tight.constraints_for(["AAPL", "MSFT", "AMD", "XOM", "CVX"], SECTORS)  # two sectors x 20 %
    floor = Strategy.from_json(doc(constraints={"min_weight": 0.05}))
    with pytest.raises(InfeasibleError, match="min_weight asks for 100.0%|min_weight asks for"):
        floor.constraints_for([f"T{i}" for i in range(21)])


def test_named_tickers_must_be_in_the_universe():
    s = Strategy.from_json(doc(constraints={"max_weight": {"AAPL": 0.1, "XOM": 0.1}}))
    with pytest.raises(StrategyError, match="name XOM, which is not among the 2 tickers given"):
        s.constraints_for(["AAPL", "KO"])


def test_current_weights_turnover_and_costs():
    s = Strategy.from_json(doc(constraints={"max_turnover": 0.1}, spread_bps=12))
    held = {"AAPL": 0.35, "KO": 0.35}  # 30 % cash
    c = s.constraints_for(["AAPL", "KO", "XOM"], SECTORS, held)
    assert c.current_weights == held and c.max_turnover == 0.1
    assert c.budget == pytest.approx(0.8)  # invests 10 % of the cash: all the cap allows
    assert c.transaction_costs == pytest.approx(12e-4)
    fresh = s.constraints_for(["AAPL", "KO", "XOM"], SECTORS)
    assert fresh.max_turnover is None and fresh.current_weights is None and fresh.budget == 1.0
    own = Strategy.from_json(doc(constraints={"transaction_costs": {"AAPL": 0.01}}))
    assert own.constraints_for(["AAPL", "KO"]).transaction_costs == {"AAPL": 0.01}  # its own costs kept
    rp = Strategy.from_json(doc(objective="risk_parity"))
    assert rp.constraints_for(["AAPL", "KO"]).transaction_costs is None and not rp.charges_costs()


def test_turnover_cap_holds_in_the_solved_problem(returns):
    s = Strategy.from_json(doc(constraints={"max_turnover": 0.2, "max_weight": 0.3}, lookback=250))
    held = dict.fromkeys(TICKERS[:5], 0.2)
    result = optimize(s.problem(returns, current_weights=held, sectors=SECTORS), **s.optimize_kwargs(),
                      confidence_level=None)
    before = pd.Series(held).reindex(TICKERS).fillna(0.0)
    assert (result.weights - before).abs().sum() <= 0.2 + 1e-6


# -- changes ----------------------------------------------------------------------------------------
def test_with_overrides_routes_each_change_and_validates():
    s = Strategy.default().with_overrides(objective="max_sharpe", max_weight=0.2, sector_max=0.4, max_turnover=0.3,
                                          min_names=4, commission=1.0, spread_bps=5.0)
    assert s.objective == "max_sharpe" and s.constraints.max_weight == 0.2 and s.constraints.max_turnover == 0.3
    assert s.sector_max == 0.4 and s.limits.min_names == 4 and s.limits.max_weight == 0.30  # the limit is apart
    assert s.commission == 1.0
    target = s.with_overrides(objective="efficient_return", target_return=0.08)
    assert target.objective_options == {"target_return": 0.08} and target.constraints.max_weight == 0.2
    back = target.with_overrides(objective="min_variance")  # options the new objective does not take are dropped
    assert back.objective_options == {}
    assert s.with_overrides(limits={"max_weight": 0.5}).limits == dataclasses.replace(s.limits, max_weight=0.5)
    assert s.with_overrides(constraints={"budget": 0.9}).constraints.max_weight == 0.2  # a dict changes fields
    assert s.with_overrides(constraints=Constraints()).constraints.describe() == {}  # an object replaces
    assert s.with_overrides(max_turnover=None).constraints.max_turnover is None
    assert s.with_overrides() == s and Strategy.from_json(s.to_json()) == s
    with pytest.raises(StrategyError, match="cannot change 'max_wieght'"):
        s.with_overrides(max_wieght=0.1)
    with pytest.raises(StrategyError, match="strategy constraints: max_weight must be (a finite number )?> 0"):
        s.with_overrides(max_weight=-1)
    with pytest.raises(StrategyError, match="efficient_return needs target_return"):
        s.with_overrides(objective="efficient_return")
    with pytest.raises(StrategyError, match="max_utility does not take 'target_return'"):
        target.with_overrides(objective="max_utility", target_return=0.1)


def test_a_strategy_constructs_in_milliseconds_whatever_its_caps():
    """The build check at construction is structural: a cap that needs 2,000 names to hold the
    budget does not make it build a 2,000-name problem (the daily report reads every portfolio's)."""
    import time

    Strategy.default()
    t0 = time.perf_counter()
    for cap in (0.0005, 0.01, 1e-9):
        Strategy.from_json(doc(constraints={"max_weight": cap}, covariance="factor", sector_max=0.3))
    assert time.perf_counter() - t0 < 1.0
    with pytest.raises(InfeasibleError, match="max_weight allow at most"):
        Strategy.from_json(doc(constraints={"max_weight": 0.0005})).constraints_for(TICKERS)


def test_check_builds_on_a_real_sample(returns):
    s = Strategy.from_json(doc(objective="min_cvar", objective_options={"confidence": 0.9}, lookback=300,
                               sector_max={"Energy": 0.1}))
    p = s.check_builds(returns)
    assert p.tickers == TICKERS and len(p.returns) == 300
    assert p.constraints.group_max == {"Energy": 0.1}


# -- the property: every valid strategy round-trips exactly and builds ------------------------------
finite = dict(allow_nan=False, allow_infinity=False)


def _num(lo, hi):
    return st.one_of(st.floats(lo, hi, **finite), st.integers(int(np.ceil(lo)), int(np.floor(hi))))


@st.composite
def valid_strategies(draw) -> dict:
    objective = draw(st.sampled_from(OBJECTIVES))
    options: dict = {}
    if objective == "efficient_return":
        options["target_return"] = draw(st.floats(-0.5, 0.5, **finite))
    elif objective == "efficient_risk":
        options["target_volatility"] = draw(st.floats(0.01, 1.0, **finite))
    elif objective == "max_utility" and draw(st.booleans()):
        options["risk_aversion"] = draw(st.floats(0.01, 100, **finite))
    elif objective == "min_cvar" and draw(st.booleans()):
        options["confidence"] = draw(st.floats(0.5, 0.99, **finite))
    elif objective == "risk_parity" and draw(st.booleans()):
        options["risk_budgets"] = None
    scale_free = objective in ("max_sharpe", "max_diversification", "risk_parity")
    some = st.lists(st.sampled_from(TICKERS), min_size=1, max_size=3, unique=True)
    c: dict = {}
    if draw(st.booleans()):
        c["budget"] = draw(st.floats(0.5, 1.0, **finite))
        if draw(st.booleans()):
            c["leverage"] = draw(st.floats(c["budget"], 2.0, **finite))
    if draw(st.booleans()):
        c["max_weight"] = draw(st.one_of(st.floats(0.15, 1.0, **finite),
                                         st.dictionaries(st.sampled_from(TICKERS), st.floats(0.05, 1.0, **finite),
                                                         min_size=1, max_size=3)))
    if draw(st.booleans()):
        c["min_weight"] = draw(st.one_of(st.floats(0.0, c.get("budget", 1.0) / len(TICKERS), **finite),
                                         st.dictionaries(st.sampled_from(TICKERS), st.floats(0.0, 0.05, **finite),
                                                         min_size=1, max_size=3)))
    if draw(st.booleans()):
        c["max_turnover"] = draw(st.floats(0.05, 2.0, **finite))
    if not scale_free or objective == "max_sharpe":
        if draw(st.booleans()) and objective != "risk_parity" and objective != "max_diversification":
            c["transaction_costs"] = draw(st.one_of(st.floats(0.0, 0.01, **finite),
                                                    st.dictionaries(st.sampled_from(TICKERS),
                                                                    st.floats(0.0, 0.01, **finite), max_size=3)))
    if not scale_free:
        if draw(st.booleans()):
            c["market_impact"] = draw(st.floats(0.0, 0.01, **finite))
        if draw(st.booleans()):
            c["max_assets"] = draw(st.integers(8, 20))
        if draw(st.booleans()):
            c["min_position"] = draw(st.floats(0.001, 0.03, **finite))
    if draw(st.booleans()):
        names = draw(some)
        c["benchmark_weights"] = {t: 1.0 / len(names) for t in names}
        if draw(st.booleans()):
            c["max_tracking_error"] = draw(st.floats(0.01, 0.5, **finite))
    sector_max = draw(st.one_of(st.none(), st.floats(0.25, 1.0, **finite),
                                st.dictionaries(st.sampled_from(sorted(set(SECTORS.values()))),
                                                st.floats(0.05, 1.0, **finite), min_size=1, max_size=3)))
    if sector_max is None and draw(st.booleans()):
        names = draw(some)
        c["groups"] = {t: f"G{i % 2}" for i, t in enumerate(names)}
        c["group_max"] = {"G0": draw(st.floats(0.3, 1.0, **finite))}
    if isinstance(c.get("min_weight"), dict) and isinstance(c.get("max_weight"), dict):
        c["max_weight"] = {t: max(v, c["min_weight"].get(t, 0.0)) for t, v in c["max_weight"].items()}
    limits = draw(st.one_of(st.just(None), st.fixed_dictionaries({}, optional={
        "max_weight": st.floats(0.01, 1.0, **finite), "sector_max": st.floats(0.0, 1.0, **finite),
        "min_names": st.integers(1, 50), "var_limit": st.floats(0.001, 0.5, **finite),
        "var_method": st.sampled_from(["historical", "normal", "cornish_fisher"])})))
    d = {"schema_version": 1, "objective": objective, "objective_options": options,
         "mean": draw(st.sampled_from(["historical", "ewma"])),
         "covariance": draw(st.sampled_from(["sample", "ewma", "ledoit_wolf", "oas", "factor"])),
         "lookback": draw(st.integers(20, 2000)), "risk_free_rate": draw(_num(-0.05, 0.1)), "constraints": c,
         "sector_max": sector_max, "benchmark": draw(st.one_of(st.none(), st.sampled_from(["SPY", "^GSPC", "AGG"]))),
         "rebalance_band": draw(st.floats(0.001, 1.0, **finite)), "fractional": draw(st.booleans()),
         "commission": draw(_num(0.0, 100.0)), "spread_bps": draw(_num(0.0, 100.0)),
         "confidence": draw(st.floats(0.5, 0.999, **finite))}
    if limits is not None:
        d["limits"] = limits
    return d


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(d=valid_strategies())
def test_every_valid_strategy_round_trips_exactly_and_builds_on_real_returns(d, returns):
    s = Strategy.from_json(d)
    j = s.to_json()
    text = json.dumps(j, allow_nan=False)  # plain JSON, no NaN
    again = Strategy.from_json(text)
    assert again == s and again.to_json() == j and Strategy.from_json(j).to_json() == j
    assert json.dumps(again.to_json(), sort_keys=True) == json.dumps(j, sort_keys=True)  # exactly: types too
    # it builds on the bundled prices, with and without holdings
    held = dict.fromkeys(TICKERS, 1.0 / len(TICKERS))
    for current in (None, held):
        p = s.problem(returns, current_weights=current, sectors=SECTORS)
        assert p.tickers == TICKERS and len(p.returns) == min(s.lookback, len(returns))
        assert np.isfinite(p.cov.to_numpy()).all() and np.isfinite(p.mu.to_numpy()).all()
        p.resolved  # noqa: B018 - resolving the constraints over the universe is part of building
    assert s.check_builds(returns).tickers == TICKERS


def test_a_sector_cap_on_a_sector_no_ticker_has_is_refused_not_ignored(returns):
    """'Information technology' (a lower-case t) was stored and capped nothing: a proposal put 63.6 %
    in the sector the advisor meant to cap at 30 %."""
    with pytest.raises(StrategyError, match="sector_max names the sector 'Information technology', which no ticker "
                                            r"has .*did you mean 'Information Technology'\?"):
        Strategy.from_json({"schema_version": SCHEMA_VERSION, "sector_max": {"Information technology": 0.3}})
    with pytest.raises(StrategyError, match="limits.sector_max names the sector 'Helth Care'.*'Health Care'"):
        Strategy.from_json({"schema_version": SCHEMA_VERSION, "limits": {"sector_max": {"Helth Care": 0.3}}})
    # a taxonomy of one's own is stored, and refused only against a sector map that lacks it
    own = Strategy.from_json({"schema_version": SCHEMA_VERSION, "sector_max": {"Tech": 0.3}})
    names = ["AAPL", "MSFT", "JNJ", "XOM"]
    with pytest.raises(StrategyError, match="sector_max names the sector 'Tech', which no ticker has"):
        own.constraints_for(names)  # the bundled GICS map: no ticker is in 'Tech'
    c = own.constraints_for(names, sectors={"AAPL": "Tech", "MSFT": "Tech", "JNJ": "Pharma", "XOM": "Oil"})
    assert c.group_max == {"Tech": 0.3}
    right = Strategy.from_json({"schema_version": SCHEMA_VERSION, "objective": "max_sharpe",
                                "sector_max": {"Information Technology": 0.3}})
    w = optimize(right.problem(returns[names]), "max_sharpe").weights
    assert float(w[["AAPL", "MSFT"]].sum()) <= 0.3 + 1e-6


@pytest.mark.parametrize("doc, says", [
    ({"constraints": {"max_weight": 20}}, "constraints.max_weight: must be a finite number <= 1 (a fraction: 0.2 = 20 %)"),
    ({"constraints": {"max_weight": {"AAPL": 1.5}}}, "constraints.max_weight['AAPL']: must be a finite number <= 1"),
    ({"limits": {"max_weight": 30}}, "limits.max_weight: must be a finite number > 0 and <= 1 (a fraction: 0.25 = 25 %)"),
    ({"limits": {"var_limit": 3}}, "limits.var_limit: must be a finite number > 0 and <= 1 (a fraction: 0.03 = 3 % a day)"),
    ({"limits": {"sector_max": 40}}, "limits.sector_max: must be a finite number >= 0 and <= 1 (a fraction: 0.4 = 40 %)"),
])
def test_a_percent_where_a_fraction_belongs_is_refused(doc, says):
    """20 meant as 20 %: a long-only cap or a compliance limit above 1 caps nothing and never breaches,
    so every weight would pass it (a client portfolio is long-only)."""
    with pytest.raises(StrategyError) as info:
        Strategy.from_json({"schema_version": SCHEMA_VERSION, **doc})
    assert says in str(info.value)
    assert Strategy.from_json({"schema_version": SCHEMA_VERSION, "constraints": {"max_weight": 1}}).constraints.max_weight == 1
