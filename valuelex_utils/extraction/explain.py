"""`explain(text)`: for one answer, every candidate word, kept or dropped, with the name of the rule that decided.

Candidates are the words the rules weighed: list and enumeration heads, skills, the value-lexicon words of prose
clauses, of dropped lines and of heads that came to nothing. A word kept anywhere in the answer is kept (its rule: the
one that kept it where it first entered the descriptors); a word never kept shows the first rule that dropped it.
Quantities and techniques ('2 eggs', 'machine learning') have no word and are not listed."""
from __future__ import annotations

from .descriptors import extract_descriptors
from .trace import Decision, recording


def explain(text: str) -> list[Decision]:
    """The kept words in the order of `extract_descriptors(text)` (exactly its output), then the dropped ones in the
    order they were first weighed."""
    with recording() as record:
        kept = extract_descriptors(text)
    first_emitted: dict[str, tuple[int, str]] = {}
    for line, decision in record.emitted:
        if decision.word not in first_emitted or line < first_emitted[decision.word][0]:
            first_emitted[decision.word] = (line, decision.rule)
    decisions = [Decision(word, True, first_emitted.get(word, (0, "unrecorded"))[1]) for word in kept]
    dropped: dict[str, str] = {}
    for note in record.notes:
        if note.word not in kept and note.word not in dropped:
            dropped[note.word] = note.rule if not note.kept else f"dropped after '{note.rule}'"
    for note in record.notes:  # a word first weighed as kept, later dropped: the rule that dropped it
        if not note.kept and dropped.get(note.word, "").startswith("dropped after"):
            dropped[note.word] = note.rule
    return decisions + [Decision(word, False, rule) for word, rule in dropped.items()]
