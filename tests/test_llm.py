"""The one LLM call path: embedded models through LiteLLM, a real OpenAI-compatible server, and the batch API."""
import asyncio

import litellm
import pytest

import valuelex_utils.llm as vllm
from valuelex_utils.errors import UserError
from valuelex_utils.llm import BatchRunner, LLMRequest, ProviderError, response_text
from valuelex_utils.llm.store import ResponseStore

ASK = [{"role": "user", "content": "List three words that describe your values."}]


@pytest.mark.parametrize("model", ["local/smollm2-135m-instruct", "local/gemma-3-270m"])
def test_embedded_model_generates_through_litellm(model):
    r = litellm.completion(model=model, messages=ASK, max_tokens=8, temperature=0.0, seed=1)
    assert r.choices[0].message.content.strip()
    assert 0 < r.usage.completion_tokens <= 8


def test_seeded_request_is_reproducible_and_seed_matters():
    kw = dict(model="local/smollm2-135m-instruct", messages=ASK, max_tokens=16, temperature=1.0)
    a = litellm.completion(seed=3, **kw).choices[0].message.content
    b = litellm.completion(seed=3, **kw).choices[0].message.content
    others = {litellm.completion(seed=s, **kw).choices[0].message.content for s in (4, 5, 6)}
    assert a == b
    assert len(others | {a}) > 1


def test_stop_and_max_tokens_are_honoured():
    r = litellm.completion(model="local/gemma-3-270m", messages=[{"role": "user", "content": "1, 2, 3, 4,"}],
                           max_tokens=30, temperature=0.0, stop=[","])
    assert "," not in r.choices[0].message.content
    r = litellm.completion(model="local/gemma-3-270m", messages=[{"role": "user", "content": "Once upon a time"}],
                           max_tokens=5, temperature=0.0)
    assert r.usage.completion_tokens <= 5


def test_unknown_embedded_model_is_a_clear_error():
    with pytest.raises(Exception) as err:
        litellm.completion(model="local/nope", messages=ASK, max_tokens=1)
    assert "local/nope" in str(err.value)


def test_remote_path_through_a_real_openai_compatible_server(llama_server):
    r = litellm.completion(model="openai/smollm2", api_base=llama_server, api_key="none", messages=ASK,
                           max_tokens=8, temperature=0.0)
    assert r.choices[0].message.content.strip()
    assert r.usage.completion_tokens > 0


def test_batch_api_stores_then_serves_from_cache(tmp_path, llama_server):
    store = ResponseStore(tmp_path / "responses.jsonl")
    reqs = [LLMRequest("openai/smollm2", ASK, {"max_tokens": 6, "temperature": 0.8, "seed": s}, sample=s,
                       deployment={"api_base": llama_server}) for s in range(3)]
    runner = BatchRunner(store, concurrency=2)
    vllm_env = {"OPENAI_API_KEY": "none"}
    with pytest.MonkeyPatch.context() as mp:
        for k, v in vllm_env.items():
            mp.setenv(k, v)
        first = runner.run(reqs, progress=False)
        assert runner.tally.of("openai/smollm2").calls == 3
        again = BatchRunner(ResponseStore(tmp_path / "responses.jsonl"), concurrency=2)
        second = again.run(reqs, progress=False)
    assert again.tally.of("openai/smollm2").cached == 3 and again.tally.of("openai/smollm2").calls == 0
    assert [response_text(r) for r in first] == [response_text(r) for r in second]
    assert len((tmp_path / "responses.jsonl").read_text().splitlines()) == 3


def test_hard_failure_stops_with_a_line_naming_the_model(tmp_path):
    store = ResponseStore(tmp_path / "responses.jsonl")
    runner = BatchRunner(store, retries=3, backoff_base=0.01)
    with pytest.raises(ProviderError) as err:
        runner.run([LLMRequest("local/no-such-model", ASK, {"max_tokens": 2})], progress=False)
    assert "local/no-such-model" in str(err.value) and "\n" not in str(err.value)
    assert isinstance(err.value, UserError)


def test_transient_errors_are_retried(tmp_path, monkeypatch):
    calls = {"n": 0}
    real = litellm.acompletion

    async def flaky(**kwargs):
        calls["n"] += 1
        if calls["n"] < 3:
            raise litellm.RateLimitError("slow down", llm_provider="openai", model="m")
        return await real(mock_response="ok", **kwargs)

    monkeypatch.setattr(vllm.litellm, "acompletion", flaky)
    runner = BatchRunner(ResponseStore(tmp_path / "r.jsonl"), retries=4, backoff_base=0.01)
    rec = asyncio.run(runner.arun([LLMRequest("openai/x", ASK, {})], progress=False))[0]
    assert response_text(rec) == "ok"
    assert runner.tally.of("openai/x").retries == 2


def _ramp_decisions(monkeypatch, tmp_path, model: str, n: int, concurrency: int, gap: float) -> list[dict]:
    """What the launch ramp decided for each call that asked it, in the order they asked: whether the call was held
    for the schedule and the launch time it was given. Decisions, not wall-clock times: the same on a busy machine
    (a late wake-up changes when a call starts, never what the ramp decided)."""
    from valuelex_utils.llm import calls

    log: list[dict] = []

    class Recording(calls._Ramp):
        def claim(self, now: float) -> float | None:
            start = super().claim(now)
            log.append({"held": start is not None, "start": start})
            return start

    async def answer(**kwargs):
        return await litellm.acompletion(mock_response="ok", messages=kwargs["messages"], model="openai/m")

    monkeypatch.setattr(calls, "_Ramp", Recording)
    runner = BatchRunner(ResponseStore(tmp_path / f"{model.replace('/', '_')}.jsonl"), concurrency=concurrency,
                         ramp_gap=gap, processes=1)
    if model.startswith("local/"):
        monkeypatch.setattr(runner, "_call", lambda req: answer(messages=req.messages))
    else:
        monkeypatch.setattr(calls.litellm, "acompletion", _mock_acompletion(litellm.acompletion))
    reqs = [LLMRequest(model, [{"role": "user", "content": f"q{i}"}], {}) for i in range(n)]
    asyncio.run(runner.arun(reqs, progress=False))
    return log


def _mock_acompletion(real):
    async def mocked(**kwargs):
        return await real(mock_response="ok", **{k: v for k, v in kwargs.items() if k != "model"}, model="openai/m")
    return mocked


def test_first_wave_is_paced_and_later_calls_are_not(tmp_path, monkeypatch):
    log = _ramp_decisions(monkeypatch, tmp_path, "openai/m", n=8, concurrency=4, gap=0.05)
    assert len(log) == 8  # every remote call asks the ramp
    held = [d for d in log if d["held"]]
    assert len(held) == 4 and all(d["held"] for d in log[:4])  # the first wave of `concurrency` calls, only
    starts = [d["start"] for d in held]
    # launches follow a schedule at least `gap` apart (a late wake-up moves the schedule later, never closer)
    assert all(b - a >= 0.05 - 1e-9 for a, b in zip(starts, starts[1:])), starts


def test_embedded_models_are_not_paced(tmp_path, monkeypatch):
    log = _ramp_decisions(monkeypatch, tmp_path, "local/smollm2-135m-instruct", n=4, concurrency=4, gap=0.05)
    assert log == []  # the embedded engine batches what arrives together: its calls never ask the ramp


def test_no_pacing_with_a_zero_gap(tmp_path, monkeypatch):
    log = _ramp_decisions(monkeypatch, tmp_path, "openai/m", n=4, concurrency=4, gap=0.0)
    assert len(log) == 4 and not any(d["held"] for d in log)  # gap 0: the ramp holds nobody
