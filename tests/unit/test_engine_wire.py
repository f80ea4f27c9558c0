"""Wire format of the shared embedded engine: values keep their types, frames survive sockets."""

from __future__ import annotations

import datetime as dt
import enum
import ipaddress
import socket
import threading
import time
import uuid
from decimal import Decimal

import numpy as np
import pyarrow as pa
import pytest

from creditlake.clickhouse import wire


class Level(enum.IntEnum):
    HIGH = 3


PARAMS = {
    "d": dt.date(2024, 2, 29),
    "ts": dt.datetime(2024, 1, 2, 3, 4, 5, 678901),
    "tz": dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.timezone(dt.timedelta(hours=2))),
    "t": dt.time(12, 30, 1),
    "td": dt.timedelta(days=-1, seconds=5, microseconds=7),
    "u": uuid.UUID("12345678-1234-5678-1234-567812345678"),
    "dec": Decimal("-12.340"),
    "tup": (1, "a", (2.5, None)),
    "arr": [1, 2, [3, (4, 5)]],
    "set": {1, 2},
    "big": 2**100,
    "neg": -(2**63),
    "u64": 2**64 - 1,
    "ip4": ipaddress.IPv4Address("10.0.0.1"),
    "ip6": ipaddress.IPv6Address("::1"),
    "b": b"\x00\xff",
    "s": "é ✓",
    "n": None,
    "f": 1.5,
    "flag": True,
    "map": {"k": dt.date(2020, 1, 1)},
}


def test_parameters_round_trip_with_their_types() -> None:
    back = wire.unpack(wire.pack(PARAMS))
    assert back == PARAMS
    for key, value in PARAMS.items():
        assert type(back[key]) is type(value), key
    assert type(back["tup"][2]) is tuple and type(back["arr"][2][1]) is tuple


def test_subclasses_and_numpy_scalars_become_plain_values() -> None:
    back = wire.unpack(wire.pack({"lvl": Level.HIGH, "np": np.int64(7), "npf": np.float32(0.5)}))
    assert back == {"lvl": 3, "np": 7, "npf": 0.5}
    assert type(back["lvl"]) is int and type(back["np"]) is int


def test_unsupported_values_are_refused() -> None:
    with pytest.raises(TypeError, match="object"):
        wire.pack({"x": object()})


def test_rows_round_trip() -> None:
    rows = [(1, "a", dt.date(2024, 1, 1), (1, "x"), [uuid.UUID(int=5)], None, 2**70),
            (2, "b", dt.date(2024, 1, 2), (2, "y"), [], 1.25, 0)]
    back = wire.unpack_rows(wire.pack_rows(rows))
    assert back == rows
    assert all(type(r) is tuple for r in back)
    assert type(back[0][3]) is tuple and type(back[0][4][0]) is uuid.UUID


def _pair() -> tuple[socket.socket, socket.socket]:
    return socket.socketpair()


def test_frames_with_arrow_bodies_cross_a_socket() -> None:
    a, b = _pair()
    n = 300_000  # ~10 MB: more than a socket buffer, so sender and receiver interleave
    table = pa.table({"n": pa.array(np.arange(n), pa.uint64()),
                      "s": pa.array(np.arange(n).astype(str))})
    body = wire.arrow_to_ipc(table)
    sender = threading.Thread(target=wire.send_msg, args=(a, {"op": "insert", "t": "x"}, body))
    sender.start()
    header, got = wire.recv_msg(b)
    sender.join()
    assert header == {"op": "insert", "t": "x"}
    assert wire.ipc_to_arrow(got).equals(table)
    wire.send_msg(a, {"ok": True})
    assert wire.recv_msg(b) == ({"ok": True}, None)
    a.close(), b.close()


def test_clean_eof_and_truncated_messages() -> None:
    a, b = _pair()
    a.close()
    with pytest.raises(EOFError):
        wire.recv_msg(b)
    b.close()
    a, b = _pair()
    a.sendall(wire.PREFIX.pack(10, 0) + b"abc")
    a.close()
    with pytest.raises(wire.ProtocolError):
        wire.recv_msg(b)
    b.close()


def test_oversized_frames_are_rejected_before_allocation() -> None:
    a, b = _pair()
    a.sendall(wire.PREFIX.pack(wire.MAX_HEADER + 1, 0))
    with pytest.raises(wire.ProtocolError, match="too large"):
        wire.recv_msg(b)
    a.close(), b.close()


def test_unauthenticated_peers_cannot_make_us_allocate() -> None:
    a, b = _pair()
    a.sendall(wire.PREFIX.pack(10, 8 << 30))  # "here come 8 GiB"
    with pytest.raises(wire.ProtocolError, match="too large"):
        wire.recv_msg(b, **wire.HANDSHAKE_LIMITS)
    a.close(), b.close()


def test_peer_closed_is_instant_even_with_a_socket_timeout() -> None:
    a, b = _pair()
    b.settimeout(30)
    t0 = time.perf_counter()
    assert wire.peer_closed(b) is False
    assert time.perf_counter() - t0 < 0.5
    assert b.gettimeout() == 30
    a.close()
    assert wire.peer_closed(b) is True
    b.close()


def test_handshake_macs_depend_on_token_side_and_nonce() -> None:
    m = wire.mac("tok", b"S", b"n1")
    assert wire.mac_ok(m, wire.mac("tok", b"S", b"n1"))
    assert not wire.mac_ok(m, wire.mac("tok", b"C", b"n1"))
    assert not wire.mac_ok(m, wire.mac("other", b"S", b"n1"))
    assert not wire.mac_ok(m, wire.mac("tok", b"S", b"n2"))
    assert not wire.mac_ok(m, "not bytes")
