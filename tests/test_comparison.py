"""Comparison across value systems: Fig. 4 table, cross-system correlations, low-signal dimensions."""
import numpy as np
import pandas as pd

from valuelex_utils.comparison import (comparison_table, cross_system_correlations, figure4, signal_table,
                                       where_human_values_live)


def _scores(seed=0):
    rng = np.random.default_rng(seed)
    n = 400
    comp = rng.integers(0, 7, n)
    base = pd.DataFrame({"model": rng.choice(["a", "b"], n), "respondent": "r", "training": "aligned",
                         "stem_id": rng.integers(1, 51, n)})
    base["respondent"] = base["model"] + "@T1"
    ours = base.assign(Competence=comp, Character=rng.integers(0, 7, n))
    achievement = np.clip(comp + rng.integers(-1, 2, n), 0, 6)          # planted: Achievement lives in Competence
    human = base.assign(Achievement=achievement, Tradition=np.where(rng.random(n) < 0.9, 3, rng.integers(0, 7, n)))
    return ours, human


def test_achievement_is_found_inside_competence():
    ours, human = _scores()
    corr = cross_system_correlations(ours, ["Competence", "Character"], human, ["Achievement", "Tradition"])
    where = where_human_values_live(corr).set_index("human")
    assert where.loc["Achievement", "closest_llm_dimension"] == "Competence"
    assert where.loc["Achievement", "spearman"] > 0.8


def test_mostly_neutral_dimension_is_flagged_as_low_signal():
    _, human = _scores()
    table = signal_table(human, ["Achievement", "Tradition"], n_boot=200).set_index("column")
    assert table.loc["Tradition", "neutral_share"] > 0.8 > table.loc["Achievement", "neutral_share"]
    assert table.loc["Tradition", "covers_neutral"]
    assert table.loc["Tradition", "sd"] < table.loc["Achievement", "sd"]


def test_comparison_table_and_figure_have_three_panels():
    ours, human = _scores()
    mft = human.assign(Care=3, Fairness=4)
    table = comparison_table({"schwartz": human, "valuelex": ours, "mft": mft},
                             {"schwartz": ["Achievement", "Tradition"], "valuelex": ["Competence", "Character"],
                              "mft": ["Care", "Fairness"]}, n_boot=50)
    assert set(table.system) == {"schwartz", "valuelex", "mft"} and set(table.model) == {"a", "b"}
    assert ((table.lo <= table.w) & (table.w <= table.hi)).all()
    fig = figure4(table)
    assert len(fig.layout.annotations) >= 3 and len(fig.data) == 6


def test_the_runs_own_system_leads_figure4_and_each_system_says_how_much_it_shows():
    from valuelex_utils.comparison import signal_lines

    ours, human = _scores()
    flat = human.assign(Care=3, Fairness=3)  # every score neutral: nothing to see
    table = comparison_table({"valuelex": ours, "mft": flat, "run": ours.rename(columns={"Competence": "Skill"})},
                             {"valuelex": ["Competence"], "mft": ["Care", "Fairness"], "run": ["Skill"]}, n_boot=50)
    fig = figure4(table)
    titles = [a.text for a in fig.layout.annotations]
    assert titles[:3] == ["This run's system", "ValueLex (the paper's)", "Moral Foundations"]
    lines = signal_lines(table).splitlines()
    assert lines[0].startswith("- **This run's system**")
    assert lines[2].startswith("- **Moral Foundations**: little signal; 100% of the scores are the neutral 3")


def test_a_dimension_without_correlation_is_an_empty_cell_not_nan():
    from valuelex_utils.comparison import correlation_heatmap

    ours, human = _scores()
    corr = cross_system_correlations(ours, ["Competence"], human.assign(Care=3), ["Achievement", "Care"])
    text = correlation_heatmap(corr, "t").data[0].text
    assert text[0][1] == "" and text[0][0] not in ("", "nan", "NaN")
