"""The token ledger's rows: accounts with cached balances, transactions with outcomes, entries, releases.

Writers lock the accounts they touch first (``SELECT … FOR UPDATE`` on PostgreSQL, in name order so
two writers never wait on each other in a cycle; SQLite's ``BEGIN IMMEDIATE`` already serialises
writers), then read balances, then write: a balance is never updated from a stale read.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from crowdalpha.ledger.accounts import parse_account, releasing_account
from crowdalpha.ledger.entries import Entry, postings
from crowdalpha.ledger.invariants import RawEntry
from crowdalpha.store.schema import (
    LedgerAccount,
    LedgerEntry,
    LedgerOutcome,
    LedgerTransaction,
    ReleaseState,
    Round,
    RoundState,
    StakeRelease,
    Submission,
)

IDEMPOTENCY_KEY_CONSTRAINT = "uq_ledger_transactions_idempotency_key"


class LedgerRepository:
    """Ledger rows in one unit of work."""

    def __init__(self, session: Session) -> None:
        self.session = session

    # -- accounts -------------------------------------------------------------------------------------

    def lock_accounts(self, names: Collection[str], *, now: datetime) -> dict[str, int]:
        """Return the cached balances (nano) of ``names`` after creating missing ones and locking them all."""
        wanted = sorted(set(names))
        if not wanted:
            return {}
        rows = []
        for name in wanted:
            kind, owner = parse_account(name)
            rows.append(
                {"name": name, "kind": kind.value, "owner_id": owner, "balance": 0, "updated_at": now}
            )
        dialect = self.session.get_bind().dialect.name
        insert = postgresql_insert if dialect == "postgresql" else sqlite_insert
        self.session.execute(
            insert(LedgerAccount).values(rows).on_conflict_do_nothing(index_elements=["name"])
        )
        query = (
            select(LedgerAccount.name, LedgerAccount.balance)
            .where(LedgerAccount.name.in_(wanted))
            .order_by(LedgerAccount.name)
            .with_for_update()
        )
        return {name: balance for name, balance in self.session.execute(query)}

    def balances(
        self, *, names: Collection[str] | None = None, owner_ids: Collection[str] | None = None
    ) -> list[LedgerAccount]:
        """Return accounts (all, or those named, or those of these owners), by name."""
        query = select(LedgerAccount)
        if names is not None:
            query = query.where(LedgerAccount.name.in_(list(names)))
        if owner_ids is not None:
            query = query.where(LedgerAccount.owner_id.in_(list(owner_ids)))
        return list(self.session.scalars(query.order_by(LedgerAccount.name)))

    def cached_balances(self) -> dict[str, int]:
        """Return every account's cached balance in nano."""
        query = select(LedgerAccount.name, LedgerAccount.balance)
        return {name: balance for name, balance in self.session.execute(query)}

    # -- transactions and entries ---------------------------------------------------------------------

    def get_transaction(self, idempotency_key: str) -> LedgerTransaction | None:
        """Return the operation recorded under this idempotency key, or None."""
        query = select(LedgerTransaction).where(LedgerTransaction.idempotency_key == idempotency_key)
        return self.session.scalars(query).one_or_none()

    def find_transaction(self, operation: str) -> LedgerTransaction | None:
        """Return the first applied operation of a kind (e.g. the genesis mint), or None."""
        query = (
            select(LedgerTransaction)
            .where(
                LedgerTransaction.operation == operation,
                LedgerTransaction.outcome == LedgerOutcome.APPLIED.value,
            )
            .order_by(LedgerTransaction.id)
            .limit(1)
        )
        return self.session.scalars(query).first()

    def record(
        self,
        idempotency_key: str,
        operation: str,
        request: Mapping[str, Any],
        *,
        entries: Sequence[Entry] = (),
        result: Mapping[str, Any] | None = None,
        rejection: tuple[str, str] | None = None,
        round_id: str | None = None,
        model_id: str | None = None,
        now: datetime,
    ) -> LedgerTransaction:
        """Return the recorded operation: its outcome, its entries, and the cached balances they change.

        The accounts of ``entries`` must be locked (:meth:`lock_accounts`) in this unit of work. A
        rejection writes no entries.
        """
        if rejection is not None and entries:
            raise ValueError("a rejected operation moves nothing")
        transaction = LedgerTransaction(
            idempotency_key=idempotency_key,
            operation=operation,
            request=dict(request),
            outcome=(LedgerOutcome.REJECTED if rejection else LedgerOutcome.APPLIED).value,
            rule=rejection[0] if rejection else None,
            detail=rejection[1] if rejection else None,
            result=dict(result or {}),
            round_id=round_id,
            model_id=model_id,
            created_at=now,
        )
        self.session.add(transaction)
        self.session.flush()
        for entry in entries:
            self.session.add(
                LedgerEntry(
                    transaction_id=transaction.id,
                    debit_account=entry.debit,
                    credit_account=entry.credit,
                    amount=entry.amount,
                    reason=entry.reason,
                    round_id=round_id,
                    model_id=model_id,
                    created_at=now,
                )
            )
        for name, change in sorted(postings(entries).items()):
            if change:
                self.session.execute(
                    update(LedgerAccount)
                    .where(LedgerAccount.name == name)
                    .values(balance=LedgerAccount.balance + change, updated_at=now)
                )
        self.session.flush()
        return transaction

    def entries(self, transaction_id: int | None = None) -> list[LedgerEntry]:
        """Return the entries (of one transaction, or all), in the order written."""
        query = select(LedgerEntry)
        if transaction_id is not None:
            query = query.where(LedgerEntry.transaction_id == transaction_id)
        return list(self.session.scalars(query.order_by(LedgerEntry.id)))

    def entries_touching(self, names: Collection[str], *, limit: int | None = None) -> list[LedgerEntry]:
        """Return the entries that debit or credit any of ``names``, newest first, at most ``limit``."""
        wanted = list(names)
        query = (
            select(LedgerEntry)
            .where(LedgerEntry.debit_account.in_(wanted) | LedgerEntry.credit_account.in_(wanted))
            .order_by(LedgerEntry.id.desc())
        )
        if limit is not None:
            query = query.limit(limit)
        return list(self.session.scalars(query))

    def raw_entries(self) -> Iterable[RawEntry]:
        """Yield every entry as plain data for the invariant check, in the order written."""
        query = select(
            LedgerEntry.transaction_id,
            LedgerEntry.debit_account,
            LedgerEntry.credit_account,
            LedgerEntry.amount,
        ).order_by(LedgerEntry.id)
        rows = self.session.execute(query.execution_options(yield_per=10_000))
        for transaction_id, debit, credit, amount in rows:
            yield RawEntry(transaction_id, debit, credit, amount)

    def count_transactions(self) -> int:
        """Return how many operations are recorded (applied and rejected)."""
        return self.session.scalar(select(func.count()).select_from(LedgerTransaction)) or 0

    def count_entries(self) -> int:
        """Return how many entries are written."""
        return self.session.scalar(select(func.count()).select_from(LedgerEntry)) or 0

    # -- releases -------------------------------------------------------------------------------------

    def add_release(
        self,
        model_id: str,
        transaction_id: int,
        amount: int,
        *,
        drain: bool,
        due_round_id: str | None,
        now: datetime,
    ) -> StakeRelease:
        """Return a new pending release of ``amount`` nano of the model's stake."""
        release = StakeRelease(
            model_id=model_id,
            transaction_id=transaction_id,
            requested=amount,
            remaining=amount,
            drain=drain,
            due_round_id=due_round_id,
            state=ReleaseState.PENDING.value,
            requested_at=now,
        )
        self.session.add(release)
        self.session.flush()
        return release

    def pending_releases(
        self, *, model_id: str | None = None, due_round_id: str | None = None
    ) -> list[StakeRelease]:
        """Return pending releases (of a model and/or due at a round), oldest first."""
        query = select(StakeRelease).where(StakeRelease.state == ReleaseState.PENDING.value)
        if model_id is not None:
            query = query.where(StakeRelease.model_id == model_id)
        if due_round_id is not None:
            query = query.where(StakeRelease.due_round_id == due_round_id)
        return list(self.session.scalars(query.order_by(StakeRelease.id)))

    def set_release_remaining(self, release_id: int, remaining: int) -> None:
        """Record what is left of a pending release after a burn took part of it."""
        self.session.execute(
            update(StakeRelease).where(StakeRelease.id == release_id).values(remaining=remaining)
        )

    def complete_release(self, release_id: int, *, now: datetime) -> None:
        """Mark a release completed (its remaining amount went back to the wallet)."""
        self.session.execute(
            update(StakeRelease)
            .where(StakeRelease.id == release_id)
            .values(state=ReleaseState.COMPLETED.value, completed_at=now)
        )

    def pending_release_totals(self) -> dict[str, int]:
        """Return the nano pending release per ``releasing:`` account."""
        query = (
            select(StakeRelease.model_id, func.sum(StakeRelease.remaining))
            .where(StakeRelease.state == ReleaseState.PENDING.value)
            .group_by(StakeRelease.model_id)
        )
        return {releasing_account(model_id): int(total) for model_id, total in self.session.execute(query)}

    def last_active_round(self, model_id: str) -> Round | None:
        """Return the highest-numbered unresolved round in which the model has a selected submission."""
        query = (
            select(Round)
            .join(Submission, Submission.round_id == Round.id)
            .where(
                Submission.model_id == model_id,
                Submission.selected.is_(True),
                Round.state != RoundState.RESOLVED.value,
            )
            .order_by(Round.number.desc())
            .limit(1)
        )
        return self.session.scalars(query).first()
