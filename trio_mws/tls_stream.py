"""TLS over any trio stream, handing out everything already decrypted at once.

:class:`TlsStream` is the client side of TLS on a ``trio.abc.Stream`` (a TCP socket, or TLS
to an HTTPS proxy: TLS in TLS), built on the standard library's ``ssl.MemoryBIO`` and
``ssl.SSLObject``. Compared with ``trio.SSLStream`` it:

* reads the transport in big pieces (:data:`RAW_RECEIVE_SIZE`) and makes each
  ``receive_some`` return all the data it can decrypt from what was received, rather than one
  TLS record (at most 16 KiB) per call with a scheduling round each: many small messages cost
  one call, and a big message arrives in few large pieces;
* reads and writes a plain TCP socket (POSIX) with direct non-blocking system calls;
* exposes its ``ssl_object`` (the chain the server sent is read from it).

Cancellation: cancelling ``receive_some`` is safe, no data is lost. A cancelled ``send_all``
may have written part of its data; the stream is then broken (later sends raise
``trio.BrokenResourceError``), as with ``trio.SSLStream``: close it.
"""

from __future__ import annotations

import os
import ssl
import threading

import trio

from .socket_io import direct_descriptor

__all__ = ["CLOSE_NOTIFY_TIMEOUT", "RAW_RECEIVE_SIZE", "TlsStream"]

#: Bytes asked of the transport per read (int). Big reads bring many records per call.
RAW_RECEIVE_SIZE = 256 * 1024
#: Plaintext bytes decrypted into the shared buffer before it is copied out (int).
_PLAIN_BUFFER_SIZE = 1024 * 1024
#: Plaintext bytes encrypted per transport write (int): big enough for few system calls, small
#: enough that the outgoing BIO never holds a whole large message.
_SEND_SLICE = 256 * 1024
#: Seconds :meth:`TlsStream.aclose` waits to hand the close_notify alert to the transport
#: (float): a peer that does not read must not hold closing up.
CLOSE_NOTIFY_TIMEOUT = 1.0


class _Buffers(threading.local):
    """Scratch buffers shared by the streams of one thread: filled and emptied again without
    an await in between, so that no stream keeps a large buffer of its own."""

    def __init__(self) -> None:
        self.raw = memoryview(bytearray(RAW_RECEIVE_SIZE))
        self.plain = memoryview(bytearray(_PLAIN_BUFFER_SIZE))


_buffers = _Buffers()


class TlsStream(trio.abc.Stream):
    """The client side of TLS on ``transport_stream``, verified as ``ssl_context`` says.

    ``server_hostname`` (str or None) is sent as SNI and checked when the context checks
    host names. Call :meth:`do_handshake` first (``receive_some``/``send_all`` run it when it
    was not). One task at a time may receive and one may send (``trio.BusyResourceError``
    otherwise). Failures raise ``trio.BrokenResourceError`` with the ``ssl.SSLError`` as its
    ``__cause__``; an EOF without the peer's close_notify is ``ssl.SSLEOFError``.
    What reading makes OpenSSL send (TLS 1.2 renegotiation, TLS 1.3 post-handshake
    authentication) is sent by the reader, or by a sender busy at that moment; a send that
    meets a renegotiation in progress raises ``trio.BrokenResourceError`` (not supported).
    """

    def __init__(
        self,
        transport_stream: trio.abc.Stream,
        ssl_context: ssl.SSLContext,
        *,
        server_hostname: str | None = None,
    ) -> None:
        #: The stream under TLS (trio.abc.Stream); closed by :meth:`aclose`.
        self.transport_stream = transport_stream
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        #: The ``ssl.SSLObject`` of this connection (peer certificate, version, cipher...).
        self.ssl_object = ssl_context.wrap_bio(
            self._incoming, self._outgoing, server_hostname=server_hostname
        )
        self._fd = direct_descriptor(transport_stream)
        self._handshake_lock = trio.Lock()
        self._handshake_done = False
        self._receiving = False
        self._sending = False
        # The send lock: whoever hands the outgoing BIO's bytes to the transport holds it.
        # A receiver never waits for it (a sender in progress also writes what reading made).
        self._writing = False
        self._written: trio.lowlevel.ParkingLot | None = None
        self._peer_closed = False  # close_notify received: receive_some returns b""
        self._error: BaseException | None = None  # raised (as cause) once the data before it is out
        self._broken: trio.BrokenResourceError | None = None
        self._closed = False

    # -- the handshake -----------------------------------------------------------------------

    async def do_handshake(self) -> None:
        """Run the TLS handshake (once; later calls return at once). Cancellable; a failure
        raises ``trio.BrokenResourceError`` from the ``ssl.SSLError`` (for example
        ``ssl.SSLCertVerificationError``) after sending OpenSSL's alert when possible."""
        async with self._handshake_lock:
            if self._handshake_done:
                return
            self._check_usable()
            self._writing = True  # nobody else writes before the handshake is done
            try:
                while True:
                    try:
                        self.ssl_object.do_handshake()
                        done = True
                    except ssl.SSLWantReadError:
                        done = False
                    except ssl.SSLError as exc:
                        error = self._break(exc, "TLS handshake failed")
                        await self._send_alert()
                        raise error from exc
                    await self._write_outgoing()
                    if done:
                        break
                    await self._receive_raw()
            finally:
                self._release_writing()
            self._handshake_done = True

    async def _send_alert(self) -> None:
        """Best effort: the alert explaining a failed handshake, bounded in time."""
        with trio.move_on_after(CLOSE_NOTIFY_TIMEOUT):
            try:
                await self._write_outgoing()
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                pass

    # -- receiving ---------------------------------------------------------------------------

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        """All the data that can be decrypted now, at most ``max_bytes`` (int, default 1 MiB;
        one transport read brings at most :data:`RAW_RECEIVE_SIZE`); waits for the transport
        only when nothing is decrypted yet. ``b""`` after the peer's close_notify. Cancelling
        it loses nothing."""
        if max_bytes is not None and max_bytes < 1:
            raise ValueError("max_bytes must be >= 1")
        if self._receiving:
            raise trio.BusyResourceError("another task is already receiving on this stream")
        self._receiving = True
        try:
            if not self._handshake_done:
                await self.do_handshake()
            await trio.lowlevel.checkpoint_if_cancelled()
            limit = max_bytes if max_bytes is not None else _PLAIN_BUFFER_SIZE
            data = self._decrypt(limit)
            if data is not None:
                await self._answer()
                await trio.lowlevel.cancel_shielded_checkpoint()
                return data
            while True:  # every pass awaits the transport: bounded by the peer's bytes
                await self._answer()  # e.g. a renegotiation's next message, before waiting
                await self._receive_raw()
                data = self._decrypt(limit)
                if data is not None:
                    await self._answer()
                    return data
        finally:
            self._receiving = False

    def _decrypt(self, limit: int) -> bytes | None:
        """Up to ``limit`` bytes decrypted from the incoming BIO; None when it needs more
        bytes from the transport, ``b""`` after close_notify."""
        self._check_usable()
        if self._peer_closed:
            return b""
        read = self.ssl_object.read
        view = _buffers.plain
        pieces: list[bytes] = []
        size = min(limit, len(view))
        filled = 0
        while True:
            try:
                # With a buffer, read() returns the byte count (typeshed says bytes).
                count: int = read(size - filled, view[filled:size])  # type: ignore[assignment]
            except ssl.SSLWantReadError:
                break
            except ssl.SSLZeroReturnError:
                count = 0
            except ssl.SSLError as exc:
                self._error = exc  # after the data decrypted before it
                break
            if not count:  # close_notify (the ssl module reports it as a read of 0 bytes)
                self._peer_closed = True
                break
            filled += count
            if filled == size:
                limit -= filled
                pieces.append(bytes(view[:filled]))
                filled = 0
                size = min(limit, len(view))
                if not size:
                    break
        if filled:
            pieces.append(bytes(view[:filled]))
        if pieces:
            return pieces[0] if len(pieces) == 1 else b"".join(pieces)
        if self._error is not None:
            error, self._error = self._error, None
            if isinstance(error, ssl.SSLEOFError):
                raise self._break(
                    error, "the peer closed the connection without a TLS close_notify"
                )
            raise self._break(error, "TLS error while receiving")
        return b"" if self._peer_closed else None

    async def _answer(self) -> None:
        """Send what reading produced (a renegotiation or post-handshake authentication
        message), unless a writer is busy: it sends it after its own data. Shielded (bounded
        by :data:`CLOSE_NOTIFY_TIMEOUT`) so that cancelling a receive never leaves half an
        answer written, which would break the stream."""
        if self._outgoing.pending and not self._writing:
            self._writing = True
            try:
                with trio.CancelScope(shield=True), trio.move_on_after(CLOSE_NOTIFY_TIMEOUT):
                    await self._write_outgoing()
            finally:
                self._release_writing()

    async def _receive_raw(self) -> None:
        """Read the transport once into the incoming BIO (EOF included). Always a checkpoint."""
        fd = self._fd
        if fd is None:
            try:
                data = await self.transport_stream.receive_some(RAW_RECEIVE_SIZE)
            except trio.BrokenResourceError as exc:
                raise self._break(exc.__cause__ or exc, "the transport failed") from exc
            if data:
                self._incoming.write(data)
            else:
                self._incoming.write_eof()
            return
        view = _buffers.raw
        waited = False
        while True:
            try:
                count = os.readv(fd, [view])
            except BlockingIOError:
                count = -1
            except OSError as exc:
                raise self._break(exc, "the connection failed") from exc
            if count >= 0:
                break
            await trio.lowlevel.wait_readable(fd)  # outside the except block: no exception kept
            waited = True
            fd = self._fd
            if fd is None:
                raise trio.ClosedResourceError("the stream was closed")
        if count:
            self._incoming.write(view[:count])
        else:
            self._incoming.write_eof()
        if not waited:
            await trio.lowlevel.cancel_shielded_checkpoint()

    # -- sending -----------------------------------------------------------------------------

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        """Encrypt ``data`` and write it to the transport: at once up to 256 KiB, in 256 KiB
        slices beyond. Cancelling it may leave the stream broken (part of a record written):
        close it then."""
        if self._sending:
            raise trio.BusyResourceError("another task is already sending on this stream")
        self._sending = True
        try:
            if not self._handshake_done:
                await self.do_handshake()
            self._check_usable()
            await trio.lowlevel.checkpoint_if_cancelled()
            waited = await self._acquire_writing()
            try:
                view = memoryview(data)
                for start in range(0, len(view), _SEND_SLICE):
                    self._encrypt(view[start : start + _SEND_SLICE])
                    waited = await self._write_outgoing() or waited
                if not view:
                    waited = await self._write_outgoing() or waited
            finally:
                self._release_writing()
            if not waited:
                await trio.lowlevel.cancel_shielded_checkpoint()
        finally:
            self._sending = False

    def _encrypt(self, data: memoryview) -> None:
        try:
            self.ssl_object.write(data)
        except ssl.SSLWantReadError as exc:
            # OpenSSL waits for the server's part of a renegotiation, which only the
            # receiving side reads: unsupported while sending.
            raise self._break(exc, "TLS renegotiation while sending") from exc
        except ssl.SSLError as exc:
            raise self._break(exc, "TLS error while sending") from exc

    async def wait_send_all_might_not_block(self) -> None:
        """Wait until the transport may accept more data (``trio.abc.SendStream``)."""
        if self._sending:
            raise trio.BusyResourceError("another task is already sending on this stream")
        self._sending = True
        try:
            self._check_usable()
            await self.transport_stream.wait_send_all_might_not_block()
        finally:
            self._sending = False

    async def _acquire_writing(self) -> bool:
        """Take the send lock (a receiver may hold it briefly); True if it waited."""
        waited = False
        while self._writing:
            if self._written is None:
                self._written = trio.lowlevel.ParkingLot()
            await self._written.park()
            waited = True
            self._check_usable()
        self._writing = True
        return waited

    def _release_writing(self) -> None:
        self._writing = False
        if self._written is not None:
            self._written.unpark()

    async def _write_outgoing(self) -> bool:
        """Hand every byte of the outgoing BIO to the transport (send lock held); True if
        it waited. Bytes taken from the BIO and not written break the stream."""
        outgoing = self._outgoing
        waited = False
        while outgoing.pending:
            data = outgoing.read()
            try:
                waited = await self._send_raw(data) or waited
            except BaseException as exc:  # Cancelled too: the record stream has a hole now
                error = self._break(exc, "sending failed")
                if isinstance(exc, (trio.BrokenResourceError, OSError)):
                    raise error from exc
                raise
        return waited

    async def _send_raw(self, data: bytes) -> bool:
        fd = self._fd
        if fd is None:
            await self.transport_stream.send_all(data)
            return True
        view = memoryview(data)
        waited = False
        while view:
            try:
                written = os.write(fd, view)
            except BlockingIOError:
                written = -1
            if written < 0:  # wait outside the except block: no exception kept alive
                await trio.lowlevel.wait_writable(fd)
                waited = True
                fd = self._fd
                if fd is None:
                    raise trio.ClosedResourceError("the stream was closed")
                continue
            view = view[written:]
        return waited

    # -- state and closing -------------------------------------------------------------------

    def _break(self, cause: BaseException, what: str) -> trio.BrokenResourceError:
        """Record that the stream is broken; the error to raise (from ``cause``)."""
        if self._broken is None:
            self._broken = trio.BrokenResourceError(f"{what}: {cause}")
            self._broken.__cause__ = cause
        return self._broken

    def _check_usable(self) -> None:
        if self._closed:
            raise trio.ClosedResourceError("the TLS stream was closed")
        if self._broken is not None:
            raise self._broken

    async def aclose(self) -> None:
        """Send close_notify (at most :data:`CLOSE_NOTIFY_TIMEOUT` seconds, not when broken or
        while another task writes) and close the transport. A cancelled ``aclose`` still
        closes."""
        if self._closed:
            await trio.lowlevel.checkpoint()
            return
        try:
            if self._handshake_done and self._broken is None and not self._writing:
                self._writing = True
                try:
                    with trio.move_on_after(CLOSE_NOTIFY_TIMEOUT):
                        try:
                            self.ssl_object.unwrap()
                        except ssl.SSLError:  # SSLWantReadError: we do not wait for the peer's
                            pass
                        await self._write_outgoing()
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    pass
                finally:
                    self._release_writing()
        finally:
            self._closed = True
            self._fd = None
            await self.transport_stream.aclose()
