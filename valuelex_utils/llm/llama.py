"""The one place llama_cpp is imported from. ggml (`GGML_CPU_TILED_MM`) and libgomp (`OMP_WAIT_POLICY`,
`GOMP_SPINCOUNT`) read their settings once, when llama_cpp loads them, so `env.configure_llama_env` runs first;
importing this module is what loads llama.cpp (about a second), so light modules import it inside functions."""
from __future__ import annotations

from ..env import configure_llama_env

configure_llama_env()

import llama_cpp  # noqa: E402 - after the settings above
from llama_cpp import Llama  # noqa: E402

__all__ = ["Llama", "llama_cpp"]
