"""The sweep's comparison table and default figure (qpo.workbench._sweep_report), without a cluster:
the figure plots the swept strategy's Sharpe ratio, never a baseline's or the benchmark's."""
from __future__ import annotations

from qpo.workbench._sweep_report import comparison_table, default_metric, strategy_order

# buy_and_hold and equal_weight sort before min_variance: an alphabetical pick plots a baseline
METRICS = {"buy_and_hold.sharpe": 0.61, "equal_weight.sharpe": 0.64, "benchmark.sharpe": 0.55,
           "max_sharpe.sharpe": 0.70, "min_variance.sharpe": 0.80, "min_variance.cagr": 0.07}


def cells(costs=(0.0, 0.002)):
    return [{"index": i, "parameters": {"costs": c}, "status": "FINISHED", "run_id": f"r{i}", "seconds": 1.0,
             "metrics": {k: v - 100 * c for k, v in METRICS.items()}} for i, c in enumerate(costs)]


def test_the_default_metric_is_the_first_strategys_sharpe_in_the_notebooks_order():
    table = comparison_table(cells(), ["costs"])
    assert sorted(m for m in table.columns if m.endswith("sharpe"))[0] == "benchmark.sharpe"  # the old pick's pool
    order = strategy_order("min_variance,max_sharpe,risk_parity,equal_weight,buy_and_hold")
    assert default_metric(table, ["costs"], order) == "min_variance.sharpe"
    # a baseline listed first is passed over; the benchmark never plotted
    assert default_metric(table, ["costs"], ["buy_and_hold", "max_sharpe", "min_variance"]) == "max_sharpe.sharpe"
    baselines = comparison_table([{"index": 0, "parameters": {"costs": 0}, "status": "FINISHED",
                                   "metrics": {"equal_weight.sharpe": 0.6, "buy_and_hold.sharpe": 0.5,
                                               "benchmark.sharpe": 0.4}}], ["costs"])
    assert default_metric(baselines, ["costs"], ["equal_weight", "buy_and_hold"]) == "buy_and_hold.sharpe"


def test_without_an_order_a_strategy_is_preferred_to_a_baseline():
    table = comparison_table(cells(), ["costs"])
    assert default_metric(table, ["costs"]) == "max_sharpe.sharpe"  # not buy_and_hold.sharpe (alphabetical first)
    only = comparison_table([{"index": 0, "parameters": {"costs": 0}, "status": "FINISHED", "metrics": {"x": 1.0}}],
                            ["costs"])
    assert default_metric(only, ["costs"], ["min_variance"]) == "x"
    none = comparison_table([{"index": 0, "parameters": {"costs": 0}, "status": "FAILED"}], ["costs"])
    assert default_metric(none, ["costs"]) is None


def test_strategy_order_reads_text_or_a_list():
    assert strategy_order(" min_variance , hrp,") == ["min_variance", "hrp"]
    assert strategy_order(["a", "b"]) == ["a", "b"]
    assert strategy_order(None) is None and strategy_order("") is None


def test_a_remote_scheduler_with_a_local_tracking_file_is_warned_about():
    from qpo.workbench.sweep import remote_tracking_warning

    sqlite = "sqlite:////home/me/qpo/mlflow.db"
    assert remote_tracking_warning("local", "tcp://127.0.0.1:40000", sqlite) is None
    assert remote_tracking_warning("scheduler", "tcp://127.0.0.1:8786", sqlite) is None  # this host
    assert remote_tracking_warning("scheduler", "tcp://dask.team:8786", "http://mlflow.team:5000") is None
    assert remote_tracking_warning("scheduler", "tcp://dask.team:8786",
                                   "postgresql+psycopg://u:secret@db/mlflow") is None
    warning = remote_tracking_warning("scheduler", "tcp://10.0.0.5:8786", sqlite)
    assert warning is not None and "10.0.0.5:8786" in warning and "MLFLOW_TRACKING_URI" in warning
    assert "sqlite" in warning and "/home/me" not in warning
    assert remote_tracking_warning("scheduler", "tcp://10.0.0.5:8786", "file:///tmp/mlruns") is not None
