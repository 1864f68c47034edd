"""README's "Point numerapi at your server" snippet, run as written against a real server on loopback.

The code block is read from README.md, its placeholders (the example URL and the ``PUBLIC`` /
``SECRET`` key pair) are replaced by the test server's URL and a real key, and it is executed with
the real numerapi package — so the README cannot drift from what works.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import numerapi
import numerapi.base_api
import pytest
from e2e_helpers import new_home
from sqlalchemy import Engine

from crowdalpha.api import create_app
from crowdalpha.service import create_account, create_model, open_round, publish_dataset

README = Path(__file__).resolve().parents[2] / "README.md"
SECTION = "### Point numerapi at your server"
PLACEHOLDER_URL = '"http://127.0.0.1:8000/graphql"'
PLACEHOLDER_PUBLIC = '"PUBLIC"'
PLACEHOLDER_SECRET = '"SECRET"'


def readme_snippet() -> str:
    """Return the first Python code block after the README's numerapi section heading."""
    text = README.read_text()
    assert SECTION in text, f"README.md lost its section {SECTION!r}"
    block = re.search(r"```python\n(.*?)```", text[text.index(SECTION) :], re.DOTALL)
    assert block is not None, f"README.md has no ```python block after {SECTION!r}"
    return block.group(1)


def substitute(snippet: str, replacements: dict[str, str]) -> str:
    """Return the snippet with each placeholder (which must occur exactly once) replaced."""
    for placeholder, value in replacements.items():
        assert snippet.count(placeholder) == 1, f"the README snippet should contain {placeholder} once"
        snippet = snippet.replace(placeholder, repr(value))
    return snippet


def test_the_readme_snippet_reaches_the_server_and_returns_the_current_round(
    engine: Engine,
    tmp_path: Path,
    classic_version_dir: Path,
    live_server: Callable[[Any], str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings, clock, ctx = new_home(engine, tmp_path)
    publish_dataset(ctx, classic_version_dir, "classic")
    keys = create_account(ctx, "alice")
    model = create_model(ctx, "alice", "classic", "alice_model")
    opened = open_round(ctx, "classic", close_in=timedelta(hours=1))
    base_url = live_server(create_app(settings, blob_store=ctx.blobs, engine=engine, clock=clock))
    # The snippet sets numerapi's module global; monkeypatch puts the original back afterwards.
    monkeypatch.setattr(numerapi.base_api, "API_TOURNAMENT_URL", numerapi.base_api.API_TOURNAMENT_URL)

    snippet = readme_snippet()
    assert len(snippet.strip().splitlines()) == 3
    code = substitute(
        snippet,
        {
            PLACEHOLDER_URL: f"{base_url}/graphql",
            PLACEHOLDER_PUBLIC: keys.public_id,
            PLACEHOLDER_SECRET: keys.secret_key,
        },
    )
    namespace: dict[str, Any] = {}
    exec(compile(code, f"{README}:{SECTION}", "exec"), namespace)

    napi = namespace["napi"]
    assert isinstance(napi, numerapi.NumerAPI)
    assert napi.get_current_round() == opened.number
    assert napi.get_models() == {"alice_model": model.id}  # the snippet's key pair authenticates
