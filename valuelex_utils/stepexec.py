"""Run one step notebook with papermill in a child process, under a wall-clock bound.

Why a child process: papermill waits on the kernel with no bound of its own, and twice in about 60 executions the
client sat in `execute_cell` while the kernel was idle (once for 15 minutes). A child can be ended from outside
whatever it is stuck in; its kernel then ends too (ipykernel polls its parent and exits when the parent is gone).
The child writes the executed notebook through the scrubber (`scrub.ScrubbedNotebookIO`) and its result as JSON;
its stdout and stderr are scrubbed before the parent prints them.

`python -m valuelex_utils.stepexec '<json>'` is the child's entry point; `execute_notebook_bounded` the parent's.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from .rundir import REPO_ROOT
from .scrub import scrub

KILL_GRACE_S = 10.0


def _child(args: dict[str, Any]) -> int:
    from .scrub import ScrubbedNotebookIO, register_papermill_io, scrub_obj, scrub_std_streams

    scrub_std_streams()
    import papermill as pm

    register_papermill_io()
    result: dict[str, Any] = {"status": "ok", "error": None}
    try:
        pm.execute_notebook(args["notebook"], ScrubbedNotebookIO.SCHEME + args["out"],
                            parameters={"run_dir": args["run_dir"], "params_file": args["params_file"]},
                            cwd=args["cwd"], kernel_name="python3", progress_bar=False, log_output=False,
                            # the kernel shares our stderr: keep its start-up warnings (e.g. "running over TCP without
                            # encryption", on localhost) and the "KeyboardInterrupt caught in kernel" it logs when it is
                            # shut down while busy out of the one line a failure prints; a cell's error reaches the
                            # user through papermill, not through this log
                            extra_arguments=["--IPKernelApp.log_level=CRITICAL"])
    except pm.PapermillExecutionError as err:
        result = {"status": "failed",
                  "error": {"ename": err.ename, "evalue": str(err.evalue).splitlines()[0] if err.evalue else ""}}
    except Exception as err:  # noqa: BLE001 - the kernel died, the notebook is unreadable...: reported, not raised
        text = str(err).strip().splitlines()
        result = {"status": "failed", "error": {"ename": type(err).__name__, "evalue": text[0] if text else ""}}
    Path(args["result"]).write_text(json.dumps(scrub_obj(result)), encoding="utf-8")
    return 0


def _end(proc: subprocess.Popen) -> None:
    """SIGTERM the child, SIGKILL it if it has not gone after `KILL_GRACE_S`; its kernel follows it."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(KILL_GRACE_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def execute_notebook_bounded(notebook: Path, out: Path, run_dir: Path, params_file: Path, cwd: Path, *,
                             timeout: float, env: dict[str, str] | None = None,
                             pass_fds: tuple[int, ...] = ()) -> dict[str, Any]:
    """Execute `notebook` into `out`; `{"status": "ok" | "failed" | "timeout", "error": {ename, evalue} | None}`.

    `timeout` bounds the whole step (seconds); past it the child and its kernel are ended and the status is
    "timeout". The child's output is printed to our stderr, scrubbed, after it ends."""
    fd, result_path = tempfile.mkstemp(prefix="valuelex-step-", suffix=".json")
    os.close(fd)
    child_env = {**os.environ, **(env or {})}
    # the child and its kernel import this very package (a worktree or a checkout on sys.path beats the install)
    child_env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), child_env.get("PYTHONPATH", "")) if p)
    args = {"notebook": str(notebook), "out": str(out), "run_dir": str(run_dir), "params_file": str(params_file),
            "cwd": str(cwd), "result": result_path}
    log = tempfile.TemporaryFile()
    try:
        proc = subprocess.Popen([sys.executable, "-m", "valuelex_utils.stepexec", json.dumps(args)],
                                stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=child_env, pass_fds=pass_fds)
        started = time.monotonic()
        try:
            proc.wait(timeout)
            timed_out = False
        except subprocess.TimeoutExpired:
            timed_out = True
            _end(proc)
        except BaseException:  # Ctrl-C (the child got it too) or a kill of this process: do not leave it behind
            _end(proc)
            raise
        log.seek(0)
        said = log.read().decode("utf-8", "replace")
        if said.strip():
            sys.stderr.write(scrub(said if said.endswith("\n") else said + "\n"))
        if timed_out:
            return {"status": "timeout", "error": {
                "ename": "StepTimeout",
                "evalue": f"still running after {time.monotonic() - started:.0f} s (step_timeout: {timeout:g} s); "
                          "the notebook and its kernel were stopped"}}
        try:
            result = json.loads(Path(result_path).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            result = None
        if not isinstance(result, dict) or result.get("status") not in ("ok", "failed"):
            last = [ln for ln in said.splitlines() if ln.strip()][-1:] or [""]
            return {"status": "failed", "error": {"ename": "StepProcessDied",
                                                  "evalue": f"the notebook's process ended with code {proc.returncode}"
                                                            + (f": {scrub(last[0])[:300]}" if last[0] else "")}}
        return result
    finally:
        log.close()
        try:
            os.unlink(result_path)
        except OSError:
            pass


if __name__ == "__main__":
    sys.exit(_child(json.loads(sys.argv[1])))
