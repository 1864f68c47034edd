"""Looking up a tournament and its rules inside a unit of work (shared by the use cases)."""

from __future__ import annotations

import copy
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
    # Comparing the stored document with the one parsed last costs a fraction of writing it out as
    # text again (the key of ``parsed_config``), and every upload loads its tournament.
    last = _LAST_LOADED.get(row.id)
    if last is not None and last[0] == row.config and last[1].name == row.name:
        return last[1]
    loaded = LoadedTournament(
        id=row.id, name=row.name, config=parsed_config(json.dumps(row.config, sort_keys=True))
    )
    _LAST_LOADED[row.id] = (copy.deepcopy(row.config), loaded)
    return loaded


_LAST_LOADED: dict[int, tuple[object, LoadedTournament]] = {}
"""Per tournament id: the stored config document last loaded (a private copy) and what it loaded as."""


@lru_cache(maxsize=64)
def parsed_config(config_json: str) -> TournamentConfig:
    """Return the (frozen) TournamentConfig of a stored config's JSON text, parsed once per distinct text.

    Every request loads its tournament; building the dataclasses from the stored document costs more
    than the rest of a small read, and the document changes only when the operator edits the rules.
    """
    return config_from_dict(json.loads(config_json))
