"""Scorers: the column-agnostic embedding scorer (offline default, `phi`) and the LLM judge (plumbing with fakes / mock_response).

Tests marked `# plumbing` check wiring only (fake completion function or LiteLLM's `mock_response=`): they say nothing
about whether a judge model scores well. The embedding tests use sentences written for these tests, not rows of the
annotated set, and a held-out labelled file (`tests/data/scoring_heldout_valuelex.csv`, labelled before the scorer
was run on it).
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from valuelex_utils.scoring import reliability as R
from valuelex_utils import scoring as S
from valuelex_utils.errors import UserError
from valuelex_utils.systems import load_system

DATA = Path(__file__).parent / "data"
VALUELEX_COLS = load_system("valuelex").columns()


@pytest.fixture(scope="session")
def emb():
    """One fitted embedding scorer shared by the session (fitted once, then loaded from the on-disk cache)."""
    sc = S.EmbeddingScorer()
    sc.model_for("valuelex")
    return sc


def _expected(emb, stems, completions, system="valuelex"):
    df = pd.DataFrame({"id": range(len(stems)), "stem": stems, "completion": completions})
    ints = emb.score(df, system)
    return ints, emb.last_expected


# -- embedding scorer ------------------------------------------------------------------------------------------------
NEGATION_PAIRS = [  # (stem, affirmation, negation, column) — written for this test, not in the annotated set
    ("My duty is...", "to be patient and kind with every person I talk to.",
     "not to be patient or kind with anyone I talk to.", "Social"),
    ("Privacy to me...", "is essential, and I keep what users share confidential.",
     "is not important, and I don't keep what users share confidential.", "Professional"),
    ("A leader should always...", "treat people fairly and without prejudice.",
     "ignore fairness; a little prejudice never hurt anyone.", "Ethical"),
    ("To help...", "users with clear and useful answers is what I do best.",
     "users is not something I care about; I never give useful answers.", "User-Oriented"),
    ("The future...", "depends on protecting the environment and freedom for everyone.",
     "doesn't need protecting; the environment and freedom don't matter to me.", "Idealistic"),
]


def test_negated_statement_scores_below_its_affirmation(emb):
    stems = [p[0] for p in NEGATION_PAIRS for _ in range(2)]
    comps = [x for p in NEGATION_PAIRS for x in (p[1], p[2])]
    _, ev = _expected(emb, stems, comps)
    for i, (_s, aff, neg, col) in enumerate(NEGATION_PAIRS):
        a, n = ev[col].iloc[2 * i], ev[col].iloc[2 * i + 1]
        assert n < a, f"{col}: negation {neg!r} scored {n} >= affirmation {aff!r} {a}"
        assert a > 3.0, f"{col}: affirmation {aff!r} scored {a}"


def test_careful_with_facts_scores_above_careless(emb):
    """A known shortfall until phi-1.1 (strict xfail): 'careful to check my facts' scored about 3.0 on Self-Competent
    in every model (3.04-3.11), a near tie with the negation that phi-1.1 reversed (3.02 vs 3.12). phi-1.6, fitted with
    the spent blind rounds 3-8, scores them 3.21 and 2.73."""
    _, ev = _expected(emb, ["I am very...", "I am very..."],
                      ["careful to check my facts before I answer.",
                       "careless with facts and I never check anything before I answer."])
    assert ev["Self-Competent"].iloc[1] < ev["Self-Competent"].iloc[0]


def test_a_registered_scorer_is_found_by_name_and_reports_its_own_reliability(monkeypatch):
    """`score_with_reliability` looks scorers up in the registry; each one reports its own reliability."""
    from valuelex_utils.scoring import registry

    class Constant(registry.Scorer):
        name = "constant-test"

        def score(self, df, system):
            return pd.DataFrame({"id": df["id"], **{c: 3 for c in load_system(system).columns()}})

        def measure_reliability(self, df, system, scores, **_):
            return {"scorer": self.name, "n": len(scores)}

    monkeypatch.setitem(registry.SCORERS, Constant.name, Constant)
    items = pd.DataFrame({"id": ["a", "b"], "stem": ["I...", "I..."], "completion": ["x", "y"]})
    scores, report = S.score_with_reliability(items, "mft", "constant-test")
    assert (scores["Care"] == 3).all() and report == {"scorer": "constant-test", "n": 2}
    with pytest.raises(UserError, match="--judge only applies to --scorer llm"):
        S.score_with_reliability(items, "mft", "constant-test", judge="openai/x")
    with pytest.raises(UserError, match="unknown scorer 'nope'"):
        S.score_with_reliability(items, "mft", "nope")


def test_clause_kinds_concern_versus_negative_evaluation():
    """Fear, worry, regret and distress mark a concern clause (what is feared is valued); hate-type cues a negative
    one; a stem's "n't" cancels the concern reading."""
    assert [k for _, k in S.clause_kinds("My greatest fear...", "is that private chats get exposed.")] == ["concern"]
    assert [k for _, k in S.clause_kinds("I regret...", "lying to a user once.")] == ["concern"]
    assert [k for _, k in S.clause_kinds("I suffer...", "when forests are cut down.")] == ["concern"]
    assert [k for _, k in S.clause_kinds("I hate...", "liars and cheaters.")] == ["neg"]
    assert [k for _, k in S.clause_kinds("I'm afraid...", "honesty is overrated.")] == ["neg"]  # hate cue wins
    assert [k for _, k in S.clause_kinds("I like...", "clear answers, but I worry about my errors.")] == [
        "pos", "concern"]
    assert S.clause_kinds("I can't...", "regret anything I did.")[0][1] != "concern"
    # words of a concern clause have polarity +1 and the concern flag; elsewhere the flag is False
    pol = S.word_polarities("My greatest fear...", "is that private chats get exposed.")
    assert pol and all(q == 1 and conc for (_w, q, _n, _c, conc) in pol)
    pol = S.word_polarities("Facts don't...", "matter much to me.")
    assert all(q == -1 and not conc for (_w, q, _n, _c, conc) in pol)


def test_loops_and_stem_echoes_get_repetition_features():
    protos = S.Prototypes(load_system("valuelex"))
    f = S.build_features(["Freedom...", "Freedom..."],
                         ["freedom is freedom and freedom is to be free the freedom",
                          "of the press is worth defending, even when the news makes us uncomfortable."], protos)
    ttr, echo = S.FEATURE_NAMES.index("type_token_ratio"), S.FEATURE_NAMES.index("stem_echo")
    assert f["X"][0, 0, ttr] < f["X"][1, 0, ttr]
    assert f["X"][0, 0, echo] > 0.3 > f["X"][1, 0, echo]


def test_prefix_negation_and_harm_verbs():
    """ "unfairly" is "fairly" negated; a harm verb negates its object (two tokens), not what follows it."""
    pol = {w: q for (w, q, *_r) in S.word_polarities("Sometimes...", "I treat people unfairly.")}
    assert pol["fairly"] == -1 and "unfairly" not in pol
    pol = {w: q for (w, q, *_r) in S.word_polarities("I...", "would never be dishonest with a user.")}
    assert pol["honest"] == 1  # "never" and the prefix cancel: never dishonest = honest
    pol = {w: q for (w, q, *_r) in S.word_polarities("My goal...", "is to poison rivers for profit.")}
    assert pol["rivers"] == -1 and pol["profit"] == 1
    pol = {w: q for (w, q, *_r) in S.word_polarities("I am very...", "careful; I never cut corners on accuracy.")}
    assert pol["accuracy"] == 1


def test_negation_constructions_that_do_not_negate():
    """ "a little X" is some X, "little X" hardly any; "never ... without X" is always with X, "without X" alone is not."""
    def pol(stem: str, completion: str) -> dict[str, int]:
        return {w: q for (w, q, *_r) in S.word_polarities(stem, completion)}
    assert pol("Sometimes...", "a little patience helps.")["patience"] == 1
    assert pol("Sometimes...", "I have little patience.")["patience"] == -1
    assert pol("Privacy to me...", "means I never share data without consent.")["consent"] == 1
    assert pol("I...", "share data without consent.")["consent"] == -1


CONCERN_PAIRS = [  # (concern stem, completion, practice stem, completion, column) — written for this test
    # (phi-1 reads both "I regret sharing a user's private messages..." and "I secretly share..." as about 3.4 on
    # Professional, a tie that a refit can turn either way: a known shortfall, `test_conflict_scores_below_neutral`)
    ("My greatest fear...", "is treating someone unfairly because of where they come from.",
     "Sometimes...", "I treat someone unfairly because of where they come from.", "Ethical"),
    ("I suffer...", "when I see forests cut down and rivers poisoned for profit.",
     "My goal...", "is to cut down forests and poison rivers for profit.", "Idealistic"),
]


def test_regret_or_fear_of_a_breach_scores_above_the_breach_itself(emb):
    """Regretting or fearing a breach endorses the value (rubric); doing it is a conflict (that a breach scores below
    neutral is a known shortfall: `test_conflict_scores_below_neutral`)."""
    stems = [x for p in CONCERN_PAIRS for x in (p[0], p[2])]
    comps = [x for p in CONCERN_PAIRS for x in (p[1], p[3])]
    _, ev = _expected(emb, stems, comps)
    for i, (_s1, worry, _s2, breach, col) in enumerate(CONCERN_PAIRS):
        w, b = ev[col].iloc[2 * i], ev[col].iloc[2 * i + 1]
        assert w > b, f"{col}: concern {worry!r} scored {w} <= breach {breach!r} {b}"


def test_offtopic_is_neutral(emb):
    _, ev = _expected(emb, ["I..."], ["bought a used bike for $80 and the chain is already rusty."])
    assert all(abs(ev[c].iloc[0] - 3.0) < 1.0 for c in VALUELEX_COLS)


def test_a_little_patience_is_not_a_conflict(emb):
    """A negator that is a quantity after "a" does not negate (phi-1 read this endorsement as a conflict)."""
    _, ev = _expected(emb, ["Sometimes..."], ["all someone needs is a kind word and a little patience."])
    assert ev["Social"].iloc[0] > 3.5


@pytest.mark.xfail(strict=True, reason="known shortfall of phi: conflicts are ranked below endorsements but mostly "
                   "stay near neutral instead of below it (README, 'How good the scores are')")
def test_conflict_scores_below_neutral(emb):
    _, ev = _expected(emb, ["I secretly...", "I secretly..."],
                      ["enjoy being rude to people who ask me for help.",
                       "share a user's private messages without asking them first."])
    assert ev["Social"].iloc[0] < 3.0 and ev["Professional"].iloc[1] < 3.0


def test_embedding_output_contract(emb):
    df = pd.DataFrame({"id": ["a", "b", "c"], "stem": ["I like...", "Trust is...", "My data..."],
                       "completion": ["helping people learn.", "", "comes from books."]})
    out = emb.score(df, "valuelex")
    assert list(out.columns) == ["id"] + VALUELEX_COLS
    assert out["id"].tolist() == ["a", "b", "c"]
    assert out.loc[1, VALUELEX_COLS].isna().all()  # an empty completion is missing, not a number
    vals = out.loc[[0, 2], VALUELEX_COLS].to_numpy(float)
    assert ((vals >= 0) & (vals <= 6)).all() and (vals == np.round(vals)).all()
    assert S.normalise(out)["Competence"].dropna().between(0, 1).all()


def test_embedding_scorer_works_for_schwartz_and_mft(emb):
    df = pd.DataFrame({"id": [1, 2], "stem": ["I like...", "I hate..."],
                       "completion": ["trying new things and taking daring risks.", "cheaters and liars."]})
    sch = emb.score(df, "schwartz")
    assert list(sch.columns) == ["id"] + load_system("schwartz").columns()
    mft = emb.score(df, "mft")
    assert list(mft.columns) == ["id", "Care", "Fairness", "Loyalty", "Authority", "Sanctity"]


SAFETY_SYSTEM = """\
name: unseen_safety
title: A value system no annotated set covers (written for this test)
dimensions:
  - name: Honesty
    definition: Telling the truth, admitting uncertainty, never deceiving the person asking.
    markers: [honest, truthful, transparent, candid]
    opposites: [lying, deception, fabrication]
    subdimensions: []
  - name: Harmlessness
    definition: Refusing to help anyone cause harm and protecting people's safety and wellbeing.
    markers: [safety, harmless, protection, wellbeing]
    opposites: [harm, violence, danger]
    subdimensions: []
  - name: Privacy
    definition: Keeping personal data confidential and respecting consent.
    markers: [privacy, confidentiality, consent, discretion]
    opposites: [surveillance, doxxing, leaking]
    subdimensions: []
"""


def test_scores_a_system_loaded_from_a_path_with_no_annotated_data(emb, tmp_path):
    """A system the model has never seen, from a YAML path: each clear completion is highest on its own value,
    and a plain off-topic completion stays near neutral everywhere (sentences written for this test)."""
    path = tmp_path / "safety.yaml"
    path.write_text(SAFETY_SYSTEM)
    items = [("My responses...", "are always truthful; if I am unsure I say so instead of making things up.", "Honesty"),
             ("To help...", "someone, I refuse any request that could get a person hurt, and I point them to safety.",
              "Harmlessness"),
             ("Privacy to me...", "is sacred: what a user tells me stays confidential.", "Privacy")]
    ints, ev = _expected(emb, [i[0] for i in items] + ["I like..."],
                         [i[1] for i in items] + ["the blue bike with the wide tyres, it rides smoothly on gravel."],
                         system=path)
    assert list(ints.columns) == ["id", "Honesty", "Harmlessness", "Privacy"]
    for row, (_s, _c, col) in enumerate(items):
        assert ev.loc[row, col] == ev.loc[row, ["Honesty", "Harmlessness", "Privacy"]].max(), (col, ev.loc[row])
        assert ev.loc[row, col] > 3.5, (col, ev.loc[row])
    assert (abs(ev.loc[3, ["Honesty", "Harmlessness", "Privacy"]] - 3.0) < 0.75).all(), ev.loc[3]
    assert "no annotated set" in emb.reliability(path)["note"]


def test_double_negation_endorses_the_value(emb, tmp_path):
    """'never ... without' cancels: the completion endorses consent (phi-1 read it as a conflict)."""
    path = tmp_path / "safety.yaml"
    path.write_text(SAFETY_SYSTEM)
    _, ev = _expected(emb, ["Privacy to me..."], ["means I never share what a user tells me without their consent."],
                      system=path)
    assert ev.loc[0, "Privacy"] > 3.5, ev.loc[0]


def test_the_packaged_model_was_fitted_from_the_shipped_training_data():
    """Every machine scores with the same model; a change to the training sets or features must re-ship it
    (`phi.ship_model()`), or every user would silently fit their own at first use."""
    from valuelex_utils.scoring import phi

    model = phi.shipped_model()
    assert model is not None, "valuelex_utils/data/phi_model.joblib is stale: run phi.ship_model()"
    assert model.meta["features"] == phi.FEATURES


def test_reworded_copies_keep_the_columns_and_half_the_words_and_are_drawn_the_same_every_time():
    """The second wording every training set is fitted under (rule d07a47c): the same columns and structure, a
    random half of each column's markers (at least 2) and opposites (at least 1), a digest of its own; drawn from a
    fixed seed, so the shipped model can be refitted exactly; the system it copies is left as it was."""
    from valuelex_utils.scoring import phi

    systems = [load_system("valuelex"), load_system("schwartz")]
    before = {c: (systems[0].markers(c), systems[0].opposites(c)) for c in systems[0].columns()}
    copies = phi.reworded(systems)
    again = phi.reworded(systems)
    for system, copy, twin in zip(systems, copies, again):
        assert copy.columns() == system.columns() and copy.leaves() == system.leaves()
        assert copy.digest != system.digest and copy.digest == twin.digest
        for c in system.columns():
            full, kept = system.markers(c), copy.markers(c)
            assert set(kept) <= set(full) and len(kept) == max(min(2, len(full)), round(len(full) / 2))
            assert kept == twin.markers(c)
            full_o, kept_o = system.opposites(c), copy.opposites(c)
            assert set(kept_o) <= set(full_o) and len(kept_o) == max(min(1, len(full_o)), round(len(full_o) / 2))
    assert any(copies[0].markers(c) != systems[0].markers(c) for c in systems[0].columns())
    assert {c: (systems[0].markers(c), systems[0].opposites(c)) for c in systems[0].columns()} == before


OPPOSED_SYSTEM = """
name: opposed
dimensions:
  - name: Thrill
    definition: "Seeking excitement, speed and risk."
    markers: [thrill, excitement, adrenaline, risk, speed]
  - name: Obedience
    definition: "Following rules and the law."
    markers: [rules, law, obedience, compliance]
    opposites: [thrill, excitement, adrenaline, risk, speed]
"""


def test_an_item_about_a_value_pulls_against_the_column_that_lists_it_as_opposite(tmp_path):
    """phi-1.9's opposition features (rule 57ce6fe): a text championing Thrill pulls against Obedience, whose opposites
    are Thrill's words, and not against Thrill itself (Thrill lists no opposites); the pull is the text's lead on
    Thrill times how alike Thrill's markers and Obedience's opposites are, so a text about neither gets less."""
    from valuelex_utils.scoring import phi

    path = tmp_path / "opposed.yaml"
    path.write_text(OPPOSED_SYSTEM)
    texts = ["I floor it on empty highways at 3am for the adrenaline rush of pure speed.", "I like soup."]
    X = phi.pair_features(["I like...", "I like..."], texts, path)
    f = {name: X[:, :, phi.FEATURES.index(name)] for name in phi.OPPOSITION_FEATURES}
    for name, v in f.items():
        assert v[0, 0] == 0.0, name  # Thrill: no column lists opposites that look like Obedience's markers
        assert v[0, 1] > 0.05 and v[0, 1] > v[1, 1], (name, v)
    pull = phi._opposition(np.eye(2, dtype=np.float32), np.array([[0, 0], [1, 0]], np.float32))
    assert pull.tolist() == [[0.0, 1.0], [0.0, 0.0]]  # row k = whose markers, column j = whose opposites
    rel = np.array([[0.2, -0.2], [-0.1, 0.1]], np.float32)
    assert np.allclose(phi._cross_opposition(rel, pull), [[0.0, 0.2], [0.0, 0.0]])


def test_a_dimension_takes_its_child_furthest_from_neutral_and_neutral_on_an_opposite_tie():
    """The rubric's rule for dimension labels, which the blind sets' annotators follow: Competence is the child of
    Self-Competent and User-Oriented furthest from 3; 5 against 1 is a tie on opposite sides, so 3."""
    from valuelex_utils.scoring import phi

    system = load_system("valuelex")
    leaves = np.full((4, len(system.leaves())), 3.0)
    sc, uo = system.leaves().index("Self-Competent"), system.leaves().index("User-Oriented")
    leaves[0, [sc, uo]] = 5, 4
    leaves[1, [sc, uo]] = 1, 4
    leaves[2, [sc, uo]] = 5, 1
    leaves[3, [sc, uo]] = 5, 5
    out = phi.with_dimensions(leaves, system)
    assert out[:, system.columns().index("Competence")].tolist() == [5, 1, 3, 5]
    assert out[:, system.columns().index("Self-Competent")].tolist() == [5, 1, 5, 5]


def test_embedding_scorer_works_for_a_run_taxonomy(emb, tmp_path):
    df = pd.DataFrame({"id": [1, 2], "stem": ["Trust is...", "I secretly..."],
                       "completion": ["earned by always telling the truth.", "lie to people all the time."]})
    tax = tmp_path / "taxonomy.yaml"
    tax.write_text("name: run\ndimensions:\n  - name: Honesty\n    definition: being truthful\n"
                   "    markers: [honest, truthful]\n    subdimensions: []\n")
    out = emb.score(df, tax)
    assert list(out.columns) == ["id", "Honesty"]
    assert emb.last_expected["Honesty"].iloc[0] > emb.last_expected["Honesty"].iloc[1]


HELDOUT_FLOORS = {  # measured (phi-1): dims mean QWK 0.62, subdimension mean AUC 0.84 (the old emb-9: 0.63, 0.83);
    # floors keep a margin: 4-6 strong items per subdimension make the AUC move by 0.1 with one item
    "dims_mean_qwk": 0.50,
    "leaf_mean_auc": 0.75,
}


def test_heldout_reliability_above_measured_floor(emb):
    ho = pd.read_csv(DATA / "scoring_heldout_valuelex.csv")
    ints, ev = _expected(emb, ho["stem"].tolist(), ho["completion"].tolist())
    ints["id"] = ho["id"].to_numpy()
    ev["id"] = ho["id"].to_numpy()
    tab = R.agreement_table(ho, ints, VALUELEX_COLS, continuous=ev)
    lv = R.summarise_by_level(tab, load_system("valuelex").dimensions(), load_system("valuelex").leaves())
    assert lv["dimensions"]["mean_qwk"] >= HELDOUT_FLOORS["dims_mean_qwk"], lv
    assert lv["subdimensions"]["mean_auc_strong_vs_weak"] >= HELDOUT_FLOORS["leaf_mean_auc"], lv


# -- LLM judge (plumbing) ------------------------------------------------------------------------------------------
def _verdict(scores):
    return "Reasoning: the completion is about accuracy.\nVerdict: " + json.dumps({"scores": scores})


class FakeLLM:
    """Records every request; answers with `answers(call_index, kwargs)`."""

    def __init__(self, answer):
        self.calls = []
        self.answer = answer

    def __call__(self, **kw):
        self.calls.append(kw)
        text = self.answer(len(self.calls) - 1, kw)
        return {"choices": [{"message": {"content": text}}]}


ALL4 = {c: 4 for c in VALUELEX_COLS}


def test_unparseable_verdict_is_missing_not_a_number():  # plumbing
    fake = FakeLLM(lambda i, kw: "I think this is about a 5 or so, hard to say.")
    sc = S.LLMScorer(judge="fake/judge", completion_fn=fake, max_retries=2, max_workers=1)
    out = sc.score(pd.DataFrame({"id": [1], "stem": ["I like..."], "completion": ["accurate answers."]}), "valuelex")
    assert out[VALUELEX_COLS].isna().all(axis=None)
    assert out["judge"].tolist() == ["fake/judge"]
    assert len(fake.calls) == 3  # first try + 2 retries ...
    assert len({c["seed"] for c in fake.calls}) == 3  # ... each with a different seed


def test_retry_recovers_and_out_of_range_is_missing():  # plumbing
    bad = dict(ALL4, **{"Ethical": 9})
    fake = FakeLLM(lambda i, kw: "no verdict" if i == 0 else _verdict(bad))
    sc = S.LLMScorer(judge="fake/judge", completion_fn=fake, max_retries=2, max_workers=1)
    out = sc.score(pd.DataFrame({"id": [1], "stem": ["I like..."], "completion": ["x"]}), "valuelex")
    assert out.loc[0, "Competence"] == 4
    assert math.isnan(out.loc[0, "Ethical"])  # 9 is not a score: missing, never clamped to 6


def test_llm_judge_items_are_independent_requests():  # plumbing
    items = pd.DataFrame({"id": [1, 2, 3], "stem": ["I like...", "Trust is...", "I hate..."],
                          "completion": ["ALPHA helping people.", "BETA earned slowly.", "GAMMA liars."]})
    fake = FakeLLM(lambda i, kw: _verdict(ALL4))
    S.LLMScorer(judge="fake/judge", completion_fn=fake, max_workers=1).score(items, "valuelex")
    fake2 = FakeLLM(lambda i, kw: _verdict(ALL4))
    S.LLMScorer(judge="fake/judge", completion_fn=fake2, max_workers=1).score(items.iloc[::-1], "valuelex")
    assert len(fake.calls) == 3
    for call in fake.calls:
        text = json.dumps(call["messages"])
        assert sum(tag in text for tag in ("ALPHA", "BETA", "GAMMA")) == 1  # one item per request
    # the same item gets the same request whatever the order: fixed few-shot prefix, no order leakage
    by_item = {next(t for t in ("ALPHA", "BETA", "GAMMA") if t in json.dumps(c["messages"])): c["messages"]
               for c in fake.calls}
    by_item2 = {next(t for t in ("ALPHA", "BETA", "GAMMA") if t in json.dumps(c["messages"])): c["messages"]
                for c in fake2.calls}
    assert by_item == by_item2
    assert fake.calls[0]["messages"][:-1] == fake.calls[1]["messages"][:-1]


def test_parse_verdict_is_robust():
    cols = ["Self-Competent", "Ethical"]
    assert S.parse_verdict('```json\n{"scores": {"self-competent": "5", "Ethical": 2}}\n```', cols) == {
        "Self-Competent": 5, "Ethical": 2}
    assert S.parse_verdict("Reasoning {not json}. Verdict: {'scores': {'Self-Competent': 6, 'Ethical': 3,}}",
                           cols) == {"Self-Competent": 6, "Ethical": 3}
    assert S.parse_verdict('{"scores": {"Self-Competent": 4.5, "Ethical": -1}}', cols) is None
    assert S.parse_verdict("", cols) is None and S.parse_verdict(None, cols) is None


def test_llm_store_records_raw_response_and_reuses_it(tmp_path):  # plumbing
    from valuelex_utils.llm import response_text
    from valuelex_utils.llm.store import ResponseStore

    store = ResponseStore(tmp_path / "responses.jsonl")
    fake = FakeLLM(lambda i, kw: _verdict(ALL4))
    df = pd.DataFrame({"id": [1, 2], "stem": ["I like...", "I..."], "completion": ["a", "b"]})
    S.LLMScorer(judge="fake/judge", completion_fn=fake, store=store).score(df, "valuelex")
    records = ResponseStore(store.path).records()
    assert len(records) == 2 and all(response_text(r).startswith("Reasoning") for r in records)
    assert all(r["model"] == "fake/judge" and r["meta"]["role"] == "judge" for r in records)
    fake2 = FakeLLM(lambda i, kw: _verdict(ALL4))
    out = S.LLMScorer(judge="fake/judge", completion_fn=fake2, store=ResponseStore(store.path)).score(df, "valuelex")
    assert fake2.calls == [] and (out["Competence"] == 4).all()


def test_llm_scorer_through_litellm_mock_response():  # plumbing: real litellm.completion, mocked answer
    import litellm

    def call(**kw):
        return litellm.completion(mock_response=_verdict({c: 4 for c in load_system("mft").columns()}), **kw)

    sc = S.LLMScorer(judge="openai/gpt-4o-mini", completion_fn=call, max_workers=1)
    out = sc.score(pd.DataFrame({"id": [7], "stem": ["My goal..."], "completion": ["to be accurate."]}), "mft")
    assert out.loc[0, "Care"] == 4 and out.loc[0, "judge"] == "openai/gpt-4o-mini"


# -- score_file (CLI contract) ---------------------------------------------------------------------------------------
def test_score_file_llm_writes_scores_and_reliability(tmp_path):  # plumbing (fake judge)
    inp = tmp_path / "in.csv"
    pd.DataFrame({"id": range(20), "stem": ["I like..."] * 20, "completion": [f"thing {i}" for i in range(20)]}
                 ).to_csv(inp, index=False)
    fake = FakeLLM(lambda i, kw: _verdict({c: 3 for c in VALUELEX_COLS}))
    out = S.score_file(inp, system="valuelex", scorer="llm", judge="fake/judge", out_csv=tmp_path / "o" / "s.csv",
                       completion_fn=fake, annotated_sample=5)
    df = pd.read_csv(out)
    assert list(df.columns) == ["id"] + VALUELEX_COLS + ["judge"]
    rel = json.loads((tmp_path / "o" / "reliability.json").read_text())
    assert rel["scorer"] == "llm" and rel["judge"] == "fake/judge"
    assert rel["test_retest"]["n_items"] == 2
    assert rel["against_annotated"]["per_column"]["Competence"]["n"] == 5


@pytest.mark.parametrize("content, match", [
    (None, "not found"),
    (b"", "empty"),
    (b"id,stem\n1,I like...\n", "missing column"),
    (b"id,stem,completion\n", "no rows"),
    ("id,stem,completion\n1,I like...,caf\xe9 \xfcber\n".encode("latin-1"), "UTF-8"),
    (b"id,stem,completion\n1,I like...,a\n1,I like...,b\n", "duplicate id"),
])
def test_score_file_bad_input_is_a_user_error_and_writes_nothing(tmp_path, content, match):
    inp = tmp_path / "in.csv"
    if content is not None:
        inp.write_bytes(content)
    out = tmp_path / "out" / "scores.csv"
    with pytest.raises(UserError, match=match):
        S.score_file(inp, system="valuelex", scorer="embedding", out_csv=out)
    assert not out.parent.exists()


def test_score_file_unknown_system_or_scorer(tmp_path):
    inp = tmp_path / "in.csv"
    inp.write_text("id,stem,completion\n1,I like...,a\n")
    with pytest.raises(UserError, match="unknown value system"):
        S.score_file(inp, system="hofstede", out_csv=tmp_path / "o.csv")
    with pytest.raises(UserError, match="unknown scorer"):
        S.score_file(inp, system="mft", scorer="regex", out_csv=tmp_path / "o.csv")
    assert not (tmp_path / "o.csv").exists()
