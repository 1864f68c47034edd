"""The database schema: one typed SQLAlchemy 2 declarative class per table.

Every timestamp is a timezone-aware UTC ``datetime`` (stored as ``timestamptz`` on PostgreSQL, as
UTC text on SQLite). Public entities that numerapi sees by id (accounts, models, rounds,
submissions) have UUID string ids; internal ones have integer ids. Tournament ids are numerapi's
(8 Classic, 11 Signals, 12 Crypto). Tournament configs are stored as JSON documents so the store
does not depend on the rules' classes. The first Alembic revision creates exactly this schema; a
test compares the two.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Dialect,
    Double,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from crowdalpha.ledger.accounts import AccountKind as LedgerAccountKind
from crowdalpha.tournament.rounds import RoundState
from crowdalpha.tournament.submissions import UploadKind

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

SELECTED_SUBMISSION_INDEX = "uq_submissions_selected_model_round"
"""Partial unique index: at most one selected submission per (model, round)."""


class Scope(StrEnum):
    """What an API key may do (numerapi's token scopes)."""

    UPLOAD_SUBMISSION = "upload_submission"
    STAKE = "stake"
    READ_SUBMISSION_INFO = "read_submission_info"
    READ_USER_INFO = "read_user_info"
    OPERATOR = "operator"
    """Not a numerapi scope: the operator REST API and console (only `account create --operator`)."""


PARTICIPANT_SCOPES: tuple[Scope, ...] = (
    Scope.UPLOAD_SUBMISSION,
    Scope.STAKE,
    Scope.READ_SUBMISSION_INFO,
    Scope.READ_USER_INFO,
)
"""The scopes a participant's key may hold (numerapi's)."""

ALL_SCOPES: tuple[Scope, ...] = PARTICIPANT_SCOPES
"""The scopes of a participant's first key: every numerapi scope."""


# The states are the rules room's own types; the store only persists them.
SubmissionStatus = UploadKind


class JobState(StrEnum):
    """Where an idempotent job is: pending → running → done, or failed."""

    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


def new_uuid() -> str:
    """Return a fresh random UUID as a 36-character string."""
    return str(uuid.uuid4())


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every backend; naive datetimes are refused on the way in."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Return the value in UTC (naive for SQLite, which stores no offset); refuse naive input."""
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"timestamps must be timezone-aware, got naive {value!r}")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Return the stored value as an aware UTC datetime."""
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _check_in(column: str, values: type[StrEnum]) -> str:
    """Return a CHECK expression restricting a string column to an enum's values."""
    quoted = ", ".join(f"'{member.value}'" for member in values)
    return f"{column} IN ({quoted})"


class Base(DeclarativeBase):
    """Declarative base with constraint naming conventions shared by the ORM and the migrations."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {  # noqa: RUF012 (SQLAlchemy reads this class attribute)
        datetime: UTCDateTime(),
        dict[str, Any]: JSON(),
        list[str]: JSON(),
    }

    def __repr__(self) -> str:
        """Return the class name and primary key, e.g. ``Round(id='…')``."""
        keys = ", ".join(
            f"{column.key}={getattr(self, column.key, None)!r}" for column in self.__mapper__.primary_key
        )
        return f"{type(self).__name__}({keys})"


class Account(Base):
    """A participant or operator account."""

    __tablename__ = "accounts"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_uuid)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    email: Mapped[str | None] = mapped_column(String(320))
    created_at: Mapped[datetime]


class ApiKey(Base):
    """An API key: public id in the clear, secret only as a salted scrypt hash, and its scopes."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    public_id: Mapped[str] = mapped_column(String(32), unique=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    secret_hash: Mapped[str] = mapped_column(String(255))
    scopes: Mapped[list[str]]
    created_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]


class Tournament(Base):
    """A tournament (numerapi id 8, 11 or 12) and its rules as a JSON document."""

    __tablename__ = "tournaments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    name: Mapped[str] = mapped_column(String(32), unique=True)
    config: Mapped[dict[str, Any]]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class Model(Base):
    """A participant's model in one tournament; names are unique within a tournament."""

    __tablename__ = "models"
    __table_args__ = (UniqueConstraint("tournament_id", "name"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_uuid)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    tournament_id: Mapped[int] = mapped_column(ForeignKey("tournaments.id"))
    name: Mapped[str] = mapped_column(String(64))
    submission_webhook: Mapped[str | None] = mapped_column(String(2048))
    created_at: Mapped[datetime]


class DatasetVersion(Base):
    """A published dataset version of a tournament (e.g. ``v5.2``)."""

    __tablename__ = "dataset_versions"
    __table_args__ = (UniqueConstraint("tournament_id", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tournament_id: Mapped[int] = mapped_column(ForeignKey("tournaments.id"))
    name: Mapped[str] = mapped_column(String(32))
    published_at: Mapped[datetime]


class DatasetFile(Base):
    """One file of a dataset version, stored as a blob; private files are never served."""

    __tablename__ = "dataset_files"
    __table_args__ = (UniqueConstraint("dataset_version_id", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dataset_version_id: Mapped[int] = mapped_column(ForeignKey("dataset_versions.id", ondelete="CASCADE"))
    round_id: Mapped[str | None] = mapped_column(ForeignKey("rounds.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(255))
    blob_key: Mapped[str] = mapped_column(String(1024))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    is_public: Mapped[bool] = mapped_column(Boolean)


class Round(Base):
    """A round of a tournament: its state and the times numerapi reads (openTime, closeTime, …)."""

    __tablename__ = "rounds"
    __table_args__ = (
        UniqueConstraint("tournament_id", "number"),
        CheckConstraint(_check_in("state", RoundState), name="state"),
        Index(None, "tournament_id", "state"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_uuid)
    tournament_id: Mapped[int] = mapped_column(ForeignKey("tournaments.id"))
    number: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(16))
    open_time: Mapped[datetime]
    close_time: Mapped[datetime]
    close_staking_time: Mapped[datetime]
    score_time: Mapped[datetime | None]
    resolve_time: Mapped[datetime | None]
    data_datestamp: Mapped[int | None] = mapped_column(Integer)
    dataset_version_id: Mapped[int | None] = mapped_column(ForeignKey("dataset_versions.id"))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class LiveUniverse(Base):
    """The ids (Classic) or tickers/symbols (Signals, Crypto) a round's submissions must cover, as a blob."""

    __tablename__ = "live_universes"

    round_id: Mapped[str] = mapped_column(ForeignKey("rounds.id", ondelete="CASCADE"), primary_key=True)
    id_column: Mapped[str] = mapped_column(String(64))
    member_count: Mapped[int] = mapped_column(Integer)
    blob_key: Mapped[str] = mapped_column(String(1024))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]


class Submission(Base):
    """A valid uploaded prediction file of a model for a round; at most one per (model, round) is selected."""

    __tablename__ = "submissions"
    __table_args__ = (
        CheckConstraint(_check_in("status", SubmissionStatus), name="status"),
        Index(None, "model_id", "round_id", "received_at"),
        Index(
            SELECTED_SUBMISSION_INDEX,
            "model_id",
            "round_id",
            unique=True,
            sqlite_where=text("selected"),
            postgresql_where=text("selected"),
        ),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_uuid)
    model_id: Mapped[str] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"))
    round_id: Mapped[str] = mapped_column(ForeignKey("rounds.id", ondelete="CASCADE"), index=True)
    filename: Mapped[str] = mapped_column(String(255))
    blob_key: Mapped[str] = mapped_column(String(1024))
    sha256: Mapped[str] = mapped_column(String(64))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    received_at: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(16))
    selected: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    data_datestamp: Mapped[int | None] = mapped_column(Integer)


class Job(Base):
    """An idempotent unit of work keyed by ``tournament/round/step/date``, with a lease while it runs."""

    __tablename__ = "jobs"
    __table_args__ = (
        CheckConstraint(_check_in("state", JobState), name="state"),
        Index(None, "state", "due_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(255), unique=True)
    step: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]]
    state: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    lease_owner: Mapped[str | None] = mapped_column(String(128))
    lease_until: Mapped[datetime | None]
    due_at: Mapped[datetime]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    error: Mapped[str | None] = mapped_column(Text)


# -- the token ledger ---------------------------------------------------------------------------------


class LedgerOutcome(StrEnum):
    """What became of a ledger operation: applied (its entries are written) or rejected (nothing moved)."""

    APPLIED = "applied"
    REJECTED = "rejected"


class ReleaseState(StrEnum):
    """A stake release: pending until its due round resolves, then completed."""

    PENDING = "pending"
    COMPLETED = "completed"


class LedgerAccount(Base):
    """A ledger account (``treasury``, ``wallet:<id>``, ``stake:<id>``, …) and its cached balance in nano."""

    __tablename__ = "ledger_accounts"
    __table_args__ = (
        CheckConstraint(_check_in("kind", LedgerAccountKind), name="kind"),
        CheckConstraint("kind = 'supply' OR balance >= 0", name="balance_not_negative"),
    )

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    owner_id: Mapped[str | None] = mapped_column(String(36), index=True)
    balance: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[datetime]


class LedgerTransaction(Base):
    """One ledger operation under its idempotency key, and its outcome (a rejection too); immutable."""

    __tablename__ = "ledger_transactions"
    __table_args__ = (CheckConstraint(_check_in("outcome", LedgerOutcome), name="outcome"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(255), unique=True)
    operation: Mapped[str] = mapped_column(String(32))
    request: Mapped[dict[str, Any]]
    outcome: Mapped[str] = mapped_column(String(16))
    rule: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[str | None] = mapped_column(Text)
    result: Mapped[dict[str, Any]]
    round_id: Mapped[str | None] = mapped_column(String(36))
    model_id: Mapped[str | None] = mapped_column(String(36))
    created_at: Mapped[datetime]


class LedgerEntry(Base):
    """An immutable movement of ``amount`` nano-tokens from the debit account to the credit account."""

    __tablename__ = "ledger_entries"
    __table_args__ = (
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint("debit_account <> credit_account", name="two_accounts"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    transaction_id: Mapped[int] = mapped_column(ForeignKey("ledger_transactions.id"), index=True)
    debit_account: Mapped[str] = mapped_column(ForeignKey("ledger_accounts.name"), index=True)
    credit_account: Mapped[str] = mapped_column(ForeignKey("ledger_accounts.name"), index=True)
    amount: Mapped[int] = mapped_column(BigInteger)
    reason: Mapped[str] = mapped_column(String(32))
    round_id: Mapped[str | None] = mapped_column(String(36))
    model_id: Mapped[str | None] = mapped_column(String(36))
    created_at: Mapped[datetime]


class StakeRelease(Base):
    """A request to release stake: what is left of it completes when its due round resolves."""

    __tablename__ = "ledger_releases"
    __table_args__ = (
        CheckConstraint(_check_in("state", ReleaseState), name="state"),
        CheckConstraint("remaining >= 0 AND remaining <= requested", name="remaining_in_range"),
        Index(None, "model_id", "state"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_id: Mapped[str] = mapped_column(ForeignKey("models.id"))
    transaction_id: Mapped[int] = mapped_column(ForeignKey("ledger_transactions.id"))
    requested: Mapped[int] = mapped_column(BigInteger)
    remaining: Mapped[int] = mapped_column(BigInteger)
    drain: Mapped[bool] = mapped_column(Boolean)
    due_round_id: Mapped[str | None] = mapped_column(ForeignKey("rounds.id"), index=True)
    state: Mapped[str] = mapped_column(String(16))
    requested_at: Mapped[datetime]
    completed_at: Mapped[datetime | None]


class MarketIngest(Base):
    """One ingested batch of market-panel rows (``first_date`` … ``last_date``), stored as a Parquet blob."""

    __tablename__ = "market_ingests"
    __table_args__ = (UniqueConstraint("market", "last_date"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    market: Mapped[str] = mapped_column(String(32), default="equity", server_default="equity")
    """Which market store the batch belongs to: ``equity`` (Classic, Signals) or ``crypto``."""
    first_date: Mapped[date] = mapped_column(Date)
    last_date: Mapped[date] = mapped_column(Date)
    dates: Mapped[int] = mapped_column(Integer)
    rows: Mapped[int] = mapped_column(Integer)
    assets: Mapped[int] = mapped_column(Integer)
    columns: Mapped[list[str]]
    blob_key: Mapped[str] = mapped_column(String(1024))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    ingested_at: Mapped[datetime]


class RoundLiveData(Base):
    """Private, never served: a round's live market date and its live id → asset map (a blob)."""

    __tablename__ = "round_live_data"

    round_id: Mapped[str] = mapped_column(ForeignKey("rounds.id", ondelete="CASCADE"), primary_key=True)
    live_date: Mapped[date] = mapped_column(Date)
    member_count: Mapped[int] = mapped_column(Integer)
    blob_key: Mapped[str] = mapped_column(String(1024))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]


class RoundScoreDay(Base):
    """A score day of a round that was scored: day k, the market date it needed, and when it was scored."""

    __tablename__ = "round_score_days"
    __table_args__ = (UniqueConstraint("round_id", "day"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    round_id: Mapped[str] = mapped_column(ForeignKey("rounds.id", ondelete="CASCADE"))
    day: Mapped[int] = mapped_column(Integer)
    market_date: Mapped[date] = mapped_column(Date)
    submissions: Mapped[int] = mapped_column(Integer)
    scored_at: Mapped[datetime]


class SubmissionScore(Base):
    """One score of one submission on one score day: its value and percentile among on-time submissions."""

    __tablename__ = "submission_scores"
    __table_args__ = (
        UniqueConstraint("submission_id", "score", "day"),
        Index(None, "round_id", "score", "day"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    submission_id: Mapped[str] = mapped_column(ForeignKey("submissions.id", ondelete="CASCADE"))
    round_id: Mapped[str] = mapped_column(ForeignKey("rounds.id", ondelete="CASCADE"))
    score: Mapped[str] = mapped_column(String(32))
    day: Mapped[int] = mapped_column(Integer)
    value: Mapped[float] = mapped_column(Double)
    percentile: Mapped[float | None] = mapped_column(Double)
    scored_at: Mapped[datetime]


class RoundStake(Base):
    """A staked on-time submission of a round: its at-risk stake at close, then its payout at resolution."""

    __tablename__ = "round_stakes"
    __table_args__ = (CheckConstraint("at_risk_nano >= 0", name="at_risk_not_negative"),)

    round_id: Mapped[str] = mapped_column(ForeignKey("rounds.id", ondelete="CASCADE"), primary_key=True)
    submission_id: Mapped[str] = mapped_column(
        ForeignKey("submissions.id", ondelete="CASCADE"), primary_key=True
    )
    model_id: Mapped[str] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"), index=True)
    at_risk_nano: Mapped[int] = mapped_column(BigInteger)
    payout_score: Mapped[float | None] = mapped_column(Double)
    payout_nano: Mapped[int | None] = mapped_column(BigInteger)


class RoundResolution(Base):
    """A resolved round's payout summary: total at risk, payout factor, tokens paid and burned (nano)."""

    __tablename__ = "round_resolutions"

    round_id: Mapped[str] = mapped_column(ForeignKey("rounds.id", ondelete="CASCADE"), primary_key=True)
    total_at_risk_nano: Mapped[int] = mapped_column(BigInteger)
    payout_factor: Mapped[float] = mapped_column(Double)
    paid_nano: Mapped[int] = mapped_column(BigInteger)
    burned_nano: Mapped[int] = mapped_column(BigInteger)
    models: Mapped[int] = mapped_column(Integer)
    resolved_at: Mapped[datetime]


class AccountPassword(Base):
    """An account's web log-in password as an argon2id hash; an account without one cannot log in."""

    __tablename__ = "account_passwords"

    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    updated_at: Mapped[datetime]
    failed_logins: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    """Wrong passwords in a row since the last successful log-in."""
    locked_until: Mapped[datetime | None]
    """Log-ins are refused until then after too many wrong passwords in a row."""


class MetaModelScore(Base):
    """The round's meta model scored like a submission on one score day (its CORR of each CORR score)."""

    __tablename__ = "meta_model_scores"

    round_id: Mapped[str] = mapped_column(ForeignKey("rounds.id", ondelete="CASCADE"), primary_key=True)
    score: Mapped[str] = mapped_column(String(32), primary_key=True)
    day: Mapped[int] = mapped_column(Integer, primary_key=True)
    value: Mapped[float] = mapped_column(Double)
    scored_at: Mapped[datetime]


class LeaderboardSnapshot(Base):
    """A tournament's computed leaderboard table of models or accounts (Parquet), and what it was made of.

    ``version`` digests the inputs (resolved rounds, their score days); the table holds for the
    dates ``as_of`` … ``valid_through`` (until a round leaves a reputation or return window).
    """

    __tablename__ = "leaderboard_snapshots"

    tournament_id: Mapped[int] = mapped_column(
        ForeignKey("tournaments.id", ondelete="CASCADE"), primary_key=True
    )
    entity: Mapped[str] = mapped_column(String(16), primary_key=True)
    version: Mapped[str] = mapped_column(String(64))
    as_of: Mapped[date] = mapped_column(Date)
    valid_through: Mapped[date] = mapped_column(Date)
    computed_at: Mapped[datetime]
    table_parquet: Mapped[bytes] = mapped_column(LargeBinary)
