"""S3 landing: discover new/changed objects under a prefix and stream them to local staging.

Change detection vs. identity:
- the cursor maps key -> ETag. An object whose key is new or whose ETag changed is "fresh";
  unchanged objects are skipped without a GET. ETags of multipart uploads are not content
  hashes (the same bytes uploaded with another part size get another ETag), so they only
  decide *whether to look again*.
- the partition key comes from the content, exactly like the local landing sensor:
  "<object key>@<sha256 prefix>" (creditlake.ingest.registry). A re-uploaded identical file
  maps to the partition already ingested; a changed file gets a new partition.

No Dagster imports: the sensor in assets/sensors_s3.py wires this to the pipeline.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from boto3.s3.transfer import TransferConfig

IGNORED_SUFFIXES = (".tmp", ".part", ".crdownload", ".partial", ".swp")
MB = 1024 * 1024
# Bounded memory: s3transfer holds at most ~max_concurrency * chunk size in flight.
TRANSFER = TransferConfig(multipart_threshold=16 * MB, multipart_chunksize=8 * MB,
                          max_concurrency=4, use_threads=True)


@dataclass(frozen=True)
class S3Object:
    bucket: str
    key: str
    etag: str
    size: int
    last_modified: str  # ISO 8601, for logs/metadata

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


def list_objects(client: Any, bucket: str, prefix: str = "", page_size: int = 1000
                 ) -> Iterator[S3Object]:
    """Every object under the prefix, page by page (S3 returns at most 1000 per page)."""
    paginator = client.get_paginator("list_objects_v2")
    pages = paginator.paginate(Bucket=bucket, Prefix=prefix,
                               PaginationConfig={"PageSize": page_size})
    for page in pages:
        for item in page.get("Contents", []):
            key = item["Key"]
            if key.endswith("/") or key.endswith(IGNORED_SUFFIXES):
                continue  # "directory" markers and uploads still in progress
            yield S3Object(bucket=bucket, key=key, etag=item["ETag"].strip('"'),
                           size=int(item["Size"]),
                           last_modified=item["LastModified"].isoformat())


def scan(client: Any, bucket: str, prefix: str, cursor: Mapping[str, str],
         page_size: int = 1000) -> tuple[list[S3Object], dict[str, str]]:
    """(fresh objects in listing order, cursor of everything still present and unchanged).

    Objects deleted from the bucket drop out of the cursor, so it stays as large as the
    prefix. Callers add the fresh objects they handled with `advance()`; the ones they did
    not get to stay fresh on the next scan.
    """
    fresh: list[S3Object] = []
    kept: dict[str, str] = {}
    for obj in list_objects(client, bucket, prefix, page_size):
        if cursor.get(obj.key) == obj.etag:
            kept[obj.key] = obj.etag
        else:
            fresh.append(obj)
    return fresh, kept


def advance(cursor: dict[str, str], handled: S3Object) -> None:
    cursor[handled.key] = handled.etag


def version_root(staging_root: Path, obj: S3Object) -> Path:
    """<staging_root>/<bucket>/<etag>: one directory per object version, so a changed object
    never overwrites the copy that a pending run of the previous version will read."""
    return staging_root / obj.bucket / obj.etag.replace("/", "_")


def staging_path(staging_root: Path, obj: S3Object) -> Path:
    """Local copy: <version root>/<key>; the path relative to the version root is the key
    (that is the name in the partition key). Never escapes the root."""
    parts = [p for p in PurePosixPath(obj.key).parts if p not in ("", ".", "..", "/")]
    return version_root(staging_root, obj).joinpath(*parts)


def download(client: Any, obj: S3Object, staging_root: Path,
             transfer: TransferConfig = TRANSFER) -> Path:
    """Stream one object to its staging path (temp file + atomic rename, ranged multipart
    GETs for large objects, memory bounded by the transfer config)."""
    dest = staging_path(staging_root, obj)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.part")
    try:
        with open(tmp, "wb") as f:
            client.download_fileobj(obj.bucket, obj.key, f, Config=transfer)
        tmp.replace(dest)
    finally:
        tmp.unlink(missing_ok=True)
    return dest
