"""The benchmark scripts run (smoke)."""
from __future__ import annotations

import math


def test_classical_frontier_compares_every_peer():
    from benchmarks.classical_optimizers import frontier_section

    out = frontier_section({"qpo": 0, "peer": 0, "riskfolio": 0})
    for case in out["cases"].values():
        for who in ("qpo", "pypfopt", "skfolio", "riskfolio"):
            assert math.isfinite(case[who]["median_s"])
