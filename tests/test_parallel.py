"""Work over processes gives what the plain loop gives, and stays in this process when a pool would not pay."""
from __future__ import annotations

import functools
import sys

import pandas as pd

from valuelex_utils import lexicon, parallel
from valuelex_utils.extraction import extract_descriptors

ANSWERS = ["1. Honesty\n2. Kindness - being kind to others\n3. Curiosity", "I value fairness, loyalty and courage.",
           "As an AI, I don't have personal values.", "- **Integrity**: doing right\n- Respect", "", "Empathy."]


def test_process_map_equals_the_loop_in_order():
    texts = ANSWERS * 5
    assert parallel.process_map(extract_descriptors, texts, min_items=1, jobs=2) == [extract_descriptors(t)
                                                                                    for t in texts]


def test_short_lists_and_lambdas_stay_in_this_process():
    calls: list[str] = []
    record = lambda t: calls.append(t) or len(t)  # a lambda cannot be pickled: the loop runs here
    assert parallel.process_map(record, ANSWERS, min_items=1, jobs=2) == [len(t) for t in ANSWERS]
    assert calls == ANSWERS
    calls.clear()
    assert parallel.process_map(record, ANSWERS, jobs=2) == [len(t) for t in ANSWERS]  # under min_items
    assert calls == ANSWERS


def test_descriptor_table_is_the_same_read_in_two_processes(monkeypatch):
    answers = pd.DataFrame({"respondent": [f"r{i % 4}" for i in range(24)], "key": [f"k{i}" for i in range(24)],
                            "text": (ANSWERS + [None]) * 3 + ANSWERS[:3]})
    here = lexicon.descriptor_table(answers, extract_descriptors)
    monkeypatch.setattr(lexicon, "process_map", functools.partial(parallel.process_map, min_items=1, jobs=2))
    pd.testing.assert_frame_equal(lexicon.descriptor_table(answers, extract_descriptors), here)
    assert len(here) > 10 and set(here.columns) == {"respondent", "key", "position", "word"}


def test_a_function_of_a_notebook_stays_in_this_process(monkeypatch):
    """A function defined in a notebook cell pickles by reference to `__main__` (the kernel's namespace), which a
    spawned process cannot import: it must run here, not fail in the child."""
    def extract_upper(text: str) -> str:
        return text.upper()

    extract_upper.__module__ = "__main__"
    extract_upper.__qualname__ = "extract_upper"
    monkeypatch.setattr(sys.modules["__main__"], "extract_upper", extract_upper, raising=False)
    assert parallel.process_map(extract_upper, ANSWERS, min_items=1, jobs=2) == [t.upper() for t in ANSWERS]
