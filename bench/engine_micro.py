"""Micro-benchmark of the sans-I/O engine against wsproto, without sockets.

Measures, in µs of CPU time per message (best of ``--rounds``):

- *parse*: ``--count`` pipelined 64-byte binary server frames fed in 64 KiB buffers, each
  buffer followed by taking its events (our :class:`ClientEngine` in FULL and PARTIAL mode,
  ``wsproto.Connection(ConnectionType.CLIENT)`` + ``events()``);
- *send*: ``--count`` 64-byte client messages serialized (masked) and taken as bytes;
- *compressed*: the same with permessage-deflate, 4 KiB JSON-like text messages;
- *mask*: MB/s of our pure-Python ``apply_mask`` for 64 B, 4 KiB and 1 MiB, against the
  compiled masker of websockets (``websockets.speedups``, an internal module of that library:
  measured here only, never used by trio_mws).

Usage (from the repository root)::

    python -m bench.engine_micro
    python -m bench.engine_micro --count 20000 --rounds 3
"""

from __future__ import annotations

import argparse
import json
import os
import time
import zlib
from collections.abc import Callable

from trio_mws.enums import SocketMessageType
from trio_mws.protocol import ClientEngine, DataReceived, DeflateParameters
from trio_mws.protocol.frames import apply_mask, serialize_frame

PAYLOAD = bytes(range(64))
READ_SIZE = 64 * 1024
TEXT_4K = json.dumps(
    [
        {"id": index, "name": f"item {index}", "tags": ["a", "b"], "price": index * 1.5}
        for index in range(60)
    ]
).encode()[:4096]


def _best(rounds: int, run: Callable[[], None]) -> float:
    """The best of ``rounds`` runs, in seconds of this process's CPU time (steadier than wall
    time on a shared machine)."""
    best = float("inf")
    for _ in range(rounds):
        start = time.process_time()
        run()
        best = min(best, time.process_time() - start)
    return best


def _buffers(wire: bytes) -> list[bytes]:
    return [wire[start : start + READ_SIZE] for start in range(0, len(wire), READ_SIZE)]


def _server_stream(count: int, payload: bytes, compressed: bool) -> bytes:
    if not compressed:
        frame = b"".join(serialize_frame(0x2, payload, fin=True, mask=False))
        return frame * count
    compressor = zlib.compressobj(6, zlib.DEFLATED, -15)
    frames = []
    for _ in range(count):
        data = (compressor.compress(payload) + compressor.flush(zlib.Z_SYNC_FLUSH))[:-4]
        frame = b"".join(serialize_frame(0x1, data, fin=True, mask=False))
        frames.append(bytes((frame[0] | 0x40,)) + frame[1:])
    return b"".join(frames)


def parse_ours(buffers: list[bytes], count: int, partial: bool, compressed: bool) -> None:
    engine = ClientEngine(
        max_message_size=None,
        partial=partial,
        deflate=DeflateParameters() if compressed else None,
    )
    received = 0
    for buffer in buffers:
        engine.receive_data(buffer)
        while events := engine.events_received():
            for event in events:
                if isinstance(event, DataReceived) and event.fin:
                    received += 1
    assert received == count, received


def parse_wsproto(buffers: list[bytes], count: int, compressed: bool) -> None:
    from wsproto.connection import Connection, ConnectionType
    from wsproto.events import Message
    from wsproto.extensions import Extension, PerMessageDeflate

    extensions: list[Extension] = []
    if compressed:
        deflate = PerMessageDeflate()
        # The public way to enable it outside a handshake: accept a server's answer.
        deflate.finalize("permessage-deflate")
        extensions.append(deflate)
    connection = Connection(ConnectionType.CLIENT, extensions=extensions)
    received = 0
    for buffer in buffers:
        connection.receive_data(buffer)
        for event in connection.events():
            if isinstance(event, Message) and event.message_finished:
                received += 1
    assert received == count, received


def send_ours(count: int, payload: bytes, compressed: bool) -> None:
    engine = ClientEngine(
        max_message_size=None, partial=False, deflate=DeflateParameters() if compressed else None
    )
    kind = SocketMessageType.UTF8 if compressed else SocketMessageType.BINARY
    send = engine.send_data
    for _ in range(count):
        send(kind, payload, fin=True)
        engine.data_to_send()


def send_wsproto(count: int, payload: bytes, compressed: bool) -> None:
    from wsproto.connection import Connection, ConnectionType
    from wsproto.events import BytesMessage, TextMessage
    from wsproto.extensions import Extension, PerMessageDeflate

    extensions: list[Extension] = []
    if compressed:
        deflate = PerMessageDeflate()
        deflate.finalize("permessage-deflate")
        extensions.append(deflate)
    connection = Connection(ConnectionType.CLIENT, extensions=extensions)
    text = payload.decode() if compressed else ""
    for _ in range(count):
        if compressed:
            connection.send(TextMessage(data=text))
        else:
            connection.send(BytesMessage(data=payload))


def mask_rates(rounds: int) -> dict[str, dict[str, float]]:
    """MB/s of each masker for 64 B, 4 KiB and 1 MiB."""
    maskers: dict[str, Callable[[bytes, bytes], bytes]] = {"ours": apply_mask}
    try:
        from websockets.speedups import apply_mask as compiled  # measured, never used
    except ImportError:  # pragma: no cover - depends on the environment
        pass
    else:
        maskers["websockets.speedups"] = compiled
    key = os.urandom(4)
    rates: dict[str, dict[str, float]] = {}
    for size, label in ((64, "64 B"), (4096, "4 KiB"), (1 << 20, "1 MiB")):
        data = os.urandom(size)
        repeat = max(1, (8 << 20) // size)
        for name, masker in maskers.items():

            def run(
                masker: Callable[[bytes, bytes], bytes] = masker,
                data: bytes = data,
                repeat: int = repeat,
            ) -> None:
                for _ in range(repeat):
                    masker(data, key)

            seconds = _best(rounds, run)
            rates.setdefault(name, {})[label] = size * repeat / seconds / 1e6
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100_000, help="messages per measurement")
    parser.add_argument("--rounds", type=int, default=5, help="best of this many runs")
    args = parser.parse_args()
    count, rounds = args.count, args.rounds

    plain = _buffers(_server_stream(count, PAYLOAD, compressed=False))
    zipped_count = max(1, count // 10)
    zipped = _buffers(_server_stream(zipped_count, TEXT_4K, compressed=True))
    rows = [
        ("parse 64 B, FULL", count, lambda: parse_ours(plain, count, False, False)),
        ("parse 64 B, PARTIAL", count, lambda: parse_ours(plain, count, True, False)),
        ("parse 64 B, wsproto", count, lambda: parse_wsproto(plain, count, False)),
        ("send 64 B", count, lambda: send_ours(count, PAYLOAD, False)),
        ("send 64 B, wsproto", count, lambda: send_wsproto(count, PAYLOAD, False)),
        (
            "parse 4 KiB deflate",
            zipped_count,
            lambda: parse_ours(zipped, zipped_count, False, True),
        ),
        (
            "parse 4 KiB deflate, wsproto",
            zipped_count,
            lambda: parse_wsproto(zipped, zipped_count, True),
        ),
        ("send 4 KiB deflate", zipped_count, lambda: send_ours(zipped_count, TEXT_4K, True)),
        (
            "send 4 KiB deflate, wsproto",
            zipped_count,
            lambda: send_wsproto(zipped_count, TEXT_4K, True),
        ),
    ]
    print(f"{'measurement':32} {'µs/msg':>8}")
    for name, messages, run in rows:
        print(f"{name:32} {_best(rounds, run) / messages * 1e6:8.3f}")
    print()
    print(f"{'masking (MB/s)':22} {'64 B':>9} {'4 KiB':>9} {'1 MiB':>9}")
    for name, by_size in mask_rates(rounds).items():
        print(f"{name:22} " + " ".join(f"{rate:9.0f}" for rate in by_size.values()))


if __name__ == "__main__":
    main()
