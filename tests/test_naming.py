"""Naming dimensions and subdimensions: the medoid fallback, the few-shot LLM namer with a fake `call`, robust parsing,
unique names, and the real LiteLLM path through the run's store (embedded SmolLM2, cached on rerun)."""
from __future__ import annotations

import asyncio
import json

import numpy as np
import pytest

from valuelex_utils.errors import UserError
from valuelex_utils.taxonomy.clusters import cluster_factors
from valuelex_utils.taxonomy.naming import (
    ClusterSpec,
    build_messages,
    clean_name,
    fallback_name,
    litellm_caller,
    name_clusters,
    namer_from_params,
    parse_name,
)
from valuelex_utils.llm.store import ResponseStore


def star_embed(center: str, others: list[str]):
    """Fake embeddings: `center` along e0, the others spread around it on a cone, so `center` is the cosine medoid."""
    def embed(words):
        out = []
        for w in words:
            v = np.zeros(16)
            v[0] = 1.0
            if w != center:
                i = others.index(w) if w in others else len(w) % 14
                v[1 + (i % 15)] = 0.9 if i % 2 else -0.9
            out.append(v / np.linalg.norm(v))
        return np.array(out)

    return embed


SPECS = [
    ClusterSpec(0, ["accuracy", "precision", "helpful", "informative"],
                [["accuracy", "precision"], ["helpful", "informative"]]),
    ClusterSpec(1, ["fairness", "justice", "equality"], []),
]


def test_fallback_name_is_the_medoid_word():
    others = ["empathy", "warmth", "compassion"]
    cl = cluster_factors({w: 0 for w in ["kindness", *others]}, embed_fn=star_embed("kindness", others))
    assert cl.medoid(0) == "kindness"
    naming = name_clusters(cl.specs(), call=None)
    node = naming.get(0)
    assert node.name == "Kindness" and node.method == "medoid" and node.medoid == "kindness"
    assert "kindness" in node.definition and naming.method == "medoid" and naming.model is None
    assert fallback_name(["user-friendly", "clear"])[0] == "User-friendly"
    with pytest.raises(UserError):
        name_clusters([])


def test_fallback_names_stay_unique_when_a_dimension_and_its_subdimension_share_a_medoid():
    naming = name_clusters(SPECS)
    names = [n.name for n in naming.nodes]
    assert names[0] == "Accuracy" and names[1] == "Precision" and names[2] == "Helpful" and names[3] == "Fairness"
    assert len({n.lower() for n in names}) == len(names)
    assert "already names" in naming.get(0, 0).note


def test_llm_namer_parses_json_and_records_method():
    seen = []
    answers = iter([
        '```json\n{"name": "Competence", "definition": "Delivering accurate, useful answers."}\n```',
        'Sure! Here it is: {"Name": "Integrity", "Definition": "Being fair and just."} Hope this helps.',
        "{'name': 'Self-Competent', 'definition': 'Getting things right.'}",
        'Name: User-Oriented\nDefinition: Being useful to the people it serves.',
    ])

    def call(messages):
        seen.append(messages)
        return next(answers)

    naming = name_clusters(SPECS, call, model="fake/model")
    assert [(n.level, n.name, n.method) for n in naming.nodes] == [
        ("dimension", "Competence", "llm"), ("subdimension", "Self-Competent", "llm"),
        ("subdimension", "User-Oriented", "llm"), ("dimension", "Integrity", "llm")]
    assert naming.method == "llm" and naming.model == "fake/model"
    assert naming.get(1).definition == "Being fair and just." and naming.get(0).raw.startswith("```json")
    # few-shot: the paper's own names are the worked examples; the cluster's words and the parent's name are asked
    first = seen[0]
    assert first[0]["role"] == "system" and "JSON" in first[0]["content"]
    shots = [json.loads(m["content"])["name"] for m in first if m["role"] == "assistant"]
    assert shots[0] == "Competence" and {"Social", "Professional"} <= set(shots)
    assert "accuracy, precision, helpful, informative" in first[-1]["content"]
    sub = seen[2]
    assert 'dimension "Competence"' in sub[-1]["content"] and "helpful, informative" in sub[-1]["content"]
    table = naming.table()
    assert list(table["method"]) == ["llm"] * 4 and table["model"].eq("fake/model").all()


def test_unparseable_or_failing_answers_fall_back_and_say_why():
    answers = {"accuracy": "I am not sure what you mean.", "fairness": '{"name": "Fair Play", "definition": ""}'}

    class Batch:
        model = "fake/batch"

        def __init__(self):
            self.calls = 0

        def batch(self, many):
            self.calls += 1
            if self.calls == 2:
                raise RuntimeError("server went away")
            return [next(v for k, v in answers.items() if k in m[-1]["content"].split("first): ")[1][:12])
                    for m in many]

    naming = name_clusters(SPECS, Batch())
    d0, d1 = naming.get(0), naming.get(1)
    assert d0.method == "medoid" and d0.name == "Accuracy" and "unparseable" in d0.note and d0.model == "fake/batch"
    assert d1.method == "llm" and d1.name == "Fair Play" and "fallback definition" in d1.note
    assert naming.get(0, 1).method == "medoid" and "server went away" in naming.get(0, 1).note
    assert naming.method == "llm+medoid"


def test_llm_names_are_made_unique_and_never_reserved():
    naming = name_clusters(SPECS, lambda m: '{"name": "Source", "definition": "Where answers come from."}')
    names = [n.name for n in naming.nodes]
    assert "Source" not in names and names[0] == "Source (accuracy)"
    assert len({n.lower() for n in names}) == 4


@pytest.mark.parametrize("text,name", [
    ('{"name": "Competence", "definition": "x y z w"}', "Competence"),
    ('[{"label": "care"}]', "Care"),
    ('**Name:** "Social Harmony",', "Social Harmony"),
    ("The answer is {\"title\": \"Ethics\"}", "Ethics"),
    ('{"name": "Knowledge", "definition": "Knowledge-based: helpful, helpful, helpful, hel', "Knowledge"),
    ("no json here", None),
    ('{"name": "A very long name that is really a whole sentence about values"}', None),
    ('{"name": "accuracy, precision"}', None),
    ("", None),
])
def test_parse_name_variants(text, name):
    parsed = parse_name(text)
    assert (parsed["name"] if parsed else None) == name


def test_truncated_json_keeps_the_name_but_not_an_unfinished_definition():
    parsed = parse_name('{"name": "Knowledge", "definition": "Knowledge-based: helpful, helpful, hel')
    assert parsed == {"name": "Knowledge", "definition": None}


def test_clean_name_rules():
    assert clean_name('  "user-oriented." ') == "User-oriented"
    assert clean_name("a\nb") is None and clean_name(None) is None and clean_name("42") is None
    assert clean_name("**Care**") == "Care"


@pytest.mark.slow  # loads the embedded SmolLM2 (about 5 s idle, 30 s on a loaded 2-core machine)
def test_litellm_caller_names_through_the_store_and_serves_reruns_from_it(tmp_path):
    store = tmp_path / "naming.jsonl"
    msgs = build_messages("dimension", ["accuracy", "precision", "correctness"])

    async def inside_a_running_loop():  # as in Jupyter: asyncio.run would refuse, the caller uses a worker thread
        caller = litellm_caller("local/smollm2-135m-instruct", store, params={"max_tokens": 8})
        return caller(msgs), caller

    text, caller = asyncio.run(inside_a_running_loop())
    assert isinstance(text, str) and text.strip()
    assert caller.tally.of("local/smollm2-135m-instruct").calls == 1
    again = litellm_caller("local/smollm2-135m-instruct", ResponseStore(store), params={"max_tokens": 8})
    assert again(msgs) == text and again.tally.of("local/smollm2-135m-instruct").cached == 1
    naming = name_clusters([ClusterSpec(0, ["accuracy", "precision", "correctness"])], again)
    assert naming.get(0).model == "local/smollm2-135m-instruct" and naming.get(0).method in ("llm", "medoid")
    with pytest.raises(UserError, match="local/nope"):
        litellm_caller("local/nope", store)


def test_namer_from_params_uses_the_runs_store(tmp_path):
    from valuelex_utils.params import load_params
    from valuelex_utils.systems import REPO_ROOT

    params = load_params(REPO_ROOT / "params" / "smoke.yaml")
    assert params.taxonomy.namer is None and namer_from_params(params, tmp_path) is None
    params.taxonomy.namer = "local/smollm2-135m-instruct"
    caller = namer_from_params(params, tmp_path)
    assert caller.model == "local/smollm2-135m-instruct" and caller.store.path == tmp_path / "responses.jsonl"
    assert caller.params["seed"] == params.seed and caller.params["temperature"] == 0.0
