"""phi (paper Eq. 4) for any value system: one offline model that reads a system from its names, definitions,
marker words and opposites, with no per-column fitting.

Why a column-agnostic model: a scorer calibrated column by column learns what the annotated examples of *that*
column look like; measured on real LLM answers labelled by others it did no better than a bare cosine to the marker
words, while the same features read relative to each column's own text generalised better (issue 14). So every
feature here is a relation between an item and a column's text, or a property of the item alone; the model that maps
features to 0..6 is fitted once, on every annotated set of every shipped system pooled (`TRAINING_SETS`), and applies
unchanged to a system it has never seen (a run's own taxonomy, a system loaded from a path).

Features per (item, leaf column), `pair_features`:
- relevance: cosine of the completion, and of its best sentence, to the column's definition and to the centroid of
  its marker words; the mean of its three nearest markers; cosine to the opposites. The stem is left out: every
  completion of "Privacy to me..." would otherwise look like Professional;
- the same relative to the item's mean over the system's leaves (which value the item is *most* about);
- direction: the lexical polarity evidence of `features.build_features` (a marker word negated, an opposite praised,
  fear or regret about a value read as endorsing it), and item properties (negation, loops, stem echoes, length);
- opposition: pull from the columns the system sets against this one (an item about a value whose markers look
  like this column's opposites), so an answer that champions one value can read as rejecting its opposite.

A dimension that has subdimensions is scored from its children by the rubric's rule (the child furthest from
neutral), so a dimension can never disagree with its own subdimensions.
"""
from __future__ import annotations

import dataclasses
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..embeddings import unit
from ..errors import UserError
from ..systems import BUILTIN_SYSTEMS, ValueSystem, load_system, system_path
from .annotated import ANNOTATED_DIR, PACKAGE_DATA
from .features import FEATURE_NAMES, Prototypes, build_features, embed, embed_spans

#: Bump when features or the model change: part of the cache key of the fitted model. A label set by hand on purpose:
#: it enters `training_digest`, which the shipped model and data/phi_validity.json are keyed by, so a digest of the
#: source instead would make the packaged model stale at every refactor that changes no score.
#: phi-1.7: phi-1.6's features, model and training data, with each sentence's vector pooled from one encoder pass
#: over its completion (rule 4fb6c9f, candidate A, session 14: faster, validity within the rule's margins).
#: phi-1.8: phi-1.7 fitted on every training set twice, under its own system and under a `reworded` copy (rule
#: d07a47c, session 15: better under wordings it was not fitted on).
#: phi-1.9: phi-1.8 with two features of pull from opposed columns (`_cross_opposition`; rule 57ce6fe, session 16)
CODE_VERSION = "phi-1.9"
NEUTRAL = 3.0
#: the model fitted from the shipped training sets (`ship_model`), so that every machine scores with the same model
#: and nobody waits for a fit; used only when it was fitted from exactly these training files and this scikit-learn
SHIPPED_MODEL = PACKAGE_DATA / "phi_model.joblib"
#: (system, annotated CSV) pairs the model is fitted on; a system is a built-in name or a YAML path.
TRAINING_SETS: tuple[tuple[str, str], ...] = (
    ("valuelex", "valuelex.csv"),
    ("valuelex", "valuelex_styles.csv"),
    ("schwartz", "schwartz.csv"),
    ("schwartz", "schwartz_stances.csv"),
    ("mft", "mft.csv"),
    ("mft", "mft_styles.csv"),
    ("extra/virtues.yaml", "extra/virtues.csv"),
    ("extra/big_three_morality.yaml", "extra/big_three_morality.csv"),
    ("extra/work_values.yaml", "extra/work_values.csv"),
    # blind test sets of sessions 4, 6 and 8, each measured once and then spent (former_blind/README.md)
    ("valuelex", "former_blind/valuelex_blind.csv"),
    ("valuelex", "former_blind/valuelex_blind2.csv"),
    ("valuelex", "former_blind/valuelex_blind3.csv"),
    ("schwartz", "former_blind/schwartz_stances_blind.csv"),
    ("schwartz", "former_blind/schwartz_stances_blind2.csv"),
    ("former_blind/safety_system.yaml", "former_blind/safety_blind.csv"),
    ("former_blind/epistemic_system.yaml", "former_blind/epistemic_blind.csv"),
    # the second round of session 8, measured once there, joined in session 11 (rule: commit e20117a)
    ("valuelex", "former_blind/valuelex_blind4.csv"),
    ("schwartz", "former_blind/schwartz_stances_blind3.csv"),
    ("former_blind/confucian_system.yaml", "former_blind/confucian_blind.csv"),
    # the spent rounds 3-8 (sessions 9-12), joined in session 13 (rule: commit 201e7a6, decided on the tenth round),
    # in the order that rule's measurement fitted them (the order moves HistGradientBoosting's early-stopping split)
    *((fam, f"former_blind/{csv}") for fam, csv in (
        ("valuelex", "valuelex_blind5.csv"), ("valuelex", "valuelex_blind6.csv"),
        ("schwartz", "schwartz_stances_blind4.csv"), ("schwartz", "schwartz_stances_blind5.csv"),
        ("mft", "mft_blind.csv"),
        ("valuelex", "valuelex_blind7.csv"), ("schwartz", "schwartz_stances_blind6.csv"),
        ("valuelex", "valuelex_blind8.csv"), ("schwartz", "schwartz_stances_blind7.csv"),
        ("valuelex", "valuelex_blind9.csv"), ("schwartz", "schwartz_stances_blind8.csv"), ("mft", "mft_blind2.csv"),
        ("valuelex", "valuelex_blind10.csv"), ("schwartz", "schwartz_stances_blind9.csv"))),
    *((f"former_blind/{s}_system.yaml", f"former_blind/{s}_blind.csv")
      for s in ("stewardship", "civic", "care", "craft", "fortitude", "frugality")),
)
#: the seed of the reworded copies every training set is also fitted under (`reworded`)
REWORDING_SEED = 15
SIMILARITY_FEATURES = ["pos", "def", "pos_sent", "def_sent", "pos_top3", "neg", "neg_sent"]
RELATIVE_FEATURES = ["rel_pos", "rel_def", "rel_pos_sent", "rel_def_sent", "rel_pos_top3", "rel_neg"]
#: the direction features of `features.build_features`, in its order
LEXICAL_FEATURES = list(FEATURE_NAMES)
#: pull from the columns a system sets against each one (`_cross_opposition`)
OPPOSITION_FEATURES = ["cross_opp", "cross_opp_sent"]
FEATURES = SIMILARITY_FEATURES + RELATIVE_FEATURES + ["lex_" + f for f in LEXICAL_FEATURES] + OPPOSITION_FEATURES
_SENT_SPLIT = re.compile(r"(?<=[.!?;])\s+|\n+|\s+[-*•]\s+")


def sentences(completion: str, max_n: int = 12) -> list[str]:
    """The completion's sentences and list items (at least three letters each), the first `max_n`: a long argued
    answer touches a value in one sentence, and a whole-text embedding dilutes it."""
    parts = [p.strip(" -*•#>\t") for p in _SENT_SPLIT.split(str(completion or ""))]
    return [p for p in parts if sum(ch.isalpha() for ch in p) >= 3][:max_n]


def sentence_spans(completion: str, max_n: int = 12) -> list[tuple[int, int]]:
    """Character spans of `sentences(completion)` in the completion, in order ((0, 0) if one is not found)."""
    return _locate(str(completion or ""), sentences(completion, max_n))


def _locate(text: str, parts: list[str]) -> list[tuple[int, int]]:
    pos, out = 0, []
    for part in parts:
        a = text.find(part, pos)
        out.append((a, a + len(part)) if a >= 0 else (0, 0))
        pos = a + len(part) if a >= 0 else pos
    return out


def completion_vectors(completions: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(whole, sentence vectors, owner): each completion's unit vector, one unit vector per sentence, and the index of
    the completion each sentence is from.

    The sentences of a multi-sentence completion are pooled from the single encoder pass over it
    (`embeddings.embed_spans`: the encoder is most of the scorer's time, and encoding every sentence again nearly
    doubled it); that pass also caches the completion's whole vector, so it runs first. A completion of one sentence
    (or none) is its own sentence; a sentence the encoder's window cut off is encoded alone.
    """
    parts = [sentences(c) for c in completions]
    multi = [i for i, p in enumerate(parts) if len(p) > 1]
    pooled = dict(zip(multi, embed_spans([completions[i] for i in multi],
                                         [_locate(completions[i], parts[i]) for i in multi])))
    comp = embed([c if c.strip() else "-" for c in completions])
    rows: list[np.ndarray | None] = []
    owner: list[int] = []
    alone: dict[int, str] = {}
    for i, c in enumerate(completions):
        for part, v in zip(parts[i], pooled[i]) if i in pooled else [(c, comp[i])]:
            if v is None:
                alone[len(rows)] = part
            rows.append(v)
            owner.append(i)
    for r, v in zip(alone, embed(list(alone.values()))):
        rows[r] = v
    return comp, np.vstack(rows).astype(np.float32), np.asarray(owner)


@dataclass
class LeafTexts:
    """What the model knows of each leaf column: `Name: definition`, the name and marker words, the opposites."""

    names: list[str]
    definitions: list[str]
    markers: list[list[str]]
    opposites: list[list[str]]

    @classmethod
    def of(cls, system: ValueSystem) -> "LeafTexts":
        leaves = system.leaves()
        return cls(
            names=leaves,
            definitions=[f"{c}: {system.definition(c)}" if system.definition(c) else c for c in leaves],
            markers=[list(dict.fromkeys([c.replace("-", " ").lower()] + [w.lower() for w in system.markers(c)]))
                     for c in leaves],
            opposites=[[w.lower() for w in system.opposites(c)] for c in leaves],
        )


def _unit32(m: np.ndarray) -> np.ndarray:
    """Unit rows, computed in the array's own dtype, as float32."""
    return unit(m).astype(np.float32)


def _fit_cuts(pred: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Cut points on the expected score that maximise QWK on the training rows (coordinate search from k + 0.5)."""
    from sklearn.metrics import cohen_kappa_score

    y = np.asarray(y).astype(int)
    cuts = np.arange(0.5, 6.0, 1.0)

    def q(c: np.ndarray) -> float:
        return cohen_kappa_score(y, np.digitize(pred, c), labels=list(range(7)), weights="quadratic")

    best = q(cuts)
    for _ in range(2):
        for j in range(6):
            for v in np.linspace(cuts[j] - 0.6, cuts[j] + 0.6, 13):
                c = np.sort(np.r_[cuts[:j], v, cuts[j + 1:]])
                s = q(c)
                if s > best + 1e-9:
                    best, cuts = s, c
    return cuts


def _relative(m: np.ndarray) -> np.ndarray:
    """Each column minus the item's mean over the columns (0 for a one-column system: nothing to compare with)."""
    return m - m.mean(1, keepdims=True) if m.shape[1] > 1 else np.zeros_like(m)


def pair_features(stems: Sequence[str], completions: Sequence[str], system: Any) -> np.ndarray:
    """(n items, n leaves, len(FEATURES)) features of every item against every leaf column of `system`."""
    system = load_system(system)
    stems = [str(s or "") for s in stems]
    completions = [str(c or "") for c in completions]
    enc = embed
    cols = LeafTexts.of(system)
    n = len(completions)
    comp, sent, owner = completion_vectors(completions)
    defs = enc(cols.definitions)
    pos = _unit32(np.vstack([enc(w).mean(0) for w in cols.markers]))
    neg = _unit32(np.vstack([enc(w).mean(0) if w else np.zeros(comp.shape[1], np.float32) for w in cols.opposites]))

    def best_sentence(m: np.ndarray) -> np.ndarray:
        out = np.full((n, m.shape[1]), -1.0, np.float32)
        np.maximum.at(out, owner, m)
        return out

    f = {"pos": comp @ pos.T, "def": comp @ defs.T, "neg": comp @ neg.T,
         "pos_sent": best_sentence(sent @ pos.T), "def_sent": best_sentence(sent @ defs.T),
         "neg_sent": best_sentence(sent @ neg.T),
         "pos_top3": np.stack([np.sort(comp @ enc(w).T, axis=1)[:, ::-1][:, :3].mean(1) for w in cols.markers], 1)}
    for name in ("pos", "def", "pos_sent", "def_sent", "pos_top3", "neg"):
        f["rel_" + name] = _relative(f[name])
    lex = build_features(stems, completions, Prototypes(system), sent=comp)["X"]
    leaf_idx = [system.columns().index(c) for c in cols.names]
    for i, name in enumerate(FEATURE_NAMES):
        f["lex_" + name] = lex[:, leaf_idx, i]
    pull = _opposition(pos, neg)
    f["cross_opp"] = _cross_opposition(f["rel_pos"], pull)
    f["cross_opp_sent"] = _cross_opposition(f["rel_pos_sent"], pull)
    return np.stack([f[name] for name in FEATURES], axis=2).astype(np.float32)


def _opposition(pos: np.ndarray, neg: np.ndarray) -> np.ndarray:
    """(leaves, leaves): how much leaf k's marker centroid (row) looks like leaf j's opposites (column), 0 when they
    do not, on the diagonal, or when j lists no opposites (its `neg` row is zero)."""
    pull = np.clip(pos @ neg.T, 0.0, None)
    np.fill_diagonal(pull, 0.0)
    return pull


def _cross_opposition(rel: np.ndarray, pull: np.ndarray) -> np.ndarray:
    """(n, leaves): per leaf j, the strongest max(rel[k], 0) * pull[k, j] over the other leaves k. Why: an argued answer
    often rejects a value by championing the one the system sets against it (speeding for the thrill: Stimulation
    high, Conformity low) without a word of the rejected value; the system's own opposites say which columns pull
    against each other, so the feature holds for any system that lists opposites (rule 57ce6fe)."""
    return (np.clip(rel, 0.0, None)[:, :, None] * pull[None, :, :]).max(1)


def with_dimensions(leaf_values: np.ndarray, system: ValueSystem) -> np.ndarray:
    """(n, leaves) -> (n, columns): a dimension with subdimensions takes its child furthest from neutral, or neutral
    when two children are equally far on opposite sides (the rubric's rule for dimension labels; such exact ties
    happen with integer labels, as in `benchmarks/annotator_agreement.py`); a leaf keeps its own value."""
    leaves = system.leaves()
    out = np.zeros((leaf_values.shape[0], len(system.columns())), leaf_values.dtype)
    for j, c in enumerate(system.columns()):
        kids = [leaves.index(k) for k in system.children(c)] or [leaves.index(c)]
        up = leaf_values[:, kids].max(1) - NEUTRAL  # the furthest child above neutral (negative if none is)
        down = leaf_values[:, kids].min(1) - NEUTRAL  # ... and below it
        out[:, j] = NEUTRAL + np.where(up > -down, up, np.where(-down > up, down, 0.0))
    return out


class PhiModel:
    """Pair features -> expected score in 0..6 (gradient-boosted classifier over the seven levels) and integer labels
    (cut points on the expected score chosen for QWK on the training rows). Holds nothing specific to any column."""

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed
        self.meta: dict[str, Any] = {"code_version": CODE_VERSION, "features": FEATURES}

    def fit(self, X: np.ndarray, y: np.ndarray) -> "PhiModel":
        """X: (rows, F) features of (item, leaf) pairs; y: their 0..6 labels."""
        from sklearn.ensemble import HistGradientBoostingClassifier

        self.model = HistGradientBoostingClassifier(
            max_iter=150, learning_rate=0.05, max_leaf_nodes=15, min_samples_leaf=40, l2_regularization=1.0,
            random_state=self.seed).fit(X, y.astype(int))
        self.cuts = _fit_cuts(self._expected(X), y)
        self.meta["n_rows"] = int(len(y))
        return self

    def _expected(self, X: np.ndarray) -> np.ndarray:
        return self.model.predict_proba(X) @ self.model.classes_.astype(float)

    def state(self) -> dict[str, Any]:
        """What a saved model holds: plain data and the scikit-learn estimator, no class of ours, so a saved model
        still loads after this class moves (a pickled PhiModel named its module path and broke when phi.py moved)."""
        return {"seed": self.seed, "meta": self.meta, "model": self.model, "cuts": np.asarray(self.cuts)}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> "PhiModel":
        model = cls(state["seed"])
        model.meta, model.model, model.cuts = dict(state["meta"]), state["model"], np.asarray(state["cuts"])
        return model

    def predict(self, feats: np.ndarray, system: ValueSystem) -> tuple[np.ndarray, np.ndarray]:
        """feats from `pair_features`. Returns integer labels and expected scores, (n, columns) in system order."""
        n, k, f = feats.shape
        ev = with_dimensions(self._expected(feats.reshape(n * k, f)).reshape(n, k), system)
        return np.digitize(ev, self.cuts).astype(int), ev


# -- the training sets -------------------------------------------------------------------------------------------
def _system_file(ref: str) -> Path:
    """A training set's system: a built-in name, or a YAML path relative to the annotated-data folder."""
    return system_path(ref) if ref in BUILTIN_SYSTEMS else ANNOTATED_DIR / ref


def training_system(ref: str) -> ValueSystem:
    return load_system(_system_file(ref))


def training_data(sets: Sequence[tuple[str, str]] = TRAINING_SETS) -> list[tuple[ValueSystem, Any]]:
    """(system, annotated frame) of every training set that is installed."""
    import pandas as pd

    out = []
    for ref, csv in sets:
        path = ANNOTATED_DIR / csv
        if path.is_file():
            df = pd.read_csv(path)
            df["stem"] = df["stem"].fillna("").astype(str)
            df["completion"] = df["completion"].fillna("").astype(str)
            out.append((training_system(ref), df))
    return out


def leaf_rows(system: ValueSystem, df: Any) -> tuple[np.ndarray, np.ndarray]:
    """Features and labels of every (item, leaf) pair of one annotated set."""
    X = pair_features(df["stem"].tolist(), df["completion"].tolist(), system)
    y = df[system.leaves()].to_numpy(float)
    return X.reshape(-1, X.shape[2]), y.reshape(-1)


def reworded(systems: Sequence[ValueSystem], seed: int = REWORDING_SEED) -> list[ValueSystem]:
    """One perturbed copy of each system, drawn in order: each column keeps a random half of its marker words (at
    least 2) and of its opposites (at least 1), under a new digest.

    Why: the model is fitted on systems it will never score; it is meant for systems worded by someone else (a run's
    own taxonomy, a researcher's YAML). Fitted on each annotated set under one wording only, it learnt how that
    wording's similarities look, and under reworded names it fell below the bare cosine on stem completions of a
    system left out of fitting (rule d07a47c). Seeing each set under a second, thinner wording teaches it features
    that hold across wordings."""
    rng = np.random.default_rng(seed)

    def half(words: tuple[str, ...], at_least: int) -> tuple[str, ...]:
        if len(words) <= at_least:
            return words
        keep = rng.choice(len(words), max(at_least, int(round(len(words) / 2))), replace=False)
        return tuple(words[i] for i in sorted(keep))

    out = []
    for system in systems:
        cols = {name: dataclasses.replace(c, markers=half(c.markers, 2), opposites=half(c.opposites, 1))
                for name, c in system.by_name.items()}
        out.append(dataclasses.replace(system, by_name=cols, digest=f"{system.digest}-aug{rng.integers(10 ** 9)}"))
    return out


def fit(data: Sequence[tuple[ValueSystem, Any]] | None = None, seed: int = 0) -> PhiModel:
    """Fit the model on the given (system, annotated frame) pairs (default: every training set), pooled, each set
    once under its own system and once under a `reworded` copy of it."""
    data = training_data() if data is None else data
    if not data:
        raise UserError("no annotated set is installed: the embedding scorer cannot be fitted")
    copies = list(zip(reworded([s for s, _d in data]), [d for _s, d in data]))
    rows = [leaf_rows(s, d) for s, d in [*data, *copies]]
    model = PhiModel(seed).fit(np.vstack([r[0] for r in rows]), np.concatenate([r[1] for r in rows]))
    model.meta["training_sets"] = [f"{s.name}:{len(d)}" for s, d in data]
    return model


def _sklearn_version() -> str:
    import sklearn

    return str(sklearn.__version__)


def ship_model(path: Path = SHIPPED_MODEL) -> Path:
    """Fit on every training set and write the model into the package (maintainers, after the training data or the
    features change): ``python -c "from valuelex_utils.scoring import phi; phi.ship_model()"``."""
    import joblib

    model = fit()
    model.meta.update(training_digest=training_digest(), sklearn=_sklearn_version())
    joblib.dump(model.state(), path, compress=3)
    return path


def load_model(path: Path) -> PhiModel | None:
    """A model saved as `PhiModel.state()`, or None when the file is missing, corrupt or not such a state."""
    import joblib

    try:
        state = joblib.load(path)
        return PhiModel.from_state(state)
    except Exception:  # noqa: BLE001 - missing, corrupt, unpicklable or another format: the caller fits instead
        return None


def shipped_model(path: Path = SHIPPED_MODEL) -> PhiModel | None:
    """The packaged model, or None when it is missing, unreadable or fitted from other training files or another
    scikit-learn (then the caller fits one)."""
    model = load_model(path)
    if model is None:
        return None
    ok = (model.meta.get("training_digest") == training_digest() and model.meta.get("sklearn") == _sklearn_version())
    return model if ok else None


def training_digest(sets: Sequence[tuple[str, str]] = TRAINING_SETS) -> str:
    """Hash of the code version and every training file (CSV and system YAML): the fitted model's cache key."""
    h = hashlib.sha256(CODE_VERSION.encode())
    for ref, csv in sets:
        data = ANNOTATED_DIR / csv
        if data.is_file():
            h.update(data.read_bytes())
            h.update(_system_file(ref).read_bytes())
    return h.hexdigest()[:20]
