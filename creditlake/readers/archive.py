"""Archives: .zip and .tar(.gz/.bz2/.zst) bundles (every member its own source) and compressed
single streams (.gz/.bz2/.zst) whose content is itself a binary container (a zip, a workbook,
Parquet).

Text formats inside .gz/.bz2/.zst (CSV, JSON, XML, SQL dumps) are *not* handled here: their
readers decompress while streaming, and detection reports the inner format. This reader gets
what those readers cannot stream: each zip member, or a compressed binary container, is
extracted to a temporary file under the size/ratio limits below, its format detected by
content, and its batches delegated to that format's reader, re-tagged with the sub-source
"<archive name>/<member path>" (plus "#<table or sheet>" when the member has several).

Zip-bomb protection: a member whose declared or actual uncompressed size exceeds
MAX_MEMBER_BYTES, whose compression ratio exceeds MAX_RATIO (once past RATIO_FLOOR_BYTES), or
that would take the archive past MAX_TOTAL_BYTES is rejected with the reason (a notice batch);
so are encrypted members, nested archives deeper than MAX_DEPTH and members that fail to read.
The good members are read; at the end a ReaderError lists the rejected ones.
"""

from __future__ import annotations

import bz2
import contextlib
import gzip
import inspect
import re
import tempfile
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path, PurePosixPath
from typing import BinaryIO

import pyarrow as pa

from creditlake.readers._batches import notice_batch
from creditlake.readers.base import (
    ReaderError,
    ReaderOptions,
    ReaderRejects,
    get_reader,
    register,
    subsource_of,
    tag_subsource,
)
from creditlake.readers.detect import detect, is_compressed, is_tar, is_zip
from creditlake.readers.textio import BZ2_MAGIC, GZIP_MAGIC, ZSTD_MAGIC, read_head

# Limits (bytes are uncompressed). Generous for real exports, fatal for bombs.
MAX_TOTAL_BYTES = 64 << 30      # all members of one archive together
MAX_MEMBER_BYTES = 32 << 30     # one member
MAX_RATIO = 200                 # uncompressed / compressed
RATIO_FLOOR_BYTES = 16 << 20    # small members may compress better than MAX_RATIO (padding)
MAX_MEMBERS = 10_000
MAX_DEPTH = 3                   # zip inside zip inside zip
COPY_CHUNK = 1 << 20
_SKIP_MEMBER = re.compile(r"(^|/)(__MACOSX/|\.DS_Store$|Thumbs\.db$|desktop\.ini$)", re.I)


class LimitExceeded(ReaderError):
    """Decompression stopped: the data is (or behaves like) a decompression bomb."""


# ----------------------------------------------------------------------------- extraction

class _Budget:
    """Uncompressed bytes still allowed for one archive (shared by nested archives), and the
    outermost file's size on disk: the expansion ratio is checked cumulatively against it, so
    zips of zips that each expand 30:1 (900:1 together) are refused like one 900:1 member."""

    def __init__(self, total: int | None = None, packed: int = 0) -> None:
        self.left = MAX_TOTAL_BYTES if total is None else total
        self.packed = packed  # 0: unknown, no cumulative ratio check
        self.expanded = 0  # bytes written so far at every level

    def over_ratio(self, more: int) -> bool:
        total = self.expanded + more
        return bool(self.packed) and total > RATIO_FLOOR_BYTES \
            and total > MAX_RATIO * self.packed


def _copy_limited(src: BinaryIO, dst: BinaryIO, compressed_size: int, budget: _Budget,
                  what: str) -> int:
    written = 0
    while chunk := src.read(COPY_CHUNK):
        written += len(chunk)
        if written > MAX_MEMBER_BYTES:
            raise LimitExceeded(f"{what}: more than {MAX_MEMBER_BYTES >> 20} MiB uncompressed "
                                "(size limit)")
        if written > budget.left:
            raise LimitExceeded(f"{what}: the archive's total uncompressed size limit "
                                f"({MAX_TOTAL_BYTES >> 20} MiB) is exceeded")
        if written > RATIO_FLOOR_BYTES and written > MAX_RATIO * max(compressed_size, 1):
            raise LimitExceeded(f"{what}: compression ratio above {MAX_RATIO}:1 "
                                "(zip bomb protection)")
        if budget.over_ratio(written):
            raise LimitExceeded(f"{what}: the archive expands more than {MAX_RATIO}:1 across "
                                "its nested archives/compressed members (zip bomb protection)")
        dst.write(chunk)
    budget.left -= written
    budget.expanded += written
    return written


def _safe_name(member: str) -> str:
    name = PurePosixPath(member.replace("\\", "/")).name or "member"
    return re.sub(r"[^\w.\-]+", "_", name)


def _delegate(path: Path, opts: ReaderOptions, rejects: ReaderRejects | None, outer: str,
              budget: _Budget, depth: int) -> Iterator[pa.RecordBatch]:
    """Read an extracted file with the reader for its detected format; sub-sources are renamed
    from the temporary file's name to `outer` (rejects' reasons get the same prefix)."""
    fmt = detect(path)
    if fmt == "archive":
        if depth >= MAX_DEPTH:
            raise ReaderError(f"archives nested more than {MAX_DEPTH} deep")
        inner = _read_archive(path, opts, rejects, budget, depth + 1)
        inner_rejects = None
    else:
        reader = get_reader(fmt)
        takes = rejects is not None and "rejects" in inspect.signature(reader).parameters
        inner_rejects = ReaderRejects() if takes else None
        inner = (reader(path, opts, rejects=inner_rejects) if inner_rejects is not None
                 else reader(path, opts))
    try:
        for b in inner:
            yield _rename(b, path.name, outer)
    finally:
        if inner_rejects is not None and rejects is not None:
            for row, raw, reason in inner_rejects.rows:
                rejects.add(row, raw, f"{outer}: {reason}")


def _rename(batch: pa.RecordBatch, inner_name: str, outer: str) -> pa.RecordBatch:
    """"contacts.sql#people" read from temp file contacts.sql -> "a.zip/contacts.sql#people";
    untagged batches get `outer` itself."""
    sub = subsource_of(batch)
    if sub and sub.startswith(inner_name):
        return tag_subsource(batch, outer + sub[len(inner_name):])
    return tag_subsource(batch, outer if not sub else f"{outer}#{sub}")


def _read_archive(path: Path, opts: ReaderOptions, rejects: ReaderRejects | None,
                  budget: _Budget, depth: int) -> Iterator[pa.RecordBatch]:
    with open(path, "rb") as f:
        raw = f.read(8)
    if is_zip(raw):
        yield from _read_zip(path, opts, rejects, budget, depth)
    elif not raw.startswith(ZSTD_MAGIC) and is_tar(read_head(path, 512)):
        # tarfile reads plain, gzip and bzip2 tars itself; .tar.zst goes through a temp file
        yield from _read_tar(path, opts, rejects, budget, depth)
    elif is_compressed(raw):
        yield from _read_compressed(path, opts, rejects, budget, depth)
    else:
        raise ReaderError("not an archive: no zip, tar, gzip, bzip2 or zstd signature")


def _read_zip(path: Path, opts: ReaderOptions, rejects: ReaderRejects | None, budget: _Budget,
              depth: int) -> Iterator[pa.RecordBatch]:
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise ReaderError(f"corrupt zip archive: {exc}") from None
    problems: list[str] = []
    with zf, tempfile.TemporaryDirectory(prefix="creditlake-zip-",
                                         dir=opts.extra.get("tmp_dir")) as td:
        members = [i for i in zf.infolist() if not i.is_dir() and not _SKIP_MEMBER.search(
            i.filename)]
        if len(members) > MAX_MEMBERS:
            raise ReaderError(f"zip archive has {len(members)} members (limit {MAX_MEMBERS})")
        if not members:
            raise ReaderError("zip archive has no files")
        for info in members:
            outer = f"{path.name}/{info.filename}"
            reason = _precheck(info, budget)
            if reason is None:
                target = Path(td) / _safe_name(info.filename)
                try:
                    with zf.open(info) as src, open(target, "wb") as dst:
                        _copy_limited(src, dst, info.compress_size, budget, info.filename)
                    yield from _delegate(target, opts, rejects, outer, budget, depth)
                except LimitExceeded as exc:
                    reason = str(exc)
                except ReaderError as exc:
                    reason = f"{info.filename}: {exc}"
                except (zipfile.BadZipFile, zlib.error, EOFError, OSError,
                        NotImplementedError) as exc:
                    reason = f"{info.filename}: cannot extract ({exc})"
                except RuntimeError as exc:  # zipfile: "File ... is encrypted"
                    reason = f"{info.filename}: {exc}"
                finally:
                    with contextlib.suppress(OSError):
                        target.unlink()
            if reason is not None:
                problems.append(reason)
                yield notice_batch(f"member rejected: {reason}", outer)
    if problems:
        raise ReaderError(f"{len(problems)} of {len(members)} archive member(s) rejected "
                          f"(the others were read): " + "; ".join(problems[:5]))


def _read_tar(path: Path, opts: ReaderOptions, rejects: ReaderRejects | None, budget: _Budget,
              depth: int) -> Iterator[pa.RecordBatch]:
    """Tar members in order (streaming mode: a compressed tar is decompressed once). Tar has
    no per-member compressed size, so the ratio limit applies to the archive as a whole."""
    import tarfile

    problems: list[str] = []
    members = 0
    packed = max(path.stat().st_size, 1)
    try:
        tf = tarfile.open(path, mode="r|*")  # noqa: SIM115 (closed by the with below)
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise ReaderError(f"corrupt tar archive: {exc}") from None
    with tf, tempfile.TemporaryDirectory(prefix="creditlake-tar-",
                                         dir=opts.extra.get("tmp_dir")) as td:
        try:
            for info in tf:
                if not info.isfile() or _SKIP_MEMBER.search(info.name):
                    continue
                members += 1
                if members > MAX_MEMBERS:
                    raise ReaderError(f"tar archive has more than {MAX_MEMBERS} members")
                outer = f"{path.name}/{info.name}"
                used = MAX_TOTAL_BYTES - budget.left + info.size
                reason = None
                if info.size > MAX_MEMBER_BYTES:
                    reason = f"{info.name}: {info.size >> 20} MiB uncompressed (size limit)"
                elif info.size > budget.left:
                    reason = f"{info.name}: the archive's total uncompressed size limit is exceeded"
                elif used > RATIO_FLOOR_BYTES and used > MAX_RATIO * packed:
                    reason = (f"{info.name}: archive expands more than {MAX_RATIO}:1 "
                              "(zip bomb protection)")
                if reason is None:
                    target = Path(td) / _safe_name(info.name)
                    try:
                        src = tf.extractfile(info)
                        assert src is not None
                        with src, open(target, "wb") as dst:
                            _copy_limited(src, dst, packed, budget, info.name)
                        yield from _delegate(target, opts, rejects, outer, budget, depth)
                    except LimitExceeded as exc:
                        reason = str(exc)
                    except ReaderError as exc:
                        reason = f"{info.name}: {exc}"
                    finally:
                        with contextlib.suppress(OSError):
                            target.unlink()
                if reason is not None:
                    problems.append(reason)
                    yield notice_batch(f"member rejected: {reason}", outer)
        except (tarfile.TarError, EOFError, OSError, zlib.error) as exc:
            problems.append(f"archive is truncated or corrupt after {members} member(s): {exc}")
    if not members and not problems:
        raise ReaderError("tar archive has no files")
    if problems:
        raise ReaderError(f"{len(problems)} problem(s) in the tar archive (the other members "
                          "were read): " + "; ".join(problems[:5]))


def _precheck(info: zipfile.ZipInfo, budget: _Budget) -> str | None:
    """Refuse from the central directory alone, before inflating anything."""
    name = info.filename
    if info.flag_bits & 0x1:
        return f"{name}: member is encrypted (password-protected zip)"
    if info.file_size > MAX_MEMBER_BYTES:
        return f"{name}: declares {info.file_size >> 20} MiB uncompressed (size limit)"
    if info.file_size > budget.left:
        return f"{name}: the archive's total uncompressed size limit is exceeded"
    if info.file_size > RATIO_FLOOR_BYTES and info.file_size > MAX_RATIO * max(
            info.compress_size, 1):
        return (f"{name}: compression ratio {info.file_size // max(info.compress_size, 1)}:1 "
                f"above {MAX_RATIO}:1 (zip bomb protection)")
    if budget.over_ratio(info.file_size):
        return (f"{name}: the archive would expand more than {MAX_RATIO}:1 across its nested "
                "archives/compressed members (zip bomb protection)")
    return None


def _open_stream(path: Path, raw: bytes) -> BinaryIO:
    if raw.startswith(GZIP_MAGIC):
        return gzip.open(path, "rb")  # type: ignore[return-value]
    if raw.startswith(BZ2_MAGIC):
        return bz2.open(path, "rb")  # type: ignore[return-value]
    import zstandard

    return zstandard.open(path, "rb")  # type: ignore[return-value]


_COMPRESSION_SUFFIXES = (".gz", ".gzip", ".bz2", ".zst", ".zstd", ".tgz")


def _read_compressed(path: Path, opts: ReaderOptions, rejects: ReaderRejects | None,
                     budget: _Budget, depth: int) -> Iterator[pa.RecordBatch]:
    with open(path, "rb") as f:
        raw = f.read(8)
    name = path.name
    for suf in _COMPRESSION_SUFFIXES:
        if name.lower().endswith(suf):
            name = name[: -len(suf)] or "content"
            break
    with tempfile.TemporaryDirectory(prefix="creditlake-unz-",
                                     dir=opts.extra.get("tmp_dir")) as td:
        target = Path(td) / _safe_name(name)
        try:
            with _open_stream(path, raw) as src, open(target, "wb") as dst:
                _copy_limited(src, dst, path.stat().st_size, budget, path.name)
        except LimitExceeded:
            raise
        except (EOFError, OSError, zlib.error) as exc:
            raise ReaderError(f"compressed stream is truncated or corrupt: {exc}") from None
        except Exception as exc:  # zstandard.ZstdError and friends
            raise ReaderError(f"compressed stream cannot be decompressed: {exc}") from None
        yield from _delegate(target, opts, rejects, path.name, budget, depth)


@register("archive")
def read(path: Path, opts: ReaderOptions, rejects: ReaderRejects | None = None
         ) -> Iterator[pa.RecordBatch]:
    """Zip bundles and compressed binary containers (see the module docstring)."""
    path = Path(path)
    if opts.batch_rows <= 0:
        opts = replace(opts, batch_rows=ReaderOptions().batch_rows)
    yield from _read_archive(path, opts, rejects, _Budget(packed=path.stat().st_size), 1)

