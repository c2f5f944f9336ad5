"""One `setup_notebook()` call at the top of every step notebook: paths, params, plotting, display, seeds, logging.

Exploring is safe: a notebook run outside `valuelex run` (JupyterLab, nbval) writes into `RUN_DIR/scratch/`, a copy
of the run's files refreshed from the run whenever the run's copy is newer, so a finished run's products are never
rewritten by a look at them. `valuelex run` sets VALUELEX_WRITE_PRODUCTS=1 (the kernel inherits it); by hand, pass
`setup_notebook(..., write_products=True)` to write into the run dir itself.

Plotly 6+ renders only its mimetype inside a kernel, which nbconvert drops from HTML; the `notebook` renderer inlines
plotly.js once per page, so the exported report shows every figure offline. Set in code here, not by environment.
"""
from __future__ import annotations

import logging
import os
import random
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .env import configure_env
from .params import Params, load_params
from .rundir import RunDir


#: what a scratch copy leaves out: the run's views of itself (rebuilt from the products) and lock files
SCRATCH_SKIP = (".html", ".lock", ".tmp")


@dataclass
class NotebookContext:
    params: Params
    rd: RunDir  # where this notebook reads and writes: the run dir, or its scratch/ when exploring
    progress: bool
    run: RunDir | None = None  # the run dir itself when `rd` is its scratch copy

    @property
    def run_dir(self) -> str:
        return str(self.rd.root)


def scratch_copy(rd: RunDir) -> RunDir:
    """`RUN_DIR/scratch/`, holding a copy of every file of the run that it lacks or that the run has newer (a rerun
    of the pipeline wins over an older exploration; an exploration's own newer products are kept)."""
    scratch = rd.root / "scratch"
    scratch.mkdir(exist_ok=True)
    for src in rd.root.iterdir():
        if not src.is_file() or src.name.endswith(SCRATCH_SKIP):
            continue
        dst = scratch / src.name
        if not dst.exists() or src.stat().st_mtime > dst.stat().st_mtime:
            shutil.copy2(src, dst)
    return RunDir(scratch)


def writes_products(explicit: bool | None = None) -> bool:
    """True when this notebook may rewrite the run's products: told so, or run by `valuelex run`."""
    if explicit is not None:
        return explicit
    return os.environ.get("VALUELEX_WRITE_PRODUCTS") == "1"


def setup_notebook(run_dir: str, params_file: str, write_products: bool | None = None) -> NotebookContext:
    """Load and validate the params, claim the run dir, and set renderer, display options, seeds and log levels.

    Outside `valuelex run` (and without `write_products=True`), `ctx.rd` / `ctx.run_dir` is the run's scratch copy,
    and a line says so."""
    import pandas as pd
    import plotly.io as pio

    configure_env()
    pio.renderers.default = "notebook+plotly_mimetype"
    pio.templates.default = "plotly_white"
    pd.set_option("display.max_columns", 30)
    pd.set_option("display.width", 160)
    pd.set_option("display.max_colwidth", 120)
    pd.set_option("display.precision", 3)
    from .tables import install_number_format

    install_number_format()  # 3 significant digits, integers as integers, in every table a notebook shows
    params = load_params(params_file)
    from .runner import claim_run_dir

    rd = claim_run_dir(Path(run_dir).resolve(), params, Path(params_file))
    run = None
    if not writes_products(write_products):
        run, rd = rd, scratch_copy(rd)
        print(f"Exploring: this notebook writes into {rd.root}; the run's own files are left as they are "
              "(`valuelex run`, or setup_notebook(..., write_products=True), writes into the run dir).")
    random.seed(params.seed)
    np.random.seed(params.seed)
    for name in ("LiteLLM", "litellm", "httpx", "sentence_transformers", "numba"):
        logging.getLogger(name).setLevel(logging.WARNING)
    progress = os.environ.get("VALUELEX_PROGRESS", "1") != "0"
    return NotebookContext(params=params, rd=rd, progress=progress, run=run)
