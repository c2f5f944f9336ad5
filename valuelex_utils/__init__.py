"""ValueLex: reconstruct the value system of LLMs from scratch and measure models against it.

Implements Biedma et al., "Beyond Human Norms: Unveiling Unique Values of Large Language Models through
Interdisciplinary Approaches". One module per step of the paper; the notebooks in `notebooks/` are thin views on them.
"""
from __future__ import annotations

from .env import configure_env

# Here, once, because this runs before any submodule: litellm, libgomp (llama_cpp) and numba read their settings when
# they are imported, and a library user (a notebook, a test, `import valuelex_utils.llm`) reaches them without passing
# through an entry point. The entry points call it again, explicitly.
configure_env()

__version__ = "0.1.0"
