"""Value profiles (Eq. 4) with stem-bootstrap intervals, and the effects model."""
import numpy as np
import pytest
import pandas as pd

from valuelex_utils.profiles import effects, profile_matrix, subdimension_correlations, value_profiles


def _scores(n_stems=20, seed=0):
    rng = np.random.default_rng(seed)
    rows = []
    for model, training, size, mu in [("a", "aligned", 7.0, 5.0), ("b", "pretrained", 7.0, 3.0),
                                      ("c", "aligned", 70.0, 5.5), ("d", "pretrained", 70.0, 3.2)]:
        for stem in range(n_stems):
            for s in range(2):
                rows.append({"respondent": f"{model}@T1", "model": model, "training": training, "size": size,
                             "stem_id": stem, "X": np.clip(round(rng.normal(mu, 0.8)), 0, 6),
                             "Y": np.clip(round(rng.normal(3, 0.8)), 0, 6)})
    return pd.DataFrame(rows)


def test_profile_is_the_mean_normalised_score_and_interval_covers_it():
    scores = _scores()
    prof = value_profiles(scores, ["X", "Y"], n_boot=300, seed=1)
    row = prof[(prof.level == "model") & (prof.id == "a") & (prof.column == "X")].iloc[0]
    expected = scores.loc[scores.model == "a", "X"].mean() / 6
    assert np.isclose(row.w, expected)
    assert row.lo < row.w < row.hi and row.hi - row.lo < 0.2
    assert set(profile_matrix(prof).index) == {"a", "b", "c", "d"}


def test_effects_find_the_planted_training_effect_and_not_a_size_effect():
    table, notes = effects(_scores(n_stems=40), ["X"])
    train = table[table.term.str.startswith("training")].iloc[0]
    size = table[table.term.str.startswith("log10")].iloc[0]
    assert train.lo > 0.2          # aligned ~ +2/6 above pretrained
    assert size.lo < 0.05 and notes == []


def test_confounded_size_and_training_is_said_not_estimated():
    scores = _scores()
    scores = scores[scores.model.isin(["a", "d"])]
    table, notes = effects(scores, ["X"])
    assert not table.term.str.startswith("log10").any()
    assert any("confounded" in n for n in notes)


def test_subdimension_correlation_is_symmetric_with_unit_diagonal():
    c = subdimension_correlations(_scores(), ["X", "Y"])
    assert np.allclose(np.diag(c), 1) and np.isclose(c.loc["X", "Y"], c.loc["Y", "X"])


# --- profiles per system, and how much a profile says --------------------------------------------------------------
from valuelex_utils.evaluation import ScoredRun  # noqa: E402
from valuelex_utils.figures import profile_heatmap  # noqa: E402
from valuelex_utils.profiles import profile_signal, system_profiles  # noqa: E402


class _Sys:
    def __init__(self, cols, parents=None):
        self._cols, self._parents = cols, parents or {}

    def columns(self):
        return list(self._cols)

    def parent(self, col):
        return self._parents.get(col)


def _flat(n_stems=20, seed=0):
    """Mostly neutral scores: 9 in 10 are 3, the rest 2 or 4 at random."""
    rng = np.random.default_rng(seed)
    rows = []
    for model in ("a", "b"):
        for stem in range(n_stems):
            for s in range(2):
                rows.append({"respondent": f"{model}@T1", "model": model, "training": "aligned", "size": 1.0,
                             "stem_id": stem, **{c: 3 if rng.random() < 0.9 else rng.choice([2, 4]) for c in "PQR"}})
    return pd.DataFrame(rows)


def test_neutral_share_is_the_share_of_threes_per_cell():
    scores = _scores()
    prof = value_profiles(scores, ["X", "Y"], n_boot=0)
    row = prof[(prof.level == "model") & (prof.id == "b") & (prof.column == "Y")].iloc[0]
    sub = scores[scores.model == "b"]
    assert np.isclose(row.neutral_share, (sub.Y == 3).mean()) and 0.2 < row.neutral_share < 0.8


def test_value_profiles_csv_carries_the_system_of_every_row():
    runs = {"run": ScoredRun(_Sys(["X"]), _scores(), {}, key="run"),
            "valuelex": ScoredRun(_Sys(["X", "Y"], {"Y": "X"}), _scores(seed=1), {}, key="valuelex")}
    prof = system_profiles(runs, n_boot=50)
    assert list(prof.columns[:2]) == ["system", "level"]
    assert prof.loc[prof.column == "Y", "parent"].eq("X").all() and prof.loc[prof.column == "X", "parent"].isna().all()
    fig = profile_heatmap(prof, system="valuelex")
    assert list(fig.layout.xaxis.ticktext) == ["<b>X</b>", "Y"]  # the dimension in bold, its subdimension after it
    assert set(prof.loc[prof.system == "run", "column"]) == {"X"}
    assert set(prof.loc[prof.system == "valuelex", "column"]) == {"X", "Y"}
    # a column both systems have is kept apart by system: one heatmap per system, never a mix
    assert profile_matrix(prof, system="run").shape == (4, 1)
    with pytest.raises(ValueError, match="several systems"):
        profile_matrix(prof)


def test_a_mostly_neutral_profile_is_said_to_carry_little_signal():
    prof = value_profiles(_flat(), list("PQR"), n_boot=300, seed=2)
    sig = profile_signal(prof, level="model")
    assert sig.little and sig.neutral_share > 0.8 and sig.n_cells == 6
    assert sig.n_cover >= 5 and sig.median_width < 0.1
    words = sig.markdown()
    assert words.startswith("**Little signal.**")
    assert f"{sig.neutral_share:.0%} of the scores are the neutral 3" in words
    assert f"for {sig.n_cover} of 6 model × (sub)dimension cells" in words and "median interval width" in words
    assert sig.max_distance < 0.05 and f"no cell is farther than {sig.max_distance:.2f} from 0.5" in words
    # the heatmap marks the cells it cannot tell from neutral
    fig = profile_heatmap(prof, level="model")
    texts = [t for row in fig.data[0].text for t in row]
    assert sum(t.startswith("(") for t in texts) == sig.n_cover
    assert "brackets" in fig.layout.title.text + fig.layout.title.subtitle.text  # said in the caption


def test_a_clear_profile_is_said_to_carry_signal_and_names_its_clearest_cell():
    scores = _scores()
    scores["Y"] = (6 - scores["X"]).clip(0, 6)  # Y now mirrors X: away from neutral wherever X is
    scores = scores[scores.model.isin(["a", "c"])]
    prof = value_profiles(scores, ["X", "Y"], n_boot=300, seed=3)
    sig = profile_signal(prof, level="model")
    assert not sig.little and sig.n_cover == 0
    assert sig.clearest["id"] == "c"  # planted: c is 5.5/6 on X (and 0.5/6 on Y), the farthest from neutral
    words = sig.markdown()
    assert words.startswith("**Signal.**") and "Clearest cell: c on X" in words
    html = sig.html()
    assert "<b>Signal.</b>" in html and "vl-little" not in html


def test_signal_without_intervals_says_so():
    prof = value_profiles(_flat(), list("PQR"), n_boot=0)
    sig = profile_signal(prof)
    assert sig.n_intervals == 0 and sig.little  # mostly neutral alone is enough
    assert "no intervals" in sig.markdown()


# --- which systems a run is scored on -------------------------------------------------------------------------------
from valuelex_utils.evaluation import load_scored, read_notes, resolve_systems, write_scored  # noqa: E402
from valuelex_utils.params import parse_params  # noqa: E402
from valuelex_utils.rundir import RunDir  # noqa: E402

PARAMS = {"run_name": "t", "respondents": [{"model": "local/smollm2-135m-instruct", "training": "aligned"}]}
RUN_TAXONOMY = """name: t_taxonomy
title: Value system reconstructed by ValueLex (1 dimension(s), 2 subdimension(s))
dimensions:
  - name: Empathy
    definition: Empathy, kindness, care.
    markers: [empathy, kindness, care]
    subdimensions:
      - {name: Kindness, definition: Kindness and care., markers: [kindness, care]}
      - {name: Empathy (empathy), definition: Empathy., markers: [empathy]}
"""


def _params(**scoring):
    return parse_params({**PARAMS, "scoring": scoring} if scoring else PARAMS)


def test_the_runs_own_system_leads_and_the_papers_follows(tmp_path):
    (tmp_path / "taxonomy.yaml").write_text(RUN_TAXONOMY)
    choice = resolve_systems(_params(), tmp_path, extra=("schwartz", "mft"))
    assert choice.keys() == ["run", "valuelex", "schwartz", "mft"] and choice.notes == []
    assert choice.systems["run"].columns() == ["Empathy", "Kindness", "Empathy (empathy)"]
    assert "Competence" in choice.systems["valuelex"].columns()


@pytest.mark.parametrize("taxonomy, why", [
    (None, "left no taxonomy.yaml"),
    ("name: t\ndimensions: []\n", "not a usable value system"),
    (RUN_TAXONOMY.replace("name: Kindness", "name: model"), "clash"),
])
def test_a_run_without_a_usable_system_of_its_own_says_so_in_one_line_and_is_scored_on_the_papers(
        tmp_path, taxonomy, why):
    if taxonomy is not None:
        (tmp_path / "taxonomy.yaml").write_text(taxonomy)
    choice = resolve_systems(_params(), tmp_path)
    assert choice.keys() == ["valuelex"]
    assert len(choice.notes) == 1 and "\n" not in choice.notes[0] and why in choice.notes[0]
    alone = resolve_systems(_params(systems=["run"]), tmp_path)  # the run's own alone: the paper's takes its place
    assert alone.keys() == ["valuelex"] and "instead" in alone.notes[0]


def test_scores_and_reliability_keep_every_system_apart_and_read_back(tmp_path):
    from valuelex_utils.systems import load_system

    rd = RunDir.at(tmp_path)
    (tmp_path / "taxonomy.yaml").write_text(RUN_TAXONOMY)
    run_sys, paper = load_system(tmp_path / "taxonomy.yaml"), load_system("valuelex")
    base = _scores().assign(key=lambda d: [f"k{i}" for i in range(len(d))])
    runs = {"run": ScoredRun(run_sys, base.assign(**{c: 4 for c in run_sys.columns()}),
                             {"scorer": "embedding", "columns": run_sys.columns()}, key="run"),
            "valuelex": ScoredRun(paper, base.assign(**{c: 2 for c in paper.columns()}),
                                  {"scorer": "embedding", "columns": paper.columns()}, key="valuelex")}
    write_scored(rd, runs, ["a note"])
    table = pd.read_parquet(rd.scores)
    assert len(table) == 2 * len(base) and table["system"].value_counts().to_dict() == {"run": 160, "valuelex": 160}
    assert table.loc[table.system == "run", "Kindness"].eq(4).all()
    assert table.loc[table.system == "run", "Competence"].isna().all()  # another system's column stays empty
    back = load_scored(rd)
    assert list(back) == ["run", "valuelex"] and list(back["run"].scores.columns[-3:]) == run_sys.columns()
    assert read_notes(rd) == ["a note"]


def test_a_column_scored_the_same_everywhere_has_no_effect_and_says_so():
    scores = _scores().assign(Z=3)
    table, notes = effects(scores, ["X", "Z"])
    assert set(table.column) == {"X"}  # not a zero effect with a spurious p-value
    assert any(n.startswith("Z: every completion got the same score") for n in notes)


def test_a_table_without_neutral_shares_does_not_claim_none_are_neutral():
    prof = value_profiles(_flat(), list("PQR"), n_boot=200).assign(neutral_share=np.nan)  # an older CSV
    sig = profile_signal(prof)
    assert np.isnan(sig.neutral_share) and sig.little  # the intervals alone say it
    assert "neutral 3" not in sig.markdown() and "The 95% interval includes 0.5" in sig.markdown()
