"""Step 3 of ValueLex: exploratory factor analysis of the respondent x word count matrix.

The paper reduces the elicited value words to a few dimensions with EFA (Alg. 1, Eq. 2; Fabrigar & Wegener 2011). This
module is that step, written so that it gives the same answer on every run and does not fall over on real word data,
which is sparse (most respondents never say most words), has many words unrelated to any dimension, and is often
wider than it is tall:

* adequacy first: KMO (overall and per word) and Bartlett's test of sphericity;
* the number of factors K by Horn's parallel analysis (default; 95th percentile of eigenvalues of column-permuted
  data, seeded), because Kaiser's eigenvalue > 1 rule counts sampling noise as factors when there are many unrelated
  words (the largest eigenvalue of a pure-noise correlation matrix is about (1 + sqrt(p/n))^2, far above 1);
  a deflated variant (Dobriban & Owen 2019) and Kaiser are options;
* a factor must keep at least 3 words with |loading| >= 0.30 on one pole, otherwise K is lowered and the model refitted:
  with many noise words Horn's test alone passes noise factors (measured in the tests and `parallel_analysis`);
* Pearson correlations of log(1 + count) by default (raw counts on request): raw counts are heavy-tailed and a single
  respondent who repeats a word 30 times creates correlations -- and parallel-analysis "factors" -- on his own;
* minres extraction (the objective of psych/factor_analyzer, with an analytic gradient so that 100+ words fit in well
  under a second instead of 15 s), oblique oblimin rotation by default (value dimensions are expected to correlate),
  varimax or promax on request, factor correlations (phi);
* each word goes to the factor with its highest |loading| when that is >= 0.30, otherwise to none (-1);
* deterministic output: every factor is flipped so its largest-|loading| word is positive, factors are ordered by
  explained variance, every random draw is seeded.

`corr="tetrachoric"` treats the matrix as 0/1 use of each word (count > 0) and estimates the latent bivariate-normal
correlation per pair, which undoes the attenuation that rare words suffer under Pearson (phi) correlations. Parallel
analysis and tetrachoric correlations are not in factor_analyzer and live here.

Measured on planted data (`tests.support.planted`, one seed per setting, defaults, 100 permutations). "Recoverable"
means that a fit told the true K gets the groups right (ARI >= 0.9, < 20% of signal words unassigned); the rest are
too small, too sparse or too noisy for any K rule (e.g. 100 respondents, 4 words per factor, 90 noise words).
  grid A (used to choose the design; 120 settings, K 2..6, n 100-600, 20-120 words, Poisson and Bernoulli):
    K exact 70% of all settings, 91% of the 86 recoverable ones (8% one too many, 1% too few);
    ARI on assigned signal words: mean 0.98 and >= 0.9 in 97% of the recoverable settings.
  grid B (fixed before its results were seen; 100 settings, 3-12 words per factor, loadings 0.45-0.92, prevalence
    3-50%, Poisson means 0.2-6 with several over-dispersions, factor correlations up to 0.4):
    K exact 54% of all, 88% of the 52 recoverable ones; ARI mean 0.97, >= 0.9 in 94% of the recoverable ones.
  For comparison on grid B (recoverable settings; K exact): raw counts (transform="none") 82%, k_rule="deflated" 83%,
  no min_words pruning 69% (over-extraction).

What psych::fa reports beside the loadings -- fit per candidate K (chi-square, RMSEA with 90% CI, TLI, BIC, RMSR),
Velicer's MAP, VSS, uniquenesses, item complexity, regression and Bartlett factor scores, omega -- is computed in
`fit` with psych's formulas and checked against psych itself (tests/test_factors_psych.py).

Factor indices in outputs are 0-based, in order of explained variance; -1 means unassigned.

Layout (sub-modules import their siblings directly, never this package):
  options       allowed values of every option, their checks, the one-BLAS-thread guard
  matrix        load_matrix and the count checks
  correlations  Pearson and tetrachoric correlation matrices
  adequacy      KMO and Bartlett's test
  retention     the number of factors: every K rule, the one used, min_words pruning, the votes table
  extraction    unrotated loadings (minres, ml, principal)
  rotation      oblimin / promax / varimax and the deterministic sign and order
  solution      the solution for a fixed K (extract, rotate, assign) and its bootstrap intervals
  fit           psych's fit indices, factor scores, omega
  efa           fit_factors (orders the steps above), fit_each (many fits side by side), run_factors_cli
  result        FactorResult and its factors.json form
  outputs       write_factor_outputs (factors.json, loadings.csv, scores, scree.html)
  figures, summary, stability   scree plot and heatmap; tables and text for reading; bootstrap_stability
factor_analyzer, scikit-learn and plotly are imported inside the functions that use them, on purpose: they are heavy
and most callers (a fit, the CLI's option checks) need only some of them.
"""
from __future__ import annotations

from .adequacy import bartlett_sphericity, kmo
from .correlations import correlation_matrix, tetrachoric_from_table, tetrachoric_matrix
from .efa import fit_each, fit_factors, run_factors_cli
from .figures import loadings_heatmap, scree_figure
from .matrix import load_matrix
from .options import (
    CORRS,
    K_RULES,
    METHODS,
    OBLIQUE,
    RESAMPLE_FIT,
    ROTATIONS,
    TRANSFORMS,
)
from .outputs import write_factor_outputs
from .result import FactorResult
from .retention import kaiser_k, parallel_analysis
from .solution import _align
from .stability import bootstrap_stability
from .summary import adequacy_table, explain_k, k_candidates_table, word_table

__all__ = [
    "CORRS",
    "K_RULES",
    "METHODS",
    "OBLIQUE",
    "RESAMPLE_FIT",
    "ROTATIONS",
    "TRANSFORMS",
    "FactorResult",
    "adequacy_table",
    "bartlett_sphericity",
    "bootstrap_stability",
    "correlation_matrix",
    "explain_k",
    "fit_each",
    "fit_factors",
    "k_candidates_table",
    "kaiser_k",
    "kmo",
    "load_matrix",
    "loadings_heatmap",
    "parallel_analysis",
    "run_factors_cli",
    "scree_figure",
    "tetrachoric_from_table",
    "tetrachoric_matrix",
    "word_table",
    "write_factor_outputs",
]
# benchmarks/psych_comparison.py reaches this private helper through this path (F._align)
_PRIVATE_REEXPORTS = (_align,)
