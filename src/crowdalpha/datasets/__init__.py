"""Dataset products built from a market panel: Classic (obfuscated, era-based), Signals and
Crypto; Parquet writers and readers.

Classic: :func:`build_classic` (market panel → ``vX.Y/``) and :func:`write_classic_version`
(era frame → ``vX.Y/``) in :mod:`crowdalpha.datasets.classic`; the streaming obfuscation core
(:func:`equal_frequency_bins`, :class:`SecretKeys`, :func:`obfuscate_eras`) in
:mod:`crowdalpha.datasets.obfuscate`.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "BuildReport": "crowdalpha.datasets.classic",
    "build_classic": "crowdalpha.datasets.classic",
    "era_frame_from_panel": "crowdalpha.datasets.classic",
    "write_classic_version": "crowdalpha.datasets.classic",
    "DatasetError": "crowdalpha.datasets.errors",
    "SecretKeys": "crowdalpha.datasets.obfuscate",
    "equal_frequency_bins": "crowdalpha.datasets.obfuscate",
    "obfuscate_era": "crowdalpha.datasets.obfuscate",
    "obfuscate_eras": "crowdalpha.datasets.obfuscate",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    """Return a public name, importing its module on first use (keeps submodule imports light)."""
    if name not in _EXPORTS:
        raise AttributeError(f"module 'crowdalpha.datasets' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
