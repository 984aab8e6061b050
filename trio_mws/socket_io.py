"""Socket I/O with one contract: :class:`SocketIO` reads and writes one connected stream.

Two ways to move bytes hide behind it. On a plain TCP socket (POSIX) it uses non-blocking
system calls on the socket's file descriptor directly, which skips the scheduling round trio
adds after every socket operation; on any other ``trio.abc.Stream`` (TLS) it uses the stream.

Reading: :meth:`SocketIO.receive` returns what is available, as much as possible in one
piece: reads start at 64 KiB and grow to 1 MiB while data streams in (one read filled the
buffer), so big messages need few reads and the engine gets few, large chunks.

Writing: :meth:`SocketIO.write` never awaits, so a frame is either entirely queued or not at
all: cancellation never leaves half a frame on the wire. The first write of a scheduling round
goes out at once from the caller's task (no task switch: what makes round trips fast); writes
queued after it in the same round go out together from the writer task with one ``writev``
(what makes pipelined sends fast). Large payloads come as separate buffers and are never
joined. :meth:`SocketIO.send_all` is the awaiting form for code that has no writer task yet
(the opening handshake).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

import trio

__all__ = [
    "BULK_RECEIVE_SIZE",
    "HIGH_WATER",
    "RECEIVE_SIZE",
    "TRANSPORT_ERRORS",
    "SocketIO",
    "direct_descriptor",
]

#: Bytes asked of the socket per read while it is not streaming. Larger reads cost a mmap
#: per read in CPython...
RECEIVE_SIZE = 64 * 1024
#: ... which is worth it while data streams in: fewer, larger chunks for the engine.
BULK_RECEIVE_SIZE = 1024 * 1024
#: Bytes queued beyond which senders wait for the writer (back-pressure).
HIGH_WATER = 64 * 1024
#: Buffers per writev call (the POSIX minimum of IOV_MAX is 16; Linux allows 1024).
_IOV_MAX = min(1024, os.sysconf("SC_IOV_MAX")) if hasattr(os, "sysconf") else 16

Chunk = bytes | memoryview

#: The errors that mean the transport is gone (what :meth:`SocketIO.receive` may raise).
TRANSPORT_ERRORS = (trio.BrokenResourceError, trio.ClosedResourceError, OSError)


def _drop_written(chunks: list[Chunk], written: int) -> None:
    """Remove ``written`` bytes from the front of ``chunks``."""
    index = 0
    while index < len(chunks) and written >= len(chunks[index]):
        written -= len(chunks[index])
        index += 1
    del chunks[:index]
    if written:
        chunks[0] = memoryview(chunks[0])[written:]


def direct_descriptor(stream: trio.abc.Stream) -> int | None:
    """The file descriptor to read and write with direct non-blocking system calls, or None.

    Only a plain TCP socket on POSIX qualifies (``os.read``/``os.write`` do not work on
    Windows sockets, and TLS needs its stream). Direct calls skip the scheduling round trio
    adds after each successful socket operation.
    """
    if isinstance(stream, trio.SocketStream) and os.name == "posix":
        return stream.socket.fileno()
    return None


class SocketIO:
    """Reads and writes ``stream``; direct system calls when it is a plain TCP socket.

    One reader task may call :meth:`receive`; any task may :meth:`write`. Call :meth:`start`
    to allow queued writes (the writer task is started in the given nursery the first time
    something must wait to be written: an idle connection costs no task for it).
    ``on_error`` is called once with the exception that broke writing; after that
    :meth:`write` drops what it is given. :meth:`aclose` closes the stream; nothing touches
    the descriptor afterwards.
    """

    __slots__ = (
        "_chunks",
        "_direct_used",
        "_fd",
        "_nursery",
        "_on_error",
        "_parked",
        "_progress",
        "_queued",
        "_read_size",
        "_work",
        "_writing",
        "broken",
        "closed",
        "stream",
    )

    def __init__(self, stream: trio.abc.Stream) -> None:
        #: The stream (``trio.SocketStream`` or a TLS stream over one).
        self.stream = stream
        self._fd = direct_descriptor(stream)
        #: Whether writing failed or the stream was closed: nothing more will be written.
        self.broken = False
        #: Whether :meth:`aclose` ran.
        self.closed = False
        # 0: wait until readable before the first read. A read that fails with
        # BlockingIOError keeps a frame object alive in the idle reader (~0.2 KiB).
        self._read_size = 0
        self._nursery: trio.Nursery | None = None
        self._on_error: Callable[[BaseException], None] | None = None
        self._chunks: list[Chunk] = []
        self._queued = 0
        self._writing = False
        self._direct_used = False
        self._parked = False  # the writer task waits for work
        # Created when first needed (a parking lot costs ~0.5 KiB; idle sockets need none):
        self._work: trio.lowlevel.ParkingLot | None = None  # the writer task waits for work
        self._progress: trio.lowlevel.ParkingLot | None = None  # senders wait for the writer

    def start(self, nursery: trio.Nursery, on_error: Callable[[BaseException], None]) -> None:
        """Allow queued writes: the writer task will run in ``nursery``."""
        self._nursery = nursery
        self._on_error = on_error

    # -- reading -----------------------------------------------------------------------------

    async def receive(self) -> bytes:
        """The next bytes from the peer, as many as are available (``b""`` at EOF).

        Raises ``trio.BrokenResourceError``, ``trio.ClosedResourceError`` or ``OSError`` when
        the transport fails or was closed.
        """
        size = self._read_size
        fd = self._fd
        if fd is None:
            if self.closed:
                raise trio.ClosedResourceError("the socket was closed")
            size = size or RECEIVE_SIZE
            received = bytes(await self.stream.receive_some(size))
            # A TLS stream hands out what it has decrypted; a full answer means more waits.
            self._read_size = BULK_RECEIVE_SIZE if len(received) >= size else RECEIVE_SIZE
            self._direct_used = False
            return received
        data: bytes | None
        while True:
            if not size:  # the last read emptied the socket: wait before trying again
                self._read_size = size = RECEIVE_SIZE
                data = None
            else:
                try:
                    data = os.read(fd, size)
                except BlockingIOError:
                    data = None
            if data is not None:
                break
            await trio.lowlevel.wait_readable(fd)  # outside the except block: no exception kept
            fd = self._fd
            if fd is None:
                raise trio.ClosedResourceError("the socket was closed")
        if len(data) == size:  # more is waiting: read big, but let other tasks run first
            self._read_size = BULK_RECEIVE_SIZE
            await trio.lowlevel.cancel_shielded_checkpoint()
        else:
            self._read_size = 0  # a short read: the socket is most likely empty now
        self._direct_used = False  # a new scheduling round: the next write may go at once
        return data

    def receive_nowait(self) -> bytes | None:
        """Bytes already waiting in the socket (``b""`` at EOF), or None when there are none
        or this is not a direct descriptor. Never blocks; ``OSError`` if the socket failed."""
        fd = self._fd
        if fd is None:
            return None
        try:
            return os.read(fd, RECEIVE_SIZE)
        except BlockingIOError:
            return None

    # -- writing -----------------------------------------------------------------------------

    @property
    def queued(self) -> int:
        """Bytes queued and not yet handed to the socket."""
        return self._queued

    @property
    def idle(self) -> bool:
        """Whether everything written so far was handed to the socket."""
        return not (self._queued or self._writing)

    def write(self, parts: Sequence[Chunk]) -> None:
        """Queue (or write at once) ``parts``, in order. Never blocks and never awaits."""
        if self.broken or not parts:
            return
        fd = self._fd
        if fd is not None and not (self._direct_used or self._chunks or self._writing):
            self._direct_used = True  # later writes of this round are batched
            try:
                # At most _IOV_MAX buffers per call (more is EINVAL); the rest is queued.
                written = (
                    os.write(fd, parts[0]) if len(parts) == 1 else os.writev(fd, parts[:_IOV_MAX])
                )
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
        if self._work is None:  # first time: start the writer task
            self._work = trio.lowlevel.ParkingLot()
            nursery = self._nursery
            try:
                if nursery is None:
                    raise RuntimeError("SocketIO.start() was not called")
                nursery.start_soon(self._run)
            except RuntimeError as exc:  # the socket's nursery is closing: so is the socket
                self._fail(exc)
        elif self._parked:
            self._parked = False
            self._work.unpark()

    def must_wait(self) -> bool:
        """Whether a sender should :meth:`wait_for_space` before queuing more."""
        return self._queued >= HIGH_WATER and not self.broken

    async def wait_for_space(self) -> None:
        """Wait until the queue is below the high-water mark (or writing failed)."""
        while self.must_wait():
            await self._waiters().park()

    async def flush(self) -> None:
        """Wait until everything queued so far was handed to the socket (or writing failed)."""
        while not self.idle and not self.broken:
            await self._waiters().park()

    async def send_all(self, data: bytes) -> None:
        """Write ``data`` and wait until it is handed to the socket; raises what the
        transport raises. For use before the writer task exists (the handshake)."""
        fd = self._fd
        if fd is None:
            await self.stream.send_all(data)
            return
        chunks: list[Chunk] = [data]
        await self._write_fd(chunks)
        await trio.lowlevel.checkpoint()

    async def send_eof(self) -> None:
        """Half-close the stream when it supports it (a TLS stream does not)."""
        if isinstance(self.stream, trio.abc.HalfCloseableStream) and not self.closed:
            await self.stream.send_eof()

    def _waiters(self) -> trio.lowlevel.ParkingLot:
        if self._progress is None:
            self._progress = trio.lowlevel.ParkingLot()
        return self._progress

    def _wake_waiters(self) -> None:
        if self._progress is not None:
            self._progress.unpark_all()

    async def _run(self) -> None:
        """The writer task: write whenever something is queued."""
        work = self._work
        assert work is not None
        try:
            while not self.broken:
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
                    await self.stream.send_all(b"".join(chunks))
                else:
                    await self._write_fd(chunks)
                self._writing = False
                if not self._chunks:
                    self._wake_waiters()  # everything written
        except TRANSPORT_ERRORS as exc:
            if not self.broken:
                self._fail(exc)
        finally:
            self._writing = False

    async def _write_fd(self, chunks: list[Chunk]) -> None:
        while chunks:
            fd = self._fd
            if fd is None:
                raise trio.ClosedResourceError("the socket was closed")
            try:
                written = os.writev(fd, chunks[:_IOV_MAX])
            except BlockingIOError:
                written = -1
            if written < 0:  # wait outside the except block: no exception kept alive
                await trio.lowlevel.wait_writable(fd)
                continue
            _drop_written(chunks, written)

    def _stop_writing(self) -> None:
        self.broken = True
        self._chunks.clear()
        self._queued = 0
        self._wake_waiters()
        if self._work is not None:
            self._work.unpark_all()

    def _fail(self, exc: BaseException) -> None:
        self._stop_writing()
        if self._on_error is not None:
            self._on_error(exc)

    # -- closing -----------------------------------------------------------------------------

    async def aclose(self) -> None:
        """Close the stream now (the only way it is closed); wake everyone waiting.

        The descriptor is let go first: a closed descriptor's number may be reused at once.
        """
        self._stop_writing()
        self._fd = None
        if self.closed:
            return
        self.closed = True
        stream = self.stream
        if isinstance(stream, trio.SocketStream):
            stream.socket.close()  # synchronous: what aclose() does, minus its checkpoint
        else:
            await trio.aclose_forcefully(stream)
