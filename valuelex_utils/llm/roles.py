"""Models in a role: the extraction judgment (step 02, `valuelex extract --judge`), the namer (04) and the LLM judge
(06/07, `valuelex score --scorer llm`) call through the same layer as the respondents.

Why one layer: a judge is usually the most expensive model of a study (GPT-4 in the paper), so its calls need what the
respondents' calls have: every answer stored raw before it is parsed (`store.ResponseStore`), a rerun or a resumed
kill -9 served from that store with no request sent twice, retries with backoff, bounded concurrency, several
endpoints behind LiteLLM's Router, worker processes for many calls, and the calls, tokens and cost of every batch in
`calls.jsonl` (summed per step and model in `manifest.json`). `RoleCaller` is that caller: a thin face on
`llm.batch.BatchRunner` that takes chat messages and gives answers. Inside a run its store is the run's `responses.jsonl`;
the CLI verbs give it a cache folder (`--cache DIR`, by default `valuelex-cache/` beside the output).

`calls` and `batch` (LiteLLM, seconds to import) are imported when a caller is made, on purpose: `naming` and the
scorers import this module at their top, and a study that never calls a role model must not pay for LiteLLM.
"""
from __future__ import annotations

import asyncio
import os
import tempfile
import time
import weakref
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from ..errors import UserError
from .records import LLMRequest, Tally, append_tally, response_text
from .router import router_for
from .store import ResponseStore

Messages = list[dict[str, Any]]
CACHE_DIR_NAME = "valuelex-cache"


def current_step(default: str) -> str:
    """The step a call is tallied under: the notebook `valuelex run` is executing (`VALUELEX_STEP`), else `default`.

    Why: the same scoring code runs in 06 and again in 07 (three more value systems); the manifest should say which
    step spent the calls."""
    return os.environ.get("VALUELEX_STEP") or default


@dataclass(frozen=True)
class CallSettings:
    """How a batch is driven: calls in flight, retries, per-call timeout, worker processes (see `BatchRunner`)."""

    concurrency: int = 4
    retries: int = 4
    timeout: float = 120.0
    processes: int = 0

    @classmethod
    def of(cls, params: Any) -> "CallSettings":
        return cls(concurrency=params.concurrency, retries=params.retries, timeout=params.timeout,
                   processes=params.processes)


def _run_sync(fn: Callable[[], Any]) -> Any:
    """Run `fn` (which calls asyncio.run) here, or in a worker thread when an event loop is already running
    (Jupyter), where asyncio.run would refuse."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return fn()
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(fn).result()


class RoleCaller:
    """`batch(list of messages) -> answers` for one model in one role, through `BatchRunner` and a store.

    Each batch is one `BatchRunner` batch (concurrent, cached by request key, retried) whose counts are appended to
    `<tally_dir>/calls.jsonl` under `step` when a tally dir is given, and added to `self.tally`. A call that still
    fails after its retries answers "" (`records` has its error); a hard failure (unknown model, bad key) raises
    `ProviderError`, one line naming the model."""

    def __init__(self, model: str, store: Any = None, *, role: str, step: str, params: Mapping[str, Any] | None = None,
                 deployment: Mapping[str, Any] | None = None, router: Any | None = None,
                 settings: CallSettings = CallSettings(), tally_dir: str | Path | None = None,
                 progress: bool = False, transport: Callable[..., Any] | None = None) -> None:
        """`store`: a `ResponseStore`, a path to one, or None for a throw-away store (answers live as long as this
        object). `params`: decoding params of every request (hashed into the key). `transport`: see `BatchRunner`."""
        from .calls import check_model_id  # LiteLLM: deferred on purpose (module docstring)

        if not isinstance(model, str) or not model.strip():
            raise UserError(f"{role}: expected a LiteLLM model id such as openai/gpt-4o-mini")
        if transport is None:  # a stand-in transport (plumbing tests) answers for any id
            check_model_id(model)
        self.model, self.role, self.step = model, role, step
        self.store = self._open_store(store)
        self.params = dict(params or {})
        self.deployment = dict(deployment or {})
        self.router, self.settings, self.progress, self.transport = router, settings, progress, transport
        self.tally_dir = Path(tally_dir) if tally_dir is not None else None
        self.tally = Tally()
        self.errors: list[str] = []
        self.seconds = 0.0

    def _open_store(self, store: Any) -> Any:
        if isinstance(store, ResponseStore):
            return store
        if store is None:  # no cache wanted: a private temporary store, removed with this object
            folder = tempfile.TemporaryDirectory(prefix="valuelex-calls-")
            weakref.finalize(self, folder.cleanup)
            return ResponseStore(Path(folder.name) / "responses.jsonl")
        return ResponseStore(Path(store))

    def requests(self, batch: Sequence[Messages], params: Mapping[str, Any] | None = None, sample: int = 0) -> list[Any]:
        """The `LLMRequest`s of a batch (what `--dry-run` counts and what the store keys)."""
        decoding = {**self.params, **(params or {})}
        return [LLMRequest(self.model, list(m), dict(decoding), sample=sample,
                           meta={"step": self.step, "role": self.role}, deployment=self.deployment) for m in batch]

    def records(self, batch: Sequence[Messages], params: Mapping[str, Any] | None = None,
                sample: int = 0) -> list[dict[str, Any]]:
        """The stored records (answered or failed) of a batch, aligned with it."""
        from .batch import BatchRunner  # LiteLLM: deferred on purpose (module docstring)

        if not batch:
            return []
        reqs = self.requests(batch, params, sample)
        s = self.settings
        runner = BatchRunner(self.store, concurrency=s.concurrency, retries=s.retries, timeout=s.timeout,
                             router=self.router, processes=s.processes, transport=self.transport)
        started = time.perf_counter()
        try:
            records = _run_sync(lambda: runner.run(reqs, progress=self.progress, desc=self.role))
        finally:
            seconds = time.perf_counter() - started
            self.seconds += seconds
            self.tally.merge(runner.tally.to_dict())
            if self.tally_dir is not None:
                append_tally(self.tally_dir, self.step, runner.tally, seconds)
        self.errors += [str(r.get("error")) for r in records if r.get("response") is None]
        return records

    def batch(self, batch: Sequence[Messages], params: Mapping[str, Any] | None = None, sample: int = 0) -> list[str]:
        """Answer texts aligned with `batch`; "" for a call that failed after its retries."""
        return [response_text(r) if r.get("response") is not None else ""
                for r in self.records(batch, params, sample)]

    def __call__(self, messages: Messages) -> str:
        return self.batch([messages])[0]

    def summary(self) -> str:
        """One line for the CLI: calls made, answers reused, failures, and where the cache is."""
        calls, cached, errors = (int(self.tally.total(a)) for a in ("calls", "cached", "errors"))
        return (f"{self.role} {self.model}: {calls} calls, {cached} answers from the cache, {errors} failed "
                f"(cache: {self.store.path.parent})")


def deployment_for(params: Any, model: str) -> dict[str, Any]:
    """Endpoint details for a role model: a respondent's own when the model is also a respondent, else
    `params.endpoints[model]`, else none (a hosted API whose key LiteLLM reads from the environment). A model with
    several endpoints gets none here: `router_for(params)` load-balances it."""
    for r in params.respondents:
        if r.model == model:
            bases, key_env, limits = r.api_bases, r.api_key_env, (r.rpm, r.tpm)
            break
    else:
        endpoint = params.endpoints.get(model)
        if endpoint is None:
            return {}
        bases, key_env, limits = endpoint.api_bases, endpoint.api_key_env, (endpoint.rpm, endpoint.tpm)
    return {"api_base": bases[0] if len(bases) == 1 else None, "api_key_env": key_env,
            **{k: v for k, v in zip(("rpm", "tpm"), limits) if v}}  # rate limits (valuelex_utils.llm.ratelimit)


def role_caller(params: Any, model: str, run_dir: str | Path, *, role: str, step: str,
                decoding: Mapping[str, Any] | None = None, progress: bool = False) -> RoleCaller:
    """The caller for a role model of a study: the run's store, the study's concurrency, retries, timeout, worker
    processes and Router, and its tally in the run's `calls.jsonl` under `current_step(step)`."""
    run_dir = Path(run_dir)
    return RoleCaller(model, run_dir / "responses.jsonl", role=role, step=current_step(step), params=decoding,
                      deployment=deployment_for(params, model), router=router_for(params),
                      settings=CallSettings.of(params), tally_dir=run_dir, progress=progress)


def default_cache_dir(output: str | Path) -> Path:
    """Where a CLI verb caches its model calls when `--cache` is not given: `valuelex-cache/` beside the output, so
    rerunning the same command (or scoring the same completions again) costs nothing."""
    return Path(output).resolve().parent / CACHE_DIR_NAME


def cli_deployment(api_base: str | None, api_key_env: str | None) -> dict[str, Any]:
    """`--api-base` / `--api-key-env` of a CLI verb as a deployment; the variable must be set (checked before any
    call or write)."""
    if api_key_env and api_key_env not in os.environ:
        raise UserError(f"environment variable {api_key_env} (--api-key-env) is not set")
    return {"api_base": api_base, "api_key_env": api_key_env} if (api_base or api_key_env) else {}


def cache_caller(model: str, cache: str | Path, *, role: str, step: str, decoding: Mapping[str, Any] | None = None,
                 deployment: Mapping[str, Any] | None = None, settings: CallSettings = CallSettings(),
                 progress: bool = False, transport: Callable[..., Any] | None = None) -> RoleCaller:
    """The caller of a CLI verb outside a run dir: answers in `<cache>/responses.jsonl`, counts in
    `<cache>/calls.jsonl`. A cache path that is a file is a `UserError`."""
    folder = Path(cache)
    if folder.exists() and not folder.is_dir():
        raise UserError(f"--cache {folder}: is a file, expected a folder")
    return RoleCaller(model, folder / "responses.jsonl", role=role, step=step, params=decoding, deployment=deployment,
                      settings=settings, tally_dir=folder, progress=progress, transport=transport)
