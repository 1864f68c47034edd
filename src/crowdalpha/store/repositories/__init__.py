"""Repositories: the operations the service layer needs, one class per aggregate, each over one session."""

from __future__ import annotations

from crowdalpha.store.repositories.accounts import AccountRepository, NewAccount, NewApiKey
from crowdalpha.store.repositories.datasets import DatasetFileSpec, DatasetRepository
from crowdalpha.store.repositories.jobs import JobRepository, job_key
from crowdalpha.store.repositories.market import MarketRepository
from crowdalpha.store.repositories.models import ModelRepository
from crowdalpha.store.repositories.resolution import NewStake, ResolutionRepository
from crowdalpha.store.repositories.rounds import RoundRepository
from crowdalpha.store.repositories.scores import NewScore, NewScoreColumn, ScoreRepository
from crowdalpha.store.repositories.submissions import SubmissionRepository
from crowdalpha.store.repositories.tournaments import TournamentRepository

__all__ = [
    "AccountRepository",
    "DatasetFileSpec",
    "DatasetRepository",
    "JobRepository",
    "MarketRepository",
    "ModelRepository",
    "NewAccount",
    "NewApiKey",
    "NewScore",
    "NewScoreColumn",
    "NewStake",
    "ResolutionRepository",
    "RoundRepository",
    "ScoreRepository",
    "SubmissionRepository",
    "TournamentRepository",
    "job_key",
]
