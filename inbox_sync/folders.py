"""Which folder is the inbox and which is Sent: RFC 6154 SPECIAL-USE, else names.

Pure functions over a LIST result, so they are tested without a server.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from core.types import FolderRole

# Lower-case fragments of "Sent" folder names in the common languages and clients.
SENT_NAMES = (
    "sent", "gesendet", "envoy", "enviad", "inviat", "verzonden", "verstuurd", "skickat",
    "sendt", "lähetetyt", "wysłane", "odeslan", "отправлен", "elküldött", "gönderil",
    "απεσταλμένα", "送信済", "已发送", "寄件備份", "보낸",
)
_UNSELECTABLE = {"\\noselect", "\\nonexistent"}


@dataclass(frozen=True)
class Folder:
    name: str  # decoded (modified UTF-7 undone)
    flags: frozenset[str]  # lower-case, e.g. "\\sent", "\\noselect"

    @property
    def selectable(self) -> bool:
        return not self.flags & _UNSELECTABLE


def folder(name: str, *flags: str) -> Folder:
    return Folder(name, frozenset(f.lower() for f in flags))


def special(folders: Iterable[Folder], use: str) -> Folder | None:
    """The first selectable folder with a SPECIAL-USE attribute such as ``\\Sent``."""
    wanted = use.lower()
    return next((f for f in folders if f.selectable and wanted in f.flags), None)


def sent_folder(folders: Iterable[Folder]) -> Folder | None:
    """``\\Sent`` when the server marks one; else the first selectable folder whose last
    name component contains "sent" in a common language (Sent Items, Gesendet, ...)."""
    listed = list(folders)
    marked = special(listed, "\\Sent")
    if marked is not None:
        return marked
    for candidate in listed:
        leaf = candidate.name.replace(".", "/").rsplit("/", 1)[-1].lower()
        if candidate.selectable and any(word in leaf for word in SENT_NAMES):
            return candidate
    return None


def inbox_folder(folders: Iterable[Folder]) -> Folder | None:
    return next((f for f in folders if f.name.upper() == "INBOX" and f.selectable), None)


def sync_targets(folders: Iterable[Folder]) -> dict[FolderRole, Folder]:
    """Role -> folder, for the roles this mailbox has."""
    listed = list(folders)
    found = {FolderRole.INBOX: inbox_folder(listed), FolderRole.SENT: sent_folder(listed)}
    return {role: f for role, f in found.items() if f is not None}
