"""One `setup_notebook()` call at the top of every step notebook: paths, params, plotting, display, seeds, logging.

Plotly 6+ renders only its mimetype inside a kernel, which nbconvert drops from HTML; the `notebook` renderer inlines
plotly.js once per page, so the exported report shows every figure offline. Set in code here, not by environment.
"""
from __future__ import annotations

import logging
import os
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .params import Params, load_params
from .rundir import RunDir


@dataclass
class NotebookContext:
    params: Params
    rd: RunDir
    progress: bool

    @property
    def run_dir(self) -> str:
        return str(self.rd.root)


def setup_notebook(run_dir: str, params_file: str) -> NotebookContext:
    """Load and validate the params, claim the run dir, and set renderer, display options, seeds and log levels."""
    import pandas as pd
    import plotly.io as pio

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    pio.renderers.default = "notebook+plotly_mimetype"
    pio.templates.default = "plotly_white"
    pd.set_option("display.max_columns", 30)
    pd.set_option("display.width", 160)
    pd.set_option("display.max_colwidth", 120)
    pd.set_option("display.precision", 3)
    params = load_params(params_file)
    from .runner import claim_run_dir

    rd = claim_run_dir(Path(run_dir).resolve(), params, Path(params_file))
    random.seed(params.seed)
    np.random.seed(params.seed)
    for name in ("LiteLLM", "litellm", "httpx", "sentence_transformers", "numba"):
        logging.getLogger(name).setLevel(logging.WARNING)
    progress = os.environ.get("VALUELEX_PROGRESS", "1") != "0"
    return NotebookContext(params=params, rd=rd, progress=progress)
