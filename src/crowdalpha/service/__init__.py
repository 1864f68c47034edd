"""Use cases: each public function is one thing an operator or participant does, in one transaction.

Every use case takes its dependencies explicitly — a :class:`Context` holding the database engine,
the blob store, the clock and the settings — and raises errors that name the broken rule
(:class:`ServiceError`, the rules' ``SubmissionError``, the store's ``NotFound`` …; see
:func:`user_message`). Entry points (CLI, API, simulator) only translate to and from them.
"""

from crowdalpha.service.accounts import (
    ApiKeyInfo,
    CreatedAccount,
    CreatedApiKey,
    authenticate,
    create_account,
    create_api_key,
    is_operator,
    list_api_keys,
    parse_token,
    revoke_api_key,
)
from crowdalpha.service.clock import HomeClock, clear_clock, home_clock, set_clock
from crowdalpha.service.context import Context, open_context
from crowdalpha.service.datasets import (
    DatasetFileInfo,
    OpenedDatasetFile,
    PublishedDataset,
    list_dataset_files,
    open_dataset_file,
    publish_dataset,
)
from crowdalpha.service.diagnostics import create_diagnostics, get_diagnostics
from crowdalpha.service.errors import ServiceError, error_rule, user_message
from crowdalpha.service.home import HomeReport, init_home
from crowdalpha.service.market import MarketCoverage, ingest_market, market_panel, market_through
from crowdalpha.service.models import create_model, list_models, public_models, set_submission_webhook
from crowdalpha.service.rounds import RoundStatus, TickReport, close_round, open_round, round_status, tick
from crowdalpha.service.scoring import ScoreDayReport, ScoredDay, score_day
from crowdalpha.service.submissions import (
    SubmissionInfo,
    SubmissionReceipt,
    list_submissions,
    submit_predictions,
)

__all__ = [
    "ApiKeyInfo",
    "Context",
    "CreatedAccount",
    "CreatedApiKey",
    "DatasetFileInfo",
    "HomeClock",
    "HomeReport",
    "MarketCoverage",
    "OpenedDatasetFile",
    "PublishedDataset",
    "RoundStatus",
    "ScoreDayReport",
    "ScoredDay",
    "ServiceError",
    "SubmissionInfo",
    "SubmissionReceipt",
    "TickReport",
    "authenticate",
    "clear_clock",
    "close_round",
    "create_account",
    "create_api_key",
    "create_diagnostics",
    "create_model",
    "error_rule",
    "get_diagnostics",
    "home_clock",
    "ingest_market",
    "init_home",
    "is_operator",
    "list_api_keys",
    "list_dataset_files",
    "list_models",
    "list_submissions",
    "market_panel",
    "market_through",
    "open_context",
    "open_dataset_file",
    "open_round",
    "parse_token",
    "public_models",
    "publish_dataset",
    "revoke_api_key",
    "round_status",
    "score_day",
    "set_clock",
    "set_submission_webhook",
    "submit_predictions",
    "tick",
    "user_message",
]
