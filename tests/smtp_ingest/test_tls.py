"""With a certificate, SMTP offers STARTTLS and the API is served over HTTPS."""

from __future__ import annotations

import smtplib
import ssl
import subprocess
from collections.abc import Iterator
from email.utils import make_msgid
from pathlib import Path

import httpx
import pytest

from tests.support.mail import deliver, logged_id, message
from tests.support.server import Server


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[tuple[Server, ssl.SSLContext]]:
    """A server started with a self-signed certificate, and a client context trusting it."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )
    context = ssl.create_default_context(cafile=str(cert))
    server = Server(tmp_path / "srv", extra_args=("--tls-cert", str(cert), "--tls-key", str(key)))
    server.start(scheme="https", verify=context)
    yield server, context
    server.stop()


def test_starttls_and_https(tls_server: tuple[Server, ssl.SSLContext]) -> None:
    """EHLO offers STARTTLS; mail sent after STARTTLS is logged; the API answers on HTTPS."""
    server, context = tls_server
    account = server.new_portal()
    with smtplib.SMTP("127.0.0.1", server.smtp_port, timeout=30) as smtp:
        _, features = smtp.ehlo("client.test")
        assert b"STARTTLS" in features
        assert b"AUTH" not in features
        smtp.starttls(context=context)
        _, features = smtp.ehlo("client.test")
        assert b"STARTTLS" not in features and b"AUTH" not in features
        msg = message(sender=account.user_email, to="tls@secure.example", message_id=make_msgid())
        email_id = logged_id(deliver(server, msg, account.bcc_address, smtp=smtp))

    url = f"https://127.0.0.1:{server.http_port}/api/v1/emails/{email_id}"
    response = httpx.get(url, headers={"Authorization": f"Bearer {account.user_token}"},
                         verify=context)
    assert response.status_code == 200
    assert response.json()["id"] == email_id
