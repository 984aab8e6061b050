"""``ws.output_stream``: the socket as a ``trio.abc.SendStream`` of whole messages."""

from __future__ import annotations

from typing import TYPE_CHECKING

import trio

if TYPE_CHECKING:
    from .message_websocket import MessageWebSocket

__all__ = ["MessageOutputStream"]


class MessageOutputStream(trio.abc.SendStream):
    """Each ``send_all(data)`` sends ``data`` as one complete message of
    ``control.message_type``; ``aclose()`` closes the socket."""

    def __init__(self, ws: MessageWebSocket) -> None:
        self._ws = ws

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        """Send ``data`` as one message (``ConnectionClosed`` once closed)."""
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"send_all takes bytes-like data, not {type(data).__name__}")
        await self._ws.send(bytes(data))

    async def wait_send_all_might_not_block(self) -> None:
        """Wait until the socket's write queue is below its high-water mark."""
        writer = self._ws._writer
        if writer is not None and writer.must_wait():
            await writer.wait_for_space()
        else:
            await trio.lowlevel.checkpoint()

    async def aclose(self) -> None:
        """Close the socket (empty close frame)."""
        await self._ws.aclose()
