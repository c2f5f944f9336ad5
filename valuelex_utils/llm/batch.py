"""`BatchRunner`, the batch API every step calls: `calls.InProcessRunner` plus the worker processes of `shards` for
long remote batches, where one process's event loop would hold the calls back."""
from __future__ import annotations

from typing import Any, Sequence

from . import ratelimit, shards
from .calls import InProcessRunner
from .records import LLMRequest, unique_requests


class BatchRunner(InProcessRunner):
    """Runs many requests against the store with bounded concurrency and retries; remote calls of a long batch are
    spread over worker processes (`processes`, see `InProcessRunner.__init__`)."""

    async def _shard_remote(self, requests: Sequence[LLMRequest], bar: Any) -> None:
        """Send the uncached remote requests to worker processes when one process's CPU would hold them back."""
        self._by_workers, self._given_up = set(), set()
        todo = unique_requests(r for r in requests if not r.model.startswith("local/") and r.key not in self.store
                               and not ratelimit.limited(r.deployment))  # a rate limit holds in one process only
        n = self.processes or shards.auto_processes(self.concurrency, len(todo))
        if n < 2 or not todo or self.transport is not None:
            return
        self._by_workers, self._given_up = await shards.run_sharded(self, todo, n, bar)
