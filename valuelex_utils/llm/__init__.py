"""The LLM layer: every model call in ValueLex goes through it (LiteLLM for every provider, the embedded GGUF models as
its provider `local`), answers go to the append-only store before anything parses them.

- `records`: a request (`LLMRequest`, hashed into the store key), the tally of a batch, `ProviderError`, answer text.
- `store`: the append-only response store. `router`: LiteLLM's Router over several endpoints of one model.
  `ratelimit`: provider rate limits (pacing, Retry-After). `roles`: the namer / judge / filter roles' calls and caches.
- `calls`: the async batch API's core (`InProcessRunner`: concurrency, retries, timeouts, tally), `ping`,
  `check_model_id`. `shards`: worker processes for long remote batches. `batch`: `BatchRunner` = both.
- `provider`: the `local` LiteLLM provider. `embedded`: the embedded models and their single-stream engine.
  `decoding`, `sequences`, `batching`: the continuous-batching engine of the embedded models.
- `models`: the `valuelex models` verb.

The names `valuelex_utils.llm` always exported (`BatchRunner`, `LLMRequest`, `response_text`, ...) are still read from
here, but loaded on first use, on purpose: `calls` imports LiteLLM (seconds), and the light parts (`store`,
`embedded.EMBEDDED`, `records`) are imported by `valuelex run`'s checks, which must not pay for it. So
`import valuelex_utils.llm` alone no longer registers the `local` provider: `import valuelex_utils.llm.provider` (or
use any name of `calls` / `batch`) does.
"""
from __future__ import annotations

import importlib
from typing import Any

# public name -> the submodule that defines it
_EXPORTS: dict[str, str] = {
    **dict.fromkeys(("DECODING_KEYS", "EmbeddedProvider", "register_local_provider"), "provider"),
    **dict.fromkeys(("LLMRequest", "ModelTally", "Tally", "ProviderError", "response_text", "unique_requests",
                     "append_tally"), "records"),
    **dict.fromkeys(("TRANSIENT", "HARD", "check_model_id", "MAX_COOLDOWN_WAITS", "EmptyAnswer", "RAMP_GAP_S", "ping",
                     "InProcessRunner", "litellm"), "calls"),
    "BatchRunner": "batch",
}


def __getattr__(name: str) -> Any:
    """PEP 562: `valuelex_utils.llm.<name>` (and `from valuelex_utils.llm import <name>`) loads its submodule."""
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    globals()[name] = value
    return value
