"""The connected-inbox adapter: IMAP sync, SMTP send, and the background service."""
