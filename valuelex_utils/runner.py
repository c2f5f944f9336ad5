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
from .rundir import REPO_ROOT, RunDir

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


def claim_run_dir(run_dir: Path, params: Params, params_path: Path) -> RunDir:
    """Refuse a run dir that holds another study's data; otherwise record these params in it.

    Checked before anything is written, so a mistaken --run-dir changes nothing."""
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
    elif run_dir.exists() and any(run_dir.iterdir()):
        raise UserError(f"run dir {run_dir} is not empty and has no params.yaml: not a ValueLex run dir")
    rd = RunDir.at(run_dir)
    if not copy.exists():
        copy.write_text(yaml.safe_dump(params.model_dump(mode="json"), sort_keys=False), encoding="utf-8")
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
    previous = json.loads(rd.manifest.read_text()) if rd.manifest.exists() else {}
    all_steps = {**previous.get("steps", {}), **steps}
    manifest = {
        "valuelex_version": package_versions()["valuelex"],
        "run_name": params.run_name, "params_file": str(params_path), "params_fingerprint": params.fingerprint(),
        "params": params.model_dump(mode="json"),
        "git": git_revision(), "python": sys.version.split()[0], "platform": platform.platform(),
        "versions": package_versions(), "started": started, "finished": time.time(),
        "steps": dict(sorted(all_steps.items())), "calls": call_counts(rd),
    }
    rd.manifest.write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    return rd.manifest


def execute_step(step: str, notebook: Path, rd: RunDir, params_path: Path) -> dict[str, Any]:
    """Run one notebook with papermill; a failure is reported with the notebook to open."""
    import papermill as pm

    rd.notebooks.mkdir(exist_ok=True)
    out = rd.notebooks / notebook.name
    os.environ["VALUELEX_PROGRESS"] = "0"  # a bar frozen at 0% is all a saved notebook would show
    started = time.time()
    status, error = "ok", None
    try:
        pm.execute_notebook(str(notebook), str(out), parameters={"run_dir": str(rd.root), "params_file": str(params_path)},
                            cwd=str(NOTEBOOK_DIR), kernel_name="python3", progress_bar=False, log_output=False)
    except pm.PapermillExecutionError as err:
        status = "failed"
        error = {"ename": err.ename, "evalue": str(err.evalue).splitlines()[0] if err.evalue else ""}
    return {"notebook": str(out.relative_to(rd.root)), "seconds": round(time.time() - started, 2), "status": status,
            "error": error}


def run(params_path: str, steps: str = "01-07", run_dir: str | None = None, dry_run: bool = False,
        report: bool = True) -> int:
    params_file = Path(params_path).resolve()
    params = load_params(params_file)
    selected = parse_steps(steps)
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
    print(f"run dir: {rd.root}")
    return code


