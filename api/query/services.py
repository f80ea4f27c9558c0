"""The paid query: compile, fetch (cache or engine), then debit + usage row in one transaction.

Nothing leaves before the debit commits; a 402 or any failure charges nothing.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any, TypeVar

import msgspec

from api.query.schemas import CountData, QueryMetadata
from api.runtime import Runtime, in_thread
from creditlake.clickhouse.base import EngineError, EngineUnavailable
from creditlake.ledger import InsufficientCredits, KeyInfo, UsageRecord, credit_cost
from creditlake.query import (
    CompiledQuery,
    InvalidQuery,
    QueryRequest,
    QueryResult,
    compile_query,
    count,
    page_total,
    run_page,
)
from creditlake.query.normalize import RulesNeeded, memo_only

MAX_IDEMPOTENCY_KEY = 255
T = TypeVar("T")


@dataclass(frozen=True)
class Answer:
    body: bytes
    headers: dict[str, str]


class QueryService:
    def __init__(self, rt: Runtime, state: Any) -> None:
        self.rt = rt
        self.state = state  # the request's state: usage-log hints for the middleware

    async def _compile(self, req: QueryRequest) -> CompiledQuery:
        """Off the event loop when a new filter value needs the ingestion rules (ms)."""
        self.state.query_params = msgspec.to_builtins(req)
        if req.resolve == "entity":
            from creditlake.entity.query import compile_golden_query

            return await in_thread(compile_golden_query, req, self.rt.gate.database)
        try:  # values read before (and stored-form dates) compile in well under a ms: here
            with memo_only():
                return compile_query(req, self.rt.gate.database)
        except RulesNeeded:
            return await in_thread(compile_query, req, self.rt.gate.database)

    async def query(self, key: KeyInfo, req: QueryRequest, idempotency_key: str | None,
                    path: str) -> Answer:
        t0 = time.perf_counter()
        metrics = self.rt.metrics
        try:
            q = await self._compile(req)
        except InvalidQuery:
            metrics.queries.labels("invalid").inc()
            raise
        idem = None
        if idempotency_key is not None:
            if not 1 <= len(idempotency_key) <= MAX_IDEMPOTENCY_KEY:
                raise InvalidQuery("Idempotency-Key must be 1..255 characters")
            idem = (idempotency_key, hashlib.sha256(q.cache_key.encode()).hexdigest())
            replay = await in_thread(self.rt.ledger.find_idempotent, key.user_id, *idem)
            if replay is not None:
                metrics.queries.labels("replayed").inc()
                return Answer(replay.body, replay_headers(replay.credits_used,
                                                          replay.credits_remaining))

        result, caching = await self._fetch(q)
        try:
            return await self._charge(key, q, result, idem, path, t0)
        finally:
            if caching is not None:
                await caching  # written while the debit ran; a Redis failure is logged there

    async def _charge(self, key: KeyInfo, q: CompiledQuery, result: QueryResult,
                      idem: tuple[str, str] | None, path: str, t0: float) -> Answer:
        metrics = self.rt.metrics
        cost = credit_cost(result.returned)
        usage = UsageRecord(method="POST", endpoint=path, status_code=200, response_time_ms=0.0,
                            user_id=key.user_id, api_key_id=key.id,
                            query_params=self.state.query_params,
                            records_returned=result.returned,
                            request_id=getattr(self.state, "request_id", None), started=t0)

        def render(remaining: int) -> bytes:
            elapsed = round((time.perf_counter() - t0) * 1000, 3)
            usage.response_time_ms = elapsed
            meta = QueryMetadata(result.total_records, result.returned, result.page, cost,
                                 remaining, elapsed, result.next_cursor, q.filters_applied)
            return (b'{"status":"success","data":' + result.data_json + b',"metadata":'
                    + msgspec.json.encode(meta) + b"}")

        t_charge = time.perf_counter()
        try:
            charged = await in_thread(self.rt.ledger.charge, key.user_id, cost, usage, render,
                                      idem)
            metrics.charge.observe(time.perf_counter() - t_charge)
        except InsufficientCredits:
            metrics.queries.labels("insufficient_credits").inc()
            raise
        self.state.usage_logged = not charged.replayed
        if charged.replayed:
            metrics.queries.labels("replayed").inc()
            return Answer(charged.body, replay_headers(charged.credits_used,
                                                       charged.credits_remaining))
        metrics.queries.labels("success").inc()
        metrics.credits.inc(cost)
        metrics.records.inc(result.returned)
        return Answer(charged.body, {"X-Credits-Used": str(cost),
                                     "X-Credits-Remaining": str(charged.credits_remaining)})

    async def _fetch(self, q: CompiledQuery) -> tuple[QueryResult, Awaitable[None] | None]:
        """The answer, and the cache write still under way (awaited once the debit is done)."""
        cached, known_total = await self.rt.cache.lookup(q.cache_key, q.count_key)
        if cached is not None:
            self.rt.metrics.queries.labels("cache_hit").inc()
            return cached, None
        if known_total is not None:
            self.rt.metrics.count_cache_hits.inc()
        gate = self.rt.gate
        t0 = time.perf_counter()
        # With an engine thread to spare, the count runs next to the page on a reader handle of
        # its own (idle cores answer sooner). When they are all busy, the count follows the
        # page in the same engine turn (queueing once, not twice) and only when the page does
        # not already give the total (a page that holds the tail of the result).
        counting = (asyncio.ensure_future(gate.run(_timed, count, q))
                    if known_total is None and gate.idle_workers >= 2 else None)
        try:
            if counting is None and known_total is None:
                page, total, page_s, count_s = await gate.run(_page_and_total, q)
            else:
                page, page_s = await gate.run(_timed, run_page, q)
                total, count_s = page_total(q, page), 0.0
                if total is None:
                    total = known_total
                if total is None and counting is not None:
                    total, count_s = await counting
        except EngineUnavailable:
            self.rt.metrics.queries.labels("unavailable").inc()
            raise
        except EngineError:
            self.rt.metrics.queries.labels("engine_error").inc()
            raise
        finally:
            if counting is not None:
                counting.cancel()  # not needed (or the page failed): dropped if not started
                counting.add_done_callback(_retrieve)
        assert total is not None
        busy = max(page_s, count_s) if counting is not None else page_s + count_s
        self.rt.metrics.engine_exec.observe(page_s + count_s)
        self.rt.metrics.engine_wait.observe(max(time.perf_counter() - t0 - busy, 0.0))
        result = replace(page, total_records=total, engine_ms=busy * 1000)
        caching = asyncio.ensure_future(self.rt.cache.store(
            q.cache_key, result, q.count_key if known_total is None else None))
        return result, caching

    async def price(self, key: KeyInfo, req: QueryRequest) -> CountData:
        """Free: how many rows the query matches and exactly what it would cost now."""
        q = await self._compile(req)
        total, page_rows = await self.rt.gate.run(_counts, q)
        would_return = max(0, min(q.limit, page_rows - q.offset))
        balance = await in_thread(self.rt.ledger.balance, key.user_id)
        return CountData(total, would_return, credit_cost(would_return), balance,
                         q.filters_applied)


def replay_headers(used: int | None, remaining: int | None) -> dict[str, str]:
    """A replayed answer says what the original cost and left, and that it is a replay."""
    headers = {"Idempotent-Replayed": "true"}
    if used is not None and remaining is not None and remaining >= 0:
        headers |= {"X-Credits-Used": str(used), "X-Credits-Remaining": str(remaining)}
    return headers


def _timed(engine: Any, fn: Callable[[Any, CompiledQuery], T], q: CompiledQuery
           ) -> tuple[T, float]:
    t = time.perf_counter()
    return fn(engine, q), time.perf_counter() - t


def _page_and_total(engine: Any, q: CompiledQuery) -> tuple[QueryResult, int, float, float]:
    """The page, then (unless the page gives it) the count, in one engine turn; with seconds."""
    page, page_s = _timed(engine, run_page, q)
    total, count_s = page_total(q, page), 0.0
    if total is None:
        total, count_s = _timed(engine, count, q)
    return page, total, page_s, count_s


def _retrieve(task: asyncio.Future[Any]) -> None:
    """A dropped count's outcome is not needed; retrieving it keeps asyncio from logging it."""
    if not task.cancelled():
        task.exception()


def _counts(engine: Any, q: CompiledQuery) -> tuple[int, int]:
    total = count(engine, q)
    if not q.uses_cursor:
        return total, total
    rows = engine.query_rows(q.page_count_sql, parameters=q.page_count_params)
    return total, int(rows[0][0])
