"""``crowdalpha serve`` as a real process: its URL, GraphQL answers, and the tick opening a round."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from typer.testing import CliRunner

from crowdalpha.cli import app

STARTUP_SECONDS = 20.0
CURRENT_ROUND = "query($tournament: Int!) { rounds(tournament: $tournament, number: 0) { number openTime } }"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run(*args: str) -> None:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output


@pytest.fixture
def served_home(tmp_path: Path, classic_version_dir: Path) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """Yield (base URL, process) of ``crowdalpha serve`` on a home whose clock stands in a round window."""
    home = str(tmp_path / "home")
    run("init", "--home", home)
    run("dataset", "publish", str(classic_version_dir), "--tournament", "classic", "--home", home)
    run("clock", "set", "2026-01-06T12:10Z", "--home", home)
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "crowdalpha",
            "serve",
            "--home",
            home,
            "--port",
            str(port),
            "--tick-every",
            "0.2",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        yield f"http://127.0.0.1:{port}", process
    finally:
        process.terminate()
        process.wait(timeout=10)
        assert process.stdout is not None
        process.stdout.close()


def test_serve_prints_its_url_answers_graphql_and_ticks_the_round_open(
    served_home: tuple[str, subprocess.Popen[str]],
) -> None:
    base_url, process = served_home
    assert process.stdout is not None
    first_line = process.stdout.readline()
    assert f"at {base_url} (numerapi: {base_url}/graphql)" in first_line

    deadline = time.monotonic() + STARTUP_SECONDS
    answer: dict = {}
    while time.monotonic() < deadline:
        try:
            response = requests.post(
                f"{base_url}/graphql",
                json={"query": CURRENT_ROUND, "variables": {"tournament": 8}},
                timeout=5,
            )
        except requests.ConnectionError:
            time.sleep(0.1)
            continue
        assert response.status_code == 200
        answer = response.json()
        if answer.get("data"):
            break
        time.sleep(0.1)
    assert answer.get("data"), answer
    [current] = answer["data"]["rounds"]
    assert current["openTime"] == "2026-01-06T12:00:00+00:00"
