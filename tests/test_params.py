"""Params are validated on load: one clear line naming the field, never a traceback."""
import pytest

from valuelex_utils.errors import UserError
from valuelex_utils.params import load_params
from valuelex_utils.rundir import REPO_ROOT

GOOD = """
run_name: t
respondents:
  - model: local/smollm2-135m-instruct
    training: aligned
    configs: [{temperature: 0.7, top_p: 0.9}]
"""


def _load(tmp_path, text):
    p = tmp_path / "p.yaml"
    p.write_text(text)
    return load_params(p)


@pytest.mark.parametrize("name", ["default.yaml", "smoke.yaml", "paper_models.yaml"])
def test_shipped_params_load(name):
    params = load_params(REPO_ROOT / "params" / name)
    assert params.respondents


def test_good_params_load(tmp_path):
    assert _load(tmp_path, GOOD).respondents[0].label == "smollm2-135m-instruct"


@pytest.mark.parametrize("text, words", [
    (GOOD + "samplez: 3\n", ["unknown key", "samplez"]),
    (GOOD.replace("training: aligned", "training: alligned"), ["respondents.0.training"]),
    (GOOD.replace("temperature: 0.7", "temperature: hot"), ["temperature"]),
    (GOOD.replace("top_p: 0.9", "top_p: 1.5"), ["top_p"]),
    ("run_name: t\nrespondents: []\n", ["respondents"]),
    ("run_name: t\n", ["missing", "respondents"]),
    (GOOD.replace("local/smollm2-135m-instruct", "smollm2"), ["provider prefix"]),
    ("respondents: [\n", ["YAML syntax error", "line"]),
    ("- a\n- b\n", ["mapping"]),
    (GOOD + "elicitation: {samples: 0}\n", ["elicitation.samples"]),
    (GOOD + "factors: {rotation: quartimax}\n", ["factors.rotation"]),
    (GOOD + "scoring: {systems: [run, hofstede]}\n", ["scoring.systems", "hofstede", "run, valuelex"]),
    (GOOD + "scoring: {system: hofstede}\n", ["scoring.systems", "hofstede"]),
    (GOOD + "scoring: {systems: []}\n", ["scoring.systems"]),
    (GOOD + "scoring: {systems: [run, valuelex, run]}\n", ["scoring.systems", "twice", "run"]),
    (GOOD + "scoring: {system: mft, systems: [run]}\n", ["scoring", "either"]),
    (GOOD + "scoring: {systems: valuelex}\n", ["scoring.systems", "list"]),
])
def test_bad_params_give_one_line_naming_the_field(tmp_path, text, words):
    with pytest.raises(UserError) as err:
        _load(tmp_path, text)
    msg = str(err.value)
    assert "\n" not in msg
    for w in words:
        assert w in msg


def test_missing_and_non_utf8_files(tmp_path):
    with pytest.raises(UserError, match="not found"):
        load_params(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_bytes(b"run_name: \xff\xfe\n")
    with pytest.raises(UserError, match="UTF-8"):
        load_params(bad)


def test_duplicate_respondent_names_are_refused(tmp_path):
    text = GOOD + "  - model: local/smollm2-135m-instruct\n    training: aligned\n"
    with pytest.raises(UserError, match="unique"):
        _load(tmp_path, text)


def test_factor_params_map_to_fit_factors_keywords():
    from valuelex_utils.params import FactorParams

    opts = FactorParams(n_iter=20, threshold=0.25).fit_kwargs(seed=3)
    assert opts["pa_iter"] == 20 and opts["threshold"] == 0.25 and opts["seed"] == 3 and "n_iter" not in opts


def test_scoring_systems_default_to_the_runs_own_and_the_papers(tmp_path):
    assert load_params(REPO_ROOT / "params" / "default.yaml").scoring.systems == ["run", "valuelex"]
    params = _load(tmp_path, GOOD)
    assert params.scoring.systems == ["run", "valuelex"] and params.scoring.system == "run"


def test_the_old_single_system_key_still_loads_as_a_list(tmp_path):
    old = _load(tmp_path, GOOD + "scoring: {system: mft}\n")
    new = _load(tmp_path, GOOD + "scoring: {systems: [mft]}\n")
    assert old.scoring.systems == ["mft"] and old.scoring.system == "mft"
    assert old.fingerprint() == new.fingerprint()  # a run dir of an old params file is the same study
    custom = _load(tmp_path, GOOD + "scoring: {systems: [run, my/taxonomy.yaml]}\n")
    assert custom.scoring.systems == ["run", "my/taxonomy.yaml"]
