"""Store test fixtures: a seeded world on top of the shared ``engine`` fixture (tests/conftest.py)."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine
from store_factories import Seed


@pytest.fixture
def seed(engine: Engine) -> Seed:
    """Return the ids of a seeded tournament world in the variant's database."""
    return Seed(engine)
