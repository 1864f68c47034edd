"""BLAS threads for the fund's many small dense products: one thread, not OpenBLAS's pool."""

from __future__ import annotations

import contextlib


def one_blas_thread() -> contextlib.AbstractContextManager:
    """Return a context running BLAS/LAPACK on one thread (threadpoolctl, when installed)."""
    # The fund's factorisations are small (tens of columns): milliseconds on one thread. On a busy
    # machine OpenBLAS's threads spin for each other — a TC QR took 0.2-1.7 s (bench_fund at load 6),
    # a 37 × 37 eigh 2.4 ms instead of 0.1 ms and a 2,000 × 37 SVD 36 ms instead of 1.5 ms at load 2.
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(1, user_api="blas")
