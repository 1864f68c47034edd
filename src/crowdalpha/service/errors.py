"""The errors a use case raises for its caller to show, and how an entry point words any expected error.

Every expected failure names the rule it broke: :class:`ServiceError` carries a stable ``rule``
code; the store's and the rules' own errors are mapped to one by :func:`error_rule`. Entry points
(CLI, API) show :func:`user_message` and never a traceback for these.
"""

from __future__ import annotations

from crowdalpha.datasets.errors import DatasetError
from crowdalpha.settings import SettingsError
from crowdalpha.store.errors import (
    AlreadyExists,
    AuthenticationError,
    InvalidBlobKey,
    NotFound,
    PermissionDenied,
)
from crowdalpha.tournament.config import ConfigError
from crowdalpha.tournament.submissions import SubmissionError


class ServiceError(Exception):
    """A use case refused a request; ``rule`` is a stable code, the message ``<rule>: <detail>``."""

    def __init__(self, rule: str, detail: str) -> None:
        self.rule = rule
        self.detail = detail
        super().__init__(f"{rule}: {detail}")


_RULES: tuple[tuple[type[Exception], str], ...] = (
    (NotFound, "not_found"),
    (AlreadyExists, "already_exists"),
    (AuthenticationError, "invalid_api_key"),
    (PermissionDenied, "permission_denied"),
    (InvalidBlobKey, "invalid_name"),
    (ConfigError, "invalid_config"),
    (SettingsError, "invalid_setting"),
    (DatasetError, "invalid_dataset"),
)


def error_rule(error: BaseException) -> str | None:
    """Return the rule code of an expected error, or None for an unexpected one (a bug)."""
    if isinstance(error, ServiceError):
        return error.rule
    if isinstance(error, SubmissionError):
        return error.rule.value
    for kind, rule in _RULES:
        if isinstance(error, kind):
            return rule
    return None


def user_message(error: BaseException) -> str | None:
    """Return ``<rule>: <message>`` for an expected error (the rule once), or None for an unexpected one."""
    rule = error_rule(error)
    if rule is None:
        return None
    message = str(error)
    return message if message.startswith(f"{rule}:") else f"{rule}: {message}"
