"""Running blocking work in a worker thread, to the end even when the caller is cancelled.

``asyncio.to_thread`` returns at once when its caller is cancelled, while the thread
goes on: whatever the caller then cleans up (closing a file, rolling back a connection)
happens under the thread's feet. ``to_thread_to_the_end`` waits for the thread first.
``in_executor_to_the_end`` does the same on a given executor (the connected inboxes'
network work has its own, so that it never takes the threads parsing needs).
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor
from typing import TypeVar

T = TypeVar("T")


async def _to_the_end(work: Awaitable[T]) -> T:
    task = asyncio.ensure_future(work)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        await asyncio.wait([task])
        raise


async def to_thread_to_the_end(function: Callable[..., T], *args: object) -> T:
    """``asyncio.to_thread``, but a cancellation is raised only once the thread is done."""
    return await _to_the_end(asyncio.to_thread(function, *args))


async def in_executor_to_the_end(executor: Executor, function: Callable[..., T],
                                 *args: object) -> T:
    """``loop.run_in_executor(executor, ...)`` (with the caller's context, as
    ``to_thread``), but a cancellation is raised only once the call is done."""
    loop = asyncio.get_running_loop()
    call = functools.partial(contextvars.copy_context().run, function, *args)
    return await _to_the_end(loop.run_in_executor(executor, call))
