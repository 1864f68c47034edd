"""Participants' models: one name per tournament, owned by an account."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from crowdalpha.store.errors import AlreadyExists, NotFound
from crowdalpha.store.schema import Account, Model, Tournament


class ModelRepository:
    """Models in one unit of work."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def create(self, account_id: str, tournament_id: int, name: str, *, now: datetime) -> Model:
        """Return a new model; raise AlreadyExists if the name is taken in the tournament."""
        if self.session.get(Account, account_id) is None:
            raise NotFound(f"no account with id {account_id!r}")
        if self.session.get(Tournament, tournament_id) is None:
            raise NotFound(f"no tournament with id {tournament_id}")
        if self.get_by_name(tournament_id, name) is not None:
            raise AlreadyExists(f"model {name!r} already exists in tournament {tournament_id}")
        model = Model(account_id=account_id, tournament_id=tournament_id, name=name, created_at=now)
        self.session.add(model)
        self.session.flush()
        return model

    def get(self, model_id: str) -> Model:
        """Return the model with this id; raise NotFound otherwise."""
        model = self.session.get(Model, model_id)
        if model is None:
            raise NotFound(f"no model with id {model_id!r}")
        return model

    def lock(self, model_id: str) -> None:
        """Hold the model's row lock until the transaction ends (PostgreSQL; SQLite serialises writers)."""
        if self.session.get_bind().dialect.name == "sqlite":
            return  # BEGIN IMMEDIATE already holds the database's only write lock
        self.session.execute(select(Model.id).where(Model.id == model_id).with_for_update())

    def get_by_name(self, tournament_id: int, name: str) -> Model | None:
        """Return the tournament's model with this name, or None."""
        query = select(Model).where(Model.tournament_id == tournament_id, Model.name == name)
        return self.session.scalars(query).one_or_none()

    def list(self, *, account_id: str | None = None, tournament_id: int | None = None) -> list[Model]:
        """Return models, optionally of one account and/or tournament, by name."""
        query = select(Model)
        if account_id is not None:
            query = query.where(Model.account_id == account_id)
        if tournament_id is not None:
            query = query.where(Model.tournament_id == tournament_id)
        return list(self.session.scalars(query.order_by(Model.tournament_id, Model.name)))

    def set_submission_webhook(self, model_id: str, url: str | None) -> Model:
        """Return the model after setting (or clearing, with None) its submission webhook URL."""
        model = self.get(model_id)
        model.submission_webhook = url
        self.session.flush()
        return model
