"""Choosing INBOX and Sent from a LIST result, and detecting settings from an address."""

from __future__ import annotations

from inbox_sync.detect import detect
from inbox_sync.folders import folder, sent_folder, sync_targets


def test_special_use_wins_over_names() -> None:
    """A folder marked \\Sent is chosen even when another is called "Sent"."""
    listed = [folder("INBOX"), folder("Sent"), folder("Gesendet", "\\Sent")]
    assert sent_folder(listed) == folder("Gesendet", "\\Sent")


def test_name_fallback_in_other_languages() -> None:
    """Without SPECIAL-USE, the first folder whose name says "sent" in a common language."""
    assert sent_folder([folder("INBOX"), folder("Éléments envoyés")]) is not None
    assert sent_folder([folder("INBOX"), folder("INBOX.Verzonden items")]) is not None
    assert sent_folder([folder("Drafts"), folder("Sent Items")]) == folder("Sent Items")
    assert sent_folder([folder("INBOX"), folder("Archive")]) is None


def test_noselect_folders_are_skipped() -> None:
    """A \\Noselect folder is never chosen, marked or named."""
    listed = [folder("[Gmail]", "\\Noselect", "\\Sent"), folder("[Gmail]/Sent Mail", "\\Sent"),
              folder("INBOX")]
    assert sync_targets(listed) == {"inbox": folder("INBOX"),
                                    "sent": folder("[Gmail]/Sent Mail", "\\Sent")}


async def test_big_providers_are_detected_without_dns() -> None:
    """gmail.com and outlook.com come from the table, with the right security."""
    gmail = await detect("someone@gmail.com")
    assert gmail is not None and gmail.imap.host == "imap.gmail.com"
    assert gmail.smtp.security == "ssl" and gmail.app_password_hint
    outlook = await detect("someone@outlook.com")
    assert outlook is not None and outlook.smtp.security == "starttls"
