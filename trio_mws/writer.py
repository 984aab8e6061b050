"""The one write choke point: every frame goes through :class:`FrameWriter`.

Callers append whole frames with :meth:`FrameWriter.write`, which never awaits, so a frame is
either entirely queued or not at all: cancellation can never leave half a frame on the wire.
A single writer task flushes everything queued with one ``send_all``, which coalesces the
frames of pipelined sends into few system calls.
"""

from __future__ import annotations

from collections.abc import Callable

import trio

__all__ = ["FrameWriter"]

#: Bytes queued beyond which senders wait for the writer (back-pressure).
HIGH_WATER = 64 * 1024


class FrameWriter:
    """Queues frames and writes them from one task.

    ``on_error`` is called once, from the writer task, with the exception that broke the
    stream; after that :meth:`write` silently drops frames (the connection is failing and the
    caller learns it from the connection state).
    """

    def __init__(
        self, stream: trio.abc.SendStream, on_error: Callable[[BaseException], None]
    ) -> None:
        self._stream = stream
        self._on_error = on_error
        self._chunks: list[bytes] = []
        self._queued = 0
        self._writing = False
        self._broken = False
        self._work = trio.lowlevel.ParkingLot()
        self._space = trio.lowlevel.ParkingLot()
        self._idle = trio.lowlevel.ParkingLot()

    @property
    def queued(self) -> int:
        """Bytes queued and not yet handed to the stream."""
        return self._queued

    @property
    def broken(self) -> bool:
        """Whether writing failed; nothing more will be written."""
        return self._broken

    def write(self, frame: bytes) -> None:
        """Queue a whole frame. Never blocks and never awaits."""
        if self._broken:
            return
        self._chunks.append(frame)
        self._queued += len(frame)
        if not self._writing:
            self._work.unpark()

    def must_wait(self) -> bool:
        """Whether a sender should :meth:`wait_for_space` before queuing more."""
        return self._queued >= HIGH_WATER and not self._broken

    async def wait_for_space(self) -> None:
        """Wait until the queue is below the high-water mark (or writing failed)."""
        while self.must_wait():
            await self._space.park()

    async def flush(self) -> None:
        """Wait until everything queued so far was handed to the stream (or writing failed)."""
        while (self._queued or self._writing) and not self._broken:
            await self._idle.park()

    async def run(self) -> None:
        """The writer task: flush whenever there is something to write."""
        try:
            while True:
                if not self._chunks:
                    await self._work.park()
                    continue
                chunks, self._chunks = self._chunks, []
                data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
                self._queued = 0
                self._writing = True
                self._space.unpark_all()
                await self._stream.send_all(data)
                self._writing = False
                if not self._chunks:
                    self._idle.unpark_all()
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
            self._fail(exc)
        finally:
            self._writing = False

    def _fail(self, exc: BaseException) -> None:
        self._broken = True
        self._chunks.clear()
        self._queued = 0
        self._space.unpark_all()
        self._idle.unpark_all()
        self._on_error(exc)
