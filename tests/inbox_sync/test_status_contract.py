"""The states an inbox can be in, and its folder roles, are the ones /openapi.json names."""

from __future__ import annotations

from typing import Any

from core.types import FolderRole, InboxStatus
from tests.support.server import Server


def _resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` with its ``$ref`` (and an ``allOf``/``anyOf``/``oneOf`` of one) followed."""
    while True:
        if "$ref" in schema:
            name = schema["$ref"].rsplit("/", 1)[-1]
            schema = document["components"]["schemas"][name]
            continue
        for key in ("allOf", "anyOf", "oneOf"):
            options = [s for s in schema.get(key, ()) if s.get("type") != "null"]
            if len(options) == 1:
                schema = options[0]
                break
        else:
            return schema


def test_the_api_documents_every_inbox_status_and_folder_role(inbox_server: Server) -> None:
    """Inbox.status is exactly InboxStatus and a folder's role exactly FolderRole: a state
    core records is one a client was told about, and none it was told about is made up."""
    with inbox_server.api(None) as api:
        document = api.get("/openapi.json").json()
    inbox = _resolve(document, document["components"]["schemas"]["Inbox"])
    status = _resolve(document, inbox["properties"]["status"])
    assert set(status["enum"]) == {s.value for s in InboxStatus}
    folder = _resolve(document, _resolve(document, inbox["properties"]["folders"])["items"])
    role = _resolve(document, folder["properties"]["role"])
    assert set(role["enum"]) == {r.value for r in FolderRole}
