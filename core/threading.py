"""Threading: which Message-IDs tie a message to a conversation, in what order.

Pure functions over a parsed message (no database); ``core.pipeline`` looks the keys
up among the Message-IDs each thread claims (``ThreadRef``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from core.parsing import ParsedMessage
from core.types import MessageId, ThreadReason

_PREFIX = re.compile(
    r"^\s*((re|aw|sv|vs|antw|odp|ynt|r|rif|res|fwd?|tr|wg|rv|enc|doorst|pd|továbbítás)"
    r"(\[\d+\])?\s*[:：]\s*)+",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class ThreadKey:
    message_id: MessageId
    reason: ThreadReason


def thread_keys(parsed: ParsedMessage) -> list[ThreadKey]:
    """The ids to look a thread up by, nearest relative first.

    In-Reply-To names the parent; References lists ancestors oldest first, so it is
    walked backwards (JWZ). The message's own id comes last: a copy of a message whose
    replies were logged first still lands on their thread.
    """
    keys: list[ThreadKey] = []
    seen: set[str] = set()

    def add(message_id: MessageId, reason: ThreadReason) -> None:
        if message_id not in seen:
            seen.add(message_id)
            keys.append(ThreadKey(message_id, reason))

    for message_id in parsed.in_reply_to:
        add(message_id, ThreadReason.IN_REPLY_TO)
    for message_id in reversed(parsed.references):
        add(message_id, ThreadReason.REFERENCES)
    if parsed.message_id:
        add(parsed.message_id, ThreadReason.REFERENCES)
    return keys


def base_subject(subject: str) -> str:
    """A subject without reply and forward prefixes, for naming a thread."""
    return _PREFIX.sub("", subject).strip()
