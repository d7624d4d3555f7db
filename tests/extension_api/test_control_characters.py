"""A NUL in any string field of any API request shape is a 422 naming the field, never
a 500 (PostgreSQL's text columns refuse NUL: asyncpg's CharacterNotInRepertoireError);
a C0 control in a label (a ticket's pipeline, stage, tag; a name) is a 422 as well. The
cases are derived from the OpenAPI document's request bodies, so a new shape or field is
covered by itself. Through the HTTP port, on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from extension_api.openapi import openapi_document
from extension_api.schemas._codec import RequestShape
from tests.pages.test_tickets import Desk
from tests.support.nul_sweep import NUL, desk_on_postgres
from tests.support.smtp_recorder import SmtpRecorder

_DOCUMENT = openapi_document("http://localhost")
_SCHEMAS: dict[str, Any] = _DOCUMENT["components"]["schemas"]


def _resolved(schema: dict[str, Any]) -> list[dict[str, Any]]:
    """The alternatives a property's schema allows, references followed."""
    if "$ref" in schema:
        return _resolved(_SCHEMAS[schema["$ref"].rsplit("/", 1)[1]])
    if "anyOf" in schema:
        return [s for alt in schema["anyOf"] for s in _resolved(alt)]
    return [schema]


def _nul_values(schema: dict[str, Any]) -> list[Any]:
    """A value with a NUL for each way the property takes a string (itself, a list of
    them, an object of them)."""
    values: list[Any] = []
    for alt in _resolved(schema):
        if alt.get("type") == "string":
            values.append(NUL)
        elif alt.get("type") == "array" and any(
                a.get("type") == "string" for a in _resolved(alt.get("items", {}))):
            values.append(["ok", NUL])
        elif alt.get("type") == "object":
            values.append({"key": NUL})
    return values[:1] + [v for v in values[1:] if not isinstance(v, str)]


def _cases() -> list[tuple[str, str, str, Any]]:
    found = []
    for path, operations in _DOCUMENT["paths"].items():
        for method, op in operations.items():
            body = op.get("requestBody", {}).get("content", {}).get("application/json")
            if not isinstance(op, dict) or body is None or "$ref" not in body["schema"]:
                continue
            shape = _SCHEMAS[body["schema"]["$ref"].rsplit("/", 1)[1]]
            for field, schema in shape.get("properties", {}).items():
                found += [(method.upper(), path, field, v) for v in _nul_values(schema)]
    return found


CASES = _cases()


def test_the_cases_cover_every_request_shape_with_a_string() -> None:
    """Not an empty parametrisation: the shapes the reviewer named are among them."""
    named = {(m, p, f) for m, p, f, _ in CASES}
    assert ("PATCH", "/api/v1/tickets/{id}", "pipeline") in named
    assert ("PATCH", "/api/v1/tickets/{id}", "tags") in named
    assert ("POST", "/api/v1/tickets/{id}/notes", "text") in named
    assert len(RequestShape.__subclasses__()) > 20 and len(CASES) > 60


@pytest.fixture(scope="module")
def pg_desk(tmp_path_factory: pytest.TempPathFactory,
            relay: SmtpRecorder) -> Iterator[tuple[Desk, int]]:
    with desk_on_postgres(tmp_path_factory.mktemp("pg-nul"), relay) as made:
        yield made


def _path(path: str, desk: Desk, ticket_id: int) -> str:
    """The path with ids of this portal's objects where it has them (else 404s, which
    must be 4xx too)."""
    ids = {"/api/v1/tickets/": ticket_id, "/api/v1/team-inboxes/": desk.inbox_id,
           "/api/v1/users/": desk.agent_ids[0], "/api/v1/agents/": desk.agent_ids[0]}
    given = next((v for prefix, v in ids.items() if path.startswith(prefix)), 1)
    return (path.replace("{id}", str(given)).replace("{rid}", str(desk.canned_id))
            .replace("{provider}", "google"))


def _client(desk: Desk, path: str) -> httpx.Client:
    """An agent's (a member of the ticket's inbox) for what only agents do."""
    if path.endswith(("/replies", "/notes", "/presence")):
        return desk.server.api(desk.agents[0].portal.user_token)
    return desk.api()


@pytest.mark.parametrize(("method", "path", "field", "value"), CASES,
                         ids=[f"{m} {p} {f}" for m, p, f, _ in CASES])
def test_a_nul_in_any_field_is_refused_not_a_500(
        pg_desk: tuple[Desk, int], method: str, path: str, field: str, value: Any) -> None:
    desk, ticket_id = pg_desk
    with _client(desk, path) as api:
        answer = api.request(method, _path(path, desk, ticket_id), json={field: value})
    assert 400 <= answer.status_code < 500, answer.text
    if answer.status_code == 422:
        assert answer.json()["error"]["message"].startswith(field), answer.text
    if path.startswith(("/api/v1/tickets/", "/api/v1/team-inboxes/")):
        assert answer.status_code == 422, answer.text  # it reached the shape


@pytest.mark.parametrize("field", ["pipeline", "stage"])
@pytest.mark.parametrize("control", ["\x00", "\x01", "\x1b", "\x1f", "\x0b"])
def test_a_control_character_in_a_ticket_label_is_a_422_naming_it(
        pg_desk: tuple[Desk, int], field: str, control: str) -> None:
    desk, ticket_id = pg_desk
    with desk.api() as api:
        answer = api.patch(f"/api/v1/tickets/{ticket_id}", json={field: f"a{control}b"})
        tags = api.patch(f"/api/v1/tickets/{ticket_id}", json={"tags": [f"t{control}"]})
    assert answer.status_code == 422, answer.text
    assert answer.json()["error"]["message"].startswith(f"{field}: ")
    assert tags.status_code == 422 and tags.json()["error"]["message"].startswith("tags[0]")
    assert desk.ticket(ticket_id)[field] != f"a{control}b"


def test_free_text_keeps_every_control_but_nul_and_labels_keep_tabs(
        pg_desk: tuple[Desk, int]) -> None:
    """A note stores what was typed (an escape, a form feed); a tab in a stage stays."""
    desk, ticket_id = pg_desk
    with _client(desk, "/notes") as agent, desk.api() as api:
        note = agent.post(f"/api/v1/tickets/{ticket_id}/notes",
                        json={"text": "see \x1b[1mbold\x1b[0m\x0cnext page"})
        stage = api.patch(f"/api/v1/tickets/{ticket_id}", json={"stage": "a\tb"})
    assert note.status_code == 201, note.text
    assert stage.status_code == 200, stage.text
    assert desk.ticket(ticket_id)["stage"] == "a\tb"


def _query_cases() -> list[tuple[str, str]]:
    """Every string query parameter of every GET operation the API documents."""
    return [(path, param["name"]) for path, operations in _DOCUMENT["paths"].items()
            for method, op in operations.items() if method == "get" and isinstance(op, dict)
            for param in op.get("parameters", [])
            if param.get("in") == "query"
            and any(s.get("type") == "string" for s in _resolved(param.get("schema", {})))]


QUERY_CASES = _query_cases()


@pytest.mark.parametrize(("path", "name"), QUERY_CASES,
                         ids=[f"{p}?{n}" for p, n in QUERY_CASES])
def test_a_nul_in_any_query_parameter_is_refused_not_a_500(
        pg_desk: tuple[Desk, int], path: str, name: str) -> None:
    desk, ticket_id = pg_desk
    with _client(desk, path) as api:
        answer = api.get(_path(path, desk, ticket_id), params={name: NUL})
    assert answer.status_code < 500, answer.text  # a callback redirects with its error
    if answer.status_code == 422:
        assert answer.json()["error"]["message"].startswith(f"{name}: "), answer.text
    if answer.status_code == 200:  # a filter nothing matches, never stored
        assert "\\u0000" not in answer.text
