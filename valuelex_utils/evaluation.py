"""Steps 06 and 07 glue: score a run's projective completions on a value system, with the scorer's reliability
(paper Sec. 3.3, Eq. 4, Alg. 2 lines 5-6). The scoring itself lives in `scoring`, the profiles in `profiles`."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from .params import Params
from .rundir import RunDir

ATTRIBUTES = ["key", "respondent", "model", "family", "size", "training", "config", "stem_id", "stem", "sample",
              "completion"]


@dataclass
class ScoredRun:
    system: Any
    scores: pd.DataFrame          # one row per completion: attributes + one 0..6 column per (sub)dimension
    reliability: dict[str, Any]

    @property
    def columns(self) -> list[str]:
        return self.system.columns()


def resolve_system(name: str, rd: RunDir) -> Any:
    """'valuelex' | 'schwartz' | 'mft' | 'run' (this run's own taxonomy.yaml from step 04) | a path."""
    from .systems import load_system

    if name == "run":
        return load_system(rd.require(rd.taxonomy, "04"))
    return load_system(name)


def judge_caller(params: Params, run_dir: str | Path, step: str = "06_score", progress: bool = False) -> Any:
    """The LLM judge of a study through the shared LLM layer (`roles.role_caller`): the run's store, the study's
    concurrency, retries, Router and endpoints, its calls in `calls.jsonl` under the step that runs it."""
    from .params import DEFAULT_JUDGE
    from .roles import role_caller

    return role_caller(params, params.scoring.judge or DEFAULT_JUDGE, run_dir, role="judge", step=step,
                       progress=progress)


def score_run(params: Params, run_dir: str, system: str | None = None, step: str = "06_score") -> ScoredRun:
    """Score every completion of step 05 on `system` (default `scoring.system`) with the configured scorer; the LLM
    judge's calls are tallied under `step` (or the notebook `valuelex run` executes)."""
    from .scoring import score_with_reliability

    rd = RunDir.at(run_dir)
    completions = pd.read_parquet(rd.require(rd.completions, "05"))
    completions = completions[completions["completion"].notna()].reset_index(drop=True)
    sysm = resolve_system(system or params.scoring.system, rd)
    items = pd.DataFrame({"id": completions["key"], "stem": completions["stem"],
                          "completion": completions["completion"].astype(str)})
    llm = params.scoring.scorer == "llm"
    caller = judge_caller(params, rd.root, step) if llm else None
    scores, report = score_with_reliability(items, sysm, params.scoring.scorer, caller.model if llm else None,
                                            caller=caller, seed=params.seed,
                                            annotated_sample=params.scoring.judge_reliability_items,
                                            judge_max_tokens=params.scoring.judge_max_tokens,
                                            extra={"run_dir": str(rd.root), "n_completions": len(items)})
    merged = completions[[c for c in ATTRIBUTES if c in completions.columns]].join(
        scores.drop(columns=["id"]).reset_index(drop=True))
    return ScoredRun(sysm, merged, report)
