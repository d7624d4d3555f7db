"""/openapi.json describes exactly the routed API, and real responses match it."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from email import policy
from email.message import EmailMessage
from typing import Any

import jsonschema
import pytest
from starlette.routing import Route

from extension_api.routes import routes
from tests.support.server import PortalAccount, Server

HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


@pytest.fixture(scope="module")
def document(server: Server) -> dict[str, Any]:
    with server.api(None) as api:
        response = api.get("/openapi.json")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    result: dict[str, Any] = response.json()
    return result


def routed_operations() -> set[tuple[str, str]]:
    """(path template, method) for every route; `{id:int}` becomes `{id}`, HEAD is implied."""
    operations = set()
    for route in routes:
        assert isinstance(route, Route), route
        path = re.sub(r"\{(\w+):\w+\}", r"{\1}", route.path)
        methods = route.methods
        if methods is None and isinstance(route.endpoint, type):  # an HTTPEndpoint class
            methods = {m.upper() for m in HTTP_METHODS if hasattr(route.endpoint, m)}
        for method in methods or ():
            if method != "HEAD":
                operations.add((path, method.lower()))
    return operations


def documented_operations(document: dict[str, Any]) -> set[tuple[str, str]]:
    return {(path, method) for path, item in document["paths"].items()
            for method in item if method in HTTP_METHODS}


def refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from refs(value)


def resolve(document: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), ref
    node: Any = document
    for part in ref[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        assert isinstance(node, dict) and part in node, ref
        node = node[part]
    return node


def check(document: dict[str, Any], path: str, method: str, status: int, body: Any) -> None:
    """Validate ``body`` against the schema documented for this operation and status."""
    response = document["paths"][path][method]["responses"][str(status)]
    schema = response["content"]["application/json"]["schema"]
    validator = jsonschema.Draft202012Validator(
        {"components": document["components"], **schema},
        format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER,
    )
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(body)]
    assert errors == []


def properties(document: dict[str, Any], name: str) -> set[str]:
    return set(document["components"]["schemas"][name]["properties"])


def test_is_openapi_3_1(document: dict[str, Any]) -> None:
    """The document declares OpenAPI 3.1, a title and version, and bearer security."""
    assert document["openapi"].startswith("3.1.")
    assert document["info"]["title"]
    assert document["info"]["version"]
    assert document["components"]["securitySchemes"]["bearer"] == {
        "type": "http", "scheme": "bearer"}


def test_documents_every_route_and_only_routes(document: dict[str, Any]) -> None:
    """Every routed (path, method) is documented, and nothing unrouted is."""
    routed, documented = routed_operations(), documented_operations(document)
    assert {"missing": routed - documented, "unrouted": documented - routed} == {
        "missing": set(), "unrouted": set()}


def test_path_parameters_are_declared(document: dict[str, Any]) -> None:
    """Each `{name}` in a documented path has a required path parameter of that name."""
    for path, item in document["paths"].items():
        names = set(re.findall(r"\{(\w+)\}", path))
        for method, operation in item.items():
            declared = {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"}
            assert declared == names, (path, method)
            assert all(p["required"] for p in operation.get("parameters", [])
                       if p["in"] == "path")


def test_every_operation_has_responses(document: dict[str, Any]) -> None:
    """Each operation has a summary, a 2xx response, and documents 401 unless public."""
    for path, item in document["paths"].items():
        for method, operation in item.items():
            assert operation["summary"], (path, method)
            assert any(s[0] in "23" for s in operation["responses"]), (path, method)
            if operation.get("security") != []:
                assert "401" in operation["responses"], (path, method)


def test_every_ref_resolves(document: dict[str, Any]) -> None:
    """Every $ref in the document points at something that exists."""
    found = list(refs(document))
    assert found
    for ref in found:
        assert isinstance(resolve(document, ref), dict), ref


def test_component_schemas_are_valid(document: dict[str, Any]) -> None:
    """Every component schema is itself a valid JSON Schema 2020-12."""
    for name, schema in document["components"]["schemas"].items():
        try:
            jsonschema.Draft202012Validator.check_schema(schema)
        except jsonschema.SchemaError as exc:  # pragma: no cover - message for the failure
            pytest.fail(f"{name}: {exc.message}")


def _logged_email(server: Server, account: PortalAccount) -> int:
    msg = EmailMessage()
    msg["From"] = f"Rita Rep <{account.user_email}>"
    msg["To"] = "Dana Buyer <dana@acme.example>, pat@gmail.com"
    msg["Cc"] = "sam@acme.example"
    msg["Subject"] = "Schema check"
    msg["Message-ID"] = f"<{uuid.uuid4().hex}@ourco.example>"
    msg["Date"] = "Tue, 04 Jun 2024 10:00:00 +0200"
    msg.set_content("plain body\n")
    msg.add_alternative("<p>html <b>body</b></p>", subtype="html")
    msg.add_attachment(b"a,b\n1,2\n", maintype="text", subtype="csv", filename="data.csv")
    with server.smtp() as smtp:
        smtp.ehlo("client.example")
        smtp.mail(account.user_email)
        smtp.rcpt(account.bcc_address)
        code, text = smtp.data(msg.as_bytes(policy=policy.SMTP))
    assert code == 250, text
    return int(text.decode().split()[2])


def test_real_responses_match_the_schemas(
    server: Server, account: PortalAccount, document: dict[str, Any]
) -> None:
    """Me, Settings, Contact, Email, EmailSummary, Thread and Health bodies validate."""
    email_id = _logged_email(server, account)
    with server.api(account.user_token) as api, server.api(account.admin_token) as admin:
        def get(path: str, client: Any = api) -> Any:
            response = client.get(path)
            assert response.status_code == 200, response.text
            return response.json()

        check(document, "/api/v1/me", "get", 200, get("/api/v1/me"))
        check(document, "/api/v1/me", "get", 200, get("/api/v1/me", admin))
        settings = get("/api/v1/settings")
        check(document, "/api/v1/settings", "get", 200, settings)
        assert set(settings) == properties(document, "Settings")

        email = get(f"/api/v1/emails/{email_id}")
        check(document, "/api/v1/emails/{id}", "get", 200, email)
        assert set(email) == properties(document, "Email")
        assert set(email["attachments"][0]) == properties(document, "Attachment")
        assert set(email["from"]) == properties(document, "Person")
        found = get(f"/api/v1/emails?message_id={email['message_id']}")
        check(document, "/api/v1/emails", "get", 200, found)

        contact_id = email["contact_ids"][0]
        contact = get(f"/api/v1/contacts/{contact_id}")
        check(document, "/api/v1/contacts/{id}", "get", 200, contact)
        assert set(contact) == properties(document, "Contact")
        check(document, "/api/v1/contacts", "get", 200, get("/api/v1/contacts?limit=1"))
        check(document, "/api/v1/contacts", "get", 200,
              get("/api/v1/contacts?email=pat@gmail.com"))

        timeline = get(f"/api/v1/contacts/{contact_id}/timeline")
        check(document, "/api/v1/contacts/{id}/timeline", "get", 200, timeline)
        assert set(timeline["items"][0]) == properties(document, "EmailSummary")
        files = get(f"/api/v1/contacts/{contact_id}/attachments")
        check(document, "/api/v1/contacts/{id}/attachments", "get", 200, files)

        thread = get(f"/api/v1/threads/{email['thread_id']}")
        check(document, "/api/v1/threads/{id}", "get", 200, thread)
        assert set(thread) == properties(document, "Thread")

        patched = admin.patch("/api/v1/settings", json={"never_log": ["rival.example"]})
        check(document, "/api/v1/settings", "patch", 200, patched.json())
        check(document, "/healthz", "get", 200, get("/healthz"))


def test_documented_error_bodies_match(
    server: Server, account: PortalAccount, document: dict[str, Any]
) -> None:
    """401, 400, 404 and 422 bodies validate against the documented Error schema."""
    with server.api(account.user_token) as api, server.api(None) as anonymous, \
            server.api(account.admin_token) as admin:
        cases = [
            ("/api/v1/me", "get", anonymous.get("/api/v1/me")),
            ("/api/v1/emails", "get", api.get("/api/v1/emails")),
            ("/api/v1/emails/{id}", "get", api.get("/api/v1/emails/999999999")),
            ("/api/v1/settings", "patch", admin.patch("/api/v1/settings", json={"x": 1})),
        ]
        for path, method, response in cases:
            assert str(response.status_code) in (
                document["paths"][path][method]["responses"]), (path, response.status_code)
            check(document, path, method, response.status_code, response.json())
