"""Batched local decoding: concurrent requests to an embedded model are decoded together, and callers see no
difference but speed. Every test runs the real models (no mocks of generation)."""
from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap

import litellm
import pytest

import valuelex_utils.llm.provider  # noqa: F401 - registers the `local` provider
from valuelex_utils.llm import batching, embedded
from valuelex_utils.llm.batching import BatchConfig, BatchEngine, SequenceState

SMOL = "local/smollm2-135m-instruct"
GEMMA = "local/gemma-3-270m"
TOPICS = ["honesty", "family", "work", "friendship", "money", "freedom", "nature", "success",
          "kindness", "learning", "health", "justice", "faith", "art", "power", "loyalty"]


def ask(topic: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": f"In one sentence, what do you think about {topic}?"}]


def answer(r: litellm.ModelResponse) -> tuple[str, int, int, str]:
    """What a caller sees: text, usage and finish_reason."""
    return (r.choices[0].message.content, r.usage.prompt_tokens, r.usage.completion_tokens,
            r.choices[0].finish_reason)


def single_stream(monkeypatch: pytest.MonkeyPatch, model: str, requests: list[dict]) -> list[tuple]:
    """The reference: the single-stream fallback (`VALUELEX_BATCHING=0`), one request at a time."""
    with monkeypatch.context() as mp:
        mp.setenv("VALUELEX_BATCHING", "0")
        return [answer(litellm.completion(model=model, **r)) for r in requests]


def batched(model: str, requests: list[dict]) -> list[tuple | BaseException]:
    """All requests at once through `litellm.acompletion` (the path of the async batch API)."""
    async def run() -> list:
        return await asyncio.gather(*[litellm.acompletion(model=model, num_retries=0, **r) for r in requests],
                                    return_exceptions=True)

    return [o if isinstance(o, BaseException) else answer(o) for o in asyncio.run(run())]


@pytest.mark.parametrize("model", [SMOL, GEMMA])
def test_one_sequence_batch_reproduces_the_single_stream_answer(monkeypatch, model):
    req = dict(messages=ask("honesty"), max_tokens=32, temperature=0.8, top_p=0.95, seed=11)
    reference = single_stream(monkeypatch, model, [req])[0]
    monkeypatch.setenv("VALUELEX_BATCHING", "1")
    alone = answer(litellm.completion(model=model, **req))
    assert alone == reference
    assert reference[2] > 0


@pytest.mark.parametrize("model", [SMOL, GEMMA])
def test_greedy_answers_in_a_batch_match_single_stream(monkeypatch, model):
    """With the batch-invariant kernels and flash attention the logits are bit-identical, so every greedy answer
    should match; the rate is printed so a regression (a kernel that depends on the batch size) shows its size."""
    reqs = [dict(messages=ask(t), max_tokens=24, temperature=0.0) for t in TOPICS]
    reference = single_stream(monkeypatch, model, reqs)
    together = batched(model, reqs)
    agree = sum(a == b for a, b in zip(reference, together)) / len(reqs)
    print(f"\n{model}: greedy agreement batch(16) vs single-stream = {agree:.0%}")
    assert not [o for o in together if isinstance(o, BaseException)]
    assert agree == 1.0


@pytest.mark.parametrize("model", [SMOL, GEMMA])
def test_seeded_requests_do_not_depend_on_their_batch_neighbours(monkeypatch, model):
    seeded = dict(messages=ask("freedom"), max_tokens=32, temperature=1.0, top_p=0.95, seed=5)
    reference = single_stream(monkeypatch, model, [seeded])[0]
    crowd = [dict(messages=ask(t), max_tokens=16 + 3 * i, temperature=0.9, seed=100 + i) for i, t in enumerate(TOPICS[:9])]
    first = batched(model, crowd[:3] + [seeded] + crowd[3:])[3]
    second = batched(model, [seeded] + crowd[6:])[0]
    assert first == second == reference


@pytest.mark.parametrize("model", [SMOL, GEMMA])
def test_stop_strings_and_max_tokens_hold_per_sequence(monkeypatch, model):
    reqs = [
        dict(messages=[{"role": "user", "content": "1, 2, 3, 4,"}], max_tokens=30, temperature=0.0, stop=[","]),
        dict(messages=[{"role": "user", "content": "Once upon a time"}], max_tokens=5, temperature=0.0),
        dict(messages=[{"role": "user", "content": "Tell me a long story."}], max_tokens=30, temperature=0.0,
             stop=[" "]),
        dict(messages=[{"role": "user", "content": "My favourite colours are red,"}], max_tokens=12, temperature=0.7,
             seed=3, stop=[" and", "."]),
        dict(messages=[{"role": "user", "content": "Once upon a time"}], max_tokens=40, temperature=0.0),
    ]
    together = batched(model, reqs)
    comma, short, word, colours, longer = together
    assert "," not in comma[0]
    assert short[2] == 5 and short[3] == "length"
    assert " " not in word[0] and word[3] == "stop" and word[2] < 30
    assert " and" not in colours[0] and "." not in colours[0] and colours[2] <= 12
    assert 5 < longer[2] <= 40
    assert together == single_stream(monkeypatch, model, reqs)


def test_one_failing_sequence_does_not_take_the_batch_down(monkeypatch):
    real_accept = SequenceState.accept

    def accept(self, token):  # a fault inside one sequence's step, as a bug or bad input would cause
        if b"<boom>" in self.job.stop:
            raise RuntimeError("injected failure")
        return real_accept(self, token)

    good = [dict(messages=ask(t), max_tokens=16, temperature=0.0) for t in TOPICS[:4]]
    bad = dict(messages=ask("money"), max_tokens=16, temperature=0.0, stop=["<boom>"])
    too_long = dict(messages=[{"role": "user", "content": "value " * 3000}], max_tokens=4, temperature=0.0)
    reference = single_stream(monkeypatch, SMOL, good)
    monkeypatch.setattr(SequenceState, "accept", accept)
    out = batched(SMOL, good[:2] + [bad, too_long] + good[2:])
    assert isinstance(out[2], Exception) and "injected failure" in str(out[2])
    assert isinstance(out[3], Exception)
    assert out[:2] + out[4:] == reference


def test_continuous_batching_reuses_freed_slots(monkeypatch):
    """More requests than slots, of very different lengths: finished sequences free their slot for waiting ones."""
    engine = embedded.get_engine("smollm2-135m-instruct")
    reqs = [dict(temperature=0.0, top_p=1.0, max_tokens=4 + 6 * (i % 4), seed=0, stop=None) for i in range(10)]
    jobs = [batching.build_job(engine.llm, ask(TOPICS[i]), True, **r) for i, r in enumerate(reqs)]
    small = BatchEngine(engine.llm, chat=True, config=BatchConfig(lanes=1, slots=3, slot_ctx=256), name="test")
    try:
        results = [f.result(timeout=600) for f in [small.submit(j) for j in jobs]]
        steps, moves, reused = small.lanes[0].steps, small.lanes[0].moves, small.lanes[0].reused_tokens
    finally:
        small.close()
    reference = [engine.generate_single(ask(TOPICS[i]), **r) for i, r in enumerate(reqs)]
    assert results == reference
    assert steps < sum(r.completion_tokens for r in results)  # decoded together, not one after another
    assert moves > 0  # a sequence was moved into a finished one's slot, and its answer did not change
    # every prompt after the first started from the cached chat-template prefix, and its answer did not change
    assert reused >= 9 * 10


def test_workers_shut_down_cleanly_at_exit(tmp_path):
    """An interpreter that used the batch engine exits without tracebacks or leftover threads blocking it."""
    script = textwrap.dedent(f"""
        import asyncio, litellm, valuelex_utils.llm.provider
        async def main():
            rs = await asyncio.gather(*[litellm.acompletion(model="{SMOL}", messages=[{{"role": "user",
                "content": "Hi {{}}".format(i)}}], max_tokens=4, temperature=0.0) for i in range(4)])
            print(len(rs))
        asyncio.run(main())
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "4"
    assert "Traceback" not in proc.stderr and "Exception ignored" not in proc.stderr


def test_sequence_state_replays_the_single_stream_stop_rules():
    """Pure bookkeeping: the first listed stop string wins, max_tokens counts tokens, a split UTF-8 character is
    completed before any check, an end-of-generation token is not counted."""
    pieces = {1: b"Hello", 2: b",", 3: b" world", 4: b"\xc3", 5: b"\xa9", 9: b""}
    state = lambda **kw: SequenceState(  # noqa: E731
        batching.Job([7, 8], [], kw.get("max_tokens", 10), kw.get("stop", []), None), bos=0,  # type: ignore[arg-type]
        is_eog=lambda t: t == 9, piece=pieces.__getitem__)
    s = state(stop=[b" world", b","])
    assert not s.accept(1) and s.accept(2)
    assert s.result == embedded.GenerationResult("Hello", 2, 2, "stop")
    s = state(max_tokens=2)
    assert not s.accept(1) and s.accept(3) and s.result.finish_reason == "length" and s.result.text == "Hello world"
    s = state(max_tokens=2)
    assert not s.accept(1) and not s.accept(4)  # half a character: the limit is not checked yet
    assert s.accept(5) and s.result.text == "Helloé" and s.result.completion_tokens == 3
    s = state()
    assert not s.accept(1) and s.accept(9) and s.result == embedded.GenerationResult("Hello", 2, 1, "stop")


def test_cpu_budget_gives_every_core_to_a_lone_lane_and_splits_them_otherwise():
    budget = batching.CpuBudget(2, watch_others=False)
    assert budget.threads(1, busy=True) == 2
    assert budget.threads(2, busy=True) == 1
    assert budget.threads(2, busy=False) == 2
    budget.contended = True  # other processes keep a core busy: no spinning thread pools
    assert budget.threads(1, busy=True) == 1


@pytest.mark.parametrize("model", [SMOL, GEMMA])
def test_a_prompt_asked_again_reuses_its_cached_prefix_without_changing_answers(monkeypatch, model):
    """Samples of one prompt (the elicitation pattern): later ones start from the cached KV of the whole prompt but
    its last token; a shorter prompt that is a prefix of the cached one is handled too."""
    long = ask("honesty")
    short = [{"role": "user", "content": "In one sentence"}]
    reqs = [dict(messages=long, max_tokens=16, temperature=0.9, seed=s) for s in range(4)]
    reqs += [dict(messages=short, max_tokens=8, temperature=0.0)]
    assert batched(model, reqs) == single_stream(monkeypatch, model, reqs)
