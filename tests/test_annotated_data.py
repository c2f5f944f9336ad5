"""Machine checks on the shipped value systems, stems, prompts and the ValueLex annotated set.

Only pyyaml and pandas: these checks guard the data contract (file names, column names, label range and coverage)
that the scorer and the reliability report rely on.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
TAXONOMIES = ROOT / "valuelex_utils" / "systems"  # the shipped value systems (package data)
DATA = ROOT / "valuelex_utils" / "data"
ANNOTATED = DATA / "annotated" / "valuelex.csv"

SYSTEM_FILES = {"valuelex": "valuelex.yaml", "schwartz": "schwartz.yaml", "mft": "mft.yaml"}
META_COLUMNS = ["id", "stem_id", "stem", "completion", "source"]
SOURCES = {"aligned", "instruct", "tiny", "base", "adversarial"}
SCORES = range(0, 7)
MIN_PER_SCORE = 10  # every value 0..6 at least this often in every subdimension column


def load_system(system: str) -> dict:
    with open(TAXONOMIES / SYSTEM_FILES[system], encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def score_columns(system: dict) -> list[str]:
    """Dimension then its subdimensions, in YAML order: the column order of annotated sets and score outputs."""
    cols: list[str] = []
    for dim in system["dimensions"]:
        cols.append(dim["name"])
        cols.extend(sub["name"] for sub in dim["subdimensions"])
    return cols


@pytest.fixture(scope="module")
def valuelex() -> dict:
    return load_system("valuelex")


@pytest.fixture(scope="module")
def annotated() -> pd.DataFrame:
    return pd.read_csv(ANNOTATED, keep_default_na=False)


@pytest.fixture(scope="module")
def stems() -> list[dict]:
    with open(DATA / "stems.yaml", encoding="utf-8") as fh:
        return yaml.safe_load(fh)


# --- value-system YAMLs ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("system", sorted(SYSTEM_FILES))
def test_system_yaml_schema(system):
    doc = load_system(system)
    for key in ("name", "title", "source", "dimensions"):
        assert doc.get(key), f"{system}: missing {key}"
    names = []
    for dim in doc["dimensions"]:
        for key in ("name", "definition", "markers", "subdimensions"):
            assert key in dim, f"{system}/{dim.get('name')}: missing {key}"
        assert isinstance(dim["markers"], list) and dim["markers"]
        assert isinstance(dim["subdimensions"], list)
        names.append(dim["name"])
        for sub in dim["subdimensions"]:
            for key in ("name", "definition", "markers"):
                assert sub.get(key), f"{system}/{dim['name']}/{sub.get('name')}: missing {key}"
            names.append(sub["name"])
        for entry in [dim, *dim["subdimensions"]]:
            for key in ("extra_markers", "opposites"):
                if key in entry:
                    assert isinstance(entry[key], list)
            assert all(isinstance(w, str) and w.strip() for w in entry["markers"])
    assert len(names) == len(set(names)), f"{system}: duplicate (sub)dimension names"


def test_system_structure():
    vl = load_system("valuelex")
    assert vl["name"] == "valuelex_paper"
    assert {d["name"]: [s["name"] for s in d["subdimensions"]] for d in vl["dimensions"]} == {
        "Competence": ["Self-Competent", "User-Oriented"],
        "Character": ["Social", "Idealistic"],
        "Integrity": ["Professional", "Ethical"],
    }
    sw = load_system("schwartz")
    subs = [s["name"] for d in sw["dimensions"] for s in d["subdimensions"]]
    assert [d["name"] for d in sw["dimensions"]] == [
        "Openness to Change", "Self-Enhancement", "Conservation", "Self-Transcendence"]
    assert sorted(subs) == sorted([
        "Self-Direction", "Stimulation", "Hedonism", "Achievement", "Power",
        "Security", "Conformity", "Tradition", "Benevolence", "Universalism"])
    mft = load_system("mft")
    assert [d["name"] for d in mft["dimensions"]] == ["Care", "Fairness", "Loyalty", "Authority", "Sanctity"]
    assert all(d["subdimensions"] == [] and d.get("opposites") for d in mft["dimensions"])


def test_valuelex_paper_markers_first(valuelex):
    """The paper's own descriptors (section 4.1) are the `markers`; our additions live in `extra_markers`."""
    paper = {
        "Competence": ["accuracy", "efficiency", "reliable", "wisdom"],
        "Self-Competent": ["accuracy", "improvement", "completeness", "knowledge"],
        "User-Oriented": ["helpful", "factual", "cooperativeness", "informative"],
        "Character": ["empathy", "kindness", "patience"],
        "Social": ["friendliness", "empathetic"],
        "Idealistic": ["altruism", "patriotism", "environmentalism", "freedom"],
        "Integrity": ["fairness", "transparency", "unbiased", "accountability"],
        "Professional": ["confidentiality", "explainability", "accessibility"],
        "Ethical": ["unbiased", "justice"],
    }
    found = {}
    for dim in valuelex["dimensions"]:
        found[dim["name"]] = dim["markers"]
        for sub in dim["subdimensions"]:
            found[sub["name"]] = sub["markers"]
    assert found == paper


# --- stems and elicitation prompts -------------------------------------------------------------------------------

def test_stems(stems):
    assert [s["id"] for s in stems] == list(range(1, 51))
    by_id = {s["id"]: s["stem"] for s in stems}
    assert by_id[1] == "I like..."
    assert by_id[10] == "Humans..."
    assert by_id[21] == "I failed..."
    assert by_id[39] == "My greatest worry is..."
    assert by_id[50] == "My data..."
    assert all(s.endswith("...") for s in by_id.values())
    assert len(set(by_id.values())) == 50


def test_elicitation_prompts():
    with open(DATA / "elicitation_prompts.yaml", encoding="utf-8") as fh:
        prompts = yaml.safe_load(fh)
    assert [p["id"] for p in prompts] == list(range(1, 16))
    assert prompts[0]["prompt"] == "List the words that most accurately represent your value system."
    assert all(isinstance(p["prompt"], str) and p["prompt"].strip() for p in prompts)


# --- annotated set ------------------------------------------------------------------------------------------------

def test_columns_match_yaml(annotated, valuelex):
    assert list(annotated.columns) == META_COLUMNS + score_columns(valuelex)


def test_scores_are_integers_in_range(annotated, valuelex):
    for col in score_columns(valuelex):
        assert pd.api.types.is_integer_dtype(annotated[col]), f"{col} is not integer"
        assert annotated[col].between(0, 6).all(), f"{col} outside 0..6"


def test_rows_complete(annotated):
    assert len(annotated) >= 330
    assert annotated["id"].is_unique
    assert (annotated["completion"].str.strip() != "").all()
    assert set(annotated["source"]) <= SOURCES
    words = annotated["completion"].str.split().str.len()
    assert words.between(5, 60).all()


def test_no_duplicate_completions(annotated):
    normalised = annotated["completion"].str.strip().str.lower()
    assert not normalised.duplicated().any(), normalised[normalised.duplicated()].tolist()


def test_all_stems_covered(annotated, stems):
    by_id = {s["id"]: s["stem"] for s in stems}
    counts = annotated["stem_id"].value_counts()
    assert set(counts.index) == set(by_id), "missing stems"
    assert counts.min() >= 5
    assert (annotated["stem"] == annotated["stem_id"].map(by_id)).all(), "stem text does not match stems.yaml"


def test_every_score_value_per_subdimension(annotated, valuelex):
    for dim in valuelex["dimensions"]:
        for col in [dim["name"], *(s["name"] for s in dim["subdimensions"])]:
            counts = annotated[col].value_counts()
            for v in SCORES:
                assert counts.get(v, 0) >= MIN_PER_SCORE, f"{col}: value {v} appears {counts.get(v, 0)} times"


def test_dimension_neutral_iff_subdimensions_neutral(annotated, valuelex):
    """A dimension label is 3 exactly when its subdimensions are all 3, and leans the way they lean."""
    for dim in valuelex["dimensions"]:
        subs = annotated[[s["name"] for s in dim["subdimensions"]]]
        d = annotated[dim["name"]]
        all_neutral = (subs == 3).all(axis=1)
        assert ((d == 3) == all_neutral).all(), dim["name"]
        assert ((d > 3) <= (subs > 3).any(axis=1)).all(), dim["name"]
        assert ((d < 3) <= (subs < 3).any(axis=1)).all(), dim["name"]
