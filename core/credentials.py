"""Encryption at rest for mailbox credentials, keyed from the server secret.

The key is derived with HKDF-SHA256 from ``Settings.secret_key`` (so rotating that
secret makes stored passwords unreadable: the inboxes then ask to be reconnected).
Fernet gives authenticated encryption (AES-128-CBC + HMAC-SHA256) with a version byte.
"""

from __future__ import annotations

import base64

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from core.errors import CoreError

_SALT = b"inboxlog credentials"
_INFO = b"inbox passwords v1"


class CredentialsUnreadable(CoreError):
    """A stored credential cannot be decrypted with this server's secret key."""

    code = "credentials_unreadable"


class CredentialBox:
    """Encrypts and decrypts short secrets (passwords) with a key from the server secret."""

    def __init__(self, server_secret: str, *, purpose: bytes = _INFO) -> None:
        """``purpose``: another key for another use (e.g. OAuth ``state``)."""
        if not server_secret:
            raise ValueError("a server secret key is required to store credentials")
        key = HKDF(algorithm=hashes.SHA256(), length=32, salt=_SALT, info=purpose).derive(
            server_secret.encode())
        self._fernet = Fernet(base64.urlsafe_b64encode(key))

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode("ascii")

    def decrypt(self, token: str, *, ttl: int | None = None) -> str:
        """``ttl``: refuse a token encrypted more than that many seconds ago."""
        try:
            return self._fernet.decrypt(token.encode("ascii"), ttl=ttl).decode()
        except (InvalidToken, ValueError):
            raise CredentialsUnreadable(
                "stored credentials cannot be read with this server's secret key; "
                "reconnect the inbox") from None
