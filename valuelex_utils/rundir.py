"""The run dir layout: one module owns every path a run reads or writes (DESIGN.md, "Data flow and run dir").

Data flows one way, 01 -> 07, through these files; no notebook reaches into another's variables.
"""
from __future__ import annotations

import json
import os
import socket
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from .atomic import atomic_path  # noqa: F401 - re-exported: steps write their products through rundir
from .errors import UserError
from .scrub import atomic_write_text  # noqa: F401 - re-exported, idem

try:
    import fcntl
except ImportError:  # not POSIX: no run-dir lock
    fcntl = None  # type: ignore[assignment]

REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class RunDir:
    root: Path

    @classmethod
    def at(cls, path: str | Path) -> "RunDir":
        root = Path(path).expanduser().resolve()
        root.mkdir(parents=True, exist_ok=True)
        return cls(root)

    def __truediv__(self, name: str) -> Path:
        return self.root / name

    # raw data (append-only)
    @property
    def responses(self) -> Path:
        return self.root / "responses.jsonl"

    @property
    def completions_raw(self) -> Path:
        return self.root / "completions.jsonl"

    @property
    def calls(self) -> Path:
        return self.root / "calls.jsonl"

    # step products
    elicitation = property(lambda self: self.root / "elicitation.parquet")
    descriptors = property(lambda self: self.root / "descriptors.parquet")
    lexicon = property(lambda self: self.root / "lexicon.csv")
    matrix = property(lambda self: self.root / "matrix.csv")
    factors_dir = property(lambda self: self.root)
    factors_json = property(lambda self: self.root / "factors.json")
    loadings = property(lambda self: self.root / "loadings.csv")
    taxonomy = property(lambda self: self.root / "taxonomy.yaml")
    clusters = property(lambda self: self.root / "clusters.csv")
    completions = property(lambda self: self.root / "completions.parquet")
    scores = property(lambda self: self.root / "scores.parquet")
    profiles = property(lambda self: self.root / "value_profiles.csv")
    reliability = property(lambda self: self.root / "reliability.json")
    comparison = property(lambda self: self.root / "comparison.csv")
    manifest = property(lambda self: self.root / "manifest.json")
    params_copy = property(lambda self: self.root / "params.yaml")
    notebooks = property(lambda self: self.root / "notebooks")
    report = property(lambda self: self.root / "report")
    figures = property(lambda self: self.root / "figures")

    def require(self, path: Path, step: str) -> Path:
        """A product of an earlier step, or a clear error naming the step that makes it."""
        if not path.exists():
            raise UserError(f"{path} is missing: run step {step} first (valuelex run --steps {step})")
        return path


OUTPUTS = REPO_ROOT / "outputs"
LOCK_NAME = ".valuelex-run.lock"


def default_run_dir(run_name: str) -> Path:
    """`outputs/<run_name>`. `run_name` is already one plain folder name: `Params` refuses anything else at load
    (`params._plain_run_name`), so the default run dir never leaves `outputs/`."""
    return OUTPUTS / run_name


def _lock_holder(fd: int) -> str:
    try:
        info = json.loads(os.pread(fd, 4096, 0).decode("utf-8") or "{}")
    except (OSError, ValueError, UnicodeDecodeError):
        info = {}
    since = info.get("since")
    when = time.strftime(", since %Y-%m-%d %H:%M:%S", time.localtime(since)) if isinstance(since, (int, float)) else ""
    return f"pid {info.get('pid', '?')} on host {info.get('host', '?')}{when}"


def _busy(root: Path, holder: str) -> Exception:
    return UserError(f"run dir {root} is in use by another valuelex run ({holder}); wait for it to finish or "
                     "choose another --run-dir")


def refuse_if_busy(root: Path) -> None:
    """The "in use" error when another run holds the run dir's lock; creates nothing (a probe before any write)."""
    if fcntl is None:
        return
    try:
        fd = os.open(root / LOCK_NAME, os.O_RDONLY)
    except OSError:
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        fcntl.flock(fd, fcntl.LOCK_UN)
    except BlockingIOError:
        raise _busy(root, _lock_holder(fd)) from None
    finally:
        os.close(fd)


@contextmanager
def run_dir_lock(root: Path) -> Iterator[int]:
    """Hold the run dir exclusively while a `valuelex run` works in it; yields the lock's descriptor.

    A second run on the same run dir is one line naming the holder (pid and host), exit code 2, before it writes
    anything. `flock` belongs to the open file: the kernel drops it the moment every process holding it is gone, so
    the lock of a killed run never blocks the next (the file, with the dead holder's pid, stays and is simply
    locked again). Pass the descriptor to a child that works in the run dir (`pass_fds`) and the lock lives as
    long as that child does too, even if this process is killed."""
    root.mkdir(parents=True, exist_ok=True)
    fd = os.open(root / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = _lock_holder(fd)
        os.close(fd)
        raise _busy(root, holder) from None
    except BaseException:
        os.close(fd)
        raise
    try:
        info = json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "since": time.time()}).encode()
        os.ftruncate(fd, 0)
        os.pwrite(fd, info, 0)
        yield fd
    finally:
        os.close(fd)
