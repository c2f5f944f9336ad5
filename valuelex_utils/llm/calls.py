"""The one LLM call path: every model call in ValueLex goes through LiteLLM.

`InProcessRunner` is the async batch API's core: bounded concurrency, retries with exponential backoff on
429/5xx/timeouts, a per-call timeout, a token tally, and the raw store written before anything parses an answer.
`batch.BatchRunner` adds the worker processes of `shards` on top of it. Importing this module registers the embedded
models as the LiteLLM provider `local` (`provider`).
"""
from __future__ import annotations

import asyncio
import importlib
import inspect
import json
import os
import random
import time
from typing import Any, Callable, Sequence
from urllib.parse import urlsplit, urlunsplit

import litellm
from tqdm.auto import tqdm

from ..errors import UserError
from ..scrub import read_key, register_key_env, register_url, scrub
from . import embedded, ratelimit
from . import provider  # noqa: F401 - importing it registers the `local` provider with LiteLLM
from .records import LLMRequest, ProviderError, Tally
from .store import ResponseStore, answer_text

TRANSIENT = (litellm.RateLimitError, litellm.InternalServerError, litellm.ServiceUnavailableError, litellm.Timeout,
             litellm.APIConnectionError, litellm.BadGatewayError if hasattr(litellm, "BadGatewayError") else litellm.APIError)
HARD = (litellm.AuthenticationError, litellm.NotFoundError, litellm.PermissionDeniedError, litellm.BadRequestError)


def check_model_id(model: str) -> None:
    """Fail before any call on a model id that cannot work (unknown embedded model, no provider prefix)."""
    if model.startswith("local/") and model.split("/", 1)[1] not in embedded.EMBEDDED:
        known = ", ".join(f"local/{n}" for n in embedded.EMBEDDED)
        raise ProviderError(f"model {model}: unknown embedded model (known: {known})")
    try:
        litellm.get_llm_provider(model)
    except Exception:  # noqa: BLE001 - litellm raises several kinds here
        raise ProviderError(f"model {model}: LiteLLM does not know this provider (use e.g. openai/..., ollama/...)") from None


def _deployment_kwargs(deployment: dict[str, Any]) -> dict[str, Any]:
    kwargs = {k: v for k, v in deployment.items() if k in ("api_base", "custom_llm_provider") and v}
    register_url(kwargs.get("api_base"))
    env = deployment.get("api_key_env")
    if env:
        if env not in os.environ:
            raise UserError(f"environment variable {env} (api_key_env) is not set")
        kwargs["api_key"] = read_key(env)
    return kwargs


def _is_hard(err: BaseException) -> bool:
    if isinstance(err, UserError):
        return True
    if isinstance(err, litellm.BadRequestError) and "timeout" in str(err).lower():
        return False
    if isinstance(err, HARD):
        return True
    status = getattr(err, "status_code", None)
    return status in (400, 401, 403, 404)


MAX_COOLDOWN_WAITS = 20


def _all_endpoints_cooling(err: BaseException) -> bool:
    """LiteLLM's Router found no endpoint of the model outside its cooldown (no call was made)."""
    return type(err).__name__ == "RouterRateLimitError"


def _cooldown_wait(err: BaseException) -> float:
    cooldown = getattr(err, "cooldown_time", None)
    try:
        cooldown = float(cooldown) if cooldown is not None else 5.0
    except (TypeError, ValueError):
        cooldown = 5.0
    return min(max(cooldown, 0.5), 60.0) * (0.5 + random.random() / 2)


def _scrub(text: str, req: LLMRequest) -> str:
    """Blank out every secret (the request's key, any provider key, URL credentials) should a provider echo it in an
    error message (stored and printed): `scrub.scrub`, with the request's own key variable registered first."""
    register_key_env((req.deployment or {}).get("api_key_env"))
    return scrub(text)


class EmptyAnswer(Exception):
    """HTTP 200 whose response holds no answer (content empty, null or missing, no choices): a failed call, retried
    like a 500, never stored as an answer."""


def _backoff(attempt: int, base: float = 0.5, cap: float = 30.0) -> float:
    return min(cap, base * 2 ** attempt) * (0.5 + random.random() / 2)


RAMP_GAP_S = 0.005


class _Ramp:
    """Spaces the first `n` launches of a batch `gap` seconds apart; later launches are never held.

    Why: launched together, the first `concurrency` calls come back together, and one event loop then works through
    their responses interleaved (each is a chain of awaits), so every call of the wave waits for nearly all the others'
    CPU, and against an endpoint of steady latency (a local vLLM or llama.cpp server, the benchmark's instrument) the
    calls stay in lock-step for the whole batch. Measured with bare `litellm.acompletion`, 16 in flight, 0.5 s a call:
    37-42 ms a call above the endpoint's latency sent at once, 22 ms with launches 4 ms apart, 9 ms for a call alone
    (`benchmarks/bench_concurrency.py` reports it side by side). A slot that frees later starts at once: its neighbours'
    answers arrive spread out, so the spacing keeps itself. It also spares a provider's rate limiter a burst.
    The cost is `concurrency x gap` once per batch (64 slots x 5 ms = 0.32 s)."""

    def __init__(self, n: int, gap: float) -> None:
        self.left = n if gap > 0 else 0
        self.gap = gap
        self._next = 0.0

    def claim(self, now: float) -> float | None:
        """The launch time of the call asking now, or None once the first wave is launched (not held)."""
        if self.left <= 0:
            return None
        self.left -= 1
        start = max(now, self._next)
        self._next = start + self.gap
        return start

    async def wait(self) -> None:
        now = asyncio.get_running_loop().time()
        start = self.claim(now)
        if start is not None and start > now:
            await asyncio.sleep(start - now)


class InProcessRunner:
    """Runs many requests against the store with bounded concurrency and retries, every call in this process (the
    worker processes of `shards` run their share through it; `batch.BatchRunner` is the one callers use)."""

    def __init__(self, store: ResponseStore, *, concurrency: int = 4, retries: int = 4, timeout: float = 120.0,
                 router: Any | None = None, backoff_base: float = 0.5, processes: int = 0,
                 ramp_gap: float = RAMP_GAP_S, transport: Callable[..., Any] | None = None) -> None:
        """`processes`: worker processes for remote calls (`shards`); 0 chooses (none unless many calls are in
        flight for a long batch), 1 keeps every call in this process. `ramp_gap`: seconds between the first
        `concurrency` remote calls of a batch (`_Ramp`); 0 sends them all at once. `transport`: a stand-in for
        `litellm.completion` (same keywords, sync or async) for plumbing tests of code above this layer: the store,
        retries and tally still run; such a batch stays in this process (a function does not cross to workers)."""
        self.store = store
        self.transport = transport
        self.concurrency = concurrency
        self.retries = retries
        self.timeout = timeout
        self.router = router
        self.backoff_base = backoff_base
        self.processes = processes
        self.ramp_gap = ramp_gap
        self.tally = Tally()
        self._by_workers: set[str] = set()  # keys answered in worker processes during this batch (counted there)
        self._given_up: set[str] = set()  # keys the workers stopped retrying

    async def _call(self, req: LLMRequest) -> Any:
        kwargs = {k: v for k, v in req.params.items() if v is not None}
        if self.transport is not None:
            out = self.transport(model=req.model, messages=req.messages, timeout=self.timeout, **kwargs)
            return await out if inspect.isawaitable(out) else out
        if self.router is not None and req.model in self.router.model_names:
            return await self.router.acompletion(model=req.model, messages=req.messages, timeout=self.timeout, **kwargs)
        return await litellm.acompletion(model=req.model, messages=req.messages, timeout=self.timeout,
                                         num_retries=0, **kwargs, **_deployment_kwargs(req.deployment))

    async def _one(self, req: LLMRequest, sem: asyncio.Semaphore, ramp: _Ramp) -> dict[str, Any]:
        key = req.key
        tally = self.tally.of(req.model)
        cached = self.store.get(key)
        if cached is not None:
            if key not in self._by_workers:
                tally.cached += 1
            return cached
        if key in self._given_up:
            return {"key": key, "error": "failed after retries (in a worker process)", "response": None}
        conflict = self.store.conflicted(key)
        if conflict:  # two different answers stored: neither is used, and a third call would not settle it
            tally.errors += 1
            return {"key": key, "response": None, "error": f"{self.store.path.name} holds different answers for this "
                    f"request (lines {', '.join(map(str, conflict))}): delete the wrong one"}
        async with sem:
            if not req.model.startswith("local/"):  # the embedded engine batches what arrives together: no pacing
                await ramp.wait()
            attempt = 0
            cooldown_waits = 0
            # provider rate limits: pacing (rpm/tpm) and Retry-After holds, per endpoint (valuelex_utils.llm.ratelimit)
            limiter = None if req.model.startswith("local/") else ratelimit.limiter_for(req.model, req.deployment)
            estimate = ratelimit.estimate_tokens(req.messages, req.params)
            rate_waits = 0
            while True:
                if limiter is not None:
                    await limiter.wait(estimate)
                started = time.perf_counter()
                rejected = None
                try:
                    response = await asyncio.wait_for(self._call(req), timeout=self.timeout * 1.5)
                    raw = response.model_dump() if hasattr(response, "model_dump") else dict(response)
                    if answer_text(raw) is None:
                        rejected = raw
                        raise EmptyAnswer(_no_answer(raw))
                except Exception as err:  # noqa: BLE001 - classify, store, then retry or stop
                    if _all_endpoints_cooling(err) and cooldown_waits < MAX_COOLDOWN_WAITS:
                        # the Router rests every endpoint of this model after failures: no call was made, so wait for
                        # the cooldown to end instead of spending (and soon exhausting) the retries of this request
                        cooldown_waits += 1
                        await asyncio.sleep(_cooldown_wait(err))
                        continue
                    latency = time.perf_counter() - started
                    hard = _is_hard(err)
                    failed = self._record(req, key, error=_scrub(f"{type(err).__name__}: {err}", req)[:2000],
                                          latency=latency, attempt=attempt)
                    if rejected is not None:
                        failed["rejected_response"] = rejected  # kept as raw history, never read as an answer
                    self.store.put(failed)
                    wait = ratelimit.retry_after_seconds(err) if ratelimit.is_rate_limit(err) else None
                    if limiter is not None and wait is not None and rate_waits < ratelimit.MAX_RATE_LIMIT_WAITS:
                        # the provider said how long to wait: hold every call of this endpoint until then, and do
                        # not spend this request's retries on a limit that only time lifts
                        rate_waits += 1
                        tally.rate_limited += 1
                        limiter.hold(wait, time.monotonic())
                        continue
                    if hard:
                        first = _scrub(str(err), req).splitlines()[0][:300] if str(err).strip() else "failed"
                        raise ProviderError(f"model {req.model}: {type(err).__name__}: {first}") from None
                    if attempt >= self.retries:
                        tally.errors += 1
                        return {"key": key, "error": _scrub(f"{type(err).__name__}: {err}", req)[:2000],
                                "response": None}
                    tally.retries += 1
                    await asyncio.sleep(_backoff(attempt, self.backoff_base))
                    attempt += 1
                    continue
                latency = time.perf_counter() - started
                record = self.store.put(self._record(req, key, response=raw, latency=latency, attempt=attempt,
                                                     endpoint=_hidden(response).get("api_base")))
                usage = raw.get("usage") or {}
                if limiter is not None:
                    limiter.settle(estimate, usage.get("total_tokens"))
                tally.calls += 1
                tally.seconds += latency
                tally.prompt_tokens += int(usage.get("prompt_tokens") or 0)
                tally.completion_tokens += int(usage.get("completion_tokens") or 0)
                tally.cost_usd += _cost(response)
                return record

    @staticmethod
    def _record(req: LLMRequest, key: str, *, response: Any = None, error: str | None = None, latency: float,
                attempt: int, endpoint: str | None = None) -> dict[str, Any]:
        usage = (response or {}).get("usage") or {}
        record = {
            "key": key, "model": req.model, "sample": req.sample,
            "request": {"messages": req.messages, "params": req.params},
            "meta": req.meta, "response": response, "error": error,
            "tokens": {"prompt": usage.get("prompt_tokens"), "completion": usage.get("completion_tokens")},
            "latency": round(latency, 4), "attempt": attempt,
        }
        step = os.environ.get("VALUELEX_STEP")
        if step:  # which step asked (a run killed before its tally was written is still counted: runner.call_counts)
            record["step"] = step
        if endpoint:  # which server answered (several api_base behind a Router); never a key
            record["endpoint"] = _without_userinfo(str(endpoint))
        return record

    async def arun(self, requests: Sequence[LLMRequest], progress: bool = True, desc: str = "LLM calls") -> list[dict[str, Any]]:
        """Answer every request (from the store when it is there); results align with `requests`."""
        models = {r.model for r in requests}
        for model in models if self.transport is None else ():
            check_model_id(model)
        if self.transport is None and any(not m.startswith("local/") for m in models):
            await _warm_up_remote_client()
        sem = asyncio.Semaphore(self.concurrency)
        ramp = _Ramp(self.concurrency, self.ramp_gap)  # like the semaphore, one per batch
        bar = _progress(len(requests), desc, progress)
        await self._shard_remote(requests, bar)
        tasks = [asyncio.ensure_future(self._one(r, sem, ramp)) for r in requests]
        for task, req in zip(tasks, requests):
            if req.key not in self._by_workers:
                task.add_done_callback(lambda _t: bar.update(1))
        try:
            results = list(await asyncio.gather(*tasks))
            _fail_if_a_model_never_answered(requests, results)
            return results
        except BaseException:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise
        finally:
            bar.close()

    async def _shard_remote(self, requests: Sequence[LLMRequest], bar: Any) -> None:
        """Nothing to send to worker processes here (`batch.BatchRunner` does)."""
        self._by_workers, self._given_up = set(), set()

    def run(self, requests: Sequence[LLMRequest], progress: bool = True, desc: str = "LLM calls") -> list[dict[str, Any]]:
        """Synchronous wrapper; in Jupyter (a loop is already running) use `await runner.arun(...)`."""
        return asyncio.run(self.arun(requests, progress=progress, desc=desc))


def _no_answer(raw: dict[str, Any]) -> str:
    """What is missing from a response without an answer, for the stored error."""
    choices = raw.get("choices")
    if not isinstance(choices, list) or not choices:
        return f"HTTP 200 without choices (choices: {json.dumps(choices)[:40]})"
    choice = choices[0] if isinstance(choices[0], dict) else {}
    message = choice.get("message") if isinstance(choice.get("message"), dict) else {}
    content = message.get("content", choice.get("text"))
    what = "null" if content is None else "empty" if isinstance(content, str) else type(content).__name__
    return f"HTTP 200 with {what} content (finish_reason: {choice.get('finish_reason')})"


def _without_userinfo(url: str) -> str:
    """`https://user:secret@host/v1` -> `https://host/v1`: credentials in a URL are still credentials."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))


def _hidden(response: Any) -> dict[str, Any]:
    hidden = getattr(response, "_hidden_params", None)
    return hidden if isinstance(hidden, dict) else {}


def _fail_if_a_model_never_answered(requests: Sequence[LLMRequest], results: Sequence[dict[str, Any]]) -> None:
    """Every call of a model failing after its retries is a broken model or endpoint, not bad luck: stop with one line
    (what was stored stays) rather than let later steps analyse an empty table."""
    by_model: dict[str, list[dict[str, Any]]] = {}
    for req, rec in zip(requests, results):
        by_model.setdefault(req.model, []).append(rec)
    for model, recs in by_model.items():
        if recs and all(r.get("response") is None for r in recs):
            last = str(recs[-1].get("error") or "no answer").strip().splitlines()[0][:200]
            raise ProviderError(f"model {model}: all {len(recs)} calls failed after retries; last error: {last}")


def _cost(response: Any) -> float:
    """The call's price. LiteLLM has already computed it (`_hidden_params["response_cost"]`) while logging the call;
    computing it again costs a millisecond a call (an unknown model walks the whole cost map), which at 64 calls in
    flight is a visible share of the client's CPU."""
    hidden = _hidden(response)
    if "response_cost" in hidden:  # None: LiteLLM has no price for this model (local, self-hosted)
        try:
            return float(hidden["response_cost"] or 0.0)
        except (TypeError, ValueError):
            return 0.0
    try:
        return float(litellm.completion_cost(completion_response=response) or 0.0)
    except Exception:  # noqa: BLE001 - unknown models (local, self-hosted) have no price
        return 0.0


_WARMED = False


async def _warm_up_remote_client() -> None:
    """Import the OpenAI SDK's resource modules in a worker thread, once.

    LiteLLM's first remote call imports them lazily (about a second on a busy machine) on the event loop thread, which
    freezes every call in flight: with a short `timeout` the first batch then times out and is retried for nothing."""
    global _WARMED
    if _WARMED:
        return
    try:
        await asyncio.to_thread(importlib.import_module, "openai.resources")
    except Exception:  # noqa: BLE001 - only a warm-up
        pass
    _WARMED = True


class _NoBar:
    """What `_progress` returns when disabled: tqdm builds a multiprocessing lock even then, which a worker process
    (`shards`) would leak at exit."""

    def update(self, n: int = 1) -> None:
        pass

    def close(self) -> None:
        pass


def _progress(total: int, desc: str, enabled: bool) -> Any:
    if not enabled:
        return _NoBar()
    return tqdm(total=total, desc=desc, mininterval=1.0)


def ping(model: str, deployment: dict[str, Any] | None = None, timeout: float = 60.0) -> tuple[bool, str]:
    """Whether a model answers a one-token call, and what it said (or the error)."""
    try:
        response = litellm.completion(model=model, messages=[{"role": "user", "content": "Say hi."}], max_tokens=1,
                                      timeout=timeout, num_retries=0, **_deployment_kwargs(deployment or {}))
        return True, repr(response.choices[0].message.content)
    except Exception as err:  # noqa: BLE001 - reported, not raised
        return False, f"{type(err).__name__}: {str(err).splitlines()[0][:200] if str(err) else ''}"


