"""The token ledger's use cases: genesis mint, grants, buybacks, stake changes, releases, payouts, checks.

Every operation carries an idempotency key. Its outcome — applied with its entries, or rejected
with the broken rule — is recorded in the same database transaction as the money it moves, so a
replay of the key returns the first answer (a rejection raises the same error again) and money
moves exactly once. Reusing a key for a different request is refused (``idempotency_key_reused``).

Ledger writes run at READ COMMITTED on PostgreSQL with the touched accounts locked first
(``SELECT … FOR UPDATE``), so concurrent writers queue on a balance instead of failing; SQLite's
``BEGIN IMMEDIATE`` serialises them. Two concurrent first uses of one key race on its unique
index; the loser runs again and finds the winner's answer.

The ``*_in(uow, …)`` variants run inside a caller's unit of work, so the round resolution can pay
out and complete releases in the same transaction as the state change that causes them. Many
operations can run as one batch (``operate_many_in``; a round's payouts: ``apply_payouts_in``):
their keys are looked up, their accounts locked and their outcomes, entries and balances written
in a few bulk statements, each operation still recorded under its own key exactly once.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError

from crowdalpha.ledger import (
    BURN,
    DEFAULT_CAP_NANO,
    SUPPLY,
    TREASURY,
    Entry,
    LedgerBreak,
    LedgerRejection,
    SupplyTotals,
    allocate_release_burn,
    buyback_entries,
    find_breaks,
    format_tokens,
    genesis_entries,
    grant_entries,
    payout_entries,
    postings,
    release_entries,
    release_request_entries,
    releasing_account,
    stake_account,
    stake_increase_entries,
    supply_totals,
    transaction_imbalance,
    wallet_account,
)
from crowdalpha.service._tournaments import TournamentRef, load_tournament
from crowdalpha.service.accounts import AccountRef, resolve_account
from crowdalpha.service.context import Context
from crowdalpha.service.errors import ServiceError, error_rule
from crowdalpha.store import Model, NotFound, PermissionDenied, UnitOfWork, run_transaction
from crowdalpha.store import Round as RoundRow
from crowdalpha.store.repositories.ledger import IDEMPOTENCY_KEY_CONSTRAINT, NewTransaction
from crowdalpha.store.schema import LedgerOutcome, LedgerTransaction

T = TypeVar("T")

GENESIS_KEY = "genesis"
MAX_KEY_CHARS = 255
_KEY_RACE_ATTEMPTS = 5


@dataclass(frozen=True)
class EntryView:
    """One entry of an operation: ``amount_nano`` moved from ``debit`` to ``credit``, and why."""

    debit: str
    credit: str
    amount_nano: int
    reason: str


@dataclass(frozen=True)
class LedgerReceipt:
    """The recorded outcome of one ledger operation; ``replayed`` when the key had been used already."""

    idempotency_key: str
    operation: str
    transaction_id: int
    outcome: str
    rule: str | None
    detail: str | None
    entries: tuple[EntryView, ...]
    result: dict[str, Any]
    replayed: bool

    @property
    def applied(self) -> bool:
        """Return True if the operation moved its money (False for a rejection)."""
        return self.outcome == LedgerOutcome.APPLIED.value


@dataclass(frozen=True)
class AccountBalance:
    """A ledger account and its balance, in nano-tokens and as token text."""

    name: str
    kind: str
    owner_id: str | None
    balance_nano: int
    balance: str


@dataclass(frozen=True)
class LedgerReport:
    """What ``check_ledger`` found: the broken invariants (none when ``ok``) and the supply totals (nano)."""

    ok: bool
    breaks: tuple[LedgerBreak, ...]
    totals: SupplyTotals
    transactions: int
    entries: int


@dataclass(frozen=True)
class ModelStake:
    """A model's stake in nano: at risk now, pending release, and its pending releases."""

    model_id: str
    stake_nano: int
    releasing_nano: int
    pending_releases: tuple[dict[str, Any], ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class AccountEntry:
    """An entry that touched one of an account's ledger accounts (numerapi's wallet transactions)."""

    transaction_id: int
    debit: str
    credit: str
    amount_nano: int
    reason: str
    round_id: str | None
    model_id: str | None
    created_at: datetime


@dataclass(frozen=True)
class Payout:
    """A model's payout for a round: ``amount_nano`` (positive paid, negative burned) under its key."""

    model_id: str
    amount_nano: int
    idempotency_key: str
    # a round's resolution burns at most what the model still holds: the at-risk stakes of up to 25
    # overlapping rounds can together exceed it (an operator's payout is refused instead)
    burn_at_most_held: bool = False


@dataclass
class _Plan:
    """What an operation's body decided: its entries, its result, and row work to do once recorded."""

    entries: list[Entry]
    result: dict[str, Any]
    after: Callable[[LedgerTransaction], None] | None = None


Body = Callable[[UnitOfWork], _Plan]


@dataclass(frozen=True)
class Operation:
    """One ledger operation of a batch: its key, kind, request, body and the round/model it refers to."""

    idempotency_key: str
    operation: str
    request: Mapping[str, Any]
    body: Body
    round_id: str | None = None
    model_id: str | None = None


# -- the machinery every operation shares ------------------------------------------------------------


def _require_key(idempotency_key: str) -> str:
    key = (idempotency_key or "").strip()
    if not key or len(key) > MAX_KEY_CHARS:
        raise ServiceError(
            "invalid_idempotency_key",
            f"an idempotency key is 1-{MAX_KEY_CHARS} characters; got {idempotency_key!r}",
        )
    return key


def _receipt(
    transaction: LedgerTransaction, entries: tuple[EntryView, ...], *, replayed: bool
) -> LedgerReceipt:
    return LedgerReceipt(
        idempotency_key=transaction.idempotency_key,
        operation=transaction.operation,
        transaction_id=transaction.id,
        outcome=transaction.outcome,
        rule=transaction.rule,
        detail=transaction.detail,
        entries=entries,
        result=dict(transaction.result),
        replayed=replayed,
    )


def _rejection(error: Exception) -> tuple[str, str] | None:
    if isinstance(error, LedgerRejection | ServiceError):
        return error.rule, error.detail
    rule = error_rule(error)
    return None if rule is None else (rule, str(error))


def operate_in(
    uow: UnitOfWork,
    idempotency_key: str,
    operation: str,
    request: Mapping[str, Any],
    body: Body,
    *,
    now: datetime,
    round_id: str | None = None,
    model_id: str | None = None,
) -> LedgerReceipt:
    """Return the outcome of ``operation`` under its key: the recorded one, or ``body``'s, recorded now."""
    single = Operation(idempotency_key, operation, request, body, round_id, model_id)
    return operate_many_in(uow, [single], now=now)[0]


def operate_many_in(
    uow: UnitOfWork,
    operations: Sequence[Operation],
    *,
    now: datetime,
    running: dict[str, int] | None = None,
    locked: Collection[str] = (),
) -> list[LedgerReceipt]:
    """Return each operation's outcome under its key, in order: the recorded one, or its body's, recorded now.

    Bodies run in order. ``running`` (optional) holds balances the bodies read: each plan's postings
    are added to it before the next body runs, so a batch sees its own earlier movements.
    ``locked`` names accounts the caller locked already in ``uow``.
    """
    keys = [_require_key(item.idempotency_key) for item in operations]
    if len(set(keys)) != len(keys):
        raise ServiceError(
            "idempotency_key_reused", "a batch of ledger operations repeats an idempotency key"
        )
    existing = uow.ledger.get_transactions(keys)
    replayed_entries = uow.ledger.entries_of([row.id for row in existing.values()]) if existing else {}
    receipts: list[LedgerReceipt | None] = []
    new: list[tuple[int, NewTransaction, _Plan | None]] = []
    for key, item in zip(keys, operations, strict=True):
        found = existing.get(key)
        if found is not None:
            if found.operation != item.operation or found.request != dict(item.request):
                raise ServiceError(
                    "idempotency_key_reused",
                    # The first request is not echoed: keys are global, and it may be someone else's.
                    f"idempotency key {key!r} was used for a different {found.operation} request;"
                    f" use a new key for this {item.operation}",
                )
            stored = tuple(
                EntryView(row.debit_account, row.credit_account, row.amount, row.reason)
                for row in replayed_entries.get(found.id, [])
            )
            receipts.append(_receipt(found, stored, replayed=True))
            continue
        plan: _Plan | None = None
        rejection: tuple[str, str] | None = None
        try:
            plan = item.body(uow)
        except Exception as error:
            rejection = _rejection(error)
            if rejection is None:
                raise
        if plan is not None:
            if transaction_imbalance(plan.entries) != 0:
                raise AssertionError(f"{item.operation} planned an unbalanced transaction: {plan.entries}")
            if running is not None:
                for name, change in postings(plan.entries).items():
                    running[name] = running.get(name, 0) + change
        recorded_as = NewTransaction(
            key,
            item.operation,
            item.request,
            entries=plan.entries if plan else (),
            result=plan.result if plan else None,
            rejection=rejection,
            round_id=item.round_id,
            model_id=item.model_id,
        )
        new.append((len(receipts), recorded_as, plan))
        receipts.append(None)
    if new:
        # Bodies lock what they read; this only creates (and locks) an account a body wrote without reading.
        written = {
            name for _, item, _ in new for entry in item.entries for name in (entry.debit, entry.credit)
        }
        uow.ledger.lock_accounts(written - set(locked), now=now)
        recorded = uow.ledger.record_many([item for _, item, _ in new], now=now)
        for (position, item, plan), row in zip(new, recorded, strict=True):
            if plan is not None and plan.after is not None:
                plan.after(row)
            planned = tuple(EntryView(e.debit, e.credit, e.amount, e.reason) for e in item.entries)
            receipts[position] = _receipt(row, planned, replayed=False)
    return [receipt for receipt in receipts if receipt is not None]


def _is_key_race(error: IntegrityError) -> bool:
    diag = getattr(error.orig, "diag", None)
    if getattr(diag, "constraint_name", None) == IDEMPOTENCY_KEY_CONSTRAINT:
        return True
    return "ledger_transactions.idempotency_key" in str(error.orig)


def run_ledger_transaction(engine: Engine, work: Callable[[UnitOfWork], T]) -> T:
    """Return ``work(uow)`` run as a ledger write: READ COMMITTED with locks, re-run after a key race."""
    for attempt in range(1, _KEY_RACE_ATTEMPTS + 1):
        try:
            return run_transaction(engine, work, isolation_level="READ COMMITTED")
        except IntegrityError as error:
            if attempt == _KEY_RACE_ATTEMPTS or not _is_key_race(error):
                raise
    raise AssertionError("unreachable: the last attempt returns or raises")


def _answer(receipt: LedgerReceipt) -> LedgerReceipt:
    if not receipt.applied:
        raise ServiceError(receipt.rule or "rejected", receipt.detail or "the ledger refused the operation")
    return receipt


def _operate(
    ctx: Context,
    idempotency_key: str,
    operation: str,
    request: Mapping[str, Any],
    body: Body,
    *,
    round_id: str | None = None,
    model_id: str | None = None,
) -> LedgerReceipt:
    now = ctx.now()
    receipt = run_ledger_transaction(
        ctx.engine,
        lambda uow: operate_in(
            uow, idempotency_key, operation, request, body, now=now, round_id=round_id, model_id=model_id
        ),
    )
    return _answer(receipt)


def _owned_model(uow: UnitOfWork, account: AccountRef, model_id: str) -> Model:
    owner = resolve_account(uow, account)
    model = uow.models.get(model_id)
    if model.account_id != owner.id:
        raise PermissionDenied(f"model {model_id!r} does not belong to account {owner.username!r}")
    return model


# -- operator operations ------------------------------------------------------------------------------


def mint_genesis(
    ctx: Context,
    *,
    amount_nano: int | None = None,
    cap_nano: int = DEFAULT_CAP_NANO,
    idempotency_key: str | None = None,
) -> LedgerReceipt:
    """Mint the genesis supply (default: the whole cap) into the treasury, once; return the receipt.

    The default key names the request (``genesis/<amount>/<cap>``): running the same mint again
    replays it, and a refused mint (e.g. over the cap) does not block a corrected one.
    """
    amount = cap_nano if amount_nano is None else amount_nano
    key = idempotency_key if idempotency_key is not None else f"{GENESIS_KEY}/{amount}/{cap_nano}"
    now = ctx.now()

    def body(uow: UnitOfWork) -> _Plan:
        balances = uow.ledger.lock_accounts([SUPPLY, TREASURY], now=now)
        entries = genesis_entries(balances, amount, cap_nano)
        return _Plan(entries, {"cap_nano": cap_nano, "minted_nano": amount})

    return _operate(ctx, key, "genesis", {"amount_nano": amount, "cap_nano": cap_nano}, body)


def grant(ctx: Context, account: AccountRef, amount_nano: int, *, idempotency_key: str) -> LedgerReceipt:
    """Move ``amount_nano`` from the treasury to the account's wallet; return the receipt."""
    now = ctx.now()
    username = account if isinstance(account, str) else account.username

    def body(uow: UnitOfWork) -> _Plan:
        wallet = wallet_account(resolve_account(uow, account).id)
        balances = uow.ledger.lock_accounts([TREASURY, wallet], now=now)
        return _Plan(grant_entries(balances, wallet, amount_nano), {"wallet": wallet})

    return _operate(ctx, idempotency_key, "grant", {"account": username, "amount_nano": amount_nano}, body)


def buyback(ctx: Context, amount_nano: int, *, idempotency_key: str) -> LedgerReceipt:
    """Return ``amount_nano`` burned tokens to the treasury (as Numerai's buybacks refill it); the receipt."""
    now = ctx.now()

    def body(uow: UnitOfWork) -> _Plan:
        balances = uow.ledger.lock_accounts([BURN, TREASURY], now=now)
        return _Plan(buyback_entries(balances, amount_nano), {})

    return _operate(ctx, idempotency_key, "buyback", {"amount_nano": amount_nano}, body)


# -- participants' stakes -----------------------------------------------------------------------------


@dataclass(frozen=True)
class StakeIncrease:
    """One stake increase of a batch: the model, the amount (nano) and its idempotency key."""

    model_id: str
    amount_nano: int
    idempotency_key: str


def increase_stakes(
    ctx: Context, account: AccountRef, increases: Sequence[StakeIncrease]
) -> list[LedgerReceipt]:
    """Move each amount from the owner's wallet to its model's stake, all in one transaction; the receipts.

    Each increase is recorded under its own key (a replay returns its first answer) and sees the
    wallet as the ones before it in the batch left it; one that breaks a rule (not the owner's
    model, the wallet cannot cover it) is rejected without stopping the others — check
    ``receipt.applied``.
    """
    now = ctx.now()

    def work(uow: UnitOfWork) -> list[LedgerReceipt]:
        try:
            wallet: str | None = wallet_account(resolve_account(uow, account).id)
        except Exception as error:
            if _rejection(error) is None:
                raise
            wallet = None  # every body records the rejection under its own key

        def owned_stake(item: StakeIncrease) -> str | None:
            # only the owner's models: a refused increase must not leave an empty stake account behind
            try:
                return stake_account(_owned_model(uow, account, item.model_id).id)
            except Exception as error:
                if _rejection(error) is None:
                    raise
                return None

        stakes = {name for name in map(owned_stake, increases) if name}
        names = stakes | ({wallet} if wallet else set())
        running = uow.ledger.lock_accounts(names, now=now)

        def body_of(item: StakeIncrease) -> Body:
            def body(uow: UnitOfWork) -> _Plan:
                model = _owned_model(uow, account, item.model_id)
                owner_wallet, stake = wallet_account(model.account_id), stake_account(model.id)
                return _Plan(stake_increase_entries(running, owner_wallet, stake, item.amount_nano), {})

            return body

        operations = [
            Operation(
                item.idempotency_key,
                "stake_increase",
                {"model_id": item.model_id, "amount_nano": item.amount_nano},
                body_of(item),
                model_id=item.model_id,
            )
            for item in increases
        ]
        return operate_many_in(uow, operations, now=now, running=running, locked=names)

    return run_ledger_transaction(ctx.engine, work)


def increase_stake(
    ctx: Context, account: AccountRef, model_id: str, amount_nano: int, *, idempotency_key: str
) -> LedgerReceipt:
    """Move ``amount_nano`` from the owner's wallet to the model's stake, at once; return the receipt."""
    [receipt] = increase_stakes(ctx, account, [StakeIncrease(model_id, amount_nano, idempotency_key)])
    return _answer(receipt)


def request_release_in(
    uow: UnitOfWork,
    account: AccountRef,
    model_id: str,
    amount_nano: int | None,
    *,
    idempotency_key: str,
    now: datetime,
) -> LedgerReceipt:
    """Record a release request (``amount_nano`` None drains) inside ``uow``; return the receipt.

    The stake moves aside at once (no longer at risk of earning) and returns to the wallet when the
    model's last active round at request time resolves; with no active round it returns now.
    """

    def body(uow: UnitOfWork) -> _Plan:
        model = _owned_model(uow, account, model_id)
        stake, releasing, wallet = (
            stake_account(model.id),
            releasing_account(model.id),
            wallet_account(model.account_id),
        )
        balances = uow.ledger.lock_accounts([stake, releasing, wallet], now=now)
        entries = release_request_entries(balances, stake, releasing, amount_nano)
        amount = entries[0].amount
        due = uow.ledger.last_active_round(model.id)
        if due is None:
            entries += release_entries(releasing, wallet, amount)
        result = {
            "amount_nano": amount,
            "drain": amount_nano is None,
            "due_round": None if due is None else due.number,
            "due_date": None if due is None or due.resolve_time is None else due.resolve_time.isoformat(),
            "completed": due is None,
        }

        def after(recorded: LedgerTransaction) -> None:
            release = uow.ledger.add_release(
                model.id,
                recorded.id,
                amount,
                drain=amount_nano is None,
                due_round_id=None if due is None else due.id,
                now=now,
            )
            if due is None:
                uow.ledger.set_release_remaining(release.id, 0)
                uow.ledger.complete_release(release.id, now=now)

        return _Plan(entries, result, after)

    request = {"model_id": model_id, "amount_nano": amount_nano}
    return operate_in(uow, idempotency_key, "release_request", request, body, now=now, model_id=model_id)


def request_release(
    ctx: Context, account: AccountRef, model_id: str, amount_nano: int | None, *, idempotency_key: str
) -> LedgerReceipt:
    """Ask to release ``amount_nano`` of a model's stake (None: drain all of it); return the receipt."""
    now = ctx.now()
    return _answer(
        run_ledger_transaction(
            ctx.engine,
            lambda uow: request_release_in(
                uow, account, model_id, amount_nano, idempotency_key=idempotency_key, now=now
            ),
        )
    )


def complete_releases_in(uow: UnitOfWork, round_row: RoundRow, *, now: datetime) -> list[LedgerReceipt]:
    """Return the receipts of the releases due at ``round_row``, completed inside ``uow`` (once each)."""
    due = uow.ledger.pending_releases(due_round_id=round_row.id)
    if not due:
        return []
    models = {release.model_id: uow.models.get(release.model_id) for release in due}
    names = [releasing_account(m.id) for m in models.values()] + [
        wallet_account(m.account_id) for m in models.values()
    ]
    uow.ledger.lock_accounts(names, now=now)
    receipts = []
    # Re-read after the locks: a burn may have taken part of a release meanwhile.
    for release in uow.ledger.pending_releases(due_round_id=round_row.id):
        model = models[release.model_id]
        amount = release.remaining

        def body(
            uow: UnitOfWork, release_id: int = release.id, model: Model = model, amount: int = amount
        ) -> _Plan:
            def after(_recorded: LedgerTransaction) -> None:
                uow.ledger.set_release_remaining(release_id, 0)
                uow.ledger.complete_release(release_id, now=now)

            entries = release_entries(releasing_account(model.id), wallet_account(model.account_id), amount)
            return _Plan(entries, {"release_id": release_id, "amount_nano": amount}, after)

        receipts.append(
            operate_in(
                uow,
                f"release/{release.id}",
                "release",
                {"release_id": release.id},
                body,
                now=now,
                round_id=round_row.id,
                model_id=model.id,
            )
        )
    return receipts


def complete_releases_for_round(
    ctx: Context, tournament: TournamentRef, round_number: int
) -> list[LedgerReceipt]:
    """Complete every release due at the tournament's round ``round_number``; return their receipts."""
    now = ctx.now()

    def work(uow: UnitOfWork) -> list[LedgerReceipt]:
        loaded = load_tournament(uow, tournament)
        row = uow.rounds.get_by_number(loaded.id, round_number)
        if row is None:
            raise NotFound(f"{loaded.name} has no round {round_number}")
        return complete_releases_in(uow, row, now=now)

    return run_ledger_transaction(ctx.engine, work)


# -- payouts ------------------------------------------------------------------------------------------


def payout_key(round_id: str, model_id: str) -> str:
    """Return the idempotency key of a model's payout for a round: one payout per (round, model)."""
    return f"payout/{round_id}/{model_id}"


def apply_payout_in(
    uow: UnitOfWork, model_id: str, round_id: str, amount_nano: int, idempotency_key: str, *, now: datetime
) -> LedgerReceipt:
    """Record a round's payout inside ``uow``: positive treasury → stake, negative burned; the receipt.

    A burn takes the stake first, then stake pending release (oldest request first); a rejection
    (e.g. ``treasury_insufficient``) is recorded and returned, not raised.
    """
    return apply_payouts_in(uow, round_id, [Payout(model_id, amount_nano, idempotency_key)], now=now)[0]


def apply_payouts_in(
    uow: UnitOfWork, round_id: str, payouts: Sequence[Payout], *, now: datetime
) -> list[LedgerReceipt]:
    """Record a round's payouts inside ``uow`` in one batch (see ``apply_payout_in``); the receipts, in order.

    The accounts of every payout are locked at once; each payout reads the balances as the earlier
    payouts of the batch left them, so the batch moves exactly what the payouts one by one would.
    """
    if not payouts:
        return []
    try:
        uow.rounds.get(round_id)
        round_error: Exception | None = None
    except NotFound as error:
        round_error = error
    known = (
        uow.ledger.existing_models({payout.model_id for payout in payouts}) if round_error is None else set()
    )
    names = {TREASURY, BURN} if known else set()
    for model_id in known:
        names.update((stake_account(model_id), releasing_account(model_id)))
    running = uow.ledger.lock_accounts(names, now=now)
    remaining: dict[int, int] = {}

    def body_of(payout: Payout) -> Body:
        def body(uow: UnitOfWork) -> _Plan:
            if round_error is not None:
                raise round_error
            if payout.model_id not in known:
                raise NotFound(f"no model with id {payout.model_id!r}")
            stake, releasing = stake_account(payout.model_id), releasing_account(payout.model_id)
            amount = payout.amount_nano
            if payout.burn_at_most_held and amount < 0:
                amount = max(amount, -(running.get(stake, 0) + running.get(releasing, 0)))
            entries = payout_entries(running, stake, releasing, amount)
            from_releasing = sum(entry.amount for entry in entries if entry.debit == releasing)
            changed = (
                allocate_release_burn(
                    [
                        (release.id, remaining.get(release.id, release.remaining))
                        for release in uow.ledger.pending_releases(model_id=payout.model_id)
                    ],
                    from_releasing,
                )
                if from_releasing
                else []
            )
            remaining.update(changed)  # a later payout of the batch burns from what this one left

            def after(_recorded: LedgerTransaction) -> None:
                for release_id, remaining in changed:
                    uow.ledger.set_release_remaining(release_id, remaining)

            result = {
                "amount_nano": amount,
                "requested_nano": payout.amount_nano,
                "burned_from_releasing_nano": from_releasing,
            }
            return _Plan(entries, result, after)

        return body

    operations = [
        Operation(
            payout.idempotency_key,
            "payout",
            {"model_id": payout.model_id, "round_id": round_id, "amount_nano": payout.amount_nano},
            body_of(payout),
            round_id=round_id,
            model_id=payout.model_id,
        )
        for payout in payouts
    ]
    return operate_many_in(uow, operations, now=now, running=running, locked=names)


def apply_payout(
    ctx: Context, model_id: str, round_id: str, amount_nano: int, idempotency_key: str
) -> LedgerReceipt:
    """Pay (positive) or burn (negative) ``amount_nano`` of a model's stake for a round; the receipt."""
    now = ctx.now()
    return _answer(
        run_ledger_transaction(
            ctx.engine,
            lambda uow: apply_payout_in(uow, model_id, round_id, amount_nano, idempotency_key, now=now),
        )
    )


# -- reading ------------------------------------------------------------------------------------------


def at_risk_stake_in(uow: UnitOfWork, model_id: str) -> int:
    """Return the model's stake at risk now in nano (excluding stake pending release): record it at close."""
    return at_risk_stakes_in(uow, [model_id])[model_id]


def at_risk_stakes_in(uow: UnitOfWork, model_ids: Sequence[str]) -> dict[str, int]:
    """Return each model's stake at risk now in nano (see ``at_risk_stake_in``), read in bulk."""
    held = {row.name: row.balance for row in uow.ledger.balances(names=[stake_account(m) for m in model_ids])}
    return {model_id: held.get(stake_account(model_id), 0) for model_id in model_ids}


def model_stake(ctx: Context, model_id: str) -> ModelStake:
    """Return a model's stake, stake pending release and pending releases (nano)."""

    def work(uow: UnitOfWork) -> ModelStake:
        uow.models.get(model_id)
        held = {
            row.name: row.balance
            for row in uow.ledger.balances(names=[stake_account(model_id), releasing_account(model_id)])
        }
        pending = tuple(
            {
                "id": release.id,
                "requested_nano": release.requested,
                "remaining_nano": release.remaining,
                "drain": release.drain,
                "due_round_id": release.due_round_id,
                "requested_at": release.requested_at,
            }
            for release in uow.ledger.pending_releases(model_id=model_id)
        )
        return ModelStake(
            model_id, held.get(stake_account(model_id), 0), held.get(releasing_account(model_id), 0), pending
        )

    return run_transaction(ctx.engine, work, read_only=True)


def balances(ctx: Context, account: AccountRef | None = None) -> list[AccountBalance]:
    """Return every ledger account's balance, or only an account's wallet and its models' stakes."""

    def work(uow: UnitOfWork) -> list[AccountBalance]:
        if account is None:
            rows = uow.ledger.balances()
        else:
            owner = resolve_account(uow, account)
            owners = [owner.id, *(model.id for model in uow.models.list(account_id=owner.id))]
            rows = uow.ledger.balances(owner_ids=owners)
        return [AccountBalance(r.name, r.kind, r.owner_id, r.balance, format_tokens(r.balance)) for r in rows]

    return run_transaction(ctx.engine, work, read_only=True)


def account_entries(ctx: Context, account: AccountRef, *, limit: int = 100) -> list[AccountEntry]:
    """Return the entries that moved the account's wallet or its models' stakes, newest first."""

    def work(uow: UnitOfWork) -> list[AccountEntry]:
        owner = resolve_account(uow, account)
        models = uow.models.list(account_id=owner.id)
        names = [wallet_account(owner.id)]
        names += [name for m in models for name in (stake_account(m.id), releasing_account(m.id))]
        return [
            AccountEntry(
                row.transaction_id,
                row.debit_account,
                row.credit_account,
                row.amount,
                row.reason,
                row.round_id,
                row.model_id,
                row.created_at,
            )
            for row in uow.ledger.entries_touching(names, limit=limit)
        ]

    return run_transaction(ctx.engine, work, read_only=True)


def check_ledger(ctx: Context) -> LedgerReport:
    """Return the ledger's invariant check (one consistent snapshot): breaks, supply totals, counts."""

    def work(uow: UnitOfWork) -> LedgerReport:
        genesis = uow.ledger.find_transaction("genesis")
        cap = int(genesis.result["cap_nano"]) if genesis is not None else DEFAULT_CAP_NANO
        cached = uow.ledger.cached_balances()
        pending = uow.ledger.pending_release_totals()
        breaks = find_breaks(uow.ledger.raw_entries(), cached, cap=cap, pending_releases=pending)
        return LedgerReport(
            ok=not breaks,
            breaks=tuple(breaks),
            totals=supply_totals(cached, cap),
            transactions=uow.ledger.count_transactions(),
            entries=uow.ledger.count_entries(),
        )

    return run_transaction(ctx.engine, work, read_only=True)
