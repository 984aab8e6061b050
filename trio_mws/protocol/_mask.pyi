def mask(data: bytes | bytearray | memoryview, key: bytes, /) -> bytes:
    """``data`` XORed with the 4-byte ``key`` repeated."""
