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
from crowdalpha.service.ledger import (
    AccountBalance,
    LedgerReceipt,
    LedgerReport,
    ModelStake,
    apply_payout,
    apply_payout_in,
    at_risk_stake_in,
    balances,
    buyback,
    check_ledger,
    complete_releases_for_round,
    complete_releases_in,
    grant,
    increase_stake,
    mint_genesis,
    model_stake,
    request_release,
    request_release_in,
)
from crowdalpha.service.models import create_model, list_models, public_models, set_submission_webhook
from crowdalpha.service.rounds import RoundStatus, TickReport, close_round, open_round, round_status, tick
from crowdalpha.service.submissions import (
    SubmissionInfo,
    SubmissionReceipt,
    list_submissions,
    submit_predictions,
)

__all__ = [
    "AccountBalance",
    "ApiKeyInfo",
    "Context",
    "CreatedAccount",
    "CreatedApiKey",
    "DatasetFileInfo",
    "HomeClock",
    "HomeReport",
    "LedgerReceipt",
    "LedgerReport",
    "ModelStake",
    "OpenedDatasetFile",
    "PublishedDataset",
    "RoundStatus",
    "ServiceError",
    "SubmissionInfo",
    "SubmissionReceipt",
    "TickReport",
    "apply_payout",
    "apply_payout_in",
    "at_risk_stake_in",
    "authenticate",
    "balances",
    "buyback",
    "check_ledger",
    "clear_clock",
    "close_round",
    "complete_releases_for_round",
    "complete_releases_in",
    "create_account",
    "create_api_key",
    "create_diagnostics",
    "create_model",
    "error_rule",
    "get_diagnostics",
    "grant",
    "home_clock",
    "increase_stake",
    "init_home",
    "is_operator",
    "list_api_keys",
    "list_dataset_files",
    "list_models",
    "list_submissions",
    "mint_genesis",
    "model_stake",
    "open_context",
    "open_dataset_file",
    "open_round",
    "parse_token",
    "public_models",
    "publish_dataset",
    "request_release",
    "request_release_in",
    "revoke_api_key",
    "round_status",
    "set_clock",
    "set_submission_webhook",
    "submit_predictions",
    "tick",
    "user_message",
]
