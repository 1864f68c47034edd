"""Web leaderboard speed: the page of a seeded 10,000-model Classic leaderboard, timed inside the real app.

Set-up (not timed): a fresh home (SQLite), then ``--models`` models of ``--models // 2`` accounts
with ``--rounds`` weekly resolved rounds, written straight into the store as the pipeline leaves
them (:func:`seed_leaderboard`): selected submissions, the final ``--score-days`` of every score of
the Classic config, at-risk stakes with payouts, round resolutions and the models' stake balances.

Then, as the tick does right after a resolution, :func:`refresh_leaderboards` computes and stores the
leaderboard snapshots (timed: ``refresh_seconds``, work moved off the read path). Timed, in-process (the
ASGI app called directly, no socket): ``GET /leaderboard/classic`` **cold** on ``--cold-repeats`` fresh
apps (each a new context, nothing of the leaderboard in memory, as in a new server: the board read
from its snapshot; the first one also pays the process's first request, ``first_page``) and the account
view cold on each; then **warm**, sorted by every column, searched and paged (median and p95 over
``--repeats`` passes); numerapi's ``v2Leaderboard`` operation over ``/graphql``. Anchor, side by side
on the same database: :func:`crowdalpha.service.performance.model_leaderboard` (every stored score day
read, no interval, no cache, every row — the numerapi path before the snapshots). ``ratio`` is anchor ÷
warm page, ``cold_ratio`` anchor ÷ the cold page (medians). Goal: the p95 of the warm and of the cold
page < 200 ms.

Prints one JSON line. ``--quick`` runs a small case for a smoke test.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

NOW = datetime(2026, 6, 2, 12, 30, tzinfo=UTC)
GOAL_SECONDS = 0.2
SIGNING_KEY = bytes(range(64, 96))


def seed_leaderboard(
    ctx: Any, *, models: int, rounds: int, score_days: int = 1, seed: int = 0, prefix: str = "seed"
) -> list[str]:
    """Write ``models`` Classic models with ``rounds`` weekly resolved rounds into the store; their names.

    Rounds end at the context's clock (the newest resolved a day ago, the others a week apart).
    Each model takes part in about 80 % of the rounds, about 60 % of the models are staked; its
    scores are its skill plus noise; payouts follow the Classic rule (0.5×CORR + 2×MMC, clip ±5 %).
    """
    from sqlalchemy import insert

    from crowdalpha.ledger.accounts import AccountKind, stake_account
    from crowdalpha.ledger.amounts import NANO_PER_TOKEN
    from crowdalpha.store import RoundState, transaction
    from crowdalpha.store.schema import (
        Account,
        LedgerAccount,
        Model,
        Round,
        RoundResolution,
        RoundScoreDay,
        RoundStake,
        Submission,
        SubmissionScore,
        SubmissionStatus,
    )

    rng = np.random.default_rng(seed)
    now = ctx.now()
    with transaction(ctx.engine) as uow:
        tournament = uow.tournaments.get_by_name("classic")
        score_names = [item["name"] for item in tournament.config["scores"]]
        numbers = [row.number for row in uow.rounds.list(tournament.id)]
    # Seeded rounds resolved before now: numbered just below the stored rounds when there is room.
    lowest = min(numbers, default=rounds + 1)
    first_number = lowest - rounds if lowest > rounds else max(numbers) + 1
    accounts = [
        {"id": str(uuid.uuid4()), "username": f"{prefix}_user_{i:05d}", "created_at": now}
        for i in range(max(models // 2, 1))
    ]
    model_rows = [
        {
            "id": str(uuid.uuid4()),
            "account_id": accounts[i % len(accounts)]["id"],
            "tournament_id": 8,
            "name": f"{prefix}_model_{i:05d}",
            "created_at": now,
        }
        for i in range(models)
    ]
    skill = rng.normal(0.0, 0.01, size=models)
    staked = rng.random(models) < 0.6
    stake_nano = np.where(staked, rng.integers(1, 1000, size=models) * NANO_PER_TOKEN, 0)
    round_rows, submissions, scores, stakes, days, resolutions = [], [], [], [], [], []
    for r in range(rounds):
        resolved_at = now - timedelta(days=1 + 7 * (rounds - 1 - r))
        open_time = resolved_at - timedelta(days=28)
        round_id = str(uuid.uuid4())
        round_rows.append(
            {
                "id": round_id,
                "tournament_id": 8,
                "number": first_number + r,
                "state": RoundState.RESOLVED.value,
                "open_time": open_time,
                "close_time": open_time + timedelta(hours=1),
                "close_staking_time": open_time + timedelta(hours=1),
                "score_time": open_time + timedelta(days=4),
                "resolve_time": resolved_at,
                "created_at": open_time,
                "updated_at": resolved_at,
            }
        )
        taking_part = np.flatnonzero(rng.random(models) < 0.8)
        values = {name: skill[taking_part] + rng.normal(0, 0.02, taking_part.size) for name in score_names}
        total_at_risk = 0
        paid = burned = 0
        for position, index in enumerate(taking_part):
            submission_id = str(uuid.uuid4())
            submissions.append(
                {
                    "id": submission_id,
                    "model_id": model_rows[index]["id"],
                    "round_id": round_id,
                    "filename": "predictions.csv",
                    "blob_key": f"seed/{submission_id}",
                    "sha256": f"{index:064x}",
                    "size_bytes": 1000,
                    "received_at": open_time + timedelta(minutes=5),
                    "status": SubmissionStatus.ON_TIME.value,
                    "selected": True,
                }
            )
            for name in score_names:
                for day in range(20 - score_days + 1, 21):
                    scores.append(
                        {
                            "submission_id": submission_id,
                            "round_id": round_id,
                            "score": name,
                            "day": day,
                            "value": float(values[name][position] * day / 20),
                            "percentile": None,
                            "scored_at": open_time + timedelta(days=4 + day),
                        }
                    )
            if staked[index]:
                score = 0.5 * values[score_names[0]][position] + 2 * values[score_names[1]][position]
                payout = int(stake_nano[index] * float(np.clip(score, -0.05, 0.05)))
                total_at_risk += int(stake_nano[index])
                paid += max(payout, 0)
                burned += max(-payout, 0)
                stakes.append(
                    {
                        "round_id": round_id,
                        "submission_id": submission_id,
                        "model_id": model_rows[index]["id"],
                        "at_risk_nano": int(stake_nano[index]),
                        "payout_score": float(score),
                        "payout_nano": payout,
                    }
                )
        for day in range(20 - score_days + 1, 21):
            days.append(
                {
                    "round_id": round_id,
                    "day": day,
                    "market_date": (open_time + timedelta(days=3 + day)).date(),
                    "submissions": int(taking_part.size),
                    "scored_at": open_time + timedelta(days=4 + day),
                }
            )
        resolutions.append(
            {
                "round_id": round_id,
                "total_at_risk_nano": total_at_risk,
                "payout_factor": 1.0,
                "paid_nano": paid,
                "burned_nano": burned,
                "models": int(taking_part.size),
                "resolved_at": resolved_at,
            }
        )
    ledger = [
        {
            "name": stake_account(row["id"]),
            "kind": AccountKind.STAKE.value,
            "owner_id": row["id"],
            "balance": int(stake_nano[i]),
            "updated_at": now,
        }
        for i, row in enumerate(model_rows)
        if staked[i]
    ]
    chunk = 20_000
    with transaction(ctx.engine) as uow:
        for table, rows in (
            (Account, accounts),
            (Model, model_rows),
            (Round, round_rows),
            (Submission, submissions),
            (RoundScoreDay, days),
            (SubmissionScore, scores),
            (RoundStake, stakes),
            (RoundResolution, resolutions),
            (LedgerAccount, ledger),
        ):
            for start in range(0, len(rows), chunk):
                uow.session.execute(insert(table), rows[start : start + chunk])
    return [row["name"] for row in model_rows]


def asgi_request(app: Any, method: str, path: str, body: bytes = b"") -> tuple[int, bytes]:
    """Return the status and body of a request answered by the ASGI app in this process (no socket)."""
    raw_path, _, query = path.partition("?")
    headers = [(b"host", b"127.0.0.1")]
    if body:
        headers += [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": raw_path,
        "raw_path": raw_path.encode(),
        "query_string": query.encode(),
        "headers": headers,
        "server": ("127.0.0.1", 80),
        "client": ("127.0.0.1", 12345),
        "root_path": "",
    }
    answer: dict[str, Any] = {"status": 0, "body": b""}

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            answer["status"] = message["status"]
        elif message["type"] == "http.response.body":
            answer["body"] += message.get("body", b"")

    asyncio.run(app(scope, receive, send))
    return answer["status"], answer["body"]


def asgi_get(app: Any, path: str) -> tuple[int, bytes]:
    """Return the status and body of ``GET path`` answered by the ASGI app in this process."""
    return asgi_request(app, "GET", path)


def timed_get(app: Any, path: str) -> float:
    """Return the seconds the app takes to answer ``GET path`` with 200."""
    started = time.perf_counter()
    status, body = asgi_get(app, path)
    elapsed = time.perf_counter() - started
    if status != 200:
        raise SystemExit(f"GET {path} answered {status}: {body[:500]!r}")
    return elapsed


LEADERBOARD_QUERY = {
    "query": "query($limit: Int!, $offset: Int!) { v2Leaderboard(limit: $limit, offset: $offset) {"
    " nmrStaked rank username corr20Rep corr20V2Rep corj60Rep fncRep fncV3Rep tcRep mmcRep bmcRep"
    " team return_1_day return_52_weeks return_13_weeks } }",
    "variables": {"limit": 50, "offset": 0},
}
"""The operation numerapi's ``get_leaderboard()`` sends (its default page of 50)."""


def timed_post(app: Any, path: str, document: dict[str, Any]) -> float:
    """Return the seconds the app takes to answer a GraphQL POST with 200 and no errors."""
    started = time.perf_counter()
    status, body = asgi_request(app, "POST", path, json.dumps(document).encode())
    elapsed = time.perf_counter() - started
    answer = json.loads(body)
    if status != 200 or answer.get("errors") or not answer["data"]["v2Leaderboard"]:
        raise SystemExit(f"POST {path} answered {status}: {body[:500]!r}")
    return elapsed


def progress(message: str) -> None:
    """Report a stage on stderr (stdout carries only the JSON line)."""
    print(f"{time.strftime('%H:%M:%S')} {message}", file=sys.stderr, flush=True)


def run(models: int, rounds: int, score_days: int, repeats: int, cold_repeats: int) -> dict[str, Any]:
    """Seed a home, time the leaderboard page cold and warm and the anchor; return the figures."""
    from crowdalpha.api import create_app
    from crowdalpha.service import Context, init_home
    from crowdalpha.service.performance import model_leaderboard
    from crowdalpha.service.web_leaderboard import refresh_leaderboards
    from crowdalpha.settings import Settings
    from crowdalpha.store import BlobStore, create_engine
    from crowdalpha.tournament.clock import SettableClock

    with tempfile.TemporaryDirectory() as directory:
        root = Path(directory)
        settings = Settings(
            home=root / "home", database_url=f"sqlite:///{root / 'web.db'}", storage_url=str(root / "blobs")
        )
        clock = SettableClock(NOW)
        init_home(settings, clock=clock)
        engine = create_engine(settings.database_url)
        ctx = Context(engine, BlobStore(settings.storage_url, durable=False), clock, settings)
        started = time.perf_counter()
        progress(f"seeding {models} models × {rounds} resolved rounds")
        seed_leaderboard(ctx, models=models, rounds=rounds, score_days=score_days)
        seed_seconds = time.perf_counter() - started
        progress("refreshing the leaderboard snapshots (what the tick does right after a resolution)")
        started, cpu = time.perf_counter(), time.process_time()
        refreshed = refresh_leaderboards(ctx)
        refresh_seconds, refresh_cpu = time.perf_counter() - started, time.process_time() - cpu
        ctx.cache.clear()  # the server below is another process's view: nothing in memory
        progress("timing the page")
        cold, cold_cpu, cold_account = [], [], []
        for _ in range(cold_repeats):
            # a fresh app has a fresh context: nothing of the leaderboard in memory, as in a new server
            app = create_app(
                settings, blob_store=ctx.blobs, signing_key=SIGNING_KEY, engine=engine, clock=clock
            )
            cpu = time.process_time()
            cold.append(timed_get(app, "/leaderboard/classic"))
            cold_cpu.append(time.process_time() - cpu)
            cold_account.append(timed_get(app, "/leaderboard/classic?view=account"))
        paths = [
            "/leaderboard/classic",
            "/leaderboard/classic?sort=mmc",
            "/leaderboard/classic?sort=stake",
            "/leaderboard/classic?sort=return_13_weeks",
            "/leaderboard/classic?sort=name&order=asc",
            "/leaderboard/classic?search=model_0042",
            f"/leaderboard/classic?offset={max(models - 50, 0)}",
            "/leaderboard/classic?view=account",
        ]
        warm = [timed_get(app, path) for _ in range(repeats) for path in paths]
        progress("timing numerapi's leaderboard query (GraphQL, in-process)")
        graphql = [timed_post(app, "/graphql", LEADERBOARD_QUERY) for _ in range(repeats)]
        progress("timing the anchor")
        started = time.perf_counter()
        anchor_rows = model_leaderboard(ctx, "classic")
        anchor = time.perf_counter() - started
        engine.dispose()
    ours = statistics.median(warm)
    warm_p95, cold_p95 = (float(np.quantile(values, 0.95)) for values in (warm, cold))
    return {
        "benchmark": "web_leaderboard",
        "models": models,
        "rounds": rounds,
        "score_days": score_days,
        "seed_seconds": round(seed_seconds, 3),
        "crowdalpha_page_seconds": round(ours, 4),
        "crowdalpha_page_p95_seconds": round(warm_p95, 4),
        "crowdalpha_first_page_seconds": round(cold[0], 4),
        "crowdalpha_cold_page_seconds": round(statistics.median(cold), 4),
        "crowdalpha_cold_page_p95_seconds": round(cold_p95, 4),
        "crowdalpha_cold_page_cpu_seconds": round(statistics.median(cold_cpu), 4),
        "crowdalpha_cold_account_page_seconds": round(statistics.median(cold_account), 4),
        "cold_samples": len(cold),
        "warm_samples": len(warm),
        "refresh_seconds": round(refresh_seconds, 3),
        "refresh_cpu_seconds": round(refresh_cpu, 3),
        "refreshed": refreshed,
        "graphql_leaderboard_seconds": round(statistics.median(graphql), 4),
        "load_average": [round(value, 2) for value in os.getloadavg()],
        "anchor": "performance.model_leaderboard (numerapi v2Leaderboard path, every row, no cache)",
        "anchor_rows": len(anchor_rows),
        "anchor_seconds": round(anchor, 4),
        "ratio": round(anchor / ours, 2),
        "cold_ratio": round(anchor / statistics.median(cold), 2),
        "goal_seconds": GOAL_SECONDS,
        "goal_met": max(warm_p95, cold_p95) < GOAL_SECONDS,
    }


def main(argv: list[str] | None = None) -> int:
    """Parse the options, run the benchmark, print one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--score-days", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3, help="warm passes over the eight pages")
    parser.add_argument("--cold-repeats", type=int, default=7, help="fresh apps, each timed cold")
    parser.add_argument("--quick", action="store_true", help="a small case for a smoke test")
    options = parser.parse_args(argv)
    if options.quick:
        options.models, options.rounds, options.score_days, options.repeats, options.cold_repeats = (
            300,
            6,
            2,
            1,
            2,
        )
    figures = run(options.models, options.rounds, options.score_days, options.repeats, options.cold_repeats)
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
