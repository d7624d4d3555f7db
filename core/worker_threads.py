"""Running blocking work in a worker thread, to the end even when the caller is cancelled.

``asyncio.to_thread`` returns at once when its caller is cancelled, while the thread
goes on: whatever the caller then cleans up (closing a file, rolling back a connection)
happens under the thread's feet. ``to_thread_to_the_end`` waits for the thread first.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


async def to_thread_to_the_end(function: Callable[..., T], *args: object) -> T:
    """``asyncio.to_thread``, but a cancellation is raised only once the thread is done."""
    task = asyncio.ensure_future(asyncio.to_thread(function, *args))
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        await asyncio.wait([task])
        raise
