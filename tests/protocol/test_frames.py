"""Masking and frame serialization."""

from __future__ import annotations

import os

from hypothesis import given
from hypothesis import strategies as st

from trio_mws.protocol.frames import (
    ACCELERATED,
    MASK_PIECE,
    apply_mask,
    apply_mask_pure,
    serialize_frame,
)


def reference_mask(data: bytes, key: bytes) -> bytes:
    return bytes(byte ^ key[index % 4] for index, byte in enumerate(data))


@given(st.binary(max_size=300), st.binary(min_size=4, max_size=4))
def test_apply_mask_matches_the_definition(data: bytes, key: bytes) -> None:
    assert apply_mask(data, key) == reference_mask(data, key)
    assert apply_mask(bytearray(data), key) == reference_mask(data, key)
    assert apply_mask(apply_mask(data, key), key) == data


@given(st.binary(max_size=300), st.binary(min_size=4, max_size=4))
def test_pure_python_masking_matches_the_definition(data: bytes, key: bytes) -> None:
    assert apply_mask_pure(data, key) == reference_mask(data, key)


def test_apply_mask_across_pieces() -> None:
    data = bytes(range(256)) * ((2 * MASK_PIECE + 1000) // 256)
    key = b"\x01\x80\xfe\x37"
    assert apply_mask(memoryview(data), key) == reference_mask(data, key)
    assert apply_mask_pure(memoryview(data), key) == reference_mask(data, key)


def test_the_c_accelerator_is_built_where_ci_builds_the_package() -> None:
    # Users without a compiler get pure-Python masking (the tests above cover it); CI has
    # one, so there the accelerator must be in use.
    if os.environ.get("CI") == "true":
        assert ACCELERATED


@given(st.integers(min_value=126, max_value=70000), st.binary(min_size=1, max_size=64))
def test_masked_frames_unmask_to_the_payload(length: int, seed: bytes) -> None:
    payload = (seed * (length // len(seed) + 1))[:length]
    frame = b"".join(serialize_frame(0x2, payload, fin=True))
    offset = 4 if length < 65536 else 10
    key = frame[offset : offset + 4]
    assert reference_mask(frame[offset + 4 :], key) == payload


def test_unmasked_serialization() -> None:
    assert serialize_frame(0x1, b"hi", fin=True, mask=False) == [b"\x81\x02hi"]
    assert serialize_frame(0x2, b"", fin=False, rsv1=True, mask=False) == [b"\x42\x00"]
    assert serialize_frame(0x2, b"x" * 126, fin=True, mask=False) == [
        b"\x82\x7e\x00\x7e" + b"x" * 126
    ]
