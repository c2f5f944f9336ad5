"""`valuelex run`: execute the step notebooks with papermill into one run dir and write its manifest.

The executed notebooks are products of the run (ploomber's idea); the sources in `notebooks/` stay clean. Only two
parameters cross into a notebook, the run dir and the params file: never a key (papermill records parameters).
"""
from __future__ import annotations

import json
import os
import platform
import re
import subprocess
import sys
import time
from collections import defaultdict
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml

from .errors import UserError
from .params import Params, load_params
from .rundir import (LOCK_NAME, REPO_ROOT, RunDir, atomic_write_text, default_run_dir, refuse_if_busy,
                     run_dir_lock)

ALL_STEPS = ["01", "02", "03", "04", "05", "06", "07"]
NOTEBOOK_DIR = REPO_ROOT / "notebooks"
# what each step reads from earlier steps (the notebooks' inputs); a step refuses to start while one of these, or one
# they need in turn, is recorded in the manifest as not finished ("running": killed; "failed"; "timeout")
STEP_NEEDS: dict[str, tuple[str, ...]] = {"02": ("01",), "03": ("02",), "04": ("02", "03"), "06": ("04", "05"),
                                          "07": ("05", "06")}
VERSIONED = ["valuelex", "litellm", "llama_cpp_python", "factor_analyzer", "scikit-learn", "statsmodels", "umap-learn",
             "sentence-transformers", "torch", "pandas", "numpy", "scipy", "plotly", "papermill", "nbconvert"]


def parse_steps(spec: str) -> list[str]:
    """'01-07', '3', '01,02,05' -> ['01', ...]; anything else is a UserError. ASCII digits only (Python's \\d takes
    '٠١' too), and a step named twice is refused rather than silently merged."""
    steps: list[str] = []
    for part in spec.split(","):
        part = part.strip()
        m = re.fullmatch(r"([0-9]{1,2})(?:-([0-9]{1,2}))?", part)
        if not m:
            raise UserError(f"--steps: cannot read {part!r} (use e.g. 01-07, 03 or 01,02,05)")
        lo, hi = int(m.group(1)), int(m.group(2) or m.group(1))
        if not (1 <= lo <= hi <= len(ALL_STEPS)):
            raise UserError(f"--steps: {part!r} is outside 01-{len(ALL_STEPS):02d}")
        twice = [f"{i:02d}" for i in range(lo, hi + 1) if f"{i:02d}" in steps]
        if twice:
            raise UserError(f"--steps: step {twice[0]} is named twice in {spec!r}")
        steps += [f"{i:02d}" for i in range(lo, hi + 1)]
    return steps


def notebook_for(step: str) -> Path | None:
    found = sorted(NOTEBOOK_DIR.glob(f"{step}_*.ipynb"))
    return found[0] if found else None


def _litellm_providers() -> set[str]:
    """LiteLLM's provider names, read from the JSON file it ships, without importing LiteLLM (seconds)."""
    import importlib.util

    spec = importlib.util.find_spec("litellm")
    try:
        folder = Path(list(spec.submodule_search_locations)[0])  # type: ignore[union-attr]
        data = json.loads((folder / "provider_endpoints_support_backup.json").read_text(encoding="utf-8"))
        return set(data.get("providers", {}))
    except (AttributeError, IndexError, OSError, ValueError):
        return set()


def preflight(params: Params, check_keys: bool = True) -> None:
    """What can be checked before the run dir is claimed, is: a typo in a model id, a key variable that is not set or
    an unknown value system is one line and exit code 2, not a run dir whose params.yaml then refuses the corrected
    study (nor an hour of calls before step 06 finds the system missing)."""
    for r in params.respondents:
        if check_keys and r.api_key_env and r.api_key_env not in os.environ:
            raise UserError(f"model {r.model}: environment variable {r.api_key_env} (api_key_env) is not set")
    roles = set(params.role_models().values())
    for model, endpoint in params.endpoints.items():
        if check_keys and model in roles and endpoint.api_key_env and endpoint.api_key_env not in os.environ:
            raise UserError(f"model {model}: environment variable {endpoint.api_key_env} (api_key_env) is not set")
    from .prompts import elicitation_prompts
    from .prompts import stems
    from .systems import system_path

    if not elicitation_prompts(params.elicitation.prompts):
        raise UserError("elicitation.prompts: the list is empty (use 'all' or prompt ids 1-15)")
    if not stems(params.projective.stems):
        raise UserError("projective.stems: the list is empty (use 'all' or stem ids 1-50)")
    for system in params.scoring.systems:
        if system != "run":  # the run's own system exists only after step 04 (and step 06 falls back without it)
            system_path(system)
    ids = [r.model for r in params.respondents]
    ids += list(params.role_models().values())
    providers: set[str] | None = None
    for model in dict.fromkeys(ids):
        if model.startswith("local/"):
            from .llm.embedded import EMBEDDED

            if model.split("/", 1)[1] not in EMBEDDED:
                known = ", ".join(f"local/{n}" for n in EMBEDDED)
                raise UserError(f"model {model}: unknown embedded model (known: {known})")
            continue
        providers = _litellm_providers() if providers is None else providers
        if model.split("/", 1)[0] in providers and model.split("/", 1)[1].strip():
            continue
        from .llm.calls import check_model_id  # imports LiteLLM: only for a provider the fast path does not know

        check_model_id(model)


def claim_run_dir(run_dir: Path, params: Params, params_path: Path) -> RunDir:
    """Refuse a run dir that holds another study's data; otherwise record these params in it.

    Checked before anything is written, so a mistaken --run-dir changes nothing."""
    if run_dir.exists() and not run_dir.is_dir():
        raise UserError(f"run dir {run_dir} is a file, not a folder; choose another --run-dir")
    copy = run_dir / "params.yaml"
    if copy.exists():
        try:
            from .params import parse_params

            old = parse_params(yaml.safe_load(copy.read_text(encoding="utf-8")), str(copy))
        except (UserError, yaml.YAMLError, UnicodeDecodeError):
            raise UserError(f"{run_dir} has an unreadable params.yaml: not a run dir of these params") from None
        if old.fingerprint() != params.fingerprint():
            raise UserError(f"run dir {run_dir} belongs to other params (its params.yaml differs from {params_path}); "
                            "choose another --run-dir")
        if old != params:  # only operational fields differ (concurrency, timeouts): the notebooks read the new ones
            atomic_write_text(copy, yaml.safe_dump(params.model_dump(mode="json"), sort_keys=False))
    elif run_dir.exists() and any(not (f.name.startswith(".") and f.name.endswith(".tmp")) and f.name != LOCK_NAME
                                  for f in run_dir.iterdir()):
        raise UserError(f"run dir {run_dir} is not empty and has no params.yaml: not a ValueLex run dir")
    rd = RunDir.at(run_dir)
    if not copy.exists():
        atomic_write_text(copy, yaml.safe_dump(params.model_dump(mode="json"), sort_keys=False))
    return rd


def package_versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for name in VERSIONED:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def git_revision() -> dict[str, Any]:
    try:
        rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO_ROOT,
                               capture_output=True, text=True, timeout=10)
        return {"commit": rev.stdout.strip() or None, "dirty": bool(dirty.stdout.strip())}
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}


def call_counts(rd: RunDir) -> dict[str, dict[str, dict[str, float]]]:
    """Sum `calls.jsonl` per step and model (calls, cached, retries, errors, tokens, cost)."""
    out: dict[str, dict[str, dict[str, float]]] = defaultdict(lambda: defaultdict(lambda: defaultdict(float)))
    if rd.calls.exists():
        for line in rd.calls.read_text(encoding="utf-8").splitlines():
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                continue
            for model, counts in entry.get("models", {}).items():
                for k, v in counts.items():
                    out[entry["step"]][model][k] += v
    for (step, model), counts in unlogged_calls(rd).items():
        for k, v in counts.items():
            out[step][model][k] += v
    return json.loads(json.dumps(out))


def unlogged_calls(rd: RunDir) -> dict[tuple[str, str], dict[str, int]]:
    """Calls a killed run made: store records of a step (`step` in the record) outside the time span of every batch
    that step logged in `calls.jsonl` (a batch logs its tally when it ends, which a kill prevents). Counted as
    `unlogged_calls` (answers) and `unlogged_failed_attempts` per step and model."""
    spans: dict[str, list[tuple[float, float]]] = defaultdict(list)
    if rd.calls.exists():
        for line in rd.calls.read_text(encoding="utf-8").splitlines():
            try:
                entry = json.loads(line)
                spans[entry["step"]].append((float(entry["time"]) - float(entry["seconds"]) - 1.0,
                                             float(entry["time"]) + 1.0))
            except (ValueError, KeyError, TypeError):
                continue
    out: dict[tuple[str, str], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    from .llm.store import ResponseStore

    for path in (rd.responses, rd.completions_raw):
        if not path.exists():
            continue
        for rec in ResponseStore(path).records():
            step, when = rec.get("step"), rec.get("time")
            if not isinstance(step, str) or not isinstance(when, (int, float)):
                continue
            if any(lo <= when <= hi for lo, hi in spans.get(step, ())):
                continue
            kind = "unlogged_calls" if rec.get("response") is not None else "unlogged_failed_attempts"
            out[(step, str(rec.get("model")))][kind] += 1
    return out


def store_health(rd: RunDir) -> dict[str, Any]:
    """`ResponseStore.health()` of each store file of the run (for the manifest)."""
    from .llm.store import ResponseStore

    return {p.name: ResponseStore(p).health() for p in (rd.responses, rd.completions_raw) if p.exists()}


def report_store_damage(rd: RunDir) -> None:
    """One warning line per damaged store file (how many lines and which); the damaged lines are already kept out
    of the analysis by the store itself."""
    from .llm.store import ResponseStore

    for p in (rd.responses, rd.completions_raw):
        if p.exists():
            line = ResponseStore(p).damage_summary()
            if line:
                print(f"valuelex: warning: {line}", file=sys.stderr, flush=True)


def write_manifest(rd: RunDir, params: Params, params_path: Path, steps: dict[str, Any], started: float) -> Path:
    try:
        previous = json.loads(rd.manifest.read_text(encoding="utf-8")) if rd.manifest.exists() else {}
    except (ValueError, UnicodeDecodeError):  # written by a version without atomic writes and cut by a crash
        previous = {}
    all_steps = {**previous.get("steps", {}), **steps}
    manifest = {
        "valuelex_version": package_versions()["valuelex"],
        "run_name": params.run_name, "params_file": str(params_path), "params_fingerprint": params.fingerprint(),
        "params": params.model_dump(mode="json"),
        "git": git_revision(), "python": sys.version.split()[0], "platform": platform.platform(),
        "versions": package_versions(), "started": started, "finished": time.time(),
        "steps": dict(sorted(all_steps.items())), "calls": call_counts(rd), "store": store_health(rd),
    }
    atomic_write_text(rd.manifest, json.dumps(manifest, indent=2))
    return rd.manifest


def execute_step(step: str, notebook: Path, rd: RunDir, params_path: Path, *, timeout: float = 3600.0,
                 params: Params | None = None, lock_fd: int | None = None) -> dict[str, Any]:
    """Run one notebook with papermill in a child process bounded by `timeout` seconds (`stepexec`); a failure is
    reported with the notebook to open. The child holds the run dir's lock too (`lock_fd`), so that a run killed
    while its step goes on still keeps a second run out."""
    from .scrub import url_secrets_env
    from .stepexec import execute_notebook_bounded

    rd.notebooks.mkdir(exist_ok=True)
    out = rd.notebooks / notebook.name
    env = {"VALUELEX_PROGRESS": "0",  # a bar frozen at 0% is all a saved notebook would show
           "VALUELEX_WRITE_PRODUCTS": "1",  # write into the run dir, not its scratch/ (notebook.products_dir)
           "VALUELEX_HEADLESS": "1",  # no frontend: explorers show a static first view, no widget (widgets.py)
           "VALUELEX_STEP": notebook.stem}  # the kernel inherits it: role calls are tallied under this step
    if params is not None:  # the params copy masks URL credentials; the kernel gets the real URLs by environment
        urls = [b for r in params.respondents for b in r.api_bases]
        urls += [b for e in params.endpoints.values() for b in e.api_bases]
        env.update(url_secrets_env(urls))
    started = time.time()
    res = execute_notebook_bounded(notebook, out, rd.root, params_path, NOTEBOOK_DIR, timeout=timeout, env=env,
                                   pass_fds=(lock_fd,) if lock_fd is not None else ())
    return {"notebook": str(out.relative_to(rd.root)), "seconds": round(time.time() - started, 2),
            "status": res["status"], "error": res["error"]}


def _needs(step: str) -> list[str]:
    """Every step `step` reads from, directly or through another, earliest first."""
    seen: set[str] = set()
    todo = list(STEP_NEEDS.get(step, ()))
    while todo:
        dep = todo.pop()
        if dep not in seen:
            seen.add(dep)
            todo += STEP_NEEDS.get(dep, ())
    return sorted(seen)


def previous_steps(rd: RunDir) -> dict[str, Any]:
    """The steps the run dir's manifest records (empty when there is none or it is unreadable)."""
    try:
        steps = json.loads(rd.manifest.read_text(encoding="utf-8")).get("steps", {})
    except (OSError, ValueError, UnicodeDecodeError, AttributeError):
        return {}
    return steps if isinstance(steps, dict) else {}


def check_needs(selected: list[str], recorded: dict[str, Any]) -> None:
    """Refuse (one line) a selected step that reads from a step the manifest records as not finished, unless that
    step is selected to run before it."""
    for i, step in enumerate(selected):
        for dep in _needs(step):
            if dep in selected[:i]:
                continue
            entry = recorded.get(dep)
            status = entry.get("status") if isinstance(entry, dict) else None
            if status not in (None, "ok"):
                what = "was killed while running" if status == "running" else f"ended {status}"
                raise UserError(f"step {step} reads from step {dep}, which {what} (manifest.json); rerun it first: "
                                f"valuelex run --steps {dep}-{step}")


def run(params_path: str, steps: str = "01-07", run_dir: str | None = None, dry_run: bool = False,
        report: bool = True) -> int:
    params_file = Path(params_path).resolve()
    params = load_params(params_file)
    selected = parse_steps(steps)
    preflight(params, check_keys=not dry_run)  # a dry run needs no keys
    params.check_between_steps(selected, str(params_file))
    if dry_run:
        from .dryrun import print_dry_run

        print_dry_run(params, selected)
        return 0
    from .inputs import run_dir_target

    target = run_dir_target(Path(run_dir) if run_dir else default_run_dir(params.run_name)).resolve()
    if target.is_dir():  # before anything is written: a run in progress, then a step that did not finish
        refuse_if_busy(target)
        check_needs(selected, previous_steps(RunDir(target)))
    rd = claim_run_dir(target, params, params_file)
    with run_dir_lock(rd.root) as lock_fd:
        return _run_locked(params, params_file, selected, target, lock_fd, report)


def _run_locked(params: Params, params_file: Path, selected: list[str], target: Path, lock_fd: int,
                report: bool) -> int:
    rd = claim_run_dir(target, params, params_file)  # again under the lock: a run that held it may have claimed it
    check_needs(selected, previous_steps(rd))
    report_store_damage(rd)
    params_copy = rd.params_copy
    started = time.time()
    results: dict[str, Any] = {}
    code = 0
    for step in selected:
        nb = notebook_for(step)
        if nb is None:
            print(f"step {step}: no notebook yet, skipped", file=sys.stderr)
            continue
        print(f"step {step}: {nb.name} ...", file=sys.stderr, flush=True)
        # recorded before the notebook starts: a step killed on its way is "running", never the "ok" of a past run
        results[step] = {"notebook": f"notebooks/{nb.name}", "status": "running", "started": time.time(),
                         "seconds": None, "error": None}
        write_manifest(rd, params, params_file, results, started)
        results[step] = execute_step(step, nb, rd, params_copy, timeout=params.step_timeout, params=params,
                                     lock_fd=lock_fd)
        write_manifest(rd, params, params_file, results, started)
        res = results[step]
        if res["status"] != "ok":
            err = res["error"]
            where = rd.root / res["notebook"]
            print(f"valuelex: error: step {step} failed: {err['ename']}: {err['evalue']} (see {where})", file=sys.stderr)
            code = 2 if err["ename"] in ("UserError", "ProviderError", "StepTimeout") else 1
            break
        print(f"step {step}: done in {res['seconds']:.1f} s", file=sys.stderr, flush=True)
    write_manifest(rd, params, params_file, results, started)
    report_store_damage(rd)
    if report and code == 0 and results:
        try:
            from .report import build_report
        except ImportError:
            build_report = None  # type: ignore[assignment]
        if build_report is not None:
            index = build_report(rd.root)
            print(f"report: {index}")
            from .report import shareable_report

            print(f"report to share (one file, opens offline anywhere): {shareable_report(rd.root)}")
    print(f"run dir: {rd.root}")
    return code


