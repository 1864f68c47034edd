"""Parsed and validated GraphQL documents kept by query text: numerapi sends the same few queries again.

Parsing and validating a query costs about as much as answering it (graphql-core walks the whole
document once per validation rule), and numerapi's upload sends two fixed query texts per file. A
:class:`DocumentCache` is the ``query_parser`` and ``query_validator`` of the Ariadne app: a query
text seen before gets the same parsed document back, and that document's validation errors (usually
none) are remembered with it. The cache is bounded (least recently used out) and skips very long
texts, so clients sending ever-new queries cost memory for at most ``max_entries`` documents.
Documents are never mutated by execution, so sharing one between requests is safe.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from graphql import ASTValidationRule, DocumentNode, GraphQLError, GraphQLSchema, parse, validate

DEFAULT_MAX_ENTRIES = 256
DEFAULT_MAX_QUERY_CHARS = 20_000


_ValidationKey = tuple[GraphQLSchema, tuple[type[ASTValidationRule], ...], int | None]


@dataclass
class _Entry:
    """One cached query text: its document and its validation errors per (schema, rules, max errors)."""

    document: DocumentNode
    errors: dict[_ValidationKey, list[GraphQLError]] = field(default_factory=dict)


class DocumentCache:
    """A bounded cache of parsed GraphQL documents and their validation results, keyed by query text."""

    def __init__(
        self, *, max_entries: int = DEFAULT_MAX_ENTRIES, max_query_chars: int = DEFAULT_MAX_QUERY_CHARS
    ) -> None:
        self.max_entries = max_entries
        self.max_query_chars = max_query_chars
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._by_document: dict[int, _Entry] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        """Return the number of cached query texts."""
        return len(self._entries)

    def parse(self, _context: Any, data: dict[str, Any]) -> DocumentNode:
        """Return the parsed document of ``data["query"]`` (the cached one for a text seen before)."""
        text = data["query"]
        with self._lock:
            entry = self._entries.get(text)
            if entry is not None:
                self._entries.move_to_end(text)
                return entry.document
        document = parse(text)
        if len(text) <= self.max_query_chars:
            self._remember(text, document)
        return document

    def validate(
        self,
        schema: GraphQLSchema,
        document_ast: DocumentNode,
        rules: Collection[type[ASTValidationRule]] | None = None,
        max_errors: int | None = None,
        **options: Any,
    ) -> list[GraphQLError]:
        """Return the validation errors of a document (remembered for documents this cache parsed)."""
        arguments: dict[str, Any] = dict(options)
        if rules is not None:
            arguments["rules"] = rules
        if max_errors is not None:
            arguments["max_errors"] = max_errors
        with self._lock:
            entry = self._by_document.get(id(document_ast))
        if entry is None or entry.document is not document_ast or options:
            return validate(schema, document_ast, **arguments)
        key: _ValidationKey = (schema, tuple(rules or ()), max_errors)
        errors = entry.errors.get(key)
        if errors is None:
            errors = validate(schema, document_ast, **arguments)
            entry.errors[key] = errors
        return list(errors)

    def _remember(self, text: str, document: DocumentNode) -> None:
        with self._lock:
            if text in self._entries:
                return
            entry = _Entry(document)
            self._entries[text] = entry
            self._by_document[id(document)] = entry
            while len(self._entries) > self.max_entries:
                _, evicted = self._entries.popitem(last=False)
                self._by_document.pop(id(evicted.document), None)
