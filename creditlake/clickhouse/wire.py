"""Wire format between an engine owner and its clients (see clickhouse/sharing.py).

One message = a fixed prefix (header length u32, body length u64), a msgpack header (control:
op, SQL, parameters, settings, errors) and an optional body (an Arrow IPC stream, or msgpack rows).
Bodies are received into one preallocated buffer and read by Arrow without another copy.

msgpack alone turns dates, UUIDs, Decimals and tuples into strings/lists, and
clickhouse-connect formats parameters by Python type (a tuple binds as a Tuple, a list as an
Array), so values are tagged with msgpack extension types to come back as the same type.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import ipaddress
import socket
import struct
import uuid
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import msgspec
import pyarrow as pa

PREFIX = struct.Struct("!IQ")
MAX_HEADER = 64 << 20
MAX_BODY = 16 << 30
HANDSHAKE_LIMITS = {"max_header": 4096, "max_body": 0}  # before the peer proved the token

# msgpack extension codes for values msgpack would otherwise change the type of
_DATE, _DATETIME, _UUID, _DECIMAL, _TUPLE, _BIGINT, _IPV4, _IPV6, _TIME, _TIMEDELTA, _SET = range(
    1, 12
)
_PLAIN = (str, int, float, bool, bytes, type(None))


class ProtocolError(ConnectionError):
    """The peer sent something that is not a creditlake engine message (or hung up mid-way)."""


def to_wire(value: Any) -> Any:
    """Recursively tag values msgpack cannot carry with their type."""
    t = type(value)
    if t is int:
        ok = -(2**63) <= value < 2**64
        return value if ok else msgspec.msgpack.Ext(_BIGINT, str(value).encode())
    if t in _PLAIN:
        return value
    if t is list:
        return [to_wire(v) for v in value]
    if t is dict or isinstance(value, Mapping):
        return {k: to_wire(v) for k, v in value.items()}
    if t is tuple:
        return msgspec.msgpack.Ext(_TUPLE, _ENCODER.encode([to_wire(v) for v in value]))
    if isinstance(value, set | frozenset):
        return msgspec.msgpack.Ext(_SET, _ENCODER.encode([to_wire(v) for v in value]))
    if isinstance(value, dt.datetime):  # before date: datetime is a date subclass
        return msgspec.msgpack.Ext(_DATETIME, value.isoformat().encode())
    if isinstance(value, dt.date):
        return msgspec.msgpack.Ext(_DATE, value.isoformat().encode())
    if isinstance(value, dt.time):
        return msgspec.msgpack.Ext(_TIME, value.isoformat().encode())
    if isinstance(value, dt.timedelta):
        us = (value.days * 86400 + value.seconds) * 1_000_000 + value.microseconds
        return msgspec.msgpack.Ext(_TIMEDELTA, str(us).encode())
    if isinstance(value, uuid.UUID):
        return msgspec.msgpack.Ext(_UUID, value.bytes)
    if isinstance(value, Decimal):
        return msgspec.msgpack.Ext(_DECIMAL, str(value).encode())
    if isinstance(value, ipaddress.IPv4Address):
        return msgspec.msgpack.Ext(_IPV4, value.packed)
    if isinstance(value, ipaddress.IPv6Address):
        return msgspec.msgpack.Ext(_IPV6, value.packed)
    for base in (bool, int, float, str, bytes):  # subclasses such as IntEnum or StrEnum
        if isinstance(value, base):
            return to_wire(base(value))
    if hasattr(value, "item") and hasattr(value, "dtype"):  # numpy scalars
        return to_wire(value.item())
    raise TypeError(f"cannot send a value of type {t.__name__} to the engine owner")


def _ext_hook(code: int, data: memoryview) -> Any:
    if code == _TUPLE:
        return tuple(_DECODER.decode(data))
    if code == _SET:
        return set(_DECODER.decode(data))
    raw = bytes(data)
    if code == _DATETIME:
        return dt.datetime.fromisoformat(raw.decode())
    if code == _DATE:
        return dt.date.fromisoformat(raw.decode())
    if code == _TIME:
        return dt.time.fromisoformat(raw.decode())
    if code == _TIMEDELTA:
        return dt.timedelta(microseconds=int(raw))
    if code == _UUID:
        return uuid.UUID(bytes=raw)
    if code == _DECIMAL:
        return Decimal(raw.decode())
    if code == _BIGINT:
        return int(raw)
    if code == _IPV4:
        return ipaddress.IPv4Address(raw)
    if code == _IPV6:
        return ipaddress.IPv6Address(raw)
    raise ProtocolError(f"unknown msgpack extension {code}")


_ENCODER = msgspec.msgpack.Encoder()
_DECODER = msgspec.msgpack.Decoder(ext_hook=_ext_hook)


def pack(obj: Any) -> bytes:
    return _ENCODER.encode(to_wire(obj))


def unpack(data: bytes | memoryview | bytearray) -> Any:
    return _DECODER.decode(data)


def pack_rows(rows: list[tuple]) -> bytes:
    """Result rows of query_rows; tuples stay tuples, values keep their Python types."""
    return _ENCODER.encode([_row_to_wire(r) for r in rows])


def _row_to_wire(row: tuple) -> list:
    # fast path: most values in a row are plain
    return [v if type(v) in _PLAIN and type(v) is not int else to_wire(v) for v in row]


def unpack_rows(data: bytes | memoryview | bytearray) -> list[tuple]:
    return [tuple(r) for r in _DECODER.decode(data)]


# --- Arrow IPC -----------------------------------------------------------------------------

def arrow_to_ipc(data: pa.Table | pa.RecordBatch) -> pa.Buffer:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, data.schema) as writer:
        if isinstance(data, pa.RecordBatch):
            writer.write_batch(data)
        else:
            writer.write_table(data)
    return sink.getvalue()


def ipc_to_arrow(body: bytes | bytearray | memoryview | pa.Buffer) -> pa.Table:
    return pa.ipc.open_stream(pa.py_buffer(body)).read_all()


# --- framing -------------------------------------------------------------------------------

def send_msg(sock: socket.socket, header: Mapping[str, Any],
             body: bytes | bytearray | memoryview | pa.Buffer | None = None) -> None:
    head = pack(dict(header))
    blen = 0 if body is None else len(memoryview(body))
    sock.sendall(PREFIX.pack(len(head), blen) + head)
    if blen:
        sock.sendall(memoryview(body))  # type: ignore[arg-type]


def recv_msg(sock: socket.socket, *, max_header: int = MAX_HEADER, max_body: int = MAX_BODY
             ) -> tuple[dict[str, Any], bytearray | None]:
    """Read one message. EOF before the first byte raises EOFError (peer closed cleanly).
    The limits are checked before allocating (small ones for unauthenticated peers)."""
    prefix = _recv_exact(sock, PREFIX.size, clean_eof=True)
    hlen, blen = PREFIX.unpack(prefix)
    if hlen > max_header or blen > max_body:
        raise ProtocolError(f"message too large (header {hlen}, body {blen} bytes)")
    header = unpack(_recv_exact(sock, hlen))
    if not isinstance(header, dict):
        raise ProtocolError("message header is not a map")
    body = _recv_exact(sock, blen) if blen else None
    return header, body


def _recv_exact(sock: socket.socket, n: int, clean_eof: bool = False) -> bytearray:
    buf = bytearray(n)
    view = memoryview(buf)
    got = 0
    while got < n:
        k = sock.recv_into(view[got:], min(n - got, 4 << 20))
        if k == 0:
            if got == 0 and clean_eof:
                raise EOFError("peer closed the connection")
            raise ProtocolError(f"connection closed after {got} of {n} bytes")
        got += k
    return buf


def peer_closed(sock: socket.socket) -> bool:
    """True when an idle pooled connection was closed by the peer (owner gone)."""
    prev = sock.gettimeout()
    sock.setblocking(False)  # with a timeout set, Python would poll before the recv
    try:
        sock.recv(1, socket.MSG_PEEK)
    except BlockingIOError:
        return False  # nothing pending: alive and idle
    except OSError:
        return True
    finally:
        sock.settimeout(prev)
    return True  # b"" is EOF; a stray pending byte means the stream is out of sync


# --- handshake -----------------------------------------------------------------------------

def mac(token: str, side: bytes, nonce: bytes) -> bytes:
    """Both sides prove they know the owner's token without sending it."""
    return hmac.new(token.encode(), side + nonce, hashlib.sha256).digest()


def mac_ok(expected: bytes, got: Any) -> bool:
    return isinstance(got, bytes) and hmac.compare_digest(expected, got)
