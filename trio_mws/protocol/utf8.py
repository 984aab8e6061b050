"""Incremental UTF-8 validation for text messages that arrive in pieces."""

from __future__ import annotations

import codecs

__all__ = ["Utf8Validator", "character_boundary"]

_IncrementalDecoder = codecs.getincrementaldecoder("utf-8")


class Utf8Validator:
    """Validates one text message's bytes as they arrive, across frames and pieces.

    Uses the standard library's strict incremental decoder (the decoded text is thrown away:
    only validity matters). Pure-ASCII input skips the decoder.
    """

    __slots__ = ("_decoder", "pending")

    def __init__(self) -> None:
        self._decoder = _IncrementalDecoder()
        #: Bytes (0-3) at the end of the input so far that start a character not yet complete.
        self.pending = 0

    def feed(self, data: bytes, final: bool) -> bool:
        """Validate the next bytes; ``final`` when the message ends with them.

        Returns False when the input so far is not valid UTF-8 (or, with ``final``, ends in
        the middle of a character). :attr:`pending` tells how many trailing bytes belong to an
        incomplete character.
        """
        if not self.pending and data.isascii():
            return True
        try:
            self._decoder.decode(data, final)
        except UnicodeDecodeError:
            return False
        self.pending = len(self._decoder.getstate()[0])
        return True


def character_boundary(data: bytes | memoryview, end: int, start: int = 0) -> int:
    """The largest position ``<= end`` and ``> start`` that does not split a character of the
    valid UTF-8 ``data``; when a single character from ``start`` is longer than ``end -
    start``, the end of that character (so progress is always made)."""
    position = end
    while position > start and (data[position] & 0xC0) == 0x80:
        position -= 1
    if position > start:
        return position
    position = start + 1
    while position < len(data) and (data[position] & 0xC0) == 0x80:
        position += 1
    return position
