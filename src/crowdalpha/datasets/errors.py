"""The one error type of the dataset builders."""

from __future__ import annotations


class DatasetError(ValueError):
    """Input to a dataset builder broke a rule; the message starts with ``rule: …`` and names it."""


def rule_error(rule: str, detail: str) -> DatasetError:
    """Return a DatasetError whose message is ``rule: <rule> — <detail>``."""
    return DatasetError(f"rule: {rule} — {detail}")
