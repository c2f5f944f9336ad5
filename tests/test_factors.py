"""Spec for `valuelex factors`: EFA of the respondent x word matrix (valuelex_utils.factors, tests.support.planted).

The central claim is recovery: on planted structures (K latent factors with several words each, plus unrelated noise
words, as sparse Poisson counts or 0/1 use) the default pipeline finds K and the word groups. Known-value tests pin the
pieces that are not in factor_analyzer (parallel analysis, tetrachoric correlations, the analytic-gradient minres).
Parallel analysis runs with 30-40 permutations here instead of 100: the 95th percentile is then a little noisier,
which only makes the recovery assertions harder to pass.
"""
from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import optimize, stats
from sklearn.metrics import adjusted_rand_score

from valuelex_utils import factors as F
from valuelex_utils.errors import UserError
from tests.support.planted import make_planted
from valuelex_utils.factors import correlations as FC
from valuelex_utils.factors import extraction as FX

PA_ITER = 30


def ari_on_assigned(assignment: dict[str, int], truth: dict[str, int]) -> float:
    """Adjusted Rand index over words that belong to a planted factor and were assigned to some factor."""
    words = [w for w, t in truth.items() if t >= 0 and assignment.get(w, -1) >= 0]
    if len(words) < 2:
        return float("nan")
    return adjusted_rand_score([truth[w] for w in words], [assignment[w] for w in words])


def share_signal_assigned(assignment: dict[str, int], truth: dict[str, int]) -> float:
    sig = [w for w, t in truth.items() if t >= 0]
    return float(np.mean([assignment.get(w, -1) >= 0 for w in sig]))


def share_noise_assigned(assignment: dict[str, int], truth: dict[str, int]) -> float:
    noise = [w for w, t in truth.items() if t < 0]
    return float(np.mean([assignment.get(w, -1) >= 0 for w in noise])) if noise else 0.0


# ---------------------------------------------------------------------------------------------------------------------
# Planted-structure generator
# ---------------------------------------------------------------------------------------------------------------------
def test_make_planted_returns_counts_truth_and_is_seeded():
    df, truth = make_planted(n_respondents=120, n_factors=3, words_per_factor=[4, 5, 6], n_noise_words=7,
                             model="poisson", seed=3)
    assert df.shape == (120, 22)
    assert df.index.name == "respondent"
    assert (df.to_numpy() >= 0).all() and np.issubdtype(df.to_numpy().dtype, np.integer)
    assert sorted(truth) == sorted(df.columns)
    assert sorted(np.bincount([t + 1 for t in truth.values()])) == [4, 5, 6, 7]  # 7 noise (-1), 4/5/6 per factor
    # columns are shuffled: the truth is not recoverable from position
    labels = [truth[c] for c in df.columns]
    assert labels != sorted(labels)
    again, truth2 = make_planted(n_respondents=120, n_factors=3, words_per_factor=[4, 5, 6], n_noise_words=7,
                                 model="poisson", seed=3)
    pd.testing.assert_frame_equal(df, again)
    assert truth == truth2


def test_make_planted_bernoulli_is_sparse_and_words_of_a_factor_correlate():
    df, truth = make_planted(n_respondents=2000, n_factors=2, words_per_factor=5, n_noise_words=5,
                             model="bernoulli", sparsity=0.15, loading=0.8, seed=1)
    assert set(np.unique(df.to_numpy())) == {0, 1}
    assert abs(df.to_numpy().mean() - 0.15) < 0.02
    R = df.corr()
    same = [R.loc[a, b] for a in df for b in df if a < b and truth[a] == truth[b] >= 0]
    noise = [R.loc[a, b] for a in df for b in df if a < b and (truth[a] < 0 or truth[b] < 0)]
    assert np.mean(same) > 0.25 and abs(np.mean(noise)) < 0.03


# ---------------------------------------------------------------------------------------------------------------------
# Number of factors
# ---------------------------------------------------------------------------------------------------------------------
RECOVERY_SETTINGS = [
    # n, K, words per factor, noise words, model, factor correlation
    (300, 2, 6, 20, "poisson", 0.0),
    (200, 2, 8, 40, "bernoulli", 0.2),
    (400, 3, 6, 40, "bernoulli", 0.0),
    (300, 3, 7, 60, "poisson", 0.2),
    (600, 4, 5, 60, "poisson", 0.0),
    (300, 4, 6, 30, "bernoulli", 0.3),
    (500, 5, 6, 30, "bernoulli", 0.2),
    (600, 5, 8, 70, "poisson", 0.0),
    (600, 6, 6, 40, "poisson", 0.2),
    (400, 6, 6, 20, "bernoulli", 0.0),
]


@pytest.fixture(scope="module")
def recovery_runs():
    runs = []
    for i, (n, k, wpf, noise, model, fc) in enumerate(RECOVERY_SETTINGS):
        df, truth = make_planted(n_respondents=n, n_factors=k, words_per_factor=wpf, n_noise_words=noise,
                                 model=model, factor_corr=fc, seed=100 + i)
        res = F.fit_factors(df, pa_iter=PA_ITER, seed=i)
        runs.append((k, truth, res))
    return runs


def test_parallel_analysis_recovers_planted_k(recovery_runs):
    got = [(k, res.n_factors) for k, _, res in recovery_runs]
    exact = np.mean([k == kk for k, kk in got])
    assert exact >= 0.9, got
    assert all(abs(k - kk) <= 1 for k, kk in got), got


def test_word_groups_recovered_with_noise_words_left_out(recovery_runs):
    aris = [ari_on_assigned(res.assignment, truth) for _, truth, res in recovery_runs]
    assert np.mean(aris) >= 0.95, aris
    assert np.mean([a >= 0.9 for a in aris]) >= 0.9, aris
    assert np.mean([share_signal_assigned(res.assignment, truth) for _, truth, res in recovery_runs]) >= 0.9
    assert np.mean([share_noise_assigned(res.assignment, truth) for _, truth, res in recovery_runs]) <= 0.05


@pytest.mark.parametrize("case", [
    dict(n_respondents=300, n_factors=4, words_per_factor=6, n_noise_words=40, model="poisson"),
    dict(n_respondents=250, n_factors=5, words_per_factor=6, n_noise_words=30, model="bernoulli", factor_corr=0.2),
])
def test_recovery_is_stable_across_seeds(case):
    ks, aris = [], []
    for seed in range(8):
        df, truth = make_planted(seed=700 + seed, **case)
        res = F.fit_factors(df, pa_iter=PA_ITER, seed=seed)
        ks.append(res.n_factors)
        aris.append(ari_on_assigned(res.assignment, truth))
    assert sum(k == case["n_factors"] for k in ks) >= 7, ks
    assert min(aris) >= 0.9, aris


def test_parallel_analysis_finds_no_factor_in_pure_noise():
    ks = []
    for seed in range(6):
        df, _ = make_planted(n_respondents=300, n_factors=0, n_noise_words=40, model="poisson", seed=seed)
        ks.append(F.parallel_analysis(df, n_iter=PA_ITER, seed=seed)[2])
    assert sum(k > 0 for k in ks) <= 1, ks  # a 5% test: at most one false alarm in six


def test_parallel_analysis_returns_observed_and_threshold_curves():
    df, _ = make_planted(n_respondents=200, n_factors=2, words_per_factor=6, n_noise_words=10, seed=0)
    obs, thr, k = F.parallel_analysis(df, n_iter=20, seed=0)
    assert obs.shape == thr.shape == (22,)
    assert np.all(np.diff(obs) <= 1e-12)
    assert np.isclose(obs.sum(), 22)  # eigenvalues of a correlation matrix sum to its trace
    assert np.all(obs[:k] > thr[:k]) and obs[k] <= thr[k]
    # seeded: same seed, same thresholds; another seed, slightly different
    assert np.array_equal(thr, F.parallel_analysis(df, n_iter=20, seed=0)[1])
    assert not np.array_equal(thr, F.parallel_analysis(df, n_iter=20, seed=1)[1])


def test_plain_horn_over_extracts_with_many_noise_words_where_deflated_pa_does_not():
    """Why Horn alone is not trusted (min_words pruning, deflated option): normal data, 3 strong factors, 60 noise
    words, 600 respondents."""
    horn, deflated = [], []
    for seed in range(8):
        df, _ = make_planted(n_respondents=600, n_factors=3, words_per_factor=6, n_noise_words=60,
                             model="gaussian", seed=seed)
        X = df.to_numpy()
        horn.append(F.parallel_analysis(X, n_iter=PA_ITER, seed=seed)[2])
        deflated.append(F.parallel_analysis(X, n_iter=PA_ITER, seed=seed, deflate=True)[2])
    assert all(k == 3 for k in deflated), deflated
    assert all(h >= d for h, d in zip(horn, deflated))
    assert sum(h > 3 for h in horn) >= 1, horn


def test_kaiser_rule_over_extracts_with_many_noise_words():
    df, truth = make_planted(n_respondents=300, n_factors=3, words_per_factor=6, n_noise_words=60,
                             model="poisson", seed=7)
    res = F.fit_factors(df, k_rule="kaiser", min_words=1, pa_iter=PA_ITER)
    assert res.k_kaiser >= 3 * 3  # eigenvalue > 1 counts sampling noise: ~(1 + sqrt(78/300))^2 = 2.3 at the top
    assert res.n_factors == res.k_kaiser
    assert F.fit_factors(df, pa_iter=PA_ITER).n_factors == 3


def test_min_words_rule_drops_factors_without_three_salient_words():
    df, _ = make_planted(n_respondents=300, n_factors=3, words_per_factor=6, n_noise_words=60,
                         model="poisson", seed=7)
    res = F.fit_factors(df, k_rule="kaiser", pa_iter=PA_ITER)
    assert res.k_before_pruning == res.k_kaiser > res.n_factors
    assert all(len(ws) >= 3 for k, ws in res.groups().items() if k >= 0)
    assert any("refitted" in n for n in res.notes)


# ---------------------------------------------------------------------------------------------------------------------
# Tetrachoric correlations
# ---------------------------------------------------------------------------------------------------------------------
def test_bivariate_normal_cdf_matches_scipy():
    rng = np.random.default_rng(0)
    for _ in range(60):
        h, k = rng.uniform(-2.5, 2.5, 2)
        if rng.random() < 0.25:
            h = 0.0
        r = rng.uniform(-0.98, 0.98)
        ref = stats.multivariate_normal([0, 0], [[1, r], [r, 1]]).cdf([h, k])
        assert abs(FC._bvn_cdf(np.array(h), np.array(k), np.array(r)) - ref) < 1e-7


def test_tetrachoric_symmetric_table_matches_cosine_formula():
    # a = d, b = c: thresholds are 0 and Sheppard's formula is exact, r = cos(pi * b / (a + b))
    for a, b in [(40, 10), (30, 20), (25, 25), (10, 40), (45, 5)]:
        assert F.tetrachoric_from_table(a, b, b, a) == pytest.approx(math.cos(math.pi * b / (a + b)), abs=1e-9)


def test_tetrachoric_matches_independent_scipy_root():
    rng = np.random.default_rng(1)
    for _ in range(20):
        a, b, c, d = rng.integers(1, 80, 4).astype(float)
        n = a + b + c + d
        h, k = stats.norm.ppf((a + b) / n), stats.norm.ppf((a + c) / n)
        ref = optimize.brentq(lambda r: stats.multivariate_normal([0, 0], [[1, r], [r, 1]]).cdf([h, k]) - a / n,
                              -0.9999, 0.9999, xtol=1e-10)
        assert F.tetrachoric_from_table(a, b, c, d) == pytest.approx(ref, abs=1e-6)


def _brentq_tetrachoric(a, b, c, d, correction=0.5):
    a, b, c, d = [x if x > 0 else correction for x in (float(a), float(b), float(c), float(d))]
    n = a + b + c + d
    h, k = stats.norm.ppf((a + b) / n), stats.norm.ppf((a + c) / n)
    return optimize.brentq(lambda r: stats.multivariate_normal([0, 0], [[1, r], [r, 1]]).cdf([h, k]) - a / n,
                           -0.999999, 0.999999, xtol=1e-10)


@pytest.mark.parametrize("table, psych_value", [
    ((4, 5, 3, 348), 0.855),     # helpful-accurate of the default run (issue 17): the solver used to return -0.072
    ((12, 112, 116, 6), -0.9756),  # strongly negative, reached from one side: used to return 0.012
])
def test_tetrachoric_one_sided_convergence_returns_the_root(table, psych_value):
    r = F.tetrachoric_from_table(*table)
    assert r == pytest.approx(_brentq_tetrachoric(*table), abs=1e-8)
    if psych_value is not None:
        assert r == pytest.approx(psych_value, abs=5e-4)


def test_tetrachoric_matches_scipy_root_on_lopsided_and_sparse_tables():
    """Tables with tiny and zero cells, where Newton reaches the root from one side (the case that was wrong)."""
    rng = np.random.default_rng(17)
    tables = []
    while len(tables) < 150:
        m = int(np.exp(rng.uniform(np.log(3), np.log(1000))))
        a, b, c, d = rng.integers(0, m + 1, 4)
        if min(a + b, c + d, a + c, b + d) > 0:
            tables.append((a, b, c, d))
    got = FC._solve_tetrachoric(*np.array(tables, float).T)
    ref = np.array([_brentq_tetrachoric(*t) for t in tables])
    assert np.abs(got - ref).max() < 1e-7
    assert [F.tetrachoric_from_table(*t) for t in tables[:20]] == pytest.approx(got[:20], abs=1e-12)


@pytest.mark.parametrize("rho", [-0.6, 0.0, 0.4, 0.8])
def test_tetrachoric_recovers_known_rho(rho):
    rng = np.random.default_rng(2)
    z = rng.multivariate_normal([0, 0], [[1, rho], [rho, 1]], size=100_000)
    B = np.column_stack([z[:, 0] > 1.0, z[:, 1] > -0.4]).astype(int)  # one rare (16%), one common (66%) item
    assert F.tetrachoric_matrix(B)[0, 1] == pytest.approx(rho, abs=0.02)
    assert abs(np.corrcoef(B, rowvar=False)[0, 1]) < abs(rho) or rho == 0  # phi is attenuated


def test_tetrachoric_zero_cell_gets_finite_estimate():
    r = F.tetrachoric_from_table(20, 0, 5, 75)  # n10 = 0: X1 = 1 never occurs without X2 = 1
    assert 0.9 < r < 1.0
    assert -1.0 < F.tetrachoric_from_table(0, 30, 30, 40) < -0.7
    with pytest.raises(UserError):
        F.tetrachoric_from_table(0, 0, 5, 5, correction=0)


def test_tetrachoric_matrix_is_symmetric_psd_with_unit_diagonal():
    rng = np.random.default_rng(3)
    B = (rng.random((40, 30)) < 0.15).astype(int)  # small and sparse: pairwise estimates are indefinite together
    B[0] = 1
    R = F.tetrachoric_matrix(B)
    assert np.allclose(R, R.T) and np.allclose(np.diag(R), 1)
    assert np.linalg.eigvalsh(R).min() > -1e-10


def test_tetrachoric_option_recovers_structure_of_rare_words():
    df, truth = make_planted(n_respondents=400, n_factors=3, words_per_factor=6, n_noise_words=20,
                             model="bernoulli", sparsity=(0.05, 0.3), seed=11)
    res = F.fit_factors(df, corr="tetrachoric", pa_iter=10)
    assert res.n_factors == 3
    assert ari_on_assigned(res.assignment, truth) >= 0.9
    assert share_signal_assigned(res.assignment, truth) >= 0.9
    pearson = F.fit_factors(df, n_factors=3, pa_iter=1)
    sig = [w for w, t in truth.items() if t >= 0]
    # latent (tetrachoric) loadings are larger than attenuated phi loadings
    assert res.loadings.loc[sig].abs().max(axis=1).mean() > pearson.loadings.loc[sig].abs().max(axis=1).mean() + 0.1


# ---------------------------------------------------------------------------------------------------------------------
# Extraction, rotation, adequacy
# ---------------------------------------------------------------------------------------------------------------------
def test_minres_matches_factor_analyzer():
    fa_mod = FX._import_factor_analyzer()
    df, _ = make_planted(n_respondents=250, n_factors=3, words_per_factor=5, n_noise_words=5, seed=4)
    R = F.correlation_matrix(df.to_numpy(float))
    L, ok = FX._minres(R, 3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = fa_mod.FactorAnalyzer(n_factors=3, rotation=None, method="minres", is_corr_matrix=True).fit(R)
    assert ok
    assert np.abs(L @ L.T - ref.loadings_ @ ref.loadings_.T).max() < 1e-4  # same solution up to rotation


def test_kmo_and_bartlett_match_factor_analyzer():
    from factor_analyzer.factor_analyzer import calculate_bartlett_sphericity, calculate_kmo

    df, _ = make_planted(n_respondents=200, n_factors=2, words_per_factor=5, n_noise_words=5, seed=5)
    X = df.to_numpy(float)
    R = F.correlation_matrix(X)
    per, overall = F.kmo(R)
    ref_per, ref_overall = calculate_kmo(X)
    assert np.allclose(per, ref_per) and overall == pytest.approx(ref_overall)
    chi2, p, dof = F.bartlett_sphericity(R, X.shape[0])
    ref_chi2, ref_p = calculate_bartlett_sphericity(X)
    assert chi2 == pytest.approx(ref_chi2) and p == pytest.approx(ref_p, rel=1e-6) and dof == 15 * 14 // 2


def test_oblique_rotation_estimates_factor_correlation():
    df, truth = make_planted(n_respondents=3000, n_factors=2, words_per_factor=6, n_noise_words=0,
                             loading=0.7, model="gaussian", factor_corr=0.4, seed=6)
    res = F.fit_factors(df, n_factors=2, pa_iter=1)
    assert res.rotation == "oblimin"
    assert res.phi.iloc[0, 1] == pytest.approx(0.4, abs=0.07)
    assert adjusted_rand_score([truth[w] for w in df], [res.assignment[w] for w in df]) == 1.0
    vari = F.fit_factors(df, n_factors=2, rotation="varimax", pa_iter=1)
    assert vari.phi is None
    prom = F.fit_factors(df, n_factors=2, rotation="promax", pa_iter=1)
    assert prom.phi is not None and prom.phi.iloc[0, 1] > 0.2


def test_outputs_are_deterministic_signs_positive_and_ordered_by_variance():
    df, truth = make_planted(n_respondents=300, n_factors=3, words_per_factor=[4, 6, 8], n_noise_words=10, seed=8)
    a = F.fit_factors(df, pa_iter=PA_ITER)
    b = F.fit_factors(df.iloc[:, ::-1], pa_iter=PA_ITER)  # same data, columns in another order
    L = a.loadings.to_numpy()
    idx = np.abs(L).argmax(axis=0)
    assert np.all(L[idx, np.arange(L.shape[1])] > 0)
    assert np.all(np.diff(a.variance["ss_loadings"].to_numpy()) <= 0)
    assert a.assignment == b.assignment
    np.testing.assert_allclose(a.loadings.to_numpy(), b.loadings.loc[a.loadings.index].to_numpy(), atol=1e-4)


def test_single_factor_is_not_rotated():
    df, truth = make_planted(n_respondents=300, n_factors=1, words_per_factor=8, n_noise_words=6, seed=9)
    res = F.fit_factors(df, pa_iter=PA_ITER)
    assert res.n_factors == 1 and res.rotation == "none" and res.phi is None
    assert {w for w, a in res.assignment.items() if a == 0} == {w for w, t in truth.items() if t == 0}


def test_more_words_than_respondents_and_duplicate_words_do_not_crash():
    df, truth = make_planted(n_respondents=60, n_factors=2, words_per_factor=8, n_noise_words=70, seed=10)
    df["dup_a"] = df[df.columns[0]]
    df["dup_b"] = 2 * df[df.columns[1]]
    res = F.fit_factors(df, pa_iter=10)
    assert np.isfinite(res.loadings.to_numpy()).all()
    assert res.bartlett_chi2 is None and res.bartlett_p is None
    assert any("singular" in n for n in res.notes) and any("twin" in n for n in res.notes)
    assert res.assignment["dup_a"] == res.assignment[df.columns[0]]
    res2 = F.fit_factors(df, n_factors=2, pa_iter=5)
    assert res2.n_factors == 2 and np.isfinite(res2.loadings.to_numpy()).all()


def test_pure_noise_gives_zero_factors_and_every_word_unassigned():
    df, _ = make_planted(n_respondents=200, n_factors=0, n_noise_words=25, seed=12)
    res = F.fit_factors(df, pa_iter=PA_ITER)
    assert res.n_factors == 0 and set(res.assignment.values()) == {-1}
    assert res.loadings.shape == (25, 0)


def test_ml_method_option_runs():
    df, truth = make_planted(n_respondents=300, n_factors=2, words_per_factor=5, n_noise_words=4, seed=13)
    res = F.fit_factors(df, method="ml", pa_iter=PA_ITER)
    assert res.n_factors == 2 and ari_on_assigned(res.assignment, truth) == 1.0


def test_unknown_options_are_user_errors():
    df, _ = make_planted(n_respondents=50, n_factors=1, words_per_factor=4, n_noise_words=2, seed=0)
    for kwargs in ({"method": "pca"}, {"rotation": "spin"}, {"k_rule": "scree"}, {"corr": "polychoric"},
                   {"threshold": 1.5}, {"n_factors": -1}, {"n_factors": 6}, {"min_words": 0}):
        with pytest.raises(UserError):
            F.fit_factors(df, pa_iter=2, **kwargs)


def test_sklearn_shim_maps_removed_keyword():
    fa_mod = FX._import_factor_analyzer()
    out = fa_mod.check_array(np.array([[1.0, np.nan]]), force_all_finite="allow-nan")
    assert out.shape == (1, 2)


# ---------------------------------------------------------------------------------------------------------------------
# Loading the matrix
# ---------------------------------------------------------------------------------------------------------------------
def _write(tmp_path, text, name="m.csv", encoding="utf-8"):
    p = tmp_path / name
    p.write_bytes(text.encode(encoding))
    return p


def test_load_matrix_reads_respondent_index_and_drops_zero_variance_words(tmp_path):
    p = _write(tmp_path, "respondent,honesty,helpfulness,safety,never\nm1,1,0,2,0\nm2,0,3,1,0\nm3,2,1,0,0\n")
    df = F.load_matrix(p)
    assert list(df.columns) == ["honesty", "helpfulness", "safety"]
    assert list(df.index) == ["m1", "m2", "m3"] and df.index.name == "respondent"
    assert any("never" in n and "zero-variance" in n for n in df.attrs["valuelex_notes"])


def test_load_matrix_rejects_negative_counts(tmp_path):
    p = _write(tmp_path, "respondent,a,b,c\nm1,1,0,2\nm2,0,-3,1\nm3,2,1,0\n")
    with pytest.raises(UserError, match="negative"):
        F.load_matrix(p)


@pytest.mark.parametrize("text, match", [
    ("respondent,a,b,c\nm1,1,x,2\nm2,0,3,1\nm3,2,1,0\n", "non-numeric"),
    ("respondent,a,b,c\nm1,1,,2\nm2,0,3,1\nm3,2,1,0\n", "missing"),
    ("respondent,a,b\nm1,1,0\nm2,0,3\nm3,2,1\n", "at least 3"),
    ("respondent,a,b,c\nm1,1,0,2\nm2,0,3,1\n", "at least 3"),
    ("respondent,a,b,a\nm1,1,0,2\nm2,0,3,1\nm3,2,1,0\n", "duplicate"),
    ("respondent,a,b,c\nm1,1,0,inf\nm2,0,3,1\nm3,2,1,0\n", "infinite"),
    ("", "empty"),
])
def test_load_matrix_rejects_bad_csv(tmp_path, text, match):
    with pytest.raises(UserError, match=match):
        F.load_matrix(_write(tmp_path, text))


def test_load_matrix_rejects_missing_file_and_non_utf8(tmp_path):
    with pytest.raises(UserError, match="not found"):
        F.load_matrix(tmp_path / "nope.csv")
    p = tmp_path / "latin.csv"
    p.write_bytes("respondent,bont\xe9,b,c\nm1,1,0,2\nm2,0,3,1\nm3,2,1,0\n".encode("latin-1"))
    with pytest.raises(UserError, match="UTF-8"):
        F.load_matrix(p)


def test_user_error_messages_are_one_line(tmp_path):
    with pytest.raises(UserError) as exc:
        F.load_matrix(_write(tmp_path, "respondent,a,b,c\nm1,1,0,2\nm2,0,-3,1\nm3,2,1,0\n"))
    assert "\n" not in str(exc.value)


# ---------------------------------------------------------------------------------------------------------------------
# Outputs and CLI entry
# ---------------------------------------------------------------------------------------------------------------------
def test_run_factors_cli_writes_promised_files(tmp_path):
    df, truth = make_planted(n_respondents=300, n_factors=3, words_per_factor=6, n_noise_words=12, seed=14)
    csv_path = tmp_path / "matrix.csv"
    df.to_csv(csv_path)
    summary = F.run_factors_cli(csv_path, tmp_path / "out", pa_iter=PA_ITER)
    assert summary["n_factors"] == 3
    out = json.loads((tmp_path / "out" / "factors.json").read_text())
    assert {"n_factors", "method", "eigenvalues", "assignment"} <= set(out)
    assert out["n_factors"] == 3 and out["method"] == "minres" and len(out["eigenvalues"]) == df.shape[1]
    assert set(out["assignment"]) == set(df.columns) and set(out["assignment"].values()) <= {-1, 0, 1, 2}
    assert ari_on_assigned(out["assignment"], truth) == 1.0
    loadings = pd.read_csv(tmp_path / "out" / "loadings.csv", index_col=0)
    assert list(loadings.columns) == ["factor_0", "factor_1", "factor_2"] and len(loadings) == df.shape[1]
    html = (tmp_path / "out" / "scree.html").read_text()
    assert "parallel analysis" in html
    assert len(html) > 1_000_000 and 'src="https://cdn.plot.ly' not in html  # plotly.js inlined: opens offline


def test_run_factors_cli_bad_input_leaves_out_dir_untouched(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "factors.json").write_text("previous")
    bad = _write(tmp_path, "respondent,a,b,c\nm1,1,0,2\nm2,0,-3,1\nm3,2,1,0\n")
    with pytest.raises(UserError):
        F.run_factors_cli(bad, out)
    with pytest.raises(UserError):
        F.run_factors_cli(tmp_path / "missing.csv", out)
    with pytest.raises(UserError):
        F.run_factors_cli(bad, out, rotations="oblimin")
    assert (out / "factors.json").read_text() == "previous"
    assert sorted(p.name for p in out.iterdir()) == ["factors.json"]


def test_figures_for_the_notebook():
    df, _ = make_planted(n_respondents=200, n_factors=2, words_per_factor=5, n_noise_words=5, seed=15)
    res = F.fit_factors(df, pa_iter=10)
    scree = F.scree_figure(res)
    assert [t.name for t in scree.data][0] == "observed" and len(scree.data) == 2
    heat = F.loadings_heatmap(res)
    assert heat.data[0].z.shape == (15, res.n_factors)


def test_bootstrap_stability_on_planted_structure():
    df, truth = make_planted(n_respondents=300, n_factors=3, words_per_factor=6, n_noise_words=10,
                             model="bernoulli", seed=16)
    out = F.bootstrap_stability(df, n_boot=6, seed=0, pa_iter=15)
    assert out["k_full"] == 3 and len(out["k_values"]) == 6 and out["n_failed"] == 0
    assert out["k_counts"].get(3, 0) >= 5
    assert out["ari_mean"] >= 0.9
    sig = [w for w, t in truth.items() if t >= 0]
    assert np.mean([out["assigned_rate"][w] for w in sig]) >= 0.9


# ---------------------------------------------------------------------------------------------------------------------
# Every option reachable from the CLI and params (issue 17)
# ---------------------------------------------------------------------------------------------------------------------
def _fit_factors_options() -> set[str]:
    import inspect

    from valuelex_utils.factors.options import RESAMPLING_ONLY

    return set(inspect.signature(F.fit_factors).parameters) - {"df"} - RESAMPLING_ONLY


def test_every_fit_factors_option_has_a_cli_flag_and_a_params_key_of_the_same_name():
    from valuelex_utils.cli import FACTOR_OPTIONS, build_parser
    from valuelex_utils.params import FactorParams

    opts = _fit_factors_options()
    assert set(FACTOR_OPTIONS) == opts
    sub = next(a for a in build_parser()._actions if a.dest == "verb").choices["factors"]
    flags = {a.dest: a for a in sub._actions}
    assert opts <= set(flags)
    assert set(FactorParams().fit_kwargs(seed=0)) == opts
    assert set(FactorParams.model_fields) == opts - {"seed"}
    # the CLI offers exactly what fit_factors accepts
    for name, allowed in (("method", F.METHODS), ("k_rule", F.K_RULES), ("corr", F.CORRS),
                          ("transform", F.TRANSFORMS), ("rotation", F.ROTATIONS)):
        assert tuple(flags[name].choices) == tuple(allowed) or set(flags[name].choices) == set(allowed), name
    # the old params key still reads
    assert FactorParams(n_iter=20).pa_iter == 20


@pytest.mark.parametrize("argv", [
    ["--method", "principal"], ["--k-rule", "deflated"], ["--transform", "none", "--min-words", "1"],
    ["--pa-iter", "15", "--percentile", "90"], ["--n-boot", "3", "--max-k", "5"],
])
def test_cli_factors_options_run(tmp_path, argv):
    from valuelex_utils.cli import main

    df, _ = make_planted(n_respondents=200, n_factors=2, words_per_factor=5, n_noise_words=4, seed=31)
    df.to_csv(tmp_path / "m.csv")
    extra = [] if "--pa-iter" in argv else ["--pa-iter", "15"]
    assert main(["factors", str(tmp_path / "m.csv"), "-o", str(tmp_path / "out")] + argv + extra) == 0
    out = json.loads((tmp_path / "out" / "factors.json").read_text())
    assert out["n_factors"] == 2
    if "principal" in argv:
        assert out["method"] == "principal"
    if "deflated" in argv:
        assert out["k_rule"] == "deflated" and out["k_deflated"] == 2
    if "none" in argv:
        assert out["transform"] == "none" and out["min_words"] == 1
    if "90" in argv:
        assert out["pa_iter"] == 15 and out["pa_percentile"] == 90
    if "--n-boot" in argv:
        assert out["loading_ci"]["n_boot"] == 3 and len(out["k_candidates"]) == 6  # K = 0..5


@pytest.mark.parametrize("argv, match", [
    (["--method", "pca"], "invalid choice"), (["--percentile", "120"], "percentile"), (["--pa-iter", "0"], "pa_iter"),
    (["--n-boot", "-1"], "n_boot"), (["--min-words", "0"], "min_words"), (["--max-k", "-1"], "max_k"),
    (["--transform", "sqrt"], "invalid choice"), (["--k-rule", "scree"], "invalid choice"),
])
def test_cli_factors_bad_options_are_one_line_exit_2(tmp_path, capsys, argv, match):
    from valuelex_utils.cli import main

    df, _ = make_planted(n_respondents=60, n_factors=1, words_per_factor=4, n_noise_words=2, seed=0)
    df.to_csv(tmp_path / "m.csv")
    assert main(["factors", str(tmp_path / "m.csv"), "-o", str(tmp_path / "out")] + argv) == 2
    err = capsys.readouterr().err.strip()
    assert match in err and "\n" not in err
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------------------------------------------------------------
# Fit per candidate K, psych-style output (issue 17); agreement with psych itself is in test_factors_psych.py
# ---------------------------------------------------------------------------------------------------------------------
def test_fit_table_lets_each_rule_vote_and_planted_k_fits_well():
    df, _ = make_planted(n_respondents=600, n_factors=3, words_per_factor=6, n_noise_words=6, model="gaussian",
                         seed=41)
    res = F.fit_factors(df, pa_iter=PA_ITER)
    T = res.k_table
    assert res.n_factors == 3 and list(T.index) == list(range(9))
    assert T.loc[3, "rmsea"] < 0.03 and T.loc[3, "tli"] > 0.97 and T.loc[2, "tli"] < 0.9
    assert T.loc[3, "rmsea_lower"] <= T.loc[3, "rmsea"] <= T.loc[3, "rmsea_upper"]
    assert T["df"].iloc[1:].is_monotonic_decreasing and T["rmsr"].iloc[1:].is_monotonic_decreasing
    votes = res.k_votes
    assert votes["chosen"] == votes["parallel"] == votes["map"] == votes["bic"] == 3
    # VSS keeps creeping up past the true K (it fits the unit diagonal too), so psych's maximum says little here;
    # its elbow is at the planted K
    gain = T["vss1"].diff()
    assert gain.loc[3] > 10 * gain.loc[4]
    assert res.fit["df"] == T.loc[3, "df"] and res.fit["chi2"] == pytest.approx(T.loc[3, "chi2"], rel=1e-6)


def test_default_candidate_table_follows_parallel_analysis_only_up_to_20_but_always_past_the_chosen_k():
    from valuelex_utils.factors.retention import default_max_k

    assert default_max_k(3, 3) == 8  # small studies: at least K = 8, as before
    assert default_max_k(12, 12) == 15  # parallel analysis and the chosen K + 3, as before
    assert default_max_k(50, 8) == 20  # an over-extracting parallel analysis no longer drags the table to K = 53
    assert default_max_k(50, 50) == 53  # ... but the K actually chosen is always in it, with three beyond
    assert default_max_k(5, 30) == 33


def test_parallel_analysis_can_be_skipped_only_when_k_is_fixed_and_nothing_else_changes():
    df, _ = make_planted(n_respondents=300, n_factors=3, words_per_factor=6, n_noise_words=4, model="gaussian",
                         seed=43)
    full = F.fit_factors(df, n_factors=3, pa_iter=PA_ITER, max_k=0)
    lean = F.fit_factors(df, n_factors=3, pa_iter=PA_ITER, max_k=0, parallel_when_fixed=False)
    assert full.k_parallel == 3 and full.pa_threshold is not None
    assert lean.k_parallel is None and lean.pa_threshold is None and lean.k_votes["parallel"] is None
    assert lean.assignment == full.assignment
    np.testing.assert_array_equal(lean.loadings.to_numpy(), full.loadings.to_numpy())
    assert "Horn's parallel analysis: not run" in F.explain_k(lean)
    chosen = F.fit_factors(df, pa_iter=PA_ITER, max_k=0, parallel_when_fixed=False)  # K from the rule: PA runs
    assert chosen.k_parallel == chosen.n_factors == 3 and chosen.pa_threshold is not None


def test_map_bic_and_rmsea_give_zero_factors_on_noise():
    df, _ = make_planted(n_respondents=300, n_factors=0, n_noise_words=20, model="gaussian", seed=42)
    res = F.fit_factors(df, pa_iter=PA_ITER)
    assert res.k_votes["map"] == 0 and res.n_factors == 0 and res.fit == {}
    # row 0 is the independence model: its chi-square is Bartlett's, and BIC and RMSEA prefer it on noise
    assert res.k_table.loc[0, "chi2"] == pytest.approx(res.bartlett_chi2) and res.k_table.loc[0, "df"] == 190
    assert res.k_votes["bic"] == 0 and res.k_votes["rmsea_lt_0.05"] == 0
    quick = F.fit_factors(df, pa_iter=PA_ITER, max_k=0)
    assert quick.k_table is None and "map" not in quick.k_votes and quick.n_factors == 0


def test_uniquenesses_complexity_scores_and_omega():
    df, truth = make_planted(n_respondents=800, n_factors=3, words_per_factor=6, n_noise_words=0, loading=0.7,
                             model="gaussian", factor_corr=0.3, seed=43)
    res = F.fit_factors(df, pa_iter=PA_ITER)
    assert res.n_factors == 3
    np.testing.assert_allclose(res.uniquenesses + res.communalities, 1.0)
    assert res.complexity.between(1.0, 1.3).all()  # simple structure: every word on one factor
    for how in ("regression", "bartlett"):
        S = res.scores[how]
        assert S.shape == (800, 3) and list(S.index) == list(df.index)
        assert abs(S.mean()).max() < 1e-9
    # Bartlett scores are unbiased: regressing a score on its factor's words is steeper than for regression scores
    assert (res.scores["bartlett"].std() > res.scores["regression"].std()).all()
    # scores track the planted factors: each factor's score correlates with the sum of its words
    for k in range(3):
        ws = [w for w, a in res.assignment.items() if a == k]
        assert np.corrcoef(res.scores["regression"][f"factor_{k}"], df[ws].sum(axis=1))[0, 1] > 0.9
    om = res.omega
    assert 0 < om["omega_h"] < om["omega_total"] < 1 and om["omega_total"] > 0.8


def test_bootstrap_intervals_cover_the_loadings():
    df, _ = make_planted(n_respondents=400, n_factors=2, words_per_factor=5, n_noise_words=3, model="gaussian",
                         seed=44)
    res = F.fit_factors(df, pa_iter=PA_ITER, n_boot=30)
    lo, hi = res.loading_ci["lower"], res.loading_ci["upper"]
    L = res.loadings
    assert ((lo <= L + 1e-9) & (L <= hi + 1e-9)).to_numpy().mean() >= 0.95
    width = (hi - lo).to_numpy()
    assert 0.02 < np.median(width) < 0.3


def test_written_outputs_carry_fit_and_scores(tmp_path):
    df, _ = make_planted(n_respondents=200, n_factors=2, words_per_factor=5, n_noise_words=4, seed=45)
    res = F.fit_factors(df, pa_iter=PA_ITER)
    paths = F.write_factor_outputs(res, tmp_path)
    out = json.loads(paths["factors"].read_text())
    assert {"fit", "k_candidates", "k_by_rule", "uniquenesses", "complexity", "omega"} <= set(out)
    assert {"chi2", "df", "rmsea", "rmsea_lower", "rmsea_upper", "tli", "bic", "rmsr"} <= set(out["fit"])
    assert out["k_by_rule"]["chosen"] == res.n_factors
    scores = pd.read_csv(paths["scores_bartlett"], index_col=0)
    assert scores.shape == (200, res.n_factors)


@pytest.mark.parametrize("n_factors, noise", [(2, 4), (0, 12)])
def test_notebook_tables_and_explanation_name_every_rule(n_factors, noise):
    df, _ = make_planted(n_respondents=250, n_factors=n_factors, words_per_factor=5, n_noise_words=noise,
                         model="gaussian", seed=46)
    res = F.fit_factors(df, pa_iter=PA_ITER, n_boot=3 if n_factors else 0)
    text = F.explain_k(res)
    assert text.startswith(f"K = {n_factors} was chosen by Horn's parallel analysis")
    assert "Velicer's MAP" in text and "BIC" in text and "\n" not in text
    T = F.k_candidates_table(res)
    assert {"eigenvalue", "pa_threshold", "chi2", "df", "rmsea", "rmsea_90ci", "tli", "bic", "rmsr", "map", "vss1",
            "vss2", "preferred_by", "chosen"} <= set(T.columns)
    if n_factors:
        assert "parallel" in T.loc[n_factors, "preferred_by"] and T.loc[n_factors, "chosen"] == "<- K"
    words = F.word_table(res)
    assert len(words) == df.shape[1] and ("loading_ci" in words) == bool(n_factors)
