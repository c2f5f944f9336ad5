"""ValueLex: reconstruct the value system of LLMs from scratch and measure models against it.

Implements Biedma et al., "Beyond Human Norms: Unveiling Unique Values of Large Language Models through
Interdisciplinary Approaches". One module per step of the paper; the notebooks in `notebooks/` are thin views on them.
"""
from __future__ import annotations

import os

# LiteLLM fetches a cost map over the network at import unless told not to; set it before anything imports litellm.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

__version__ = "0.1.0"
