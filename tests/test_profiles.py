"""Value profiles (Eq. 4) with stem-bootstrap intervals, and the effects model."""
import numpy as np
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
