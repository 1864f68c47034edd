"""Submission webhooks: a round that opens POSTs a notice to each webhook of its tournament's models.

A real HTTP server on loopback receives the POSTs; a dead endpoint, a failing one and one that never
answers must not delay the open, and each failure is logged and recorded.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from service_factories import TUESDAY_OPEN, World

from crowdalpha.service import (
    ServiceError,
    create_model,
    open_round,
    set_submission_webhook,
    tick,
)
from crowdalpha.service.webhooks import (
    ALLOW_PRIVATE_ENV,
    WebhookSender,
    inward_address_reason,
    private_addresses_allowed,
    use_webhook_sender,
)

TIMEOUT_SECONDS = 3.0


@dataclass
class Receiver:
    """A loopback HTTP server: ``/ok`` answers 204, ``/fail`` 500, ``/hang`` holds until released."""

    base_url: str
    posts: list[dict[str, Any]] = field(default_factory=list)
    hanging: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)

    def url(self, path: str) -> str:
        """Return the URL of one of the receiver's endpoints."""
        return f"{self.base_url}{path}"

    def posts_to(self, path: str) -> list[dict[str, Any]]:
        """Return the bodies POSTed to ``path``, in arrival order."""
        return [post["body"] for post in self.posts if post["path"] == path]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """Yield a running receiver; stop it (releasing any held request) at the end."""
    state = Receiver("")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            state.posts.append(
                {"path": self.path, "body": body, "content_type": self.headers["Content-Type"]}
            )
            if self.path == "/hang":
                state.hanging.set()
                state.release.wait(30)
            self.send_response(500 if self.path == "/fail" else 204)
            self.end_headers()

        def log_message(self, *_: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    state.release.set()
    server.shutdown()
    server.server_close()


@pytest.fixture
def sender(world: World) -> Iterator[WebhookSender]:
    """Yield the world's sender: a short timeout, allowed to reach the loopback receiver."""
    installed = use_webhook_sender(
        world.ctx, WebhookSender(timeout_seconds=TIMEOUT_SECONDS, allow_private_addresses=True)
    )
    yield installed
    installed.close()


def dead_url() -> str:
    """Return a loopback URL on which nothing listens (connections are refused)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/gone"


def test_an_open_round_is_announced_to_each_webhook_of_its_tournament(
    world: World, receiver: Receiver, sender: WebhookSender
) -> None:
    set_submission_webhook(world.ctx, world.username, world.model_id, receiver.url("/ok"))
    create_model(world.ctx, world.username, "classic", "no_webhook")
    signals_model = create_model(world.ctx, world.username, "signals", "signals_model")
    set_submission_webhook(world.ctx, world.username, signals_model.id, receiver.url("/signals"))

    status = open_round(world.ctx, "classic", close_in=timedelta(hours=1))
    assert sender.wait(TIMEOUT_SECONDS * 3)

    [body] = receiver.posts_to("/ok")
    assert receiver.posts_to("/signals") == [] and len(receiver.posts) == 1
    assert receiver.posts[0]["content_type"] == "application/json"
    trigger_id = body.pop("triggerId")
    assert len(trigger_id) == 32 and int(trigger_id, 16) >= 0
    assert body == {
        "tournament": 8,
        "tournamentName": "classic",
        "roundNumber": status.number,
        "openTime": status.open_time.isoformat(),
        "closeStakingTime": status.close_staking_time.isoformat(),
        "closeTime": status.close_time.isoformat(),
        "modelId": world.model_id,
        "modelName": "alice_model",
    }
    [delivery] = sender.deliveries()
    assert (delivery.ok, delivery.status, delivery.error) == (True, 204, None)
    assert delivery.notice.url == receiver.url("/ok")


def test_dead_failing_and_hanging_endpoints_neither_delay_the_open_nor_raise(
    world: World, receiver: Receiver, sender: WebhookSender, caplog: pytest.LogCaptureFixture
) -> None:
    endpoints = {"dead": dead_url(), "fail": receiver.url("/fail"), "hang": receiver.url("/hang")}
    endpoints["ok"] = receiver.url("/ok")
    for name, url in endpoints.items():
        model = create_model(world.ctx, world.username, "classic", f"model_{name}")
        set_submission_webhook(world.ctx, world.username, model.id, url)
    caplog.set_level(logging.INFO, logger="crowdalpha.service.webhooks")

    started = time.monotonic()
    status = open_round(world.ctx, "classic", close_in=timedelta(hours=1))
    opened_in = time.monotonic() - started
    assert status.state == "open"
    assert opened_in < TIMEOUT_SECONDS
    assert not receiver.release.is_set()

    assert receiver.hanging.wait(TIMEOUT_SECONDS * 3), "the hanging endpoint was never called"
    waited = time.monotonic()
    assert sender.wait(TIMEOUT_SECONDS * 3)
    # The hanging request is cut at the timeout, long before the endpoint would answer.
    assert time.monotonic() - waited < TIMEOUT_SECONDS + 2.0 and not receiver.release.is_set()

    by_model = {delivery.notice.body["modelName"]: delivery for delivery in sender.deliveries()}
    assert sorted(by_model) == ["model_dead", "model_fail", "model_hang", "model_ok"]
    assert (by_model["model_ok"].ok, by_model["model_ok"].status) == (True, 204)
    assert by_model["model_fail"].status == 500
    assert by_model["model_fail"].error == "the endpoint answered HTTP 500"
    assert by_model["model_dead"].status is None
    assert by_model["model_dead"].error.startswith("unreachable: ")
    assert by_model["model_hang"].error == f"no answer within the {TIMEOUT_SECONDS:g} s timeout"
    assert TIMEOUT_SECONDS * 0.9 <= by_model["model_hang"].seconds < TIMEOUT_SECONDS + 2.0

    warnings = [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING]
    assert len(warnings) == 3
    assert (
        f"submission webhook of classic round {status.number} model model_fail failed:"
        f" {endpoints['fail']}: the endpoint answered HTTP 500"
    ) in warnings


def test_a_refused_open_announces_nothing_and_a_round_is_announced_once(
    world: World, receiver: Receiver, sender: WebhookSender
) -> None:
    set_submission_webhook(world.ctx, world.username, world.model_id, receiver.url("/ok"))
    world.clock.set(TUESDAY_OPEN + timedelta(hours=3))
    with pytest.raises(ServiceError, match=r"^outside_round_window: "):
        open_round(world.ctx, "classic")
    open_round(world.ctx, "classic", close_in=timedelta(hours=1))
    with pytest.raises(ServiceError, match=r"^round_already_open: "):
        open_round(world.ctx, "classic", close_in=timedelta(hours=1))
    tick(world.ctx)
    assert sender.wait(TIMEOUT_SECONDS * 3)
    assert len(receiver.posts_to("/ok")) == 1


def test_the_tick_announces_the_calendar_round_it_opens(
    world: World, receiver: Receiver, sender: WebhookSender
) -> None:
    set_submission_webhook(world.ctx, world.username, world.model_id, receiver.url("/ok"))
    world.clock.set(TUESDAY_OPEN + timedelta(minutes=5))
    report = tick(world.ctx)
    [opened] = [key for key in report.ran if "/open/" in key]
    tick(world.ctx)
    assert sender.wait(TIMEOUT_SECONDS * 3)
    [body] = receiver.posts_to("/ok")
    assert opened == f"classic/{body['roundNumber']}/open/{TUESDAY_OPEN.date().isoformat()}"
    assert body["openTime"] == TUESDAY_OPEN.isoformat()


def test_a_webhook_on_an_inward_address_is_refused_before_any_request_is_sent(
    world: World, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(ALLOW_PRIVATE_ENV, raising=False)
    guarded = use_webhook_sender(world.ctx, WebhookSender(timeout_seconds=TIMEOUT_SECONDS))
    try:
        assert guarded.allow_private_addresses is False
        # "localhost" resolves to loopback: the check is on the address reached, not on the URL's text.
        url = receiver.url("/ok").replace("127.0.0.1", "localhost")
        set_submission_webhook(world.ctx, world.username, world.model_id, url)
        open_round(world.ctx, "classic", close_in=timedelta(hours=1))
        assert guarded.wait(TIMEOUT_SECONDS * 3)
    finally:
        guarded.close()
    assert receiver.posts == []
    [delivery] = guarded.deliveries()
    assert delivery.status is None and not delivery.ok
    assert delivery.error is not None and delivery.error.startswith("refused: localhost is ")
    assert delivery.error.endswith(
        "a loopback address; webhooks reach public addresses only"
        f" (an operator allows inward ones with {ALLOW_PRIVATE_ENV}=1)"
    )


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("10.1.2.3", "private"),
        ("192.168.0.10", "private"),
        ("169.254.169.254", "link-local"),
        ("fe80::1%eth0", "link-local"),
        ("::ffff:10.0.0.1", "private"),
        ("0.0.0.0", "private"),
        ("224.0.0.1", "multicast"),
        ("8.8.8.8", None),
        ("2606:4700:4700::1111", None),
    ],
)
def test_inward_addresses_are_named_and_public_ones_pass(address: str, reason: str | None) -> None:
    assert inward_address_reason(address) == reason


def test_the_operator_allows_inward_webhooks_through_the_environment() -> None:
    assert private_addresses_allowed({ALLOW_PRIVATE_ENV: "1"}) is True
    assert private_addresses_allowed({ALLOW_PRIVATE_ENV: " Yes "}) is True
    assert private_addresses_allowed({ALLOW_PRIVATE_ENV: "0"}) is False
    assert private_addresses_allowed({}) is False
