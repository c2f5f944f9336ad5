"""Append-only raw response store (`responses.jsonl`, `completions.jsonl`).

Every LLM answer is raw data that cost time and money: it is written, flushed, and only then parsed. A rerun reads the
store and calls only for the keys it lacks; a run killed at any moment (even SIGKILL mid-write) resumes with nothing lost
and nothing duplicated, because (1) a record reaches the OS in a single `write` before anyone uses it, (2) a torn last
line is ignored on load and fenced off with a newline before the next append, and (3) a key is looked up before it is
requested again.

A damaged store is reported, never silently used: a line that is not a record (garbage, or a torn write fenced off
by a later append), a record whose response has no answer in it (`"response": "oops"`, `choices: null`, `{}`, an
empty content), and a key answered twice with different texts are kept out of the answers (`get`) and counted, with
their line numbers, in `health()`, which the run prints and records in its manifest. A key answered twice with
different texts is not asked a third time: which answer is right is for a person to decide (delete one line).
"""
from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Mapping

from ..scrub import scrub

try:
    import fcntl
except ImportError:  # not POSIX
    fcntl = None  # type: ignore[assignment]

KEY_PARAMS = ("temperature", "top_p", "max_tokens", "seed", "stop")


def _parse_line(raw: bytes) -> dict[str, Any] | None:
    """A stored record, or None for a line that is not one (blank, or torn by a kill mid-write: the request is
    simply asked again)."""
    try:
        record = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    return record if isinstance(record, dict) and "key" in record else None


def answer_text(response: Any) -> str | None:
    """The answer in a stored response (chat `choices[0].message.content`, or `choices[0].text` of a completion
    endpoint), or None when there is none: a response of the wrong shape, or an empty, null or missing content."""
    if not isinstance(response, dict):
        return None
    choices = response.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        return None
    choice = choices[0]
    message = choice.get("message")
    text = message.get("content") if isinstance(message, dict) else None
    if not isinstance(text, str) or not text.strip():
        text = choice.get("text")
    return text if isinstance(text, str) and text.strip() else None


def request_key(model: str, messages: Any, params: Mapping[str, Any], sample: int) -> str:
    """Hash what determines an answer: model, messages (or prompt), decoding params and the sample index.

    The sample index is part of the key so that M samples of one request are M distinct answers, not one cached answer
    returned M times. Only decoding params are hashed: the endpoint (api_base) is where an answer came from, not what
    was asked, so moving a model to another server keeps its cache.
    """
    decoding = {k: params[k] for k in sorted(params) if k in KEY_PARAMS and params[k] is not None}
    blob = json.dumps([model, messages, decoding, int(sample)], sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:32]


class ResponseStore:
    """A JSONL file of raw request/response records, keyed by `request_key`.

    Safe for several writers: a file lock serialises appends across processes and a thread lock within one. Records
    with an `error` and no `response` are kept (they are the raw history) but do not count as answered, so a rerun
    retries them.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock_path = str(self.path) + ".lock"
        self._tlock = threading.Lock()
        self._answered: dict[str, dict[str, Any]] = {}
        self.torn_lines = 0
        self.reload()

    def _reset_health(self) -> None:
        self.torn_lines = 0  # lines that are not a record (the torn last line included)
        self._lines = 0
        self.unreadable: list[int] = []  # line numbers (1-based) of lines that are not a record
        self.wrong_shape: list[int] = []  # records whose response holds no answer
        self.duplicates = 0  # a key answered again with the same text (harmless; the first is used)
        self.conflicts: dict[str, list[int]] = {}  # key -> lines of its answers, when their texts differ
        self._answer_line: dict[str, int] = {}

    # -- reading ---------------------------------------------------------------------------------------------------
    def reload(self) -> None:
        """Read the file again from the start (another process may have appended)."""
        self._answered = {}
        self._reset_health()
        self._size_seen = 0
        self._catch_up()
        if self.path.exists() and self.path.stat().st_size > self._size_seen:
            self.torn_lines += 1  # a last line without its newline: cut by a kill, or still being written

    def health(self) -> dict[str, Any]:
        """What the file holds and what of it is damaged (line numbers 1-based; a torn last line is not counted
        as damage: it is what a kill mid-write leaves, and the request is simply asked again)."""
        torn_last = self.path.exists() and self.path.stat().st_size > self._size_seen
        return {"file": self.path.name, "lines": self._lines + int(torn_last), "answered": len(self._answered),
                "unreadable_lines": list(self.unreadable), "wrong_shape_lines": list(self.wrong_shape),
                "conflicting_keys": {k: list(v) for k, v in self.conflicts.items()},
                "duplicate_answers": self.duplicates, "torn_last_line": bool(torn_last)}

    def damage_summary(self) -> str | None:
        """One line saying how many lines are damaged and which, or None for a sound store."""
        h = self.health()
        parts = []
        if h["unreadable_lines"]:
            parts.append(f"{len(h['unreadable_lines'])} unreadable (lines {_lines(h['unreadable_lines'])})")
        if h["wrong_shape_lines"]:
            parts.append(f"{len(h['wrong_shape_lines'])} without an answer in the response "
                         f"(lines {_lines(h['wrong_shape_lines'])})")
        if h["conflicting_keys"]:
            lines = sorted(n for v in h["conflicting_keys"].values() for n in v)
            n_keys = len(h["conflicting_keys"])
            parts.append(f"{n_keys} key{'s' if n_keys != 1 else ''} answered twice with different texts "
                         f"(lines {_lines(lines)})")
        if not parts:
            return None
        n = len(h["unreadable_lines"]) + len(h["wrong_shape_lines"]) + sum(map(len, h["conflicting_keys"].values()))
        return f"{self.path.name}: {n} damaged lines kept out of the analysis: " + "; ".join(parts)

    def conflicted(self, key: str) -> list[int] | None:
        """The lines of a key answered twice with different texts, or None."""
        return self.conflicts.get(key)

    def _iter_file(self) -> Iterator[dict[str, Any]]:
        if not self.path.exists():
            return
        with open(self.path, "rb") as fh:
            for raw in fh:
                record = _parse_line(raw)
                if record is not None:
                    yield record

    def records(self) -> list[dict[str, Any]]:
        """All well-formed records in file order, errors included."""
        return list(self._iter_file())

    def get(self, key: str) -> dict[str, Any] | None:
        """The first answered record for `key`, or None."""
        return self._answered.get(key)

    def __contains__(self, key: object) -> bool:
        return key in self._answered

    def __len__(self) -> int:
        return len(self._answered)

    def keys(self) -> set[str]:
        return set(self._answered)

    # -- writing ---------------------------------------------------------------------------------------------------
    def put(self, record: dict[str, Any]) -> dict[str, Any]:
        """Append one record (must carry `key`) and flush it to the OS before returning.

        Returns the stored record (with `time` filled in). If another writer answered the key first, its record wins
        and is returned, so the file never holds two answers for one key.
        """
        if "key" not in record:
            raise ValueError("a store record needs a 'key'")
        record = {"time": time.time(), **record}
        text = json.dumps(record, ensure_ascii=False, default=str)
        clean = scrub(text)  # a provider may echo the key in an error body, or a model repeat it
        if clean != text:
            record = json.loads(clean)
        line = (clean + "\n").encode("utf-8")
        with self._tlock, self._locked():
            self._catch_up()
            if record.get("response") is not None and record["key"] in self._answered:
                return self._answered[record["key"]]
            fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                if self._ends_torn(fd):
                    line = b"\n" + line
                    self._lines += 1
                    self.torn_lines += 1
                    self.unreadable.append(self._lines)
                os.write(fd, line)
            finally:
                os.close(fd)
            self._size_seen = self.path.stat().st_size
            self._lines += 1
            self._take(record, line)
        return record

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """Hold the store's lock file exclusively (across processes).

        Why not `filelock.FileLock`: it polls (sleeps 50 ms) while another process holds the lock, and a put runs on
        the event loop, so with several worker processes appending (`shards`) every collision froze a worker's calls
        for 50 ms. `flock` waits in the kernel and wakes the moment the holder (an append of a few hundred bytes)
        lets go."""
        if fcntl is None:
            from filelock import FileLock

            with FileLock(self._lock_path, poll_interval=0.001):
                yield
            return
        fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing the descriptor releases the lock

    def _ends_torn(self, fd: int) -> bool:
        size = os.fstat(fd).st_size
        if size == 0:
            return False
        return os.pread(fd, 1, size - 1) != b"\n"

    def refresh(self) -> None:
        """Take in what other processes appended since we last looked."""
        with self._tlock:
            self._catch_up()

    def _catch_up(self) -> None:
        """Read only the whole lines appended since we last looked (cheap when nothing changed; a line still being
        written is left for next time)."""
        size = self.path.stat().st_size if self.path.exists() else 0
        if size == self._size_seen:
            return
        if size < self._size_seen:  # replaced underneath us
            self.reload()
            return
        with open(self.path, "rb") as fh:
            fh.seek(self._size_seen)
            chunk = fh.read(size - self._size_seen)
        end = chunk.rfind(b"\n")
        if end < 0:
            return
        for raw in chunk[: end + 1].split(b"\n")[:-1]:
            self._lines += 1
            self._take(_parse_line(raw), raw)
        self._size_seen += end + 1

    def _take(self, record: dict[str, Any] | None, raw: bytes) -> None:
        """Classify one line read from the file (see the module docstring)."""
        if record is None:
            if raw.strip():
                self.torn_lines += 1
                self.unreadable.append(self._lines)
            return
        if record.get("response") is None:
            return  # a failed attempt: history, not an answer
        key = record["key"]
        text = answer_text(record["response"])
        if text is None:
            self.wrong_shape.append(self._lines)
            return
        if key in self.conflicts:
            self.conflicts[key].append(self._lines)
            return
        first = self._answered.get(key)
        if first is None:
            self._answered[key] = record
            self._answer_line[key] = self._lines
        elif answer_text(first["response"]) == text:
            self.duplicates += 1
        else:
            self.conflicts[key] = [self._answer_line[key], self._lines]
            del self._answered[key]


def _lines(numbers: list[int], limit: int = 10) -> str:
    shown = ", ".join(str(n) for n in numbers[:limit])
    return shown + (f" and {len(numbers) - limit} more" if len(numbers) > limit else "")
