"""The benchmark scripts keep working (smoke).

``python -m benchmarks --smoke SCRIPT ...`` runs the smoke mode (tiny sizes) of every script of
``benchmarks.SCRIPTS`` but those with a smoke test of their own (``benchmarks.SMOKE_TESTED_APART``:
validation_scale, dashboard_browser) one after the other in one subprocess (the heavy imports paid
once), writing to a temporary directory, never over ``benchmarks/results/``. Each test then reads
one script's results and checks what it measured: finite timings for qpo and every peer it
compares, and the same answers where the libraries solve the same problem. Sections that need
``../shared/data`` are checked when it is present.
"""
from __future__ import annotations

import importlib.util
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks import SCRIPTS, SMOKE_TESTED_APART
from benchmarks._common import BARS, RESULTS, ROOT, SECTORS

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("benchmarks")]
#: the scripts of the shared smoke run
SMOKE = tuple(s for s in SCRIPTS if s not in SMOKE_TESTED_APART)
SHARED = BARS.exists() and SECTORS.exists()


def test_one_list_of_scripts():
    """Every script in benchmarks/ is in ``benchmarks.SCRIPTS``; ``make benchmark`` runs that list
    (``python -m benchmarks``) and names no script of its own; each script is smoke-tested."""
    import re

    on_disk = sorted(p.stem for p in (ROOT / "benchmarks").glob("*.py") if not p.stem.startswith("_"))
    assert sorted(SCRIPTS) == on_disk and len(set(SCRIPTS)) == len(SCRIPTS)
    make = (ROOT / "Makefile").read_text()
    target = re.search(r"^benchmark:.*?\n((?:\t.*\n)+)", make, re.M).group(1)
    assert "$(BIN)/python -m benchmarks\n" in target and "benchmarks." not in target
    assert set(SMOKE_TESTED_APART) <= set(SCRIPTS)
    tests = (ROOT / "tests" / "test_benchmarks.py").read_text()
    for name in SMOKE_TESTED_APART:  # each has its own test, named where the list says
        test = SMOKE_TESTED_APART[name].split("::")[1].split()[0]
        assert f"def {test}(" in tests and f"benchmarks.{name}" in tests, name
    from benchmarks.__main__ import main

    with pytest.raises(SystemExit):
        main(["not_a_script"])


@pytest.fixture(scope="module")
def smoke(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("benchmarks")
    home = tmp_path_factory.mktemp("qpo_home")
    committed = {p.name: p.stat().st_mtime_ns for p in RESULTS.iterdir()}
    env = {**os.environ, "QPO_HOME": str(home), "GX_ANALYTICS_ENABLED": "False"}
    proc = subprocess.run([sys.executable, "-m", "benchmarks", "--smoke", "--out", str(out), *SMOKE], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=1500)
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-6000:]
    assert {p.name: p.stat().st_mtime_ns for p in RESULTS.iterdir()} == committed  # the committed figures stay
    return out


def _results(out: Path, name: str) -> dict:
    assert (out / f"{name}.md").read_text().strip()
    return json.loads((out / f"{name}.json").read_text())


def _finite(*values) -> bool:
    return all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in values)


def _errors(o, path="") -> list[str]:
    """Every ``error`` a worker or a section recorded (its message; the optimizer fuzz's count of
    cases that ended in a qpo error, an expected outcome, is not one)."""
    if isinstance(o, dict):
        if isinstance(o.get("error"), str):
            return [f"{path}: {o['error']}"]
        return [e for k, v in o.items() for e in _errors(v, f"{path}/{k}")]
    if isinstance(o, list):
        return [e for i, v in enumerate(o) for e in _errors(v, f"{path}/{i}")]
    return []


def test_every_script_wrote_its_results(smoke):
    for name in SMOKE:
        r = _results(smoke, name)
        assert r["mode"] == "smoke", name
        assert not _errors(r), _errors(r)


def test_classical_optimizers(smoke):
    r = _results(smoke, "classical_optimizers")
    peers = r["peers"]  # Riskfolio-Lib is the bench extra: compared when installed (make benchmark installs it)
    assert peers == ["pypfopt", "skfolio"] + (["riskfolio"] if importlib.util.find_spec("riskfolio") else [])
    for case in r["frontier_20"]["cases"].values():
        for who in ("qpo", *peers):  # every peer timed (PEERS defined once: no KeyError)
            assert _finite(case[who]["first_s"], case[who]["median_s"]), who
        for peer in peers:
            assert _finite(case[peer]["ratio_peer_over_qpo"])
            assert case[peer]["max_abs_vol_diff"] < 1e-4, peer  # the same frontier
            assert case[peer]["max_constraint_violation"] < 1e-4, peer
        assert case["pypfopt"]["max_abs_weight_diff_same_targets"] < 1e-3
        assert case["skfolio"]["moments_max_abs_diff_annualized"] < 1e-12
    if not SHARED:
        assert "skipped" in r["sector_500"] and "skipped" in r["cardinality_100"]
        return
    single, rolling = r["sector_500"]["single"], r["sector_500"]["rolling"]
    assert _finite(single["qpo"]["median_s"], rolling["qpo"]["median_s"]) and single["qpo"]["max_constraint_violation"] < 1e-6
    for peer in peers:
        assert _finite(single[peer]["median_s"], rolling[peer]["median_s"]), peer
        assert single[peer]["max_abs_weight_diff_vs_qpo"] < 1e-3 and abs(single[peer]["vol_diff_vs_qpo"]) < 1e-5, peer
        assert rolling[peer]["windows_solved"] == len(rolling["peer_windows"]) and rolling[peer]["max_abs_vol_diff_vs_qpo"] < 1e-5
    card, k = r["cardinality_100"], r["parameters"]["card_k"]
    q, rf = card["qpo"], card["riskfolio"]
    assert q["proven_optimal"] and q["n_holdings"] <= k and _finite(q["solve_s"])
    assert abs(q["variance_annual"] - q["best_variance_on_its_holdings"]) < 1e-7
    if "riskfolio" in peers:
        assert _finite(rf["solve_s"]) and rf["n_holdings"] <= k
        assert rf["variance_annual"] >= q["variance_annual"] - 1e-9  # qpo's proven optimum is the least variance
    else:
        assert "not installed" in rf["skipped"]


def test_backtest_walkforward(smoke):
    r = _results(smoke, "backtest_walkforward")
    b = r["bundled_20"]
    assert _finite(b["qpo"]["median_s"], b["skfolio"]["median_s"], b["skfolio_tight"]["s"])
    assert b["qpo"]["failures"] == 0 and b["skfolio"]["folds"] == b["qpo"]["rebalances"]
    assert b["skfolio_tight"]["max_abs_weight_diff_vs_qpo"] < 1e-5  # the same weights, fold by fold
    assert b["returns"]["qpo_weights_as_constant_vs_skfolio_tight_max_abs"] < 1e-6
    if not BARS.exists():
        assert "skipped" in r["shared_500"]
        return
    s = r["shared_500"]
    assert _finite(s["qpo"]["first_run_s"], s["qpo"]["per_rebalance_first_run"]["median_s"], s["skfolio"]["median_s"])
    assert s["qpo"]["failures"] == 0 and s["skfolio"]["max_abs_weight_diff_vs_qpo_tight"] < 1e-4


def test_risk_analytics(smoke):
    r = _results(smoke, "risk_analytics")
    runs = r["monte_carlo"]["runs"]
    assert len(runs) == 5
    for name, m in runs.items():
        assert _finite(m["median_s"], m["peak_mib"], m["var"], m["cvar"]), name
        if "bootstrap" not in name:  # the normal samplers against the closed form
            assert abs(m["var_rel_error"]) < 0.05 and abs(m["cvar_rel_error"]) < 0.08, name
    assert _finite(r["report"]["median_s"]) and r["report"]["n_names"] >= 5


def test_quantum_qaoa(smoke):
    r = _results(smoke, "quantum_qaoa")
    rows = r["evaluation"]["rows"]
    assert {row["mixer"] for row in rows} == {"x", "xy"}
    for row in rows:
        assert _finite(row["fast_median_s"], row["aer_median_s"], row["qiskit_first_s"])
        assert row["abs_diff_aer"] < 1e-8 and row["abs_diff_qiskit"] < 1e-8  # the same energy three ways
    for row in r["quality"]["rows"]:
        assert _finite(row["wall_time_s"]) and -1e-9 <= row["approx_ratio_expected"] <= 1 + 1e-9
        if row["mixer"] == "xy":
            assert row["p_feasible"] > 1 - 1e-9  # the XY mixer keeps the weight
    assert r["quality"]["target"]["cases"]


def test_quantum_annealing(smoke):
    r = _results(smoke, "quantum_annealing")
    (inst,) = r["instances"]
    assert inst["scip"]["proven_optimal"] and _finite(inst["scip"]["time_s"])
    samplers = inst["samplers"]
    assert len(samplers) == 7
    for s in samplers:
        assert _finite(s["time_median_s"]), s["sampler"]
        if s["gap_max"] is not None:  # never below the proven optimum
            assert s["gap_max"] >= -1e-9, s["sampler"]
        if s["polish"] and not s["sampler"].startswith("none"):  # polished samplers: within 1 %
            assert s["gap_max"] <= 0.01, s["sampler"]
    assert r["sweep"]["raw"] and r["sweep"]["polished"]


def test_return_forecaster(smoke):
    r = _results(smoke, "return_forecaster")
    base = r["baseline"]  # always a fresh process: the subprocess worker path runs in the smoke test too
    assert "in_process" not in base and _finite(base["subprocess_wall_s"], base["rss"]["ru_maxrss_mib"])
    t = r["training_20"]
    for m in ("mlp", "lstm"):
        assert t[m]["folds"] >= 1 and _finite(t[m]["fit_median_s"], t[m]["walk_forward_s"]), m
    assert [x["threads"] for x in t["threads"]["runs"]] == [1, 2] and _finite(*(x["fit_seconds"] for x in t["threads"]["runs"]))
    if BARS.exists():
        for m, x in r["inference_500"]["models"].items():
            assert _finite(x["train"]["train_s"], x["predict"]["predict"]["median_s"], x["predict"]["forward"]["median_s"]), m
            assert x["predict"]["forward_vs_predict_max_abs_diff"] < 1e-5, m  # the forward pass is what predict runs
            assert x["predict"]["checksum_diff_vs_training_process"] < 1e-6, m  # a saved model predicts the same
    runs = r["quality"]["runs"]
    assert {x["model"] for x in runs.values()} == {"mlp", "lstm"}
    for x in runs.values():
        assert _finite(x["walk_forward_s"], x["metrics"]["model"]["mean_ic"], x["metrics"]["historical_mean"]["mean_ic"])
    assert any("ridge" in x and _finite(x["ridge"]["metrics"]["mean_ic"]) for x in runs.values())


def test_workbench_timings(smoke):
    r = _results(smoke, "workbench_timings")
    assert _finite(r["import_qpo_s"], r["import_stack_s"], r["qpo_pipeline_list_first_s"], r["validate_bundled_panel_s"])
    assert _finite(r["min_variance_20_qpo_s"], r["min_variance_20_pypfopt_s"], r["min_variance_20_skfolio_s"])
    assert r["min_variance_20_max_abs_weight_diff_vs_pypfopt"] < 1e-6
    assert r["validate_bundled_panel_rows"] > 0 and r["validate_bundled_panel_failed"] == []


@pytest.fixture(scope="module")
def validation_scale(tmp_path_factory) -> dict:
    """``benchmarks.validation_scale --smoke`` in its own process (its peak memory is that process's)."""
    out = tmp_path_factory.mktemp("validation_scale")
    env = {**os.environ, "QPO_HOME": str(tmp_path_factory.mktemp("qpo_home")), "GX_ANALYTICS_ENABLED": "False"}
    proc = subprocess.run([sys.executable, "-m", "benchmarks.validation_scale", "--smoke", "--out", str(out)], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-6000:]
    return _results(out, "validation_scale")


def test_validation_scale(validation_scale):
    r = validation_scale
    assert r["mode"] == "smoke" and not _errors(r), _errors(r)
    clean, bad = r["cases"]["clean"], r["cases"]["defective"]
    assert clean["success"] is True and clean["failures"] == {} and clean["n_rows"] == 50 * 300
    assert bad["success"] is False
    by_check = {k.split(" (")[0]: v for k, v in bad["failures"].items()}
    # one bad cell a day on days 1..298: NaN, inf, -1 and a tenfold jump (two implausible moves) in turn
    assert by_check == {"missing values": 74, "non-positive prices": 75 + 75, "implausible one-day jumps": 2 * 74}
    systematic = {k.split(" (")[0]: v for k, v in r["cases"]["systematic"]["failures"].items()}
    assert systematic == {"non-positive prices": 25 * 300, "stale prices": 25 * 300}  # even tickers negated, odd frozen
    for case in (clean, bad, r["cases"]["systematic"]):
        assert _finite(case["seconds"], case["peak_rss_mib"], case["file_mb"]) and case["report_bytes"] < 100_000
    assert r["load_only"]["shape"] == [300, 50] and _finite(r["load_only"]["seconds"])


def test_book_risk(smoke):
    r = _results(smoke, "book_risk")
    for b in r["books"].values():
        assert _finite(b["median_s"], b["peak_traced_mib"], b["risk_report_loop"]["per_portfolio_s"])
        assert b["risk_report_loop"]["max_abs_diff_vs_bulk"] < 1e-10 and b["skipped"] == 0


def test_rebalance_proposals(smoke):
    r = _results(smoke, "rebalance_proposals")
    sec = r["cases"]["bundled_20"]["stores"]["sqlite"]
    for s in sec["strategies"].values():
        assert _finite(s["propose"]["first_s"], s["propose"]["median_s"], s["accept"]["median_s"])
        assert s["proposal"]["names"] == 20 and s["proposal"]["n_trades"] > 0 and s["proposal"]["violations"] == []
        assert s["ledger_after_accept"]["weight_max_diff"] < 1e-9
        assert 0 < s["propose_stages"]["plan"]["median_s"] < s["propose"]["median_s"]
    assert sec["strategies"]["max_sharpe, max_turnover 0.2"]["proposal"]["turnover"] <= 0.2 + 1e-8
    assert r["cases"]["shared_500"]["skipped"]


def test_dashboard_browser_benchmark_smoke(tmp_path):
    """The dashboard timed in Chromium as a person uses it (`benchmarks/dashboard_browser.py`),
    smoke-sized: it runs, and its figures are of the right things."""
    from tests.browser import chromium_path

    chromium_path()  # skips without chromium
    proc = subprocess.run([sys.executable, "-m", "benchmarks.dashboard_browser", "--smoke", "--out", str(tmp_path)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    r = json.loads((tmp_path / "dashboard_browser.json").read_text())
    assert r["mode"] == "smoke" and "error" not in r and (tmp_path / "dashboard_browser.md").read_text().strip()
    a = r["login_to_first_chart"]
    s = {k: v["median_s"] for k, v in a["split"].items()}
    assert a["n"] == 1 and 0 < s["html_s"] < a["median_s"] and 0 < s["after_html_s"] < a["median_s"]
    assert s["html_s"] + s["after_html_s"] <= a["runs"][0]["in_page_s"]
    b = r["switch_portfolio"]
    assert b["n"] == 1 and b["runs"][0]["portfolio"] == "Conservative Income" and 0 < b["median_s"] < 60
    assert r["holdings"] == {"Balanced Growth": 10, "Conservative Income": 7, "Twenty Names (benchmark)": 20}
    p = r["propose"]
    assert p["holdings"] == 20 and p["first"]["outcome"] == "trades" and p["first"]["n_trades"] > 0


def test_book_nightly(smoke):
    r = _results(smoke, "book_nightly")
    [size] = r["sizes"]
    [p] = size["passes"]
    assert size["portfolios"] == 40 and p["workers"] == 2 and size["store"]["names_min"] == 20
    assert p["valued"] == p["risk_checked"] == 40 and p["unpriced"] == 0 and p["skipped"] == 0
    assert _finite(p["valuation_s"], p["risk_s"], p["peak_mib"]) and p["peak_mib"] > 0
    assert set(p["risk_phases"]) >= {"prices", "cluster", "compute", "write", "report", "total"}


def test_sweep(smoke):
    r = _results(smoke, "sweep")
    assert r["cells"] == 2 and r["grid"] == {"costs": [0.0, 0.002], "window": [126]}
    (s,) = r["sweeps"]
    assert s["workers"] == 2 and s["status"] == "FINISHED" and s["finished"] == 2
    assert _finite(s["wall_s"], s["compute_median_s"], s["overhead_median_s"], r["kernel_start"]["median_s"])
    assert 0 < s["compute_median_s"] < s["cell_wall_median_s"] <= s["wall_s"]
    assert s["metric"].endswith("sharpe") and all(_finite(v) for v in s["metric_by_cell"].values())


def test_fuzz_optimizer(smoke):
    r = _results(smoke, "fuzz_optimizer")
    assert r["cases"] == 50 and sum(r["outcomes"].values()) == 50 and r["failures"] == []
    assert not any(k.startswith("FAIL") for k in r["outcomes"]) and r["outcomes"].get("ok", 0) > 0
    assert _finite(r["seconds"]) and set(r["by_objective"])
