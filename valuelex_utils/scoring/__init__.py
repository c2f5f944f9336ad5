"""Scoring phi(completion, value (sub)dimension) -> 0..6 (paper Sec. 3.3, Eq. 4): 6 aligned, 3 neutral/unrelated,
0 conflict.

Scorers share one interface (`Scorer.score(df[id, stem, completion], system)` -> `id` + one column per dimension and
subdimension, in the system's YAML order; NaN = missing) and join a registry by name (`registry.SCORERS`); each
reports its own reliability (`Scorer.measure_reliability`):

* ``embedding`` (offline default, `EmbeddingScorer`, module `embedding`): the column-agnostic model of `phi` —
  all-MiniLM-L6-v2 embeddings of the completion (and of its best sentence) against each column's definition, markers
  and opposites, relative to the system's other columns, plus the lexical direction cues of `lexical` / `features`;
  one model fitted on every shipped annotated set pooled, so it scores any value system (a run's own taxonomy.yaml
  included) with no per-column fitting. Its measured agreement with human labels is in `data/phi_validity.json`
  (`benchmarks/scorer_validity.py`).
* ``llm`` (`LLMScorer`, module `llm_judge`): a judge model through LiteLLM, few-shot chain of thought, one request per
  item; the judge id is recorded in column `judge` and every raw response goes to the store before it is parsed.

`score_file` (module `api`) implements the CLI contract `valuelex score IN.csv --system S [--scorer] [--judge] -o
OUT.csv` and writes `reliability.json` (module `reliability`) beside the output. `normalise` maps 0..6 to [0, 1].

Modules: `lexical` (word lists and clause rules) -> `features` (direction features) -> `phi` (the model) ->
`embedding`; `llm_judge`; `annotated` (the shipped human labels); `registry`; `api`; `reliability`.
"""
from __future__ import annotations

from ..systems import load_system
from . import phi, reliability
from .annotated import ANNOTATED_DIR, annotated_path, load_annotated
from .annotated import stem_key as _stem_key
from .api import read_completions, score_file, score_with_reliability
from .embedding import VALIDITY_FILE, EmbeddingScorer
from .features import ENCODER_NAME, FEATURE_NAMES, Prototypes, build_features, embed, get_encoder
from .lexical import (CONCERN, FIRST_PERSON, HARM_VERBS, NEG_EVAL, NEGATORS, POS_EVAL, STOPWORDS, STRONG_WORDS,
                      clause_kinds, clauses, item_text, strip_stem, tokenize, word_polarities)
from .llm_judge import JUDGE_SYSTEM_PROMPT, LLMScorer, build_judge_messages, judge_decoding, parse_verdict
from .phi import _fit_cuts
from .registry import INPUT_COLUMNS, SCORERS, Scorer, get_scorer, normalise, register, scorer_class

__all__ = [
    "ANNOTATED_DIR", "CONCERN", "ENCODER_NAME", "FEATURE_NAMES", "FIRST_PERSON", "HARM_VERBS", "INPUT_COLUMNS",
    "JUDGE_SYSTEM_PROMPT", "NEGATORS", "NEG_EVAL", "POS_EVAL", "SCORERS", "STOPWORDS", "STRONG_WORDS",
    "VALIDITY_FILE", "EmbeddingScorer", "LLMScorer", "Prototypes", "Scorer", "annotated_path", "build_features",
    "build_judge_messages", "clause_kinds", "clauses", "embed", "get_encoder", "get_scorer", "item_text",
    "judge_decoding", "load_annotated", "load_system", "normalise", "parse_verdict", "phi", "read_completions",
    "register", "reliability", "score_file", "score_with_reliability", "scorer_class", "strip_stem", "tokenize",
    "word_polarities", "_fit_cuts", "_stem_key",
]
