"""The event loop a benchmark client runs on: trio, or asyncio for the asyncio clients.

The workloads in :mod:`bench.workloads` are written once against this small interface, so
that each client runs on its own library's event loop with no adapter in its per-message
path (the interface is only used to start tasks, sleep and wait, outside the hot loops).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol, TypeVar

import trio

T = TypeVar("T")


class Event(Protocol):
    """What the workloads use of ``trio.Event`` / ``asyncio.Event``."""

    def set(self) -> None:
        """Wake every waiter."""

    async def wait(self) -> Any:
        """Wait until :meth:`set` is called."""


class TaskGroup(Protocol):
    """What the workloads use of a trio nursery (``start_soon``)."""

    def start_soon(self, fn: Callable[..., Awaitable[Any]], *args: Any) -> Any:
        """Start ``fn(*args)`` as a child task."""


class Runtime(Protocol):
    """An event loop: how to run the workload, start tasks, sleep and wait."""

    @property
    def name(self) -> str:
        """Name shown in reports (``trio``, ``asyncio`` or ``asyncio+uvloop``)."""

    def run(self, fn: Callable[..., Awaitable[T]], *args: Any) -> T:
        """Run ``fn(*args)`` to completion on a new event loop."""

    async def sleep(self, seconds: float) -> None:
        """Sleep ``seconds`` (float, seconds)."""

    def event(self) -> Event:
        """A new event."""

    def task_group(self) -> AbstractAsyncContextManager[TaskGroup]:
        """A task group that waits for its children on exit."""


class TrioRuntime:
    """trio: nurseries and trio's own primitives."""

    @property
    def name(self) -> str:
        """``trio``."""
        return "trio"

    def run(self, fn: Callable[..., Awaitable[T]], *args: Any) -> T:
        """Run ``fn(*args)`` with :func:`trio.run`."""
        return trio.run(fn, *args)

    async def sleep(self, seconds: float) -> None:
        """:func:`trio.sleep`."""
        await trio.sleep(seconds)

    def event(self) -> Event:
        """A :class:`trio.Event`."""
        return trio.Event()

    def task_group(self) -> AbstractAsyncContextManager[TaskGroup]:
        """A trio nursery."""
        return trio.open_nursery()


class _AsyncioGroup:
    def __init__(self, group: asyncio.TaskGroup) -> None:
        self._group = group

    def start_soon(self, fn: Callable[..., Awaitable[Any]], *args: Any) -> Any:
        async def call() -> Any:
            return await fn(*args)

        return self._group.create_task(call())


class AsyncioRuntime:
    """asyncio, on the standard library's event loop or on uvloop (``loop="uvloop"``)."""

    def __init__(self, loop: str = "asyncio") -> None:
        #: ``asyncio`` (the standard library's loop) or ``uvloop``.
        self.loop = loop

    @property
    def name(self) -> str:
        """``asyncio`` or ``asyncio+uvloop``."""
        return "asyncio" if self.loop == "asyncio" else f"asyncio+{self.loop}"

    def run(self, fn: Callable[..., Awaitable[T]], *args: Any) -> T:
        """Run ``fn(*args)`` with :func:`asyncio.run` (or ``uvloop.run``)."""

        async def main() -> T:
            return await fn(*args)

        if self.loop == "uvloop":
            import uvloop

            result: T = uvloop.run(main())
            return result
        return asyncio.run(main())

    async def sleep(self, seconds: float) -> None:
        """:func:`asyncio.sleep`."""
        await asyncio.sleep(seconds)

    def event(self) -> Event:
        """An :class:`asyncio.Event`."""
        return asyncio.Event()

    @contextlib.asynccontextmanager
    async def task_group(self) -> AsyncIterator[TaskGroup]:
        """An :class:`asyncio.TaskGroup` with a ``start_soon`` method."""
        async with asyncio.TaskGroup() as group:
            yield _AsyncioGroup(group)


#: The runtime of the trio clients.
TRIO = TrioRuntime()
#: The runtime of the asyncio clients (``bench.client --asyncio-loop`` sets its loop).
ASYNCIO = AsyncioRuntime()
