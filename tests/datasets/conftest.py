"""Fixtures for the dataset tests; the factories live in dataset_factories.py."""

from __future__ import annotations

import pandas as pd
import pytest
from dataset_factories import make_era_frame


@pytest.fixture(scope="session")
def era_frame() -> pd.DataFrame:
    """Return the default small era frame."""
    return make_era_frame()
