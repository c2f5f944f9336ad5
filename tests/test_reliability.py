"""Reliability statistics: QWK, Krippendorff's alpha, strong-vs-weak AUC, test-retest, the report dict."""
from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from valuelex_utils.scoring import reliability as R


def _qwk_by_hand(a, b, k=7):
    """Textbook QWK: 1 - sum(w*O) / sum(w*E), w_ij = (i-j)^2 / (k-1)^2, E = outer(hist a, hist b) / n."""
    O = np.zeros((k, k))
    for x, y in zip(a, b):
        O[x, y] += 1
    w = np.array([[(i - j) ** 2 / (k - 1) ** 2 for j in range(k)] for i in range(k)])
    E = np.outer(O.sum(1), O.sum(0)) / O.sum()
    return 1 - (w * O).sum() / (w * E).sum()


def test_kappa_matches_known_value():
    # independent ratings: exactly 0; identical: 1; a worked example against the textbook formula
    assert R.qwk([0, 0, 1, 1], [0, 1, 0, 1]) == pytest.approx(0.0, abs=1e-9)
    assert R.qwk([0, 3, 6, 2], [0, 3, 6, 2]) == pytest.approx(1.0)
    a, b = [6, 5, 3, 3, 0, 1, 4, 3], [5, 5, 3, 4, 1, 3, 3, 3]
    assert R.qwk(a, b) == pytest.approx(_qwk_by_hand(a, b), abs=1e-4)
    # by hand: mean squared difference observed = 8/8 = 1; expected under independence = Var(a) + Var(b) +
    # (mean a - mean b)^2 = 3.359375 + 1.484375 + 0.0625 = 4.90625; QWK = 1 - 1/4.90625 = 0.79618
    assert R.qwk(a, b) == pytest.approx(0.79618, abs=1e-4)


def test_kappa_and_alpha_drop_missing_pairs():
    h = [6, 5, 3, np.nan, 0]
    s = [6, 5, 3, 2, 0]
    assert R.qwk(h, s) == pytest.approx(1.0)
    assert R.kripp_alpha(h, s, "ordinal") == pytest.approx(1.0)
    assert R.kripp_alpha(h, s, "interval") == pytest.approx(1.0)
    assert R.qwk([3, 3, 3], [3, 3, 3]) is None  # undefined, not a made-up number


def test_alpha_known_value():
    # two coders, interval: Krippendorff's alpha = 1 - D_o / D_e computed by hand for this tiny case
    h, s = [1, 2, 3, 4], [1, 2, 3, 5]
    vals = np.array(h + s, float)
    n = len(vals)
    d_o = sum((x - y) ** 2 for x, y in zip(h, s)) * 2 / n
    d_e = sum((x - y) ** 2 for x in vals for y in vals) / (n * (n - 1))
    assert R.kripp_alpha(h, s, "interval") == pytest.approx(1 - d_o / d_e, abs=1e-4)  # 0.93694


def test_interval_alpha_on_continuous_scores_equals_the_library_and_scales():
    import krippendorff

    rng = np.random.default_rng(3)
    h = rng.integers(0, 7, 300).astype(float)
    s = np.clip(h + rng.normal(0, 1.5, 300), 0, 6)  # continuous: every value distinct
    ref = krippendorff.alpha(reliability_data=np.vstack([h, s]), level_of_measurement="interval")
    assert R.kripp_alpha(h, s, "interval") == pytest.approx(ref, abs=1e-4)
    # the library builds units x values x values (1,600 units: 31 GiB); the closed form is linear
    big_h = rng.integers(0, 7, 20_000).astype(float)
    assert -1 <= R.kripp_alpha(big_h, big_h + rng.normal(0, 0.5, 20_000), "interval") <= 1


def test_strong_vs_weak_auc_excludes_label_4():
    human = [6, 5, 4, 3, 2, 0]
    score = [5.5, 5.0, 0.0, 3.0, 2.0, 1.0]  # the 4 has a terrible score but is left out
    assert R.strong_weak_auc(human, score) == pytest.approx(1.0)
    assert R.strong_weak_auc([3, 3, 2], [1, 2, 3]) is None


def test_conflict_auc_reads_low_scores_as_conflicts_and_leaves_out_the_rest():
    human = [0, 2, 3, 3, 5, 6]
    assert R.conflict_auc(human, [1.0, 2.0, 3.0, 3.5, 0.0, 0.0]) == pytest.approx(1.0)  # 5 and 6 are not counted
    assert R.conflict_auc(human, [4.0, 3.6, 3.0, 3.1, 6.0, 6.0]) == pytest.approx(0.0)  # conflicts above neutral
    assert R.conflict_auc([0, 3, 3], [3.0, 2.0, 4.0]) == pytest.approx(0.5)
    assert R.conflict_auc([3, 3, 5], [1.0, 2.0, 3.0]) is None  # no conflict: undefined, not a made-up number
    row = R.column_agreement(human, [1, 2, 3, 3, 5, 6])
    assert row["auc_conflict_vs_neutral"] == pytest.approx(1.0) and row["n_conflict"] == 2


def test_agreement_table_retest_and_report_are_json():
    cols = ["A", "B"]
    h = pd.DataFrame({"id": [1, 2, 3, 4], "A": [6, 3, 0, 3], "B": [3, 3, 5, 1]})
    s = pd.DataFrame({"id": [4, 3, 2, 1], "A": [3, 1, 3, 5], "B": [2, 5, 3, 3]})  # other order: aligned on id
    tab = R.agreement_table(h, s, cols)
    assert tab["per_column"]["A"]["n"] == 4
    assert tab["per_column"]["B"]["qwk"] > 0.7
    rt = R.retest_agreement(h, s, cols)
    assert rt["n_items"] == 4

    class Sys:
        name = "toy"

        def columns(self):
            return cols

    rep = R.reliability_report(system=Sys(), scorer="llm", judge="x/y", against_annotated=tab, retest=rt, scores=s)
    text = json.dumps(rep)
    assert "auc_strong_vs_weak" in text and rep["score_distribution"]["A"]["mean"] == pytest.approx(3.0)
    assert not any(isinstance(v, float) and math.isnan(v) for v in rep["score_distribution"]["A"].values())
