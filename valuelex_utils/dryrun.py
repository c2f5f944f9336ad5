"""`valuelex run --dry-run`: how many calls and tokens each step would make, and what they would cost, before a
researcher spends money. Counts come from the same request builders the steps use; completion tokens are the
`max_tokens` upper bound; prices from LiteLLM's local cost map (unknown for local and self-hosted models)."""
from __future__ import annotations

from collections import defaultdict
from typing import Any

from .params import Params


def _cost(model: str, prompt_tokens: int, completion_tokens: int) -> float | None:
    import litellm

    try:
        p, c = litellm.cost_per_token(model=model, prompt_tokens=prompt_tokens, completion_tokens=completion_tokens)
        return float(p + c)
    except Exception:  # noqa: BLE001 - not in the cost map
        return None


def estimate(params: Params, steps: list[str]) -> list[dict[str, Any]]:
    """Rows of (step, model, calls, prompt_tokens, max_completion_tokens, cost_usd or None)."""
    import litellm

    from . import elicitation, projective
    from .store import ResponseStore  # noqa: F401 - same key function as the run

    builders = {"01": ("01_elicit", elicitation.build_requests), "05": ("05_projective", projective.build_requests)}
    rows = []
    for step, (name, build) in builders.items():
        if step not in steps:
            continue
        agg: dict[str, dict[str, int]] = defaultdict(lambda: {"calls": 0, "prompt_tokens": 0, "completion_tokens": 0})
        for req in build(params):
            a = agg[req.model]
            a["calls"] += 1
            a["prompt_tokens"] += litellm.token_counter(model=req.model, messages=req.messages)
            a["completion_tokens"] += int(req.params.get("max_tokens") or 0)
        for model, a in agg.items():
            rows.append({"step": name, "model": model, **a, "cost_usd": _cost(model, a["prompt_tokens"],
                                                                              a["completion_tokens"])})
    if "06" in steps and params.scoring.scorer == "llm" and params.scoring.judge:
        n = sum(1 for _ in projective.build_requests(params))
        rows.append({"step": "06_score", "model": params.scoring.judge, "calls": n, "prompt_tokens": n * 900,
                     "completion_tokens": n * 300, "cost_usd": _cost(params.scoring.judge, n * 900, n * 300),
                     "note": "judge: ~900 prompt and <=300 completion tokens per completion (few-shot CoT)"})
    return rows


def print_dry_run(params: Params, steps: list[str]) -> None:
    rows = estimate(params, steps)
    print(f"dry run of {params.run_name!r}: steps {', '.join(steps)}; nothing is called")
    print(f"{'step':14s} {'model':40s} {'calls':>7s} {'prompt tok':>11s} {'max compl tok':>14s} {'cost USD':>10s}")
    total_cost, unknown = 0.0, False
    for r in rows:
        cost = "unknown" if r["cost_usd"] is None else f"{r['cost_usd']:.4f}"
        total_cost += r["cost_usd"] or 0.0
        unknown |= r["cost_usd"] is None
        print(f"{r['step']:14s} {r['model']:40s} {r['calls']:7d} {r['prompt_tokens']:11d} {r['completion_tokens']:14d} "
              f"{cost:>10s}")
    calls = sum(r["calls"] for r in rows)
    print(f"total: {calls} calls, at most {total_cost:.4f} USD"
          + (" plus models without a price (local or self-hosted: free here)" if unknown else ""))
    print("steps 02-04 and 07 make no LLM calls unless extraction.llm_judge or taxonomy.namer is set")
