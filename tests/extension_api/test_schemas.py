"""The API's shapes: one type per body validates requests (a precise 4xx naming the
field, never a 500), writes responses, and is the OpenAPI component of its name."""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any

import msgspec
import pytest

from core import accounts, tracked_sends
from core.sender_auth import SenderAuthPolicy
from core.types import Direction, EventType, HitKind, HitVerdict, InboxLogMode, Source
from extension_api.errors import ApiError
from extension_api.openapi import SCHEMAS
from extension_api.schemas import respond, shape_of
from extension_api.schemas.account import RotateRequest, SettingsPatch
from extension_api.schemas.inboxes import InboxConnect, SendRequest
from extension_api.schemas.mail import Deleted, MoveRequest
from extension_api.schemas.tracking import SentRequest, TrackedSendRequest
from tests.support.server import PortalAccount, Server


def _refused(value: dict[str, Any], shape: type[Any]) -> str:
    """The 422 message of ``value`` read as ``shape``."""
    with pytest.raises(ApiError) as refused:
        shape_of(value, shape)
    assert refused.value.status_code == 422 and refused.value.code == "invalid_input"
    return str(refused.value.detail)


@pytest.mark.parametrize(("value", "shape", "starts"), [
    ({"to": ["a@b.example"], "track_opens": "yes"}, TrackedSendRequest, "track_opens: "),
    ({"to": ["a@b.example", 7]}, TrackedSendRequest, "to[1]: "),
    ({"to": "a@b.example", "subject": "x" * 999}, TrackedSendRequest, "subject: "),
    ({"to": [{"email": "a@b.example", "name": "A\nB"}]}, TrackedSendRequest, "to[0].name: "),
    ({"thread_id": True}, MoveRequest, "thread_id: "),
    ({"thread_id": 0}, MoveRequest, "thread_id: "),
    ({"grace_days": 91}, RotateRequest, "grace_days: "),
    ({"inbox_log_mode": "everything"}, SettingsPatch, "inbox_log_mode: "),
    ({"log_attachments": None}, SettingsPatch, "log_attachments: "),
    ({"message_id": "a@b\r\nBcc: x@y"}, SentRequest, "message_id: "),
    ({"address": "a@b.example", "password": "p", "imap": {"host": "h", "port": 0,
                                                         "security": "ssl"}},
     InboxConnect, "imap.port: "),
    ({"to": "a@b.example", "text": "hi", "in_reply_to": "<x>\nBcc: y"}, SendRequest,
     "in_reply_to: "),
])
def test_a_bad_field_is_422_naming_it(value: dict[str, Any], shape: type[Any],
                                      starts: str) -> None:
    """A field of the wrong type, out of its limits or breaking a rule is a 422 whose
    message starts with the field's path."""
    assert _refused(value, shape).startswith(starts)


def test_unknown_and_missing_fields_are_refused() -> None:
    """A request shape refuses fields it does not have, and wants the ones it needs."""
    assert "`colour`" in _refused({"to": ["a@b.example"], "colour": "red"}, TrackedSendRequest)
    assert "`to`" in _refused({}, TrackedSendRequest)
    assert "`thread_id`" in _refused({}, MoveRequest)


def test_a_partial_settings_change_leaves_out_what_was_left_out() -> None:
    """Only the fields a PATCH names are changed; the others are None in core's change."""
    patch = shape_of({"never_log": ["@rival.example"], "sender_auth": "monitor"}, SettingsPatch)
    assert patch.change() == accounts.SettingsChange(
        never_log=["@rival.example"], sender_auth=SenderAuthPolicy.MONITOR)
    assert shape_of({}, SettingsPatch).change() == accounts.SettingsChange()


def test_a_tracked_send_reaches_core_as_one_address_per_entry() -> None:
    """A comma-separated string and {email, name} entries become plain addresses."""
    body = shape_of({"to": "a@b.example, c@d.example",
                     "cc": [{"email": "e@f.example", "name": "E"}, "g@h.example"]},
                    TrackedSendRequest)
    assert body.request() == tracked_sends.TrackedSendRequest(
        to=["a@b.example", "c@d.example"], cc=["e@f.example", "g@h.example"], bcc=[])


def test_responses_write_timestamps_and_enums_as_before() -> None:
    """A shape's timestamp is RFC 3339 with Z for UTC, as the API always wrote it."""
    at = datetime(2024, 6, 4, 8, 0, 0, 123456, tzinfo=UTC)
    response = respond(Deleted(id=1, deleted_at=at, restorable_until=at))
    assert msgspec.json.decode(response.body) == {
        "id": 1, "deleted_at": "2024-06-04T08:00:00.123456Z",
        "restorable_until": "2024-06-04T08:00:00.123456Z"}
    assert response.headers["content-type"] == "application/json"


def _enum(ref: dict[str, Any]) -> set[Any]:
    """The values a property allows, following its $ref (and an array's items)."""
    if "items" in ref:
        ref = ref["items"]
    schema = SCHEMAS[ref["$ref"].rsplit("/", 1)[1]] if "$ref" in ref else ref
    return set(schema["enum"])


@pytest.mark.parametrize(("component", "field", "kind"), [
    ("Settings", "inbox_log_mode", InboxLogMode),
    ("Settings", "sender_auth", SenderAuthPolicy),
    ("Email", "direction", Direction),
    ("Email", "sources", Source),
    ("Event", "type", EventType),
    ("TrackingHit", "kind", HitKind),
    ("TrackingHit", "verdict", HitVerdict),
])
def test_closed_sets_in_the_document_are_the_core_enums(
        component: str, field: str, kind: type[enum.StrEnum]) -> None:
    """The OpenAPI enum of each closed set is generated from its core.types enum."""
    assert _enum(SCHEMAS[component]["properties"][field]) == {m.value for m in kind}


def test_request_components_refuse_other_fields() -> None:
    """Every request body component says additionalProperties: false."""
    for name in ("TrackedSendRequest", "SettingsPatch", "SentRequest", "MoveRequest",
                 "RotateRequest", "TokenRequest", "UserRequest", "UserAddressRequest",
                 "InboxConnect", "SendRequest", "OAuthStart"):
        assert SCHEMAS[name]["additionalProperties"] is False, name


def test_bad_bodies_over_http(server: Server, account: PortalAccount) -> None:
    """Through the port: a body that is no JSON object is 400, a bad field 422 naming
    it, in the API's error shape; nothing is changed."""
    with server.api(account.admin_token) as admin:
        before = admin.get("/api/v1/settings").json()
        for content, status in ((b"[1]", 400), (b"{", 400),
                                (b'{"auto_create_contacts": "no"}', 422),
                                (b'{"never_log": ["ok.example", 5]}', 422)):
            response = admin.patch("/api/v1/settings", content=content,
                                   headers={"Content-Type": "application/json"})
            assert response.status_code == status, response.text
            assert set(response.json()["error"]) == {"code", "message"}
        assert response.json()["error"]["message"].startswith("never_log[1]: ")
        assert admin.get("/api/v1/settings").json() == before
