"""The one write choke point: every frame goes through :class:`FrameWriter`.

Callers hand whole frames to :meth:`FrameWriter.write`, which never awaits, so a frame is
either entirely queued or not at all: cancellation can never leave half a frame on the wire.

On a plain TCP socket (POSIX) the writer uses non-blocking system calls on the socket's file
descriptor directly: the first frame of a scheduling round is written at once, in the caller's
task (no task switch: what makes round trips fast); frames queued after it in the same round
are written together by the writer task with one ``writev`` (what makes pipelined sends
fast). A frame may come in parts (header, payload) so that large payloads are never copied to
be joined. On other streams (TLS) the writer task hands everything queued to ``send_all``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

import trio

__all__ = ["FrameWriter"]

#: Bytes queued beyond which senders wait for the writer (back-pressure).
HIGH_WATER = 64 * 1024
#: Buffers per writev call (the POSIX minimum of IOV_MAX is 16; Linux allows 1024).
_IOV_MAX = min(1024, os.sysconf("SC_IOV_MAX")) if hasattr(os, "sysconf") else 16

Chunk = bytes | memoryview


def _drop_written(chunks: list[Chunk], written: int) -> None:
    """Remove ``written`` bytes from the front of ``chunks``."""
    index = 0
    while index < len(chunks) and written >= len(chunks[index]):
        written -= len(chunks[index])
        index += 1
    del chunks[:index]
    if written:
        chunks[0] = memoryview(chunks[0])[written:]


class FrameWriter:
    """Queues frames and writes them.

    ``fd`` is the socket's file descriptor for direct writes, or ``None`` to use ``stream``.
    The writer task is started in ``nursery`` the first time something must wait to be
    written: an idle connection costs no task for it.
    ``on_error`` is called once with the exception that broke the connection; after that
    :meth:`write` drops frames (the connection is failing and callers learn it from the
    connection state). Call :meth:`detach` before the socket is closed: the descriptor is
    never touched again.
    """

    def __init__(
        self,
        stream: trio.abc.SendStream,
        on_error: Callable[[BaseException], None],
        nursery: trio.Nursery,
        fd: int | None = None,
    ) -> None:
        self._stream = stream
        self._nursery: trio.Nursery | None = nursery
        self._fd = fd
        self._on_error = on_error
        self._chunks: list[Chunk] = []
        self._queued = 0
        self._writing = False
        self._broken = False
        self._direct_used = False
        self._parked = False  # the writer task waits for work
        # Created when first needed (a parking lot costs ~0.5 KiB; idle sockets need none):
        self._work: trio.lowlevel.ParkingLot | None = None  # the writer task waits for work
        self._progress: trio.lowlevel.ParkingLot | None = None  # senders wait for the writer

    @property
    def queued(self) -> int:
        """Bytes queued and not yet handed to the socket."""
        return self._queued

    @property
    def writing(self) -> bool:
        """Whether the writer task is writing (or waiting to write) right now."""
        return self._writing

    @property
    def broken(self) -> bool:
        """Whether writing failed or the writer was detached; nothing more will be written."""
        return self._broken

    def write(self, *parts: bytes) -> None:
        """Queue (or write at once) one whole frame, given as one or more parts.

        Never blocks and never awaits.
        """
        if self._broken:
            return
        fd = self._fd
        if fd is not None and not (self._direct_used or self._chunks or self._writing):
            self._direct_used = True  # later frames of this round are batched
            try:
                written = os.write(fd, parts[0]) if len(parts) == 1 else os.writev(fd, parts)
            except BlockingIOError:
                written = 0
            except OSError as exc:
                self._fail(exc)
                return
            if written == sum(map(len, parts)):
                return
            rest: list[Chunk] = list(parts)
            _drop_written(rest, written)
            self._queue(rest)
        else:
            self._queue(parts)

    def _queue(self, parts: Sequence[Chunk]) -> None:
        self._chunks.extend(parts)
        self._queued += sum(map(len, parts))
        if self._nursery is not None:  # first time: start the writer task
            nursery, self._nursery = self._nursery, None
            try:
                nursery.start_soon(self.run)
            except RuntimeError as exc:  # the socket's nursery is closing: so is the socket
                self._fail(exc)
        elif self._parked and self._work is not None:
            self._parked = False
            self._work.unpark()

    def allow_direct(self) -> None:
        """A new scheduling round has begun (the reader got data): write the next frame at
        once again."""
        self._direct_used = False

    def must_wait(self) -> bool:
        """Whether a sender should :meth:`wait_for_space` before queuing more."""
        return self._queued >= HIGH_WATER and not self._broken

    async def wait_for_space(self) -> None:
        """Wait until the queue is below the high-water mark (or writing failed)."""
        while self.must_wait():
            await self._waiters().park()

    async def flush(self) -> None:
        """Wait until everything queued so far was handed to the socket (or writing failed)."""
        while (self._queued or self._writing) and not self._broken:
            await self._waiters().park()

    def _waiters(self) -> trio.lowlevel.ParkingLot:
        if self._progress is None:
            self._progress = trio.lowlevel.ParkingLot()
        return self._progress

    def _wake_waiters(self) -> None:
        if self._progress is not None:
            self._progress.unpark_all()

    def detach(self) -> None:
        """Stop writing for good (the socket is about to close); wake everyone waiting."""
        self._broken = True
        self._fd = None
        self._chunks.clear()
        self._queued = 0
        self._wake_waiters()
        if self._work is not None:
            self._work.unpark_all()

    async def run(self) -> None:
        """The writer task: write whenever something is queued."""
        self._work = work = trio.lowlevel.ParkingLot()
        try:
            while not self._broken:
                self._direct_used = False
                if not self._chunks:
                    self._parked = True
                    await work.park()
                    continue
                chunks, self._chunks = self._chunks, []
                self._queued = 0
                self._writing = True
                self._wake_waiters()  # room in the queue again
                if self._fd is None:
                    await self._stream.send_all(b"".join(chunks))
                else:
                    await self._write_fd(chunks)
                self._writing = False
                if not self._chunks:
                    self._wake_waiters()  # everything written
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
            if not self._broken:
                self._fail(exc)
        finally:
            self._writing = False

    async def _write_fd(self, chunks: list[Chunk]) -> None:
        while chunks:
            fd = self._fd
            if fd is None:  # detached: the socket is closing
                return
            try:
                written = os.writev(fd, chunks[:_IOV_MAX])
            except BlockingIOError:
                written = -1
            if written < 0:  # wait outside the except block: no exception kept alive
                await trio.lowlevel.wait_writable(fd)
                continue
            _drop_written(chunks, written)

    def _fail(self, exc: BaseException) -> None:
        self.detach()
        self._on_error(exc)
