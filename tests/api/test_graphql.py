"""GraphQL transport rules numerapi depends on: HTTP 200 with GraphQL errors, messages naming the rule."""

from __future__ import annotations

import requests

from crowdalpha.service.uploads import upload_name


def post(base_url: str, query: str) -> requests.Response:
    return requests.post(f"{base_url}/graphql", json={"query": query, "variables": {}}, timeout=10)


def test_an_invalid_query_is_a_graphql_error_with_http_200(base_url: str) -> None:
    response = post(base_url, "{ noSuchField(limit: 1) { username } }")
    assert response.status_code == 200
    [error] = response.json()["errors"]
    assert error["message"] == "Cannot query field 'noSuchField' on type 'Query'."


def test_a_files_only_app_answers_that_it_has_no_database(base_url: str) -> None:
    response = post(base_url, "{ rounds(tournament: 8, number: 0) { number } }")
    assert response.status_code == 200
    assert response.json()["errors"][0]["message"] == (
        "no_database: this server runs without a database (files only)"
    )


def test_upload_names_become_one_safe_key_segment() -> None:
    assert upload_name("predictions.csv") == "predictions.csv"
    assert upload_name("../../etc/passwd") == "passwd"
    assert upload_name("C:\\Users\\me\\my preds (1).csv") == "my_preds_1_.csv"
    assert upload_name(".hidden") == "hidden"
    assert upload_name("") == "predictions.csv"
