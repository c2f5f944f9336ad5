"""Scale-out: several endpoints of one model load-balanced with LiteLLM's Router (retries, cooldown of a failing
endpoint). A respondent whose `api_base` is a list gets one deployment per endpoint."""
from __future__ import annotations

import os
from typing import Any

from .params import Params


def router_for(params: Params) -> Any | None:
    """A LiteLLM Router over every multi-endpoint respondent, or None when no respondent has several endpoints."""
    model_list = []
    for r in params.respondents:
        if len(r.api_bases) < 2:
            continue
        for base in r.api_bases:
            lp: dict[str, Any] = {"model": r.model, "api_base": base}
            if r.api_key_env:
                lp["api_key"] = os.environ.get(r.api_key_env)
            model_list.append({"model_name": r.model, "litellm_params": lp})
    if not model_list:
        return None
    from litellm import Router

    return Router(model_list=model_list, routing_strategy="simple-shuffle", num_retries=2, allowed_fails=1,
                  cooldown_time=30, retry_after=0)
