"""A step that never ends (issue 20): `valuelex run` stops it at `step_timeout`, says so in one line, exits 2, records
"timeout" in the manifest, and leaves no kernel behind.

The stand-in for a kernel that never answers is a notebook whose cell sleeps for an hour (the client waits on it as
on a lost reply); it writes a marker first, so the test knows the kernel was running when the bound fired."""
from __future__ import annotations

import json
import threading
import time

import nbformat
import psutil
import pytest
import yaml

from valuelex_utils import cli, runner

pytestmark = pytest.mark.slow

BOUND_S = 40  # generous: a kernel takes 5-20 s to start on a loaded 2-core machine


def sleeping_notebook(folder, marker):
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    params = nbformat.v4.new_code_cell('run_dir = "."\nparams_file = "params.yaml"')
    params.metadata["tags"] = ["parameters"]
    body = nbformat.v4.new_code_cell(f"import pathlib, time\npathlib.Path({str(marker)!r}).write_text('asleep')\n"
                                     "time.sleep(3600)")
    nb.cells = [params, body]
    folder.mkdir()
    nbformat.write(nb, str(folder / "01_sleep.ipynb"))


def test_a_step_that_never_ends_is_stopped_with_one_line_and_its_kernel_reaped(tmp_path, monkeypatch, capsys):
    marker = tmp_path / "asleep"
    sleeping_notebook(tmp_path / "notebooks", marker)
    monkeypatch.setattr(runner, "NOTEBOOK_DIR", tmp_path / "notebooks")
    params = tmp_path / "p.yaml"
    params.write_text(yaml.safe_dump({
        "run_name": "hang", "step_timeout": BOUND_S,
        "respondents": [{"model": "openai/fake", "training": "aligned", "api_base": "http://127.0.0.1:9/v1"}],
        "lexicon": {"min_respondents": 1}}),  # one respondent: the checks between steps must let step 02 be asked
        encoding="utf-8")
    run_dir = tmp_path / "run"

    kernels: dict[int, psutil.Process] = {}
    done = threading.Event()

    def watch() -> None:  # every process under this one that runs a kernel
        me = psutil.Process()
        while not done.is_set():
            for p in me.children(recursive=True):
                try:
                    if "ipykernel" in " ".join(p.cmdline()):
                        kernels.setdefault(p.pid, p)
                except psutil.Error:
                    pass
            time.sleep(0.2)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    started = time.monotonic()
    try:
        code = cli.main(["run", "--params", str(params), "--run-dir", str(run_dir), "--steps", "01", "--no-report"])
    finally:
        done.set()
        watcher.join(5)
    took = time.monotonic() - started
    err = capsys.readouterr().err

    assert code == 2
    assert marker.exists(), "the kernel never reached the sleeping cell: nothing was tested"
    errors = [ln for ln in err.splitlines() if "error" in ln.lower()]
    assert len(errors) == 1, err
    assert errors[0].startswith("valuelex: error: step 01 failed: StepTimeout: still running after ")
    assert f"(step_timeout: {BOUND_S} s); the notebook and its kernel were stopped" in errors[0]
    assert "Traceback" not in err
    assert took < BOUND_S + 60  # stopped near the bound, not after the hour the cell asked for
    manifest = json.loads((run_dir / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["steps"]["01"]["status"] == "timeout"

    assert kernels, "no kernel process was seen"
    gone, alive = psutil.wait_procs(list(kernels.values()), timeout=15)
    assert not alive, f"kernels left running: {[p.pid for p in alive]}"

    # the next run refuses a step that reads from the stopped one
    assert cli.main(["run", "--params", str(params), "--run-dir", str(run_dir), "--steps", "02", "--no-report"]) == 2
    assert "step 02 reads from step 01, which ended timeout" in capsys.readouterr().err
