"""S3 landing against a real S3 protocol server: moto's ThreadedMotoServer on 127.0.0.1 over
HTTP (no boto stubbing, no mock_aws decorators)."""

from __future__ import annotations

import hashlib
import json
import os
import socket
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import boto3
import dagster as dg
import pytest
from boto3.s3.transfer import TransferConfig
from dagster_aws.s3 import S3Resource
from moto.server import ThreadedMotoServer

from assets.sensors_s3 import build_s3_sensor, poll_s3
from creditlake.landing import s3 as s3_landing
from resources import ClickHouseResource, CreditlakeHome, LogProgress

pytestmark = pytest.mark.integration
CREDS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture(scope="module")
def client(endpoint: str):
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    return boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", **CREDS)


@pytest.fixture
def bucket(client, request) -> str:
    name = f"landing-{request.node.name.lower().replace('_', '-')[:40]}"
    client.create_bucket(Bucket=name)
    return name


def _put(client, bucket: str, key: str, body: bytes) -> None:
    client.put_object(Bucket=bucket, Key=key, Body=body)


def test_listing_paginates_past_1000_keys(client, bucket: str) -> None:
    keys = [f"in/part-{i:05d}.csv" for i in range(1003)]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda k: _put(client, bucket, k, b"email\na@b.c\n"), keys))
    _put(client, bucket, "in/sub/", b"")  # directory marker: ignored
    _put(client, bucket, "in/upload.csv.part", b"x")  # upload in progress: ignored
    _put(client, bucket, "other/x.csv", b"x")  # outside the prefix
    listed = [o.key for o in s3_landing.list_objects(client, bucket, "in/")]
    assert listed == keys  # S3 returns at most 1000 per page: this needed two pages
    small_pages = [o.key for o in s3_landing.list_objects(client, bucket, "in/", page_size=7)]
    assert small_pages == keys


def test_cursor_round_trip_skips_seen_and_reingests_changed(client, bucket: str) -> None:
    for i in range(5):
        _put(client, bucket, f"drop/f{i}.csv", f"email\nu{i}@x.org\n".encode())
    fresh, cursor = s3_landing.scan(client, bucket, "drop/", {}, page_size=2)
    assert [o.key for o in fresh] == [f"drop/f{i}.csv" for i in range(5)] and cursor == {}
    for obj in fresh:
        s3_landing.advance(cursor, obj)
    cursor = json.loads(json.dumps(cursor))  # what Dagster stores
    assert s3_landing.scan(client, bucket, "drop/", cursor)[0] == []  # seen: skipped

    _put(client, bucket, "drop/f2.csv", b"email\nchanged@x.org\n")  # changed in place
    _put(client, bucket, "drop/f9.csv", b"email\nnew@x.org\n")  # new
    client.delete_object(Bucket=bucket, Key="drop/f4.csv")  # gone
    fresh, kept = s3_landing.scan(client, bucket, "drop/", cursor)
    assert [o.key for o in fresh] == ["drop/f2.csv", "drop/f9.csv"]
    assert set(kept) == {"drop/f0.csv", "drop/f1.csv", "drop/f3.csv"}
    assert fresh[0].etag != cursor["drop/f2.csv"]


def test_streaming_download_is_byte_identical(client, bucket: str, tmp_path: Path) -> None:
    body = os.urandom(3 * 1024 * 1024 + 123)
    _put(client, bucket, "big/../../escape.bin", body)
    (obj,) = s3_landing.list_objects(client, bucket, "big/")
    small_parts = TransferConfig(multipart_threshold=1024 * 1024,
                                 multipart_chunksize=1024 * 1024, max_concurrency=2)
    path = s3_landing.download(client, obj, tmp_path, transfer=small_parts)  # ranged GETs
    assert path.is_relative_to(tmp_path / bucket)
    assert hashlib.sha256(path.read_bytes()).digest() == hashlib.sha256(body).digest()
    assert not list(path.parent.glob(".*.part"))


def test_poll_registers_partitions_like_local_landing(client, bucket: str,
                                                      tmp_path: Path) -> None:
    home = CreditlakeHome(path=str(tmp_path))
    _put(client, bucket, "p/a.csv", b"email,name\na@x.org,A\n")
    _put(client, bucket, "p/b.jsonl", b'{"email": "b@x.org"}\n')
    _put(client, bucket, "p/c.csv", b"email,name\nc@x.org,C\n")
    found, cursor = poll_s3(client, home, bucket, "p/", {}, max_objects=2)
    assert len(found) == 2 and set(cursor) == {"p/a.csv", "p/b.jsonl"}  # budget: 2 per tick
    key_a = found[0][0]
    sha = hashlib.sha256(b"email,name\na@x.org,A\n").hexdigest()
    assert key_a == f"p/a.csv@{sha[:16]}"
    assert [fmt for _, fmt, _ in found] == ["csv", "jsonl"]
    entry = home.registry().get(key_a)
    assert Path(entry.path).read_bytes() == b"email,name\na@x.org,A\n"

    found, cursor = poll_s3(client, home, bucket, "p/", cursor)
    assert [o.key for _, _, o in found] == ["p/c.csv"]  # the rest of the backlog
    assert poll_s3(client, home, bucket, "p/", cursor)[0] == []

    _put(client, bucket, "p/a.csv", b"email,name\na2@x.org,A\n")
    found, cursor = poll_s3(client, home, bucket, "p/", cursor)
    (new_key, _, _), = found
    assert new_key.startswith("p/a.csv@") and new_key != key_a
    assert Path(home.registry().get(key_a).path).read_bytes() == b"email,name\na@x.org,A\n"


def test_sensor_requests_runs_once_per_object_version(endpoint: str, client, bucket: str,
                                                     tmp_path: Path) -> None:
    # wired exactly as definitions.py would: the lead's ingest assets + job, plus this sensor
    from assets.dedup import dedup_records
    from assets.landing import build_land_jobs, build_landing_assets
    from assets.normalize import normalize_contacts

    jobs = build_land_jobs()
    sensor = build_s3_sensor(jobs, bucket=bucket, prefix="in/")
    _put(client, bucket, "in/one.csv", b"email,name\none@x.org,O\n")
    _put(client, bucket, "in/two.csv", b"email,name\ntwo@x.org,T\n")
    resources = {"s3": S3Resource(endpoint_url=endpoint, region_name="us-east-1", **CREDS),
                 "home": CreditlakeHome(path=str(tmp_path))}
    defs = dg.Definitions(  # resources are only constructed here; nothing opens ClickHouse
        assets=[*build_landing_assets(), normalize_contacts, dedup_records],
        jobs=jobs, sensors=[sensor],
        resources={**resources, "progress": LogProgress(), "clickhouse": ClickHouseResource(
            url=f"chdb://{tmp_path / 'unused'}", home=str(tmp_path))})
    sensor = defs.resolve_sensor_def(sensor.name)  # wiring validates (job, resource keys)
    with dg.DagsterInstance.ephemeral() as instance:
        with dg.build_sensor_context(instance=instance, resources=resources) as ctx:
            result = sensor(ctx)
        keys = sorted(r.partition_key for r in result.run_requests)
        assert [k.split("@")[0] for k in keys] == ["in/one.csv", "in/two.csv"]
        adds = {r.partitions_def_name: r.partition_keys
                for r in result.dynamic_partitions_requests}
        assert adds["landing_files"] == adds["csv_files"] == [
            r.partition_key for r in result.run_requests]
        assert all(r.job_name == "land_csv" for r in result.run_requests)
        instance.add_dynamic_partitions("landing_files", keys)

        # same content re-uploaded (new ETag on a real S3 for multipart): no new run
        _put(client, bucket, "in/one.csv", b"email,name\none@x.org,O\n")
        with dg.build_sensor_context(instance=instance, resources=resources,
                                     cursor=result.cursor) as ctx:
            again = sensor(ctx)
        assert again.run_requests == []
        assert json.loads(again.cursor).keys() == {"in/one.csv", "in/two.csv"}
