"""The tests' egress guard (tests/support/loopback_only.py) holds on both event loops
``serve`` may run on: asyncio's (the audit hook) and uvloop's (its own sockets, so its
connect methods are wrapped)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
import uvloop

from tests.support.loopback_only import EgressRefused, install

LOOPS: dict[str, Callable[[], asyncio.AbstractEventLoop]] = {
    "asyncio": asyncio.new_event_loop, "uvloop": uvloop.new_event_loop}


def _run(loop_name: str, main: Callable[[], object]) -> object:
    install()
    with asyncio.Runner(loop_factory=LOOPS[loop_name]) as runner:
        return runner.run(main())  # type: ignore[arg-type]


@pytest.mark.parametrize("loop_name", sorted(LOOPS))
def test_a_connection_off_the_machine_is_refused(loop_name: str) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        with pytest.raises(EgressRefused):
            await loop.create_connection(asyncio.Protocol, "192.0.2.1", 25)
        with pytest.raises(EgressRefused):
            await loop.create_datagram_endpoint(asyncio.DatagramProtocol,
                                                remote_addr=("192.0.2.1", 53))

    _run(loop_name, main)


@pytest.mark.parametrize("loop_name", sorted(LOOPS))
def test_loopback_still_connects(loop_name: str) -> None:
    async def main() -> bytes:
        async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writer.write(b"hello")
            await writer.drain()
            writer.close()

        server = await asyncio.start_server(answer, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        async with server:
            reader, writer = await asyncio.open_connection("localhost", port)
            data = await reader.read()
            writer.close()
            return data

    assert _run(loop_name, main) == b"hello"
