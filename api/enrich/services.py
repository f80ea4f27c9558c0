"""Enrichment: read the input, find the person (cache or engine), then charge and log in one
ledger transaction: 1 credit per person found, nothing when no one matches."""

from __future__ import annotations

import hashlib
import time
from typing import Any

import msgspec

from api.enrich.schemas import BulkMetadata, EnrichMatch, EnrichMetadata
from api.query.services import MAX_IDEMPOTENCY_KEY, Answer, replay_headers
from api.runtime import Runtime, in_thread
from creditlake.ledger import InsufficientCredits, KeyInfo, UsageRecord
from creditlake.query import InvalidQuery
from creditlake.query.enrich import EnrichInput, Lookup, Match, NoMatch, find, read_lookup

_NONE = b"-"  # cached "no one matches"


class EnrichService:
    def __init__(self, rt: Runtime, state: Any) -> None:
        self.rt = rt
        self.state = state  # the request's state: usage-log hints for the middleware

    async def enrich(self, key: KeyInfo, inp: EnrichInput, idempotency_key: str | None,
                     path: str) -> Answer:
        t0 = time.perf_counter()
        self.state.query_params = msgspec.to_builtins(inp)
        lookup = await in_thread(read_lookup, inp)
        idem = self._idempotency(idempotency_key, [lookup])
        if idem and (replay := await in_thread(self.rt.ledger.find_idempotent, key.user_id,
                                               *idem)):
            return Answer(replay.body, replay_headers(replay.credits_used,
                                                      replay.credits_remaining))
        (match,) = await self._find([lookup])
        if match is None:
            self.rt.metrics.queries.labels("enrich_not_found").inc()
            raise NoMatch("No person matches this input; nothing was charged")

        def render(remaining: int) -> bytes:
            meta = EnrichMetadata(1, remaining, self._elapsed(t0, usage), lookup.values)
            return (b'{"status":"success","data":' + match.record + b',"match":'
                    + _match_json(match) + b',"metadata":' + msgspec.json.encode(meta) + b"}")

        usage = self._usage(key, path, 1, t0)
        return await self._charge(key, 1, usage, render, idem)

    async def bulk(self, key: KeyInfo, inputs: list[EnrichInput], idempotency_key: str | None,
                   path: str) -> Answer:
        t0 = time.perf_counter()
        self.state.query_params = {"requests": msgspec.to_builtins(inputs)}

        def read_all() -> list[Lookup]:
            return [read_lookup(inp, f"requests[{i}]: ") for i, inp in enumerate(inputs)]

        lookups = await in_thread(read_all)
        idem = self._idempotency(idempotency_key, lookups)
        if idem and (replay := await in_thread(self.rt.ledger.find_idempotent, key.user_id,
                                               *idem)):
            return Answer(replay.body, replay_headers(replay.credits_used,
                                                      replay.credits_remaining))
        matches = await self._find(lookups)
        found = sum(m is not None for m in matches)

        def render(remaining: int) -> bytes:
            items = b",".join(_bulk_item(lk, m) for lk, m in zip(lookups, matches, strict=True))
            meta = BulkMetadata(len(lookups), found, found, remaining, self._elapsed(t0, usage))
            return (b'{"status":"success","data":[' + items + b'],"metadata":'
                    + msgspec.json.encode(meta) + b"}")

        usage = self._usage(key, path, found, t0)
        if found == 0:  # nothing to charge: the middleware logs the request
            balance = await in_thread(self.rt.ledger.balance, key.user_id)
            return Answer(render(balance), {"X-Credits-Used": "0",
                                            "X-Credits-Remaining": str(balance)})
        return await self._charge(key, found, usage, render, idem)

    def _idempotency(self, header: str | None, lookups: list[Lookup]) -> tuple[str, str] | None:
        if header is None:
            return None
        if not 1 <= len(header) <= MAX_IDEMPOTENCY_KEY:
            raise InvalidQuery("Idempotency-Key must be 1..255 characters")
        blob = "enrich:" + "|".join(lk.key for lk in lookups)
        return header, hashlib.sha256(blob.encode()).hexdigest()

    async def _find(self, lookups: list[Lookup]) -> list[Match | None]:
        """Cached answers first; the rest in one engine call."""
        db = self.rt.gate.database
        keys = [hashlib.sha256(f"enrich:{db}:{lk.key}".encode()).hexdigest() for lk in lookups]
        out: list[Match | None] = []
        todo: list[int] = []
        for i, k in enumerate(keys):
            raw = await self.rt.cache.get_bytes(k)
            if raw is None:
                todo.append(i)
                out.append(None)
            else:
                out.append(None if raw == _NONE else msgspec.msgpack.decode(raw, type=Match))
        if todo:
            fresh = await self.rt.gate.run(lambda e: [find(e, lookups[i]) for i in todo])
            for i, m in zip(todo, fresh, strict=True):
                out[i] = m
                await self.rt.cache.set_bytes(keys[i], _NONE if m is None
                                              else msgspec.msgpack.encode(m))
        return out

    def _usage(self, key: KeyInfo, path: str, found: int, t0: float) -> UsageRecord:
        return UsageRecord(method="POST", endpoint=path, status_code=200, response_time_ms=0.0,
                           user_id=key.user_id, api_key_id=key.id,
                           query_params=self.state.query_params, records_returned=found,
                           request_id=getattr(self.state, "request_id", None), started=t0)

    @staticmethod
    def _elapsed(t0: float, usage: UsageRecord) -> float:
        usage.response_time_ms = round((time.perf_counter() - t0) * 1000, 3)
        return usage.response_time_ms

    async def _charge(self, key: KeyInfo, cost: int, usage: UsageRecord, render: Any,
                      idem: tuple[str, str] | None) -> Answer:
        try:
            charged = await in_thread(self.rt.ledger.charge, key.user_id, cost, usage, render,
                                      idem)
        except InsufficientCredits:
            self.rt.metrics.queries.labels("insufficient_credits").inc()
            raise
        self.state.usage_logged = not charged.replayed
        if charged.replayed:
            return Answer(charged.body, replay_headers(charged.credits_used,
                                                       charged.credits_remaining))
        self.rt.metrics.queries.labels("enrich_found").inc(cost)
        self.rt.metrics.credits.inc(cost)
        self.rt.metrics.records.inc(cost)
        return Answer(charged.body, {"X-Credits-Used": str(cost),
                                     "X-Credits-Remaining": str(charged.credits_remaining)})


def _match_json(m: Match) -> bytes:
    return msgspec.json.encode(EnrichMatch(m.confidence, m.matched_on, m.candidates,
                                           m.source, m.entity_id, m.cluster_size))


def _bulk_item(lookup: Lookup, m: Match | None) -> bytes:
    applied = msgspec.json.encode(lookup.values)
    if m is None:
        return b'{"status":"not_found","input_applied":' + applied + b"}"
    return (b'{"status":"found","input_applied":' + applied + b',"data":' + m.record
            + b',"match":' + _match_json(m) + b"}")
