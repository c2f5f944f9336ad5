"""Provider rate limits on the client side: `rpm` / `tpm` per respondent or role endpoint, and `Retry-After`.

Real studies hit 429s before anything else. Two things keep a run from burning its retries on them:

1. **Pacing** (`rpm`, `tpm` in params, carried in a request's `deployment`): each model endpoint gets a limiter that
   spaces calls so the provider's limit is never reached (GCRA, the "virtual scheduling" form of a token bucket: one
   second's worth of requests, ten seconds' worth of tokens may go at once, then the rate holds). A call's token cost
   is estimated before it is sent (prompt characters / 4 + `max_tokens`) and corrected by the usage the answer
   reports.
2. **Retry-After**: a 429 that says how long to wait (`Retry-After` seconds or HTTP date, `retry-after-ms`) holds back
   every call of that endpoint until then, and the waiting call does not spend one of its retries (at most
   `MAX_RATE_LIMIT_WAITS` such waits a call, so a provider that answers 429 forever still ends the run).

Why not LiteLLM's Router `rpm`/`tpm`: there they weight the choice between deployments, and with usage-based routing a
Router over its limit fails the call at once ("no deployments available") instead of waiting; nothing paces a single
endpoint. This module is small and owns the one thing needed: when may the next call go.

Limits live per process, keyed by model and api_base: calls of a rate-limited endpoint stay in the main process
(`BatchRunner` does not shard them to worker processes, which would each get the whole budget).
"""
from __future__ import annotations

import asyncio
import email.utils
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Mapping

MAX_RATE_LIMIT_WAITS = 30  # waits on a 429 that a call may do without spending a retry
MAX_RETRY_AFTER_S = 120.0  # a provider asking for longer is held to this (the call then tries again)
REQUEST_BURST_S = 1.0  # seconds' worth of requests that may go at once
TOKEN_BURST_S = 10.0  # seconds' worth of tokens that may go at once


@dataclass
class _Gcra:
    """Generic cell rate algorithm: `rate` units a second, bursts up to `burst` units. `tat` is the time at which
    everything reserved so far is paid off."""

    rate: float
    burst: float
    tat: float = 0.0

    def reserve(self, cost: float, now: float) -> float:
        """Book `cost` units; return the time at which they may be used (`now` or later)."""
        self.tat = max(self.tat, now) + cost / self.rate
        # a call larger than the burst goes when the bucket is full (else it would never go)
        return max(now, self.tat - max(self.burst, cost) / self.rate)

    def adjust(self, delta: float) -> None:
        """Correct a booking by `delta` units once the real cost is known (negative: refund)."""
        self.tat += delta / self.rate


@dataclass
class Limiter:
    """The pace of one endpoint: requests a minute, tokens a minute, and a hold set by the provider's Retry-After."""

    rpm: float | None = None
    tpm: float | None = None
    hold_until: float = 0.0
    waited_s: float = 0.0  # total seconds calls spent waiting here (reported by benchmarks)
    _requests: _Gcra | None = field(default=None, repr=False)
    _tokens: _Gcra | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        if self.rpm:
            self._requests = _Gcra(self.rpm / 60.0, max(1.0, self.rpm / 60.0 * REQUEST_BURST_S))
        if self.tpm:
            self._tokens = _Gcra(self.tpm / 60.0, self.tpm / 60.0 * TOKEN_BURST_S)

    def slot(self, tokens: float, now: float) -> float:
        """Book one call of `tokens` estimated tokens; return when it may be sent. No await inside: atomic in a
        loop, and the lock covers calls from several threads (a notebook's batch run in a helper thread)."""
        with self._lock:
            start = max(now, self.hold_until)
            if self._requests is not None:
                start = max(start, self._requests.reserve(1.0, now))
            if self._tokens is not None:
                start = max(start, self._tokens.reserve(tokens, now))
            return start

    def settle(self, estimated: float, actual: float | None) -> None:
        """Correct the token booking with the usage the answer reported."""
        if self._tokens is not None and actual is not None:
            with self._lock:
                self._tokens.adjust(actual - estimated)

    def hold(self, seconds: float, now: float) -> None:
        """The provider said wait: no call of this endpoint goes before `now + seconds`."""
        with self._lock:
            self.hold_until = max(self.hold_until, now + min(seconds, MAX_RETRY_AFTER_S))

    async def wait(self, tokens: float) -> None:
        now = time.monotonic()
        start = self.slot(tokens, now)
        if start > now:
            self.waited_s += start - now
            await asyncio.sleep(start - now)


_LIMITERS: dict[tuple[str, str], Limiter] = {}
_REGISTRY_LOCK = threading.Lock()


def limits_of(deployment: Mapping[str, Any] | None) -> tuple[float | None, float | None]:
    deployment = deployment or {}
    return deployment.get("rpm"), deployment.get("tpm")


def limited(deployment: Mapping[str, Any] | None) -> bool:
    """Whether the endpoint has a client-side limit (its calls then stay in this process)."""
    rpm, tpm = limits_of(deployment)
    return bool(rpm or tpm)


def limiter_for(model: str, deployment: Mapping[str, Any] | None) -> Limiter:
    """The one limiter of an endpoint (model, api_base) in this process; created with the deployment's limits the
    first time, updated when a later batch brings other limits (the params changed)."""
    deployment = deployment or {}
    key = (model, str(deployment.get("api_base") or ""))
    rpm, tpm = limits_of(deployment)
    with _REGISTRY_LOCK:
        lim = _LIMITERS.get(key)
        if lim is None or (lim.rpm, lim.tpm) != (rpm, tpm):
            hold = lim.hold_until if lim else 0.0
            lim = _LIMITERS[key] = Limiter(rpm=rpm, tpm=tpm, hold_until=hold)
        return lim


def reset() -> None:
    """Forget every limiter (tests)."""
    with _REGISTRY_LOCK:
        _LIMITERS.clear()


def estimate_tokens(messages: Any, params: Mapping[str, Any]) -> float:
    """A call's token cost before it is sent: about 4 characters a prompt token, plus the completion budget."""
    chars = sum(len(str(m.get("content") or "")) for m in messages) if isinstance(messages, list) else len(str(messages))
    return chars / 4.0 + float(params.get("max_tokens") or 256)


def is_rate_limit(err: BaseException) -> bool:
    return getattr(err, "status_code", None) == 429 or type(err).__name__ == "RateLimitError"


def _headers(err: BaseException) -> dict[str, str]:
    """The HTTP response headers an exception carries (LiteLLM keeps them in a few places)."""
    found: dict[str, str] = {}
    for source in (getattr(getattr(err, "response", None), "headers", None), getattr(err, "headers", None),
                   getattr(err, "litellm_response_headers", None)):
        try:
            found.update({str(k).lower(): str(v) for k, v in dict(source or {}).items()})
        except (TypeError, ValueError):
            continue
    return found


def retry_after_seconds(err: BaseException, now: float | None = None) -> float | None:
    """Seconds a 429 asks the client to wait: `retry-after-ms`, else `retry-after` as seconds or an HTTP date; None
    when the answer does not say."""
    headers = _headers(err)
    if "retry-after-ms" in headers:
        try:
            return max(0.0, float(headers["retry-after-ms"]) / 1000.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError):
        return None
    return max(0.0, when - (time.time() if now is None else now))
