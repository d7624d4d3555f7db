"""Webhook signatures (pure), as Standard Webhooks (standardwebhooks.com) has them:
``webhook-id``, ``webhook-timestamp`` (Unix seconds of the attempt) and
``webhook-signature: v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">``, keyed by
the secret ``whsec_<base64>`` shown once at creation and kept encrypted
(``secret_box``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time

from core.credentials import CredentialBox

SECRET_PREFIX = "whsec_"
SECRET_PURPOSE = b"webhook secrets v1"


def secret_box(server_secret: str) -> CredentialBox:
    """The key that encrypts endpoints' signing secrets at rest."""
    return CredentialBox(server_secret, purpose=SECRET_PURPOSE)


def new_secret() -> str:
    """A signing secret: ``whsec_`` and 32 random bytes in base64 (Standard Webhooks)."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode("ascii")


def signature(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """``v1,<base64 HMAC-SHA256>`` of ``{message_id}.{timestamp}.{body}``."""
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    signed = f"{message_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def signed_headers(secret: str, message_id: str, body: bytes,
                   timestamp: int | None = None) -> dict[str, str]:
    """The three Standard Webhooks headers of one attempt (signed at its time)."""
    at = int(time.time()) if timestamp is None else timestamp
    return {"webhook-id": message_id, "webhook-timestamp": str(at),
            "webhook-signature": signature(secret, message_id, at, body)}


def message_id(event_id: int) -> str:
    """The ``webhook-id`` of an event: the same on every attempt and every endpoint."""
    return f"evt_{event_id}"
