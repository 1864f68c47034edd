"""Row-chunked thread parallelism for the numpy core (numpy releases the GIL in sorts and BLAS)."""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

_MIN_ROWS_PER_TASK = 32
_executor: ThreadPoolExecutor | None = None


def worker_count() -> int:
    """Return how many threads row work is split over (``CROWDALPHA_THREADS`` or the CPU count)."""
    configured = os.environ.get("CROWDALPHA_THREADS")
    if configured:
        return max(1, int(configured))
    return max(1, os.cpu_count() or 1)


def for_row_chunks(n_rows: int, work: Callable[[int, int], None]) -> None:
    """Call ``work(start, stop)`` over contiguous row ranges covering ``range(n_rows)``, in threads."""
    workers = min(worker_count(), max(1, n_rows // _MIN_ROWS_PER_TASK))
    if workers <= 1:
        work(0, n_rows)
        return
    global _executor
    if _executor is None or _executor._max_workers < workers:
        _executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="crowdalpha-scoring")
    bounds = [n_rows * i // workers for i in range(workers + 1)]
    futures = [_executor.submit(work, bounds[i], bounds[i + 1]) for i in range(workers)]
    for future in futures:
        future.result()
