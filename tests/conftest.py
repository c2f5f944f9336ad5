"""Shared fixtures: a real llama-cpp-python OpenAI-compatible server on the embedded GGUF (the remote path for real),
and nbval output comparison settings."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
# notebooks run in batch here (nbval, `valuelex run` in subprocesses): explorers show a static first view instead of
# widgets, whose Output-widget traffic has hung batch runs with the kernel idle (valuelex_utils/widgets.py)
os.environ["VALUELEX_HEADLESS"] = "1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_llama_server(model_path: Path, alias: str, port: int | None = None, n_threads: int = 2, n_ctx: int = 1024):
    """Start `python -m llama_cpp.server` on localhost; returns (process, api_base)."""
    port = port or free_port()
    cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(model_path), "--model_alias", alias,
           "--host", "127.0.0.1", "--port", str(port), "--n_ctx", str(n_ctx), "--n_threads", str(n_threads)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"llama server exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return proc, f"http://127.0.0.1:{port}/v1"
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("llama server did not start in 60 s")


@pytest.fixture(scope="session")
def llama_server():
    from valuelex_utils.llm.embedded import EMBEDDED

    proc, api_base = start_llama_server(EMBEDDED["smollm2-135m-instruct"].locate(), "smollm2")
    yield api_base
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
