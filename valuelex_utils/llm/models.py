"""`valuelex models`: which models this machine can use right now, each checked with a one-token call."""
from __future__ import annotations

import sys

from ..elicitation import deployment_of
from ..params import load_params
from .calls import ping
from .embedded import EMBEDDED


def list_models(params_path: str | None = None, timeout: float = 60.0) -> int:
    """Print one line per embedded and configured model with whether it answered; exit 1 if any did not."""
    rows: list[tuple[str, str, dict]] = [(f"local/{n}", f"embedded, {s.training}, {s.size_b:g}B: {s.description}", {})
                                         for n, s in EMBEDDED.items()]
    if params_path:
        params = load_params(params_path)
        for r in params.respondents:
            if any(r.model == m for m, _, _ in rows):
                continue
            desc = f"configured, {r.training}, {r.size or 'NA'}B"
            bases = r.api_bases or [None]
            for base in bases:  # each endpoint of a load-balanced model is checked on its own
                where = f" @ {base}" if len(bases) > 1 else ""
                rows.append((r.model, desc + where, {**deployment_of(r), "api_base": base}))
        for role, model in params.role_models().items():  # a judge or namer that is not a respondent
            if any(model == m for m, _, _ in rows):
                continue
            endpoint = params.endpoints.get(model)
            bases = (endpoint.api_bases if endpoint else []) or [None]
            key_env = endpoint.api_key_env if endpoint else None
            for base in bases:
                where = f" @ {base}" if len(bases) > 1 else ""
                rows.append((model, f"configured, {role}{where}", {"api_base": base, "api_key_env": key_env}))
    failed = 0
    for model, desc, deployment in rows:
        ok, said = ping(model, deployment, timeout=timeout)
        failed += not ok
        status = "answers" if ok else "NOT REACHABLE"
        print(f"{model:38s} {status:14s} {desc}  [{said}]")
        sys.stdout.flush()
    return 1 if failed else 0
