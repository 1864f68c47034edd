"""Looking up a tournament and its rules inside a unit of work (shared by the use cases)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache

from crowdalpha.store import NotFound, Tournament, UnitOfWork
from crowdalpha.tournament.config import TournamentConfig, config_from_dict

TournamentRef = str | int
"""A tournament as callers name it: ``"classic"`` or numerapi's id ``8``."""


@dataclass(frozen=True)
class LoadedTournament:
    """A stored tournament: its numerapi id, its name and its rules."""

    id: int
    name: str
    config: TournamentConfig


def load_tournament(uow: UnitOfWork, tournament: TournamentRef) -> LoadedTournament:
    """Return the tournament named (``classic``) or numbered (``8``) by ``tournament``; NotFound otherwise."""
    if isinstance(tournament, int) or (isinstance(tournament, str) and tournament.isdigit()):
        row = uow.tournaments.get(int(tournament))
    else:
        try:
            row = uow.tournaments.get_by_name(tournament)
        except NotFound:
            known = ", ".join(row.name for row in uow.tournaments.list())
            raise NotFound(f"no tournament named {tournament!r}; the tournaments are: {known}") from None
    return loaded_tournament(row)


def loaded_tournament(row: Tournament) -> LoadedTournament:
    """Return a stored tournament row with its rules parsed."""
    return LoadedTournament(
        id=row.id, name=row.name, config=parsed_config(json.dumps(row.config, sort_keys=True))
    )


@lru_cache(maxsize=64)
def parsed_config(config_json: str) -> TournamentConfig:
    """Return the (frozen) TournamentConfig of a stored config's JSON text, parsed once per distinct text.

    Every request loads its tournament; building the dataclasses from the stored document costs more
    than the rest of a small read, and the document changes only when the operator edits the rules.
    """
    return config_from_dict(json.loads(config_json))
