"""Provider rate limits: client-side pacing (rpm/tpm) and Retry-After, against a real local HTTP server that answers
429 with Retry-After past its limit (tests.support.testing_servers). No timed assertion depends on the machine's
speed: the only time bounds are lower bounds the server's own limit imposes (load can only make a run slower)."""
from __future__ import annotations

import time
from pathlib import Path

import pytest

from valuelex_utils.llm import ratelimit
from valuelex_utils.params import parse_params
from tests.support.testing_servers import start_server


def test_requests_are_spaced_at_the_rate_after_a_burst() -> None:
    one_a_second = ratelimit.Limiter(rpm=60)
    assert [one_a_second.slot(1, now=0.0) for _ in range(4)] == [0.0, 1.0, 2.0, 3.0]
    ten_a_second = ratelimit.Limiter(rpm=600)  # a burst of one second's worth, then 0.1 s apart
    slots = [ten_a_second.slot(1, now=0.0) for _ in range(12)]
    assert slots[:10] == [0.0] * 10 and slots[10:] == pytest.approx([0.1, 0.2])


def test_tokens_a_minute_pace_by_cost_and_are_corrected_by_usage() -> None:
    lim = ratelimit.Limiter(tpm=600)  # 10 tokens/s, bursts of 100 tokens
    assert lim.slot(100, now=0.0) == 0.0
    assert lim.slot(50, now=0.0) == pytest.approx(5.0)  # the burst is spent: 50 more tokens take 5 s
    lim.settle(estimated=50, actual=10)  # the call used 10: 4 s refunded
    assert lim.slot(10, now=0.0) == pytest.approx(2.0)
    assert ratelimit.Limiter(tpm=60).slot(500, now=0.0) == 0.0  # larger than any burst: goes when the bucket is full


def test_a_retry_after_hold_delays_every_call_of_the_endpoint() -> None:
    lim = ratelimit.Limiter()
    lim.hold(3.0, now=10.0)
    assert lim.slot(1, now=10.5) == 13.0 and lim.slot(1, now=14.0) == 14.0


class _Err(Exception):
    def __init__(self, headers: dict[str, str]) -> None:
        super().__init__("429")
        self.status_code = 429
        self.headers = headers


def test_retry_after_is_read_in_its_forms() -> None:
    assert ratelimit.retry_after_seconds(_Err({"Retry-After": "7"})) == 7.0
    assert ratelimit.retry_after_seconds(_Err({"retry-after-ms": "250", "retry-after": "1"})) == 0.25
    date = "Wed, 21 Oct 2015 07:28:00 GMT"
    assert ratelimit.retry_after_seconds(_Err({"Retry-After": date}), now=1445412470.0) == pytest.approx(10.0)
    assert ratelimit.retry_after_seconds(_Err({})) is None


def test_rate_limits_reach_the_request_deployment() -> None:
    from valuelex_utils.elicitation import build_requests
    from valuelex_utils.llm.roles import deployment_for

    params = parse_params({"respondents": [{"model": "openai/x", "training": "aligned", "api_base": "http://h/v1",
                                            "rpm": 120, "tpm": 5000}],
                           "endpoints": {"openai/judge": {"api_base": "http://j/v1", "rpm": 30}},
                           "elicitation": {"prompts": [1], "samples": 1}})
    req = build_requests(params)[0]
    assert req.deployment["rpm"] == 120 and req.deployment["tpm"] == 5000
    assert deployment_for(params, "openai/judge")["rpm"] == 30
    assert "rpm" not in deployment_for(parse_params({"respondents": [{"model": "openai/y", "training": "aligned"}]}),
                                       "openai/y")


def _requests(n: int, api_base: str, **limits: float) -> list:
    from valuelex_utils.llm import LLMRequest

    return [LLMRequest("openai/limited", [{"role": "user", "content": f"List your values ({i})."}],
                       {"temperature": 0.7, "max_tokens": 16, "seed": i}, meta={"i": i},
                       deployment={"api_base": api_base, **limits}) for i in range(n)]


@pytest.fixture()
def fresh_limiters(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("OPENAI_API_KEY", "none")
    ratelimit.reset()
    yield
    ratelimit.reset()


def test_a_429_with_retry_after_slows_the_run_down_instead_of_burning_retries(tmp_path: Path, fresh_limiters) -> None:
    """The server answers 3 calls a second and 429 + Retry-After to the rest; 8 in flight, one retry a call. Every
    call is answered and none spends a retry: the run waits as long as the server asks, no more."""
    from valuelex_utils.llm import BatchRunner
    from valuelex_utils.llm.store import ResponseStore

    n = 15
    with start_server(rate_limit=3, rate_window=1.0) as server:
        runner = BatchRunner(ResponseStore(tmp_path / "r.jsonl"), concurrency=8, retries=1, timeout=30, processes=1)
        started = time.monotonic()
        records = runner.run(_requests(n, server.api_base), progress=False)
        wall = time.monotonic() - started
        stats = server.stats()
    tally = runner.tally.of("openai/limited")
    assert all(r.get("response") for r in records) and tally.calls == n and tally.errors == 0
    assert stats["faults"].get("429_limit", 0) > 0, "the server's limit was never reached: the test shows nothing"
    assert tally.rate_limited == stats["faults"]["429_limit"]  # every 429 was waited out ...
    assert tally.retries == 0  # ... without spending the one retry each call has
    assert stats["answered"] == n
    assert wall >= (n / 3) - 1.5  # the server lets 3 through a second: the run slowed down to its pace


def test_client_side_rpm_keeps_under_the_provider_limit(tmp_path: Path, fresh_limiters) -> None:
    """rpm 120 (2 a second) against a server that allows 4 a second: paced on the client, no call is refused."""
    from valuelex_utils.llm import BatchRunner
    from valuelex_utils.llm.store import ResponseStore

    n = 8
    with start_server(rate_limit=4, rate_window=1.0) as server:
        runner = BatchRunner(ResponseStore(tmp_path / "r.jsonl"), concurrency=8, retries=0, timeout=30)
        started = time.monotonic()
        records = runner.run(_requests(n, server.api_base, rpm=120), progress=False)
        wall = time.monotonic() - started
        stats = server.stats()
    assert all(r.get("response") for r in records)
    assert stats["faults"].get("429_limit", 0) == 0 and stats["answered"] == n
    assert wall >= (n - 2) / 2  # 2 a second after a burst of 2
