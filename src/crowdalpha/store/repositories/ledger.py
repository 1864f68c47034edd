"""The token ledger's rows: accounts with cached balances, transactions with outcomes, entries, releases.

Writers lock the accounts they touch first (``SELECT … FOR UPDATE`` on PostgreSQL, in name order so
two writers never wait on each other in a cycle; SQLite's ``BEGIN IMMEDIATE`` already serialises
writers), then read balances, then write: a balance is never updated from a stale read.

Operations are written in bulk (:meth:`LedgerRepository.record_many`): one ``INSERT … RETURNING`` for
the transactions, one ``executemany`` for their entries and one for the cached balances they change,
so a round's ten thousand payouts cost a few statements, not ten thousand round trips. Statements
that name many rows are cut into chunks that stay under SQLite's and PostgreSQL's bound-parameter
limits.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import bindparam, func, insert, select, update
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
    Model,
    ReleaseState,
    Round,
    RoundState,
    StakeRelease,
    Submission,
)

IDEMPOTENCY_KEY_CONSTRAINT = "uq_ledger_transactions_idempotency_key"
# rows per multi-row statement: 5 parameters a row stays far below SQLite's 32,766 bound parameters
CHUNK_ROWS = 1000

T = TypeVar("T")


def chunks(items: Sequence[T], size: int = CHUNK_ROWS) -> Iterator[Sequence[T]]:
    """Yield ``items`` in consecutive slices of at most ``size``."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


@dataclass(frozen=True)
class NewTransaction:
    """An operation to record under its key: applied with ``entries``, or rejected with (rule, detail)."""

    idempotency_key: str
    operation: str
    request: Mapping[str, Any]
    entries: Sequence[Entry] = ()
    result: Mapping[str, Any] | None = None
    rejection: tuple[str, str] | None = None
    round_id: str | None = None
    model_id: str | None = None


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
        dialect = self.session.get_bind().dialect.name
        insert_for = postgresql_insert if dialect == "postgresql" else sqlite_insert
        balances: dict[str, int] = {}
        for chunk in chunks(wanted):  # chunks in name order: every writer still locks in one global order
            rows = []
            for name in chunk:
                kind, owner = parse_account(name)
                rows.append(
                    {"name": name, "kind": kind.value, "owner_id": owner, "balance": 0, "updated_at": now}
                )
            self.session.execute(
                insert_for(LedgerAccount).values(rows).on_conflict_do_nothing(index_elements=["name"])
            )
            query = (
                select(LedgerAccount.name, LedgerAccount.balance)
                .where(LedgerAccount.name.in_(chunk))
                .order_by(LedgerAccount.name)
                .with_for_update()
            )
            balances.update({name: balance for name, balance in self.session.execute(query)})
        return balances

    def balances(
        self, *, names: Collection[str] | None = None, owner_ids: Collection[str] | None = None
    ) -> list[LedgerAccount]:
        """Return accounts (all, or those named, or those of these owners), by name."""
        query = select(LedgerAccount)
        if owner_ids is not None:
            query = query.where(LedgerAccount.owner_id.in_(list(owner_ids)))
        if names is None:
            return list(self.session.scalars(query.order_by(LedgerAccount.name)))
        found: list[LedgerAccount] = []
        for chunk in chunks(sorted(set(names))):
            found.extend(self.session.scalars(query.where(LedgerAccount.name.in_(chunk))))
        return sorted(found, key=lambda account: account.name)

    def cached_balances(self) -> dict[str, int]:
        """Return every account's cached balance in nano."""
        query = select(LedgerAccount.name, LedgerAccount.balance)
        return {name: balance for name, balance in self.session.execute(query)}

    # -- transactions and entries ---------------------------------------------------------------------

    def get_transaction(self, idempotency_key: str) -> LedgerTransaction | None:
        """Return the operation recorded under this idempotency key, or None."""
        return self.get_transactions([idempotency_key]).get(idempotency_key)

    def get_transactions(self, idempotency_keys: Collection[str]) -> dict[str, LedgerTransaction]:
        """Return the operations recorded under any of these idempotency keys, by key."""
        found: dict[str, LedgerTransaction] = {}
        for chunk in chunks(sorted(set(idempotency_keys))):
            query = select(LedgerTransaction).where(LedgerTransaction.idempotency_key.in_(chunk))
            found.update({row.idempotency_key: row for row in self.session.scalars(query)})
        return found

    def existing_models(self, model_ids: Collection[str]) -> set[str]:
        """Return which of ``model_ids`` name a stored model."""
        found: set[str] = set()
        for chunk in chunks(sorted(set(model_ids))):
            found.update(self.session.scalars(select(Model.id).where(Model.id.in_(chunk))))
        return found

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
        new = NewTransaction(
            idempotency_key, operation, request, entries, result, rejection, round_id, model_id
        )
        return self.record_many([new], now=now)[0]

    def record_many(
        self, transactions: Sequence[NewTransaction], *, now: datetime
    ) -> list[LedgerTransaction]:
        """Return the recorded operations, in order: outcomes, entries and cached balances written in bulk.

        The accounts of every entry must be locked (:meth:`lock_accounts`) in this unit of work. A
        rejection writes no entries.
        """
        if any(item.rejection is not None and item.entries for item in transactions):
            raise ValueError("a rejected operation moves nothing")
        if not transactions:
            return []
        rows = [
            {
                "idempotency_key": item.idempotency_key,
                "operation": item.operation,
                "request": dict(item.request),
                "outcome": (LedgerOutcome.REJECTED if item.rejection else LedgerOutcome.APPLIED).value,
                "rule": item.rejection[0] if item.rejection else None,
                "detail": item.rejection[1] if item.rejection else None,
                "result": dict(item.result or {}),
                "round_id": item.round_id,
                "model_id": item.model_id,
                "created_at": now,
            }
            for item in transactions
        ]
        statement = insert(LedgerTransaction).returning(LedgerTransaction, sort_by_parameter_order=True)
        recorded = list(self.session.scalars(statement, rows))
        entry_rows = [
            {
                "transaction_id": row.id,
                "debit_account": entry.debit,
                "credit_account": entry.credit,
                "amount": entry.amount,
                "reason": entry.reason,
                "round_id": item.round_id,
                "model_id": item.model_id,
                "created_at": now,
            }
            for item, row in zip(transactions, recorded, strict=True)
            for entry in item.entries
        ]
        if entry_rows:
            self.session.execute(insert(LedgerEntry), entry_rows)
        changes = postings(entry for item in transactions for entry in item.entries)
        self._add_to_balances({name: change for name, change in changes.items() if change}, now=now)
        return recorded

    def _add_to_balances(self, changes: Mapping[str, int], *, now: datetime) -> None:
        """Add signed ``changes`` (nano) to the cached balances of locked accounts, in one executemany."""
        if not changes:
            return
        table = LedgerAccount.__table__
        statement = (
            update(table)
            .where(table.c.name == bindparam("account"))
            .values(balance=table.c.balance + bindparam("change"), updated_at=now)
        )
        self.session.execute(
            statement, [{"account": name, "change": change} for name, change in sorted(changes.items())]
        )
        for held in list(self.session.identity_map.values()):  # a Core update bypasses loaded objects
            if isinstance(held, LedgerAccount) and held.name in changes:
                self.session.expire(held)

    def entries_of(self, transaction_ids: Collection[int]) -> dict[int, list[LedgerEntry]]:
        """Return the entries of these transactions by transaction id, each in the order written."""
        found: dict[int, list[LedgerEntry]] = {}
        for chunk in chunks(sorted(set(transaction_ids))):
            query = select(LedgerEntry).where(LedgerEntry.transaction_id.in_(chunk)).order_by(LedgerEntry.id)
            for row in self.session.scalars(query):
                found.setdefault(row.transaction_id, []).append(row)
        return found

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
