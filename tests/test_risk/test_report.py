"""The full risk report against quantstats and independent numpy on the bundled real data.

Convention differences with quantstats, each shown by a test below:
* Sharpe with a risk-free rate: qpo subtracts ``rf / P`` per period, quantstats ``(1 + rf)^(1/P) - 1``.
* Information ratio: qpo annualizes (x sqrt(P)), quantstats does not.
* Hit rate: qpo counts zero returns as misses, quantstats' win rate leaves them out.
* VaR/CVaR: qpo reports positive losses; quantstats' ``value_at_risk``/``cvar`` are the normal
  (parametric) quantile and tail mean as returns (negative numbers).
"""
import math

import numpy as np
import pandas as pd
import pytest
from scipy import integrate, stats

import qpo
from qpo.errors import DataError, InvalidValueError, UnknownOptionError
from qpo.risk import (
    Limits,
    brinson_fachler,
    cvar_contributions,
    monte_carlo_var,
    parametric_var,
    risk_report,
    var_cvar,
    volatility_contributions,
)
from qpo.risk.var import cornish_fisher_z

P = 252


@pytest.fixture(scope="module")
def data(sp500_clean):
    prices = sp500_clean.loc["2015-01-01":"2020-12-31"]
    rets = qpo.prices_to_returns(prices)
    bench = qpo.prices_to_returns(qpo.load_prices("sp500_index", start="2015-01-01", end="2020-12-31"))["SP500"]
    w = pd.Series(np.linspace(1, 2, rets.shape[1]), index=rets.columns)
    w /= w.sum()
    history = qpo.prices_to_returns(sp500_clean, dropna="none")
    return w, rets, bench.reindex(rets.index), history, sp500_clean


@pytest.fixture(scope="module")
def report(data):
    w, rets, bench, history, _ = data
    return risk_report(w, rets, benchmark=bench, confidence=0.95, history=history,
                       limits=Limits(max_weight=0.06, sector_max=0.3, min_names=25, var_limit=0.05))


def test_against_quantstats(data, report):
    import quantstats as qs

    w, rets, bench, _, _ = data
    r = qpo.portfolio_returns(w, rets)
    rel = dict(rel=1e-6)
    assert report.cagr == pytest.approx(qs.stats.cagr(r, periods=P), **rel)
    assert report.volatility == pytest.approx(qs.stats.volatility(r, periods=P), **rel)
    assert report.sharpe == pytest.approx(qs.stats.sharpe(r, periods=P), **rel)
    assert report.sortino == pytest.approx(qs.stats.sortino(r, periods=P), **rel)
    assert report.calmar == pytest.approx(qs.stats.calmar(r), **rel)
    assert report.max_drawdown == pytest.approx(-qs.stats.max_drawdown(r), **rel)
    assert report.skew == pytest.approx(qs.stats.skew(r), **rel)
    assert report.kurtosis == pytest.approx(qs.stats.kurtosis(r), **rel)  # both excess kurtosis
    greeks = qs.stats.greeks(r, bench, periods=P)
    assert report.benchmark["beta"] == pytest.approx(greeks["beta"], **rel)
    assert report.benchmark["alpha"] == pytest.approx(greeks["alpha"], **rel)  # rf = 0: the same alpha
    assert report.benchmark["correlation"] ** 2 == pytest.approx(qs.stats.r_squared(r, bench), **rel)
    # conventions that differ, shown: IR annualized by sqrt(P); VaR/CVaR as positive losses
    assert report.benchmark["information_ratio"] == pytest.approx(qs.stats.information_ratio(r, bench) * math.sqrt(P),
                                                                  **rel)
    vt = report.var_table
    assert vt.loc["normal", "var"] == pytest.approx(-qs.stats.value_at_risk(r, confidence=0.95), **rel)
    assert vt.loc["normal", "cvar"] == pytest.approx(-qs.stats.cvar(r, confidence=0.95), **rel)
    # the drawdown's dates: quantstats' valley is the trough; its "end" is the last day under water
    details = qs.stats.drawdown_details(qs.stats.to_drawdown_series(r))
    worst = details.sort_values("max drawdown").iloc[0]
    dd = report.drawdown
    assert str(dd.trough.date()) == worst["valley"]
    assert rets.index[rets.index.get_loc(dd.peak) + 1] == pd.Timestamp(worst["start"])
    assert rets.index[rets.index.get_loc(dd.recovery) - 1] == pd.Timestamp(worst["end"])


def test_quantstats_convention_differences(data):
    import quantstats as qs

    _, _, bench, _, _ = data
    b = bench.copy()
    assert (b == 0).sum() >= 1  # the index has an unchanged day in the window
    # hit rate: zero returns are misses for qpo, left out by quantstats
    x = b.to_numpy()
    assert qpo.risk.hit_rate(b) == pytest.approx((x > 0).mean(), rel=1e-12)
    assert qs.stats.win_rate(b) == pytest.approx((x > 0).sum() / (x != 0).sum(), rel=1e-12)
    assert qpo.risk.hit_rate(b) < qs.stats.win_rate(b)
    # Sharpe with rf: rf / P (qpo) against (1 + rf)^(1/P) - 1 (quantstats): equal once the rates match
    rf = 0.05
    ours = qpo.risk.sharpe_ratio(b, rf)
    theirs = qs.stats.sharpe(b, rf=rf, periods=P)
    assert ours != pytest.approx(theirs, rel=1e-6)
    assert qpo.risk.sharpe_ratio(b, P * ((1 + rf) ** (1 / P) - 1)) == pytest.approx(theirs, rel=1e-9)


def test_against_numpy(data, report):
    w, rets, bench, _, _ = data
    r = rets.to_numpy() @ w.to_numpy()
    b = bench.to_numpy()
    assert report.hit_rate == pytest.approx((r > 0).mean())
    assert report.benchmark["tracking_error"] == pytest.approx(np.std(r - b, ddof=1) * math.sqrt(P), rel=1e-12)
    beta, alpha_d = np.polyfit(b, r, 1)  # OLS line: the same beta, alpha = intercept + mean effects
    assert report.benchmark["beta"] == pytest.approx(beta, rel=1e-9)
    assert report.benchmark["alpha"] == pytest.approx(alpha_d * P, rel=1e-9)
    # the deepest drawdown's depth from its dates
    wealth = np.cumprod(1 + r)
    i_peak, i_trough = rets.index.get_loc(report.drawdown.peak), rets.index.get_loc(report.drawdown.trough)
    assert 1 - wealth[i_trough] / wealth[i_peak] == pytest.approx(report.max_drawdown, rel=1e-12)
    assert report.drawdown.duration == rets.index.get_loc(report.drawdown.recovery) - i_peak - 1


def test_drawdown_durations_on_a_known_path():
    r = pd.Series([0.10, -0.20, 0.05, 0.20, -0.01, -0.01, 0.0], index=pd.bdate_range("2021-01-04", periods=7))
    info = qpo.risk.drawdown_info(r)
    # wealth 1.1 (peak), 0.88, 0.924, 1.1088 (recovered), 1.0977, 1.0867, 1.0867 (under water to the end)
    assert info.peak == r.index[0] and info.trough == r.index[1] and info.recovery == r.index[3]
    assert info.duration == 2 and info.longest_duration == 3
    assert info.max_drawdown == pytest.approx(0.2)


def test_parametric_var_closed_form(data):
    w, rets, _, _, _ = data
    r = rets.to_numpy() @ w.to_numpy()
    m, s = r.mean(), r.std(ddof=1)
    for c, h in ((0.95, 1), (0.99, 10), (0.975, 5)):
        z = stats.norm.ppf(1 - c)
        var, cvar = var_cvar(r, c, h, "normal")
        assert var == pytest.approx(-(m * h + s * math.sqrt(h) * z), rel=1e-12)
        assert cvar == pytest.approx(-m * h + s * math.sqrt(h) * stats.norm.pdf(z) / (1 - c), rel=1e-12)
    # Cornish-Fisher: the normal one without skew and kurtosis; CVaR = the tail mean of its quantile
    assert parametric_var(m, s, 0.99, method="cornish_fisher") == pytest.approx(parametric_var(m, s, 0.99))
    sk, ku = 0.3, 2.0
    var, cvar = parametric_var(m, s, 0.95, skew=sk, kurt=ku, method="cornish_fisher")
    q = lambda u: m + s * cornish_fisher_z(stats.norm.ppf(u), sk, ku)  # noqa: E731
    assert var == pytest.approx(-q(0.05), rel=1e-12)
    assert cvar == pytest.approx(-integrate.quad(q, 0, 0.05, limit=200)[0] / 0.05, rel=1e-8)
    # ... and from the data's own skew and excess kurtosis
    rs = pd.Series(r)
    assert var_cvar(r, 0.99, 1, "cornish_fisher")[0] == pytest.approx(
        -(m + s * cornish_fisher_z(stats.norm.ppf(0.01), rs.skew(), rs.kurt())), rel=1e-12)


def test_historical_horizon_uses_overlapping_sums(data):
    w, rets, _, _, _ = data
    r = rets.to_numpy() @ w.to_numpy()
    sums = np.array([r[i:i + 10].sum() for i in range(len(r) - 9)])
    k = 0.01 * len(sums)
    worst = np.sort(sums)
    var, cvar = var_cvar(r, 0.99, 10, "historical")
    assert var == pytest.approx(-worst[math.ceil(k) - 1], rel=1e-12)
    assert cvar == pytest.approx(-(worst[:int(k)].sum() + worst[int(k)] * (k - int(k))) / k, rel=1e-12)


def test_monte_carlo_converges_to_the_closed_form(data):
    w, rets, _, _, _ = data
    R = rets.to_numpy()
    mu, cov = R.mean(axis=0), np.cov(R, rowvar=False)
    m, s = float(mu @ w), math.sqrt(float(w @ cov @ w))
    exact_var, exact_cvar = parametric_var(m, s, 0.99)
    errors = []
    for n in (10_000, 100_000, 1_000_000):
        mc = monte_carlo_var(w, rets, confidence=0.99, n_scenarios=n, seed=1)
        errors.append(abs(mc.cvar - exact_cvar) / exact_cvar)
        assert mc.component_cvar.sum() == pytest.approx(mc.cvar, rel=1e-12)
    assert errors[-1] < 2e-3 and errors[-1] < errors[0]
    big = monte_carlo_var(w, rets, confidence=0.99, n_scenarios=1_000_000, seed=2)
    assert big.var == pytest.approx(exact_var, rel=3e-3)
    # Euler components of the normal CVaR in closed form: w_i (-mu_i + (Sigma w)_i / s * phi(z) / (1 - c))
    z = stats.norm.ppf(0.01)
    exact_comp = w * (-mu + cov @ w / s * stats.norm.pdf(z) / 0.01)
    np.testing.assert_allclose(big.component_cvar.to_numpy(), exact_comp.to_numpy(), rtol=0.015)  # 10,000 tail draws
    # horizon: sqrt-time scaling of the normal
    mc10 = monte_carlo_var(w, rets, confidence=0.99, horizon=10, n_scenarios=1_000_000, seed=3)
    assert mc10.var == pytest.approx(parametric_var(m, s, 0.99, 10)[0], rel=3e-3)


def test_full_and_conditional_sampling_agree(data):
    w, rets, _, _, _ = data
    full = monte_carlo_var(w, rets, confidence=0.95, n_scenarios=400_000, seed=5, sampling="full")
    same = monte_carlo_var(w, rets, confidence=0.95, n_scenarios=400_000, seed=5, sampling="full", threads=1)
    assert (full.var, full.cvar) == (same.var, same.cvar)  # the seed decides, not the thread count
    cond = monte_carlo_var(w, rets, confidence=0.95, n_scenarios=400_000, seed=5)
    exact = parametric_var(float(rets.mean() @ w), math.sqrt(float(w @ rets.cov() @ w)), 0.95)
    for mc in (full, cond):
        assert mc.var == pytest.approx(exact[0], rel=5e-3) and mc.cvar == pytest.approx(exact[1], rel=5e-3)
    assert cond.var != full.var  # different draws
    again = monte_carlo_var(w, rets, confidence=0.95, n_scenarios=400_000, seed=5)
    assert again.var == cond.var and again.component_cvar.equals(cond.component_cvar)


def test_bootstrap_converges_to_the_historical_distribution(data):
    w, rets, _, _, _ = data
    r = rets.to_numpy() @ w.to_numpy()
    boot = monte_carlo_var(w, rets, confidence=0.95, n_scenarios=1_000_000, method="bootstrap", seed=0)
    hist_var, hist_cvar = var_cvar(r, 0.95)
    assert boot.var == pytest.approx(hist_var, rel=0.02) and boot.cvar == pytest.approx(hist_cvar, rel=0.01)
    # components: -w_i E[r_i | tail] over the resampled days, summing to the CVaR
    assert boot.component_cvar.sum() == pytest.approx(boot.cvar, rel=1e-12)
    hist = cvar_contributions(w, rets, 0.95)["component"]
    np.testing.assert_allclose(boot.component_cvar.to_numpy(), hist.to_numpy(), atol=0.02 * hist_cvar)


def test_contributions(data, report):
    w, rets, _, _, _ = data
    vol = volatility_contributions(w, rets)
    assert vol["component"].sum() == pytest.approx(report.volatility, rel=1e-12)
    # marginal = the derivative of the volatility, by central differences
    cov = np.cov(rets.to_numpy(), rowvar=False) * P
    f = lambda x: math.sqrt(x @ cov @ x)  # noqa: E731
    e = np.eye(len(w))[3] * 1e-6
    assert vol["marginal"].iloc[3] == pytest.approx((f(w + e) - f(w - e)) / 2e-6, rel=1e-6)
    cv = cvar_contributions(w, rets, 0.95)
    assert cv["component"].sum() == pytest.approx(report.cvar, rel=1e-12)
    # by hand: the 5 % worst days of the portfolio (k = 75.45: 75 days and 0.45 of the 76th)
    r = rets.to_numpy() @ w.to_numpy()
    order = np.argsort(r)
    k = 0.05 * len(r)
    tw = np.r_[np.ones(int(k)), k - int(k)]
    hand = -w.to_numpy() * (tw @ rets.to_numpy()[order[:int(k) + 1]]) / k
    np.testing.assert_allclose(cv["component"].to_numpy(), hand, rtol=1e-12)
    # sectors: the sums of their members
    sec = report.sector_contributions
    energy = [t for t, s in qpo.load_sectors().items() if s == "Energy"]
    assert sec.loc["Energy", "vol_component"] == pytest.approx(vol.loc[energy, "component"].sum(), rel=1e-12)
    assert sec["cvar_component"].sum() == pytest.approx(report.cvar, rel=1e-12)


def test_historical_stress_replays_the_prices(data, report):
    w, _, _, _, prices = data
    row = report.stress.set_index("scenario").loc["COVID crash 2020"]
    p0, p1 = prices.loc["2020-02-19"], prices.loc["2020-03-23"]
    asset = (p1 / p0 - 1)[w.index]
    assert row["portfolio_return"] == pytest.approx(float(w @ asset), rel=1e-9)
    assert row["loss"] == pytest.approx(-float(w @ asset), rel=1e-9) and row["coverage"] == 1.0
    worst = (w * asset).sort_values().index[0]
    assert row["worst_contributors"].startswith(worst)
    gfc = report.stress.set_index("scenario").loc["Global financial crisis 2008"]
    assert 0.3 < gfc["loss"] < 0.7
    # a window the data do not reach is said, not guessed
    out = qpo.risk.historical_stress(w, qpo.prices_to_returns(prices.loc["2015-01-01":]))[0].set_index("scenario")
    assert np.isnan(out.loc["Dot-com bust 2000-02", "loss"]) and "do not reach" in out.loc["Dot-com bust 2000-02", "note"]


def test_stress_windows_on_weekly_and_monthly_data_are_measured_between_their_dates_or_unresolved(data):
    """Monthly returns held one row inside the 33 days of the 2020 crash (February's): -7 % was
    reported for a fall of a third, with coverage 1 and no note."""
    w, _, _, _, prices = data
    weekly, monthly = prices.resample("W-FRI").last(), prices.resample("ME").last()
    out = qpo.risk.historical_stress(w, qpo.prices_to_returns(monthly))[0].set_index("scenario")
    covid = out.loc["COVID crash 2020"]
    assert np.isnan(covid["loss"]) and covid["coverage"] == 0.0
    assert "cannot resolve this 33-day window" in covid["note"] and "2020-01-31, 2020-02-29" in covid["note"]
    assert np.isnan(out.loc["US downgrade 2011", "loss"])  # 73 days: June 30 lies 22 days before July 22
    gfc = out.loc["Global financial crisis 2008"]  # 517 days: measured from September 2007 to February 2009
    assert gfc["note"] == "measured from 2007-09-30 to 2009-02-28, the data's dates nearest the window"
    hand = (monthly.loc["2009-02-28"] / monthly.loc["2007-09-30"] - 1)[w.index]
    assert gfc["portfolio_return"] == pytest.approx(float(w @ hand), rel=1e-9)
    out = qpo.risk.historical_stress(w, qpo.prices_to_returns(weekly))[0].set_index("scenario")
    covid = out.loc["COVID crash 2020"]  # Friday 14 February to Friday 20 March: said
    assert covid["note"] == "measured from 2020-02-14 to 2020-03-20, the data's dates nearest the window"
    hand = (weekly.loc["2020-03-20"] / weekly.loc["2020-02-14"] - 1)[w.index]
    assert covid["portfolio_return"] == pytest.approx(float(w @ hand), rel=1e-9)
    daily = qpo.risk.historical_stress(w, qpo.prices_to_returns(prices))[0].set_index("scenario")
    assert (daily["note"] == "").all()  # daily data: each window's ends are trading days, or a weekend away


def test_stress_coverage_when_a_name_has_no_history(data):
    w, rets, _, history, _ = data
    h = history.copy()
    h.loc[:"2009-12-31", "AAPL"] = np.nan  # AAPL "listed" in 2010
    frame, _ = qpo.risk.historical_stress(w, h, {"2008": ("2007-10-09", "2009-03-09")})
    assert frame.loc[0, "coverage"] == pytest.approx(1 - w["AAPL"], rel=1e-12)
    assert "AAPL" in frame.loc[0, "note"]
    bench = qpo.prices_to_returns(qpo.load_prices("sp500_index"))["SP500"]
    frame, contrib = qpo.risk.historical_stress(w, h, {"2008": ("2007-10-09", "2009-03-09")}, benchmark=bench)
    b = qpo.load_prices("sp500_index")["SP500"]
    assert contrib["2008"]["AAPL"] == pytest.approx(w["AAPL"] * (b["2009-03-09"] / b["2007-10-09"] - 1), rel=1e-9)


def test_hypothetical_shocks(data, report):
    w, rets, bench, _, _ = data
    st = report.stress.set_index("scenario")
    r = rets.to_numpy() @ w.to_numpy()
    beta_p = np.cov(r, bench.to_numpy())[0, 1] / np.var(bench.to_numpy(), ddof=1)
    assert st.loc["market -20%", "loss"] == pytest.approx(0.2 * beta_p, rel=1e-9)
    # volatility doubled: the normal VaR with sigma x 2
    m, s = r.mean(), r.std(ddof=1)
    assert st.loc["volatility x2", "loss"] == pytest.approx(-(m + 2 * s * stats.norm.ppf(0.05)), rel=1e-9)
    # a sector shock: each asset moves by its beta to the sector's equal-weighted return
    sectors = qpo.load_sectors()
    frame, contrib = qpo.risk.hypothetical_stress(w, rets, [("sector", "Energy", -0.3)], groups=sectors)
    energy = rets[[t for t in rets.columns if sectors[t] == "Energy"]].mean(axis=1).to_numpy()
    betas = np.array([np.cov(rets[t], energy)[0, 1] / np.var(energy, ddof=1) for t in rets.columns])
    assert frame.loc[0, "loss"] == pytest.approx(0.3 * float(w.to_numpy() @ betas), rel=1e-9)
    with pytest.raises(DataError, match="sectors present"):
        qpo.risk.hypothetical_stress(w, rets, [("sector", "Utilities", -0.3)], groups=sectors)
    with pytest.raises(UnknownOptionError, match="valid: market, sector, volatility"):
        qpo.risk.hypothetical_stress(w, rets, [{"kind": "rates", "shock": 0.01}])
    with pytest.raises(InvalidValueError, match="positive number"):
        qpo.risk.hypothetical_stress(w, rets, [("volatility", -2)])


def test_compliance(report, data):
    c = report.compliance.set_index("check")
    w = data[0]
    assert c.loc["max single name", "status"] == "breach" and c.loc["max single name", "value"] == pytest.approx(w.max())
    assert c.loc["min names", "status"] == "breach"  # 20 names < 25
    health = sum(w[t] for t, s in qpo.load_sectors().items() if s == "Health Care")
    assert c.loc["sector Health Care", "value"] == pytest.approx(health)
    assert c.loc["VaR (historical)", "status"] == "pass"
    assert report.metrics()["compliance_breaches"] == len(report.breaches) == (c["status"] == "breach").sum()
    assert report.metrics()["breach_min_names"] == 1.0
    assert c.loc["min names", "status"] is qpo.risk.ComplianceStatus.BREACH
    assert report.compliance_status is qpo.risk.ComplianceStatus.BREACH
    html = qpo.risk_html(report)
    assert html.index("compliance breach") < html.index("<h2>Summary</h2>")
    assert html.count("* plotly.js v") == 1 and html.count("Plotly.newPlot") == 6  # plotly.js inlined once
    # the tables name their rows (checks, scenarios), not 0..n, and durations print whole
    tables = report.tables()
    assert tables["compliance"].index.name == "check" and "min names" in tables["compliance"].index
    assert tables["stress"].index.name == "scenario"
    assert "<th class=\"row_heading level0 row0\" >0</th>" not in html
    duration = int(report.drawdown.duration)
    assert f">{duration:,}<" in html and f">{duration}.0000<" not in html
    with pytest.raises(InvalidValueError, match="a fraction in \\(0, 1\\]"):
        Limits(max_weight=-0.1)
    for bad in ({"max_weight": 20}, {"var_limit": 3}, {"sector_max": 40}, {"sector_max": {"Energy": 1.5}}):
        with pytest.raises(InvalidValueError, match="fraction"):  # a percent: it would never breach
            Limits(**bad)
    with pytest.raises(UnknownOptionError, match="valid:"):
        risk_report(w, data[1], limits={"max_wieght": 0.1})


def _brinson_by_hand(wp, wb, R, labels):
    """One period, independent loops."""
    rb = float(wb @ R)
    out = {}
    for s in sorted(set(labels)):
        m = np.array([x == s for x in labels])
        wpj, wbj = wp[m].sum(), wb[m].sum()
        rbj = (wb[m] @ R[m]) / wbj if wbj else None
        rpj = (wp[m] @ R[m]) / wpj if wpj else None
        rpj = rbj if rpj is None else rpj
        rbj = rpj if rbj is None else rbj
        out[s] = ((wpj - wbj) * (rbj - rb), wbj * (rpj - rbj), (wpj - wbj) * (rpj - rbj))
    return out


def test_brinson_fachler(data):
    w, rets, _, _, _ = data
    sectors = qpo.load_sectors()
    wb = pd.Series(1 / 20, index=rets.columns)
    wp = w.copy()
    wp[[t for t in w.index if sectors[t] == "Energy"]] = 0.0  # no Energy in the portfolio
    wp /= wp.sum()
    one = rets.iloc[[100]]
    attr = brinson_fachler(wp, wb, one, sectors)
    hand = _brinson_by_hand(wp.to_numpy(), wb.to_numpy(), one.to_numpy()[0], [sectors[t] for t in rets.columns])
    for s, (a, sel, i) in hand.items():
        assert attr.loc[s, ["allocation", "selection", "interaction"]].tolist() == pytest.approx([a, sel, i], abs=1e-15)
    assert attr.loc["Energy", "selection"] == 0.0  # not held: no selection effect
    # many periods: Carino-linked effects add up to the compounded active return
    attr = brinson_fachler(wp, wb, rets, sectors)
    rp, rb = rets.to_numpy() @ wp.to_numpy(), rets.to_numpy() @ wb.to_numpy()
    active = np.prod(1 + rp) - np.prod(1 + rb)
    assert attr.loc["Total", "total"] == pytest.approx(active, rel=1e-10)
    assert attr.drop("Total")["total"].sum() == pytest.approx(active, rel=1e-10)
    # through the report, with benchmark weights
    rep = risk_report(wp, rets, benchmark=wb, stress_scenarios={}, shocks=[])
    pd.testing.assert_frame_equal(rep.attribution, attr)
    assert rep.benchmark["active_return"] == pytest.approx((rp - rb).mean() * P)


def test_a_return_series_report(data):
    _, _, bench, _, _ = data
    rep = risk_report(None, bench, confidence=0.99)
    assert rep.contributions is None and rep.stress is None
    assert set(rep.var_table.index) == set(qpo.risk.VAR_METHODS)
    assert rep.var_table.loc["historical", "var"] == rep.var


def test_bad_input(data):
    w, rets, bench, _, _ = data
    with pytest.raises(DataError, match=r"\['NVDA'\]"):
        risk_report(pd.Series({"NVDA": 1.0}), rets)
    gap = rets.copy()
    gap.iloc[5, 2] = np.nan
    with pytest.raises(DataError, match="NaN for held tickers"):
        risk_report(w, gap)
    with pytest.raises(DataError, match="no return on 1 of the portfolio's"):
        risk_report(w, rets, benchmark=bench.drop(bench.index[10]))
    with pytest.raises(DataError, match="returns indexed by date or weights indexed by tickers"):
        risk_report(w, rets, benchmark=pd.Series([0.1, 0.2], index=["X", "Y"]))
    for c in (0, 1, 1.5, -0.1, 95):
        with pytest.raises(InvalidValueError, match="strictly between 0 and 1"):
            risk_report(w, rets, confidence=c)
    with pytest.raises(InvalidValueError, match="horizon must be a whole number"):
        risk_report(w, rets, horizon=0)
    with pytest.raises(UnknownOptionError, match="valid: cornish_fisher, historical"):
        var_cvar(rets.iloc[:, 0], method="delta")
    with pytest.raises(InvalidValueError, match="monte_carlo_var"):
        var_cvar(rets.iloc[:, 0], method="monte_carlo_normal")
    with pytest.raises(DataError, match="needs at least 5000 returns"):
        var_cvar(rets.iloc[:, 0], horizon=5000)
    with pytest.raises(InvalidValueError, match="n_scenarios"):
        monte_carlo_var(w, rets, n_scenarios=10)
    with pytest.raises(UnknownOptionError, match="valid: conditional, full"):
        monte_carlo_var(w, rets, sampling="quasi")


def test_full_sampling_over_many_blocks_and_extreme_tails(data):
    w, rets, _, _, _ = data
    # 20 assets: 500,000 rows a block, so 1.2 million scenarios are three blocks on two threads
    two = monte_carlo_var(w, rets, confidence=0.99, n_scenarios=1_200_000, seed=9, sampling="full")
    one = monte_carlo_var(w, rets, confidence=0.99, n_scenarios=1_200_000, seed=9, sampling="full", threads=1)
    assert (two.var, two.cvar) == (one.var, one.cvar)
    # a tail of every scenario but one (c < 1/n) ends, and CVaR >= VaR
    for c, n in ((0.005, 100), (0.001, 100), (0.5, 101)):
        for sampling in ("full", "conditional"):
            mc = monte_carlo_var(w, rets, confidence=c, n_scenarios=n, seed=1, sampling=sampling)
            assert np.isfinite(mc.var) and mc.cvar >= mc.var - 1e-15
    with pytest.raises(InvalidValueError, match="seed must be a whole number"):
        monte_carlo_var(w, rets, seed=None)
    with pytest.raises(DataError, match="finite number for every ticker"):
        monte_carlo_var(w, rets, cov=rets.cov().drop(index="AAPL", columns="AAPL"))


def test_brinson_with_cash_and_net_zero_sectors(data):
    w, rets, _, _, _ = data
    sectors = qpo.load_sectors()
    wb = pd.Series(1 / 20, index=rets.columns)
    wp = 0.8 * w  # 20 % cash
    attr = brinson_fachler(wp, wb, rets, sectors)
    rp, rb = rets.to_numpy() @ wp.to_numpy(), rets.to_numpy() @ wb.to_numpy()
    assert attr.loc["Total", "total"] == pytest.approx(np.prod(1 + rp) - np.prod(1 + rb), rel=1e-10)
    assert attr.loc["Cash", "portfolio_weight"] == pytest.approx(0.2) and attr.loc["Cash", "benchmark_weight"] == 0
    long_short = pd.Series(0.0, index=rets.columns)
    long_short[["KO", "AAPL", "AMD"]] = [1.0, 0.2, -0.2]  # Information Technology nets to zero
    with pytest.raises(DataError, match="net to zero"):
        brinson_fachler(long_short, wb, rets, sectors)


def test_stress_ignores_columns_it_cannot_use(data):
    w, rets, bench, _, _ = data
    extra = rets.assign(NEWCO=np.r_[np.full(100, np.nan), np.zeros(len(rets) - 100)])
    a = risk_report(w, extra, stress_scenarios={}, n_scenarios=1000).stress.set_index("scenario")
    b = risk_report(w, rets, stress_scenarios={}, n_scenarios=1000).stress.set_index("scenario")
    assert np.isfinite(a["loss"]).all()
    assert a.loc["market -20%", "loss"] == pytest.approx(b.loc["market -20%", "loss"], rel=1e-12)
    rep = risk_report(w, rets, stress_scenarios={}, shocks=[("market", -0.1), ("market", 0.1), ("market", -0.1)],
                      n_scenarios=1000)
    keys = [k for k in rep.metrics() if k.startswith("stress_loss")]
    assert keys == ["stress_loss_market_minus_10_pct", "stress_loss_market_plus_10_pct",
                    "stress_loss_market_minus_10_pct_again"]
    assert rep.metrics()["stress_loss_market_plus_10_pct"] == pytest.approx(-rep.metrics()["stress_loss_market_minus_10_pct"])


def test_degenerate_and_rf_conventions(data):
    _, _, bench, _, _ = data
    flat = pd.Series(0.001, index=bench.index)
    assert np.isnan(qpo.risk.sharpe_ratio(flat)) and var_cvar(flat, 0.95, 1, "normal") == pytest.approx((-0.001, -0.001))
    x, b = data[1]["AAPL"], bench
    rf = 0.03
    st = qpo.risk.benchmark_statistics(x, b, risk_free_rate=rf)
    beta = np.cov(x, b)[0, 1] / np.var(b, ddof=1)
    assert st["alpha"] == pytest.approx(P * ((x - rf / P).mean() - beta * (b - rf / P).mean()), rel=1e-12)
    with pytest.raises(DataError, match="indexed by date"):
        risk_report(None, pd.Series(x.to_numpy()))


def test_var_limit_breach_at_a_horizon_and_the_cornish_fisher_note(data, report):
    w, rets, _, _, _ = data
    rep = risk_report(w, rets, confidence=0.99, horizon=10, stress_scenarios={}, shocks=[], n_scenarios=10_000,
                      limits=Limits(var_limit=0.05, var_method="normal"))
    r = rets.to_numpy() @ w.to_numpy()
    ten_day = -(10 * r.mean() + math.sqrt(10) * r.std(ddof=1) * stats.norm.ppf(0.01))
    row = rep.compliance.set_index("check").loc["VaR (normal)"]
    assert row["value"] == pytest.approx(ten_day, rel=1e-12) and ten_day > 0.05 and row["status"] == "breach"
    assert rep.breaches == [f"VaR (normal): 99% 10-period VaR {ten_day:.2%} against a limit of 5.00%"]
    assert "mc_normal_cvar_component" not in rep.contributions  # one-period table, h-period Monte Carlo
    # the 2015-2020 window holds March 2020: excess kurtosis ~18, outside Cornish-Fisher's domain
    assert report.kurtosis > 10 and any("Cornish-Fisher is outside its valid domain" in n for n in report.notes)
