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


# -- issue 20: params accepted that failed later --------------------------------------------------------------------

@pytest.mark.parametrize("text, words", [
    (GOOD + "seed: true\n", ["'seed'", "valid integer"]),
    (GOOD + "seed: 1000000000000000000000000000000\n", ["'seed'", "4294967295"]),
    (GOOD + "seed: -1\n", ["'seed'"]),
    (GOOD + "timeout: .inf\n", ["'timeout'", "finite"]),
    (GOOD + "timeout: .nan\n", ["'timeout'"]),
    (GOOD + "concurrency: 2.5\n", ["'concurrency'"]),
    (GOOD + "taxonomy: {k_min: 5, k_max: 3}\n", ["'taxonomy'", "k_min (5)", "k_max (3)"]),
    (GOOD + "factors: {n_factors: 1000000}\n", ["factors.n_factors", "100"]),
    (GOOD + "elicitation: {prompts: [1, 2, 1]}\n", ["elicitation.prompts", "twice"]),
    (GOOD + "elicitation: {prompts: true}\n", ["elicitation.prompts", "'all'"]),
    (GOOD + "projective: {stems: [3, 3]}\n", ["projective.stems", "twice"]),
    (GOOD + "elicitation: {samples: 1000000}\n", ["elicitation.samples"]),
    (GOOD + "elicitation: {base_frame: 'Q: {oops} A:'}\n", ["elicitation.base_frame", "{oops}", "{prompt}"]),
    (GOOD + "elicitation: {base_frame: 'Q: {0} {prompt}'}\n", ["elicitation.base_frame", "{0}"]),
    (GOOD + "elicitation: {base_frame: 'Q: {prompt.upper}'}\n", ["elicitation.base_frame", "{prompt.upper}"]),
    (GOOD + "elicitation: {base_frame: 'no placeholder'}\n", ["elicitation.base_frame", "must contain {prompt}"]),
    (GOOD + "projective: {chat_frame: 'Complete {stem'}\n", ["projective.chat_frame", "not a valid template"]),
    (GOOD + "projective: {chat_frame: 'Complete {stem} {prompt}'}\n", ["projective.chat_frame", "{prompt}"]),
    (GOOD.replace("training: aligned", "training: aligned\n    api_base: ''"), ["respondents.0.api_base", "URL"]),
    (GOOD.replace("training: aligned", "training: aligned\n    api_base: 'ftp://x'"), ["respondents.0.api_base"]),
    (GOOD.replace("training: aligned", "training: aligned\n    api_base: []"), ["respondents.0.api_base", "empty"]),
    (GOOD.replace("training: aligned", "training: aligned\n    api_key_env: 'MY KEY'"), ["api_key_env"]),
    (GOOD.replace("local/smollm2-135m-instruct", "openai/"), ["respondents.0.model", "provider/name"]),
    (GOOD.replace("local/smollm2-135m-instruct", "'openai/gpt 4o'"), ["respondents.0.model", "without spaces"]),
    (GOOD.replace("[{temperature: 0.7, top_p: 0.9}]", "[{temperature: 0.7}, {temperature: 0.7, top_p: 1.0}]"),
     ["respondents.0.configs", "twice"]),
    (GOOD + "scoring: {scorer: llm, judge: 'openai/'}\n", ["scoring.judge"]),
    (GOOD + "taxonomy: {namer: gpt-4o}\n", ["taxonomy.namer", "provider"]),
    (GOOD + "endpoints: {'openai/': {api_base: 'http://x'}}\n", ["endpoints", "provider/name"]),
    (GOOD + "endpoints: {'openai/j': {api_base: 'x'}}\n", ["endpoints.openai/j.api_base"]),
    (GOOD.replace("run_name: t", "run_name: '../../etc'"), ["run_name", "one folder name"]),
    (GOOD.replace("run_name: t", "run_name: \"a\\0b\""), ["run_name"]),
    (GOOD.replace("run_name: t", "run_name: t\nseed: 1\nrun_name: u"), ["line 4", "duplicate key 'run_name'",
                                                                         "line 2"]),
    ("a: " + "[" * 100 + "]" * 100 + "\n", ["nested deeper than 32"]),
])
def test_params_that_used_to_fail_later_are_refused_at_load(tmp_path, text, words):
    with pytest.raises(UserError) as err:
        _load(tmp_path, text)
    msg = str(err.value)
    assert "\n" not in msg and str(tmp_path) in msg
    for w in words:
        assert w in msg, msg


@pytest.mark.parametrize("frame", ["Q: {prompt}\nA:", "{{literal braces}} {prompt}", "{prompt!r} {prompt:>5}"])
def test_good_base_frames_load(tmp_path, frame):
    import json

    params = _load(tmp_path, GOOD + f"elicitation: {{base_frame: {json.dumps(frame)}}}\n")
    assert params.elicitation.base_frame == frame
    params.elicitation.base_frame.format(prompt="x")


def test_file_limits_and_links(tmp_path):
    big = tmp_path / "big.yaml"
    big.write_text(GOOD + "# " + "x" * (2 << 20) + "\n")
    with pytest.raises(UserError, match="the limit is 1.0 MB"):
        load_params(big)
    loop = tmp_path / "loop.yaml"
    loop.symlink_to(tmp_path / "loop2.yaml")
    (tmp_path / "loop2.yaml").symlink_to(loop)
    with pytest.raises(UserError, match="symbolic link loop"):
        load_params(loop)
    with pytest.raises(UserError, match="NUL byte"):
        load_params(str(tmp_path / "a\x00b.yaml"))


def test_steps_are_parsed_strictly():
    from valuelex_utils.runner import parse_steps

    assert parse_steps("01-03,05") == ["01", "02", "03", "05"] and parse_steps("3") == ["03"]
    for bad, word in [("1,1,1", "twice"), ("01-03,02", "twice"), ("\u0660\u0661", "cannot read"),
                      ("\uff10\uff11", "cannot read"), ("01-09", "outside"), ("", "cannot read")]:
        with pytest.raises(UserError, match=word):
            parse_steps(bad)


def test_constraints_between_steps_are_checked_for_the_steps_that_run(tmp_path):
    small = _load(tmp_path, GOOD)  # one respondent, one config, unit respondent: a 1-row matrix
    with pytest.raises(UserError, match="min_respondents is 2 but the study has 1"):
        small.check_between_steps(["01", "02", "03"])
    small.check_between_steps(["01"])  # elicitation alone is fine
    one = _load(tmp_path, GOOD + "lexicon: {min_respondents: 1}\n")
    with pytest.raises(UserError, match="at most 1 row"):
        one.check_between_steps(["03"])
    many = _load(tmp_path, GOOD + "lexicon: {min_respondents: 1, unit: answer}\nfactors: {n_factors: 90}\n"
                 "elicitation: {prompts: [1, 2], samples: 2}\n")
    with pytest.raises(UserError, match="n_factors is 90 but the matrix has at most 4 rows"):
        many.check_between_steps(["03"])
    for name in ["default.yaml", "smoke.yaml", "paper_models.yaml", "smoke_judged.yaml"]:
        load_params(REPO_ROOT / "params" / name).check_between_steps(["01", "02", "03", "04", "05", "06", "07"])


def test_operational_fields_do_not_block_resuming(tmp_path):
    """Issue 20: changing only concurrency (or timeouts, retries, processes) resumes the run dir, and the notebooks
    then read the new values; any other change is still refused."""
    import yaml

    from valuelex_utils.params import parse_params
    from valuelex_utils.runner import claim_run_dir

    first = _load(tmp_path, GOOD)
    claim_run_dir(tmp_path / "run", first, tmp_path / "p.yaml")
    faster = parse_params({**first.model_dump(mode="json"), "concurrency": 32, "timeout": 600.0, "retries": 9})
    assert faster.fingerprint() == first.fingerprint()
    claim_run_dir(tmp_path / "run", faster, tmp_path / "p.yaml")
    copy = yaml.safe_load((tmp_path / "run" / "params.yaml").read_text())
    assert copy["concurrency"] == 32 and copy["timeout"] == 600.0 and copy["retries"] == 9
    other = parse_params({**first.model_dump(mode="json"), "seed": 99})
    assert other.fingerprint() != first.fingerprint()
    with pytest.raises(UserError, match="belongs to other params"):
        claim_run_dir(tmp_path / "run", other, tmp_path / "p.yaml")
