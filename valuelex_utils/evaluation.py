"""Steps 06 and 07 glue: score a run's projective completions on value systems, with the scorer's reliability
(paper Sec. 3.3, Eq. 4, Alg. 2 lines 5-6). The scoring itself lives in `scoring`, the profiles in `profiles`.

The paper measures models on the value system it reconstructed. So by default (`scoring.systems: [run, valuelex]`)
step 06 scores every completion on this run's own system (`<run>/taxonomy.yaml`, step 04) and, beside it, on the
paper's published system, to compare with the paper; step 07 adds Schwartz and MFT. Every product says which system a
row belongs to: `scores.parquet` has one row per completion *and system* (column `system`; a system's (sub)dimension
columns are empty on the other systems' rows), `value_profiles.csv` a `system` column, and `reliability.json` is
`{"systems": {key: the scorer's reliability report}, "notes": [...]}`.

A run whose step 04 left no usable value system (no taxonomy.yaml, or one that does not load as a system) is scored on
the paper's system instead, and says so in one line (`SystemChoice.notes`).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import pandas as pd

from .errors import UserError
from .params import DEFAULT_JUDGE, NAMED_SYSTEMS, RUN_SYSTEM, Params
from .llm.roles import role_caller
from .rundir import RunDir, atomic_path
from .scoring import score_with_reliability, scorer_class
from .scoring.reliability import write_report
from .systems import PAPER_SYSTEM, ValueSystem, load_system

ATTRIBUTES = ["key", "respondent", "model", "family", "size", "training", "config", "stem_id", "stem", "sample",
              "completion"]
#: Column names a value system's (sub)dimensions must not take: the score tables' own columns.
TABLE_COLUMNS = {*ATTRIBUTES, "system", "level", "id", "column", "w", "lo", "hi", "n", "neutral_share"}
HUMAN_SYSTEMS = ("schwartz", "mft")


@dataclass
class ScoredRun:
    system: Any
    scores: pd.DataFrame          # one row per completion: attributes + one 0..6 column per (sub)dimension
    reliability: dict[str, Any]
    key: str = ""                 # the system's key in this run's tables ('run', 'valuelex', ...)

    @property
    def columns(self) -> list[str]:
        return self.system.columns()


@dataclass
class SystemChoice:
    """The value systems to score on, by key (in order: the first leads), and what had to change and why."""

    systems: dict[str, Any]
    notes: list[str] = field(default_factory=list)

    def keys(self) -> list[str]:
        return list(self.systems)


def resolve_system(name: str, rd: RunDir) -> Any:
    """'valuelex' | 'schwartz' | 'mft' | 'run' (this run's own taxonomy.yaml from step 04) | a path."""
    if name == RUN_SYSTEM:
        return load_system(rd.require(rd.taxonomy, "04"))
    return load_system(name)


def _check_columns(sysm: Any, key: str) -> None:
    clash = sorted(c for c in sysm.columns() if c in TABLE_COLUMNS)
    if clash:
        raise UserError(f"value system {key!r}: (sub)dimension name(s) {', '.join(map(repr, clash))} clash with the "
                        "score tables' own columns; rename them in its YAML")


def run_system(rd: RunDir) -> tuple[Any | None, str | None]:
    """This run's own value system from step 04, or (None, why it is not usable)."""
    if not rd.taxonomy.exists():
        return None, "step 04 left no taxonomy.yaml (it did not run, or failed)"
    try:
        sysm = load_system(rd.taxonomy)
        _check_columns(sysm, RUN_SYSTEM)
    except UserError as err:
        return None, f"its taxonomy.yaml is not a usable value system ({str(err).replace(str(rd.taxonomy) + ': ', '')})"
    if not sysm.dimensions():
        return None, "its taxonomy.yaml has no dimension"
    return sysm, None


def resolve_systems(params: Params, run_dir: str | Path, extra: tuple[str, ...] = ()) -> SystemChoice:
    """`scoring.systems` (then `extra`, e.g. Schwartz and MFT in step 07), loaded and keyed, duplicates dropped.

    'run' without a usable system from step 04 is replaced by the paper's system, with a one-line note."""
    rd = RunDir.at(run_dir)
    out: dict[str, Any] = {}
    notes: list[str] = []
    for spec in [*params.scoring.systems, *extra]:
        if spec == RUN_SYSTEM:
            sysm, why = run_system(rd)
            if sysm is None:
                if PAPER_SYSTEM in out or PAPER_SYSTEM in params.scoring.systems:
                    notes.append(f"No profile on this run's own value system: {why}; the paper's system is scored.")
                    continue
                notes.append(f"No profile on this run's own value system: {why}; scored on the paper's system "
                             "instead.")
                spec, sysm = PAPER_SYSTEM, load_system(PAPER_SYSTEM)
            key = spec
        else:
            sysm = load_system(spec)
            _check_columns(sysm, spec)
            key = spec if spec in NAMED_SYSTEMS else sysm.name
            if key in NAMED_SYSTEMS and spec not in NAMED_SYSTEMS:
                key = f"{key} ({Path(spec).name})"  # a file whose name: is a built-in's: keep them apart
        if key not in out:
            out[key] = sysm
    return SystemChoice(out, notes)


def judge_caller(params: Params, run_dir: str | Path, step: str = "06_score", progress: bool = False) -> Any:
    """The LLM judge of a study through the shared LLM layer (`roles.role_caller`): the run's store, the study's
    concurrency, retries, Router and endpoints, its calls in `calls.jsonl` under the step that runs it."""
    return role_caller(params, params.scoring.judge or DEFAULT_JUDGE, run_dir, role="judge", step=step,
                       progress=progress)


def score_run(params: Params, run_dir: str, system: Any = None, step: str = "06_score") -> ScoredRun:
    """Score every completion of step 05 on `system` (a name, a path or a loaded `ValueSystem`; default the leading
    `scoring.systems` entry) with the configured scorer; the LLM judge's calls are tallied under `step`."""
    rd = RunDir.at(run_dir)
    completions = pd.read_parquet(rd.require(rd.completions, "05"))
    completions = completions[completions["completion"].notna()].reset_index(drop=True)
    if system is None:  # the leading system, with the fallback when step 04 left none
        spec, sysm = next(iter(resolve_systems(params, rd.root).systems.items()))
    else:
        spec = system
        sysm = spec if isinstance(spec, ValueSystem) else resolve_system(spec, rd)
    items = pd.DataFrame({"id": completions["key"], "stem": completions["stem"],
                          "completion": completions["completion"].astype(str)})
    judged = scorer_class(params.scoring.scorer).takes_judge
    caller = judge_caller(params, rd.root, step) if judged else None
    scores, report = score_with_reliability(items, sysm, params.scoring.scorer, caller.model if judged else None,
                                            caller=caller, seed=params.seed,
                                            annotated_sample=params.scoring.judge_reliability_items,
                                            judge_max_tokens=params.scoring.judge_max_tokens,
                                            extra={"run_dir": str(rd.root), "n_completions": len(items)})
    merged = completions[[c for c in ATTRIBUTES if c in completions.columns]].join(
        scores.drop(columns=["id"]).reset_index(drop=True))
    return ScoredRun(sysm, merged, report, key=spec if isinstance(spec, str) else sysm.name)


def score_systems(params: Params, run_dir: str | Path, choice: SystemChoice, reuse: bool = False,
                  step: str = "06_score", progress: bool = False) -> dict[str, ScoredRun]:
    """Score on every system of `choice`. `reuse=True` takes a system's scores from `scores.parquet` and
    `reliability.json` when they were made from the same completions, system file and scorer (step 07 after 06).
    An LLM judge's calls are tallied under `step`. `progress`: a tqdm.auto bar, one tick per system (scoring a
    system takes tens of seconds on 2 cores; a cell silent that long looks hung)."""
    rd = RunDir.at(run_dir)
    saved = load_scored(rd) if reuse else {}
    runs: dict[str, ScoredRun] = {}
    from tqdm.auto import tqdm

    with tqdm(choice.systems.items(), desc="scoring value systems", unit="system", disable=not progress) as bar:
        for key, sysm in bar:
            bar.set_postfix_str(str(key))
            old = saved.get(key)
            if old is not None and _same(old, sysm, params, rd):
                runs[key] = ScoredRun(sysm, old.scores, old.reliability, key=key)
            else:
                run = score_run(params, str(rd.root), system=sysm, step=step)
                run.key = key
                run.reliability = {**run.reliability, "system_key": key, "system_digest": sysm.digest}
                runs[key] = run
    return runs


def _same(old: ScoredRun, sysm: Any, params: Params, rd: RunDir) -> bool:
    rel = old.reliability
    if rel.get("system_digest") != sysm.digest or rel.get("scorer") != params.scoring.scorer:
        return False
    if scorer_class(params.scoring.scorer).takes_judge and params.scoring.judge and rel.get("judge") != params.scoring.judge:
        return False
    if any(c not in old.scores.columns for c in sysm.columns()):
        return False
    done = pd.read_parquet(rd.completions, columns=["key", "completion"])
    keys = set(done.loc[done["completion"].notna(), "key"])
    return keys == set(old.scores["key"])


def write_scored(rd: RunDir, runs: Mapping[str, ScoredRun], notes: list[str] | None = None) -> None:
    """scores.parquet (one row per completion and system) and reliability.json ({"systems": ..., "notes": ...})."""
    frames = []
    for key, run in runs.items():
        attrs = [c for c in ATTRIBUTES if c in run.scores.columns]
        frames.append(run.scores[attrs].assign(system=key).join(run.scores[run.columns]))
    table = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=[*ATTRIBUTES, "system"])
    with atomic_path(rd.scores) as tmp:
        table.to_parquet(tmp, index=False)
    write_report({"systems": {k: r.reliability for k, r in runs.items()}, "notes": list(notes or [])},
                 rd.reliability)


def load_scored(rd: RunDir) -> dict[str, ScoredRun]:
    """What `write_scored` wrote, by system key (an older single-system run dir gives {})."""
    if not (rd.scores.exists() and rd.reliability.exists()):
        return {}
    try:
        rel = json.loads(rd.reliability.read_text(encoding="utf-8"))
        table = pd.read_parquet(rd.scores)
    except (ValueError, OSError, UnicodeDecodeError):
        return {}
    if not isinstance(rel, dict) or not isinstance(rel.get("systems"), dict) or "system" not in table.columns:
        return {}
    out = {}
    for key, report in rel["systems"].items():
        cols = report.get("columns") or []
        sub = table[table["system"] == key]
        if sub.empty or any(c not in sub.columns for c in cols):
            continue
        attrs = [c for c in ATTRIBUTES if c in sub.columns]
        out[key] = ScoredRun(None, sub[attrs + cols].reset_index(drop=True), report, key=key)
    return out


def read_notes(rd: RunDir) -> list[str]:
    """The notes step 06 wrote to reliability.json (e.g. why the run's own system was not scored)."""
    try:
        rel = json.loads(rd.reliability.read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return []
    return list(rel.get("notes") or []) if isinstance(rel, dict) else []


def systems_table(runs: Mapping[str, ScoredRun]) -> pd.DataFrame:
    """One row per scored system: key, title, its dimensions and subdimensions, completions scored."""
    rows = []
    for key, run in runs.items():
        s = run.system
        rows.append({"system": key, "title": s.title or s.name, "dimensions": ", ".join(s.dimensions()),
                     "n_subdimensions": len(s.subdimensions()), "completions": len(run.scores),
                     "scorer": run.reliability.get("scorer")})
    return pd.DataFrame(rows)


def reliability_overview(runs: Mapping[str, ScoredRun]) -> pd.DataFrame:
    """Mean agreement with human labels per system, or why there is none (a run's own system has no labels)."""
    rows = []
    for key, run in runs.items():
        ann = run.reliability.get("against_annotated") or {}
        measured = ann.get("mean_qwk") is not None
        rows.append({"system": key, "scorer": run.reliability.get("scorer"),
                     **{k: ann.get(k) for k in ("mean_qwk", "mean_alpha_ordinal", "mean_auc_strong_vs_weak",
                                                "mean_auc_conflict_vs_neutral")},
                     "n_labelled_items": ann.get("n_items"),
                     "note": "" if measured else "no human labels for this system: agreement unknown (reliability.json "
                     "says how it was scored)"})
    out = pd.DataFrame(rows)
    out["n_labelled_items"] = out["n_labelled_items"].astype("Int64")
    return out
