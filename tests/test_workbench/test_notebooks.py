"""Every notebook of notebooks/ and voila_apps/ runs here, with small parameters, and has at
least one number checked against an independent computation."""
import json
import math

import numpy as np
import pytest

from tests.browser import TRACES_JS, browser_page
from tests.conftest import ROOT
from tests.test_store.test_store import SYSTEM
from tests.test_workbench import seed_demo_book, weights_with_cash

NOTEBOOKS = sorted(p.relative_to(ROOT).as_posix() for d in ("notebooks", "voila_apps")
                   for p in (ROOT / d).glob("*.ipynb"))


def _execute(tmp_path, rel, **params):
    import papermill as pm

    seed_demo_book()  # as `qpo db seed` does (bought on DEMO_BOOK_OPENED); the notebooks only read
    out = tmp_path / (rel.replace("/", "__"))
    pm.execute_notebook(str(ROOT / rel), str(out), parameters=params, cwd=str((ROOT / rel).parent),
                        progress_bar=False, start_timeout=300)  # a loaded 2-core machine starts kernels slowly
    return out


def _weights_and_returns(name, lookback, as_of=None):
    import qpo
    from qpo.store import connect, session_scope

    prices = qpo.load_prices("sp500", start="2000-01-01", end=as_of)
    with session_scope(connect()) as s:
        w = weights_with_cash(s, name, prices)  # the ledger's shares at the last close up to as_of, cash included
    px = prices[w.index].to_numpy()[-(lookback + 1):]
    return w, (px[1:] / px[:-1] - 1) @ w.to_numpy()


def _plotly_array(values) -> list:
    """A plotly JSON array: a list, or base64 bytes with a dtype (plotly >= 6)."""
    if isinstance(values, dict):
        import base64

        return np.frombuffer(base64.b64decode(values["bdata"]), dtype=values["dtype"]).tolist()
    return list(values)


def check_daily_report(tmp_path):
    from scipy.stats import norm

    from qpo.workbench.notebook import read_records
    from qpo.workbench.pipelines import export_html

    out = _execute(tmp_path, "notebooks/01_daily_risk_report.ipynb", portfolio="Tech Tilt", lookback_days=60,
                   as_of="2020-03-31", confidence=0.9)
    rec = read_records(out)
    w, r = _weights_and_returns("Tech Tilt", 60, "2020-03-31")
    assert rec["volatility"] == pytest.approx(np.std(r, ddof=1) * np.sqrt(252), rel=1e-9)
    k = 0.1 * 60  # the 6 worst of 60 days at 90 %
    assert rec["cvar"] == pytest.approx(-np.sort(r)[:int(k)].mean(), rel=1e-9)
    assert rec["var_normal"] == pytest.approx(-(r.mean() + r.std(ddof=1) * norm.ppf(0.1)), rel=1e-9)
    assert rec["as_of"] == "2020-03-31"
    # the limits checked are Tech Tilt's own, from its stored strategy (no limit_* parameter given)
    from qpo.book.strategy import Strategy
    from qpo.store import connect, get_portfolio, position, session_scope

    with session_scope(connect()) as s:
        own = Strategy.from_json(get_portfolio(s, SYSTEM, "Tech Tilt").strategy).limits
        cash = position(s, SYSTEM, "Tech Tilt", "2020-03-31").cash
    assert rec["limits"] == own.to_dict() and rec["cash"] == pytest.approx(cash, abs=1e-9)
    # Tech Tilt is over 80 % Information Technology: over its own sector limit, a breach said first
    it = sum(w[t] for t in ("AAPL", "MSFT", "AMD"))
    assert it > 0.8 and own.sector_max is not None and it > own.sector_max
    assert rec["compliance_breaches"] >= 1 and rec["breach_sector_information_technology"] == 1
    assert any(b.startswith("sector Information Technology") for b in rec["breaches"])
    # the HTML report draws its figures in a browser with the network closed
    html = export_html(out, tmp_path / "report.html")
    with browser_page() as page:
        page.route("http*://**", lambda route: route.abort())
        page.goto(html.as_uri())
        page.wait_for_function("() => document.querySelectorAll('.js-plotly-plot').length === 7", timeout=60_000)
        figs = page.evaluate(TRACES_JS)
        banner = page.inner_text(".qpo-breach")
        first_table = page.evaluate("() => document.body.innerText.indexOf('COMPLIANCE BREACH') < "
                                    "document.body.innerText.indexOf('Risk numbers')")
        no_forecast = page.inner_text(".qpo-no-forecast")
    assert [f["title"].split(":")[0] for f in figs][:3] == ["Growth of $1 over 60 days to 2020-03-31", "Tech Tilt",
                                                             "Current weights and the what-if rebalance (after "
                                                             "its trades)"]
    assert len(figs[0]["lines"]) == 3 and figs[2]["bars"] == 10  # 5 names x (current, what-if)
    assert figs[6]["title"].startswith("Stress tests") and f"Information Technology {it:.1%}" in banner and first_table
    # no forecaster is registered in this fresh home: the report says so, and creates no MLflow store to find out
    assert no_forecast == ("No champion return forecaster is registered (models:/qpo-return-forecaster@champion); "
                           "train one with `qpo pipeline run weekly-retrain`.")
    assert rec["forecast_available"] == 0 and rec["forecast_status"] == "no_champion"
    from qpo import config

    assert not (config.home() / "mlflow.db").exists()


def check_advisor(tmp_path):
    from qpo.workbench.notebook import read_records

    out = _execute(tmp_path, "voila_apps/advisor.ipynb", portfolio="Conservative Income", lookback_days=250)
    rec = read_records(out)
    assert rec["n_portfolios"] == 4 and rec["portfolio"] == "Conservative Income"
    _, r = _weights_and_returns("Conservative Income", 250)
    assert rec["volatility"] == pytest.approx(np.std(r, ddof=1) * np.sqrt(252), rel=1e-9)
    nb = json.loads(out.read_text())
    assert not any(o.get("output_type") == "error" for c in nb["cells"] for o in c.get("outputs", []))


def check_classical_frontier(tmp_path):
    """The frontier notebook's min-variance portfolio equals PyPortfolioOpt's under the same sector
    caps; its frontier has the asked points; the run is in MLflow with the same numbers."""
    import mlflow
    from pypfopt import EfficientFrontier

    import qpo
    from qpo.workbench.notebook import read_figures, read_records

    names = "AAPL,AMD,MSFT,JPM,BAC,XOM,CVX,KO,PG,JNJ"
    out = _execute(tmp_path, "notebooks/02_classical_frontier.ipynb", tickers=names, covariance="sample",
                   history_start="2019-01-01", history_end="2021-12-31", n_points=20, max_weight=0.3,
                   sector_max=0.4, objectives="min_variance,max_sharpe,hrp")
    rec = read_records(out)
    returns = qpo.prices_to_returns(qpo.load_prices("sp500", start="2019-01-01", end="2021-12-31")[names.split(",")])
    sectors = qpo.load_sectors()
    ef = EfficientFrontier(returns.mean() * 252, returns.cov() * 252, weight_bounds=(0, 0.3))
    by_sector = {t: sectors[t] for t in returns.columns}
    ef.add_sector_constraints(by_sector, {}, {s: 0.4 for s in set(by_sector.values())})
    ef.min_volatility()
    _, vol, _ = ef.portfolio_performance()
    assert rec["min_variance.volatility"] == pytest.approx(vol, rel=1e-6)
    assert rec["frontier_points"] == 20 and "hrp.sharpe" not in rec  # hrp takes no caps: skipped, and said
    nb = json.loads(out.read_text())
    assert "hrp skipped: hrp allocates by its own recursive rule" in json.dumps(nb)
    figs = read_figures(out)
    assert set(figs) == {"frontier", "weights", "frontier_weights"}
    assert len(figs["frontier"]["data"]) == 4  # frontier, assets, two portfolios
    from qpo.tracking import configure

    configure()  # the same store the notebook wrote (this test's QPO_HOME)
    run = mlflow.get_run(rec["mlflow_run_id"])
    assert run.data.metrics["max_sharpe.sharpe"] == pytest.approx(rec["max_sharpe.sharpe"], rel=1e-12)
    assert run.info.status == "FINISHED" and run.data.tags["qpo.data_hash"]


def check_backtest(tmp_path):
    """The backtest notebook's equal-weight wealth equals dollar positions rebalanced by hand at each
    quarter end with 20 bp of each trade paid; the index's CAGR is the index's; the run is in MLflow."""
    import mlflow

    import qpo
    from qpo.tracking import configure
    from qpo.workbench.notebook import read_figures, read_records

    out = _execute(tmp_path, "notebooks/03_backtest.ipynb", history_start="2015-01-01", history_end="2018-12-31",
                   strategies="min_variance,equal_weight", rebalance="Q", window=126, costs=0.002, max_weight=0.3)
    rec = read_records(out)
    prices = qpo.load_prices("sp500", start="2015-01-01", end="2018-12-31")
    P, idx = prices.to_numpy(), prices.index
    quarter_ends = {int(k) for k in np.flatnonzero(idx.to_period("Q")[1:] != idx.to_period("Q")[:-1]) if k >= 126}
    first = min(quarter_ends)
    hold = np.full(P.shape[1], (1 - 0.002) / P.shape[1])  # bought from cash: 20 bp of the whole wealth
    for k in range(first + 1, len(P)):
        hold = hold * P[k] / P[k - 1]
        if k in quarter_ends:
            V = hold.sum()
            hold = np.full(len(hold), (V - 0.002 * np.abs(V / len(hold) - hold).sum()) / len(hold))
    assert rec["first_rebalance"] == str(idx[first].date()) and rec["out_of_sample_days"] == len(P) - 1 - first
    assert rec["equal_weight.final_wealth"] == pytest.approx(hold.sum(), rel=1e-10)
    index = qpo.load_prices("sp500_index")["SP500"].loc[idx[first]:"2018-12-31"].to_numpy()
    assert rec["benchmark.cagr"] == pytest.approx((index[-1] / index[0]) ** (252 / (len(index) - 1)) - 1, rel=1e-10)
    assert rec["min_variance.n_failures"] == 0 and rec["min_variance.n_rebalances"] == len(quarter_ends)
    assert set(read_figures(out)) == {"equity", "drawdown", "weights_min_variance", "weights_equal_weight"}
    configure()
    run = mlflow.get_run(rec["mlflow_run_id"])
    assert run.data.metrics["min_variance.sharpe"] == pytest.approx(rec["min_variance.sharpe"], rel=1e-12)
    assert run.info.status == "FINISHED"


def check_quantum(tmp_path):
    """The quantum notebook's exact optimum is the best of every 3-of-8 choice computed here by hand
    from the same moments; QAOA's answer is feasible, its objective is the formula's, the gap and the
    approximation ratio follow from them; the run is in MLflow with the same numbers."""
    import itertools

    import mlflow

    import qpo
    from qpo.tracking import configure
    from qpo.workbench.notebook import read_figures, read_records

    out = _execute(tmp_path, "notebooks/04_quantum_vs_classical.ipynb", n=8, k=3, method="qaoa", depth=2,
                   shots=256, risk_aversion=10.0, seed=3)
    rec = read_records(out)
    prices = qpo.load_prices("sp500", start="2015-01-01", end="2020-12-31").dropna(axis=1)
    returns = qpo.prices_to_returns(prices).iloc[:, :8]
    pb = qpo.PortfolioProblem.from_returns(returns, covariance="ledoit_wolf")
    S, mu = pb.annual_cov(), pb.annual_mu()

    def f(names):
        w = np.array([1 / 3 if t in names else 0.0 for t in pb.tickers])
        return 5.0 * w @ S @ w - mu @ w

    values = {c: f(c) for c in itertools.combinations(pb.tickers, 3)}
    best = min(values, key=values.get)
    assert rec["f_star"] == pytest.approx(values[best], abs=1e-12)
    assert rec["f_max"] == pytest.approx(max(values.values()), abs=1e-12)
    assert rec["exact_selected"] == ",".join(best)
    chosen = tuple(rec["selected"].split(","))
    assert len(chosen) == 3 and rec["objective_value"] == pytest.approx(f(chosen), abs=1e-12)
    assert rec["gap"] == pytest.approx((f(chosen) - values[best]) / abs(values[best]), abs=1e-12)
    assert rec["approximation_ratio"] == pytest.approx(
        (max(values.values()) - f(chosen)) / (max(values.values()) - values[best]), abs=1e-9)
    assert rec["p_feasible"] == pytest.approx(1.0)  # the XY mixer (auto for an exact k) never leaves k of 8
    assert rec["uniform_p_optimum"] == pytest.approx(1 / 56)
    # optimized angles beat a uniformly random choice of 3 (mean approximation ratio over the feasible set)
    fv = np.array(list(values.values()))
    uniform_ratio = (fv.max() - fv.mean()) / (fv.max() - fv.min())
    assert rec["expected_approximation_ratio"] > uniform_ratio + 0.1
    assert set(read_figures(out)) == {"selection", "distribution", "landscape"}
    configure()
    run = mlflow.get_run(rec["mlflow_run_id"])
    assert run.data.metrics["p_optimum"] == pytest.approx(rec["p_optimum"], rel=1e-12)
    assert run.data.metrics["f_star"] == pytest.approx(rec["f_star"], rel=1e-12)
    assert run.info.status == "FINISHED"


def check_train_forecaster(tmp_path):
    """The training notebook on six names, 2008-2014, a tiny MLP in two 24-month folds: the
    historical mean's per-date IC logged to the run equals scipy's Spearman correlation of a hand-made
    historical mean with the realized returns; the recorded ICs are the means of the logged per-date
    ICs and of the folds'; the promotion follows from them (no champion before); the registry holds
    the version with its alias and the run. Then the daily report's forecast section reads that
    registry: the champion's numbers where it knows the names, the reason where it does not."""
    import mlflow
    import pandas as pd
    from scipy.stats import spearmanr

    import qpo
    from qpo.reporting.daily import DailyReport, forecast_section
    from qpo.tracking import champion_forecast, configure, load_forecaster, registry_table
    from qpo.workbench.notebook import read_figures, read_records

    names = ["AAPL", "JNJ", "JPM", "KO", "MSFT", "XOM"]
    out = _execute(tmp_path, "notebooks/05_train_forecaster.ipynb", tickers=",".join(names), hidden=8, layers=1,
                   max_epochs=2, retrain_months=24, history_start="2008-01-01", history_end="2014-12-31")
    rec = read_records(out)
    configure()
    run_id = rec["mlflow_run_id"]
    ic = mlflow.artifacts.load_dict(f"runs:/{run_id}/walk_forward/ic.json")
    folds = mlflow.artifacts.load_dict(f"runs:/{run_id}/walk_forward/folds.json")["folds"]

    # forecast dates every 21 trading days from 3 years of samples after the 252-day features
    prices = qpo.load_prices("sp500", start="2008-01-01", end="2014-12-31")[names]
    P = prices.to_numpy()
    pos = prices.index.get_indexer(pd.DatetimeIndex(ic["dates"]))
    assert pos[0] == 252 + 756 + 21 and (np.diff(pos) == 21).all() and pos[-1] + 21 <= len(P) - 1
    # the historical mean (expanding: every daily return up to t) against the realized 21-day return
    daily = P[1:] / P[:-1] - 1
    hand = [spearmanr(daily[:t].mean(axis=0) * 21, P[t + 21] / P[t] - 1)[0] for t in pos]
    assert ic["historical_mean"] == pytest.approx(hand, abs=1e-12)
    assert rec["baseline_mean_ic"] == pytest.approx(np.mean(hand), abs=1e-12)
    assert rec["oos_mean_ic"] == pytest.approx(np.mean(ic["model"]), abs=1e-12)
    assert rec["folds"] == len(folds) == 2 and sum(f["n_test_dates"] for f in folds) == len(pos)
    assert rec["oos_mean_ic"] == pytest.approx(sum(f["mean_ic"] * f["n_test_dates"] for f in folds) / len(pos),
                                               abs=1e-12)
    # no champion before: promoted exactly when the model's IC is positive and beats the historical mean's
    assert rec["promoted"] == int(rec["oos_mean_ic"] > max(rec["baseline_mean_ic"], 0.0))  # the promotion rule
    assert rec["alias"] == ("champion" if rec["promoted"] else "challenger") and rec["model_version"] == 1
    table = registry_table()
    assert table["version"].tolist() == [1] and table["aliases"].tolist() == [rec["alias"]]
    assert table["run_id"].tolist() == [run_id] and table["reason"].tolist() == [rec["promotion_reason"]]
    text = json.dumps(json.loads(out.read_text())["cells"])
    assert ("PROMOTED TO CHAMPION" if rec["promoted"] else "KEPT AS CHALLENGER") in text
    assert "n/a (constant)" in text
    figs = read_figures(out)
    assert set(figs) == {"ic", "folds"}
    bars = figs["ic"]["data"][0]  # the per-date IC the report draws is the logged one
    assert bars["type"] == "bar" and _plotly_array(bars["y"]) == pytest.approx(ic["model"], abs=1e-12)

    # the daily report's forecast section on this registry (made champion if the notebook kept it a challenger)
    mlflow.MlflowClient().set_registered_model_alias("qpo-return-forecaster", "champion", "1")
    full = qpo.load_prices("sp500")
    weights = pd.Series({"AAPL": 0.5, "KO": 0.3, "XOM": 0.2})
    px = full.loc[:"2014-12-31", weights.index].to_numpy()[-61:]
    hist = pd.Series((px[1:] / px[:-1] - 1).mean(axis=0) * 252, index=weights.index)  # 60-day lookback, annual
    report = DailyReport("a client", pd.Timestamp("2014-12-31"), weights, qpo.prices_to_returns(
        full.loc[:"2014-12-31", weights.index].iloc[-61:]), *[None] * 6)  # what the section reads of a report
    section = report.forecast_section(full)
    # the section forecasts the model's whole universe (its rank features compare names), then keeps the held ones
    universe = load_forecaster("models:/qpo-return-forecaster@champion").tickers
    expected = champion_forecast(full[universe], as_of="2014-12-31")
    assert section.status == "forecast" and section.version == "1" and expected.as_of == pd.Timestamp("2014-12-31")
    t = section.table
    assert t.loc[list(weights.index), "forecast 21d"].tolist() == expected.values[weights.index].tolist()
    assert t.loc[list(weights.index), "forecast (annualized)"].to_numpy() == pytest.approx(
        expected.values[weights.index].to_numpy() * 12, rel=1e-12)
    assert t.loc["portfolio", "forecast (annualized)"] == pytest.approx(
        float(weights @ expected.values[weights.index]) * 12, rel=1e-12)
    assert t.loc[list(weights.index), "historical mean (annualized)"].to_numpy() == pytest.approx(hist.to_numpy(),
                                                                                                 rel=1e-12)
    assert t.loc["portfolio", "historical mean (annualized)"] == pytest.approx(float(weights @ hist), rel=1e-12)
    assert section.metrics()["champion_oos_mean_ic"] == pytest.approx(rec["oos_mean_ic"], abs=1e-12)
    assert f"{expected.values['AAPL'] * 12:.2%}" in section.html() and "version 1" in section.message
    # names it was not trained on, and a date inside its training data, are said plainly
    other = forecast_section(pd.Series({"AAPL": 0.5, "AMD": 0.5}), full, "2014-12-31", hist)
    assert other.status == "unavailable" and other.table is None
    assert "cannot forecast the held names on 2014-12-31: the model was not trained on tickers ['AMD']" in other.message
    early = forecast_section(weights, full, "2013-06-28", hist)
    assert early.status == "forecast" and "in-sample numbers, not forecasts" in early.message
    assert forecast_section(weights, full, "2014-12-31", hist, model_name="no-such-model").status == "no_champion"


def check_rebalance(tmp_path):
    """The rebalance notebook on the seeded book (Balanced Growth, as of 2021-06-30, a 25 % turnover
    cap and a 10 bp spread): its order ticket is the stored, accepted proposal's trade list; the
    ledger after it is the ledger before plus the ticket's shares, its cash the cash before less the
    notionals and each trade's $1 + 10 bp; the turnover recomputed from those shares at the day's
    closes is the one recorded and within the cap; the proposal equals plan_rebalance's on the same
    inputs; without the cap it trades more, without costs it pays nothing; the audit trail ends with
    the advisor's propose and accept."""
    import pandas as pd

    import qpo
    from qpo.book import RebalanceProposal, Strategy, plan_rebalance
    from qpo.store import connect, get_portfolio, get_proposal, session_scope
    from qpo.workbench.notebook import read_figures, read_records

    out = _execute(tmp_path, "notebooks/06_rebalance.ipynb", portfolio="Balanced Growth", as_of="2021-06-30",
                   max_turnover=0.25, spread_bps=10.0, store="configured")
    rec = read_records(out)
    advisor = "ana.silva@example.com"
    prices = qpo.load_prices("sp500", end="2021-06-30")
    px = prices.loc["2021-06-30"]
    with session_scope(connect()) as s:
        stored = RebalanceProposal.from_record(get_proposal(s, SYSTEM, rec["proposal_id"]))
        strategy = Strategy.from_json(get_portfolio(s, SYSTEM, "Balanced Growth").strategy)
    assert stored.status == rec["status"] == "accepted" and stored.portfolio == "Balanced Growth"
    ticket = pd.DataFrame(rec["ticket"])
    assert ticket["side"].tolist() == stored.trades["side"].tolist()
    assert ticket["ticker"].tolist() == stored.trades["ticker"].tolist() and len(ticket) >= 2
    assert ticket["shares"].tolist() == stored.trades["shares"].tolist()
    # limits in cents at least as good for a fill as the close: a buy's rounded up, a sell's down
    assert ticket["limit_price"].tolist() == [
        (math.ceil(float(px[t]) * 100 - 1e-9) if side == "buy" else math.floor(float(px[t]) * 100 + 1e-9)) / 100
        for t, side in zip(ticket["ticker"], ticket["side"])]
    assert set(ticket["account"]) == {stored.account}
    # the ledger: before + the ticket, cash less the notionals and $1 + 10 bp a trade
    before = pd.Series(rec["holdings_before"], dtype=float)
    signed = pd.Series(np.where(ticket["side"] == "buy", 1.0, -1.0) * ticket["shares"].to_numpy(dtype=float),
                       index=ticket["ticker"].tolist())
    after = before.add(signed, fill_value=0.0)
    after = after[after != 0]
    assert pd.Series(rec["holdings_after"], dtype=float).sort_index().to_dict() == after.sort_index().to_dict()
    notional = signed * px[signed.index]
    cash = rec["cash_before"] - float(notional.sum()) - float((1.0 + 1e-3 * notional.abs()).sum())
    assert rec["ledger_cash_after"] == pytest.approx(cash, abs=1e-6) and rec["cash_after"] == pytest.approx(cash, abs=1e-6)
    assert rec["total_cost"] == pytest.approx(float((1.0 + 1e-3 * notional.abs()).sum()), rel=1e-12)
    v0 = rec["cash_before"] + float(before @ px[before.index])
    v1 = cash + float(after @ px[after.index])
    names = sorted(set(before.index) | set(after.index))
    w0 = (before * px[before.index] / v0).reindex(names).fillna(0.0)
    w1 = (after * px[after.index] / v1).reindex(names).fillna(0.0)
    assert rec["value_before"] == pytest.approx(v0, rel=1e-12) and rec["value_after"] == pytest.approx(v1, rel=1e-12)
    assert rec["turnover"] == pytest.approx(float((w1 - w0).abs().sum()), abs=1e-12)
    assert rec["turnover"] <= 0.25 + 1e-9 and rec["effective_max_turnover"] == 0.25 and rec["effective_spread_bps"] == 10
    # the same numbers from the library directly, on the same inputs
    direct = plan_rebalance(before, rec["cash_before"], prices, strategy.with_overrides(max_turnover=0.25, spread_bps=10.0),
                            as_of="2021-06-30")
    pd.testing.assert_frame_equal(direct.trades, stored.trades)
    assert rec["tracking_error_after"] == pytest.approx(direct.comparison.loc["tracking_error", "after"], rel=1e-9)
    # what the cap and the costs changed
    assert rec["proposed.turnover"] == rec["turnover"] and rec["proposed.n_trades"] == len(ticket)
    assert rec["no costs.total_cost"] == 0 and rec["neither.total_cost"] == 0
    assert rec["no turnover cap.turnover"] > 0.25 + 1e-6 and rec["neither.turnover"] > 0.25 + 1e-6
    # the audit trail ends with the advisor's proposal and its acceptance
    assert rec["audit_actions"][-2:] == ["propose", "accept"] and rec["audit_actors"][-2:] == [advisor, advisor]
    figs = read_figures(out)
    assert set(figs) == {"weights", "trades", "comparison"}
    shown = stored.weights.loc[stored.weights.abs().max(axis=1) > 1e-9]
    for trace in figs["weights"]["data"]:
        assert trace["x"] == shown.index.tolist()
        assert _plotly_array(trace["y"]) == pytest.approx(shown[trace["name"]].tolist(), abs=1e-15)


def check_sweep(tmp_path):
    """The sweep notebook reads a finished sweep (the tiny pipeline, 2x2 on one worker) from MLflow:
    the cells and statuses it records are the sweep's, and its figure plots each child run's metric
    against the first parameter, one line per value of the second."""
    from mlflow.tracking import MlflowClient

    from qpo.tracking import configure
    from qpo.workbench.notebook import read_figures, read_records
    from tests.test_workbench.test_sweep import recorded_tiny_sweep

    sweep = recorded_tiny_sweep(tmp_path / "project", seconds=[0.0, 0.25], label=["a", "b"])
    out = _execute(tmp_path, "notebooks/07_sweep.ipynb", sweep_run_id=sweep.parent_run_id, metric="slept")
    rec = read_records(out)
    assert rec["cells"] == 4 and rec["finished"] == 4 and rec["metric"] == "slept"
    client = MlflowClient(configure())
    slept = {(float(c.parameters["seconds"]), c.parameters["label"]): client.get_run(c.run_id).data.metrics["slept"]
             for c in sweep.cells}
    fig = read_figures(out)["sweep"]
    assert [t["name"] for t in fig["data"]] == ["label=a", "label=b"]
    for trace in fig["data"]:
        label = trace["name"].split("=")[1]
        xs, ys = _plotly_array(trace["x"]), _plotly_array(trace["y"])
        assert list(xs) == [0.0, 0.25] and list(ys) == [slept[(x, label)] for x in xs]


def check_book_valuation(tmp_path):
    """The valuation notebook values the demo book on Dask (one worker): each stored market value is
    the ledger's shares at the day's closes plus its cash, by hand; the numbers recorded are the
    store's; the MLflow run it logged holds them, and the stored operations run names it."""
    import mlflow

    import qpo
    from qpo.store import Actor, connect, list_portfolios, position, session_scope
    from qpo.store.operations import last_runs, valuations_on
    from qpo.tracking import configure
    from qpo.workbench.notebook import read_figures, read_records

    out = _execute(tmp_path, "notebooks/08_book_valuation.ipynb", workers=1)
    rec = read_records(out)
    prices = qpo.load_prices("sp500")
    day = prices.index[-1].date()
    engine = connect()
    who = Actor.system("test")
    stored = valuations_on(engine, day).set_index("portfolio")
    with session_scope(engine) as s:
        names = list(list_portfolios(s, who)["name"])
        by_hand = {}
        for name in names:
            pos = position(s, who, name, day)
            by_hand[name] = float((pos.shares * prices.iloc[-1][pos.shares.index]).sum()) + float(pos.cash)
    assert rec["as_of"] == str(day) and rec["portfolios"] == rec["valued"] == len(names) == 4
    assert rec["unpriced"] == rec["empty"] == 0 and rec["price_source"] == "bundled"
    for name, value in by_hand.items():
        assert stored.loc[name, "market_value"] == pytest.approx(value, rel=1e-12)
    assert rec["book_market_value"] == pytest.approx(sum(by_hand.values()), rel=1e-12)
    assert set(read_figures(out)) == {"market_value", "daily_return"}
    configure()
    run = mlflow.get_run(rec["mlflow_run_id"])
    assert run.info.status == "FINISHED" and run.data.metrics["valued"] == 4
    logged = {a.path for a in mlflow.artifacts.list_artifacts(run_id=run.info.run_id, artifact_path="figures")}
    assert {"figures/market_value.html", "figures/daily_return.html"} <= logged  # the figures in the notebook's run
    [ops] = last_runs(engine, "valuation")
    assert ops["status"] == "FINISHED" and ops["details"]["mlflow_run_id"] == rec["mlflow_run_id"]


def check_book_risk(tmp_path):
    """The risk notebook, after the valuation notebook: the numbers stored for each demo portfolio
    are the daily report's (qpo.risk_report's) to 1e-10, the breaches its breaches, each a new alert;
    the MLflow run holds the counts and the book report."""
    import mlflow

    import qpo
    from qpo.reporting.daily import daily_report
    from qpo.store import Actor, connect
    from qpo.store.operations import book_risk_on
    from qpo.tracking import configure
    from qpo.workbench.notebook import read_figures, read_records

    _execute(tmp_path, "notebooks/08_book_valuation.ipynb", workers=1)
    out = _execute(tmp_path, "notebooks/09_book_risk.ipynb", workers=1)
    rec = read_records(out)
    prices = qpo.load_prices("sp500")
    engine = connect()
    stored = book_risk_on(engine, prices.index[-1].date()).set_index("portfolio")
    index = qpo.load_prices("sp500_index")["SP500"]
    breaches = 0
    for name in stored.index:
        rep = daily_report(name, prices, benchmark=index, engine=engine, sectors=qpo.load_sectors(),
                           n_scenarios=2000, actor=Actor.system("test")).risk
        assert abs(stored.loc[name, "volatility"] - rep.volatility) <= 1e-10
        assert abs(stored.loc[name, "var_historical"] - rep.var_table.loc["historical", "var"]) <= 1e-10
        assert abs(stored.loc[name, "beta"] - rep.benchmark["beta"]) <= 1e-10
        assert stored.loc[name, "breaches"] == len(rep.breaches)
        breaches += len(rep.breaches)
    assert rec["portfolios"] == 4 and rec["breaches"] == breaches > 0 and rec["new_alerts"] == breaches
    assert set(read_figures(out)) == {"volatility", "var", "stress"}
    assert "COMPLIANCE BREACHES" in open(rec["book_report"], encoding="utf-8").read()
    configure()
    run = mlflow.get_run(rec["mlflow_run_id"])
    assert run.info.status == "FINISHED" and run.data.metrics["breaches"] == breaches


CHECKS = {
    "notebooks/01_daily_risk_report.ipynb": check_daily_report,
    "notebooks/02_classical_frontier.ipynb": check_classical_frontier,
    "notebooks/03_backtest.ipynb": check_backtest,
    "notebooks/04_quantum_vs_classical.ipynb": check_quantum,
    "notebooks/05_train_forecaster.ipynb": check_train_forecaster,
    "notebooks/06_rebalance.ipynb": check_rebalance,
    "notebooks/07_sweep.ipynb": check_sweep,
    "notebooks/08_book_valuation.ipynb": check_book_valuation,
    "notebooks/09_book_risk.ipynb": check_book_risk,
    "voila_apps/advisor.ipynb": check_advisor,
}


def test_every_notebook_has_a_check():
    assert NOTEBOOKS == sorted(CHECKS), "add a check for each new notebook to CHECKS"


@pytest.mark.parametrize("notebook", sorted(CHECKS))
def test_notebook(notebook, tmp_path):
    CHECKS[notebook](tmp_path)


@pytest.mark.parametrize("notebook", NOTEBOOKS)
def test_committed_without_outputs_and_with_typed_parameters(notebook):
    nb = json.loads((ROOT / notebook).read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert all(not c.get("outputs") and c.get("execution_count") is None for c in code)
    params = [c for c in code if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(params) == 1
    from qpo.workbench.pipelines import notebook_parameters

    declared = notebook_parameters(ROOT / notebook)
    assert declared and all(v["type"] != "None" and v["help"] for v in declared.values())

