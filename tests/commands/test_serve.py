"""``crowdalpha serve`` as a real process: its URL, GraphQL answers, and the tick opening a round."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import numerapi
import numpy as np
import pandas as pd
import psutil
import pytest
import requests
from typer.testing import CliRunner

from crowdalpha.cli import app
from crowdalpha.service import (
    create_account,
    create_model,
    init_home,
    list_submissions,
    open_context,
    open_round,
    publish_dataset,
)
from crowdalpha.settings import Settings

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
            "--access-log",
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
    assert "access log: on" in process.stdout.readline() + process.stdout.readline()
    process.terminate()
    process.wait(timeout=10)
    assert '"POST /graphql HTTP/1.1" 200' in process.stdout.read()  # --access-log: a line per request


def test_serve_with_two_workers_takes_uploads_signed_by_either_worker(
    tmp_path: Path, classic_version_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = Settings.resolve(home=tmp_path / "home", environ={})
    init_home(settings)
    with open_context(settings) as ctx:
        publish_dataset(ctx, classic_version_dir, "classic")
        open_round(ctx, "classic", close_in=timedelta(hours=1))
        created = create_account(ctx, "alice")
        model = create_model(ctx, "alice", "classic", "alice_model")
    port = free_port()
    command = [sys.executable, "-m", "crowdalpha", "serve", "--home", str(settings.home), "--port", str(port)]
    process = subprocess.Popen(
        [*command, "--no-tick", "--workers", "2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{base_url}/healthz", timeout=2).status_code == 200:
                    break
            except requests.ConnectionError:
                time.sleep(0.1)
        workers: list[psutil.Process] = []
        while time.monotonic() < deadline and len(workers) < 2:  # each listens on the port when ready
            workers = [
                child
                for child in psutil.Process(process.pid).children(recursive=True)
                if any(link.laddr.port == port and not link.raddr for link in child.net_connections("tcp"))
            ]
            time.sleep(0.1)
        assert len(workers) == 2
        # Kept-alive connections opened at once spread over the workers (a socket per worker).
        sessions = [requests.Session() for _ in range(16)]
        for session in sessions:
            assert session.get(f"{base_url}/healthz", timeout=5).status_code == 200
        per_worker = [
            sum(1 for link in worker.net_connections("tcp") if link.laddr.port == port and link.raddr)
            for worker in workers
        ]
        assert sum(per_worker) == 16 and min(per_worker) >= 2, per_worker
        for session in sessions:
            session.close()
        monkeypatch.setattr(numerapi.base_api, "API_TOURNAMENT_URL", f"{base_url}/graphql")
        napi = numerapi.NumerAPI(created.public_id, created.secret_key, show_progress_bars=False)
        ids = pd.read_parquet(classic_version_dir / "live.parquet").index.astype(str)
        frame = pd.DataFrame({"id": ids, "prediction": np.linspace(0.1, 0.9, len(ids))})
        # Each upload is three requests that either worker may answer: the URL one signs, another checks.
        uploaded = [napi.upload_predictions(df=frame, model_id=model.id) for _ in range(6)]
    finally:
        process.terminate()
        process.wait(timeout=20)
        assert process.stdout is not None
        output = process.stdout.read()
        process.stdout.close()
    assert "workers: 2 processes" in output
    assert "access log: off (--access-log: a line per request)" in output
    assert '"POST /graphql HTTP/1.1" 200' not in output  # no access log unless asked for
    assert len(set(uploaded)) == 6
    with open_context(settings) as ctx:
        stored = [item.submission_id for item in list_submissions(ctx, "alice", model.id)]
    assert sorted(stored) == sorted(uploaded)


def test_serve_with_two_workers_refuses_a_port_in_use(tmp_path: Path) -> None:
    settings = Settings.resolve(home=tmp_path / "home", environ={})
    init_home(settings)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        command = ["serve", "--home", str(settings.home), "--port", str(port), "--no-tick", "--workers", "2"]
        result = subprocess.run(
            [sys.executable, "-m", "crowdalpha", *command],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 2
    assert f"error: cannot listen on 127.0.0.1:{port}: Address already in use" in result.stderr
