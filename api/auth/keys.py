"""API keys checked against the ledger once per key per few seconds, not on every request.

A hit costs neither a database round trip nor a worker-thread hop. Revocation still takes
effect: a paid call re-checks its key inside the debit transaction (Ledger.charge), so it is
refused at once wherever the key was revoked; a key revoked through this process's admin API is
forgotten at once; one revoked elsewhere (CLI, another instance) stops working on the free
endpoints within `ttl_s`. Only valid keys are remembered, keyed by their hash.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict

from api.runtime import in_thread
from creditlake.ledger import KeyInfo, Ledger
from creditlake.ledger.keys import hash_key

MAX_KEYS = 10_000


class KeyCache:
    def __init__(self, ledger: Ledger, ttl_s: float) -> None:
        self.ledger = ledger
        self.ttl_s = ttl_s
        self._keys: OrderedDict[str, tuple[float, KeyInfo]] = OrderedDict()
        self._lock = threading.Lock()  # forget() runs on worker threads

    async def authenticate(self, api_key: str | None) -> KeyInfo:
        digest = hash_key(api_key) if api_key and self.ttl_s > 0 else None
        if digest is not None:
            with self._lock:
                hit = self._keys.get(digest)
            if hit is not None and hit[0] > time.monotonic():
                return hit[1]
        key = await in_thread(self.ledger.authenticate, api_key)  # raises for bad/revoked keys
        if digest is not None:
            with self._lock:
                self._keys[digest] = (time.monotonic() + self.ttl_s, key)
                self._keys.move_to_end(digest)
                while len(self._keys) > MAX_KEYS:
                    self._keys.popitem(last=False)
        return key

    def forget(self, key_id: str) -> None:
        with self._lock:
            for digest in [d for d, (_, k) in self._keys.items() if k.id == key_id]:
                del self._keys[digest]
