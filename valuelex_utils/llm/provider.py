"""The embedded GGUF models as the LiteLLM provider `local`.

Importing this module registers the provider, so that `litellm.completion(model="local/smollm2-135m-instruct", ...)`
works like any other LiteLLM id and notebooks never special-case them.
"""
from __future__ import annotations

import asyncio
import time
from typing import Any

import litellm
from litellm import CustomLLM

from . import embedded

litellm.suppress_debug_info = True
litellm.telemetry = False

DECODING_KEYS = ("temperature", "top_p", "max_tokens", "seed", "stop")


class EmbeddedProvider(CustomLLM):
    """LiteLLM custom provider for the embedded models (`local/<name>`).

    `acompletion` awaits the model's batch engine instead of parking a worker thread per call, so every concurrent
    request of the async batch API can join the same decoding batch (a thread per call would cap that at the
    executor's few workers)."""

    @staticmethod
    def _request(kwargs: dict[str, Any]) -> tuple[str, Any, list[dict[str, Any]], dict[str, Any]]:
        """Model name, engine, messages and decoding options of a LiteLLM call."""
        model = kwargs["model"]
        name = model.split("/", 1)[1] if model.startswith("local/") else model
        optional_params = kwargs.get("optional_params") or {}
        opts = {k: optional_params[k] for k in DECODING_KEYS if optional_params.get(k) is not None}
        if "max_completion_tokens" in optional_params and "max_tokens" not in opts:
            opts["max_tokens"] = optional_params["max_completion_tokens"]
        return name, embedded.get_engine(name), kwargs["messages"], opts

    @staticmethod
    def _response(name: str, result: embedded.GenerationResult, started: float) -> litellm.ModelResponse:
        return litellm.ModelResponse(
            model=f"local/{name}",
            choices=[{"index": 0, "finish_reason": result.finish_reason,
                      "message": {"role": "assistant", "content": result.text}}],
            usage={"prompt_tokens": result.prompt_tokens, "completion_tokens": result.completion_tokens,
                   "total_tokens": result.prompt_tokens + result.completion_tokens},
            _response_ms=(time.perf_counter() - started) * 1000,
        )

    def completion(self, *args: Any, **kwargs: Any) -> litellm.ModelResponse:  # type: ignore[override]
        started = time.perf_counter()
        name, engine, messages, opts = self._request(kwargs)
        return self._response(name, engine.generate(messages, **opts), started)

    async def acompletion(self, *args: Any, **kwargs: Any) -> litellm.ModelResponse:  # type: ignore[override]
        started = time.perf_counter()
        if self._loaded(kwargs["model"]):
            name, engine, messages, opts = self._request(kwargs)
        else:  # the first call loads the model (about a second): keep that off the event loop
            name, engine, messages, opts = await asyncio.to_thread(self._request, kwargs)
        return self._response(name, await engine.agenerate(messages, **opts), started)

    @staticmethod
    def _loaded(model: str) -> bool:
        name = model.split("/", 1)[1] if model.startswith("local/") else model
        return name in embedded._engines


_provider = EmbeddedProvider()


def register_local_provider() -> None:
    """Idempotently add the `local` provider to LiteLLM's custom provider map."""
    entries = [e for e in (litellm.custom_provider_map or []) if e.get("provider") != "local"]
    litellm.custom_provider_map = entries + [{"provider": "local", "custom_handler": _provider}]
    litellm.utils.custom_llm_setup()


register_local_provider()
