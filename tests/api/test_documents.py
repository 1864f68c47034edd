"""The GraphQL document cache: a query text is parsed and validated once, its errors kept, bounded size."""

from __future__ import annotations

import graphql
import pytest
import requests

from crowdalpha.api import documents as documents_module
from crowdalpha.api.documents import DocumentCache
from crowdalpha.api.graphql import build_schema

VALID = "{ rounds(tournament: 8) { number } }"
INVALID = "{ noSuchField(limit: 1) { username } }"


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """Count the real parse and validate calls the cache makes."""
    counted = {"parse": 0, "validate": 0}

    def counting_parse(text: str) -> graphql.DocumentNode:
        counted["parse"] += 1
        return graphql.parse(text)

    def counting_validate(*arguments: object, **options: object) -> list[graphql.GraphQLError]:
        counted["validate"] += 1
        return graphql.validate(*arguments, **options)

    monkeypatch.setattr(documents_module, "parse", counting_parse)
    monkeypatch.setattr(documents_module, "validate", counting_validate)
    return counted


def test_a_query_text_seen_before_is_neither_parsed_nor_validated_again(calls: dict[str, int]) -> None:
    cache = DocumentCache()
    schema = build_schema()
    first = cache.parse(None, {"query": VALID})
    assert cache.validate(schema, first, graphql.specified_rules) == []
    second = cache.parse(None, {"query": VALID})
    assert second is first
    assert cache.validate(schema, second, graphql.specified_rules) == []
    assert calls == {"parse": 1, "validate": 1}


def test_the_errors_of_an_invalid_query_are_remembered_with_it(calls: dict[str, int]) -> None:
    cache = DocumentCache()
    schema = build_schema()
    messages = []
    for _ in range(3):
        document = cache.parse(None, {"query": INVALID})
        errors = cache.validate(schema, document, graphql.specified_rules)
        messages.append([error.message for error in errors])
    assert messages == [["Cannot query field 'noSuchField' on type 'Query'."]] * 3
    assert calls == {"parse": 1, "validate": 1}


def test_a_document_the_cache_did_not_parse_is_validated_every_time(calls: dict[str, int]) -> None:
    cache = DocumentCache()
    schema = build_schema()
    document = graphql.parse(INVALID)
    for _ in range(2):
        assert len(cache.validate(schema, document, graphql.specified_rules)) == 1
    assert calls["validate"] == 2


def test_the_cache_keeps_at_most_max_entries_texts_least_recently_used_out(calls: dict[str, int]) -> None:
    cache = DocumentCache(max_entries=2)
    texts = [f"{{ rounds(tournament: {number}) {{ number }} }}" for number in (8, 11, 12)]
    first = cache.parse(None, {"query": texts[0]})
    cache.parse(None, {"query": texts[1]})
    assert cache.parse(None, {"query": texts[0]}) is first  # now the most recently used
    cache.parse(None, {"query": texts[2]})  # evicts texts[1]
    assert len(cache) == 2
    assert calls["parse"] == 3
    assert cache.parse(None, {"query": texts[0]}) is first
    cache.parse(None, {"query": texts[1]})
    assert calls["parse"] == 4


def test_a_very_long_query_is_parsed_but_not_kept(calls: dict[str, int]) -> None:
    cache = DocumentCache(max_query_chars=len(VALID) - 1)
    assert cache.parse(None, {"query": VALID}) is not cache.parse(None, {"query": VALID})
    assert len(cache) == 0
    assert calls["parse"] == 2


def test_a_syntax_error_is_still_a_graphql_error_with_http_200(base_url: str) -> None:
    for _ in range(2):
        response = requests.post(f"{base_url}/graphql", json={"query": "{ rounds("}, timeout=10)
        assert response.status_code == 200
        [error] = response.json()["errors"]
        assert error["message"].startswith("Syntax Error")


def test_the_app_answers_a_repeated_invalid_query_with_the_same_error(base_url: str) -> None:
    bodies = [
        requests.post(f"{base_url}/graphql", json={"query": INVALID}, timeout=10).json() for _ in range(2)
    ]
    assert bodies[0] == bodies[1]
    assert bodies[0]["errors"][0]["message"] == "Cannot query field 'noSuchField' on type 'Query'."
