"""`valuelex run`: execute the step notebooks with papermill into one run dir and write its manifest.

The executed notebooks are products of the run (ploomber's idea); the sources in `notebooks/` stay clean. Only two
parameters cross into a notebook, the run dir and the params file: never a key (papermill records parameters).
"""
from __future__ import annotations

import json
import os
import platform
import re
import shutil
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
from .rundir import REPO_ROOT, RunDir, atomic_write_text

ALL_STEPS = ["01", "02", "03", "04", "05", "06", "07"]
NOTEBOOK_DIR = REPO_ROOT / "notebooks"
VERSIONED = ["valuelex", "litellm", "llama_cpp_python", "factor_analyzer", "scikit-learn", "statsmodels", "umap-learn",
             "sentence-transformers", "torch", "pandas", "numpy", "scipy", "plotly", "papermill", "nbconvert"]


def parse_steps(spec: str) -> list[str]:
    """'01-07', '3', '01,02,05' -> ['01', ...]; anything else is a UserError."""
    steps: list[str] = []
    for part in spec.split(","):
        part = part.strip()
        m = re.fullmatch(r"(\d{1,2})(?:-(\d{1,2}))?", part)
        if not m:
            raise UserError(f"--steps: cannot read {part!r} (use e.g. 01-07, 03 or 01,02,05)")
        lo, hi = int(m.group(1)), int(m.group(2) or m.group(1))
        if not (1 <= lo <= hi <= len(ALL_STEPS)):
            raise UserError(f"--steps: {part!r} is outside 01-{len(ALL_STEPS):02d}")
        steps += [f"{i:02d}" for i in range(lo, hi + 1) if f"{i:02d}" not in steps]
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
    from .elicitation import elicitation_prompts
    from .projective import stems
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
            from .embedded import EMBEDDED

            if model.split("/", 1)[1] not in EMBEDDED:
                known = ", ".join(f"local/{n}" for n in EMBEDDED)
                raise UserError(f"model {model}: unknown embedded model (known: {known})")
            continue
        providers = _litellm_providers() if providers is None else providers
        if model.split("/", 1)[0] in providers and model.split("/", 1)[1].strip():
            continue
        from .llm import check_model_id  # imports LiteLLM: only for a provider the fast path does not know

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
    elif run_dir.exists() and any(not (f.name.startswith(".") and f.name.endswith(".tmp")) for f in run_dir.iterdir()):
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
    return json.loads(json.dumps(out))


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
        "steps": dict(sorted(all_steps.items())), "calls": call_counts(rd),
    }
    atomic_write_text(rd.manifest, json.dumps(manifest, indent=2))
    return rd.manifest


def execute_step(step: str, notebook: Path, rd: RunDir, params_path: Path) -> dict[str, Any]:
    """Run one notebook with papermill; a failure is reported with the notebook to open."""
    import papermill as pm

    rd.notebooks.mkdir(exist_ok=True)
    out = rd.notebooks / notebook.name
    os.environ["VALUELEX_PROGRESS"] = "0"  # a bar frozen at 0% is all a saved notebook would show
    os.environ["VALUELEX_WRITE_PRODUCTS"] = "1"  # the kernel inherits it: write into the run dir, not its scratch/
    previous_step = os.environ.get("VALUELEX_STEP")
    os.environ["VALUELEX_STEP"] = notebook.stem  # the kernel inherits it: role calls are tallied under this step
    started = time.time()
    status, error = "ok", None
    try:
        pm.execute_notebook(str(notebook), str(out), parameters={"run_dir": str(rd.root), "params_file": str(params_path)},
                            cwd=str(NOTEBOOK_DIR), kernel_name="python3", progress_bar=False, log_output=False,
                            # the kernel shares our stderr: keep its start-up warnings (e.g. "running over TCP without
                            # encryption", on localhost) and the "KeyboardInterrupt caught in kernel" it logs when it is
                            # shut down while busy (seen on a loaded machine) out of the one line a failure prints
                            # there; a cell's error reaches the user through papermill, not through this log
                            extra_arguments=["--IPKernelApp.log_level=CRITICAL"])
    except pm.PapermillExecutionError as err:
        status = "failed"
        error = {"ename": err.ename, "evalue": str(err.evalue).splitlines()[0] if err.evalue else ""}
    finally:
        if previous_step is None:
            os.environ.pop("VALUELEX_STEP", None)
        else:
            os.environ["VALUELEX_STEP"] = previous_step
    return {"notebook": str(out.relative_to(rd.root)), "seconds": round(time.time() - started, 2), "status": status,
            "error": error}


def run(params_path: str, steps: str = "01-07", run_dir: str | None = None, dry_run: bool = False,
        report: bool = True) -> int:
    params_file = Path(params_path).resolve()
    params = load_params(params_file)
    selected = parse_steps(steps)
    preflight(params, check_keys=not dry_run)  # a dry run needs no keys
    if dry_run:
        from .dryrun import print_dry_run

        print_dry_run(params, selected)
        return 0
    target = Path(run_dir) if run_dir else REPO_ROOT / "outputs" / params.run_name
    rd = claim_run_dir(target.resolve(), params, params_file)
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
        results[step] = execute_step(step, nb, rd, params_copy)
        write_manifest(rd, params, params_file, results, started)
        res = results[step]
        if res["status"] != "ok":
            err = res["error"]
            where = rd.root / res["notebook"]
            print(f"valuelex: error: step {step} failed: {err['ename']}: {err['evalue']} (see {where})", file=sys.stderr)
            code = 2 if err["ename"] in ("UserError", "ProviderError") else 1
            break
        print(f"step {step}: done in {res['seconds']:.1f} s", file=sys.stderr, flush=True)
    write_manifest(rd, params, params_file, results, started)
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


