"""Submission webhooks: when a round opens, POST a small JSON notice to each of its models' webhook URLs.

Numerai calls a model's submission webhook (numerapi's ``set_submission_webhook``) when a new round
opens, so that the participant's compute can download the live data and submit. crowdalpha does the
same, *after* the transaction that opened the round has committed (a rolled-back open announces
nothing): the notices go out from a small thread pool with a short timeout, so a slow or dead
endpoint never delays the tick or the operator's command. Each delivery is logged (a failure as a
warning naming the model, the URL and the reason) and kept in the sender's recent deliveries;
nothing is ever raised to the caller. Redirects are not followed, and a round is announced once per
process (a second trigger of the same open — a tick after a manual open — sends nothing).

A webhook URL is chosen by a participant, so the server refuses to POST to an address inside its own
network (loopback, private, link-local — e.g. a cloud metadata endpoint — or otherwise reserved): the
check runs on the address the connection actually reached, after DNS, so a name that resolves (or
re-resolves) inward is refused too, before any request byte is sent. An operator whose participants'
endpoints live on a private network sets ``CROWDALPHA_WEBHOOKS_ALLOW_PRIVATE=1``.

The body of a notice::

    {"tournament": 8, "tournamentName": "classic", "roundNumber": 412,
     "openTime": "…", "closeStakingTime": "…", "closeTime": "…",
     "modelId": "…", "modelName": "…", "triggerId": "…"}

``triggerId`` is fresh per notice (numerapi passes ``$TRIGGER_ID`` back with the submission).
"""

from __future__ import annotations

import http.client
import ipaddress
import json
import logging
import os
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections import deque
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from crowdalpha import __version__
from crowdalpha.service._tournaments import TournamentRef, load_tournament
from crowdalpha.service.context import Context
from crowdalpha.store import RoundState, UnitOfWork, run_transaction

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT_SECONDS = 5.0
"""How long one delivery may wait on the endpoint (connect, then each read) before it counts as failed."""
DEFAULT_WORKERS = 8
RECENT_DELIVERIES = 1000
USER_AGENT = f"crowdalpha/{__version__} (submission webhook)"
SENDER_CACHE_KEY = "crowdalpha.service.webhooks.sender"
ALLOW_PRIVATE_ENV = "CROWDALPHA_WEBHOOKS_ALLOW_PRIVATE"
"""Set to 1/true/yes to let webhooks reach loopback, private and link-local addresses."""


@dataclass(frozen=True)
class WebhookNotice:
    """One notice to send: the model's webhook URL and the JSON body announcing the open round."""

    url: str
    body: dict[str, Any]


@dataclass(frozen=True)
class WebhookDelivery:
    """What one delivery did: the notice, HTTP status (None without an answer), error, seconds taken."""

    notice: WebhookNotice
    status: int | None
    error: str | None
    seconds: float

    @property
    def ok(self) -> bool:
        """Return True if the endpoint answered with a 2xx status."""
        return self.error is None


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """Refuse redirects: a webhook answers itself, it does not send the server elsewhere."""

    def redirect_request(self, *_: Any, **__: Any) -> None:
        """Return None, so the 3xx answer is reported as the delivery's failure."""
        return None


class WebhookRefused(OSError):
    """The webhook's host is an address inside the server's network, which webhooks may not reach."""


def inward_address_reason(address: str) -> str | None:
    """Return why an IP address is inside the server's network (loopback, private, …), or None if public."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    for reason, inward in (
        ("loopback", ip.is_loopback),
        ("link-local", ip.is_link_local),
        ("private", ip.is_private),
        ("multicast", ip.is_multicast),
        ("unspecified", ip.is_unspecified),
        ("reserved", ip.is_reserved),
    ):
        if inward:
            return reason
    return None


def _refuse_inward_peer(connection: http.client.HTTPConnection) -> None:
    """Close the connection and raise WebhookRefused if its peer is an inward address."""
    peer = connection.sock.getpeername()[0]
    reason = inward_address_reason(peer)
    if reason is not None:
        connection.close()
        raise WebhookRefused(
            f"{connection.host} is {peer}, a {reason} address; webhooks reach public addresses only"
            f" (an operator allows inward ones with {ALLOW_PRIVATE_ENV}=1)"
        )


class _PublicHTTPConnection(http.client.HTTPConnection):
    def connect(self) -> None:
        super().connect()
        _refuse_inward_peer(self)


class _PublicHTTPSConnection(http.client.HTTPSConnection):
    def connect(self) -> None:
        super().connect()
        _refuse_inward_peer(self)


class _PublicHTTPHandler(urllib.request.HTTPHandler):
    def http_open(self, req: urllib.request.Request) -> Any:
        return self.do_open(_PublicHTTPConnection, req)


class _PublicHTTPSHandler(urllib.request.HTTPSHandler):
    def https_open(self, req: urllib.request.Request) -> Any:
        return self.do_open(_PublicHTTPSConnection, req, context=self._context)


_OPENER = urllib.request.build_opener(_NoRedirects())
_PUBLIC_OPENER = urllib.request.build_opener(_NoRedirects(), _PublicHTTPHandler(), _PublicHTTPSHandler())


def private_addresses_allowed(environ: dict[str, str] | None = None) -> bool:
    """Return True if ``CROWDALPHA_WEBHOOKS_ALLOW_PRIVATE`` lets webhooks reach inward addresses."""
    value = (os.environ if environ is None else environ).get(ALLOW_PRIVATE_ENV, "")
    return value.strip().lower() in {"1", "true", "yes", "on"}


def deliver(
    notice: WebhookNotice,
    *,
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
    allow_private_addresses: bool = False,
) -> WebhookDelivery:
    """POST the notice's body as JSON and return what happened; never raise.

    Unless ``allow_private_addresses``, a connection that reaches a loopback, private, link-local or
    reserved address is closed before the request is sent and the delivery reports it as refused.
    """
    request = urllib.request.Request(
        notice.url,
        data=json.dumps(notice.body).encode(),
        method="POST",
        headers={"Content-Type": "application/json", "User-Agent": USER_AGENT},
    )
    started = time.monotonic()
    status: int | None = None
    error: str | None = None
    try:
        opener = _OPENER if allow_private_addresses else _PUBLIC_OPENER
        with opener.open(request, timeout=timeout_seconds) as response:
            status = response.status
    except urllib.error.HTTPError as refused:
        status, error = refused.code, f"the endpoint answered HTTP {refused.code}"
    except urllib.error.URLError as unreachable:
        if isinstance(unreachable.reason, WebhookRefused):
            error = f"refused: {unreachable.reason}"
        else:
            error = f"unreachable: {unreachable.reason}"
    except WebhookRefused as refused:
        error = f"refused: {refused}"
    except TimeoutError:
        error = f"no answer within the {timeout_seconds:g} s timeout"
    except Exception as failure:  # a webhook must never take the sender down
        error = f"{type(failure).__name__}: {failure}"
    if error is None and status is not None and not 200 <= status < 300:
        error = f"the endpoint answered HTTP {status}"
    return WebhookDelivery(notice, status, error, time.monotonic() - started)


class WebhookSender:
    """Sends notices from a small thread pool and keeps the recent deliveries; one per process by default."""

    def __init__(
        self,
        *,
        timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
        max_workers: int = DEFAULT_WORKERS,
        keep: int = RECENT_DELIVERIES,
        allow_private_addresses: bool | None = None,
    ) -> None:
        self.timeout_seconds = timeout_seconds
        self.allow_private_addresses = (
            private_addresses_allowed() if allow_private_addresses is None else allow_private_addresses
        )
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="crowdalpha-webhook")
        self._lock = threading.Lock()
        self._recent: deque[WebhookDelivery] = deque(maxlen=keep)
        self._pending: set[Future[WebhookDelivery]] = set()
        self._announced: set[str] = set()

    def first_announcement(self, round_id: str) -> bool:
        """Return True the first time a round is announced through this sender, False afterwards."""
        with self._lock:
            if round_id in self._announced:
                return False
            self._announced.add(round_id)
            return True

    def send(self, notices: Iterable[WebhookNotice]) -> list[Future[WebhookDelivery]]:
        """Queue the notices for delivery and return their futures at once (they never raise)."""
        futures = []
        for notice in notices:
            future = self._pool.submit(self._deliver_and_record, notice)
            with self._lock:
                self._pending.add(future)
            future.add_done_callback(self._forget)  # runs at once if the delivery already finished
            futures.append(future)
        return futures

    def _deliver_and_record(self, notice: WebhookNotice) -> WebhookDelivery:
        delivery = deliver(
            notice, timeout_seconds=self.timeout_seconds, allow_private_addresses=self.allow_private_addresses
        )
        body = notice.body
        where = f"{body['tournamentName']} round {body['roundNumber']} model {body['modelName']}"
        if delivery.ok:
            logger.info("submission webhook of %s: %s answered %s", where, notice.url, delivery.status)
        else:
            logger.warning("submission webhook of %s failed: %s: %s", where, notice.url, delivery.error)
        with self._lock:
            self._recent.append(delivery)
        return delivery

    def _forget(self, future: Future[WebhookDelivery]) -> None:
        with self._lock:
            self._pending.discard(future)

    def deliveries(self) -> list[WebhookDelivery]:
        """Return the recent finished deliveries, oldest first."""
        with self._lock:
            return list(self._recent)

    def wait(self, timeout_seconds: float | None = None) -> bool:
        """Wait for the queued deliveries to finish; return True if none is left pending."""
        with self._lock:
            pending = set(self._pending)
        _, not_done = wait(pending, timeout=timeout_seconds)
        return not not_done

    def close(self) -> None:
        """Finish the queued deliveries and stop the pool's threads."""
        self._pool.shutdown(wait=True)


_process_sender: WebhookSender | None = None
_process_sender_lock = threading.Lock()


def webhook_sender(ctx: Context) -> WebhookSender:
    """Return the sender the context uses: one installed with ``use_webhook_sender``, else the process's."""
    installed = ctx.cache.get(SENDER_CACHE_KEY)
    if installed is not None:
        return installed
    global _process_sender
    with _process_sender_lock:
        if _process_sender is None:
            _process_sender = WebhookSender()
        return _process_sender


def use_webhook_sender(ctx: Context, sender: WebhookSender) -> WebhookSender:
    """Make the context send its webhooks through ``sender`` (e.g. with another timeout); return it."""
    ctx.cache[SENDER_CACHE_KEY] = sender
    return sender


def _iso(moment: datetime) -> str:
    return (moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)).astimezone(UTC).isoformat()


def round_opened_notices(
    uow: UnitOfWork, tournament: TournamentRef, number: int
) -> tuple[str | None, list[WebhookNotice]]:
    """Return the round's id and one notice per model of the tournament with a webhook (none unless open)."""
    loaded = load_tournament(uow, tournament)
    row = uow.rounds.get_by_number(loaded.id, number)
    if row is None or row.state != RoundState.OPEN.value:
        return None, []
    announced = {
        "tournament": loaded.id,
        "tournamentName": loaded.name,
        "roundNumber": row.number,
        "openTime": _iso(row.open_time),
        "closeStakingTime": _iso(row.close_staking_time),
        "closeTime": _iso(row.close_time),
    }
    notices = [
        WebhookNotice(
            model.submission_webhook,
            {**announced, "modelId": model.id, "modelName": model.name, "triggerId": uuid.uuid4().hex},
        )
        for model in uow.models.list(tournament_id=loaded.id)
        if model.submission_webhook
    ]
    return row.id, notices


def notify_round_opened(
    ctx: Context, tournament: TournamentRef, number: int
) -> list[Future[WebhookDelivery]]:
    """Queue the round's notices to its models' webhooks (call after the open committed); never raise."""
    try:
        round_id, notices = run_transaction(
            ctx.engine, lambda uow: round_opened_notices(uow, tournament, number), read_only=True
        )
        if round_id is None or not notices:
            return []
        sender = webhook_sender(ctx)
        return sender.send(notices) if sender.first_announcement(round_id) else []
    except Exception:  # announcing is best effort: the round is open whatever happens here
        logger.exception("submission webhooks of %s round %s could not be queued", tournament, number)
        return []
