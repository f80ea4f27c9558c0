"""Opening text sources: decompression, encoding sniffing and transcoding to UTF-8."""

from __future__ import annotations

import bz2
import codecs
import gzip
import io
import threading
import zlib
from pathlib import Path
from typing import BinaryIO

GZIP_MAGIC = b"\x1f\x8b"
BZ2_MAGIC = b"BZh"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
CHUNK = 4 << 20


def open_binary(path: Path) -> BinaryIO:
    """Open a file, transparently decompressing gzip / bz2 / zstd single streams."""
    with open(path, "rb") as f:
        head = f.read(4)
    if head.startswith(GZIP_MAGIC):
        return gzip.open(path, "rb")  # type: ignore[return-value]
    if head.startswith(BZ2_MAGIC):
        return bz2.open(path, "rb")  # type: ignore[return-value]
    if head.startswith(ZSTD_MAGIC):
        import zstandard

        return zstandard.open(path, "rb")  # type: ignore[return-value]
    return open(path, "rb")


class TruncationGuard(io.RawIOBase):
    """Ends a truncated/corrupt compressed stream cleanly at the last good byte, so the parser
    still sees every complete row before the cut; `error` tells the reader what happened.
    whole_lines: end at the last newline instead, the partial line after it kept in `cut` (a
    line-oriented reader rejects it rather than load half a record)."""

    def __init__(self, raw: BinaryIO, *, whole_lines: bool = False) -> None:
        self._raw = raw
        self.error: Exception | None = None
        self.whole_lines = whole_lines
        self.cut = b""
        self._pending = b""  # whole_lines: bytes after the last newline handed out

    def readable(self) -> bool:
        return True

    def _read1(self, n: int) -> bytes:
        try:
            # read1: what one step of the decompressor yields, so a cut loses the least
            reader = getattr(self._raw, "read1", self._raw.read)
            return reader(n)
        except (EOFError, OSError, zlib.error) as exc:
            self.error = exc
            return b""

    def readinto(self, b) -> int:  # type: ignore[override]
        if not self.whole_lines:
            data = b"" if self.error is not None else self._read1(min(len(b), 65536))
        else:
            data = self._next_lines(len(b))
        n = len(data)
        b[:n] = data
        return n

    def _next_lines(self, room: int) -> bytes:
        while self.error is None:
            more = self._read1(min(room, 65536))
            if self.error is not None:
                break
            if not more:  # clean end: the last line needs no newline
                data, self._pending = self._pending, b""
                return self._fit(data, room)
            self._pending += more
            if b"\n" in more:
                nl = self._pending.rfind(b"\n")
                data, self._pending = self._pending[: nl + 1], self._pending[nl + 1:]
                return self._fit(data, room)
        # truncated: hand out the whole lines still pending, keep the partial one as `cut`
        nl = self._pending.rfind(b"\n")
        if nl < 0:
            if self._pending:
                self.cut, self._pending = self._pending, b""
            return b""
        return self._fit(self._pending[: nl + 1], room, rest=self._pending[nl + 1:])

    def _fit(self, data: bytes, room: int, rest: bytes | None = None) -> bytes:
        """At most `room` bytes of `data`; the remainder goes back in front of the pending."""
        tail = self._pending if rest is None else rest
        if len(data) > room:
            data, self._pending = data[:room], data[room:] + tail
        else:
            self._pending = tail
        return data

    def close(self) -> None:
        self._raw.close()
        super().close()


def read_head(path: Path, size: int = 1 << 20) -> bytes:
    """The first `size` bytes of the (decompressed) content; truncated streams give what exists
    (through TruncationGuard: a plain read of a small cut .gz raises before returning any)."""
    guard = TruncationGuard(open_binary(path))
    out = bytearray()
    with guard:
        while len(out) < size:
            chunk = guard.read(min(65536, size - len(out)))
            if not chunk:
                break
            out += chunk
    return bytes(out)


def sniff_encoding(head: bytes) -> str:
    """'utf-8-sig' or 'utf-16' when a BOM says so, 'utf-16-le'/'-be' when every other byte is
    NUL (no BOM), else 'utf-8'. Latin-1/Windows-1252 bytes
    are not valid UTF-8 sequences in real text, so reading as UTF-8 and decoding only the
    invalid bytes as cp1252 (Utf8Stream) handles Latin-1 files and files mixing both."""
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    sample = head[:4096]
    half = len(sample) // 2
    if half >= 8:  # UTF-16 without a BOM: mostly-ASCII text has a NUL in every other byte
        odd, even = sample[1::2].count(0), sample[0::2].count(0)
        if odd > 0.9 * half and even < 0.5 * half:  # (NULs in both halves: padding, not text)
            return "utf-16-le"
        if even > 0.9 * half and odd < 0.5 * half:
            return "utf-16-be"
    return "utf-8"


def _cp1252_fallback(err: UnicodeDecodeError) -> tuple[str, int]:
    bad = err.object[err.start:err.end]
    return bad.decode("cp1252", errors="replace"), err.end


CP1252_REPAIR = "creditlake_cp1252"  # the error handler that decodes invalid UTF-8 as cp1252
codecs.register_error(CP1252_REPAIR, _cp1252_fallback)

_replaced = threading.local()  # bytes REPLACE_COUNTED stood in for, in this thread's decode


def _replace_counted(err: UnicodeDecodeError) -> tuple[str, int]:
    _replaced.n = getattr(_replaced, "n", 0) + (err.end - err.start)
    return "\ufffd", err.end


# Other encodings: a byte sequence that is not text there (a UTF-16 file cut at an odd byte, a
# lone surrogate, cp1252's five unmapped bytes) becomes U+FFFD and is counted, so one bad byte
# costs one character, not the file.
REPLACE_COUNTED = "creditlake_replace_counted"
codecs.register_error(REPLACE_COUNTED, _replace_counted)


def replaced_notice(count: int, encoding: str) -> str:
    """The file's warning for `count` bytes REPLACE_COUNTED stood in for."""
    return f"{count} byte{'s' * (count > 1)} not {encoding} text replaced with U+FFFD"


class Utf8Stream(io.RawIOBase):
    """Re-encode a byte stream to UTF-8, decoding as `encoding`; for UTF-8 input, stray
    invalid bytes (files mixing UTF-8 and Latin-1) are decoded as cp1252 instead of failing;
    in other encodings they become U+FFFD, counted in `replaced` (bytes).
    drop_nul: NUL characters are left out (padding, never text). cr_to_lf: every CR becomes
    LF (a file whose lines end in a lone CR)."""

    def __init__(self, raw: BinaryIO, encoding: str, *, drop_nul: bool = False,
                 cr_to_lf: bool = False) -> None:
        errors = CP1252_REPAIR if encoding.startswith("utf-8") else REPLACE_COUNTED
        self.replaced = 0
        self._drop_nul = drop_nul
        self._cr_to_lf = cr_to_lf
        self._raw = raw
        self._dec = codecs.getincrementaldecoder(encoding)(errors=errors)
        self._buf = b""
        self._eof = False

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:  # type: ignore[override]
        while not self._buf and not self._eof:
            chunk = self._raw.read(CHUNK)
            self._eof = not chunk
            self._buf = self._text(self._decode(chunk))
        n = min(len(b), len(self._buf))
        b[:n] = self._buf[:n]
        self._buf = self._buf[n:]
        return n

    def _decode(self, chunk: bytes) -> str:
        _replaced.n = 0
        text = self._dec.decode(chunk, final=not chunk)
        self.replaced += _replaced.n
        return text

    def _text(self, text: str) -> bytes:
        if self._drop_nul:
            text = text.replace("\x00", "")
        if self._cr_to_lf:
            text = text.replace("\r", "\n")
        return text.encode()

    def close(self) -> None:
        self._raw.close()
        super().close()


def scan_utf8(path: Path) -> tuple[bool, int]:
    """(the whole content is valid UTF-8, how many NUL bytes it holds), in one pass at C
    speed: a bad byte deep in a file can't abort a half-loaded read later, and NUL padding
    (fixed-width exports) is known before parsing."""
    dec = codecs.getincrementaldecoder("utf-8")()
    valid, nuls = True, 0
    try:
        with open_binary(path) as f:
            while chunk := f.read(CHUNK):
                nuls += chunk.count(b"\x00")
                if valid:
                    try:
                        dec.decode(chunk)
                    except UnicodeDecodeError:
                        valid = False
            if valid:
                dec.decode(b"", final=True)
    except UnicodeDecodeError:
        valid = False
    except (EOFError, OSError, zlib.error):
        pass  # truncated/corrupt compressed stream: the reader yields what exists and reports it
    return valid, nuls
