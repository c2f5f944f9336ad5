"""Resampling loops at paper scale (issue 19): fits without diagnostics, many fits side by side in threads, and the
vectorised checks they lean on give what the plain computations give."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tests.support.planted import make_planted, wide_log_counts
from valuelex_utils import factors as F
from valuelex_utils.errors import UserError
from valuelex_utils.factors import matrix as FM
from valuelex_utils.factors import options as FO
from valuelex_utils.factors import solution as FS


@pytest.fixture(scope="module")
def planted() -> pd.DataFrame:
    df, _ = make_planted(n_respondents=240, n_factors=3, words_per_factor=8, n_noise_words=10, seed=5)
    return df


def test_a_fit_without_diagnostics_has_the_same_solution_and_says_what_it_skipped(planted):
    full = F.fit_factors(planted, pa_iter=20, max_k=0)
    lean = F.fit_factors(planted, pa_iter=20, max_k=0, diagnostics=False)
    assert lean.n_factors == full.n_factors == 3
    assert lean.assignment == full.assignment
    pd.testing.assert_frame_equal(lean.loadings, full.loadings)
    assert full.kmo_overall is not None and full.fit and full.scores and full.omega
    assert lean.kmo_overall is None and lean.kmo_per_word.empty and lean.bartlett_chi2 is None
    assert lean.fit == {} and lean.scores == {} and lean.omega == {}
    assert any("diagnostics not computed" in n for n in lean.notes)
    assert lean.to_json_dict()["kmo"] == {"overall": None, "per_word": {}}


def test_fit_each_equals_a_loop_and_keeps_a_failure_in_its_place(planted):
    rng = np.random.default_rng(0)
    samples = [planted.iloc[rng.choice(len(planted), 200, replace=False)] for _ in range(4)]
    samples.insert(2, planted.iloc[:2])  # two respondents: cannot be fitted
    opts = {"n_factors": 3, "max_k": 0, "parallel_when_fixed": False, "diagnostics": False}
    side_by_side = F.fit_each(samples, jobs=2, **opts)
    assert isinstance(side_by_side[2], UserError) and "respondents" in str(side_by_side[2])
    for sample, res in zip(samples, side_by_side):
        if res is side_by_side[2]:
            continue
        alone = F.fit_factors(sample, **opts)
        assert res.assignment == alone.assignment
        np.testing.assert_array_equal(res.loadings.to_numpy(), alone.loadings.to_numpy())


def test_thread_map_keeps_the_order_and_raises_the_first_error():
    assert FO.thread_map(lambda x: x * x, range(7), jobs=3) == [x * x for x in range(7)]
    assert FO.thread_map(lambda x: x, [], jobs=2) == []

    def boom(x):
        if x == 3:
            raise ValueError("three")
        return x

    with pytest.raises(ValueError, match="three"):
        FO.thread_map(boom, range(6), jobs=2)


def _duplicates_by_loop(R: np.ndarray, tol: float = 1e-8) -> dict[int, tuple[int, float]]:
    """The pairwise loop `_duplicate_words` replaced: the definition it must keep."""
    dup: dict[int, tuple[int, float]] = {}
    for j in range(R.shape[0]):
        if j in dup:
            continue
        for i in range(j + 1, R.shape[0]):
            if i not in dup and abs(abs(R[j, i]) - 1.0) < tol:
                dup[i] = (j, float(np.sign(R[j, i])))
    return dup


def test_duplicate_words_finds_what_the_pairwise_loop_found():
    rng = np.random.default_rng(3)
    for _ in range(200):
        X = rng.normal(size=(int(rng.integers(4, 20)), int(rng.integers(3, 15))))
        for _ in range(int(rng.integers(0, 6))):  # twins, chains of twins and sign flips
            a, b = rng.integers(0, X.shape[1], 2)
            X[:, b] = X[:, a] * rng.choice([-2.0, -1.0, 1.0, 3.0])
        R = np.corrcoef(X, rowvar=False)
        assert FS._duplicate_words(R) == _duplicates_by_loop(R)


def test_numeric_frames_take_the_fast_check_with_the_same_result_and_errors(planted):
    fast = FM._validate_counts(planted)
    slow = FM._validate_counts(planted.astype(object))  # object columns: the per-column conversion
    pd.testing.assert_frame_equal(fast, slow)
    holed = planted.astype(float)
    holed.iloc[4, 6] = np.nan
    with pytest.raises(UserError, match=f"word column {planted.columns[6]!r} has a missing value"):
        FM._validate_counts(holed)
    with pytest.raises(UserError, match=f"word column {planted.columns[6]!r} has a missing value"):
        FM._validate_counts(holed.astype(object))


def test_parallel_analysis_is_the_same_drawn_one_at_a_time_or_side_by_side(planted, monkeypatch):
    from valuelex_utils.factors import retention as FR

    X = np.log1p(planted.to_numpy(float))
    wide = X[:30]  # fewer respondents than words: the Gram-matrix path
    results = {}
    for cores in (1, 3):
        monkeypatch.setattr(FO, "available_cores", lambda cores=cores: cores)
        monkeypatch.setattr(FR, "available_cores", lambda cores=cores: cores)
        results[cores] = [FR._parallel(A, 17, 95, 4, "pearson", deflate=True) for A in (X, wide)]
    for one, many in zip(results[1], results[3]):
        for a, b in zip(one, many):
            np.testing.assert_array_equal(a, b)


def test_a_gram_factor_gives_the_eigenvalues_and_minres_start_of_the_dense_computation():
    from valuelex_utils.factors import extraction as FX
    from valuelex_utils.factors import linalg as FL

    X = wide_log_counts(60, 450, seed=8)
    n, p = X.shape
    assert n < p and p > FL.FAST_PATH_MIN_WORDS
    dense = F.correlation_matrix(X)
    with_factor = F.correlation_matrix(X)  # equal content, another object: its own cache entries
    FL.remember_gram_factor(with_factor, (X - X.mean(axis=0)) / X.std(axis=0) / np.sqrt(n))
    assert FL.gram_factor(with_factor) is not None and FL.gram_factor(dense) is None
    np.testing.assert_allclose(FL.eigenvalues(with_factor), np.linalg.eigvalsh(dense), atol=1e-10)
    assert FL.sym_cond(with_factor) > 1e10 and FL.sym_cond(dense) > 1e10  # singular both ways: the ridged start
    np.testing.assert_allclose(FX._smc_start(with_factor), FX._smc_start(dense), rtol=1e-8, atol=1e-12)
    keep = list(range(0, p, 2))  # the words left once twins are merged keep the shortcut
    sub = FL.submatrix(with_factor, keep)
    np.testing.assert_array_equal(sub, dense[np.ix_(keep, keep)])
    np.testing.assert_allclose(FL.eigenvalues(sub), np.linalg.eigvalsh(dense[np.ix_(keep, keep)]), atol=1e-10)
    assert FL.gram_factor(FL.submatrix(dense, keep)) is None


def test_a_wide_fit_is_the_same_with_and_without_the_gram_shortcut(monkeypatch):
    from valuelex_utils.factors import efa as FE

    df = make_planted(n_respondents=80, n_factors=3, words_per_factor=12, n_noise_words=420, seed=9)[0]
    fast = F.fit_factors(df, n_factors=3, pa_iter=10, max_k=4)
    monkeypatch.setattr(FE, "remember_gram_factor", lambda R, C: None)
    slow = F.fit_factors(df, n_factors=3, pa_iter=10, max_k=4)
    assert fast.assignment == slow.assignment
    np.testing.assert_allclose(fast.loadings.to_numpy(), slow.loadings.to_numpy(), atol=1e-8)
    np.testing.assert_allclose(fast.eigenvalues, slow.eigenvalues, atol=1e-10)


def test_thread_map_inside_a_worker_runs_a_plain_loop():
    import threading

    def outer(x):
        inner_threads = FO.thread_map(lambda _: threading.get_ident(), range(4), jobs=2)
        return x, set(inner_threads) == {threading.get_ident()}  # the inner items ran in this worker's thread

    assert FO.thread_map(outer, [10, 20, 30], jobs=2) == [(10, True), (20, True), (30, True)]
    # outside a worker the items run in the pool's threads, not the caller's
    assert threading.get_ident() not in FO.thread_map(lambda _: threading.get_ident(), range(8), jobs=2)


def test_a_gram_factor_lives_as_long_as_its_matrix_and_no_longer():
    import gc

    from valuelex_utils.factors import linalg as FL

    rng = np.random.default_rng(0)
    kept = []
    for _ in range(12):  # more matrices than any fixed-size memory would keep
        C = rng.normal(size=(3, 5))
        R = C.T @ C
        FL.remember_gram_factor(R, C)
        kept.append((R, C))
    assert all(FL.gram_factor(R) is C for R, C in kept)
    before = len(FL._GRAM)
    del kept, R, C
    gc.collect()
    assert len(FL._GRAM) <= before - 12


def test_minres_through_the_gram_factor_reaches_the_dense_solution(monkeypatch):
    from valuelex_utils.factors import extraction as FX
    from valuelex_utils.factors import linalg as FL

    X = wide_log_counts(90, 430, seed=4)
    n, p = X.shape
    assert n < p and p > FL.FAST_PATH_MIN_WORDS
    with_factor = F.correlation_matrix(X)
    C = (X - X.mean(axis=0)) / X.std(axis=0) / np.sqrt(n)
    FL.remember_gram_factor(with_factor, C)
    diagonal = np.linspace(0.2, 0.9, p)
    dense = with_factor.copy()
    np.fill_diagonal(dense, diagonal)
    v = np.random.default_rng(0).normal(size=(p, 2))
    np.testing.assert_allclose(FX._gram_operator(C, diagonal) @ v, dense @ v, atol=1e-12)
    L_fast, ok_fast = FX._minres(with_factor, 3)
    monkeypatch.setattr(FX, "FAST_PATH_MIN_WORDS", 10**9)  # the direct objective, every evaluation a full eigh
    L_dense, ok_dense = FX._minres(with_factor.copy(), 3)
    assert ok_fast and ok_dense
    assert np.abs(L_fast @ L_fast.T - L_dense @ L_dense.T).max() < 1e-6
