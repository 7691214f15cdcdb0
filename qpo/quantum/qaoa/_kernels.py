"""The kernels of the statevector fast path: a small thread pool for the elementwise work, BLAS held
to one thread, and the mixers applied as Kronecker blocks (one BLAS matrix product per block)."""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

_CHUNK = 1 << 15          # elements per chunk of the elementwise work (512 KiB of complex128)
_PARALLEL_MIN = 1 << 16   # below this dimension the elementwise work stays on the calling thread
_BLOCK = 4                # qubits per Kronecker block of the mixers

_POOL: ThreadPoolExecutor | None = None
_BLAS: Any = None


def _single_threaded_blas():
    """Context: BLAS on one thread. The mixers' matrix products are small; OpenBLAS's own threads
    gain nothing on them and, on a busy machine, their spin-waits slow an evaluation down 10-100x."""
    global _BLAS
    if _BLAS is None:
        from threadpoolctl import ThreadpoolController

        _BLAS = ThreadpoolController()
    return _BLAS.limit(limits=1, user_api="blas")


def _pool() -> ThreadPoolExecutor:
    global _POOL
    if _POOL is None:
        _POOL = ThreadPoolExecutor(max_workers=max(1, min(2, os.cpu_count() or 1)),
                                   thread_name_prefix="qpo-qaoa")
    return _POOL


def _pair_blocks(starts: list[int]) -> list[tuple[int, int, bool]]:
    """Group adjacent-pair starts ``j, j+2, ...`` into Kronecker blocks ``(first qubit, width, padded)``.
    A block that would start at qubit 1 starts at qubit 0 with an identity there (``padded``): a block
    on the lowest qubits is one flat matrix product, about twice as fast as the batched one."""
    per = _BLOCK // 2
    out = []
    for i in range(0, len(starts), per):
        j, w = starts[i], 2 * len(starts[i:i + per])
        out.append((0, w + 1, True) if j == 1 else (j, w, False))
    return out


def _x_blocks(n: int) -> list[tuple[int, int]]:
    count = -(-n // _BLOCK)
    base, extra = divmod(n, count)
    widths = [base + 1] * extra + [base] * (count - extra)
    out, j = [], 0
    for w in widths:
        out.append((j, w))
        j += w
    return out


def _kron_power(m: np.ndarray, times: int) -> np.ndarray:
    out = m
    for _ in range(times - 1):
        out = np.kron(out, m)
    return out


def _apply_block(src: np.ndarray, dst: np.ndarray, j: int, w: int, u: np.ndarray, threads: int = 1) -> None:
    """``dst = (I ⊗ u ⊗ I) src`` with ``u`` acting on qubits ``j .. j+w-1`` (``u``'s index little-endian).

    Blocks on the lowest qubits are one flat product ``(2**n/2**w, 2**w) @ u.T``; the others a batched
    ``u @ (A, 2**w, B)``. With ``threads > 1`` the work is split in contiguous parts over the pool (each
    part one BLAS call on one thread)."""
    dim = src.shape[0]
    a, m, b = dim >> (j + w), 1 << w, 1 << j
    sv: np.ndarray
    dv: np.ndarray
    if b == 1:
        sv, dv, ut = src.reshape(a, m), dst.reshape(a, m), u.T

        def part(lo: int, hi: int) -> None:
            np.matmul(sv[lo:hi], ut, out=dv[lo:hi])
        size = a
    else:
        sv, dv = src.reshape(a, m, b), dst.reshape(a, m, b)
        if a >= threads:
            def part(lo: int, hi: int) -> None:
                np.matmul(u, sv[lo:hi], out=dv[lo:hi])
            size = a
        else:
            def part(lo: int, hi: int) -> None:
                np.matmul(u, sv[:, :, lo:hi], out=dv[:, :, lo:hi])
            size = b
    if threads == 1 or dim < _PARALLEL_MIN:
        part(0, size)
        return
    step = -(-size // threads)
    futures = [_pool().submit(part, lo, min(lo + step, size)) for lo in range(step, size, step)]
    part(0, step)
    for f in futures:
        f.result()
