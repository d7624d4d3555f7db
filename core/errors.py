"""The one exception root of core; adapters map these to SMTP replies and HTTP errors."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from core.sender_auth import Decision


class CoreError(Exception):
    """Root of every error core raises on purpose. ``code`` is a stable machine name."""

    code = "error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(CoreError):
    """The object does not exist, or belongs to another portal (never say which)."""

    code = "not_found"


class InvalidInput(CoreError):
    """The caller sent something core cannot accept as it is."""

    code = "invalid_input"


class AddressNotConfirmed(InvalidInput):
    """An inbox was to be connected with an address not (yet) proven the user's."""

    code = "address_not_confirmed"


class UnknownRecipient(CoreError):
    """No portal has this logging address."""

    code = "unknown_recipient"


class SenderNotAllowed(CoreError):
    """The message does not come from a user of the portal."""

    code = "sender_not_allowed"


class SenderNotAuthenticated(CoreError):
    """Mail claiming a portal user failed the portal's sender authentication
    (``enforce``): ``decision`` (a ``core.sender_auth.Decision``) says which check."""

    code = "sender_not_authenticated"

    def __init__(self, decision: Decision) -> None:
        super().__init__(decision.reason)
        self.decision = decision


class SenderAuthUnavailable(CoreError):
    """Sender authentication could not be completed (DNS trouble): try again later."""

    code = "sender_auth_unavailable"

    def __init__(self, decision: Decision) -> None:
        super().__init__(decision.reason)
        self.decision = decision


class MessageTooLarge(CoreError):
    """The message (or its header block) is over a configured limit."""

    code = "too_large"


class StorageUnavailable(CoreError):
    """The database or blob store failed in a way a retry later may fix."""

    code = "storage_unavailable"


class AddressTaken(CoreError):
    """The address is another user's in this portal (or waits for their confirmation)."""

    code = "address_taken"


class AlreadyConfirmed(CoreError):
    """The address is the user's already."""

    code = "already_confirmed"


class ConfirmationRecentlySent(CoreError):
    """A confirmation for this address went out less than a minute ago."""

    code = "confirmation_recently_sent"


class ConfirmationInvalid(CoreError):
    """No confirmation waits for this token: never issued, used, or replaced by a newer."""

    code = "confirmation_invalid"


class ConfirmationExpired(CoreError):
    """The link is older than 48 hours."""

    code = "confirmation_expired"


class RelayNotConfigured(CoreError):
    """The server has no outbound SMTP relay (``--smtp-relay``): it cannot send mail."""

    code = "smtp_relay_not_configured"


class RelayFailed(CoreError):
    """The relay could not be reached or did not accept the message."""

    code = "smtp_relay_failed"
