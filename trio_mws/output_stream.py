"""``ws.output_stream``: the socket as a ``trio.abc.SendStream`` of whole messages."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import trio

__all__ = ["MessageOutputStream"]


class MessageOutputStream(trio.abc.SendStream):
    """Each ``send_all(data)`` sends ``data`` as one complete message of
    ``control.message_type``; ``aclose()`` closes the socket.

    Made by the socket from three of its operations: ``send`` (one message), ``wait_room``
    (until the write queue is below its high-water mark) and ``aclose``.
    """

    def __init__(
        self,
        send: Callable[[bytes], Awaitable[None]],
        wait_room: Callable[[], Awaitable[None]],
        aclose: Callable[[], Awaitable[None]],
    ) -> None:
        self._send = send
        self._wait_room = wait_room
        self._aclose = aclose

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        """Send ``data`` as one message (``ConnectionClosed`` once closed)."""
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"send_all takes bytes-like data, not {type(data).__name__}")
        await self._send(bytes(data))

    async def wait_send_all_might_not_block(self) -> None:
        """Wait until the socket's write queue is below its high-water mark."""
        await self._wait_room()

    async def aclose(self) -> None:
        """Close the socket (empty close frame)."""
        await self._aclose()
