"""A 503 invites a retry (``Retry-After``) unless retrying would repeat what already
happened: ``reply_sent_not_logged`` (the reply went out, only its log failed)."""

from __future__ import annotations

from starlette.requests import Request

from core.errors import StorageUnavailable
from core.tickets.replies import ReplySentNotLogged
from extension_api.errors import on_core_error


def _request() -> Request:
    return Request({"type": "http", "method": "POST", "path": "/", "headers": []})


async def test_a_reply_sent_but_not_logged_is_a_503_without_retry_after() -> None:
    response = await on_core_error(_request(), ReplySentNotLogged(
        "the reply <a@b> was sent to ann@example.com but could not be logged: "
        "do not send it again"))
    assert response.status_code == 503
    assert b'"code":"reply_sent_not_logged"' in response.body
    assert "retry-after" not in response.headers


async def test_a_passing_storage_outage_still_says_when_to_retry() -> None:
    response = await on_core_error(_request(), StorageUnavailable("database down"))
    assert response.status_code == 503
    assert response.headers["retry-after"] == "30"
