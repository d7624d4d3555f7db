"""Threading: which Message-IDs tie a message to a conversation, in what order.

Pure functions over a parsed message (no database); ``core.pipeline`` looks the keys
up among the Message-IDs each thread claims (``ThreadRef``).
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from core.mail.parsing import ParsedMessage
from core.mail.subjects import strip_prefixes
from core.types import MessageId, ThreadReason

THREAD_INDEX_PREFIX = "thread-index:"


@dataclass(frozen=True)
class ThreadKey:
    message_id: MessageId
    reason: ThreadReason


def _participants(parsed: ParsedMessage) -> set[str]:
    people = [parsed.from_, parsed.sender, *parsed.to, *parsed.cc, *parsed.reply_to]
    return {p.key for p in people if p is not None}


def reference_ids(parsed: ParsedMessage) -> tuple[list[MessageId], list[MessageId]]:
    """In-Reply-To and References ids that are really message ids.

    Some clients put the parent's *address* in In-Reply-To (``<ann@acme.com>``); taken
    as an id it would merge every message that quotes Ann into one thread, so an id
    equal to an address of the message's own participants is dropped.
    """
    addresses = _participants(parsed)
    keep = [m for m in parsed.in_reply_to if m.lower() not in addresses and len(m) <= 998]
    refs = [m for m in parsed.references if m.lower() not in addresses and len(m) <= 998]
    return keep, refs


def thread_index_key(thread_index: str | None) -> MessageId | None:
    """The conversation an Outlook Thread-Index names: its first 22 bytes (a FILETIME and
    a GUID) are the same for every message of the conversation."""
    if not thread_index:
        return None
    try:
        data = base64.b64decode(thread_index + "=" * (-len(thread_index) % 4), validate=False)
    except (binascii.Error, ValueError):
        return None
    if len(data) < 22:
        return None
    return MessageId(THREAD_INDEX_PREFIX + data[6:22].hex())


def thread_keys(parsed: ParsedMessage) -> list[ThreadKey]:
    """The ids to look a thread up by, nearest relative first.

    In-Reply-To names the parent; References lists ancestors oldest first, so it is
    walked backwards (JWZ). The message's own id follows: a copy of a message whose
    replies were logged first still lands on their thread. Outlook's Thread-Index is
    the fallback when the message has neither In-Reply-To nor References.
    """
    keys: list[ThreadKey] = []
    seen: set[str] = set()

    def add(message_id: MessageId, reason: ThreadReason) -> None:
        if message_id not in seen:
            seen.add(message_id)
            keys.append(ThreadKey(message_id, reason))

    in_reply_to, references = reference_ids(parsed)
    for message_id in in_reply_to:
        add(message_id, ThreadReason.IN_REPLY_TO)
    for message_id in reversed(references):
        add(message_id, ThreadReason.REFERENCES)
    if parsed.message_id:
        add(parsed.message_id, ThreadReason.REFERENCES)
    conversation = thread_index_key(parsed.thread_index)
    if conversation and not in_reply_to and not references:
        add(conversation, ThreadReason.THREAD_INDEX)
    return keys


def claimed_ids(parsed: ParsedMessage, message_id: MessageId) -> list[MessageId]:
    """Every id a thread claims when this message joins it."""
    in_reply_to, references = reference_ids(parsed)
    ids = [message_id, *in_reply_to, *references]
    conversation = thread_index_key(parsed.thread_index)
    if conversation:
        ids.append(conversation)
    return ids


def base_subject(subject: str) -> str:
    """A subject without reply and forward prefixes, for naming a thread: the same table
    (``core.mail.subjects``) that forward recovery reads."""
    return strip_prefixes(subject)
