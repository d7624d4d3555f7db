"""Running blocking work in a worker thread, to the end even when the caller is cancelled.

``asyncio.to_thread`` returns at once when its caller is cancelled, while the thread
goes on: whatever the caller then cleans up (closing a file, rolling back a connection)
happens under the thread's feet. ``to_thread_to_the_end`` waits for the thread first.
``in_executor_to_the_end`` does the same on a given executor (the connected inboxes'
network work has its own, so that it never takes the threads parsing needs).
``DaemonThreads`` is a bounded executor whose threads never hold up the process's exit
(message parsing has one: a parse still running at shutdown is abandoned, not awaited).
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import queue
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor, Future
from typing import Any, ParamSpec, TypeVar

P = ParamSpec("P")

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


class DaemonThreads(Executor):
    """At most ``workers`` daemon threads, started as work comes. Unlike
    ``ThreadPoolExecutor`` (whose threads the interpreter joins at exit), a call still
    running when the process ends is abandoned: a slow parse cannot hang a shutdown."""

    def __init__(self, workers: int, name: str) -> None:
        self._workers = workers
        self._name = name
        self._queue: queue.SimpleQueue[tuple[Future[Any], Callable[[], Any]] | None] = (
            queue.SimpleQueue())
        self._threads: list[threading.Thread] = []
        self._idle = threading.Semaphore(0)
        self._lock = threading.Lock()
        self._closed = False

    def submit(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> Future[T]:
        future: Future[T] = Future()
        with self._lock:
            if self._closed:
                raise RuntimeError(f"{self._name}: no new work after shutdown")
            self._queue.put((future, functools.partial(fn, *args, **kwargs)))
            if not self._idle.acquire(blocking=False) and len(self._threads) < self._workers:
                thread = threading.Thread(target=self._run, daemon=True,
                                          name=f"{self._name}-{len(self._threads)}")
                self._threads.append(thread)
                thread.start()
        return future

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            future, call = item
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(call())
                except BaseException as exc:  # handed to the caller, as any executor does
                    future.set_exception(exc)
            del item, future, call
            self._idle.release()

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        with self._lock:
            self._closed = True
            threads = list(self._threads)
        if cancel_futures:
            while True:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is not None:
                    item[0].cancel()
        for _ in threads:
            self._queue.put(None)
        if wait:
            for thread in threads:
                thread.join()
