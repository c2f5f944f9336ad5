"""One entry point per step notebook, all of one shape: `run_<step>(params, run_dir, progress=False) -> <Step>Step`.

Each function does everything its step WRITES into the run dir (every product, in the order the notebook wrote them
before this module existed) and returns a small dataclass holding what the notebook then shows. The notebooks call
these in their main cell and keep only narrative, tables and figures; `STEPS` maps a notebook's stem to its function,
so a script (or the CLI) can run a step without a notebook through `run_step`.

`params` is the validated `Params`; `run_dir` the folder the step reads and writes (a notebook passes `ctx.run_dir`,
which is the run's `scratch/` copy when exploring). Claiming the run dir (`runner.claim_run_dir`) and seeding stay
with the caller (`notebook.setup_notebook` does both), as before. `progress` shows tqdm bars where the step has
them (01, 05: calls; 04: naming calls; 06, 07: one tick per value system); the others take it for the common shape.

Steps 01 and 05 are coroutines, as `run_elicitation` / `run_projective` are: a notebook's kernel already runs an
event loop, where `asyncio.run` would fail, so notebooks `await` them; `run_step` runs them with `asyncio.run` for a
script.
"""
from __future__ import annotations

import asyncio
import inspect
import os
from dataclasses import dataclass
from typing import Any, Callable

import pandas as pd

from . import comparison, elicitation, embeddings, evaluation, factors, lexicon, profiles, projective, taxonomy
from .errors import UserError
from .extraction import extract_descriptors
from .taxonomy.naming import namer_from_params
from .params import Params
from .rundir import RunDir

RunDirLike = str | os.PathLike[str]


@dataclass
class ElicitStep:
    """Step 01: the answers (one row per respondent, prompt and sample) and the call tally."""

    answers: pd.DataFrame
    tally: Any


@dataclass
class FactorsStep:
    """Step 03: the word matrix of step 02 and the factor fit."""

    matrix: pd.DataFrame
    result: factors.FactorResult


LexiconStep = lexicon.LexiconStep  # step 02's result: descriptors, lexicon, matrix, counts (defined with its code)


@dataclass
class TaxonomyStep:
    """Step 04: the taxonomy built from step 03's factors (clusters, names, YAML, 2-D layout)."""

    result: taxonomy.TaxonomyResult


@dataclass
class ProjectiveStep:
    """Step 05: the completions (one row per respondent, stem and sample) and the call tally."""

    completions: pd.DataFrame
    tally: Any


@dataclass
class ScoreStep:
    """Step 06: which systems were scored and why (`choice.notes`), the scores per system, and the value profiles."""

    choice: evaluation.SystemChoice
    runs: dict[str, evaluation.ScoredRun]
    profiles: pd.DataFrame


@dataclass
class CompareStep:
    """Step 07: the systems scored (step 06's and the human ones), each system's leaves, and the comparison table."""

    choice: evaluation.SystemChoice
    runs: dict[str, evaluation.ScoredRun]
    leaves: dict[str, list[str]]
    table: pd.DataFrame


async def run_elicit(params: Params, run_dir: RunDirLike, progress: bool = False) -> ElicitStep:
    """01: ask every respondent every prompt (cached answers reused); writes responses.jsonl, elicitation.parquet."""
    answers, tally = await elicitation.run_elicitation(params, str(run_dir), progress=progress)
    return ElicitStep(answers, tally)


def run_lexicon(params: Params, run_dir: RunDirLike, progress: bool = False) -> LexiconStep:
    """02: descriptors, lexicon and matrix from step 01's answers (with the LLM judgment when configured); writes
    descriptors.parquet, lexicon.csv, matrix.csv."""
    return lexicon.run_lexicon(params, str(run_dir), extract_descriptors)


def run_factors(params: Params, run_dir: RunDirLike, progress: bool = False) -> FactorsStep:
    """03: fit the factor model on step 02's matrix with `params.factors`; writes factors.json, loadings.csv, factor
    scores and the scree plot."""
    rd = RunDir.at(run_dir)
    matrix = factors.load_matrix(rd.require(rd.matrix, "02"))
    result = factors.fit_factors(matrix, **params.factors.fit_kwargs(params.seed))
    factors.write_factor_outputs(result, str(rd.root))
    return FactorsStep(matrix, result)


def run_taxonomy(params: Params, run_dir: RunDirLike, progress: bool = False) -> TaxonomyStep:
    """04: split step 03's factors into subclusters by meaning and name them (`params.taxonomy.namer`, else medoid
    words); writes taxonomy.yaml and clusters.csv."""
    rd = RunDir.at(run_dir)
    tp = params.taxonomy
    assignment, loadings, meta = taxonomy.read_factor_outputs(rd.require(rd.factors_json, "03"), rd.loadings)
    result = taxonomy.build_taxonomy(assignment, loadings, k_min=tp.k_min, k_max=tp.k_max, seed=params.seed,
                                     call=namer_from_params(params, str(rd.root), progress=progress), model=tp.namer,
                                     name=f"{params.run_name}_taxonomy", method={"factors": meta})
    result.write(str(rd.root))
    return TaxonomyStep(result)


async def run_projective(params: Params, run_dir: RunDirLike, progress: bool = False) -> ProjectiveStep:
    """05: complete every stem (cached completions reused); writes completions.jsonl, completions.parquet."""
    completions, tally = await projective.run_projective(params, str(run_dir), progress=progress)
    return ProjectiveStep(completions, tally)


def run_score(params: Params, run_dir: RunDirLike, progress: bool = False) -> ScoreStep:
    """06: score every completion on `scoring.systems` (the run's own system falls back to the paper's, with a note);
    writes scores.parquet, reliability.json and value_profiles.csv."""
    rd = RunDir.at(run_dir)
    choice = evaluation.resolve_systems(params, str(rd.root))
    runs = evaluation.score_systems(params, str(rd.root), choice, progress=progress)
    evaluation.write_scored(rd, runs, choice.notes)
    prof = profiles.system_profiles(runs, n_boot=params.scoring.n_bootstrap, seed=params.seed)
    prof.to_csv(rd.profiles, index=False)
    return ScoreStep(choice, runs, prof)


def run_compare(params: Params, run_dir: RunDirLike, progress: bool = False) -> CompareStep:
    """07: the same completions under step 06's systems (its scores reused where still valid) and the human ones
    (Schwartz, MFT); writes comparison.csv."""
    rd = RunDir.at(run_dir)
    choice = evaluation.resolve_systems(params, str(rd.root), extra=evaluation.HUMAN_SYSTEMS)
    runs = evaluation.score_systems(params, str(rd.root), choice, reuse=True, step="07_compare_mft_schwartz",
                                    progress=progress)
    leaves = {s: r.system.leaves() for s, r in runs.items()}
    table = comparison.comparison_table({s: r.scores for s, r in runs.items()}, leaves,
                                        n_boot=params.scoring.n_bootstrap, seed=params.seed)
    table.to_csv(rd.comparison, index=False)
    return CompareStep(choice, runs, leaves, table)


#: notebook stem -> its step function (01 and 05 are coroutine functions; `run_step` runs either kind)
STEPS: dict[str, Callable[..., Any]] = {
    "01_elicit": run_elicit,
    "02_lexicon": run_lexicon,
    "03_factors": run_factors,
    "04_taxonomy": run_taxonomy,
    "05_projective": run_projective,
    "06_score": run_score,
    "07_compare_mft_schwartz": run_compare,
}


def step_function(step: str) -> Callable[..., Any]:
    """The function of a notebook stem ('03_factors') or its number ('03', '3')."""
    if step in STEPS:
        return STEPS[step]
    number = f"{int(step):02d}" if step.isascii() and step.isdigit() else step
    found = [fn for stem, fn in STEPS.items() if stem.split("_", 1)[0] == number]
    if not found:
        raise UserError(f"unknown step {step!r} (known: {', '.join(STEPS)})")
    return found[0]


def run_step(step: str, params: Params, run_dir: RunDirLike, progress: bool = False) -> Any:
    """Run one step outside a notebook (from synchronous code: a script, the CLI) and return its result.

    The step starts without the sentence vectors an earlier step of this process left in `embeddings`' memory cache,
    as a notebook's fresh kernel does: MiniLM's vectors differ in the last bits with the batch they were computed in,
    and on the smoke study step 07 run after step 06 in one process scored one MFT value differently (comparison.csv,
    1 row of 80) until the cache was cleared between them."""
    embeddings.clear_memory_cache()
    out = step_function(step)(params, run_dir, progress=progress)
    return asyncio.run(out) if inspect.iscoroutine(out) else out
