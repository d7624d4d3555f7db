"""A blocking SMTP client that sends DATA bytes exactly as given (no line-ending
rewriting, unlike smtplib), for fuzzing and smuggling tests."""

from __future__ import annotations

import contextlib
import re
import socket
from pathlib import Path

_AFTER_LF_DOT = re.compile(rb"\n\.")


def transparent(data: bytes) -> bytes:
    """Dot-stuff every line start after any LF, CRLF or not, and end with CRLF, so no
    byte sequence in ``data`` can end DATA early (whatever the server takes as a line)."""
    data = (b".." + data[1:] if data.startswith(b".") else data)
    data = _AFTER_LF_DOT.sub(b"\n..", data)
    return data if data.endswith(b"\r\n") else data + b"\r\n"


class RawSMTP:
    def __init__(self, port: int, timeout: float = 30) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buffer = b""
        assert self.reply()[0] == 220
        self.command(b"EHLO fuzz.test")

    def reply(self) -> tuple[int, str]:
        lines = []
        while True:
            while b"\r\n" not in self.buffer:
                chunk = self.sock.recv(65536)
                if not chunk:
                    raise ConnectionError("server closed the connection")
                self.buffer += chunk
            line, self.buffer = self.buffer.split(b"\r\n", 1)
            lines.append(line.decode("utf-8", "replace"))
            if line[3:4] != b"-":
                return int(lines[-1][:3]), "\n".join(x[4:] for x in lines)

    def command(self, line: bytes) -> tuple[int, str]:
        self.sock.sendall(line + b"\r\n")
        return self.reply()

    def send(self, mail_from: str, rcpt: str, body: bytes) -> tuple[int, str]:
        """MAIL, RCPT, DATA with ``body`` sent as is and CRLF.CRLF after it; the first
        refusal or the reply to the final dot."""
        for line in (f"MAIL FROM:<{mail_from}>".encode(), f"RCPT TO:<{rcpt}>".encode()):
            code, text = self.command(line)
            if code != 250:
                self.command(b"RSET")
                return code, text
        code, text = self.command(b"DATA")
        if code != 354:
            return code, text
        self.sock.sendall(body + b".\r\n")
        return self.reply()

    def pending(self) -> bytes:
        """Whatever the server sent that no command asked for (after a short wait)."""
        self.sock.settimeout(0.3)
        with contextlib.suppress(TimeoutError):
            self.buffer += self.sock.recv(65536)
        return self.buffer

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.command(b"QUIT")
        self.sock.close()


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")
