"""The shortcuts that make a paper-sized factor analysis (~2,000 words) affordable give what the direct computation
gives: Lanczos top eigenpairs in minres, matrix functions computed once per matrix, the skipped smoothing of a
model matrix that is positive definite by construction."""
from __future__ import annotations

import numpy as np
import pytest

from tests.support.planted import make_planted, wide_log_counts
from valuelex_utils import factors as F
from valuelex_utils.factors import extraction as FX
from valuelex_utils.factors import fit as FF
from valuelex_utils.factors import linalg as FL


@pytest.fixture(scope="module")
def wide_R() -> np.ndarray:
    """A correlation matrix with more words than `FAST_PATH_MIN_WORDS`: 4 planted factors and noise words."""
    df, _ = make_planted(n_respondents=600, n_factors=4, words_per_factor=12, n_noise_words=FL.FAST_PATH_MIN_WORDS,
                         seed=11)
    R = F.correlation_matrix(np.log1p(df.to_numpy(float)))
    assert R.shape[0] > FL.FAST_PATH_MIN_WORDS
    return R


def test_lanczos_minres_reaches_the_dense_solution(wide_R, monkeypatch):
    L_lanczos, ok_lanczos = FX._minres(wide_R, 4)
    monkeypatch.setattr(FX, "FAST_PATH_MIN_WORDS", 10**9)  # every evaluation through a full eigh, as before
    L_dense, ok_dense = FX._minres(wide_R, 4)
    assert ok_lanczos and ok_dense
    # same common part L L' (loadings are unique up to column signs); 1e-6 is far below any printed digit
    assert np.abs(L_lanczos @ L_lanczos.T - L_dense @ L_dense.T).max() < 1e-6


def test_top_eigenpairs_match_eigh_and_do_not_depend_on_earlier_calls(wide_R):
    vals, vecs = np.linalg.eigh(wide_R)
    top, top_vecs = FX._top_eigenpairs(wide_R, 5)
    assert np.allclose(top, vals[::-1][:5], atol=1e-10)
    assert np.allclose(np.abs(top_vecs.T @ vecs[:, ::-1][:, :5]), np.eye(5), atol=1e-8)
    again, _ = FX._top_eigenpairs(wide_R, 5)
    assert np.array_equal(top, again)  # a fixed start vector: no hidden random state


def test_per_matrix_computes_once_per_array_object_and_returns_copies():
    calls = []

    @FL.per_matrix
    def double(R):
        calls.append(1)
        return R * 2

    A = np.eye(3)
    first = double(A)
    first[0, 0] = 99.0  # a caller changing its result does not change the cache
    assert double(A)[0, 0] == 2.0 and len(calls) == 1
    assert double(A.copy())[0, 0] == 2.0 and len(calls) == 2  # an equal but different array is computed anew


def test_cor_smooth_still_takes_its_tolerance():
    R = np.corrcoef(np.random.default_rng(1).normal(size=(5, 8)), rowvar=False)  # singular: 5 rows, 8 columns
    assert np.array_equal(FF.cor_smooth(R), FF.cor_smooth(R, 1e-12))
    assert not np.array_equal(FF.cor_smooth(R, 1e-12), FF.cor_smooth(R, 1e-3))


def test_sym_cond_is_numpys_condition_number():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 30))
    R = np.corrcoef(X, rowvar=False)
    assert FL.sym_cond(R) == pytest.approx(np.linalg.cond(R), rel=1e-8)
    singular = np.corrcoef(rng.normal(size=(10, 30)), rowvar=False)  # 10 respondents, 30 words
    assert FL.sym_cond(singular) > 1e12 and np.linalg.cond(singular) > 1e12


def test_model_matrix_smoothing_is_skipped_only_when_it_would_change_nothing(wide_R):
    L, _ = FX._minres(wide_R, 4)
    model = L @ L.T
    M = model.copy()
    np.fill_diagonal(M, 1.0)
    uniq = 1.0 - np.diag(model)
    assert FF._positive_definite_by_construction(uniq, None)
    assert np.array_equal(FF.cor_smooth.__wrapped__(M), M)  # psych's cor.smooth leaves it as it is
    heywood = uniq.copy()
    heywood[0] = 0.0
    assert not FF._positive_definite_by_construction(heywood, None)
    assert not FF._positive_definite_by_construction(uniq, np.array([[1.0, 1.5], [1.5, 1.0]]))  # phi not PSD


@pytest.mark.parametrize("oblique", [False, True])
def test_low_rank_fit_statistics_equal_the_direct_ones(wide_R, monkeypatch, oblique):
    from valuelex_utils.factors.rotation import _rotate

    L, _ = FX._minres(wide_R, 4)
    phi = None
    if oblique:
        L, phi = _rotate(L, "oblimin")
        assert phi is not None and not np.allclose(phi, np.eye(4))
    fast = FF.model_fit(wide_R, L, phi, 600)
    monkeypatch.setattr(FF, "FAST_PATH_MIN_WORDS", 10**9)  # the direct solve and determinant
    direct = FF.model_fit(wide_R, L, phi, 600)
    # 600 respondents for 448 words: R is well conditioned, so the direct computation is accurate to compare with
    # (with fewer respondents than words R is singular, and the direct determinant of the ill-conditioned M^-1 R
    # itself varies by ~1e-7 relative with the BLAS thread count)
    for key in ("objective", "chi2", "rmsea", "bic", "rmsr"):
        assert fast[key] == pytest.approx(direct[key], rel=1e-9), key
    assert fast["tli"] == pytest.approx(direct["tli"], abs=1e-9)


def _wide_gram_R() -> tuple[np.ndarray, np.ndarray]:
    """Fewer respondents than words, with the Gram factor recorded as fit_factors records it (and the data)."""
    X = wide_log_counts(120, 420, seed=5)
    R = F.correlation_matrix(X)
    FL.remember_gram_factor(R, (X - X.mean(axis=0)) / X.std(axis=0) / np.sqrt(X.shape[0]))
    return R, X


@pytest.mark.parametrize("gram", [False, True])
def test_wide_map_and_vss_equal_the_direct_loops(wide_R, monkeypatch, gram):
    from valuelex_utils.factors import retention as FR
    from valuelex_utils.factors.rotation import _rotate

    R = _wide_gram_R()[0] if gram else wide_R
    assert R.shape[0] > FL.FAST_PATH_MIN_WORDS and (FL.gram_factor(R) is not None) == gram
    Lv, _ = _rotate(FX._minres(R, 3)[0], "varimax")
    fast_map, fast_vss = FR.velicer_map(R, 6), [FR.vss_fit(R, Lv, c) for c in (1, 2, 3, 4)]
    monkeypatch.setattr(FR, "FAST_PATH_MIN_WORDS", 10**9)  # the loops over p x p residuals
    direct_map, direct_vss = FR.velicer_map(R, 6), [FR.vss_fit(R, Lv, c) for c in (1, 2, 3, 4)]
    np.testing.assert_allclose(fast_map, direct_map, rtol=1e-9)
    np.testing.assert_allclose(fast_vss[:3], direct_vss[:3], rtol=1e-9)
    assert np.isnan(fast_vss[3]) and np.isnan(direct_vss[3])  # K < c


@pytest.mark.parametrize("gram", [False, True])
def test_wide_parallel_analysis_has_the_direct_observed_eigenvalues_and_the_same_k(monkeypatch, gram):
    from valuelex_utils.factors import retention as FR

    if gram:
        X = _wide_gram_R()[1]
    else:
        df, _ = make_planted(n_respondents=600, n_factors=4, words_per_factor=12,
                             n_noise_words=FL.FAST_PATH_MIN_WORDS, seed=11)
        X = np.log1p(df.to_numpy(float))
        X = X[:, X.std(axis=0) > 0]
    fast = FR._parallel(X, 10, 95, 0, "pearson", False)
    monkeypatch.setattr(FR, "FAST_PATH_MIN_WORDS", 10**9)  # the p x p eigendecomposition of the data's R
    direct = FR._parallel(X, 10, 95, 0, "pearson", False)
    np.testing.assert_allclose(fast[0], direct[0], atol=1e-10)
    np.testing.assert_array_equal(fast[2], direct[2])  # the null is untouched
    assert fast[3] == direct[3] and fast[4] == direct[4]
