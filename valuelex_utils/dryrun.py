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


class _TokenCounter:
    """LiteLLM's token counter, once per distinct (model, messages): the samples and configs of a respondent repeat the
    same prompt. For models without a known tokenizer (self-hosted ids) LiteLLM falls back to tiktoken and warns on
    every call (a thousand lines for the paper's study): those warnings are held back and summed up in one note."""

    def __init__(self) -> None:
        self._seen: dict[tuple[str, str], int] = {}
        self.approximate: set[str] = set()

    def __call__(self, model: str, messages: list[dict[str, Any]]) -> int:
        import json
        import logging

        import litellm

        key = (model, json.dumps(messages, sort_keys=True))
        if key not in self._seen:
            said: list[logging.LogRecord] = []

            def hold(record: logging.LogRecord) -> bool:
                said.append(record)
                return False

            logger = logging.getLogger("LiteLLM")
            logger.addFilter(hold)
            try:
                self._seen[key] = int(litellm.token_counter(model=model, messages=messages))
            finally:
                logger.removeFilter(hold)
            if any("tiktoken" in r.getMessage() for r in said):
                self.approximate.add(model)
        return self._seen[key]


def estimate(params: Params, steps: list[str]) -> list[dict[str, Any]]:
    """Rows of (step, model, calls, prompt_tokens, max_completion_tokens, cost_usd or None)."""
    from . import elicitation, projective

    builders = {"01": ("01_elicit", elicitation.build_requests), "05": ("05_projective", projective.build_requests)}
    rows = []
    count = _TokenCounter()
    for step, (name, build) in builders.items():
        if step not in steps:
            continue
        agg: dict[str, dict[str, int]] = defaultdict(lambda: {"calls": 0, "prompt_tokens": 0, "completion_tokens": 0})
        for req in build(params):
            a = agg[req.model]
            a["calls"] += 1
            a["prompt_tokens"] += count(req.model, req.messages)
            a["completion_tokens"] += int(req.params.get("max_tokens") or 0)
        for model, a in agg.items():
            rows.append({"step": name, "model": model, **a, "cost_usd": _cost(model, a["prompt_tokens"],
                                                                              a["completion_tokens"])})
    if "06" in steps and params.scoring.scorer == "llm" and params.scoring.judge:
        n = sum(1 for _ in projective.build_requests(params))
        rows.append({"step": "06_score", "model": params.scoring.judge, "calls": n, "prompt_tokens": n * 900,
                     "completion_tokens": n * 300, "cost_usd": _cost(params.scoring.judge, n * 900, n * 300),
                     "note": "judge: ~900 prompt and <=300 completion tokens per completion (few-shot CoT)"})
    for r in rows:
        r["approximate_tokens"] = r["model"] in count.approximate
    return rows


def print_dry_run(params: Params, steps: list[str]) -> None:
    rows = estimate(params, steps)
    w = max([40] + [len(r["model"]) for r in rows])
    print(f"dry run of {params.run_name!r}: steps {', '.join(steps)}; nothing is called")
    print(f"{'step':14s} {'model':{w}s} {'calls':>7s} {'prompt tok':>11s} {'max compl tok':>14s} {'cost USD':>10s}")
    total_cost, unknown = 0.0, False
    for r in rows:
        cost = "unknown" if r["cost_usd"] is None else f"{r['cost_usd']:.4f}"
        total_cost += r["cost_usd"] or 0.0
        unknown |= r["cost_usd"] is None
        print(f"{r['step']:14s} {r['model']:{w}s} {r['calls']:7d} {r['prompt_tokens']:11d} {r['completion_tokens']:14d} "
              f"{cost:>10s}")
    per_model: dict[str, dict[str, Any]] = {}
    for r in rows:
        m = per_model.setdefault(r["model"], {"calls": 0, "prompt_tokens": 0, "completion_tokens": 0, "cost_usd": 0.0,
                                              "priced": True})
        for k in ("calls", "prompt_tokens", "completion_tokens"):
            m[k] += r[k]
        m["cost_usd"] += r["cost_usd"] or 0.0
        m["priced"] &= r["cost_usd"] is not None
    if len(rows) > len(per_model):
        print("per model:")
        for model, m in sorted(per_model.items(), key=lambda kv: -kv[1]["cost_usd"]):
            cost = f"{m['cost_usd']:.4f}" if m["priced"] else "unknown"
            print(f"{'':14s} {model:{w}s} {m['calls']:7d} {m['prompt_tokens']:11d} {m['completion_tokens']:14d} "
                  f"{cost:>10s}")
    calls = sum(r["calls"] for r in rows)
    print(f"total: {calls} calls, at most {total_cost:.4f} USD"
          + (" plus models without a price (local or self-hosted: free here)" if unknown else ""))
    approx = sorted({r["model"] for r in rows if r.get("approximate_tokens")})
    if approx:
        print(f"prompt tokens of {len(approx)} model(s) without a known tokenizer are counted with tiktoken "
              "(approximate)")
    print("steps 02-04 and 07 make no LLM calls unless extraction.llm_judge or taxonomy.namer is set")
