"""Values derived from immutable stored content, kept per context so a season parses each blob once.

A round's live id map, its published meta model, its benchmark predictions and its prediction
matrix do not change once written: blobs are content-addressed (or written once under a key that
names their inputs), so a value derived from a blob key stays right for as long as the key does.
:func:`derived` keeps such values in the context's cache, least recently used first out, within
:data:`DERIVED_BUDGET_BYTES`. The values are shared by every later caller: treat them as read-only.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import TypeVar

import numpy as np
import pandas as pd

from crowdalpha.service.context import Context

T = TypeVar("T")

_CACHE_KEY = "derived values"
DERIVED_BUDGET_BYTES = 256 * 1024 * 1024
"""Bytes of derived values a context keeps (an estimate: arrays' and frames' data)."""


class _Derived:
    def __init__(self) -> None:
        self.values: OrderedDict[Hashable, tuple[object, int]] = OrderedDict()
        self.total = 0


def value_bytes(value: object) -> int:
    """Return an estimate of the bytes ``value`` holds (numpy and pandas data; containers summed)."""
    if isinstance(value, np.ndarray):
        return value.nbytes
    if isinstance(value, pd.Series | pd.Index):
        return int(value.memory_usage(deep=False)) + 64 * len(value)
    if isinstance(value, pd.DataFrame):
        return int(value.memory_usage(deep=False).sum()) + 64 * len(value.index)
    if isinstance(value, tuple | list):
        return sum(value_bytes(item) for item in value)
    if isinstance(value, dict):
        return sum(value_bytes(item) for item in value.values())
    return 64


def derived(ctx: Context, kind: str, key: Hashable, build: Callable[[], T]) -> T:
    """Return the value ``build()`` derives for ``(kind, key)``, built once per context (module doc).

    ``key`` must name everything the value depends on (e.g. the blob key it is read from). A value
    larger than the budget is returned without being kept.
    """
    kept: _Derived = ctx.cache.setdefault(_CACHE_KEY, _Derived())
    slot = (kind, key)
    found = kept.values.get(slot)
    if found is not None:
        kept.values.move_to_end(slot)
        return found[0]  # type: ignore[return-value]
    value = build()
    size = value_bytes(value)
    if size <= DERIVED_BUDGET_BYTES:
        kept.values[slot] = (value, size)
        kept.total += size
        while kept.total > DERIVED_BUDGET_BYTES:
            _, (_, dropped) = kept.values.popitem(last=False)
            kept.total -= dropped
    return value
