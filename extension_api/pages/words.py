"""Core's codes in plain words for the pages: why an email joined its thread, why a
message was not logged and what to do about it, where an email came from."""

from __future__ import annotations

from dataclasses import dataclass

THREAD_REASONS = {
    "new": "Started this thread.",
    "in_reply_to": "Joined because it replies to {parent} (its In-Reply-To header).",
    "references": "Joined because it belongs to the conversation of {parent} (its "
                  "References header).",
    "thread_index": "Joined by Outlook's conversation index (Thread-Index): it has no "
                    "reply headers, but Outlook filed it with {parent}.",
    "tracking_token": "Joined because it replies to a tracked email of this thread (its "
                      "tracking token).",
    "manual": "Moved here by a user of your portal.",
}


def thread_reason(code: str, parent: str) -> str:
    """``parent``: how to name the email it joined (e.g. its subject and date)."""
    text = THREAD_REASONS.get(code, f"Joined this thread ({code}).")
    return text.format(parent=parent or "an earlier email")


SOURCES = {
    "bcc": "BCC to the logging address",
    "forward": "forwarded to the logging address",
    "rule": "a forwarding rule",
    "extension": "the browser extension",
    "sync": "a connected inbox",
    "crm_send": "sent from the CRM",
    "team_inbox": "a team inbox",
}


def source(code: str) -> str:
    return SOURCES.get(code, code)


@dataclass(frozen=True)
class Reason:
    words: str  # what happened
    todo: str  # what to do about it


NOT_LOGGED = {
    "not_a_user": Reason(
        "The sender is not a user of your portal, so the message was refused.",
        "If a colleague sent it, add them as a user (Team), or add the address they "
        "sent from to their addresses. Mail from customers is logged only as a reply "
        "to a logged thread, or when a user forwards it."),
    "not_in_thread": Reason(
        "It came through a forwarding rule or a connected inbox and belongs to no "
        "logged thread: such mail is not stored, for privacy.",
        "To log it anyway, forward it to your logging address yourself, or BCC the "
        "address on your next reply."),
    "never_log": Reason(
        "An address or domain of the message is on your never-log list.",
        "Remove it from the never-log list in Setup if it should be logged."),
    "bulk": Reason(
        "It looks like bulk or automatic mail (a newsletter, an auto-reply, a bounce) "
        "from an automatic source.",
        "Nothing, usually. If it matters, forward it to your logging address: what you "
        "forward yourself is always logged."),
    "too_large": Reason(
        "The message is larger than 50 MB, the most inboxlog stores.",
        "Send the large files by a link instead, or forward the message without them."),
    "forward_unparsable": Reason(
        "The forwarded original could not be told apart from your own message, so your "
        "email itself was logged instead.",
        "Forward it as an attachment (\"Forward as attachment\") for the original to be "
        "logged as it was."),
    "deleted": Reason(
        "The email was deleted in inboxlog earlier, so its copy was not logged again.",
        "Restore it from its contact's timeline if you want it back."),
    "not_authenticated": Reason(
        "Sender authentication failed (SPF, DKIM or DMARC): the message claims to come "
        "from a user but the sending server could not prove it.",
        "Send through your organisation's own mail server, or ask your admin to set "
        "sender authentication to monitor while the domain's records are fixed."),
    "auth_unavailable": Reason(
        "Sender authentication could not be completed (the DNS did not answer in "
        "time); the sending server was asked to try again later.",
        "Nothing: the sending server retries. If it keeps happening, tell your "
        "operator that DNS lookups are failing."),
}


def not_logged(code: str, detail: str) -> Reason:
    return NOT_LOGGED.get(code, Reason(detail, "Ask your admin: this reason is new."))


SOURCES_OF_REFUSAL = {"smtp": "the logging address", "api": "the extension",
                      "sync": "a connected inbox", "cli": "the command line",
                      "team_inbox": "a team inbox"}


INBOX_PROBLEMS = {
    "disconnected_by_user": "Nothing is synced any more; to sync it again, connect it "
                            "anew below (its password or sign-in was forgotten).",
    "name_not_found": "Check the server's name: it does not exist in the DNS.",
    "connection_refused": "Nothing answers on that port: check the port and the security "
                          "(993 with ssl or 143 with starttls for IMAP; 465 ssl or 587 "
                          "starttls for SMTP).",
    "timeout": "The server did not answer in time: check the name and port, or try later.",
    "unreachable": "The server cannot be reached from here: try again later.",
    "tls_failure": "The secure connection failed: check the security setting, or the "
                   "server's certificate.",
    "auth_rejected": "The server refused the user name or password: check both (some "
                     "servers want the full address as the user name).",
    "app_password_required": "Your provider wants an app password here, not your usual "
                             "one: make one in your account's security settings (Google: "
                             "App passwords; Microsoft: Additional security options).",
    "no_imap": "No IMAP server was found for this address: give the servers yourself "
               "under \"Servers\".",
    "no_smtp": "No SMTP server was found for this address: give it under \"Servers\".",
    "destination_not_allowed": "inboxlog only connects to public mail servers on mail "
                               "ports; ask your operator if yours is internal.",
    "throttled": "The provider asks to slow down: try again in a minute.",
    "too_many_connections": "Too many connections in progress: try again in a minute.",
    "mailbox_full": "The mailbox is full: make room, then sync again.",
    "disconnected": "The inbox is disconnected: connect it again with its password.",
    "oauth_revoked": "The access was withdrawn at the provider: connect again.",
}


def inbox_problem(code: str, detail: str) -> Reason:
    """What went wrong (the connector's own precise message) and what to do."""
    return Reason(detail, INBOX_PROBLEMS.get(code, "Check the settings and try again; if "
                                             "it keeps failing, tell your admin this "
                                             "message."))
