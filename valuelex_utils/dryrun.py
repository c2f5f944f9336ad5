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
    rows += role_rows(params, steps, count)
    for r in rows:
        r["approximate_tokens"] = r["model"] in count.approximate
    return rows


def print_dry_run(params: Params, steps: list[str]) -> None:
    rows = estimate(params, steps)
    w = max([40] + [len(r["model"]) for r in rows])
    sw = max([14] + [len(r["step"]) for r in rows])
    print(f"dry run of {params.run_name!r}: steps {', '.join(steps)}; nothing is called")
    print(f"{'step':{sw}s} {'model':{w}s} {'calls':>7s} {'prompt tok':>11s} {'max compl tok':>14s} {'cost USD':>10s}")
    total_cost, unknown = 0.0, False
    for r in rows:
        cost = "unknown" if r["cost_usd"] is None else f"{r['cost_usd']:.4f}"
        total_cost += r["cost_usd"] or 0.0
        unknown |= r["cost_usd"] is None
        print(f"{r['step']:{sw}s} {r['model']:{w}s} {r['calls']:7d} {r['prompt_tokens']:11d} {r['completion_tokens']:14d} "
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
            print(f"{'':{sw}s} {model:{w}s} {m['calls']:7d} {m['prompt_tokens']:11d} {m['completion_tokens']:14d} "
                  f"{cost:>10s}")
    calls = sum(r["calls"] for r in rows)
    print(f"total: {calls} calls, at most {total_cost:.4f} USD"
          + (" plus models without a price (local or self-hosted: free here)" if unknown else ""))
    approx = sorted({r["model"] for r in rows if r.get("approximate_tokens")})
    if approx:
        print(f"prompt tokens of {len(approx)} model(s) without a known tokenizer are counted with tiktoken "
              "(approximate)")
    notes = [f"{r['step']} {r['model']}: {r['note']}" for r in rows if r.get("note")]
    for note in dict.fromkeys(notes):
        print(f"note: {note}")
    if not any(r["step"] in ("02_lexicon", "04_taxonomy") for r in rows):
        print("steps 02-04 make no LLM calls unless extraction.llm_judge or taxonomy.namer is set")


# -- the role models: extraction judgment (02), namer (04), LLM judge (06, 07) -------------------------------------
WORDS_PER_ANSWER = 6  # rule descriptors per elicited answer (about 5-7 on the embedded models' and written answers)
ESTIMATED_DIMENSIONS = 4  # dimensions a study's factor analysis finds (the paper: 3 for aligned models)
RETEST_FRACTION = 0.1  # share of completions the judge scores twice (scoring.score_with_reliability)
COMPARED_SYSTEMS = ("schwartz", "valuelex", "mft")  # what step 07 scores (comparison.SYSTEM_ORDER)


def _distinct_words(n_answers: int) -> int:
    """Distinct rule words of `n_answers` answers, by Heaps' law (V = 6 sqrt(N) for N words; the smoke study: 56
    words, 42 distinct): unknown before step 01 has run, so an estimate."""
    n_words = n_answers * WORDS_PER_ANSWER
    return int(min(n_words, round(6 * n_words ** 0.5)))


def _row(step: str, model: str, calls: int, prompt_one: int, completion_one: int, note: str) -> dict[str, Any]:
    prompt, completion = calls * prompt_one, calls * completion_one
    return {"step": step, "model": model, "calls": calls, "prompt_tokens": prompt, "completion_tokens": completion,
            "cost_usd": _cost(model, prompt, completion), "note": note}


def _judgment_row(params: Params, count: "_TokenCounter") -> dict[str, Any]:
    from . import elicitation
    from .extraction import FILTER_BATCH, filter_decoding, llm_filter_messages

    model = params.extraction.llm_judge
    words = _distinct_words(len(elicitation.build_requests(params)))
    calls = -(-words // FILTER_BATCH)
    prompt = count(model, llm_filter_messages(["trustworthiness"] * FILTER_BATCH))
    return _row("02_lexicon", model, calls, prompt, int(filter_decoding()["max_tokens"]),
                f"about {words} distinct words (estimated), {FILTER_BATCH} per call")


def _namer_row(params: Params, count: "_TokenCounter") -> dict[str, Any]:
    from .taxonomy.naming import NAMING_DECODING, build_messages

    model = params.taxonomy.namer
    calls = ESTIMATED_DIMENSIONS * (1 + params.taxonomy.k_max)
    prompt = count(model, build_messages("subdimension", ["trustworthiness"] * 25, parent="Integrity",
                                         siblings=[["honesty"] * 25]))
    return _row("04_taxonomy", model, calls, prompt, int(NAMING_DECODING["max_tokens"]),
                f"about {ESTIMATED_DIMENSIONS} dimensions with up to {params.taxonomy.k_max} subdimensions "
                "(known after step 03)")


def _judge_calls(params: Params, system_name: str, n_completions: int, count: "_TokenCounter"
                 ) -> tuple[int, int]:
    """Calls and prompt tokens of one call when the judge scores the completions on one value system: every
    completion, the annotated items of the reliability check, and the test-retest share."""
    from .scoring import annotated_path, build_judge_messages
    from .systems import load_system

    system = load_system("valuelex" if system_name == "run" else system_name)  # the run's own: counted like the paper's
    has_labels = system_name != "run" and annotated_path(system) is not None
    annotated = params.scoring.judge_reliability_items if has_labels else 0
    calls = n_completions + annotated + max(1, round(n_completions * RETEST_FRACTION))
    completion = " ".join(["value"] * params.projective.max_tokens)
    return calls, count(params.scoring.judge or "", build_judge_messages(system, "I like...", completion))


def _judge_rows(params: Params, steps: list[str], count: "_TokenCounter") -> list[dict[str, Any]]:
    from . import projective
    from .params import DEFAULT_JUDGE

    model = params.scoring.judge or DEFAULT_JUDGE
    n = len(projective.build_requests(params))
    scored = list(params.scoring.systems)  # step 06 scores every listed system; 07 reuses them and adds the rest
    per_step = {"06_score": scored,
                "07_compare_mft_schwartz": [s for s in COMPARED_SYSTEMS if s not in scored]}
    rows = []
    for step, systems in per_step.items():
        if step[:2] not in steps or not systems:
            continue
        calls = prompt = 0
        for name in systems:
            c, p = _judge_calls(params, name, n, count)
            calls, prompt = calls + c, prompt + c * p
        note = ("per completion and system one verdict, plus the reliability items and a 10% retest; an unparseable "
                "verdict is asked up to twice more (not counted)")
        row = _row(step, model, calls, 0, params.scoring.judge_max_tokens, note)
        row.update(prompt_tokens=prompt, cost_usd=_cost(model, prompt, row["completion_tokens"]))
        rows.append(row)
    return rows


def role_rows(params: Params, steps: list[str], count: "_TokenCounter") -> list[dict[str, Any]]:
    """Calls, tokens and cost of the role models, built from the prompts the steps send (counts of words and clusters
    are estimates: they are known only once the steps before have run)."""
    rows = []
    if "02" in steps and params.extraction.llm_judge:
        rows.append(_judgment_row(params, count))
    if "04" in steps and params.taxonomy.namer:
        rows.append(_namer_row(params, count))
    if params.scoring.scorer == "llm":
        rows += _judge_rows(params, steps, count)
    return rows
