"""The OpenAPI document tells the truth: every status a route answers, its media types and
the rules the server enforces; the server keeps to it (strict booleans, Allow of a 405)."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.api.conftest import FAST_HASHER, bearer, seed, token_for
from xnai.api.app import create_app
from xnai.bootstrap import Container

ERROR_BODY = "#/components/schemas/ErrorBody"


@pytest.fixture
def schema(client: TestClient) -> dict[str, Any]:
    r = client.get("/openapi.json")
    assert r.status_code == 200
    return r.json()


def operations(schema: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, op)
        for path, item in schema["paths"].items()
        for method, op in item.items()
    ]


@pytest.mark.parametrize(
    "path", ["/v1/users", "/v1/collections", "/v1/documents", "/v1/auth/api-keys"]
)
@pytest.mark.parametrize("method", ["OPTIONS", "PATCH"])
def test_a_405_allows_every_method_of_the_path(client: TestClient, path: str, method: str) -> None:
    r = client.request(method, path)
    assert r.status_code == 405
    assert {m.strip() for m in r.headers["allow"].split(",")} == {"GET", "POST"}
    assert r.json() == {"error": "Method Not Allowed"}


def test_a_405_on_a_templated_path_names_its_methods(client: TestClient) -> None:
    r = client.request("PATCH", "/v1/collections/team")
    assert r.status_code == 405
    assert r.headers["allow"] == "DELETE"
    assert client.request("GET", "/v1/query").headers["allow"] == "POST"


@pytest.mark.parametrize("value", [0, 1, "yes", "true", None])
@pytest.mark.parametrize(
    ("url", "body", "field"),
    [
        ("/v1/query", {"query": "coolant pump"}, "generate"),
        ("/v1/query", {"query": "coolant pump"}, "stream"),
        ("/v1/chat/completions", {"messages": [{"role": "user", "content": "pump?"}]}, "stream"),
        ("/v1/collections/default/grant", {"roles": ["viewer"]}, "write"),
        ("/v1/collections/default/revoke", {"roles": ["viewer"]}, "write"),
    ],
)
def test_booleans_are_strict(
    client: TestClient, url: str, body: dict[str, Any], field: str, value: object
) -> None:
    r = client.post(url, json={**body, field: value})
    assert r.status_code == 422, r.text
    assert r.json()["detail"][0]["loc"][-1] == field


def test_a_boolean_as_json_boolean_is_taken(client: TestClient) -> None:
    r = client.post("/v1/query", json={"query": "coolant pump", "generate": False})
    assert r.status_code == 200, r.text


def test_every_operation_documents_the_errors_of_its_access_rule(
    schema: dict[str, Any],
) -> None:
    for method, path, op in operations(schema):
        codes = set(op["responses"])
        rule = op["x-permission"]
        if rule != "public":
            assert "401" in codes, (method, path)
        if rule not in ("public", "enrolling"):
            assert "403" in codes, (method, path)
        for code, response in op["responses"].items():
            if code.startswith(("4", "5")) and path != "/ready":
                body = response["content"]["application/json"]["schema"]
                assert body == {"$ref": ERROR_BODY}, (method, path, code)
    assert "HTTPValidationError" not in schema["components"]["schemas"]


@pytest.mark.parametrize(
    ("method", "path", "codes"),
    [
        ("POST", "/v1/auth/login", {"200", "401", "422", "429", "503"}),
        ("POST", "/v1/users", {"201", "401", "403", "409", "422"}),
        ("DELETE", "/v1/documents/{doc_id}", {"200", "401", "403", "404"}),
        ("POST", "/v1/collections", {"201", "401", "403", "409", "422"}),
        ("POST", "/v1/query", {"200", "401", "403", "422", "429", "502", "503"}),
        ("POST", "/v1/chat/completions", {"200", "400", "401", "403", "429", "502", "503"}),
        ("GET", "/ready", {"200", "503"}),
    ],
)
def test_routes_document_what_they_answer(
    schema: dict[str, Any], method: str, path: str, codes: set[str]
) -> None:
    assert codes <= set(schema["paths"][path][method.lower()]["responses"])


@pytest.mark.parametrize("path", ["/v1/query", "/v1/chat/completions"])
def test_streams_are_documented_as_event_streams(schema: dict[str, Any], path: str) -> None:
    content = schema["paths"][path]["post"]["responses"]["200"]["content"]
    assert {"application/json", "text/event-stream"} <= set(content)


def test_a_stream_is_an_event_stream(client: TestClient) -> None:
    r = client.post("/v1/query", json={"query": "coolant pump", "stream": True})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/event-stream")


def test_the_collection_name_rule_is_in_the_schema_and_enforced(
    schema: dict[str, Any], client: TestClient
) -> None:
    name = schema["components"]["schemas"]["NewCollection"]["properties"]["name"]
    assert name["pattern"] == r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$"
    for bad in ["-team", "my team", "a/b", "team\n"]:
        assert client.post("/v1/collections", json={"name": bad}).status_code == 422, bad
    assert client.post("/v1/collections", json={"name": "team-1.a_b"}).status_code == 201


def password_field(schema: dict[str, Any], model: str, field: str) -> dict[str, Any]:
    prop = schema["components"]["schemas"][model]["properties"][field]
    return next(o for o in [prop, *prop.get("anyOf", [])] if o.get("type") == "string")


def test_the_password_minimum_in_the_schema_is_the_configured_one(
    make_container: Any,
) -> None:
    c: Container = make_container(enterprise={"security": {"password_min_length": 16}})
    c.auth.hasher = FAST_HASHER
    seed(c)
    with TestClient(create_app(c, warm=False), headers=bearer(token_for(c, "admin"))) as tc:
        schema = tc.get("/openapi.json").json()
        for model, field in [
            ("NewUser", "password"),
            ("PasswordReset", "password"),
            ("PasswordChange", "new_password"),
        ]:
            assert password_field(schema, model, field)["minLength"] == 16, model
        # Passwords that exist already are not held to today's rule.
        assert password_field(schema, "LoginRequest", "password")["minLength"] == 1
        # The server enforces the same minimum.
        short = {"username": "carol", "password": "Tq8#mWz2!vKp4xR"}  # 15 characters
        r = tc.post("/v1/users", json=short)
        assert r.status_code == 422 and "at least 16" in r.json()["error"]
        r = tc.post("/v1/users", json={**short, "password": short["password"] + "e"})
        assert r.status_code == 201, r.text


def test_the_default_password_minimum_is_published(schema: dict[str, Any]) -> None:
    assert password_field(schema, "NewUser", "password")["minLength"] == 12


@pytest.mark.parametrize(
    "messages",
    [
        [{"role": "system", "content": "be brief"}],
        [{"role": "assistant", "content": "hello"}],
        [{"role": "user", "content": "   "}],
        [{"role": "user"}],
        [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}],
        [{"role": "user", "content": [{"type": "text", "text": 5}]}],
        [{"role": "user", "content": "pump?"}, {"role": "user", "content": ""}],
    ],
)
def test_a_chat_without_user_text_is_refused_by_validation(
    client: TestClient, messages: list[dict[str, Any]]
) -> None:
    r = client.post("/v1/chat/completions", json={"messages": messages})
    assert r.status_code == 422, r.text


def test_the_user_message_rule_is_in_the_schema(schema: dict[str, Any]) -> None:
    schemas = schema["components"]["schemas"]
    messages = schemas["ChatCompletionRequest"]["properties"]["messages"]
    assert messages["contains"] == {
        "properties": {"role": {"const": "user"}},
        "required": ["role"],
    }
    user = next(o for o in schemas["ChatMessageIn"]["anyOf"] if "required" in o)
    assert user["properties"]["role"] == {"const": "user"}
    assert user["required"] == ["content"]


def test_a_chat_with_text_parts_is_answered(client: TestClient) -> None:
    parts = [{"type": "image_url", "image_url": {"url": "x"}}, {"type": "text", "text": "pump?"}]
    r = client.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": parts}]})
    assert r.status_code == 200, r.text
