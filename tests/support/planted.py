"""Planted factor structures: respondent x word count matrices whose true factors we know.

Why this exists: `valuelex factors` must recover the number of factors K and the word groups of a matrix such as the
paper's (respondents = model configs, columns = value words, cells = how often a respondent said the word). Real
matrices come without ground truth, so the tests (and anyone tuning the method) need data with a known answer that
looks like the real thing: sparse counts, a few groups of words that co-occur, and many unrelated noise words.

The generative model is a latent-variable one, so "the truth" is well defined:

* each respondent i has K factor scores F_i ~ N(0, Phi) (Phi: 1 on the diagonal, `factor_corr` elsewhere; factors may
  be correlated, as the oblique rotation assumes);
* each signal word j of factor k has a latent propensity z_ij = l_j F_ik + sqrt(1 - l_j^2) e_ij, a noise word has
  z_ij = e_ij (e ~ N(0, 1)); l_j is the word's loading on the latent (correlation) scale;
* the observed cell is a sparse transform of z:
  - ``"bernoulli"``: 1 if z_ij > Phi^-1(1 - p_j), i.e. the respondent used the word (prevalence p_j);
  - ``"poisson"``: Poisson(mu_j * exp(s z_ij - s^2 / 2)), a Poisson-lognormal count with mean mu_j (the usual model
    for over-dispersed word counts; ``s = count_scale``);
  - ``"gaussian"``: z itself (a sanity case without discretisation).

Discretisation attenuates Pearson correlations (a latent 0.7 loading is often 0.4-0.5 on sparse 0/1 data), which is
exactly what makes the real problem hard; the settings in the tests are chosen so the structure stays recoverable.
Column order is shuffled and names carry no hint of the truth, so a method cannot cheat on position.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from valuelex_utils.errors import UserError

__all__ = ["make_planted"]

Range = float | tuple[float, float]


def _draw(rng: np.random.Generator, value: Range, size: int, name: str) -> np.ndarray:
    """A fixed value, or uniform draws from a (low, high) range: words differ in strength and frequency."""
    if isinstance(value, (tuple, list)):
        lo, hi = float(value[0]), float(value[1])
        if lo > hi:
            raise UserError(f"make_planted: {name} range must be (low, high), got {value}")
        return rng.uniform(lo, hi, size)
    return np.full(size, float(value))


def make_planted(
    n_respondents: int = 300,
    n_factors: int = 3,
    words_per_factor: int | Sequence[int] = 6,
    n_noise_words: int = 10,
    loading: Range = (0.6, 0.8),
    model: str = "poisson",
    sparsity: Range = (0.1, 0.4),
    mean_count: Range = (0.5, 2.0),
    count_scale: float = 1.0,
    factor_corr: float = 0.0,
    seed: int = 0,
) -> tuple[pd.DataFrame, dict[str, int]]:
    """Generate a respondent x word matrix from `n_factors` planted factors plus unrelated noise words.

    Args:
        n_respondents: rows (the paper has 525 respondents).
        n_factors: number of planted factors K (0 gives pure noise).
        words_per_factor: words per factor, one int for all or one per factor.
        n_noise_words: words unrelated to every factor (truth -1).
        loading: loading of each signal word on its factor on the latent scale, fixed or a (low, high) range.
        model: "poisson" (counts), "bernoulli" (0/1 use of a word) or "gaussian".
        sparsity: Bernoulli prevalence p_j (share of respondents using the word), fixed or a range.
        mean_count: Poisson mean mu_j, fixed or a range (0.5 means most cells are 0).
        count_scale: s, the log-scale spread of the Poisson rate (larger: stronger, more over-dispersed signal).
        factor_corr: correlation between every pair of factors (oblique structure when > 0).
        seed: everything is drawn from `numpy.random.default_rng(seed)`.

    Returns:
        (df, truth): df has index ``respondent`` ("r0001"...) and one column per word ("w001"..., shuffled);
        truth maps every word to its factor index 0..K-1 or -1 for noise words.
    """
    rng = np.random.default_rng(seed)
    if n_respondents < 3:
        raise UserError("make_planted: n_respondents must be >= 3")
    if n_factors < 0 or n_noise_words < 0:
        raise UserError("make_planted: n_factors and n_noise_words must be >= 0")
    wpf = [int(words_per_factor)] * n_factors if np.ndim(words_per_factor) == 0 else [int(w) for w in words_per_factor]
    if len(wpf) != n_factors or any(w < 1 for w in wpf):
        raise UserError("make_planted: words_per_factor must be >= 1, one value or one per factor")
    if n_factors > 1 and not (-1.0 / (n_factors - 1) < factor_corr < 1.0):
        raise UserError("make_planted: factor_corr must keep the factor correlation matrix positive definite")
    if model not in ("poisson", "bernoulli", "gaussian"):
        raise UserError(f"make_planted: unknown model {model!r} (poisson, bernoulli, gaussian)")

    labels = np.concatenate([np.full(w, k) for k, w in enumerate(wpf)] + [np.full(n_noise_words, -1)]).astype(int)
    p = labels.size
    if p == 0:
        raise UserError("make_planted: no words requested")

    # Latent factor scores with the requested inter-factor correlation.
    if n_factors > 0:
        phi = np.full((n_factors, n_factors), factor_corr) + (1.0 - factor_corr) * np.eye(n_factors)
        scores = rng.standard_normal((n_respondents, n_factors)) @ np.linalg.cholesky(phi).T
    else:
        scores = np.zeros((n_respondents, 0))

    lam = _draw(rng, loading, p, "loading")
    if np.any(np.abs(lam) >= 1):
        raise UserError("make_planted: |loading| must be < 1")
    lam[labels < 0] = 0.0
    signal = np.zeros((n_respondents, p))
    for j, k in enumerate(labels):
        if k >= 0:
            signal[:, j] = lam[j] * scores[:, k]
    z = signal + np.sqrt(1.0 - lam**2) * rng.standard_normal((n_respondents, p))

    if model == "gaussian":
        x = z
    elif model == "bernoulli":
        prev = _draw(rng, sparsity, p, "sparsity")
        if np.any((prev <= 0) | (prev >= 1)):
            raise UserError("make_planted: sparsity (prevalence) must lie in (0, 1)")
        x = (z > stats.norm.ppf(1.0 - prev)).astype(int)
    else:
        mu = _draw(rng, mean_count, p, "mean_count")
        if np.any(mu <= 0):
            raise UserError("make_planted: mean_count must be > 0")
        rate = mu * np.exp(count_scale * z - count_scale**2 / 2.0)
        x = rng.poisson(rate)

    order = rng.permutation(p)
    names = [f"w{i + 1:03d}" for i in range(p)]
    df = pd.DataFrame(x[:, order], columns=names, index=pd.Index([f"r{i + 1:04d}" for i in range(n_respondents)],
                                                                  name="respondent"))
    truth = {names[i]: int(labels[order[i]]) for i in range(p)}
    return df, truth


def wide_log_counts(n_respondents: int, n_noise_words: int, seed: int) -> np.ndarray:
    """log1p counts of a planted 3-factor study with more words than the fits' fast-path bound (constant columns
    dropped, as `load_matrix` drops them): the shape of the paper's data, fewer respondents than words when
    n_respondents is small."""
    counts = make_planted(n_respondents=n_respondents, n_factors=3, words_per_factor=10,
                          n_noise_words=n_noise_words, seed=seed)[0]
    X = np.log1p(counts.to_numpy(float))
    return X[:, X.std(axis=0) > 0]
