"""Shapes of connected inboxes: connecting one with OAuth."""

from __future__ import annotations

from typing import Annotated

from msgspec import Meta

from core import inboxes
from extension_api.schemas._codec import RequestShape, ResponseShape

FirstSyncDays = Annotated[int, Meta(ge=0, le=3650, description=(
    "how many days back the first sync logs mail"))]


class OAuthStart(RequestShape):
    first_sync_days: FirstSyncDays = inboxes.DEFAULT_FIRST_SYNC_DAYS


class OAuthStarted(ResponseShape):
    """The authorization URL to open in the user's browser."""

    provider: str
    authorization_url: Annotated[str, Meta(extra_json_schema={"format": "uri"})]
    expires_in: int
