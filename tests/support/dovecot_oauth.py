"""Dovecot with its ``oauth2`` passdb: IMAP logins by SASL XOAUTH2 and OAUTHBEARER,
each token checked by RFC 7662 introspection at the test authorization server
(``tests.support.oauth_server``). The same Maildir layout as ``Dovecot``; no passwords.
"""

from __future__ import annotations

import re
from pathlib import Path

from tests.support.dovecot import Dovecot


class OAuthDovecot(Dovecot):
    """``introspection_url``: where Dovecot asks about a token (with HTTP Basic
    credentials in the URL, as the resource server)."""

    def __init__(self, introspection_url: str) -> None:
        super().__init__([], [])
        self.introspection_url = introspection_url

    def _write_config(self) -> Path:
        path = super()._write_config()
        ext = self.root / "oauth2.conf.ext"
        ext.write_text(f"""introspection_mode = post
introspection_url = {self.introspection_url}
username_attribute = username
active_attribute = active
active_value = true
""")
        config = path.read_text()
        config = config.replace("auth_mechanisms = plain login",
                                "auth_mechanisms = plain login xoauth2 oauthbearer")
        config = re.sub(r"passdb \{[^}]*\}", f"""passdb {{
  driver = oauth2
  mechanisms = xoauth2 oauthbearer
  args = {ext}
}}""", config, count=1)
        # Without this every failed login delays the next one by 2 to 15 seconds.
        config += """
service anvil {
  unix_listener anvil-auth-penalty {
    mode = 0
  }
}
"""
        path.write_text(config)
        return path

    def ensure_mailbox(self, address: str) -> None:
        """Nothing to do: userdb is static and the Maildir is made at the first login."""
