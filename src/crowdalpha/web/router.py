"""The server-rendered web pages: data, rounds, the participant area and the operator console.

Routes only translate: read the session, call one service function, render a Jinja2 template.
Every page and form is reached through :class:`WebRoute`, which turns an expected error into an
HTML page naming the rule (with the operator API's status for that rule), sends anonymous
visitors of a protected page to the log-in form, and stores the session cookie when it changed.
Every POST carries the session's CSRF token (a form field, or the ``X-CSRF-Token`` header of the
drag-and-drop upload); a missing or wrong token is refused with 403 before anything runs.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qs, quote, unquote

from fastapi import APIRouter, Depends, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from fastapi.routing import APIRoute
from jinja2 import Environment, FileSystemLoader, select_autoescape

from crowdalpha.api.dependencies import get_service
from crowdalpha.api.operator import error_body, status_of_rule
from crowdalpha.ledger.accounts import wallet_account
from crowdalpha.ledger.amounts import AmountError, parse_tokens
from crowdalpha.service import (
    Context,
    ServiceError,
    close_round,
    create_api_key,
    list_api_keys,
    list_models,
    open_round,
    revoke_api_key,
    round_status,
    submit_predictions,
    user_message,
)
from crowdalpha.service.clock import parse_duration
from crowdalpha.service.errors import error_rule
from crowdalpha.service.ledger import account_entries, balances, increase_stake, model_stake, request_release
from crowdalpha.service.web_auth import WebAccount, log_in, session_account
from crowdalpha.service.web_console import retry_job
from crowdalpha.service.web_leaderboard import PAGE_SIZE, leaderboard_page
from crowdalpha.service.web_overview import home_overview, model_overview, round_overview
from crowdalpha.service.web_queries import (
    account_submissions,
    dataset_catalog,
    job_table,
    list_rounds,
    tournament_summaries,
)
from crowdalpha.store import PermissionDenied
from crowdalpha.store.schema import PARTICIPANT_SCOPES
from crowdalpha.web.charts import cumulative_chart, histogram
from crowdalpha.web.formatting import duration, filesize, percent, score, tokens, when
from crowdalpha.web.sessions import COOKIE_NAME, SESSION_TTL_SECONDS, SessionSigner, WebSession

logger = logging.getLogger(__name__)

TEMPLATES_DIR = Path(__file__).parent / "templates"
STATIC_DIR = Path(__file__).parent / "static"
MAX_FORM_BYTES = 64 * 1024
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
CSRF_MESSAGE = "csrf_failed: the form's CSRF token is missing or wrong; reload the page and try again"
LOGIN_REFUSALS = {"invalid_login": 401, "too_many_attempts": 429}
"""The HTTP status of a refused log-in by its rule (a wrong password, or a locked log-in)."""
OPERATOR_ONLY_MESSAGE = "permission_denied: the operator console is for operator accounts only"

templates = Environment(loader=FileSystemLoader(TEMPLATES_DIR), autoescape=select_autoescape(["html"]))


templates.filters.update(
    when=when, filesize=filesize, duration=duration, tokens=tokens, score=score, percent=percent
)


@dataclass(frozen=True)
class Refusal:
    """How an expected error is shown: its rule, the HTTP status for it, the message naming the rule."""

    rule: str
    status_code: int
    message: str


def refusal_of(error: Exception) -> Refusal:
    """Return how an expected error is shown; re-raise an unexpected one (a bug)."""
    rule = error_rule(error)
    if rule is None:
        raise error
    return Refusal(rule, status_of_rule(rule), user_message(error) or rule)


class LoginRequired(Exception):
    """An anonymous visitor asked for a page of the participant area or the operator console."""


class CsrfRejected(Exception):
    """A POST without this session's CSRF token."""


@dataclass
class Page:
    """One request's web state: the session (replaced on log-in/out), the logged-in account, the signer."""

    signer: SessionSigner
    session: WebSession
    viewer: WebAccount | None

    @property
    def csrf_token(self) -> str:
        """Return the token the page's forms send back."""
        return self.signer.csrf_token(self.session)

    def start(self, session: WebSession, viewer: WebAccount | None) -> None:
        """Replace the session (its cookie is stored with the response) and the viewer."""
        self.session = session
        self.viewer = viewer


def render(page: Page | None, template: str, status_code: int = 200, **values: Any) -> HTMLResponse:
    """Return the template rendered with the page's viewer and CSRF token."""
    html = templates.get_template(template).render(
        viewer=None if page is None else page.viewer,
        csrf_token="" if page is None else page.csrf_token,
        **values,
    )
    return HTMLResponse(html, status_code=status_code)


SECURITY_HEADERS = {
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
"""Sent with every web page: never framed (clickjacking), never cached (a new key's secret is on one)."""


def _finish(request: Request, response: Response) -> None:
    """Add the security headers, and the session cookie when the session is new."""
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    page: Page | None = getattr(request.state, "web_page", None)
    if page is None or not page.session.is_new:
        return
    response.set_cookie(
        COOKIE_NAME,
        page.signer.dumps(page.session),
        max_age=SESSION_TTL_SECONDS,
        path="/",
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
    )


class WebRoute(APIRoute):
    """A web route: expected errors become HTML pages naming the rule; the session cookie is kept."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        """Return the route's handler wrapped with the web error pages and the cookie."""
        handle = super().get_route_handler()

        async def handle_page(request: Request) -> Response:
            try:
                response = await handle(request)
            except LoginRequired:
                response = RedirectResponse(f"/login?next={quote(request.url.path)}", status_code=303)
            except CsrfRejected:
                response = _error_page(request, 403, CSRF_MESSAGE)
            except Exception as error:
                if error_rule(error) is None:
                    logger.exception("web: %s %s failed", request.method, request.url.path)
                    response = _error_page(request, 500, "internal_error: internal server error")
                else:
                    refused = refusal_of(error)
                    response = _error_page(request, refused.status_code, refused.message)
            _finish(request, response)
            return response

        return handle_page


def _error_page(request: Request, status_code: int, message: str) -> HTMLResponse:
    page = getattr(request.state, "web_page", None)
    return render(page, "error.html", status_code, message=message, code=status_code)


router = APIRouter(route_class=WebRoute, include_in_schema=False)

Service = Annotated[Context, Depends(get_service)]


def get_page(request: Request, service: Service) -> Page:
    """Return the request's web state: its session (a new anonymous one if none) and logged-in account."""
    signer = SessionSigner(request.app.state.url_signer.key)
    session = signer.loads(request.cookies.get(COOKIE_NAME))
    viewer = None
    if session is None:
        session = signer.new_session()
    elif session.account_id is not None:
        account = session_account(service, session.account_id)
        if account is not None and signer.password_tag(account.password_hash) == session.password_tag:
            viewer = account
        else:
            session = signer.logged_out(session)
    page = Page(signer, session, viewer)
    request.state.web_page = page
    return page


PageState = Annotated[Page, Depends(get_page)]


def participant(page: PageState) -> WebAccount:
    """Return the logged-in account; anonymous visitors are sent to the log-in form."""
    if page.viewer is None:
        raise LoginRequired()
    return page.viewer


def operator(page: PageState) -> WebAccount:
    """Return the logged-in operator; anonymous visitors log in first, other accounts get 403."""
    viewer = participant(page)
    if not viewer.operator:
        raise PermissionDenied(OPERATOR_ONLY_MESSAGE)
    return viewer


Participant = Annotated[WebAccount, Depends(participant)]
Operator = Annotated[WebAccount, Depends(operator)]


class Form:
    """A posted ``application/x-www-form-urlencoded`` form whose CSRF token was checked."""

    def __init__(self, fields: dict[str, list[str]]) -> None:
        self.fields = fields

    def get(self, name: str, default: str = "") -> str:
        """Return the first value of a field (``default`` when absent)."""
        return self.fields.get(name, [default])[0]

    def getlist(self, name: str) -> list[str]:
        """Return every value of a field (ticked check boxes)."""
        return self.fields.get(name, [])


async def checked_form(request: Request, page: PageState) -> Form:
    """Return the posted form; raise CsrfRejected unless it carries the session's CSRF token."""
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise ServiceError("form_too_large", f"a form is at most {MAX_FORM_BYTES:,} bytes")
    fields = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
    if not page.signer.csrf_ok(page.session, fields.get(CSRF_FIELD, [""])[0]):
        raise CsrfRejected()
    return Form(fields)


CheckedForm = Annotated[Form, Depends(checked_form)]


def _safe_next(target: str) -> str:
    """Return a local path to go to after logging in (never another site)."""
    return target if target.startswith("/") and not target.startswith("//") and "\\" not in target else "/me"


# -- public pages --------------------------------------------------------------------------------------


@router.get("/", response_class=HTMLResponse)
def home_page(page: PageState, service: Service) -> HTMLResponse:
    """Return the home page: each tournament's open round with a countdown, rounds in scoring, totals."""
    overviews = home_overview(service)
    charts = {item.name: cumulative_chart([item.crowd_score, item.meta_model_score]) for item in overviews}
    return render(page, "home.html", tournaments=overviews, charts=charts, now=service.now())


def whole_number(text: str | None, name: str, default: int) -> int:
    """Return a query parameter as an integer ≥ 0; ``invalid_parameter`` naming it otherwise."""
    if text is None or text == "":
        return default
    if not text.isdigit():
        raise ServiceError("invalid_parameter", f"{name} must be a whole number ≥ 0; got {text[:40]!r}")
    return int(text)


@router.get("/leaderboard/{tournament}", response_class=HTMLResponse)
def leaderboard_route(
    tournament: str,
    page: PageState,
    service: Service,
    sort: str | None = None,
    order: str = "desc",
    search: str = "",
    offset: str | None = None,
    view: str = "model",
) -> HTMLResponse:
    """Return a page of the tournament's leaderboard, sorted by a column, searched, of models or accounts."""
    if order not in ("asc", "desc"):
        raise ServiceError("invalid_parameter", f"order must be asc or desc; got {order[:40]!r}")
    board = leaderboard_page(
        service,
        tournament,
        entity=view,
        sort=sort or None,
        descending=order == "desc",
        search=search[:100],
        offset=whole_number(offset, "offset", 0),
        limit=PAGE_SIZE,
    )
    names = [summary.name for summary in tournament_summaries(service)]
    return render(page, "leaderboard.html", board=board, tournaments=names)


@router.get("/models/{tournament}/{model_name}", response_class=HTMLResponse)
def model_page(tournament: str, model_name: str, page: PageState, service: Service) -> HTMLResponse:
    """Return a model's page: cumulative payout-score chart, rounds with daily scores, stakes, receipts."""
    overview = model_overview(service, tournament, model_name)
    return render(page, "model.html", model=overview, chart=cumulative_chart(overview.series))


@router.get("/data", response_class=HTMLResponse)
def data_page(page: PageState, service: Service, request: Request) -> HTMLResponse:
    """Return the data page: dataset versions and their files with sizes and signed download links."""
    signer = request.app.state.url_signer
    base_url = str(request.base_url)
    versions = dataset_catalog(service)
    links = {
        item.blob_key: signer.download_url(base_url, item.blob_key) for v in versions for item in v.files
    }
    return render(page, "data.html", versions=versions, links=links)


@router.get("/rounds/{tournament}", response_class=HTMLResponse)
def rounds_page(tournament: str, page: PageState, service: Service) -> HTMLResponse:
    """Return a tournament's rounds, newest first."""
    return render(page, "rounds.html", tournament=tournament, rounds=list_rounds(service, tournament))


@router.get("/rounds/{tournament}/{number}", response_class=HTMLResponse)
def round_page(
    tournament: str, number: int, page: PageState, service: Service, request: Request
) -> HTMLResponse:
    """Return a round's page: its state, the timeline of its times, its live data and submissions."""
    status = round_status(service, tournament, number)
    timeline = [
        ("Opens", status.open_time),
        ("Staking closes", status.close_staking_time),
        ("Late window closes", status.close_time),
        ("First score day", status.score_time),
        ("Resolves", status.resolve_time),
    ]
    overview = round_overview(service, tournament, number)
    histograms = {d.score: histogram(d.bin_edges, d.bin_counts) for d in overview.distributions}
    meta_link = None
    if overview.meta_model is not None:
        meta_link = request.app.state.url_signer.download_url(
            str(request.base_url), overview.meta_model.blob_key
        )
    return render(
        page,
        "round.html",
        status=status,
        timeline=timeline,
        overview=overview,
        histograms=histograms,
        meta_link=meta_link,
    )


# -- logging in and out --------------------------------------------------------------------------------


@router.get("/login", response_class=HTMLResponse)
def login_page(page: PageState, next: str = "/me") -> HTMLResponse:
    """Return the log-in form."""
    return render(page, "login.html", next=_safe_next(next), error=None)


@router.post("/login", response_class=HTMLResponse)
def login_submit(page: PageState, form: CheckedForm, service: Service) -> Response:
    """Log in with username and password (a new session), then go to ``next``; 401 with the form if wrong."""
    target = _safe_next(form.get("next", "/me"))
    try:
        account = log_in(service, form.get("username"), form.get("password"))
    except Exception as error:
        status_code = LOGIN_REFUSALS.get(error_rule(error) or "")
        if status_code is None:
            raise
        return render(page, "login.html", status_code, next=target, error=user_message(error))
    page.start(page.signer.new_session(account.id, account.password_hash), account)
    return RedirectResponse(target, status_code=303)


@router.post("/logout")
def logout_submit(page: PageState, form: CheckedForm) -> Response:
    """End the session's log-in and go home."""
    page.start(page.signer.logged_out(page.session), None)
    return RedirectResponse("/", status_code=303)


# -- the participant area ------------------------------------------------------------------------------


@router.get("/me", response_class=HTMLResponse)
def my_models_page(page: PageState, viewer: Participant, service: Service) -> HTMLResponse:
    """Return the account's models."""
    names = {summary.id: summary.name for summary in tournament_summaries(service)}
    return render(page, "models.html", models=list_models(service, viewer.username), tournaments=names)


def _keys_page(
    page: Page, service: Context, viewer: WebAccount, status_code: int = 200, **values: Any
) -> HTMLResponse:
    return render(
        page,
        "keys.html",
        status_code,
        keys=list_api_keys(service, viewer.username),
        scopes=[scope.value for scope in PARTICIPANT_SCOPES],
        **{"created": None, "error": None, **values},
    )


@router.get("/me/keys", response_class=HTMLResponse)
def my_keys_page(page: PageState, viewer: Participant, service: Service) -> HTMLResponse:
    """Return the account's active API keys and the form to create one."""
    return _keys_page(page, service, viewer)


@router.post("/me/keys", response_class=HTMLResponse)
def create_key_submit(
    page: PageState, viewer: Participant, form: CheckedForm, service: Service
) -> HTMLResponse:
    """Create an API key with the ticked scopes and show its secret this once."""
    try:
        created = create_api_key(service, viewer.username, form.get("name").strip(), form.getlist("scopes"))
    except Exception as error:
        refused = refusal_of(error)
        return _keys_page(page, service, viewer, refused.status_code, error=refused.message)
    return _keys_page(page, service, viewer, 201, created=created)


@router.post("/me/keys/{public_id}/revoke")
def revoke_key_submit(public_id: str, viewer: Participant, form: CheckedForm, service: Service) -> Response:
    """Revoke one of the account's API keys (another account's key is not found)."""
    revoke_api_key(service, viewer.username, public_id)
    return RedirectResponse("/me/keys", status_code=303)


@router.get("/me/submissions", response_class=HTMLResponse)
def my_submissions_page(page: PageState, viewer: Participant, service: Service) -> HTMLResponse:
    """Return the account's submissions with their receipts, and the drag-and-drop upload."""
    names = {summary.id: summary.name for summary in tournament_summaries(service)}
    return render(
        page,
        "submissions.html",
        models=list_models(service, viewer.username),
        tournaments=names,
        submissions=account_submissions(service, viewer.username),
    )


@router.post("/me/submissions/{model_id}")
async def upload_submission(model_id: str, request: Request, page: PageState, service: Service) -> Response:
    """Accept a raw-body upload for one of the account's models; answer its receipt or the refusal as JSON.

    The same use case as the API's upload (``submit_predictions``), so the same validation messages.
    """
    if not page.signer.csrf_ok(page.session, request.headers.get(CSRF_HEADER)):
        return JSONResponse(error_body("csrf_failed", CSRF_MESSAGE), status_code=403)
    if page.viewer is None:
        message = "not_logged_in: log in to upload a submission"
        return JSONResponse(error_body("not_logged_in", message), status_code=401)
    limit = service.settings.upload_limit_bytes
    parts: list[bytes] = []
    received = 0
    async for chunk in request.stream():
        parts.append(chunk)
        received += len(chunk)
        if received > limit:
            break  # the use case refuses it as too large, naming the limit
    filename = unquote(request.headers.get("X-Filename", "predictions.csv"))
    try:
        receipt = await run_in_threadpool(
            submit_predictions, service, page.viewer.username, model_id, filename, b"".join(parts)
        )
    except Exception as error:
        refused = refusal_of(error)
        return JSONResponse(error_body(refused.rule, refused.message), status_code=refused.status_code)
    return JSONResponse(
        {
            "submission_id": receipt.submission_id,
            "round_number": receipt.round_number,
            "filename": receipt.filename,
            "sha256": receipt.sha256,
            "size_bytes": receipt.size_bytes,
            "received_at": receipt.received_at.isoformat(),
            "status": receipt.status,
        },
        status_code=201,
    )


def _wallet_page(
    page: Page, service: Context, viewer: WebAccount, status_code: int = 200, **values: Any
) -> HTMLResponse:
    names = {summary.id: summary.name for summary in tournament_summaries(service)}
    models = list_models(service, viewer.username)
    held = {row.name: row.balance_nano for row in balances(service, viewer.username)}
    return render(
        page,
        "wallet.html",
        status_code,
        wallet_nano=held.get(wallet_account(viewer.id), 0),
        models=models,
        stakes={m.id: model_stake(service, m.id) for m in models},
        tournaments=names,
        entries=account_entries(service, viewer.username),
        model_names={m.id: m.name for m in models},
        operation_key=f"web/{secrets.token_urlsafe(16)}",
        **{"message": None, "error": None, **values},
    )


@router.get("/me/wallet", response_class=HTMLResponse)
def my_wallet_page(
    page: PageState, viewer: Participant, service: Service, message: str | None = None
) -> HTMLResponse:
    """Return the account's wallet, its models' stakes with the stake forms, and its transactions."""
    return _wallet_page(page, service, viewer, message=message)


def _stake_action(page: Page, service: Context, viewer: WebAccount, action: Callable[[], str]) -> Response:
    """Run a stake change; go back to the wallet with its message, or show the refusal there."""
    try:
        message = action()
    except Exception as error:
        refused = refusal_of(error)
        return _wallet_page(page, service, viewer, refused.status_code, error=refused.message)
    return RedirectResponse(f"/me/wallet?message={quote(message)}", status_code=303)


def _tokens_field(form: Form, name: str) -> int:
    """Return a posted token amount in nano-tokens; ``invalid_amount`` naming the field otherwise."""
    try:
        return parse_tokens(form.get(name).strip(), where=name)
    except AmountError as error:
        raise ServiceError(error.rule, error.detail) from None


def _operation_key(form: Form, model_id: str, operation: str) -> str:
    """Return the ledger idempotency key of a posted stake form (a resent form moves nothing twice)."""
    key = form.get("operation_key").strip()
    if not key.startswith("web/") or len(key) > 64:
        raise ServiceError(
            "invalid_operation_key", "the form's operation key is missing or malformed; reload the page"
        )
    return f"{key}/{operation}/{model_id}"


@router.post("/me/stakes/{model_id}/increase", response_class=HTMLResponse)
def increase_stake_submit(
    model_id: str, page: PageState, viewer: Participant, form: CheckedForm, service: Service
) -> Response:
    """Move tokens from the wallet to one of the account's models' stake."""

    def action() -> str:
        amount = _tokens_field(form, "amount")
        receipt = increase_stake(
            service,
            viewer.username,
            model_id,
            amount,
            idempotency_key=_operation_key(form, model_id, "increase"),
        )
        return f"staked {tokens(amount)} more (transaction {receipt.transaction_id})"

    return _stake_action(page, service, viewer, action)


@router.post("/me/stakes/{model_id}/release", response_class=HTMLResponse)
def release_stake_submit(
    model_id: str, page: PageState, viewer: Participant, form: CheckedForm, service: Service
) -> Response:
    """Ask to release part of (``amount``) or all (``drain``) of one of the account's models' stake."""

    def action() -> str:
        drain = form.get("drain") == "on"
        amount = None if drain else _tokens_field(form, "amount")
        receipt = request_release(
            service,
            viewer.username,
            model_id,
            amount,
            idempotency_key=_operation_key(form, model_id, "release"),
        )
        result = receipt.result
        when_back = "now" if result.get("completed") else f"when round {result.get('due_round')} resolves"
        return f"releasing {tokens(result.get('amount_nano'))}: back in the wallet {when_back}"

    return _stake_action(page, service, viewer, action)


# -- the operator console ------------------------------------------------------------------------------


def _console(
    page: Page,
    service: Context,
    status_code: int = 200,
    *,
    message: str | None = None,
    error: str | None = None,
) -> HTMLResponse:
    return render(
        page,
        "operator.html",
        status_code,
        jobs=job_table(service),
        tournaments=tournament_summaries(service),
        versions=dataset_catalog(service),
        message=message,
        error=error,
    )


@router.get("/operator", response_class=HTMLResponse)
def operator_page(
    page: PageState, viewer: Operator, service: Service, message: str | None = None
) -> HTMLResponse:
    """Return the operator console: the job table, round controls and dataset versions."""
    return _console(page, service, message=message)


def _console_action(page: Page, service: Context, action: Callable[[], str]) -> Response:
    """Run an operator action; go back to the console with its message, or show the refusal there."""
    try:
        message = action()
    except Exception as error:
        refused = refusal_of(error)
        return _console(page, service, refused.status_code, error=refused.message)
    return RedirectResponse(f"/operator?message={quote(message)}", status_code=303)


@router.post("/operator/rounds/{tournament}/open", response_class=HTMLResponse)
def open_round_submit(
    tournament: str, page: PageState, viewer: Operator, form: CheckedForm, service: Service
) -> Response:
    """Open the tournament's round (on the calendar, or now closing after the form's ``close_in``)."""
    close_in = form.get("close_in").strip()

    def action() -> str:
        status = open_round(service, tournament, close_in=parse_duration(close_in) if close_in else None)
        return f"{status.tournament} round {status.number} is open"

    return _console_action(page, service, action)


@router.post("/operator/rounds/{tournament}/close", response_class=HTMLResponse)
def close_round_submit(
    tournament: str, page: PageState, viewer: Operator, form: CheckedForm, service: Service
) -> Response:
    """Close the tournament's open round now."""

    def action() -> str:
        status = close_round(service, tournament)
        return f"{status.tournament} round {status.number} is closed"

    return _console_action(page, service, action)


@router.post("/operator/jobs/retry", response_class=HTMLResponse)
def retry_job_submit(page: PageState, viewer: Operator, form: CheckedForm, service: Service) -> Response:
    """Put a failed job back to pending for the next tick."""
    key = form.get("key")

    def action() -> str:
        retry_job(service, key)
        return f"job {key} will run at the next tick"

    return _console_action(page, service, action)
