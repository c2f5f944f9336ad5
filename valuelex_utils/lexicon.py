"""The value lexicon and the respondent x word matrix (paper Sec. 3.2 step 1 -> step 2, Eq. 1, appendix A.3).

f (the extractor) turns each answer into value descriptors; here they are counted into the lexicon (word, frequency,
respondents, share per training type) and into the count matrix that factor analysis reads. Words used by too few
answers or respondents carry no co-occurrence signal and only add noise columns, so they are left out of the matrix
(`lexicon.min_frequency`, `lexicon.min_respondents`), as the paper reduces 43,884 elicited words to 197 terms.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable

import numpy as np
import pandas as pd

from .parallel import process_map

TRAININGS = ("pretrained", "instruction-tuned", "aligned")


def descriptor_table(answers: pd.DataFrame, extract: Callable[[str], list[str]]) -> pd.DataFrame:
    """One row per (answer, descriptor) with the answer's respondent attributes and the word's position."""
    keep = ["respondent", "model", "family", "size", "training", "config", "prompt_id", "sample", "key"]
    # the rules read each distinct text once (greedy samples repeat verbatim), side by side in a paper-sized study
    texts = list(dict.fromkeys(t for t in answers["text"] if isinstance(t, str)))
    seen = dict(zip(texts, process_map(extract, texts)))
    rows = []
    for ans in answers.itertuples(index=False):
        words = seen.get(ans.text if isinstance(ans.text, str) else None, [])
        base = {k: getattr(ans, k) for k in keep if hasattr(ans, k)}
        rows += [{**base, "position": i, "word": w} for i, w in enumerate(words)]
    columns = [k for k in keep if k in answers.columns] + ["position", "word"]
    return pd.DataFrame(rows, columns=columns)


def build_lexicon(descriptors: pd.DataFrame, people: pd.DataFrame) -> pd.DataFrame:
    """word, frequency, respondents, answers, and per training type the share of its respondents who used the word
    (a share, not a count, so groups of different sizes compare)."""
    if descriptors.empty:
        return pd.DataFrame(columns=["word", "frequency", "respondents", "answers"])
    g = descriptors.groupby("word")
    lex = pd.DataFrame({"frequency": g.size(), "respondents": g["respondent"].nunique(), "answers": g["key"].nunique()})
    group_size = people.groupby("training")["respondent"].nunique()
    used = descriptors.drop_duplicates(["word", "respondent"]).groupby(["word", "training"]).size().unstack(fill_value=0)
    for training in TRAININGS:
        if training in group_size.index:
            col = used[training] if training in used.columns else 0
            lex[f"share_{training}"] = (pd.Series(col, index=lex.index).reindex(lex.index).fillna(0)
                                        / group_size[training]).round(4)
    lex = lex.reset_index().sort_values(["frequency", "respondents", "word"], ascending=[False, False, True])
    return lex.reset_index(drop=True)


def kept_words(lexicon: pd.DataFrame, min_frequency: int, min_respondents: int) -> list[str]:
    mask = (lexicon["frequency"] >= min_frequency) & (lexicon["respondents"] >= min_respondents)
    return lexicon.loc[mask, "word"].tolist()


def build_matrix(descriptors: pd.DataFrame, respondents: Iterable[str], words: list[str]) -> pd.DataFrame:
    """Respondent x word counts over the kept words; every respondent is a row, even one that named none of them."""
    idx = pd.Index(list(respondents), name="respondent")
    sub = descriptors[descriptors["word"].isin(words)]
    counts = sub.groupby(["respondent", "word"]).size().unstack(fill_value=0)
    return counts.reindex(index=idx, columns=words, fill_value=0).fillna(0).astype(int)


def answer_id(respondent: str, prompt_id: int, sample: int) -> str:
    return f"{respondent}|p{prompt_id}|s{sample}"


def build_answer_matrix(descriptors: pd.DataFrame, answers: pd.DataFrame, words: list[str]) -> pd.DataFrame:
    """Answer x word counts (0/1 after de-duplication per answer): co-occurrence within one answer, for studies with
    too few respondents for a respondent-level factor analysis. Row ids keep the respondent: `resp|p<prompt>|s<sample>`."""
    ids = [answer_id(r, p, s) for r, p, s in zip(answers["respondent"], answers["prompt_id"], answers["sample"])]
    sub = descriptors[descriptors["word"].isin(words)]
    sub_ids = [answer_id(r, p, s) for r, p, s in zip(sub["respondent"], sub["prompt_id"], sub["sample"])]
    counts = sub.assign(row=sub_ids).groupby(["row", "word"]).size().unstack(fill_value=0)
    out = counts.reindex(index=pd.Index(ids, name="respondent"), columns=words, fill_value=0).fillna(0).astype(int)
    return out


def growth_curve(descriptors: pd.DataFrame, respondents: list[str], n_orders: int = 20, seed: int = 0) -> pd.DataFrame:
    """Unique words as respondents are added in random orders: does the lexicon saturate? (mean and 5-95% band)"""
    rng = np.random.default_rng(seed)
    sets = descriptors.groupby("respondent")["word"].agg(set).reindex(respondents).apply(
        lambda s: s if isinstance(s, set) else set())
    curves = np.zeros((n_orders, len(respondents)))
    for o in range(n_orders):
        seen: set[str] = set()
        for i, r in enumerate(rng.permutation(respondents)):
            seen |= sets[r]
            curves[o, i] = len(seen)
    return pd.DataFrame({"respondents": np.arange(1, len(respondents) + 1), "mean": curves.mean(0),
                         "lo": np.percentile(curves, 5, axis=0), "hi": np.percentile(curves, 95, axis=0)})


def unique_to_training(lexicon: pd.DataFrame) -> pd.DataFrame:
    """Words that respondents of exactly one training type used, with that type."""
    shares = [c for c in lexicon.columns if c.startswith("share_")]
    if len(shares) < 2:
        return pd.DataFrame(columns=["word", "training", "frequency"])
    used = lexicon[shares] > 0
    only = lexicon[used.sum(axis=1) == 1].copy()
    only["training"] = used.loc[only.index].idxmax(axis=1).str.removeprefix("share_")
    return only[["word", "training", "frequency", "respondents"]].reset_index(drop=True)


def lexicon_counts(descriptors: pd.DataFrame, lexicon: pd.DataFrame, kept: list[str]) -> dict[str, int]:
    """The figures the paper reports: words elicited, unique terms, terms kept (43,884 -> 197 for aligned models)."""
    out = {"answers_with_words": int(descriptors["key"].nunique()) if "key" in descriptors else 0,
           "words_elicited": int(len(descriptors)), "unique_words": int(len(lexicon)), "kept_words": len(kept)}
    for training, grp in descriptors.groupby("training"):
        out[f"words_elicited_{training}"] = int(len(grp))
        out[f"unique_words_{training}"] = int(grp["word"].nunique())
    return out


@dataclass
class LexiconStep:
    descriptors: pd.DataFrame  # the words the lexicon counts (the rules' words the judge kept, or all of them)
    lexicon: pd.DataFrame
    kept: list[str]
    matrix: pd.DataFrame
    counts: dict[str, int]
    rules_descriptors: pd.DataFrame | None = None  # every word of the rules, `judge_kept` saying the judge's verdict
    rules_lexicon: pd.DataFrame | None = None  # the lexicon of the rules alone (to compare with the judged one)
    judge: str | None = None  # extraction.llm_judge, when the judgment was applied


VERDICTS = {True: "kept", False: "dropped", None: "unreadable"}  # `judge_verdict`; "not asked" without a judge


def judge_descriptors(descriptors: pd.DataFrame, verdicts: dict[str, bool | None] | None) -> pd.DataFrame:
    """The rules' descriptors with the judge's verdict on each word: `judge_verdict` (kept, dropped, unreadable: its
    batch's answer held no word list, so the word is kept; or "not asked" without a judge) and `judge_kept`."""
    out = descriptors.copy()
    if verdicts is None:
        out["judge_verdict"] = "not asked"
    else:
        out["judge_verdict"] = [VERDICTS[verdicts.get(str(w).lower())] for w in out["word"]]
    out["judge_kept"] = out["judge_verdict"] != "dropped"
    return out


def dropped_words(rules_descriptors: pd.DataFrame) -> pd.DataFrame:
    """The words the judge dropped, most frequent first (word, frequency, respondents)."""
    dropped = rules_descriptors[~rules_descriptors["judge_kept"]]
    if dropped.empty:
        return pd.DataFrame(columns=["word", "frequency", "respondents"])
    g = dropped.groupby("word")
    out = pd.DataFrame({"frequency": g.size(), "respondents": g["respondent"].nunique()}).reset_index()
    return out.sort_values(["frequency", "word"], ascending=[False, True]).reset_index(drop=True)


def side_by_side(rules_lexicon: pd.DataFrame, judged_lexicon: pd.DataFrame, n: int = 20) -> pd.DataFrame:
    """The top `n` words of the rules-only lexicon next to the top `n` of the judged one (rank, word, frequency),
    with whether the judge kept each rules word."""
    judged = set(judged_lexicon["word"])
    left = rules_lexicon.head(n).reset_index(drop=True)
    right = judged_lexicon.head(n).reset_index(drop=True)
    rows = max(len(left), len(right))
    cell = lambda frame, i, col: frame.loc[i, col] if i < len(frame) else None  # noqa: E731 - local shorthand
    return pd.DataFrame({
        "rank": range(1, rows + 1),
        "rules_only": [cell(left, i, "word") for i in range(rows)],
        "rules_frequency": [cell(left, i, "frequency") for i in range(rows)],
        "judge_kept": [(cell(left, i, "word") in judged) if i < len(left) else None for i in range(rows)],
        "with_judgment": [cell(right, i, "word") for i in range(rows)],
        "judged_frequency": [cell(right, i, "frequency") for i in range(rows)],
    })


def _judge_verdicts(params: "Params", run_dir: str, words: Iterable[str]) -> dict[str, bool | None]:  # noqa: F821
    """The extraction judgment (paper Eq. 1: rules, then GPT-4's judgment) on every distinct word, through the shared
    LLM layer: the verdicts are stored raw in the run's store and tallied under step 02; a rerun asks nothing."""
    from .extraction import filter_decoding, llm_judgment
    from .llm.roles import role_caller

    model = params.extraction.llm_judge
    caller = role_caller(params, model, run_dir, role="extraction judge", step="02_lexicon",
                         decoding=filter_decoding(params.seed))
    return llm_judgment(words, caller, model=model)


def run_lexicon(params: "Params", run_dir: str, extract: Callable[[str], list[str]]) -> LexiconStep:  # noqa: F821
    """Step 02: descriptors from every stored answer (the rules, then the LLM judgment when `extraction.llm_judge` is
    set), the lexicon, and the matrix factor analysis reads. `descriptors.parquet` keeps every word of the rules with
    `judge_kept`, so what the judge dropped stays visible."""
    from .responses import respondent_table
    from .rundir import RunDir, atomic_path, atomic_write_text

    rd = RunDir.at(run_dir)
    answers = pd.read_parquet(rd.require(rd.elicitation, "01"))
    answers = answers[answers["text"].notna()]
    judge = params.extraction.llm_judge
    rules = descriptor_table(answers, extract)
    verdicts = _judge_verdicts(params, str(rd.root), rules["word"]) if judge and len(rules) else None
    rules = judge_descriptors(rules, verdicts)
    descriptors = rules[rules["judge_kept"]].reset_index(drop=True)
    people = respondent_table(params)
    lex = build_lexicon(descriptors, people)
    kept = kept_words(lex, params.lexicon.min_frequency, params.lexicon.min_respondents)
    if params.lexicon.unit == "answer":
        matrix = build_answer_matrix(descriptors, answers, kept)
    else:
        matrix = build_matrix(descriptors, people["respondent"], kept)
    with atomic_path(rd.descriptors) as tmp:
        rules.to_parquet(tmp, index=False)
    atomic_write_text(rd.lexicon, lex.assign(kept=lex["word"].isin(kept)).to_csv(index=False))
    atomic_write_text(rd.matrix, matrix.to_csv())
    rules_lex = build_lexicon(rules, people) if judge else lex
    counts = {"answers": int(len(answers)), **lexicon_counts(descriptors, lex, kept)}
    if judge:
        counts.update(words_elicited_rules=int(len(rules)), unique_words_rules=int(len(rules_lex)),
                      unique_words_dropped_by_judge=int(len(rules_lex)) - int(len(lex)),
                      unique_words_unreadable_verdict=int(rules.loc[rules["judge_verdict"] == "unreadable",
                                                                     "word"].nunique()))
    return LexiconStep(descriptors, lex, kept, matrix, counts, rules, rules_lex, judge)


def judgment_summary(step: LexiconStep) -> str:
    """One line: what the LLM judgment did to the rules' words (or that it was not asked)."""
    if step.judge is None:
        return ("extraction.llm_judge is not set: the lexicon is the rules' alone (set it to a LiteLLM id to add the "
                "paper's judgment).")
    c = step.counts
    uses = c["words_elicited_rules"] - c["words_elicited"]
    unreadable = c.get("unique_words_unreadable_verdict", 0)
    caveat = (f" {unreadable} of them got no readable verdict (the answer held no word list) and were kept unjudged."
              if unreadable else "")
    return (f"judge {step.judge}: of {c['unique_words_rules']} distinct words from the rules it kept "
            f"{c['unique_words']} and dropped {c['unique_words_dropped_by_judge']} ({uses} of "
            f"{c['words_elicited_rules']} uses); {c['kept_words']} words enter the matrix.{caveat}")
