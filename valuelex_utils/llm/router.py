"""Scale-out: several endpoints of one model load-balanced with LiteLLM's Router (retries, cooldown of a failing
endpoint). A respondent whose `api_base` is a list gets one deployment per endpoint.

The Router itself does not retry (`num_retries=0`): `BatchRunner` owns retries, so that every failed attempt is stored
with its error and counted in the run's tally (calls.jsonl, manifest.json) instead of vanishing inside LiteLLM. The
Router still does what only it can: it spreads calls over the endpoints and rests an endpoint that failed more than
`ALLOWED_FAILS` times in a minute (a killed server answers "connection error" at once) for `COOLDOWN_SECONDS`, so
retries land on the live ones. When every endpoint of a model is resting, `BatchRunner` waits for the cooldown to end
rather than spending the request's retries (a rate-limited provider must not cost answers).
"""
from __future__ import annotations

import os
from typing import Any

from ..errors import UserError
from ..params import Params
from ..scrub import read_key, register_url

COOLDOWN_SECONDS = 5  # LiteLLM's default: a dead endpoint is probed again every few seconds, a live one is back soon
ALLOWED_FAILS = 2  # per minute; a single 429 or 500 on a busy endpoint does not take it out of the rotation


def router_for(params: Params) -> Any | None:
    """A LiteLLM Router over every model with several endpoints (a respondent's `api_base` list, or one in
    `endpoints` for a judge or namer), or None when no model has several."""
    served = [(r.model, r.api_bases, r.api_key_env) for r in params.respondents]
    respondent_models = {r.model for r in params.respondents}
    served += [(m, e.api_bases, e.api_key_env) for m, e in params.endpoints.items() if m not in respondent_models]
    model_list = []
    for model, bases, key_env in served:
        if len(bases) < 2:
            continue
        for base in bases:
            lp: dict[str, Any] = {"model": model, "api_base": base}
            register_url(base)
            if key_env:
                if key_env not in os.environ:
                    raise UserError(f"model {model}: environment variable {key_env} (api_key_env) is not set")
                lp["api_key"] = read_key(key_env)  # registered as a secret: scrubbed wherever it would be written
            model_list.append({"model_name": model, "litellm_params": lp})
    if not model_list:
        return None
    return make_router(model_list)


def make_router(model_list: list[dict[str, Any]]) -> Any:
    """The Router for a model list; the list is kept on it (`valuelex_model_list`) so that worker processes
    (`shards`) can build the same Router: a Router itself does not cross process boundaries."""
    from litellm import Router  # LiteLLM is slow to import: only when a Router is built, on purpose

    router = Router(model_list=model_list, routing_strategy="simple-shuffle", num_retries=0,
                    allowed_fails=ALLOWED_FAILS, cooldown_time=COOLDOWN_SECONDS, retry_after=0)
    router.valuelex_model_list = [dict(m, litellm_params=dict(m["litellm_params"])) for m in model_list]
    return router
