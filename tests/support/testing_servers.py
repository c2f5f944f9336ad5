"""Small local OpenAI-compatible instrument servers, for tests and benchmarks only (never used by a study).

One aiohttp app plays every part, chosen by options:

- a **fixed-delay responder** (`delay=0.5`): answers every call after exactly that delay, the instrument of the
  concurrency benchmark (time for N calls at C in flight should be N x delay / C);
- a **jittery responder** (`delay=0.02, jitter=0.08`): small random delays, for crash tests that kill a run mid-call;
- a **fault injector** (`fault_rate=0.2`): answers a share of calls with 429, 500 or a stall longer than the client's
  timeout; at most `max_consecutive_faults` faults in a row for one request, so a client with that many retries always
  gets through;
- a **strict endpoint**: `require_key_env` (the name of a variable in the *server's* environment: the key never
  appears on a command line) answers 401 to any other key, `models` answers 404 to any other model, `hard_after=N`
  revokes the key after N answers (a hard failure in the middle of a run);
- a **rate-limited provider** (`rate_limit=4, rate_window=1.0`): answers at most that many calls in any window of that
  many seconds and 429 with `Retry-After` (whole seconds, and `retry-after-ms`) to the rest, as providers do.

Answers are deterministic per request: the same model, messages (or prompt) and decoding params always get the same
text, so two runs can be compared answer by answer; LLM-judge prompts get a verdict and extraction-judgment prompts a
JSON list (a deterministic judge for plumbing tests of the role models). `GET /stats` returns what the server saw and
injected, and how many requests it answered more than once (`answered_again`).

Run it as `python -m tests.support.testing_servers --delay 0.5` (from the repo root) (prints `PORT <n>` once listening), or from Python
with `start_server(...)`, which returns a handle with `api_base`, `stats()`, `kill()` and `stop()`.
"""
from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import random
import socket
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]

VALUE_WORDS = ("honesty", "curiosity", "fairness", "kindness", "responsibility", "respect", "empathy", "integrity",
               "helpfulness", "accuracy", "humility", "courage", "loyalty", "compassion", "transparency", "patience",
               "creativity", "safety", "freedom", "justice", "wisdom", "diligence", "trust", "gratitude")
FAULT_KINDS = ("429", "500", "timeout")
# HTTP 200 without an answer: content "" / null / absent, or no choices (not in the default mix: ask for them)
EMPTY_KINDS = ("empty", "null", "missing", "nochoices")


@dataclass
class ServerConfig:
    delay: float = 0.0
    jitter: float = 0.0
    fault_rate: float = 0.0
    faults: tuple[str, ...] = FAULT_KINDS
    max_consecutive_faults: int = 2
    stall: float = 30.0
    require_key_env: str | None = None
    models: tuple[str, ...] = ()
    hard_after: int | None = None
    seed: int = 0
    echo_key: bool = False  # error bodies repeat the credentials received (as careless providers do)
    rate_limit: int = 0  # calls answered in any `rate_window` seconds; 0: no limit
    rate_window: float = 1.0


@dataclass
class _State:
    requests: int = 0
    answered: int = 0
    in_flight: int = 0
    peak_in_flight: int = 0
    faults: Counter = field(default_factory=Counter)
    rejected: Counter = field(default_factory=Counter)
    consecutive: dict[str, int] = field(default_factory=dict)
    per_model: Counter = field(default_factory=Counter)
    asked: Counter = field(default_factory=Counter)  # answers per distinct request (digest of what was asked)
    admitted: list = field(default_factory=list)  # arrival times of calls let through the rate limit (monotonic)


def asked_digest(model: str, body: dict[str, Any]) -> bytes:
    """A hash of what a request asks (model, messages or prompt, decoding): equal for a request sent twice."""
    asked = {k: body.get(k) for k in ("messages", "prompt", "temperature", "top_p", "seed", "max_tokens")}
    return hashlib.sha256(json.dumps([model, asked], sort_keys=True, default=str).encode()).digest()


def _judge_columns(body: dict[str, Any]) -> list[str]:
    """The value columns an LLM-judge prompt lists (`- Name (dimension)...`), or [] for any other request."""
    messages = body.get("messages") or []
    system = next((m.get("content") or "" for m in messages if m.get("role") == "system"), "")
    if "Verdict:" not in system:
        return []
    return [line.split(" (", 1)[0].strip()[2:] for line in system.splitlines()
            if line.strip().startswith("- ") and " (" in line and ("(dimension" in line or "(subdimension" in line)]


def _filter_words(body: dict[str, Any]) -> list[str] | None:
    """The words of an extraction-judgment prompt (a JSON list after its last line break), or None."""
    messages = body.get("messages") or []
    last = (messages[-1].get("content") or "") if messages else ""
    if "value words" not in last or "\n[" not in last:
        return None
    try:
        words = json.loads(last.rsplit("\n", 1)[1])
    except ValueError:
        return None
    return [str(w) for w in words] if isinstance(words, list) else None


def answer_text(model: str, body: dict[str, Any]) -> str:
    """The deterministic answer to a request, picked by a hash of what was asked: for an LLM-judge prompt a verdict
    (one in eight unparseable, so that retries happen), for an extraction-judgment prompt the JSON list of its words
    that are in `VALUE_WORDS`, else a few value words in a sentence."""
    digest = asked_digest(model, body)
    columns = _judge_columns(body)
    if columns:
        if digest[0] % 8 == 0:
            return "Reasoning: hard to tell. Verdict: undecided."
        scores = {c: digest[1 + i % 30] % 7 for i, c in enumerate(columns)}
        return f"Reasoning: a deterministic instrument.\nVerdict: {json.dumps({'scores': scores})}"
    words = _filter_words(body)
    if words is not None:
        return json.dumps([w for w in words if w in VALUE_WORDS])
    words = [VALUE_WORDS[b % len(VALUE_WORDS)] for b in digest[:4]]
    return f"I value {words[0]}, {words[1]} and {words[2]}. Above all: {words[3]}."


def request_id(body: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _credentials(request: Any) -> str:
    """The credentials a request carried: its Authorization header, and a Basic one decoded (user:password)."""
    import base64

    auth = request.headers.get("Authorization", "")
    if auth.startswith("Basic "):
        try:
            auth += " (" + base64.b64decode(auth[6:]).decode("utf-8", "replace") + ")"
        except ValueError:
            pass
    return auth or "(none)"


def _error(status: int, message: str, kind: str, code: str | None = None) -> Any:
    from aiohttp import web

    return web.json_response({"error": {"message": message, "type": kind, "param": None, "code": code}}, status=status)


def make_app(cfg: ServerConfig) -> Any:
    from aiohttp import web

    state = _State()
    rng = random.Random(cfg.seed)
    required_key = os.environ.get(cfg.require_key_env) if cfg.require_key_env else None
    if cfg.require_key_env and not required_key:
        raise SystemExit(f"testing server: {cfg.require_key_env} is not set in the server's environment")

    async def completions(request: web.Request) -> web.StreamResponse:
        state.requests += 1
        state.in_flight += 1
        state.peak_in_flight = max(state.peak_in_flight, state.in_flight)
        try:
            return await _complete(request)
        finally:
            state.in_flight -= 1

    async def _complete(request: web.Request) -> web.StreamResponse:
        echo = f" (received: {_credentials(request)})" if cfg.echo_key else ""
        try:
            body = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            state.rejected["bad_json"] += 1
            return _error(400, "request body is not JSON", "invalid_request_error")
        model = str(body.get("model", ""))
        if required_key is not None:
            auth = request.headers.get("Authorization", "")
            if auth != f"Bearer {required_key}":
                state.rejected["bad_key"] += 1
                return _error(401, f"Incorrect API key provided.{echo}", "invalid_request_error", "invalid_api_key")
            if cfg.hard_after is not None and state.answered >= cfg.hard_after:
                state.rejected["revoked"] += 1
                return _error(401, "API key revoked.", "invalid_request_error", "invalid_api_key")
        if cfg.models and model not in cfg.models:
            state.rejected["unknown_model"] += 1
            return _error(404, f"The model `{model}` does not exist.", "invalid_request_error", "model_not_found")
        rid = request_id(body)
        if cfg.rate_limit > 0:
            now = time.monotonic()
            recent = [t for t in state.admitted if t > now - cfg.rate_window]
            if len(recent) >= cfg.rate_limit:
                wait = recent[0] + cfg.rate_window - now
                state.faults["429_limit"] += 1
                resp = _error(429, "Rate limit reached for requests, retry later.", "rate_limit_error",
                              "rate_limit_exceeded")
                resp.headers["Retry-After"] = str(max(1, int(wait + 0.999)))
                resp.headers["retry-after-ms"] = str(max(1, int(wait * 1000)))
                return resp
            state.admitted = recent + [now]
        if cfg.fault_rate > 0 and state.consecutive.get(rid, 0) < cfg.max_consecutive_faults \
                and rng.random() < cfg.fault_rate:
            kind = rng.choice(cfg.faults)
            state.faults[kind] += 1
            state.consecutive[rid] = state.consecutive.get(rid, 0) + 1
            if kind == "429":
                await asyncio.sleep(cfg.delay)
                return _error(429, "Rate limit reached, retry later.", "rate_limit_error", "rate_limit_exceeded")
            if kind == "500":
                await asyncio.sleep(cfg.delay)
                return _error(500, f"The server had an error while processing your request.{echo}", "server_error")
            if kind in EMPTY_KINDS:
                await asyncio.sleep(cfg.delay)
                return web.json_response(_empty_answer(kind, str(body.get("model", "")), rid))
            await asyncio.sleep(cfg.stall)  # a stall: the client's timeout fires first
            return _error(504, "stalled", "server_error")
        state.consecutive.pop(rid, None)
        wait = cfg.delay + (rng.random() * cfg.jitter if cfg.jitter else 0.0)
        if wait > 0:
            await asyncio.sleep(wait)
        text = answer_text(model, body)
        state.asked[asked_digest(model, body).hex()[:16]] += 1
        prompt_text = json.dumps(body.get("messages") or body.get("prompt") or "")
        usage = {"prompt_tokens": len(prompt_text.split()), "completion_tokens": len(text.split())}
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        state.answered += 1
        state.per_model[model] += 1
        created = int(time.time())
        if request.path.endswith("/chat/completions"):
            choice = {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": text}}
            obj = "chat.completion"
        else:
            choice = {"index": 0, "finish_reason": "stop", "text": text, "logprobs": None}
            obj = "text_completion"
        return web.json_response({"id": f"cmpl-{rid}", "object": obj, "created": created, "model": model,
                                  "choices": [choice], "usage": usage})

    async def models(_request: web.Request) -> web.StreamResponse:
        names = cfg.models or ("fake",)
        return web.json_response({"object": "list", "data": [{"id": m, "object": "model"} for m in names]})

    async def stats(_request: web.Request) -> web.StreamResponse:
        return web.json_response({"requests": state.requests, "answered": state.answered,
                                  "peak_in_flight": state.peak_in_flight, "faults": dict(state.faults),
                                  "faults_total": sum(state.faults.values()), "rejected": dict(state.rejected),
                                  "per_model": dict(state.per_model),
                                  "distinct_answered": len(state.asked),
                                  "answered_again": sum(n - 1 for n in state.asked.values())})

    app = web.Application(client_max_size=16 * 1024 * 1024)
    for prefix in ("", "/v1"):
        app.router.add_post(f"{prefix}/chat/completions", completions)
        app.router.add_post(f"{prefix}/completions", completions)
        app.router.add_get(f"{prefix}/models", models)
    app.router.add_get("/stats", stats)
    return app


def _empty_answer(kind: str, model: str, rid: str) -> dict[str, Any]:
    """An HTTP 200 body without an answer: content "" (`empty`), null (`null`), absent (`missing`), or no choices."""
    message: dict[str, Any] = {"role": "assistant"}
    if kind != "missing":
        message["content"] = "" if kind == "empty" else None
    choices = [] if kind == "nochoices" else [{"index": 0, "finish_reason": "stop", "message": message}]
    return {"id": f"cmpl-{rid}", "object": "chat.completion", "created": int(time.time()), "model": model,
            "choices": choices, "usage": {"prompt_tokens": 1, "completion_tokens": 0, "total_tokens": 1}}


async def serve(cfg: ServerConfig, port: int = 0, host: str = "127.0.0.1") -> None:
    from aiohttp import web

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(1024)
    runner = web.AppRunner(make_app(cfg), access_log=None, handle_signals=True)
    await runner.setup()
    await web.SockSite(runner, sock, backlog=1024).start()
    print(f"PORT {sock.getsockname()[1]}", flush=True)
    while True:
        await asyncio.sleep(3600)


def _parse(argv: list[str] | None) -> tuple[ServerConfig, int]:
    p = argparse.ArgumentParser(prog="python -m tests.support.testing_servers")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--delay", type=float, default=0.0)
    p.add_argument("--jitter", type=float, default=0.0)
    p.add_argument("--fault-rate", type=float, default=0.0)
    p.add_argument("--faults", default=",".join(FAULT_KINDS))
    p.add_argument("--max-consecutive-faults", type=int, default=2)
    p.add_argument("--stall", type=float, default=30.0)
    p.add_argument("--require-key-env", default=None)
    p.add_argument("--models", default="")
    p.add_argument("--hard-after", type=int, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--echo-key", action="store_true", help="error bodies repeat the credentials received")
    p.add_argument("--rate-limit", type=int, default=0)
    p.add_argument("--rate-window", type=float, default=1.0)
    a = p.parse_args(argv)
    cfg = ServerConfig(delay=a.delay, jitter=a.jitter, fault_rate=a.fault_rate,
                       faults=tuple(f for f in a.faults.split(",") if f),
                       max_consecutive_faults=a.max_consecutive_faults, stall=a.stall,
                       require_key_env=a.require_key_env, models=tuple(m for m in a.models.split(",") if m),
                       hard_after=a.hard_after, seed=a.seed, echo_key=a.echo_key,
                       rate_limit=a.rate_limit, rate_window=a.rate_window)
    return cfg, a.port


def main(argv: list[str] | None = None) -> None:
    cfg, port = _parse(argv)
    try:
        import uvloop  # noqa: F401 - faster loop when present

        uvloop.install()
    except ImportError:
        pass
    try:
        asyncio.run(serve(cfg, port))
    except KeyboardInterrupt:
        pass


# -- the handle tests and benchmarks use ---------------------------------------------------------------------------
class ServerHandle:
    """A testing server in a child process."""

    def __init__(self, proc: subprocess.Popen, port: int) -> None:
        self.proc = proc
        self.port = port

    @property
    def api_base(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def stats(self) -> dict[str, Any]:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/stats", timeout=10) as r:
            return json.loads(r.read())

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def __enter__(self) -> "ServerHandle":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def start_server(*, delay: float = 0.0, jitter: float = 0.0, fault_rate: float = 0.0,
                 faults: tuple[str, ...] = FAULT_KINDS, max_consecutive_faults: int = 2, stall: float = 30.0,
                 require_key_env: str | None = None, models: tuple[str, ...] = (), hard_after: int | None = None,
                 seed: int = 0, port: int = 0, env: dict[str, str] | None = None,
                 timeout: float = 30.0, echo_key: bool = False, rate_limit: int = 0,
                 rate_window: float = 1.0) -> ServerHandle:
    """Start a testing server in a child process and wait until it listens."""
    cmd = [sys.executable, "-m", "tests.support.testing_servers", "--port", str(port), "--delay", str(delay),
           "--jitter", str(jitter), "--fault-rate", str(fault_rate), "--faults", ",".join(faults),
           "--max-consecutive-faults", str(max_consecutive_faults), "--stall", str(stall), "--seed", str(seed)]
    if require_key_env:
        cmd += ["--require-key-env", require_key_env]
    if models:
        cmd += ["--models", ",".join(models)]
    if hard_after is not None:
        cmd += ["--hard-after", str(hard_after)]
    if echo_key:
        cmd += ["--echo-key"]
    if rate_limit:
        cmd += ["--rate-limit", str(rate_limit), "--rate-window", str(rate_window)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            env={**os.environ, **(env or {})}, cwd=REPO_ROOT)  # `-m tests...` from the root
    deadline = time.time() + timeout
    line = ""
    while time.time() < deadline:
        line = proc.stdout.readline() if proc.stdout else ""
        if line.startswith("PORT "):
            return ServerHandle(proc, int(line.split()[1]))
        if proc.poll() is not None:
            break
    proc.kill()
    raise RuntimeError(f"testing server did not start (exit {proc.poll()}, said {line!r})")


if __name__ == "__main__":
    main()
