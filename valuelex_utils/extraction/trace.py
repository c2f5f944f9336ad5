"""Recording which rule kept or dropped each candidate word, for `explain`.

Why a context variable: the rules stay plain functions that return words; where one decides about a word it calls
`note`, which does nothing unless `explain` is recording (so `extract_descriptors` pays one lookup per decision).
`emit` marks the words one line of the answer gives to the output; the rule behind each is the last rule that kept
it since the previous `emit` (a later filter that drops a word records its own decision)."""
from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Decision:
    """One candidate word of an answer: kept in the descriptors or dropped, and the name of the rule that decided."""

    word: str
    kept: bool
    rule: str


@dataclass
class Recording:
    """Every decision in order (`notes`), the words given to the output with their line and rule (`emitted`), and
    the decisions since the last `emit` (`pending`)."""

    notes: list[Decision] = field(default_factory=list)
    emitted: list[tuple[int, Decision]] = field(default_factory=list)
    pending: list[Decision] = field(default_factory=list)


_ACTIVE: ContextVar[Recording | None] = ContextVar("valuelex_extraction_trace", default=None)


def recording_active() -> bool:
    """True while `explain` records (callers skip building rule names otherwise)."""
    return _ACTIVE.get() is not None


def note(word: str, kept: bool, rule: str) -> None:
    """A rule kept or dropped `word` (no effect unless recording)."""
    active = _ACTIVE.get()
    if active is not None:
        decision = Decision(word, kept, rule)
        active.notes.append(decision)
        active.pending.append(decision)


def note_all(words: Iterable[str], kept: bool, rule: str) -> None:
    """`note` for several words."""
    if _ACTIVE.get() is not None:
        for word in words:
            note(word, kept, rule)


def emit(words_by_line: Mapping[int, Iterable[str]]) -> None:
    """The words lines give to the output ({line index: words}): each gets the last rule that kept it since the
    previous `emit`."""
    active = _ACTIVE.get()
    if active is None:
        return
    for line, words in words_by_line.items():
        for word in words:
            rule = next((d.rule for d in reversed(active.pending) if d.kept and d.word == word), "unrecorded")
            active.emitted.append((line, Decision(word, True, rule)))
    active.pending.clear()


@contextmanager
def recording() -> Iterator[Recording]:
    """Record every decision made inside the block."""
    token = _ACTIVE.set(Recording())
    try:
        yield _ACTIVE.get()  # type: ignore[misc]
    finally:
        _ACTIVE.reset(token)


@contextmanager
def quiet() -> Iterator[None]:
    """Record nothing inside the block: a rule that only tests a reading ('is this a labelled enumeration?')."""
    token = _ACTIVE.set(None)
    try:
        yield
    finally:
        _ACTIVE.reset(token)
