"""The baseline: aiosmtpd accepting every message and discarding it.

`python -m bench._bare_smtpd PORT` serves until killed, with inboxlog's size limit.
"""

from __future__ import annotations

import asyncio
import sys

from aiosmtpd.smtp import SMTP, Envelope, Session


class Discard:
    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        return "250 2.0.0 discarded"


async def main(port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(Discard(), data_size_limit=50 * 1024 * 1024, enable_SMTPUTF8=True,
                     hostname="bare.test", loop=loop),
        host="127.0.0.1", port=port)
    print("ready", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
