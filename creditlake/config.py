"""Runtime configuration: every CREDITLAKE_* variable is read here, once, from the env given
to `load_settings` (the process environment by default). See the README's configuration table.

Imports nothing of creditlake: every layer may import it.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

# who does the per-row work of the normalize stage
PROCESSING_BACKENDS = ("polars", "clickhouse", "spark")
DEFAULT_CLUSTER = "creditlake"  # ON CLUSTER name when `records` is Distributed
DEFAULT_MAX_FAILURE_RATE = 0.001
DEFAULT_MIN_REJECTS = 10  # fewer rejected rows than this never fail the failure-rate check


@dataclass(frozen=True)
class Processing:
    """Who does the per-row work of the normalize stage (CREDITLAKE_PROCESSING) and, for Spark,
    where (CREDITLAKE_SPARK_MASTER; None: local[2] unless SPARK_REMOTE is set) and with which
    extra settings (CREDITLAKE_SPARK_CONF, a JSON object)."""

    backend: str = "polars"
    spark_master: str | None = None
    spark_conf: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "backend", check_processing(self.backend))


@dataclass(frozen=True)
class ReadLimits:
    """Bounds a reader enforces before a record reaches a parser, so hostile input becomes a
    rejected row with its reason instead of a native crash or unbounded memory (README,
    Reliability). CREDITLAKE_JSON_MAX_DEPTH, CREDITLAKE_MAX_RECORD_BYTES,
    CREDITLAKE_MAX_RECORD_FIELDS, CREDITLAKE_JSON_MAX_DOCUMENT_BYTES,
    CREDITLAKE_CSV_MAX_FIELD_LINES."""

    max_depth: int = 64                # nesting levels of one JSON record
    max_record_bytes: int = 16 << 20   # one JSON line / array element
    max_fields: int = 10_000           # keys in one JSON record (all levels)
    max_document_bytes: int = 512 << 20  # a whole JSON document, decompressed
    max_field_lines: int = 100          # lines one quoted CSV field may span


@dataclass(frozen=True)
class Settings:
    home: Path
    clickhouse_url: str
    clickhouse_database: str
    database_url: str
    redis_url: str | None
    admin_token: str | None
    landing_dir: Path = None  # type: ignore[assignment]  # default: home/landing
    processing: Processing = None  # type: ignore[assignment]  # default: Processing()
    clickhouse_cluster: str = DEFAULT_CLUSTER
    max_failure_rate: float = DEFAULT_MAX_FAILURE_RATE
    min_rejects: int = DEFAULT_MIN_REJECTS
    block_on_rejects: bool = False  # every source as if `on_reject: block`
    s3_landing: str | None = None  # s3://bucket/prefix: adds the S3 landing sensor
    s3_endpoint_url: str | None = None  # S3-compatible stores
    rate_limit: int = 600  # API requests per key per window
    rate_window_s: float = 60.0
    cache_ttl_s: float = 30.0  # API result cache; 0 disables it
    redis_prefix: str = "creditlake"
    api_max_body_bytes: int = 1 << 20  # larger request bodies: 413
    api_max_body_depth: int = 32  # deeper JSON bodies: 400
    read_limits: ReadLimits = ReadLimits()

    def __post_init__(self) -> None:
        if self.landing_dir is None:
            object.__setattr__(self, "landing_dir", self.home / "landing")
        if self.processing is None:
            object.__setattr__(self, "processing", Processing())

    @property
    def embedded(self) -> bool:
        return self.clickhouse_url.startswith("chdb:")

    @property
    def chdb_path(self) -> Path | None:
        if not self.embedded:
            return None
        return Path(self.clickhouse_url.removeprefix("chdb://"))


def check_processing(value: str) -> str:
    value = (value or "polars").strip().lower()
    if value not in PROCESSING_BACKENDS:
        raise ValueError(f"CREDITLAKE_PROCESSING must be one of {PROCESSING_BACKENDS}, "
                         f"not {value!r}")
    return value


def spark_conf_from_json(text: str) -> tuple[tuple[str, str], ...]:
    """CREDITLAKE_SPARK_CONF (a JSON object) as sorted (key, value) pairs."""
    conf = json.loads(text or "{}")
    if not isinstance(conf, dict):
        raise ValueError("CREDITLAKE_SPARK_CONF must be a JSON object")
    return tuple(sorted((str(k), str(v)) for k, v in conf.items()))


def _rate_limit(spec: str | None) -> tuple[int, float]:
    """CREDITLAKE_RATE_LIMIT "600/60" = 600 requests per 60 s ("600" = per 60 s)."""
    if not spec:
        return Settings.rate_limit, Settings.rate_window_s
    n, _, w = spec.partition("/")
    return int(n), float(w or 60)


def load_settings(env: dict[str, str] | None = None) -> Settings:
    env = dict(os.environ if env is None else env)
    rate_limit, rate_window = _rate_limit(env.get("CREDITLAKE_RATE_LIMIT"))
    home = Path(env.get("CREDITLAKE_HOME", "./.creditlake")).expanduser().resolve()
    landing = env.get("CREDITLAKE_LANDING_DIR")
    return Settings(
        home=home,
        clickhouse_url=env.get("CREDITLAKE_CLICKHOUSE_URL") or f"chdb://{home / 'clickhouse'}",
        clickhouse_database=env.get("CREDITLAKE_CLICKHOUSE_DATABASE", "creditlake"),
        database_url=env.get("CREDITLAKE_DATABASE_URL") or f"sqlite:///{home / 'ledger.db'}",
        redis_url=env.get("CREDITLAKE_REDIS_URL") or None,
        admin_token=env.get("CREDITLAKE_ADMIN_TOKEN") or None,
        landing_dir=Path(landing).expanduser().resolve() if landing else home / "landing",
        processing=Processing(
            backend=env.get("CREDITLAKE_PROCESSING") or "polars",
            spark_master=env.get("CREDITLAKE_SPARK_MASTER") or None,
            spark_conf=spark_conf_from_json(env.get("CREDITLAKE_SPARK_CONF") or "{}")),
        clickhouse_cluster=env.get("CREDITLAKE_CLICKHOUSE_CLUSTER") or DEFAULT_CLUSTER,
        max_failure_rate=float(env.get("CREDITLAKE_MAX_FAILURE_RATE")
                               or DEFAULT_MAX_FAILURE_RATE),
        min_rejects=int(env.get("CREDITLAKE_MIN_REJECTS") or DEFAULT_MIN_REJECTS),
        block_on_rejects=(env.get("CREDITLAKE_BLOCK_ON_REJECTS") or "").lower()
        in ("1", "true", "yes"),
        s3_landing=env.get("CREDITLAKE_S3_LANDING") or None,
        s3_endpoint_url=env.get("CREDITLAKE_S3_ENDPOINT_URL") or None,
        rate_limit=rate_limit, rate_window_s=rate_window,
        cache_ttl_s=float(env.get("CREDITLAKE_CACHE_TTL") or Settings.cache_ttl_s),
        redis_prefix=env.get("CREDITLAKE_REDIS_PREFIX") or Settings.redis_prefix,
        api_max_body_bytes=int(env.get("CREDITLAKE_API_MAX_BODY_BYTES")
                               or Settings.api_max_body_bytes),
        api_max_body_depth=int(env.get("CREDITLAKE_API_MAX_BODY_DEPTH")
                               or Settings.api_max_body_depth),
        read_limits=read_limits_from_env(env),
    )


def read_limits_from_env(env: dict[str, str]) -> ReadLimits:
    d = ReadLimits()

    def num(name: str, default: int) -> int:
        value = int(env.get(name) or default)
        if value <= 0:
            raise ValueError(f"{name} must be a positive integer, not {value}")
        return value

    return ReadLimits(
        max_depth=num("CREDITLAKE_JSON_MAX_DEPTH", d.max_depth),
        max_record_bytes=num("CREDITLAKE_MAX_RECORD_BYTES", d.max_record_bytes),
        max_fields=num("CREDITLAKE_MAX_RECORD_FIELDS", d.max_fields),
        max_document_bytes=num("CREDITLAKE_JSON_MAX_DOCUMENT_BYTES", d.max_document_bytes),
        max_field_lines=num("CREDITLAKE_CSV_MAX_FIELD_LINES", d.max_field_lines))
