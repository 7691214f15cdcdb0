"""QAOA past the machine's memory is refused before anything is allocated, with the estimate in GiB."""
from __future__ import annotations

import re
import time

import numpy as np
import pandas as pd
import pytest

import qpo
from qpo.errors import ProblemError
from qpo.quantum.qaoa import available_memory_bytes, check_memory, qaoa_memory_bytes, statevector_bytes


def _problem(n: int) -> qpo.PortfolioProblem:
    rng = np.random.default_rng(0)
    returns = pd.DataFrame(rng.normal(0.0005, 0.01, size=(300, n)), columns=[f"A{i:02d}" for i in range(n)])
    return qpo.PortfolioProblem.from_returns(returns)


def test_memory_estimate_counts_the_statevector_and_its_copies():
    assert statevector_bytes(24) == 16 * 2 ** 24 == 256 * 2 ** 20
    assert qaoa_memory_bytes(24) == 8 * statevector_bytes(24) == 2 * 2 ** 30
    free = available_memory_bytes()
    with open("/proc/meminfo") as fh:
        line = next(x for x in fh if x.startswith("MemAvailable:"))
    assert abs(free - int(line.split()[1]) * 1024) < 2 ** 30  # the same figure (it moves a little)


def test_forty_qubits_are_refused_fast_with_the_gib():
    t0 = time.perf_counter()
    with pytest.raises(ProblemError) as info:
        qpo.optimize(_problem(40), "asset_selection", method="qaoa", k=3, max_qubits=40, confidence_level=None)
    elapsed = time.perf_counter() - t0
    msg = str(info.value)
    assert elapsed < 1.0, elapsed
    assert "40 qubits" in msg and "max_qubits=40" in msg
    need = re.search(r"needs about ([\d,.]+) GiB", msg)
    free = re.search(r"has ([\d,.]+) GiB available", msg)
    assert need and free, msg
    assert float(need.group(1).replace(",", "")) == pytest.approx(128 * 2 ** 40 / 2 ** 30, rel=1e-3)  # 131,072 GiB
    assert float(free.group(1).replace(",", "")) == pytest.approx(available_memory_bytes() / 2 ** 30, rel=0.2)


def test_the_check_refuses_only_what_does_not_fit():
    check_memory(12)  # 512 KiB: fine anywhere
    free = available_memory_bytes()
    n = int(np.ceil(np.log2(free / 128))) + 1  # the first qubit count past the free memory
    with pytest.raises(ProblemError, match=rf"{n} qubits needs about"):
        check_memory(n)


def test_direct_simulator_and_run_refuse_before_allocating(monkeypatch):
    """``run_qaoa`` and ``StatevectorQAOA`` check too (their diagonal is small; the free memory is made
    smaller than the run needs)."""
    from qpo.quantum import qaoa
    from qpo.quantum.qaoa import _statevector

    monkeypatch.setattr(_statevector, "available_memory_bytes", lambda: 1000)
    diag = np.arange(16, dtype=float)  # 4 qubits: 2 KiB > 1000 bytes
    with pytest.raises(ProblemError, match="4 qubits needs about"):
        qaoa.run_qaoa(diag, reps=1)
    with pytest.raises(ProblemError, match="4 qubits needs about"):
        qaoa.StatevectorQAOA(diag)
